package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/workermetrics"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fixedNow is the clock of the golden outputs.
var fixedNow = time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)

type itemList []map[string]types.AttributeValue

func (l itemList) RawItems(context.Context) ([]map[string]types.AttributeValue, error) { return l, nil }

// fakeScan serves Scan and GetItem from in-memory tables; a table not in
// it does not exist.
type fakeScan map[string]itemList

func (f fakeScan) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	items, ok := f[aws.ToString(in.TableName)]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	}
	for _, it := range items {
		match := true
		for k, v := range in.Key {
			match = match && stringAttr(it, k) == v.(*types.AttributeValueMemberS).Value
		}
		if match {
			return &dynamodb.GetItemOutput{Item: it}, nil
		}
	}
	return &dynamodb.GetItemOutput{}, nil
}

func (f fakeScan) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	items, ok := f[aws.ToString(in.TableName)]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	}
	return &dynamodb.ScanOutput{Items: items}, nil
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// leaseItem is a lease item as DynamoDBLeaseSerializer writes it, with the
// 3.x throughputKBps and checkpointOwner when given.
func leaseItem(t *testing.T, l lease.Lease) map[string]types.AttributeValue {
	t.Helper()
	item, err := lease.MarshalItem(l)
	if err != nil {
		t.Fatal(err)
	}
	if l.Owner != "" {
		item[lease.AttrLeaseOwner] = s(l.Owner)
	}
	if l.ThroughputKBps != nil {
		item[lease.AttrThroughputKBps] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(*l.ThroughputKBps, 'f', -1, 64)}
	}
	if l.CheckpointOwner != "" {
		item[lease.AttrCheckpointOwner] = s(l.CheckpointOwner)
	}
	return item
}

// metricsItem is a WorkerMetricStats item of the 3.5 lease table
// (WorkerMetricStats.LeaseTableWorkerMetricStats).
func metricsItem(id string, sts map[string][]float64, opr map[string][]int64, lut time.Time) map[string]types.AttributeValue {
	item := workermetrics.Item(sts, opr, lut)
	item[workermetrics.LeaseTableKey] = s(id)
	return item
}

func tp(v float64) *float64 { return &v }

// threeXTable is a 3.5 single-table lease table with every kind of item.
func threeXTable(t *testing.T) itemList {
	cpu := map[string][]int64{workermetrics.CPUShortName: {100}}
	return itemList{
		{"leaseKey": s(lease.MigrationKey), "entityType": s(lease.EntityTypeClientVersion), "cv": s(lease.ClientVersion3XRoll),
			"mb": s("worker-a"), "mts": n(fixedNow.Add(-time.Hour).UnixMilli()),
			"h": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"cv": s(lease.ClientVersionUpgr), "mb": s("worker-b"), "mts": n(fixedNow.Add(-2 * time.Hour).UnixMilli())}}}}},
		{"leaseKey": s(lease.TableMigrationKey), "entityType": s("TABLE_MIGRATION"), "tm": s("TABLE_MIGRATION_STATUS_COMPLETE"),
			"mb": s("worker-a"), "mts": n(fixedNow.Add(-3 * time.Hour).UnixMilli())},
		{"leaseKey": s(lease.LeaderKey), "entityType": s("LEADER"), "ownerName": s("worker-a"), "leaseDuration": s("20000"),
			"recordVersionNumber": s("0f6c6b5e-1c1a-4d43-9b0e-7d5b2f1e9a11")},
		metricsItem("worker-a", map[string][]float64{"C": {30, 37.5}}, cpu, fixedNow.Add(-10*time.Second)),
		metricsItem("worker-b", map[string][]float64{"C": {12}}, cpu, fixedNow.Add(-5*time.Minute)),
		metricsItem("worker-c", map[string][]float64{"C": {50, -1}}, cpu, fixedNow.Add(-3*time.Second)),
		metricsItem("worker-d", map[string][]float64{}, map[string][]int64{}, fixedNow.Add(-20*time.Second)),
		{"leaseKey": s("stream-1"), "entityType": s("STREAM"), "streamId": s("123:s:1")},
		leaseItem(t, lease.Lease{Key: "shardId-000000000000", Owner: "worker-a", Counter: 12, Checkpoint: seqnum.New("4961", 0), ThroughputKBps: tp(10.5)}),
		leaseItem(t, lease.Lease{Key: "shardId-000000000001", Owner: "worker-b", CheckpointOwner: "worker-a", Counter: 30,
			Checkpoint: seqnum.New("4962", 0), ThroughputKBps: tp(2.25)}),
		leaseItem(t, lease.Lease{Key: "shardId-000000000002", Owner: "worker-e", Counter: 3, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}),
		leaseItem(t, lease.Lease{Key: "shardId-000000000003", Counter: 1, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}),
	}
}

