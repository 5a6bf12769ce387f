package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/seqnum"
)

// world is the shared state of the fakes: a lease table and a log of events.
type world struct {
	mu      sync.Mutex
	leases  map[string]*lease.Lease
	events  []string
	cleaned []string
	created []string // parent keys whose child leases were created
	// onCreateChildren, when set, runs at the start of CreateChildLeases.
	onCreateChildren func()
}

func newWorld() *world { return &world{leases: map[string]*lease.Lease{}} }

func (w *world) add(l lease.Lease) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cp := l
	w.leases[l.Key] = &cp
}

func (w *world) event(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, fmt.Sprintf(format, args...))
}

func (w *world) Events() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.events...)
}

func (w *world) checkpoint(key string) seqnum.ESN {
	w.mu.Lock()
	defer w.mu.Unlock()
	if l := w.leases[key]; l != nil {
		return l.Checkpoint
	}
	return seqnum.ESN{}
}

// GetLease implements LeaseReader.
func (w *world) GetLease(_ context.Context, key string) (*lease.Lease, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.leases[key]
	if l == nil {
		return nil, nil
	}
	cp := *l
	return &cp, nil
}

// fakeCoord holds leases granted by the test.
type fakeCoord struct {
	w         *world
	mu        sync.Mutex
	held      map[string]*fakeHeld
	released  []string
	handedOff []string
	stopped   bool
	// failHandoffs makes the next N CompleteHandoff calls fail transiently
	// (the lease stays held, as lease.Coordinator keeps it for a retry).
	failHandoffs int
}

type fakeHeld struct {
	h       lease.Held
	cancel  context.CancelFunc
	handoff chan struct{}
}

func newFakeCoord(w *world) *fakeCoord { return &fakeCoord{w: w, held: map[string]*fakeHeld{}} }

func (f *fakeCoord) grant(key, token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	l, _ := f.w.GetLease(ctx, key)
	ho := make(chan struct{})
	f.held[key] = &fakeHeld{h: lease.Held{Lease: *l, Token: token, Ctx: ctx, Handoff: ho}, cancel: cancel, handoff: ho}
}

func (f *fakeCoord) lose(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h := f.held[key]; h != nil {
		h.cancel()
		delete(f.held, key)
	}
}

func (f *fakeCoord) Released() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.released...)
}

func (f *fakeCoord) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (f *fakeCoord) Held() []*lease.Held {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*lease.Held
	for _, h := range f.held {
		hh := h.h
		out = append(out, &hh)
	}
	return out
}

func (f *fakeCoord) Checkpointer(h *lease.Held) Checkpointer {
	// Like lease.Coordinator: last = largest = the given lease's checkpoint.
	return &fakeCP{w: f.w, key: h.Lease.Key, held: h.Ctx, last: h.Lease.Checkpoint, largest: h.Lease.Checkpoint}
}

func (f *fakeCoord) Release(_ context.Context, key string) error {
	f.mu.Lock()
	f.released = append(f.released, key)
	f.mu.Unlock()
	f.lose(key)
	f.w.event("release %s", key)
	return nil
}

func (f *fakeCoord) CompleteHandoff(_ context.Context, key string) error {
	f.mu.Lock()
	if f.failHandoffs > 0 {
		f.failHandoffs--
		f.mu.Unlock()
		f.w.event("hand off failed %s", key)
		return errors.New("assign lease: throttled (injected)")
	}
	f.handedOff = append(f.handedOff, key)
	f.mu.Unlock()
	f.lose(key)
	f.w.event("hand off %s", key)
	return nil
}

// handoff starts a graceful hand-off of a granted lease (closes its
// Handoff channel).
func (f *fakeCoord) handoff(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h := f.held[key]; h != nil {
		close(h.handoff)
	}
}

func (f *fakeCoord) StopTaking()                   { f.mu.Lock(); f.stopped = true; f.mu.Unlock() }
func (f *fakeCoord) IsLeader(context.Context) bool { return true }

// fakeCP is a minimal checkpointer with the Java validation rules.
type fakeCP struct {
	w        *world
	key      string
	held     context.Context
	mu       sync.Mutex
	last     seqnum.ESN
	largest  seqnum.ESN
	shardEnd bool
	prevLast seqnum.ESN
}

func (c *fakeCP) SetLargestPermitted(e seqnum.ESN) { c.mu.Lock(); c.largest = e; c.mu.Unlock() }
func (c *fakeCP) SetShardEnd() {
	c.mu.Lock()
	c.prevLast, c.largest, c.shardEnd = c.largest, seqnum.Sentinel(seqnum.ShardEnd), true
	c.mu.Unlock()
}
func (c *fakeCP) LastCheckpoint() seqnum.ESN { c.mu.Lock(); defer c.mu.Unlock(); return c.last }

func (c *fakeCP) Checkpoint(_ context.Context, seq *string, sub *int64) error {
	if c.held.Err() != nil {
		return errors.New("ShutdownException")
	}
	c.mu.Lock()
	v := c.largest
	if seq != nil {
		v = seqnum.New(*seq, 0)
		if sub != nil {
			v.SubSequence = *sub
		}
		if c.shardEnd && v == c.prevLast {
			v = seqnum.Sentinel(seqnum.ShardEnd)
		}
	}
	c.last = v
	c.mu.Unlock()
	c.w.mu.Lock()
	c.w.leases[c.key].Checkpoint = v
	c.w.mu.Unlock()
	c.w.event("checkpoint %s %s", c.key, v)
	return nil
}

// fakeSyncer implements ShardSyncer on the world.
type fakeSyncer struct{ w *world }

