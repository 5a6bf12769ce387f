package assemble

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/workermetrics"
)

// fleetWorker is one worker of an in-process KCL 3.x fleet, wired as the
// daemon wires it (newStore, newThreeX, newMigration) minus the shard
// consumers: the coordinator, the client-version follower with its worker
// metrics, the lock decider and the LeaseAssignmentManager.
type fleetWorker struct {
	id    string
	store *lease.DynamoStore
	coord *lease.Coordinator
	x     *threeX
	m     *workermetrics.Migration

	mu    sync.Mutex
	takes map[string]int // TakeResult.Skipped → count ("" = a taker run that ran)

	stop func()
}

func (w *fleetWorker) takeRuns(skipped string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.takes[skipped]
}

func (w *fleetWorker) held() map[string]bool {
	m := map[string]bool{}
	for _, h := range w.coord.Held() {
		m[h.Lease.Key] = true
	}
	return m
}

// fleetProps are the properties of a fast fleet: 2 s failover, a 2 s
// Leader lock heart-beaten every 500 ms, assignment every 4 s (2 × failover), worker
// metrics every 500 ms.
const fleetProps = `applicationName = %s
streamName = s
executableName = true
regionName = us-east-1
AwsCredentialsProvider = DefaultCredentialsProvider
workerId = %s
failoverTimeMillis = 2000
workerMetricsReporterFreqInMillis = 500
inMemoryWorkerMetricsCaptureFrequencyMillis = 100
dynamoDbLockBasedLeaderLeaseDurationInMillis = 2000
dynamoDbLockBasedLeaderHeartbeatPeriodInMillis = 500
%s
`

func startFleetWorker(t *testing.T, client *dynamodb.Client, app, id, extra string) *fleetWorker {
	t.Helper()
	cfg, err := properties.Parse(id+".properties", fmt.Appendf(nil, fleetProps, app, id, extra))
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named(id)
	w := &fleetWorker{id: id, store: newStore(cfg, client, log), takes: map[string]int{}}
	w.coord = lease.NewCoordinator(w.store, lease.CoordinatorConfig{WorkerID: id, FailoverTime: cfg.FailoverTime,
		TakerPeriod: 500 * time.Millisecond, EnablePriorityLeaseAssignment: true, AwaitMode: true,
		GracefulLeaseHandoffTimeout: cfg.GracefulLeaseHandoffTimeout,
		OnTake: func(r lease.TakeResult) {
			w.mu.Lock()
			w.takes[r.Skipped]++
			w.mu.Unlock()
		}}, log.Named("coordinator"))
	w.x = newThreeX(cfg, w.store, w.coord, log.Named("threex"))
	w.m = newMigration(cfg, w.store, w.coord, client, w.x, nil, log.Named("clientversion"))
	ctx, cancel := context.WithCancel(context.Background())
	coordDone := make(chan struct{})
	go func() { // owned by stop
		defer close(coordDone)
		_ = w.coord.Run(ctx)
	}()
	stopMigration := startMigration(ctx, w.m, w.x)
	var once sync.Once
	w.stop = func() {
		once.Do(func() {
			cancel()
			stopMigration()
			<-coordDone
		})
	}
	t.Cleanup(w.stop)
	return w
}

var fleetSeq int

