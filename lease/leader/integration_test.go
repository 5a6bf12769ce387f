package leader

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
)

// Tests against DynamoDB Local (skipped under -short, never otherwise).
// Short lock durations keep them quick; nothing asserts an upper bound on
// time, only orderings and the lower bound of the stale takeover.

const (
	itLease     = 3 * time.Second
	itHeartbeat = 750 * time.Millisecond
)

func localDynamo(t *testing.T) *dynamodb.Client {
	t.Helper()
	return emus.Get(t, testenv.DynamoDBLocal).DynamoDB()
}

// startDeciders runs n deciders w0…w(n-1) on target with the short durations.
func startDeciders(t *testing.T, api DynamoAPI, target Target, n int) ([]*Decider, []func()) {
	t.Helper()
	var ds []*Decider
	var stops []func()
	for i := range n {
		d, err := New(api, target, Config{WorkerID: fmt.Sprintf("w%d", i), LeaseDuration: itLease, HeartbeatPeriod: itHeartbeat}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
		stops = append(stops, runDecider(t, d))
	}
	return ds, stops
}

// askAll calls IsLeader on every decider at once and returns who said yes.
func askAll(t *testing.T, ds []*Decider) []int {
	var mu sync.Mutex
	var yes []int
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() {
			if d.IsLeader(ctxT(t, 10*time.Second)) {
				mu.Lock()
				yes = append(yes, i)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return yes
}

// TestIntegrationElectExactlyOne: three deciders asked at once elect one
// leader; over several heartbeat periods it stays the only one, and its
// heartbeats change the recordVersionNumber.
func TestIntegrationElectExactlyOne(t *testing.T) {
	api := localDynamo(t)
	st := newLeaseTable(t, api)
	tab := Table{Name: st.Table(), PartitionKey: lease.AttrLeaseKey}
	ds, _ := startDeciders(t, api, st, 3)
	yes := askAll(t, ds)
	if len(yes) != 1 {
		t.Fatalf("leaders %v, want exactly one", yes)
	}
	leader := yes[0]
	rvns := map[string]bool{}
	deadline := time.Now().Add(4 * itHeartbeat)
	for time.Now().Before(deadline) || len(rvns) < 3 {
		if got := askAll(t, ds); len(got) != 1 || got[0] != leader {
			t.Fatalf("leaders %v, want only w%d", got, leader)
		}
		item := rawLock(t, api, tab)
		if strAttr(item, "ownerName") != fmt.Sprintf("w%d", leader) {
			t.Fatalf("lock item %v", item)
		}
		rvns[strAttr(item, "recordVersionNumber")] = true
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("the holder's heartbeats did not change the rvn (%d seen)", len(rvns))
		}
		time.Sleep(itHeartbeat / 3)
	}
}

// TestIntegrationStoppedHolderReleases: a holder that stops deletes the
// lock, and the next uncached IsLeader of another worker takes it (no
// stale wait).
func TestIntegrationStoppedHolderReleases(t *testing.T) {
	api := localDynamo(t)
	st := newLeaseTable(t, api)
	tab := Table{Name: st.Table(), PartitionKey: lease.AttrLeaseKey}
	ds, stops := startDeciders(t, api, st, 2)
	ctx := ctxT(t, 30*time.Second)
	if !ds[0].IsLeader(ctx) || ds[1].IsLeader(ctx) {
		t.Fatal("w0 should lead, w1 not")
	}
	lctx, cancel := ds[0].LeadershipContext(ctx)
	defer cancel()
	stops[0]()
	if context.Cause(lctx) != ErrStopped {
		t.Fatalf("w0's leadership cause %v, want ErrStopped", context.Cause(lctx))
	}
	if item := rawLock(t, api, tab); item != nil {
		t.Fatalf("the stopped holder left its lock: %v", item)
	}
	if ds[0].IsLeader(ctx) {
		t.Fatal("a stopped decider leads")
	}
	time.Sleep(itHeartbeat) // w1's cached no runs out
	if !ds[1].IsLeader(ctx) {
		t.Fatal("w1 did not take the released lock at its next check")
	}
}

// TestIntegrationSIGKILLedHolder: a holder in another process is killed
// with SIGKILL (no release); another worker takes the lock only after it
// has seen the last recordVersionNumber unchanged for the lease duration.
func TestIntegrationSIGKILLedHolder(t *testing.T) {
	e := emus.Get(t, testenv.DynamoDBLocal)
	api := e.DynamoDB()
	st := newLeaseTable(t, api)
	tab := Table{Name: st.Table(), PartitionKey: lease.AttrLeaseKey}
	cmd := startHelper(t, e, tab.Name, "proc", itLease)
	waitFor(t, 60*time.Second, "the helper process to lead", func() bool { return strAttr(rawLock(t, api, tab), "ownerName") == "proc" })
	ds, _ := startDeciders(t, api, st, 1)
	b := ds[0]
	for end := time.Now().Add(itLease + itLease/2); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if b.IsLeader(ctxT(t, 10*time.Second)) {
			t.Fatal("w0 took the lock of a live, heart-beating holder")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	last := strAttr(rawLock(t, api, tab), "recordVersionNumber")
	waitFor(t, 60*time.Second, "w0 to take the dead holder's lock", func() bool { return b.IsLeader(ctxT(t, 10*time.Second)) })
	b.mu.Lock()
	seen, took := b.seen, b.held.lastUpdate
	b.mu.Unlock()
	if seen.rvn != last {
		t.Fatalf("w0 took the lock over rvn %q, the dead holder's last was %q", seen.rvn, last)
	}
	if took.Sub(seen.at) <= itLease {
		t.Fatalf("w0 took the lock %s after first seeing its last rvn, less than the lease duration %s", took.Sub(seen.at), itLease)
	}
	checkJavaLockItem(t, rawLock(t, api, tab), tab, "w0", "3000")
}

// javaHolder scripts a Java worker's lock client on the lock: it writes
// exactly the requests AmazonDynamoDBLockClient writes.
type javaHolder struct {
	api   DynamoAPI
	tab   Table
	owner string
	ld    string
	rvn   atomic.Value
}

func (j *javaHolder) acquire(ctx context.Context) error {
	rvn := uuid.NewString()
	_, err := j.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(j.tab.Name),
		Item:                     javaLockItem(j.tab, j.owner, rvn, j.ld),
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": j.tab.PartitionKey}})
	if err == nil {
		j.rvn.Store(rvn)
	}
	return err
}

func (j *javaHolder) heartbeat(ctx context.Context) error {
	next := uuid.NewString()
	_, err := j.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(j.tab.Name), Key: j.tab.key(),
		ConditionExpression: aws.String("attribute_exists(#pk) AND #rvn = :rvn AND #on = :on"),
		UpdateExpression:    aws.String("SET #ld = :ld, #rvn = :newRvn"),
		ExpressionAttributeNames: map[string]string{"#pk": j.tab.PartitionKey, "#ld": "leaseDuration",
			"#rvn": "recordVersionNumber", "#on": "ownerName"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":rvn": &types.AttributeValueMemberS{Value: j.rvn.Load().(string)}, ":on": &types.AttributeValueMemberS{Value: j.owner},
			":newRvn": &types.AttributeValueMemberS{Value: next}, ":ld": &types.AttributeValueMemberS{Value: j.ld}}})
	if err == nil {
		j.rvn.Store(next)
	}
	return err
}

func (j *javaHolder) release(ctx context.Context) error {
	_, err := j.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(j.tab.Name), Key: j.tab.key(),
		ConditionExpression:      aws.String("attribute_exists(#pk) AND #rvn = :rvn AND #on = :on"),
		ExpressionAttributeNames: map[string]string{"#pk": j.tab.PartitionKey, "#rvn": "recordVersionNumber", "#on": "ownerName"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":rvn": &types.AttributeValueMemberS{Value: j.rvn.Load().(string)}, ":on": &types.AttributeValueMemberS{Value: j.owner}}})
	return err
}