func (s fakeSyncer) Sync(context.Context) error { return nil }
func (s fakeSyncer) RunPeriodic(ctx context.Context, _ func(context.Context) bool) error {
	<-ctx.Done()
	return nil
}
func (s fakeSyncer) CreateChildLeases(_ context.Context, parent lease.Lease, _ []record.ChildShard) error {
	s.w.mu.Lock()
	hook := s.w.onCreateChildren
	s.w.mu.Unlock()
	if hook != nil {
		hook()
	}
	s.w.mu.Lock()
	s.w.created = append(s.w.created, parent.Key)
	s.w.mu.Unlock()
	return nil
}
func (s fakeSyncer) ParentsDone(ctx context.Context, l lease.Lease) (bool, error) {
	for _, p := range l.ParentShardIDs {
		pl, _ := s.w.GetLease(ctx, p)
		if pl != nil && !pl.IsShardEnd() {
			return false, nil
		}
	}
	return true, nil
}

// fakeCleaner records enqueued keys.
type fakeCleaner struct{ w *world }

func (c fakeCleaner) Enqueue(key string) {
	c.w.mu.Lock()
	c.w.cleaned = append(c.w.cleaned, key)
	c.w.mu.Unlock()
}
func (c fakeCleaner) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// fakeSource replays batches then blocks (or ends the shard).
type fakeSource struct {
	batches []record.Batch
}

func (s *fakeSource) Next(ctx context.Context) (record.Batch, error) {
	if len(s.batches) == 0 {
		<-ctx.Done()
		return record.Batch{}, ctx.Err()
	}
	b := s.batches[0]
	s.batches = s.batches[1:]
	return b, nil
}
func (s *fakeSource) Close() error { return nil }

// sourcesFrom returns a SourceFactory replaying per-key batches (from the start each time).
func sourcesFrom(w *world, m map[string][]record.Batch) SourceFactory {
	return func(_ context.Context, l lease.Lease, start seqnum.ESN) (RecordSource, error) {
		w.event("source %s at %s", l.Key, start)
		return &fakeSource{batches: append([]record.Batch(nil), m[l.Key]...)}, nil
	}
}

// childBehaviour scripts a fake child.
type childBehaviour struct {
	failProcess  int  // fail the first N ProcessRecords calls (across children)
	failCall     int  // fail the Nth ProcessRecords call (1-based, across children) without checkpointing
	cpThenFail   int  // the Nth ProcessRecords call (1-based) checkpoints, then fails (exit before its status)
	noShardEndCP int  // skip the SHARD_END checkpoint for the first N shardEnded
	startFail    bool // every start fails
	blockProcess bool // ProcessRecords blocks until ctx is done
	hangFirst    int  // the first N ProcessRecords calls block until ctx is done
	hangShutdown int  // the first N ShutdownRequested calls block until ctx is done
}

type childFactory struct {
	w     *world
	mu    sync.Mutex
	b     childBehaviour
	n     int
	calls int // ProcessRecords calls
}

func (f *childFactory) factory() ChildFactory {
	return func(_ context.Context, shardID, _ string) (Child, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.b.startFail {
			f.w.event("start-failed %s", shardID)
			return nil, errors.New("exec: no such file")
		}
		f.n++
		return &fakeChild{f: f, w: f.w, shard: shardID, pid: f.n}, nil
	}
}

type fakeChild struct {
	f     *childFactory
	w     *world
	shard string
	pid   int
}

func (c *fakeChild) Initialize(_ context.Context, shardID string, seq *string, sub *int64) error {
	c.w.event("init %s %s/%d child%d", shardID, *seq, *sub, c.pid)
	return nil
}

func (c *fakeChild) ProcessRecords(ctx context.Context, recs []record.Record, _ *int64, cp ChildCheckpointer) error {
	for _, r := range recs {
		c.w.event("rec %s %s", c.shard, r.ESN())
	}
	c.f.mu.Lock()
	c.f.calls++
	fail := c.f.b.failProcess > 0 || c.f.calls == c.f.b.failCall
	cpFirst := c.f.calls == c.f.b.cpThenFail
	if c.f.b.failProcess > 0 {
		c.f.b.failProcess--
	}
	block := c.f.b.blockProcess || c.f.b.hangFirst > 0
	if c.f.b.hangFirst > 0 {
		c.f.b.hangFirst--
	}
	c.f.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	if cpFirst {
		if err := cp.Checkpoint(ctx, nil, nil); err != nil {
			return err
		}
		fail = true
	}
	if fail {
		c.w.event("crash %s child%d", c.shard, c.pid)
		return errors.New("child exited")
	}
	return cp.Checkpoint(ctx, nil, nil)
}

func (c *fakeChild) ShutdownRequested(ctx context.Context, cp ChildCheckpointer) error {
	c.w.event("shutdownRequested %s", c.shard)
	c.f.mu.Lock()
	hang := c.f.b.hangShutdown > 0
	if hang {
		c.f.b.hangShutdown--
	}
	c.f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return cp.Checkpoint(ctx, nil, nil)
}

func (c *fakeChild) LeaseLost(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err // like subprocess.Child: an abandoned call is not sent
	}
	c.w.event("leaseLost %s", c.shard)
	return nil
}

func (c *fakeChild) ShardEnded(ctx context.Context, cp ChildCheckpointer) error {
	c.w.event("shardEnded %s child%d", c.shard, c.pid)
	c.f.mu.Lock()
	skip := c.f.b.noShardEndCP > 0
	if skip {
		c.f.b.noShardEndCP--
	}
	c.f.mu.Unlock()
	if skip {
		return nil
	}
	return cp.Checkpoint(ctx, nil, nil)
}

func (c *fakeChild) Close(context.Context) error { return nil }
func (c *fakeChild) PID() int                    { return c.pid }
