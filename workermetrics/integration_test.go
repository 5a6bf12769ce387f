package workermetrics

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
)

var emus testenv.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	emus.StopAll()
	os.Exit(testenv.CheckLeaks(code))
}

var seq atomic.Int64

// fixture is a fresh application on DynamoDB Local: its lease table and,
// when legacy, the KCL 3.0–3.4 <app>-CoordinatorState and
// <app>-WorkerMetricStats tables.
type fixture struct {
	ddb                        *dynamodb.Client
	app                        string
	store                      *lease.DynamoStore
	leaseTable, coord, wmTable string
}

func newFixture(t *testing.T, legacy bool) *fixture {
	t.Helper()
	e := emus.Get(t, testenv.DynamoDBLocal)
	f := &fixture{ddb: e.DynamoDB(), app: fmt.Sprintf("wm%d-%d", time.Now().UnixNano()%1e9, seq.Add(1))}
	f.leaseTable, f.coord, f.wmTable = f.app, f.app+"-CoordinatorState", f.app+"-WorkerMetricStats"
	f.store = lease.NewDynamoStore(f.ddb, f.leaseTable, zaptest.NewLogger(t)).WithCoordinatorStateTable(f.coord)
	if err := f.store.CreateTableIfNotExists(ctxT(t), lease.TableOptions{PollInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if legacy {
		createTable(t, f.ddb, f.coord, "key")
		createTable(t, f.ddb, f.wmTable, "wid")
	}
	return f
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createTable(t *testing.T, c *dynamodb.Client, name, pk string) {
	t.Helper()
	_, err := c.CreateTable(ctxT(t), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(pk), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, c *dynamodb.Client, table, pk, key string) map[string]types.AttributeValue {
	t.Helper()
	out, err := c.GetItem(ctxT(t), &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{pk: &types.AttributeValueMemberS{Value: key}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func put(t *testing.T, c *dynamodb.Client, table string, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func attrNames(item map[string]types.AttributeValue) []string {
	var ks []string
	for k := range item {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func sAttr(item map[string]types.AttributeValue, k string) string {
	if v, ok := item[k].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func nAttr(t *testing.T, item map[string]types.AttributeValue, k string) int64 {
	t.Helper()
	v, ok := item[k].(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("%s is not N: %#v", k, item[k])
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", k, v.Value, err)
	}
	return n
}

// running is a Migration under test with its reports and versions.
type running struct {
	m        *Migration
	reports  atomic.Int64
	mu       sync.Mutex
	versions []string
	stop     func()
}

func (r *running) versionSeen(v string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.versions, v)
}

func start(t *testing.T, f *fixture, configured string) *running {
	t.Helper()
	return startConfigured(t, f, configured, false)
}

// startConfigured is start with clientVersionConfig written in the file
// (explicit) or left at its default.
func startConfigured(t *testing.T, f *fixture, configured string, explicit bool) *running {
	t.Helper()
	r := &running{}
	r.m = NewMigration(f.store, f.ddb, MigrationConfig{
		WorkerID: "mld-w1", Configured: configured, ConfiguredExplicitly: explicit, LeaseTable: f.leaseTable, LegacyTable: f.wmTable,
		MonitorInterval: 300 * time.Millisecond, InitRetry: 100 * time.Millisecond,
		Reporter: Config{CaptureFrequency: 20 * time.Millisecond, ReporterFrequency: 150 * time.Millisecond,
			OnReport: func(err error, _ time.Duration) {
				if err == nil {
					r.reports.Add(1)
				}
			}},
		OnVersion: func(v string) { r.mu.Lock(); r.versions = append(r.versions, v); r.mu.Unlock() },
	}, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.m.Run(ctx) }()
	r.stop = func() { cancel(); <-done }
	t.Cleanup(r.stop)
	return r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkWorkerMetricsItem compares a WorkerMetricStats item field by field
// with Java's shape (WorkerMetricStats.LeaseTableWorkerMetricStats /
// LegacyWorkerMetricStats as written by WorkerMetricStatsReporter, minus
// sup/slu): the key, entityType WORKER_METRIC_STATS, lut in epoch seconds,
// sts {C: [N…]} with values in [0, 100] and never a trailing −1 once
// captures ran, opr {C: [100]}.
func checkWorkerMetricsItem(t *testing.T, item map[string]types.AttributeValue, pk string) {
	t.Helper()
	if got, want := attrNames(item), slices.Sorted(slices.Values([]string{pk, "entityType", "lut", "sts", "opr"})); !slices.Equal(got, want) {
		t.Fatalf("attributes = %v, want %v", got, want)
	}
	if sAttr(item, pk) != "mld-w1" || sAttr(item, "entityType") != "WORKER_METRIC_STATS" {
		t.Fatalf("key/entityType: %#v", item)
	}
	if lut := nAttr(t, item, "lut"); lut < time.Now().Unix()-120 || lut > time.Now().Unix()+5 {
		t.Fatalf("lut = %d is not now in epoch seconds", lut)
	}
	sts := item["sts"].(*types.AttributeValueMemberM).Value
	cl, ok := sts["C"].(*types.AttributeValueMemberL)
	if len(sts) != 1 || !ok || len(cl.Value) == 0 || len(cl.Value) > 10 {
		t.Fatalf("sts = %#v, want {C: [1..10 numbers]}", sts)
	}
	for i, v := range cl.Value {
		x, err := strconv.ParseFloat(v.(*types.AttributeValueMemberN).Value, 64)
		if err != nil || x < 0 || x > 100 {
			if !(x == -1 && i < len(cl.Value)-1) {
				t.Fatalf("sts.C[%d] = %v (%v)", i, x, err)
			}
		}
	}
	opr := item["opr"].(*types.AttributeValueMemberM).Value
	ol, ok := opr["C"].(*types.AttributeValueMemberL)
	if len(opr) != 1 || !ok || len(ol.Value) != 1 || ol.Value[0].(*types.AttributeValueMemberN).Value != "100" {
		t.Fatalf("opr = %#v, want {C: [100]}", opr)
	}
}

// TestIntegrationUpgradeFrom2X: clientVersionConfig =
// CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X on a table without Migration3.0
// creates it as Java (UPGRADE_FROM_2X) and publishes worker metrics into the
// lease table (no legacy tables: a 2.x→3.5 upgrade); the lease scan still
// sees no lease in those items. A rollback to 2X stops the reports, a new
// roll-forward resumes them, and they go on after the flip to
// 3X_WITH_ROLLBACK.
func TestIntegrationUpgradeFrom2X(t *testing.T) {
	f := newFixture(t, false)
	r := start(t, f, properties.ClientVersionCompatible2X)
	waitFor(t, "two reports", func() bool { return r.reports.Load() >= 2 })

	mig := get(t, f.ddb, f.leaseTable, "leaseKey", lease.MigrationKey)
	if got, want := attrNames(mig), []string{"cv", "entityType", "leaseKey", "mb", "mts"}; !slices.Equal(got, want) {
		t.Fatalf("Migration3.0 attributes = %v, want %v (Java MigrationState.serialize, no history yet)", got, want)
	}
	if sAttr(mig, "cv") != lease.ClientVersionUpgr || sAttr(mig, "mb") != "mld-w1" || sAttr(mig, "entityType") != "CLIENT_VERSION_MIGRATION" {
		t.Fatalf("Migration3.0 = %#v", mig)
	}
	if mts := nAttr(t, mig, "mts"); mts < time.Now().Add(-2*time.Minute).UnixMilli() || mts > time.Now().UnixMilli()+5000 {
		t.Fatalf("mts = %d is not now in epoch ms", mts)
	}
	checkWorkerMetricsItem(t, get(t, f.ddb, f.leaseTable, "leaseKey", "mld-w1"), "leaseKey")
	if last := r.m.LastReported(); last == nil || last["C"] < -1 || last["C"] > 100 {
		t.Fatalf("LastReported = %v after reports, want the latest CPU value", last)
	}
	if ls, err := f.store.ListLeases(ctxT(t)); err != nil || len(ls) != 0 {
		t.Fatalf("ListLeases = %v, %v; the 3.x items are not leases", ls, err)
	}

	setCV := func(cv string) {
		mig["cv"] = &types.AttributeValueMemberS{Value: cv}
		put(t, f.ddb, f.leaseTable, mig)
	}
	setCV(lease.ClientVersion2X)
	waitFor(t, "rollback to 2X", func() bool { return r.m.Version() == lease.ClientVersion2X })
	waitFor(t, "no last report in 2X, where nothing is published", func() bool { return r.m.LastReported() == nil })
	n := r.reports.Load()
	time.Sleep(600 * time.Millisecond)
	if got := r.reports.Load(); got > n+1 {
		t.Fatalf("%d reports after the rollback to 2X", got-n)
	}
	setCV(lease.ClientVersionUpgr)
	waitFor(t, "roll-forward", func() bool { return r.m.Version() == lease.ClientVersionUpgr })
	n = r.reports.Load()
	waitFor(t, "reports again", func() bool { return r.reports.Load() >= n+2 })
	setCV(lease.ClientVersion3XRoll)
	waitFor(t, "flip to 3X_WITH_ROLLBACK", func() bool { return r.m.Version() == lease.ClientVersion3XRoll })
	n = r.reports.Load()
	waitFor(t, "reports in 3X_WITH_ROLLBACK (Java keeps reporting there)", func() bool { return r.reports.Load() >= n+2 })
	if !r.versionSeen(lease.ClientVersion2X) {
		t.Fatal("2X not entered")
	}
}

// TestIntegrationDefaultConfigWritesNothing: with the default
// CLIENT_VERSION_CONFIG_3X (and with _PHASE1) on a table without
// Migration3.0, multilangd stays 2.x-compatible (INIT) and writes no
// non-lease item, so Java 2.x workers can still scan the table.
func TestIntegrationDefaultConfigWritesNothing(t *testing.T) {
	for _, cfg := range []string{properties.ClientVersion3X, properties.ClientVersionCompatible2XPhase1} {
		f := newFixture(t, false)
		r := start(t, f, cfg)
		waitFor(t, "initialised", func() bool { return r.m.Version() != "" })
		time.Sleep(400 * time.Millisecond)
		r.stop()
		if v := r.m.Version(); v != lease.ClientVersionInit {
			t.Fatalf("%s: version %s, want INIT", cfg, v)
		}
		out, err := f.ddb.Scan(ctxT(t), &dynamodb.ScanInput{TableName: aws.String(f.leaseTable)})
		if err != nil || len(out.Items) != 0 {
			t.Fatalf("%s: lease table has %d items (%v), want none", cfg, len(out.Items), err)
		}
	}
}

// TestIntegrationLegacyTables: a KCL 3.0–3.4 application (legacy
// CoordinatorState table with Migration3.0 = UPGRADE_FROM_2X, no table
// migration) gets its worker metrics in <app>-WorkerMetricStats keyed by
// wid; once TableMigration3.5 is COMPLETE they go into the lease table.
func TestIntegrationLegacyTables(t *testing.T) {
	f := newFixture(t, true)
	put(t, f.ddb, f.coord, map[string]types.AttributeValue{"key": &types.AttributeValueMemberS{Value: lease.MigrationKey},
		"entityType": &types.AttributeValueMemberS{Value: "CLIENT_VERSION_MIGRATION"},
		"cv":         &types.AttributeValueMemberS{Value: lease.ClientVersionUpgr}, "mb": &types.AttributeValueMemberS{Value: "java-w1"},
		"mts": &types.AttributeValueMemberN{Value: "1700000000000"}})
	r := start(t, f, properties.ClientVersion3X)
	waitFor(t, "a report", func() bool { return r.reports.Load() >= 1 })
	if v := r.m.Version(); v != lease.ClientVersionUpgr {
		t.Fatalf("version %s", v)
	}
	checkWorkerMetricsItem(t, get(t, f.ddb, f.wmTable, "wid", "mld-w1"), "wid")
	if item := get(t, f.ddb, f.leaseTable, "leaseKey", "mld-w1"); item != nil {
		t.Fatalf("worker metrics in the lease table before the table migration: %v", item)
	}
	r.stop()

	put(t, f.ddb, f.coord, map[string]types.AttributeValue{"key": &types.AttributeValueMemberS{Value: lease.TableMigrationKey},
		"entityType": &types.AttributeValueMemberS{Value: "TABLE_MIGRATION"},
		"tm":         &types.AttributeValueMemberS{Value: "TABLE_MIGRATION_STATUS_COMPLETE"}, "mb": &types.AttributeValueMemberS{Value: "java-w1"},
		"mts": &types.AttributeValueMemberN{Value: "1700000000000"}})
	r = start(t, f, properties.ClientVersion3X)
	waitFor(t, "a report", func() bool { return r.reports.Load() >= 1 })
	checkWorkerMetricsItem(t, get(t, f.ddb, f.leaseTable, "leaseKey", "mld-w1"), "leaseKey")
}

// addOwnerIndex adds the KCL 3.x LeaseOwnerToLeaseKeyIndex GSI (Java
// DynamoDBLeaseRefresher.createLeaseOwnerToLeaseKeyIndexIfNotExists) and
// waits until it is ACTIVE.
func addOwnerIndex(t *testing.T, f *fixture) {
	t.Helper()
	_, err := f.ddb.UpdateTable(ctxT(t), &dynamodb.UpdateTableInput{TableName: aws.String(f.leaseTable),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("leaseOwner"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS}},
		GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
			IndexName: aws.String(lease.LeaseOwnerIndex),
			KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("leaseOwner"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeRange}},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly}}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "GSI ACTIVE", func() bool {
		ok, err := f.store.LeaseOwnerIndexActive(ctxT(t))
		return err == nil && ok
	})
}

func leaseItem(key, owner string) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: key},
		"leaseCounter": &types.AttributeValueMemberN{Value: "3"}, "checkpoint": &types.AttributeValueMemberS{Value: "TRIM_HORIZON"},
		"checkpointSubSequenceNumber": &types.AttributeValueMemberN{Value: "0"}, "ownerSwitchesSinceCheckpoint": &types.AttributeValueMemberN{Value: "0"},
		"entityType": &types.AttributeValueMemberS{Value: "LEASE"}}
	if owner != "" {
		item["leaseOwner"] = &types.AttributeValueMemberS{Value: owner}
	}
	return item
}

// TestIntegrationFlipTo3X is Java MigrationReadyMonitor run by multilangd
// as the KCL 2.x leader in UPGRADE_FROM_2X: no flip while a lease is
// unowned, nor while this worker is not the leader; once the GSI is ACTIVE
// and every owner (multilangd and a Java worker) has fresh worker metrics
// for the stabilisation time, Migration3.0 goes to 3X_WITH_ROLLBACK with
// Java's history entry, and multilangd follows it.
func TestIntegrationFlipTo3X(t *testing.T) {
	f := newFixture(t, false)
	addOwnerIndex(t, f)
	put(t, f.ddb, f.leaseTable, map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: lease.MigrationKey},
		"entityType": &types.AttributeValueMemberS{Value: "CLIENT_VERSION_MIGRATION"},
		"cv":         &types.AttributeValueMemberS{Value: lease.ClientVersionUpgr}, "mb": &types.AttributeValueMemberS{Value: "java-w2"},
		"mts": &types.AttributeValueMemberN{Value: "1700000000000"},
		"h": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"cv": &types.AttributeValueMemberS{Value: lease.ClientVersion2X}, "mb": &types.AttributeValueMemberS{Value: "java-w2"},
			"mts": &types.AttributeValueMemberN{Value: "1600000000000"}}}}}})
	put(t, f.ddb, f.leaseTable, leaseItem("shardId-000000000000", "mld-w1"))
	put(t, f.ddb, f.leaseTable, leaseItem("shardId-000000000001", "java-w2"))
	put(t, f.ddb, f.leaseTable, leaseItem("shardId-000000000002", ""))
	// The Java worker's metrics, kept fresh.
	javaCtx, stopJava := context.WithCancel(context.Background())
	javaDone := make(chan struct{})
	go func() {
		defer close(javaDone)
		for javaCtx.Err() == nil {
			item := Item(map[string][]float64{"C": {10}}, map[string][]int64{"C": {100}}, time.Now())
			item["leaseKey"] = &types.AttributeValueMemberS{Value: "java-w2"}
			_, _ = f.ddb.PutItem(javaCtx, &dynamodb.PutItemInput{TableName: aws.String(f.leaseTable), Item: item})
			select {
			case <-javaCtx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { stopJava(); <-javaDone })

	var leader atomic.Bool
	leader.Store(true)
	r := &running{}
	r.m = NewMigration(f.store, f.ddb, MigrationConfig{
		WorkerID: "mld-w1", Configured: properties.ClientVersion3X, LeaseTable: f.leaseTable, LegacyTable: f.wmTable,
		MonitorInterval: 300 * time.Millisecond, InitRetry: 100 * time.Millisecond,
		ReadyInterval: 200 * time.Millisecond, FlipStabilization: time.Second,
		IsLeader: func(context.Context) bool { return leader.Load() },
		Reporter: Config{CaptureFrequency: 20 * time.Millisecond, ReporterFrequency: time.Second,
			OnReport: func(err error, _ time.Duration) {
				if err == nil {
					r.reports.Add(1)
				}
			}},
	}, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	cv := func() string { return sAttr(get(t, f.ddb, f.leaseTable, "leaseKey", lease.MigrationKey), "cv") }
	waitFor(t, "this worker's metrics", func() bool { return r.reports.Load() >= 1 })
	time.Sleep(2500 * time.Millisecond)
	if got := cv(); got != lease.ClientVersionUpgr {
		t.Fatalf("flipped to %s with an unowned lease (Java: the owner set contains null)", got)
	}
	leader.Store(false)
	put(t, f.ddb, f.leaseTable, leaseItem("shardId-000000000002", "java-w2"))
	time.Sleep(2500 * time.Millisecond)
	if got := cv(); got != lease.ClientVersionUpgr {
		t.Fatalf("flipped to %s while not the leader", got)
	}
	leader.Store(true)
	waitFor(t, "the flip", func() bool { return cv() == lease.ClientVersion3XRoll })
	mig := get(t, f.ddb, f.leaseTable, "leaseKey", lease.MigrationKey)
	if got, want := attrNames(mig), []string{"cv", "entityType", "h", "leaseKey", "mb", "mts"}; !slices.Equal(got, want) {
		t.Fatalf("Migration3.0 attributes = %v, want %v", got, want)
	}
	if sAttr(mig, "mb") != "mld-w1" || nAttr(t, mig, "mts") < time.Now().Add(-time.Minute).UnixMilli() {
		t.Fatalf("Migration3.0 = %#v", mig)
	}
	h := mig["h"].(*types.AttributeValueMemberL).Value
	first := h[0].(*types.AttributeValueMemberM).Value
	if len(h) != 2 || sAttr(first, "cv") != lease.ClientVersionUpgr || sAttr(first, "mb") != "java-w2" || nAttr(t, first, "mts") != 1700000000000 ||
		sAttr(h[1].(*types.AttributeValueMemberM).Value, "cv") != lease.ClientVersion2X {
		t.Fatalf("history = %#v, want the previous state prepended (Java MigrationState.addHistoryEntry)", h)
	}
	waitFor(t, "3X_WITH_ROLLBACK in force", func() bool { return r.m.Version() == lease.ClientVersion3XRoll })
}

// TestIntegrationExplicit3XConfig: clientVersionConfig =
// CLIENT_VERSION_CONFIG_3X written in the file creates Migration3.0 =
// CLIENT_VERSION_3X on a table without one (a new multilangd 3.x fleet) and
// finalises CLIENT_VERSION_3X_WITH_ROLLBACK to CLIENT_VERSION_3X with a
// history entry, as Java does; left at the default it writes nothing but
// follows an upgrade another worker starts later.
func TestIntegrationExplicit3XConfig(t *testing.T) {
	f := newFixture(t, false)
	r := startConfigured(t, f, properties.ClientVersion3X, true)
	waitFor(t, "3X", func() bool { return r.versionSeen(lease.ClientVersion3X) })
	if item := get(t, f.ddb, f.leaseTable, "leaseKey", lease.MigrationKey); sAttr(item, "cv") != lease.ClientVersion3X || sAttr(item, "mb") != "mld-w1" {
		t.Fatalf("Migration3.0 = %v", item)
	}
	r.stop()

	f = newFixture(t, false)
	put(t, f.ddb, f.leaseTable, map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: lease.MigrationKey},
		"entityType": &types.AttributeValueMemberS{Value: "CLIENT_VERSION_MIGRATION"}, "cv": &types.AttributeValueMemberS{Value: lease.ClientVersion3XRoll},
		"mb": &types.AttributeValueMemberS{Value: "java"}, "mts": &types.AttributeValueMemberN{Value: "1700000000000"}})
	r = startConfigured(t, f, properties.ClientVersion3X, true)
	waitFor(t, "3X", func() bool { return r.versionSeen(lease.ClientVersion3X) })
	item := get(t, f.ddb, f.leaseTable, "leaseKey", lease.MigrationKey)
	h, _ := item["h"].(*types.AttributeValueMemberL)
	if sAttr(item, "cv") != lease.ClientVersion3X || h == nil || len(h.Value) != 1 {
		t.Fatalf("Migration3.0 after finalising = %v", item)
	}
	r.stop()

	f = newFixture(t, false)
	r = startConfigured(t, f, properties.ClientVersion3X, false)
	waitFor(t, "INIT", func() bool { return r.versionSeen(lease.ClientVersionInit) })
	put(t, f.ddb, f.leaseTable, map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: lease.MigrationKey},
		"entityType": &types.AttributeValueMemberS{Value: "CLIENT_VERSION_MIGRATION"}, "cv": &types.AttributeValueMemberS{Value: lease.ClientVersionUpgr},
		"mb": &types.AttributeValueMemberS{Value: "java"}, "mts": &types.AttributeValueMemberN{Value: "1700000000000"}})
	waitFor(t, "the upgrade followed", func() bool { return r.versionSeen(lease.ClientVersionUpgr) })
}

