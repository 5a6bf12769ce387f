package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/seqnum"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func recs(seqs ...string) []record.Record {
	var out []record.Record
	for _, s := range seqs {
		seq, sub, _ := strings.Cut(s, "/")
		r := record.Record{SequenceNumber: seq, PartitionKey: "pk"}
		if sub != "" {
			r.SubSequenceNumber = int64(sub[0] - '0')
			r.Aggregated = true
		}
		out = append(out, r)
	}
	return out
}

// fakeMetrics counts metric events.
type fakeMetrics struct {
	mu                                 sync.Mutex
	records, failed, released, stopped int
	calls                              []string // processRecords: "records@millisBehindLatest"
	stuck                              []string // ShardStuck: "shard=true|false"
}

func (m *fakeMetrics) ConsumerStopped(string) { m.mu.Lock(); m.stopped++; m.mu.Unlock() }

func (m *fakeMetrics) stops() int { m.mu.Lock(); defer m.mu.Unlock(); return m.stopped }

func (m *fakeMetrics) RecordsProcessed(_ string, b BatchStats) {
	if !b.Delivered {
		return
	}
	n, mbl := b.Records, b.MillisBehindLatest
	m.mu.Lock()
	m.records += n
	v := "nil"
	if mbl != nil {
		v = fmt.Sprint(*mbl)
	}
	m.calls = append(m.calls, fmt.Sprintf("%d@%s", n, v))
	m.mu.Unlock()
}

func (m *fakeMetrics) processCalls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}
func (m *fakeMetrics) ChildInitialized(string, time.Duration) {}

func (m *fakeMetrics) ShardStuck(shardID string, stuck bool) {
	m.mu.Lock()
	m.stuck = append(m.stuck, fmt.Sprintf("%s=%v", shardID, stuck))
	m.mu.Unlock()
}

func (m *fakeMetrics) stuckEvents() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.stuck)
}

func (m *fakeMetrics) TaskFailed(string)    { m.mu.Lock(); m.failed++; m.mu.Unlock() }
func (m *fakeMetrics) LeaseReleased(string) { m.mu.Lock(); m.released++; m.mu.Unlock() }

func (m *fakeMetrics) get() (records, failed, released int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.records, m.failed, m.released
}

type harness struct {
	metrics *fakeMetrics
	t       *testing.T
	w       *world
	coord   *fakeCoord
	kids    *childFactory
	s       *Scheduler
	cancel  context.CancelFunc
	done    chan error
}

func start(t *testing.T, b childBehaviour, batches map[string][]record.Batch, leases ...lease.Lease) *harness {
	t.Helper()
	return startCfg(t, nil, b, batches, leases...)
}