// TestIntegrationJavaLockRespectedThenTakenOver: a Java worker's lock (its
// exact item and heartbeats) is respected while it heart-beats; once it
// stops, multilangd takes it after the lease duration the *item* claims
// (2 s here, not multilangd's own 3 s), and the Java worker's late
// heartbeat and release then fail their conditions.
func TestIntegrationJavaLockRespectedThenTakenOver(t *testing.T) {
	api := localDynamo(t)
	st := newLeaseTable(t, api)
	tab := Table{Name: st.Table(), PartitionKey: lease.AttrLeaseKey}
	java := &javaHolder{api: api, tab: tab, owner: "java-worker", ld: "2000"}
	ctx := ctxT(t, 90*time.Second)
	if err := java.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	ds, _ := startDeciders(t, api, st, 1)
	d := ds[0]
	for range 8 { // 4 s of Java heartbeats every 500 ms: twice its lease duration
		if d.IsLeader(ctx) {
			t.Fatal("multilangd took a live Java worker's lock")
		}
		if err := java.heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if owner, held, _ := d.Observed(); owner != "java-worker" || held {
		t.Fatalf("observed %q held %v", owner, held)
	}
	waitFor(t, 60*time.Second, "multilangd to take the stale Java lock", func() bool { return d.IsLeader(ctx) })
	d.mu.Lock()
	waited := d.held.lastUpdate.Sub(d.seen.at)
	d.mu.Unlock()
	if waited <= 2*time.Second {
		t.Fatalf("took the Java lock %s after first seeing its last rvn (item leaseDuration 2 s)", waited)
	}
	if err := java.heartbeat(ctx); !conditionFailed(err) {
		t.Fatalf("the Java worker's late heartbeat: %v, want ConditionalCheckFailed", err)
	}
	if err := java.release(ctx); !conditionFailed(err) {
		t.Fatalf("the Java worker's late release: %v, want ConditionalCheckFailed", err)
	}
	checkJavaLockItem(t, rawLock(t, api, tab), tab, "w0", "3000")
}

// TestIntegrationLegacyCoordinatorStateTable: while a legacy
// <app>-CoordinatorState table exists and the 3.5 table migration is not
// COMPLETE, the lock lives there (key = "Leader"); once the migration is
// COMPLETE, its holder releases it there at its next heartbeat
// (ErrLockMoved) and the lock is taken again in the lease table.
func TestIntegrationLegacyCoordinatorStateTable(t *testing.T) {
	api := localDynamo(t)
	st := newLeaseTable(t, api)
	legacy := st.Table() + "-CoordinatorState"
	newLegacyTable(t, api, legacy)
	st = st.WithCoordinatorStateTable(legacy)
	ltab := Table{Name: legacy, PartitionKey: "key"}
	ntab := Table{Name: st.Table(), PartitionKey: lease.AttrLeaseKey}
	ds, _ := startDeciders(t, api, st, 2)
	yes := askAll(t, ds)
	if len(yes) != 1 {
		t.Fatalf("leaders %v", yes)
	}
	holder := ds[yes[0]]
	item := rawLock(t, api, ltab)
	checkJavaLockItem(t, item, ltab, holder.cfg.WorkerID, "3000")
	if got := rawLock(t, api, ntab); got != nil {
		t.Fatalf("a Leader item in the lease table too: %v", got)
	}
	lctx, cancel := holder.LeadershipContext(context.Background())
	defer cancel()

	putItem(t, api, ltab, map[string]types.AttributeValue{"key": &types.AttributeValueMemberS{Value: lease.TableMigrationKey},
		"tm": &types.AttributeValueMemberS{Value: "TABLE_MIGRATION_STATUS_COMPLETE"}})
	select {
	case <-lctx.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("the holder kept the legacy lock after the migration completed")
	}
	if context.Cause(lctx) != ErrLockMoved {
		t.Fatalf("cause %v, want ErrLockMoved", context.Cause(lctx))
	}
	// leadership ends first, the delete follows
	waitFor(t, 30*time.Second, "the legacy lock's release", func() bool { return rawLock(t, api, ltab) == nil })
	waitFor(t, 60*time.Second, "a leader in the lease table", func() bool { return len(askAll(t, ds)) == 1 && rawLock(t, api, ntab) != nil })
	item = rawLock(t, api, ntab)
	checkJavaLockItem(t, item, ntab, strAttr(item, "ownerName"), "3000")
	if got := rawLock(t, api, ltab); got != nil {
		t.Fatalf("a Leader item in the legacy table again: %v", got)
	}
}

// TestIntegrationGoldenLockItem: the items multilangd writes, compared
// field by field with the lock client's shapes, through acquire (absent and
// released), heartbeat and release, with Java's default durations.
func TestIntegrationGoldenLockItem(t *testing.T) {
	api := localDynamo(t)
	st := newLeaseTable(t, api)
	tab := Table{Name: st.Table(), PartitionKey: lease.AttrLeaseKey}
	d, err := New(api, st, Config{WorkerID: "golden"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := runDecider(t, d)
	ctx := ctxT(t, 30*time.Second)
	if !d.IsLeader(ctx) {
		t.Fatal("no lead")
	}
	first := rawLock(t, api, tab)
	checkJavaLockItem(t, first, tab, "golden", "120000")
	d.heartbeatOnce(ctx)
	beat := rawLock(t, api, tab)
	checkJavaLockItem(t, beat, tab, "golden", "120000")
	if strAttr(beat, "recordVersionNumber") == strAttr(first, "recordVersionNumber") {
		t.Fatal("the heartbeat kept the rvn")
	}
	stop()
	if got := rawLock(t, api, tab); got != nil {
		t.Fatalf("release left %v", got)
	}

	released := javaLockItem(tab, "java", uuid.NewString(), "120000")
	released["isReleased"] = &types.AttributeValueMemberS{Value: "1"}
	putItem(t, api, tab, released)
	d2, err := New(api, st, Config{WorkerID: "golden2"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runDecider(t, d2)
	if !d2.IsLeader(ctx) {
		t.Fatal("a released lock was not taken")
	}
	checkJavaLockItem(t, rawLock(t, api, tab), tab, "golden2", "120000")
}

// cutAPI is a DynamoDB client that can be cut off, as from a worker whose
// network is gone: every request fails while cut.
type cutAPI struct {
	DynamoAPI
	cut atomic.Bool
}

var errCut = fmt.Errorf("network cut (test)")

func (c *cutAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.DynamoAPI.GetItem(ctx, in, o...)
}

func (c *cutAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.DynamoAPI.PutItem(ctx, in, o...)
}

func (c *cutAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.DynamoAPI.UpdateItem(ctx, in, o...)
}

func (c *cutAPI) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.DynamoAPI.DeleteItem(ctx, in, o...)
}

// stealStale is a Java worker's non-blocking acquire of a held lock: read
// the rvn, read it again after more than the lease duration the item
// claims, and put its own lock on condition that the rvn is unchanged.
func (j *javaHolder) stealStale(ctx context.Context, wait time.Duration) error {
	first := strAttrOf(j.api, ctx, j.tab)
	time.Sleep(wait)
	rvn := uuid.NewString()
	_, err := j.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(j.tab.Name),
		Item:                      javaLockItem(j.tab, j.owner, rvn, j.ld),
		ConditionExpression:       aws.String("attribute_exists(#pk) AND #rvn = :rvn"),
		ExpressionAttributeNames:  map[string]string{"#pk": j.tab.PartitionKey, "#rvn": "recordVersionNumber"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":rvn": &types.AttributeValueMemberS{Value: first}}})
	if err == nil {
		j.rvn.Store(rvn)
	}
	return err
}

func strAttrOf(api DynamoAPI, ctx context.Context, tab Table) string {
	out, err := api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tab.Name), Key: tab.key(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return ""
	}
	return strAttr(out.Item, "recordVersionNumber")
}

// TestIntegrationJavaTakesOverFromMultilangd: the other direction. A Java
// worker cannot take multilangd's lock while it heart-beats (the rvn it
// waited on has changed); once multilangd's network is cut (no heartbeat,
// no release) multilangd stops leading on its own first, and the Java
// worker's stale acquire succeeds.
func TestIntegrationJavaTakesOverFromMultilangd(t *testing.T) {
	local := localDynamo(t)
	api := &cutAPI{DynamoAPI: local}
	st := newLeaseTable(t, local)
	tab := Table{Name: st.Table(), PartitionKey: lease.AttrLeaseKey}
	d, err := New(api, StaticTarget(tab), Config{WorkerID: "m", LeaseDuration: itLease, HeartbeatPeriod: itHeartbeat}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runDecider(t, d)
	ctx := ctxT(t, 90*time.Second)
	if !d.IsLeader(ctx) {
		t.Fatal("no lead")
	}
	lctx, cancel := d.LeadershipContext(context.Background())
	defer cancel()
	java := &javaHolder{api: local, tab: tab, owner: "java-worker", ld: "120000"}
	// the item claims multilangd's 3 s; Java waits longer than that
	if err := java.stealStale(ctx, itLease+500*time.Millisecond); !conditionFailed(err) {
		t.Fatalf("Java's stale acquire of a heart-beating lock: %v, want ConditionalCheckFailed", err)
	}
	api.cut.Store(true)
	// multilangd's own expiry comes before the end of Java's wait by the
	// extra 1.5 s at least (its last heartbeat was sent before Java's read)
	if err := java.stealStale(ctx, itLease+1500*time.Millisecond); err != nil {
		t.Fatalf("Java's stale acquire of a dead lock: %v", err)
	}
	if context.Cause(lctx) != ErrLockExpired {
		t.Fatalf("multilangd still leading when Java took the lock (cause %v)", context.Cause(lctx))
	}
	if d.IsLeader(ctx) {
		t.Fatal("multilangd leads after Java took over")
	}
	api.cut.Store(false)
	if err := java.heartbeat(ctx); err != nil {
		t.Fatalf("Java's heartbeat of its new lock: %v", err)
	}
}