func testConfig() *properties.Config {
	return &properties.Config{TableName: "app", ApplicationName: "app", StreamName: "s", WorkerMetricsReporterFreq: 30 * time.Second,
		CoordinatorStateTable: properties.TableConfig{TableName: "app-CoordinatorState"},
		WorkerMetricsTable:    properties.TableConfig{TableName: "app-WorkerMetricStats"}}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// The 3.x view of a 3.5 single-table layout: client version, table
// migration, leader, each worker by Java's activity rule (active, expired,
// failing, throughput-only, no metrics), hand-offs and the throughput column.
func TestLeasesGolden3X(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		var buf bytes.Buffer
		opts := leasesOptions{JSON: asJSON, Now: fixedNow, Legacy: legacyTables{api: fakeScan{}, coordinatorState: "app-CoordinatorState", wmetrics: "app-WorkerMetricStats"}}
		if err := writeLeaseTable(context.Background(), &buf, testConfig(), threeXTable(t), opts); err != nil {
			t.Fatal(err)
		}
		name := "leases-3x.txt"
		if asJSON {
			name = "leases-3x.json"
		}
		checkGolden(t, name, buf.String())
	}
}

// A KCL 3.0–3.4 layout: the coordinator state and the worker metrics in the
// legacy tables (keys key and wid); the lease table holds only leases.
func TestLeasesGoldenLegacyTables(t *testing.T) {
	all := threeXTable(t)
	var leases, coord, wm itemList
	for _, it := range all {
		switch key := stringAttr(it, "leaseKey"); {
		case key == lease.MigrationKey || key == lease.LeaderKey:
			c := map[string]types.AttributeValue{}
			for k, v := range it {
				if k != "leaseKey" && k != "entityType" {
					c[k] = v
				}
			}
			c["key"] = s(key)
			coord = append(coord, c)
		case stringAttr(it, "entityType") == workermetrics.EntityType:
			c := map[string]types.AttributeValue{}
			for k, v := range it {
				if k != "leaseKey" {
					c[k] = v
				}
			}
			c["wid"] = s(key)
			wm = append(wm, c)
		case stringAttr(it, "entityType") == lease.EntityTypeLease:
			leases = append(leases, it)
		}
	}
	var buf bytes.Buffer
	opts := leasesOptions{Now: fixedNow, Legacy: legacyTables{api: fakeScan{"app-CoordinatorState": coord, "app-WorkerMetricStats": wm},
		coordinatorState: "app-CoordinatorState", wmetrics: "app-WorkerMetricStats"}}
	if err := writeLeaseTable(context.Background(), &buf, testConfig(), leases, opts); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "leases-legacy.txt", buf.String())
}