// startCfg is start with cfg (when set) adjusting the scheduler's Config.
func startCfg(t *testing.T, cfg func(*Config), b childBehaviour, batches map[string][]record.Batch, leases ...lease.Lease) *harness {
	t.Helper()
	w := newWorld()
	for _, l := range leases {
		w.add(l)
	}
	h := &harness{t: t, w: w, coord: newFakeCoord(w), kids: &childFactory{w: w, b: b}, metrics: &fakeMetrics{}}
	c := Config{
		WorkerID:                w.leasesOwner(),
		DispatchInterval:        10 * time.Millisecond,
		ParentShardPollInterval: 10 * time.Millisecond,
		TaskBackoff:             5 * time.Millisecond,
		MaxBackoff:              20 * time.Millisecond,
		MaxChildFailures:        3,
		Cooldown:                time.Hour,
		ShutdownGrace:           2 * time.Second,
	}
	if cfg != nil {
		cfg(&c)
	}
	s, err := New(c, Deps{
		Coordinator: h.coord,
		Store:       w,
		Syncer:      fakeSyncer{w},
		Cleaner:     fakeCleaner{w},
		Sources:     sourcesFrom(w, batches),
		Children:    h.kids.factory(),
		Log:         zaptest.NewLogger(t),
		Metrics:     h.metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- s.Run(ctx) }()
	t.Cleanup(func() { h.stop() })
	return h
}

func (w *world) leasesOwner() string { return "worker-1" }

func (h *harness) stop() {
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.done <- nil
}

// eventually polls cond (a liveness bound, not a timing assertion).
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("never happened: %s; events:\n%s", what, strings.Join(h.w.Events(), "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) hasEvent(prefix string) bool {
	return slices.ContainsFunc(h.w.Events(), func(e string) bool { return strings.HasPrefix(e, prefix) })
}

func count(events []string, prefix string) int {
	n := 0
	for _, e := range events {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

// TestLeasesTakenStartsConsumerAtOnce: with a dispatch tick that never
// comes, a signal on LeasesTaken alone starts the consumer of a new lease.
func TestLeasesTakenStartsConsumerAtOnce(t *testing.T) {
	taken := make(chan struct{}, 1)
	h := startCfg(t, func(c *Config) { c.DispatchInterval = time.Hour; c.LeasesTaken = taken },
		childBehaviour{}, map[string][]record.Batch{"s1": {{Records: recs("100")}}},
		lease.Lease{Key: "s1", Owner: "worker-1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.eventually("scheduler running", func() bool { return h.s.Healthy() == nil })
	time.Sleep(20 * time.Millisecond) // let the first reconcile pass with nothing held
	h.coord.grant("s1", "t1")
	taken <- struct{}{}
	h.eventually("record delivered without a dispatch tick", func() bool { return h.hasEvent("rec s1 100") })
}

func TestShardEndLifecycle(t *testing.T) {
	h := start(t, childBehaviour{}, map[string][]record.Batch{
		"s1": {
			{Records: recs("100", "101")},
			{Records: recs("102")},
			{Records: recs("103"), ShardEnd: true},
		},
	}, lease.Lease{Key: "s1", Owner: "worker-1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.eventually("cleanup enqueued", func() bool {
		h.w.mu.Lock()
		defer h.w.mu.Unlock()
		return len(h.w.cleaned) == 1
	})
	if got := h.w.checkpoint("s1"); !got.IsShardEnd() {
		t.Fatalf("checkpoint = %s, want SHARD_END", got)
	}
	if err := h.s.Healthy(); err != nil {
		t.Fatalf("Healthy while running: %v", err)
	}
	if n, _, _ := h.metrics.get(); n != 4 {
		t.Fatalf("RecordsProcessed counted %d records, want 4", n)
	}
	ev := h.w.Events()
	want := []string{"init s1 TRIM_HORIZON/0 child1", "source s1 at TRIM_HORIZON", "rec s1 100", "rec s1 101",
		"checkpoint s1 101", "rec s1 102", "checkpoint s1 102", "rec s1 103", "checkpoint s1 103",
		"shardEnded s1 child1", "checkpoint s1 SHARD_END"}
	if !slices.Equal(ev, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(ev, "\n"), strings.Join(want, "\n"))
	}
	h.w.mu.Lock()
	created := slices.Clone(h.w.created)
	h.w.mu.Unlock()
	if !slices.Equal(created, []string{"s1"}) {
		t.Fatalf("child leases created for %v", created)
	}
	// Still held: never restarted on this worker.
	time.Sleep(50 * time.Millisecond)
	if n := count(h.w.Events(), "init "); n != 1 {
		t.Fatalf("%d initializations, want 1", n)
	}
}

func TestResumeDropsUpToCheckpoint(t *testing.T) {
	tests := []struct {
		name       string
		checkpoint seqnum.ESN
		want       []string
	}{
		{"plain", seqnum.New("101", 0), []string{"rec s1 102", "rec s1 103", "rec s1 103/1"}},
		{"inside aggregate", seqnum.New("103", 0), []string{"rec s1 103/1"}},
		{"sentinel", seqnum.Sentinel(seqnum.TrimHorizon), []string{"rec s1 100", "rec s1 101", "rec s1 102", "rec s1 103", "rec s1 103/1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, childBehaviour{}, map[string][]record.Batch{
				"s1": {{Records: recs("100", "101", "102", "103/0", "103/1")}},
			}, lease.Lease{Key: "s1", Checkpoint: tt.checkpoint})
			h.coord.grant("s1", "t1")
			h.eventually("checkpoint", func() bool { return h.hasEvent("checkpoint") })
			var got []string
			for _, e := range h.w.Events() {
				if strings.HasPrefix(e, "rec ") {
					got = append(got, e)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("delivered %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLeaseLostSendsLeaseLost(t *testing.T) {
	h := start(t, childBehaviour{}, map[string][]record.Batch{"s1": {{Records: recs("100")}}},
		lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.eventually("processed", func() bool { return h.hasEvent("checkpoint s1 100") })
	h.coord.lose("s1")
	h.eventually("leaseLost", func() bool { return h.hasEvent("leaseLost s1") })
	h.eventually("consumer stopped reported", func() bool { return h.metrics.stops() == 1 })
	if h.hasEvent("shutdownRequested") || len(h.coord.Released()) != 0 {
		t.Fatalf("unexpected graceful path: %v", h.w.Events())
	}
	// Re-taken with a new token: a new child starts from the stored checkpoint.
	h.coord.grant("s1", "t2")
	h.eventually("re-initialized", func() bool { return h.hasEvent("init s1 100/0 child2") })
}

func TestGracefulStopReleases(t *testing.T) {
	h := start(t, childBehaviour{}, map[string][]record.Batch{"s1": {{Records: recs("100")}}},
		lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.eventually("processed", func() bool { return h.hasEvent("checkpoint s1 100") })
	h.stop()
	if err := h.s.Healthy(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Healthy after stop = %v, want ErrNotRunning", err)
	}
	ev := h.w.Events()
	tail := ev[len(ev)-4:]
	want := []string{"shutdownRequested s1", "checkpoint s1 100", "leaseLost s1", "release s1"}
	if !slices.Equal(tail, want) {
		t.Fatalf("tail %v, want %v", tail, want)
	}
	if !h.coord.stopped {
		t.Fatal("StopTaking not called")
	}
}

func TestGracefulStopKillsBlockedChildAfterDeadline(t *testing.T) {
	h := start(t, childBehaviour{blockProcess: true}, map[string][]record.Batch{"s1": {{Records: recs("100")}}},
		lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.s.cfg.ShutdownGrace = 50 * time.Millisecond
	h.coord.grant("s1", "t1")
	h.eventually("delivered", func() bool { return h.hasEvent("rec s1 100") })
	h.stop() // returns only because the deadline cancels the blocked call
}

func TestChildFailuresBackOffThenRelease(t *testing.T) {
	tests := []struct {
		name     string
		b        childBehaviour
		released bool
		inits    int
	}{
		{"recovers after two crashes", childBehaviour{failProcess: 2}, false, 3},
		{"released after three crashes", childBehaviour{failProcess: 100}, true, 3},
		{"start failures released", childBehaviour{startFail: true}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, tt.b, map[string][]record.Batch{"s1": {{Records: recs("100")}}},
				lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
			h.coord.grant("s1", "t1")
			if tt.released {
				h.eventually("released", func() bool { return len(h.coord.Released()) == 1 })
				// Cool-down: re-granting does not start a consumer, it is released again.
				h.coord.grant("s1", "t2")
				h.eventually("released again", func() bool { return len(h.coord.Released()) == 2 })
			} else {
				h.eventually("checkpointed", func() bool { return h.hasEvent("checkpoint s1 100") })
			}
			if n := count(h.w.Events(), "init "); n != tt.inits {
				t.Fatalf("%d initializations, want %d: %v", n, tt.inits, h.w.Events())
			}
			_, failed, released := h.metrics.get()
			if wantFailed := map[bool]int{false: 2, true: 3}[tt.released]; failed != wantFailed || (released == 1) != tt.released {
				t.Fatalf("metrics: %d failures, %d releases", failed, released)
			}
		})
	}
}

func TestShardEndWithoutCheckpointRetriesWithNewChild(t *testing.T) {
	h := start(t, childBehaviour{noShardEndCP: 1}, map[string][]record.Batch{
		"s1": {{Records: recs("100"), ShardEnd: true}},
	}, lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.eventually("shard end", func() bool { return h.w.checkpoint("s1").IsShardEnd() })
	ev := h.w.Events()
	if count(ev, "shardEnded s1 child1") != 1 || count(ev, "shardEnded s1 child2") != 1 {
		t.Fatalf("want shardEnded on child1 then child2: %v", ev)
	}
	if count(ev, "rec ") != 1 || count(ev, "source ") != 1 {
		t.Fatalf("retry must not re-read the shard: %v", ev)
	}
}

func TestParentGateAndFinishedLeaseWithoutChild(t *testing.T) {
	h := start(t, childBehaviour{}, map[string][]record.Batch{
		"child": {{Records: recs("200")}},
	},
		lease.Lease{Key: "parent", Checkpoint: seqnum.New("150", 0)},
		lease.Lease{Key: "done", Checkpoint: seqnum.Sentinel(seqnum.ShardEnd)},
		lease.Lease{Key: "child", ParentShardIDs: []string{"parent"}, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("child", "t1")
	h.coord.grant("done", "t1")
	h.eventually("done cleaned", func() bool {
		h.w.mu.Lock()
		defer h.w.mu.Unlock()
		return slices.Contains(h.w.cleaned, "done")
	})
	time.Sleep(50 * time.Millisecond)
	if h.hasEvent("init") {
		t.Fatalf("child started before its parent ended: %v", h.w.Events())
	}
	h.w.mu.Lock()
	h.w.leases["parent"].Checkpoint = seqnum.Sentinel(seqnum.ShardEnd)
	h.w.mu.Unlock()
	h.eventually("child processed", func() bool { return h.hasEvent("checkpoint child 200") })
	if h.hasEvent("init done") {
		t.Fatal("a child was started for a lease already at SHARD_END")
	}
}

// A retry after a child failure starts its checkpointer from the checkpoint
// the failed child wrote, not from the lease as taken: records up to it are
// not re-delivered and cannot be checkpointed again (no regression).
func TestRetryStartsFromLatestCheckpoint(t *testing.T) {
	h := start(t, childBehaviour{failCall: 2}, map[string][]record.Batch{
		"s1": {{Records: recs("100", "101")}, {Records: recs("102")}},
	}, lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.eventually("retry checkpointed", func() bool { return h.hasEvent("checkpoint s1 102") })
	ev := h.w.Events()
	want := []string{"init s1 TRIM_HORIZON/0 child1", "source s1 at TRIM_HORIZON", "rec s1 100", "rec s1 101",
		"checkpoint s1 101", "rec s1 102", "crash s1 child1",
		"init s1 101/0 child2", "source s1 at 101", "rec s1 102", "checkpoint s1 102"}
	if !slices.Equal(ev, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(ev, "\n"), strings.Join(want, "\n"))
	}
}

// losingSource loses the lease while it hands out the batch.
type losingSource struct {
	lose func()
	b    record.Batch
	done bool
}

func (s *losingSource) Next(ctx context.Context) (record.Batch, error) {
	if s.done {
		<-ctx.Done()
		return record.Batch{}, ctx.Err()
	}
	s.done = true
	s.lose()
	return s.b, nil
}
func (s *losingSource) Close() error { return nil }

// A batch that arrives as the lease is lost is not sent: leaseLost follows
// initialize directly.
func TestNoProcessRecordsAfterLeaseLoss(t *testing.T) {
	h := start(t, childBehaviour{}, nil, lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.s.deps.Sources = func(context.Context, lease.Lease, seqnum.ESN) (RecordSource, error) {
		return &losingSource{lose: func() { h.coord.lose("s1") }, b: record.Batch{Records: recs("100")}}, nil
	}
	h.coord.grant("s1", "t1")
	h.eventually("leaseLost", func() bool { return h.hasEvent("leaseLost s1") })
	if h.hasEvent("rec ") {
		t.Fatalf("records delivered after the lease was lost: %v", h.w.Events())
	}
}

// processRecords is sent for batches left empty by the ≤-checkpoint filter
// (or empty from Kinesis) only with callProcessRecordsEvenForEmptyRecordList,
// and millisBehindLatest is passed through unchanged.
func TestEmptyBatchesAndMillisBehindLatest(t *testing.T) {
	mbl := func(v int64) *int64 { return &v }
	batches := map[string][]record.Batch{"s1": {
		{Records: nil, MillisBehindLatest: mbl(5)},
		{Records: recs("100", "101"), MillisBehindLatest: mbl(7)}, // both ≤ checkpoint 101
		{Records: recs("102"), MillisBehindLatest: nil},
		{Records: recs("103"), MillisBehindLatest: mbl(0)},
	}}
	tests := []struct {
		even bool
		want []string
	}{
		{false, []string{"1@nil", "1@0"}},
		{true, []string{"0@5", "0@7", "1@nil", "1@0"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("even=", tt.even), func(t *testing.T) {
			h := start(t, childBehaviour{}, batches, lease.Lease{Key: "s1", Checkpoint: seqnum.New("101", 0)})
			h.s.cfg.CallProcessRecordsEvenForEmptyRecordList = tt.even
			h.coord.grant("s1", "t1")
			h.eventually("last batch", func() bool { return h.hasEvent("checkpoint s1 103") })
			if got := h.metrics.processCalls(); !slices.Equal(got, tt.want) {
				t.Fatalf("processRecords calls %v, want %v", got, tt.want)
			}
		})
	}
}

// A lease lost at shard end (here while the child leases are created) gets
// leaseLost, never shardEnded: lease loss takes precedence.
func TestLeaseLossAtShardEndSendsLeaseLost(t *testing.T) {
	h := start(t, childBehaviour{}, map[string][]record.Batch{"s1": {{Records: recs("100"), ShardEnd: true}}},
		lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.w.mu.Lock()
	h.w.onCreateChildren = func() { h.coord.lose("s1") }
	h.w.mu.Unlock()
	h.coord.grant("s1", "t1")
	h.eventually("leaseLost", func() bool { return h.hasEvent("leaseLost s1") })
	if h.hasEvent("shardEnded") || h.w.checkpoint("s1").IsShardEnd() {
		t.Fatalf("shardEnded after the lease was lost: %v", h.w.Events())
	}
}
