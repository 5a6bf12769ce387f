package lam_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/assign"
	"github.com/multilangd/multilangd/lease/lam"
	"github.com/multilangd/multilangd/lease/leader"
)

var emus testenv.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	emus.StopAll()
	os.Exit(testenv.CheckLeaks(code))
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
func nl(vals ...string) types.AttributeValue {
	l := &types.AttributeValueMemberL{}
	for _, v := range vals {
		l.Value = append(l.Value, n(v))
	}
	return l
}

type table struct {
	t      *testing.T
	client *dynamodb.Client
	store  *lease.DynamoStore
	name   string
}

var seq int

func newTable(t *testing.T) *table {
	t.Helper()
	client := emus.Get(t, testenv.DynamoDBLocal).DynamoDB()
	seq++
	name := fmt.Sprintf("lam-%d-%d", time.Now().UnixNano()%1e9, seq)
	st := lease.NewDynamoStore(client, name, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.CreateTableIfNotExists(ctx, lease.TableOptions{PollInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	return &table{t: t, client: client, store: st, name: name}
}

func (tb *table) put(item map[string]types.AttributeValue) {
	tb.t.Helper()
	if _, err := tb.client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(tb.name), Item: item}); err != nil {
		tb.t.Fatal(err)
	}
}

func (tb *table) get(key string) map[string]types.AttributeValue {
	tb.t.Helper()
	out, err := tb.client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(tb.name),
		Key: map[string]types.AttributeValue{"leaseKey": s(key)}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		tb.t.Fatal(err)
	}
	return out.Item
}

// metrics writes a WorkerMetricStats item with CPU history cpu and an
// operating range of 100 % (Java WorkerMetricStats in the lease table).
func (tb *table) metrics(worker string, lut time.Time, cpu ...string) {
	tb.put(map[string]types.AttributeValue{"leaseKey": s(worker), "entityType": s("WORKER_METRIC_STATS"),
		"lut": n(strconv.FormatInt(lut.Unix(), 10)),
		"sts": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": nl(cpu...)}},
		"opr": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": nl("100")}}})
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run starts f in a goroutine the test's cleanup stops and waits for.
func run(t *testing.T, f func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func newDecider(t *testing.T, tb *table, id string) *leader.Decider {
	t.Helper()
	d, err := leader.New(tb.client, tb.store, leader.Config{WorkerID: id, LeaseDuration: 2 * time.Second, HeartbeatPeriod: 500 * time.Millisecond},
		zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	run(t, func(ctx context.Context) { _ = d.Run(ctx) })
	return d
}

func lamConfig() lam.Config {
	return lam.Config{WorkerID: "leader", FailoverTime: 10 * time.Second, Interval: 300 * time.Millisecond, GracefulHandoff: true,
		Assign: assign.Config{AllowThroughputOvershoot: true, WorkerMetricsExpiry: time.Hour}}
}

// TestIntegrationBalancingHandsOffGracefully (DynamoDB Local, the real
// leader decider): all leases on a worker at 90 % CPU, another at 10 %:
// the leader's first run balances, and each live lease it moves gets W9
// (leaseOwner = the new worker, checkpointOwner = the old, counter
// unchanged), not W8. A WorkerMetricStats entry not updated for longer
// than staleWorkerMetricsEntryCleanupDuration is deleted by the leader.
func TestIntegrationBalancingHandsOffGracefully(t *testing.T) {
	tb := newTable(t)
	now := time.Now()
	tb.metrics("w1", now, "90", "90")
	tb.metrics("w2", now, "10", "10")
	tb.metrics("w-dead", now.Add(-49*time.Hour), "50")
	var keys []string
	for i := range 4 {
		k := fmt.Sprintf("shardId-%012d", i)
		tb.put(map[string]types.AttributeValue{"leaseKey": s(k), "leaseOwner": s("w1"), "leaseCounter": n("5"),
			"ownerSwitchesSinceCheckpoint": n("0"), "checkpoint": s("TRIM_HORIZON"), "checkpointSubSequenceNumber": n("0"),
			"throughputKBps": n("10")})
		keys = append(keys, k)
	}
	cfg := lamConfig()
	cfg.StaleMetricsCleanup = 48 * time.Hour
	m := lam.New(tb.store, newDecider(t, tb, "leader"), cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	stop := run(t, m.Run)
	waitFor(t, 30*time.Second, "a balancing move", func() bool { return m.Status().LastRun.HandoffsStarted > 0 })
	stop()
	moved := 0
	for _, k := range keys {
		item := tb.get(k)
		owner, _ := item["leaseOwner"].(*types.AttributeValueMemberS)
		if owner.Value == "w1" {
			if _, ok := item["checkpointOwner"]; ok {
				t.Fatalf("%s: checkpointOwner on a lease that stayed: %v", k, item)
			}
			continue
		}
		moved++
		cp, _ := item["checkpointOwner"].(*types.AttributeValueMemberS)
		if owner.Value != "w2" || cp == nil || cp.Value != "w1" || item["leaseCounter"].(*types.AttributeValueMemberN).Value != "5" {
			t.Fatalf("%s after the move: %v (want W9: leaseOwner w2, checkpointOwner w1, counter 5)", k, item)
		}
	}
	if st := m.Status(); moved == 0 || moved == len(keys) || st.LastRun.Assigned != 0 || !st.Leading {
		t.Fatalf("moved %d of %d; status %+v", moved, len(keys), st)
	}
	if tb.get("w-dead") != nil || tb.get("w1") == nil || tb.get("w2") == nil {
		t.Fatal("stale worker metrics not deleted, or fresh ones deleted")
	}
}

// failingLoads fails every load, as a DynamoDB outage would.
type failingLoads struct{ *lease.DynamoStore }

func (failingLoads) LoadAssignmentView(context.Context, string) (lease.AssignmentView, error) {
	return lease.AssignmentView{}, errors.New("scan: service unavailable")
}

// releaseWatch records, at each ReleaseLeadershipIfHeld, whether the lock
// item was gone right after it.
type releaseWatch struct {
	*leader.Decider
	tb       *table
	mu       sync.Mutex
	released []bool
}

func (r *releaseWatch) ReleaseLeadershipIfHeld(ctx context.Context) {
	r.Decider.ReleaseLeadershipIfHeld(ctx)
	gone := r.tb.get(lease.LeaderKey) == nil
	r.mu.Lock()
	r.released = append(r.released, gone)
	r.mu.Unlock()
}

func (r *releaseWatch) calls() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.released...)
}

// TestIntegrationFailedRunsReleaseLock (DynamoDB Local, the real leader
// decider): when the leader's runs keep failing, the third failure in a row
// releases the Leader lock (the item is deleted), as Java
// LeaseAssignmentManager does with ForceLeaderRelease.
func TestIntegrationFailedRunsReleaseLock(t *testing.T) {
	tb := newTable(t)
	w := &releaseWatch{Decider: newDecider(t, tb, "leader"), tb: tb}
	m := lam.New(failingLoads{tb.store}, w, lamConfig(), zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel+1)))
	run(t, m.Run)
	waitFor(t, 30*time.Second, "a forced release", func() bool { return len(w.calls()) > 0 })
	if c := w.calls(); !c[0] {
		t.Fatal("the Leader lock item is still there after the forced release")
	}
	if st := m.Status(); st.ForcedReleases < 1 || st.LastRun.Success {
		t.Fatalf("status %+v", st)
	}
}