// A 2.x table prints exactly what it printed before the 3.x view existed:
// no 3.x section, no throughput column.
func TestLeases2XUnchanged(t *testing.T) {
	items := itemList{
		leaseItem(t, lease.Lease{Key: "shardId-000000000001", Owner: "w1", Counter: 4, Checkpoint: seqnum.New("49", 2)}),
		leaseItem(t, lease.Lease{Key: "shardId-000000000000", Counter: 9, Checkpoint: seqnum.Sentinel(seqnum.ShardEnd),
			ChildShardIDs: []string{"shardId-000000000001"}}),
	}
	var buf bytes.Buffer
	opts := leasesOptions{Now: fixedNow, Legacy: legacyTables{api: fakeScan{}, coordinatorState: "app-CoordinatorState", wmetrics: "app-WorkerMetricStats"}}
	if err := writeLeaseTable(context.Background(), &buf, testConfig(), items, opts); err != nil {
		t.Fatal(err)
	}
	want := `lease table app (application app, stream s): 2 leases
LEASE KEY             OWNER  COUNTER  CHECKPOINT  PARENTS  CHILDREN              STATE
shardId-000000000000  -      9        SHARD_END   -        shardId-000000000001  SHARD_END
shardId-000000000001  w1     4        49/2        -        -                     OWNED
`
	if got := buf.String(); got != want {
		t.Errorf("2.x output changed:\n--- got\n%s--- want\n%s", got, want)
	}

	// Without the right to read the legacy tables (an IAM policy for the
	// lease table only): one line more, no 3.x section.
	buf.Reset()
	opts.Legacy.api = deniedScan{}
	if err := writeLeaseTable(context.Background(), &buf, testConfig(), items, opts); err != nil {
		t.Fatal(err)
	}
	wantDenied := want + "could not read: app-CoordinatorState: api error AccessDeniedException: denied; app-WorkerMetricStats: api error AccessDeniedException: denied\n"
	if got := buf.String(); got != wantDenied {
		t.Errorf("2.x output with unreadable legacy tables:\n--- got\n%s--- want\n%s", got, wantDenied)
	}
}

// deniedScan refuses every read, as DynamoDB does without the permission.
type deniedScan struct{}

func (deniedScan) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "denied"}
}

func (deniedScan) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "denied"}
}

// Java's activity rule, case by case (WorkerMetricStats.isValidWorkerMetric,
// isExpired, isAnyWorkerMetricFailing).
func TestWorkerActivityRule(t *testing.T) {
	cpu := map[string][]int64{"C": {100}}
	for _, c := range []struct {
		name   string
		item   map[string]types.AttributeValue
		reason string
	}{
		{"fresh", metricsItem("w", map[string][]float64{"C": {1}}, cpu, fixedNow.Add(-60*time.Second)), ""},
		{"just expired", metricsItem("w", map[string][]float64{"C": {1}}, cpu, fixedNow.Add(-61*time.Second)), "expired"},
		{"last value -1", metricsItem("w", map[string][]float64{"C": {-1}}, cpu, fixedNow), "failing"},
		{"earlier -1 recovered", metricsItem("w", map[string][]float64{"C": {-1, 3}}, cpu, fixedNow), ""},
		{"no operating range for a metric", metricsItem("w", map[string][]float64{"C": {1}}, map[string][]int64{"M": {100}}, fixedNow), "invalid"},
		{"max utilisation 0", metricsItem("w", map[string][]float64{"C": {1}}, map[string][]int64{"C": {0}}, fixedNow), "invalid"},
		{"throughput only", metricsItem("w", nil, nil, fixedNow), ""},
		{"no lut", map[string]types.AttributeValue{"leaseKey": s("w"), "entityType": s(workermetrics.EntityType)}, "invalid"},
	} {
		w := workerFromMetrics("w", rawItem{table: "app", item: c.item}, time.Minute, fixedNow)
		if w.Active != (c.reason == "") || w.Inactive != c.reason {
			t.Errorf("%s: active %v reason %q, want reason %q", c.name, w.Active, w.Inactive, c.reason)
		}
	}
}