func newFleetTable(t *testing.T, client *dynamodb.Client, leases int) (string, []string) {
	t.Helper()
	fleetSeq++
	app := fmt.Sprintf("fleet3x-%d-%d", time.Now().UnixNano()%1e9, fleetSeq)
	st := lease.NewDynamoStore(client, app, zap.NewNop())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.CreateTableIfNotExists(ctx, lease.TableOptions{PollInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := range leases {
		k := fmt.Sprintf("shardId-%012d", i)
		if _, err := st.CreateLeaseIfNotExists(ctx, lease.Lease{Key: k, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return app, keys
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func leasesOf(t *testing.T, st *lease.DynamoStore) map[string]lease.Lease {
	t.Helper()
	ls, err := st.ListLeases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]lease.Lease{}
	for _, l := range ls {
		m[l.Key] = l
	}
	return m
}

func lockItem(t *testing.T, client *dynamodb.Client, app string) map[string]types.AttributeValue {
	t.Helper()
	out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(app),
		Key: map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: lease.LeaderKey}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func strAttr(item map[string]types.AttributeValue, k string) string {
	if v, ok := item[k].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// TestThreeXFleet: three multilangd workers with clientVersionConfig =
// CLIENT_VERSION_CONFIG_3X written on a new table (DynamoDB Local): the
// first creates Migration3.0 = CLIENT_VERSION_3X and the lease-owner index;
// all run in 3.x mode (no taking); one holds the Leader lock; its
// LeaseAssignmentManager (LEASE_COUNT_BASED) assigns every lease (W8),
// balances them 2/2/2 (a live lease moves with W9, transferred by its old
// owner after the hand-off timeout: there is no child here) and each worker
// holds what is assigned to it; a stopped worker's leases expire and are
// re-assigned to the others with W8.
func TestThreeXFleet(t *testing.T) {
	ddb := testenv.StartT(t, testenv.DynamoDBLocal)
	client := ddb.DynamoDB()
	app, keys := newFleetTable(t, client, 6)
	ws := map[string]*fleetWorker{}
	for _, id := range []string{"w1", "w2", "w3"} {
		ws[id] = startFleetWorker(t, client, app, id, "clientVersionConfig = CLIENT_VERSION_CONFIG_3X\n"+
			"leaseAssignmentStrategy = LEASE_COUNT_BASED\ngracefulLeaseHandoffTimeoutMillis = 1000")
	}
	st := ws["w1"].store
	waitUntil(t, 90*time.Second, "every lease held by the worker it is assigned to, 2 per worker", func() bool {
		ls := leasesOf(t, st)
		per := map[string]int{}
		for _, k := range keys {
			w := ws[ls[k].Owner]
			if w == nil || !w.held()[k] || ls[k].CheckpointOwner != "" {
				return false
			}
			per[w.id]++
		}
		return per["w1"] == 2 && per["w2"] == 2 && per["w3"] == 2
	})
	cs, err := st.CoordinatorState(context.Background())
	if err != nil || cs.ClientVersion != lease.ClientVersion3X {
		t.Fatalf("Migration3.0: %+v %v", cs, err)
	}
	if ok, err := st.LeaseOwnerIndexActive(context.Background()); !ok || err != nil {
		t.Fatalf("lease-owner index active = %v, %v", ok, err)
	}
	leaderID := strAttr(lockItem(t, client, app), "ownerName")
	leaders := 0
	for id, w := range ws {
		if st, ok := w.x.Status(); ok && st.Leading {
			leaders++
			if id != leaderID {
				t.Fatalf("%s assigns while the lock is owned by %s", id, leaderID)
			}
		}
		if w.takeRuns("") != 0 || w.takeRuns("3x-table") != 0 {
			t.Fatalf("%s taker runs %v: it must not take in 3.x mode", id, w.takes)
		}
	}
	if leaders != 1 || ws[leaderID] == nil {
		t.Fatalf("%d workers assign as the leader (lock owner %q)", leaders, leaderID)
	}
	owners := map[string]int{}
	for _, l := range leasesOf(t, st) {
		owners[l.Owner]++
	}
	lst, _ := ws[leaderID].x.Status()
	t.Logf("leader %s, assignment %v, W8 %d, W9 %d", leaderID, owners, lst.TotalAssigned, lst.TotalHandoffsStarted)

	// Stop a worker that is not the leader and holds leases (no release):
	// its leases expire on the leader's clock and are re-assigned (W8).
	var victim *fleetWorker
	for id, w := range ws {
		if id != leaderID && owners[id] > 0 {
			victim = w
		}
	}
	if victim == nil {
		t.Fatalf("no non-leader holds a lease: %v", owners)
	}
	before := leasesOf(t, st)
	victim.stop()
	waitUntil(t, 60*time.Second, "the stopped worker's leases re-assigned and held", func() bool {
		ls := leasesOf(t, st)
		for _, k := range keys {
			w := ws[ls[k].Owner]
			if ls[k].Owner == victim.id || w == nil || !w.held()[k] {
				return false
			}
		}
		return true
	})
	for k, l := range leasesOf(t, st) {
		if before[k].Owner == victim.id && (l.CheckpointOwner != "" || l.Counter <= before[k].Counter) {
			t.Fatalf("%s re-assigned without W8: before %+v after %+v", k, before[k], l)
		}
	}
	if s, ok := ws[leaderID].x.Status(); !ok || !s.Leading || s.LastRun.TotalLeases != len(keys) || s.ConsecutiveFailures != 0 {
		t.Fatalf("leader's assignment manager status %+v", s)
	}
}

// TestThreeXResumesCrashedJavaFleet: a KCL 3.5 table whose Java fleet
// crashed (Migration3.0 = CLIENT_VERSION_3X, a Leader lock nobody
// heart-beats, leases of a dead Java worker): a multilangd worker with the
// default configuration enters 3.x mode, takes the lock once it has seen
// it unchanged for its lease duration, and its LeaseAssignmentManager
// assigns it the expired leases (W8); non-lease items other than the lock
// are untouched.
func TestThreeXResumesCrashedJavaFleet(t *testing.T) {
	ddb := testenv.StartT(t, testenv.DynamoDBLocal)
	client := ddb.DynamoDB()
	app, keys := newFleetTable(t, client, 0)
	put := func(item map[string]types.AttributeValue) {
		if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(app), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	put(map[string]types.AttributeValue{"leaseKey": s(lease.LeaderKey), "entityType": s("LEADER"), "ownerName": s("java3-w1"),
		"leaseDuration": s("2000"), "recordVersionNumber": s(uuid.NewString())})
	put(map[string]types.AttributeValue{"leaseKey": s(lease.MigrationKey), "entityType": s("CLIENT_VERSION_MIGRATION"),
		"cv": s(lease.ClientVersion3X), "mb": s("java3-w1"), "mts": n("1700000000000")})
	put(map[string]types.AttributeValue{"leaseKey": s(lease.TableMigrationKey), "entityType": s("TABLE_MIGRATION"),
		"tm": s("TABLE_MIGRATION_STATUS_COMPLETE"), "mb": s("java3-w1"), "mts": n("1700000000000")})
	for i := range 3 {
		k := fmt.Sprintf("shardId-%012d", i)
		put(map[string]types.AttributeValue{"leaseKey": s(k), "leaseOwner": s("java3-w1"), "leaseCounter": n("17"),
			"ownerSwitchesSinceCheckpoint": n("0"), "checkpoint": s("49590338271490256608559692538361571095921575989136588898"),
			"checkpointSubSequenceNumber": n("0"), "entityType": s("LEASE"), "throughputKBps": n("0.25")})
		keys = append(keys, k)
	}
	w := startFleetWorker(t, client, app, "mld", "")
	st := w.store
	waitUntil(t, 60*time.Second, "the crashed fleet's leases assigned to and held by mld", func() bool {
		ls := leasesOf(t, st)
		for _, k := range keys {
			if ls[k].Owner != "mld" || !w.held()[k] {
				return false
			}
		}
		return true
	})
	if owner := strAttr(lockItem(t, client, app), "ownerName"); owner != "mld" {
		t.Fatalf("Leader lock owner %q", owner)
	}
	for k, l := range leasesOf(t, st) {
		if l.Counter <= 17 || l.OwnerSwitchesSinceCheckpoint != 1 || l.Checkpoint.Sequence != "49590338271490256608559692538361571095921575989136588898" {
			t.Fatalf("%s after the W8: %+v", k, l)
		}
	}
	if w.takeRuns("") != 0 {
		t.Fatalf("taker ran in 3.x mode: %v", w.takes)
	}
}

// TestThreeXRollbackTo2X: a fleet in CLIENT_VERSION_3X_WITH_ROLLBACK runs
// in 3.x mode with one lock holder; when Migration3.0 is rolled back to
// CLIENT_VERSION_2X, every worker stops its assignment manager, the lock
// is released (deleted), and the 2.x taker runs again and takes the leases.
func TestThreeXRollbackTo2X(t *testing.T) {
	old := migrationMonitorInterval
	migrationMonitorInterval = 500 * time.Millisecond
	t.Cleanup(func() { migrationMonitorInterval = old })
	ddb := testenv.StartT(t, testenv.DynamoDBLocal)
	client := ddb.DynamoDB()
	app, keys := newFleetTable(t, client, 4)
	st := lease.NewDynamoStore(client, app, zap.NewNop())
	if _, err := st.CreateMigrationState(context.Background(), lease.ClientVersion3XRoll, "java3-w1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateLeaseOwnerIndexIfNotExists(context.Background()); err != nil {
		t.Fatal(err)
	}
	ws := []*fleetWorker{startFleetWorker(t, client, app, "w1", ""), startFleetWorker(t, client, app, "w2", "")}
	waitUntil(t, 60*time.Second, "all leases held in 3.x mode", func() bool {
		n := 0
		for _, w := range ws {
			n += len(w.held())
		}
		return n == len(keys)
	})
	if lockItem(t, client, app) == nil {
		t.Fatal("no Leader lock in 3.x mode")
	}
	if ok, err := st.UpdateClientVersion(context.Background(), lease.ClientVersion3XRoll, lease.ClientVersion2X, "operator", time.Now()); !ok || err != nil {
		t.Fatalf("rollback: %v %v", ok, err)
	}
	waitUntil(t, 30*time.Second, "2.x mode on every worker, the lock released", func() bool {
		for _, w := range ws {
			if w.coord.ThreeXMode() || w.takeRuns("") == 0 {
				return false
			}
			if _, ok := w.x.Status(); ok {
				return false
			}
		}
		return lockItem(t, client, app) == nil
	})
	// The taker works again: a released lease is taken back.
	h := ws[0].coord.Held()
	if len(h) == 0 {
		h = ws[1].coord.Held()
	}
	key := h[0].Lease.Key
	for _, w := range ws {
		if w.held()[key] {
			// ErrLeaseLost: the other worker's 2.x taker stole it meanwhile
			// (balancing), which shows the taker works too.
			if err := w.coord.Release(context.Background(), key); err != nil && !errors.Is(err, lease.ErrLeaseLost) {
				t.Fatal(err)
			}
		}
	}
	waitUntil(t, 30*time.Second, "the released lease taken by the 2.x taker", func() bool {
		return ws[0].held()[key] || ws[1].held()[key]
	})
}