// TestIntegrationRecheck: a value on Recheck re-reads Migration3.0 at once
// (the lease taker saw a 3.x table), long before MonitorInterval.
func TestIntegrationRecheck(t *testing.T) {
	f := newFixture(t, false)
	recheck := make(chan struct{}, 1)
	var seen atomic.Value
	seen.Store("")
	m := NewMigration(f.store, f.ddb, MigrationConfig{
		WorkerID: "mld-w1", Configured: properties.ClientVersion3X, LeaseTable: f.leaseTable, LegacyTable: f.wmTable,
		MonitorInterval: time.Hour, InitRetry: 100 * time.Millisecond, Recheck: recheck,
		Reporter:  Config{CaptureFrequency: 20 * time.Millisecond, ReporterFrequency: 150 * time.Millisecond},
		OnVersion: func(v string) { seen.Store(v) },
	}, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "INIT", func() bool { return seen.Load() == lease.ClientVersionInit })
	put(t, f.ddb, f.leaseTable, map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: lease.MigrationKey},
		"entityType": &types.AttributeValueMemberS{Value: "CLIENT_VERSION_MIGRATION"}, "cv": &types.AttributeValueMemberS{Value: lease.ClientVersionUpgr},
		"mb": &types.AttributeValueMemberS{Value: "java"}, "mts": &types.AttributeValueMemberN{Value: "1700000000000"}})
	recheck <- struct{}{}
	waitFor(t, "the upgrade followed after the recheck", func() bool { return seen.Load() == lease.ClientVersionUpgr })
}