// TestLeasesCommandKCL3 runs `multilangd leases` against DynamoDB Local on a
// 3.5 single-table layout whose items were written by multilangd's own
// writers (Migration3.0, worker metrics, renew with throughputKBps) and in
// Java's shapes (Leader lock, a W9 hand-off), as text and as JSON.
func TestLeasesCommandKCL3(t *testing.T) {
	ddb := testenv.StartT(t, testenv.DynamoDBLocal)
	client := ddb.DynamoDB()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const app = "ops3x"
	store := lease.NewDynamoStore(client, app, zap.NewNop()).WithCoordinatorStateTable(app + "-CoordinatorState")
	if err := store.CreateTableIfNotExists(ctx, lease.TableOptions{PollInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if ok, err := store.CreateMigrationState(ctx, lease.ClientVersionUpgr, "worker-a", now.Add(-time.Hour)); !ok || err != nil {
		t.Fatalf("create Migration3.0: %v %v", ok, err)
	}
	if ok, err := store.UpdateClientVersion(ctx, lease.ClientVersionUpgr, lease.ClientVersion3XRoll, "worker-b", now); !ok || err != nil {
		t.Fatalf("update Migration3.0: %v %v", ok, err)
	}
	putItems(ctx, t, client, app,
		map[string]types.AttributeValue{"leaseKey": s(lease.LeaderKey), "entityType": s("LEADER"), "ownerName": s("worker-b"),
			"leaseDuration": s("20000"), "recordVersionNumber": s("8d8a1b57-4f0e-4e0b-9d43-2c1f4f1d2e33")},
		metricsItem("worker-b", map[string][]float64{"C": {20, 42.5}}, map[string][]int64{"C": {100}}, now))
	rep, err := workermetrics.NewReporter(client, workermetrics.Config{WorkerID: "worker-a", DisableCPU: true,
		Target: workermetrics.Target{Table: app, PartitionKey: workermetrics.LeaseTableKey}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Report(ctx); err != nil {
		t.Fatal(err)
	}
	for i, owner := range []string{"worker-a", "worker-b"} {
		l := lease.Lease{Key: fmt.Sprintf("shardId-%012d", i), Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}
		if _, err := store.CreateLeaseIfNotExists(ctx, l); err != nil {
			t.Fatal(err)
		}
		if err := store.TakeLease(ctx, l, owner); err != nil {
			t.Fatal(err)
		}
		l.Owner, l.Counter, l.ThroughputKBps = owner, 1, tp(float64(i+1)*1.5)
		if err := store.RenewLease(ctx, l, true); err != nil {
			t.Fatal(err)
		}
	}
	// A W9 graceful hand-off of shard 0 from worker-a to worker-b
	// (LeaseAssignmentManager: leaseOwner = new, checkpointOwner = old).
	if _, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(app),
		Key:                       map[string]types.AttributeValue{"leaseKey": s("shardId-000000000000")},
		UpdateExpression:          aws.String("SET leaseOwner = :new, checkpointOwner = :old"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":new": s("worker-b"), ":old": s("worker-a")}}); err != nil {
		t.Fatal(err)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", testenv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.SecretKey)
	props := writeFile(t, "app.properties", "executableName = sh app.py\napplicationName = "+app+"\nstreamName = s\n"+
		"AwsCredentialsProvider = EnvironmentVariableCredentialsProvider\nregionName = us-east-1\ndynamoDBEndpoint = "+ddb.Endpoint+"\n")
	h := &harness{}
	if code := h.run("leases", "-p", props); code != 0 {
		t.Fatalf("leases exited %d: %s", code, h.stderr.String())
	}
	out := h.stdout.String()
	t.Logf("\n%s", out)
	for _, want := range []string{"THROUGHPUT KBPS", "client version:  CLIENT_VERSION_3X_WITH_ROLLBACK (set by worker-b at ",
		"; 1 earlier in its history)", "leader:          worker-b (lock held, lease duration 20s, recordVersionNumber 8d8a1b57-",
		"workers: 2, 2 active", "throughput only", "C 42.5/100", "hand-offs in progress: 1",
		"shardId-000000000000  worker-a                worker-b"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	h = &harness{}
	if code := h.run("leases", "-p", props, "--json"); code != 0 {
		t.Fatalf("leases --json exited %d: %s", code, h.stderr.String())
	}
	var v leasesView
	if err := json.Unmarshal(h.stdout.Bytes(), &v); err != nil {
		t.Fatalf("%v:\n%s", err, h.stdout.String())
	}
	k := v.KCL3
	if k == nil || k.ClientVersion == nil || k.ClientVersion.Version != lease.ClientVersion3XRoll || k.Leader == nil || k.Leader.Owner != "worker-b" {
		t.Fatalf("kcl3 = %+v", k)
	}
	if len(k.Workers) != 2 || k.Workers[0].Leases != 1 || *v.Leases[0].ThroughputKBps != 1.5 || k.Workers[1].ThroughputKBps != 3 {
		t.Errorf("workers = %+v, leases = %+v", k.Workers, v.Leases)
	}
	if len(k.Handoffs) != 1 || k.Handoffs[0] != (handoffView{Key: "shardId-000000000000", From: "worker-a", To: "worker-b"}) {
		t.Errorf("hand-offs = %+v", k.Handoffs)
	}
}

func putItems(ctx context.Context, t *testing.T, c *dynamodb.Client, table string, items ...map[string]types.AttributeValue) {
	t.Helper()
	for _, it := range items {
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLeasesLegacyTablesOnDynamoDBLocal: a KCL 3.0–3.4 layout on DynamoDB
// Local, the coordinator state in <app>-CoordinatorState (key) and the
// worker metrics in <app>-WorkerMetricStats (wid), written by multilangd's
// writers, which pick those tables as Java's DAOs do.
func TestLeasesLegacyTablesOnDynamoDBLocal(t *testing.T) {
	ddb := testenv.StartT(t, testenv.DynamoDBLocal)
	client := ddb.DynamoDB()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const app = "opslegacy"
	store := lease.NewDynamoStore(client, app, zap.NewNop()).WithCoordinatorStateTable(app + "-CoordinatorState")
	if err := store.CreateTableIfNotExists(ctx, lease.TableOptions{PollInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for table, pk := range map[string]string{app + "-CoordinatorState": "key", app + "-WorkerMetricStats": "wid"} {
		if _, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String(table),
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(pk), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash}},
			BillingMode:          types.BillingModePayPerRequest}); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := store.CreateMigrationState(ctx, lease.ClientVersionUpgr, "worker-a", time.Now()); !ok || err != nil {
		t.Fatalf("create Migration3.0: %v %v", ok, err)
	}
	putItems(ctx, t, client, app+"-CoordinatorState", map[string]types.AttributeValue{"key": s(lease.LeaderKey),
		"ownerName": s("worker-a"), "leaseDuration": s("10000"), "recordVersionNumber": s("r1"), "isReleased": s("1")})
	rep, err := workermetrics.NewReporter(client, workermetrics.Config{WorkerID: "worker-a", DisableCPU: true,
		Target: workermetrics.Target{Table: app + "-WorkerMetricStats", PartitionKey: workermetrics.LegacyTableKey}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Report(ctx); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	cfg := testConfig()
	cfg.TableName, cfg.ApplicationName = app, app
	opts := leasesOptions{Now: time.Now(), Legacy: legacyTables{api: client, coordinatorState: app + "-CoordinatorState", wmetrics: app + "-WorkerMetricStats"}}
	if err := writeLeaseTable(ctx, &buf, cfg, store, opts); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Logf("\n%s", out)
	for _, want := range []string{"client version:  CLIENT_VERSION_UPGRADE_FROM_2X (set by worker-a at ",
		"; 0 earlier in its history) [in opslegacy-CoordinatorState]",
		"leader:          worker-a (lock released, lease duration 10s, recordVersionNumber r1) [in opslegacy-CoordinatorState]",
		"workers: 1, 1 active", "yes [in opslegacy-WorkerMetricStats]", "hand-offs in progress: 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
