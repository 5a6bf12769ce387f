package lease

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/seqnum"
)

// CoordinatorConfig configures a Coordinator. Zero durations and counts take
// the Java KCL defaults derived from FailoverTime (Java LeaseManagementConfig,
// DynamoDBLeaseCoordinator).
type CoordinatorConfig struct {
	// WorkerID is this worker's leaseOwner value (required).
	WorkerID string
	// FailoverTime is failoverTimeMillis. All workers sharing
	// a table must use the same value.
	FailoverTime time.Duration
	// Epsilon is epsilonMillis (default 25 ms).
	Epsilon time.Duration
	// RenewerPeriod defaults to FailoverTime/3 − Epsilon (fixed rate).
	RenewerPeriod time.Duration
	// TakerPeriod defaults to (FailoverTime + Epsilon) × 2 (fixed delay,
	// first run at once).
	TakerPeriod time.Duration
	// VeryOldThreshold defaults to 3 × FailoverTime (priority taking).
	VeryOldThreshold time.Duration
	// MaxLeasesForWorker is maxLeasesForWorker.
	MaxLeasesForWorker int
	// MaxLeasesToStealAtOneTime is maxLeasesToStealAtOneTime.
	MaxLeasesToStealAtOneTime int
	// EnablePriorityLeaseAssignment turns on very-old priority taking
	// (Java default true; the zero value here is false, callers pass the
	// parsed property).
	EnablePriorityLeaseAssignment bool
	// MaxLeaseRenewalThreads bounds parallel renewals (default 20).
	MaxLeaseRenewalThreads int
	// LeaderFirstRefresh and LeaderRefresh control how long an IsLeader
	// answer is reused: first re-election after 60 s, then every 5 min.
	LeaderFirstRefresh, LeaderRefresh time.Duration
	// LegacyStateRefresh is how often the taker re-reads a KCL 3.0–3.4
	// CoordinatorState table (default 1 min, as Java
	// ClientVersionChangeMonitor); the 3.5 items in the lease table come with
	// every taker scan.
	LegacyStateRefresh time.Duration
	// DiscoveryPeriod is how often a worker in KCL 3.x mode looks for
	// leases the leader assigned to it (Java DynamoDBLeaseCoordinator
	// leaseDiscovererIntervalMillis = leaseAssignmentIntervalMillis/2 − ε,
	// i.e. FailoverTime − Epsilon by default).
	DiscoveryPeriod time.Duration
	// GracefulLeaseHandoffTimeout is gracefulLeaseHandoffTimeoutMillis: how
	// long a graceful hand-off waits for the shard consumer before the
	// lease is transferred anyway (default 30 s, lease/handoff.go).
	GracefulLeaseHandoffTimeout time.Duration
	// HandoffCheckPeriod is how often that timeout is checked (default 2 s,
	// Java LeaseGracefulShutdownHandler.SHUTDOWN_CHECK_INTERVAL_MILLIS).
	HandoffCheckPeriod time.Duration
	// AwaitMode holds the taker back until the first SetThreeXMode call
	// (at most FailoverTime): the daemon knows whether the table is in a KCL
	// 3.x client version only after reading Migration3.0, and must not take
	// before (Java starts the lease coordinator after the migration state
	// machine initialised).
	AwaitMode bool
	// Clock is the monotonic clock (default time.Now); injectable for tests.
	Clock Clock
	// Rand drives the taker's shuffles (default: randomly seeded).
	Rand *rand.Rand
	// OnTake, if set, is called after every taker run (metrics, tests).
	OnTake func(TakeResult)
	// OnDiscover, if set, is called after every KCL 3.x discovery run
	// (metrics).
	OnDiscover func(DiscoveryStats)
	// OnThreeXTable, if set, is called when a taker scan finds the table in
	// a KCL 3.x client version while the coordinator is not in 3.x mode
	// (the taker then takes nothing): the daemon re-reads the client
	// version at once instead of at its next minute. It must not block.
	OnThreeXTable func()
	// OnLost, if set, is called when a held lease is dropped because it was
	// lost (not when released or on stop), before its context is cancelled.
	// It must not block.
	OnLost func(key string, cause error)
}

func (c *CoordinatorConfig) setDefaults() {
	java := properties.Defaults()
	if c.FailoverTime <= 0 {
		c.FailoverTime = java.FailoverTime
	}
	if c.Epsilon <= 0 {
		c.Epsilon = 25 * time.Millisecond
	}
	if c.RenewerPeriod <= 0 {
		c.RenewerPeriod = max(c.FailoverTime/3-c.Epsilon, time.Millisecond)
	}
	if c.TakerPeriod <= 0 {
		c.TakerPeriod = (c.FailoverTime + c.Epsilon) * 2
	}
	if c.VeryOldThreshold <= 0 {
		c.VeryOldThreshold = 3 * c.FailoverTime
	}
	if c.MaxLeasesForWorker <= 0 {
		c.MaxLeasesForWorker = java.MaxLeasesForWorker
	}
	if c.MaxLeasesToStealAtOneTime <= 0 {
		c.MaxLeasesToStealAtOneTime = java.MaxLeasesToStealAtOneTime
	}
	if c.MaxLeaseRenewalThreads <= 0 {
		c.MaxLeaseRenewalThreads = java.MaxLeaseRenewalThreads
	}
	if c.LeaderFirstRefresh <= 0 {
		c.LeaderFirstRefresh = 60 * time.Second
	}
	if c.LeaderRefresh <= 0 {
		c.LeaderRefresh = 5 * time.Minute
	}
	if c.DiscoveryPeriod <= 0 {
		c.DiscoveryPeriod = max(c.FailoverTime-c.Epsilon, time.Millisecond)
	}
	if c.LegacyStateRefresh <= 0 {
		c.LegacyStateRefresh = time.Minute
	}
	if c.GracefulLeaseHandoffTimeout <= 0 {
		c.GracefulLeaseHandoffTimeout = java.GracefulLeaseHandoffTimeout
	}
	if c.HandoffCheckPeriod <= 0 {
		c.HandoffCheckPeriod = 2 * time.Second
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
}

// Held is a snapshot of one lease held by this worker.
type Held struct {
	// Lease is the in-memory copy at snapshot time (Owner = this worker).
	Lease Lease
	// Token is the concurrency token minted when the lease entered the held
	// set; a new token means a new shard consumer.
	Token string
	// Ctx is cancelled when the lease is lost, released, handed off or the
	// coordinator stops; context.Cause(Ctx) is ErrLeaseLost, ErrReleased,
	// ErrHandedOff or ErrStopped.
	Ctx context.Context
	// Handoff is closed when a KCL 3.x graceful hand-off of the lease starts
	// (lease/handoff.go): the shard consumer ends its session and calls
	// CompleteHandoff. Lease.Owner is then the new owner.
	Handoff <-chan struct{}
}

// heldLease is the coordinator's record of a held lease. lease, lastRenew
// and expiry are guarded by Coordinator.mu; io serialises DynamoDB writes on
// the lease (renew, checkpoint, release share the counter).
type heldLease struct {
	io    sync.Mutex
	lease Lease
	token string
	// lastRenew is when the last successful counter increment (take, renew,
	// checkpoint) was sent: never later than DynamoDB applied it, so local
	// expiry never comes after what other workers observe.
	lastRenew time.Time
	// expiry drops the lease at lastRenew + failover even when the renewer
	// is stuck in a slow or hung request (local expiry, docs/architecture.md
	// "The lease table").
	expiry *time.Timer
	// renewing is set while a renewal of this lease is in flight.
	renewing atomic.Bool
	// handoff is the graceful hand-off in progress (nil when none);
	// handoffCh is closed when it starts (lease/handoff.go).
	handoff   *handoffState
	handoffCh chan struct{}
	ctx       context.Context
	cancel    context.CancelCauseFunc
}

// Coordinator runs the KCL 2.x lease renewer and taker for one worker and
// fences checkpoints with the lease counter.
type Coordinator struct {
	store Store
	cfg   CoordinatorConfig
	log   *zap.Logger

	mu      sync.Mutex
	held    map[string]*heldLease
	running bool

	stopTaking atomic.Bool
	// threeX selects the 3.x renew condition (a 3.x client version on the
	// table, or 3.x mode).
	threeX atomic.Bool
	// threeXMode and lockLeader: KCL 3.x mode (threexmode.go).
	threeXMode atomic.Bool
	lockLeader atomic.Pointer[func(context.Context) bool]
	modeKnown  chan struct{} // closed by the first SetThreeXMode
	modeOnce   sync.Once
	// throughput turns the bytes delivered per lease into the
	// throughputKBps written with each renew on a KCL 3.x table.
	throughput *ThroughputRecorder

	// taker-goroutine state
	obs      map[string]observation
	legacy   CoordinatorState // last read of the legacy CoordinatorState table
	legacyAt time.Time        // when legacy was read; zero before the first read
	refusing string           // the taker's last reason to take nothing (refuseTaking)

	leaderMu     sync.Mutex
	leaderAt     time.Time
	leaderVal    bool
	leaderRounds int
}

// NewCoordinator returns a coordinator for cfg.WorkerID on store. Nothing
// runs until Run.
func NewCoordinator(store Store, cfg CoordinatorConfig, log *zap.Logger) *Coordinator {
	cfg.setDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	return &Coordinator{
		store: store, cfg: cfg,
		log:        log.With(zap.String("workerId", cfg.WorkerID)),
		held:       map[string]*heldLease{},
		obs:        map[string]observation{},
		modeKnown:  make(chan struct{}),
		throughput: NewThroughputRecorder(cfg.RenewerPeriod),
	}
}

// RecordDelivered notes bytes of record data handed to the processor of
// lease key (Java ProcessTask.publishLeaseStats); the next renew turns them
// into the lease's throughputKBps.
func (c *Coordinator) RecordDelivered(key string, bytes int) {
	c.throughput.Record(key, int64(bytes), c.cfg.Clock.Now())
}

// Config returns the effective configuration (defaults applied).
func (c *Coordinator) Config() CoordinatorConfig { return c.cfg }

// Run performs the start-up pass (re-acquire leases still owned by this
// worker id), then runs the renewer and the taker until ctx is done. On
// return every held lease has been dropped locally (ErrStopped); nothing is
// released in DynamoDB (call Release first for that).
func (c *Coordinator) Run(ctx context.Context) error {
	if c.cfg.WorkerID == "" {
		return errors.New("lease: coordinator needs a WorkerID")
	}
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("lease: coordinator already running")
	}
	c.running = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		for k, h := range c.held {
			delete(c.held, k)
			h.expiry.Stop()
			h.cancel(ErrStopped)
		}
		c.running = false
		c.mu.Unlock()
	}()

	c.startup(ctx)

	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); c.renewLoop(ctx) }()
	go func() { defer wg.Done(); c.takeLoop(ctx) }()
	go func() { defer wg.Done(); c.discoverLoop(ctx) }()
	go func() { defer wg.Done(); c.handoffLoop(ctx) }()
	wg.Wait()
	return nil
}

// startup re-acquires leases whose leaseOwner is this worker (Java
// DynamoDBLeaseRenewer.initialize):
// each is renewed once even if it looks expired.
func (c *Coordinator) startup(ctx context.Context) {
	ts, err := c.scan(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("start-up lease scan failed; leases will be taken by the taker", zap.Error(err))
		}
		return
	}
	c.threeX.Store(ts.State.ThreeX())
	leases := ts.Leases
	var wg sync.WaitGroup
	sem := make(chan struct{}, c.cfg.MaxLeaseRenewalThreads)
	for _, l := range leases {
		if l.Owner != c.cfg.WorkerID || l.CheckpointOwner != "" {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(l Lease) {
			defer wg.Done()
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, c.cfg.FailoverTime)
			defer cancel()
			sent := c.cfg.Clock.Now()
			nl, ok, err := c.renewStored(rctx, l)
			switch {
			case ok:
				c.addHeld(nl, sent)
				c.log.Info("re-acquired lease at start-up", zap.String("leaseKey", l.Key))
			case err != nil && ctx.Err() == nil:
				c.log.Warn("start-up renew failed", zap.String("leaseKey", l.Key), zap.Error(err))
			}
		}(l)
	}
	wg.Wait()
}

// renewStored performs W2 on l and the spurious-failure check on CCF. It
// returns the lease with the new counter and whether we own it.
func (c *Coordinator) renewStored(ctx context.Context, l Lease) (Lease, bool, error) {
	err := c.store.RenewLease(ctx, l, c.threeX.Load())
	if err == nil {
		l.Counter++
		return l, true, nil
	}
	if !errors.Is(err, ErrConditionFailed) {
		return l, false, err
	}
	if nl, ok, herr, handled := c.renewHandoffCCF(ctx, l, err); handled {
		return nl, ok, herr
	}
	// Spurious failure check: our previous attempt may have landed.
	cur, gerr := c.store.GetLease(ctx, l.Key)
	if gerr != nil {
		// Unknown, not lost (as in Java, where the re-read's exception leaves
		// the lease to local expiry): the error must not wrap
		// ErrConditionFailed, or the caller would drop a lease it may own.
		return l, false, fmt.Errorf("renew %s: condition failed (%v), and the re-read for a spurious failure failed: %w", l.Key, err, gerr)
	}
	if cur != nil && cur.ActualOwner() == c.cfg.WorkerID && cur.Owner == l.Owner && cur.Counter == l.Counter+1 &&
		(!c.threeX.Load() || cur.CheckpointOwner == l.CheckpointOwner) {
		l.Counter++
		return l, true, nil
	}
	return l, false, err
}

// addHeld adds l to the held set; sent is when the write that made it ours
// (take or start-up renew) was sent.
func (c *Coordinator) addHeld(l Lease, sent time.Time) *heldLease {
	ctx, cancel := context.WithCancelCause(context.Background())
	h := &heldLease{lease: l, token: uuid.NewString(), lastRenew: sent, ctx: ctx, cancel: cancel, handoffCh: make(chan struct{})}
	c.throughput.Seed(l, c.cfg.Clock.Now())
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		cancel(ErrStopped)
		return h
	}
	if old := c.held[l.Key]; old != nil {
		old.expiry.Stop()
		old.cancel(ErrLeaseLost)
	}
	c.held[l.Key] = h
	if l.CheckpointOwner != "" {
		c.startHandoffLocked(h) // a hand-off seen by the start-up renew
	}
	h.expiry = time.AfterFunc(c.untilExpiry(h), func() { c.expireIfStale(h) })
	c.mu.Unlock()
	return h
}

// untilExpiry is the time left before h expires locally (a little more, so
// that the check in expireIfStale sees it expired). c.mu must be held.
func (c *Coordinator) untilExpiry(h *heldLease) time.Duration {
	return max(c.cfg.FailoverTime-c.cfg.Clock.Now().Sub(h.lastRenew), 0) + time.Millisecond
}

// renewed records a successful counter increment sent at sent. c.mu must be
// held.
func (c *Coordinator) renewed(h *heldLease, counter int64, sent time.Time) {
	h.lease.Counter = counter
	if sent.After(h.lastRenew) {
		h.lastRenew = sent
	}
	h.expiry.Reset(c.untilExpiry(h))
}

// expireIfStale is h's expiry timer: it drops h once it has not been
// renewed within failover, however busy the renewer is.
func (c *Coordinator) expireIfStale(h *heldLease) {
	c.mu.Lock()
	if c.held[h.lease.Key] != h {
		c.mu.Unlock()
		return
	}
	if c.cfg.Clock.Now().Sub(h.lastRenew) <= c.cfg.FailoverTime {
		h.expiry.Reset(c.untilExpiry(h))
		c.mu.Unlock()
		return
	}
	key := h.lease.Key
	c.mu.Unlock()
	c.log.Warn("lease expired locally: not renewed within failover", zap.String("leaseKey", key))
	c.drop(h, fmt.Errorf("%w: %s not renewed within %s", ErrLeaseLost, key, c.cfg.FailoverTime))
}

// drop removes h from the held set (if it is still the entry for its key)
// and cancels its context with cause.
func (c *Coordinator) drop(h *heldLease, cause error) {
	c.mu.Lock()
	key := h.lease.Key
	current := c.held[key] == h
	if current {
		delete(c.held, key)
	}
	if h.expiry != nil {
		h.expiry.Stop()
	}
	c.mu.Unlock()
	if current {
		c.throughput.Drop(key)
	}
	// OnLost runs before the cancel so it happens-before <-Ctx.Done().
	if errors.Is(cause, ErrLeaseLost) && c.cfg.OnLost != nil {
		c.cfg.OnLost(key, cause)
	}
	h.cancel(cause)
}

// Held returns a snapshot of the held leases, sorted by lease key.
func (c *Coordinator) Held() []*Held {
	c.mu.Lock()
	out := make([]*Held, 0, len(c.held))
	for _, h := range c.held {
		out = append(out, &Held{Lease: h.lease, Token: h.token, Ctx: h.ctx, Handoff: h.handoffCh})
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b *Held) int { return strings.Compare(a.Lease.Key, b.Lease.Key) })
	return out
}

// StopTaking stops the taker from acquiring more leases (graceful stop);
// renewals continue.
func (c *Coordinator) StopTaking() { c.stopTaking.Store(true) }

func (c *Coordinator) renewLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.RenewerPeriod)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, c.cfg.MaxLeaseRenewalThreads)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.startRenewals(ctx, &wg, sem)
		}
	}
}

// renewAll renews every held lease (in parallel) and waits for the renewals.
func (c *Coordinator) renewAll(ctx context.Context) {
	var wg sync.WaitGroup
	c.startRenewals(ctx, &wg, make(chan struct{}, c.cfg.MaxLeaseRenewalThreads))
	wg.Wait()
}

// startRenewals starts a renewal of every held lease whose previous renewal
// has finished. Renewals do not wait for each other, so one slow or hung
// request cannot hold up the heart-beat of the other leases (each is
// bounded by its lease's local expiry). sem bounds parallel requests.
func (c *Coordinator) startRenewals(ctx context.Context, wg *sync.WaitGroup, sem chan struct{}) {
	c.mu.Lock()
	hs := make([]*heldLease, 0, len(c.held))
	for _, h := range c.held {
		hs = append(hs, h)
	}
	c.mu.Unlock()
	for _, h := range hs {
		if !h.renewing.CompareAndSwap(false, true) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer h.renewing.Store(false)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			c.renewHeld(ctx, h)
		}()
	}
}

func (c *Coordinator) renewHeld(ctx context.Context, h *heldLease) {
	h.io.Lock()
	defer h.io.Unlock()
	c.mu.Lock()
	if c.held[h.lease.Key] != h {
		c.mu.Unlock()
		return
	}
	l, last := h.lease, h.lastRenew
	c.mu.Unlock()
	if !c.handoffRenewable(l) {
		c.log.Warn("not renewing a lease pending a hand-off this worker does not own", zap.String("leaseKey", l.Key))
		c.drop(h, fmt.Errorf("%w: %s: pending hand-off not ours", ErrLeaseLost, l.Key))
		return
	}
	left := c.cfg.FailoverTime - c.cfg.Clock.Now().Sub(last)
	if left < 0 {
		c.log.Warn("lease expired locally: not renewed within failover", zap.String("leaseKey", l.Key))
		c.drop(h, fmt.Errorf("%w: %s not renewed within %s", ErrLeaseLost, l.Key, c.cfg.FailoverTime))
		return
	}
	// A renew that has not returned by the local expiry is useless: give up
	// then, releasing h.io for checkpoints and Release.
	rctx, cancel := context.WithTimeout(ctx, left+time.Millisecond)
	defer cancel()
	sent := c.cfg.Clock.Now()
	if tp := c.throughput.ThroughputKBps(l.Key, sent); tp != nil {
		l.ThroughputKBps = tp
	}
	nl, ok, err := c.renewStored(rctx, l)
	switch {
	case ok:
		c.mu.Lock()
		c.renewed(h, nl.Counter, sent)
		h.lease.ThroughputKBps = nl.ThroughputKBps
		c.adoptHandoffLocked(h, nl)
		c.mu.Unlock()
	case errors.Is(err, ErrConditionFailed):
		c.log.Info("lease lost: renew condition failed", zap.String("leaseKey", l.Key))
		c.drop(h, fmt.Errorf("%w: %s: renew: %w", ErrLeaseLost, l.Key, err))
	case ctx.Err() != nil:
	default:
		c.log.Warn("renew failed; lease will expire locally unless a later renew succeeds", zap.String("leaseKey", l.Key), zap.Error(err))
	}
}

func (c *Coordinator) takeLoop(ctx context.Context) {
	if c.cfg.AwaitMode && !c.awaitMode(ctx) {
		return
	}
	for {
		res, err := c.takeOnce(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Warn("lease taker run failed", zap.Error(err))
		}
		if c.cfg.OnTake != nil && ctx.Err() == nil {
			c.cfg.OnTake(res)
		}
		t := time.NewTimer(c.cfg.TakerPeriod)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// awaitMode waits for the first SetThreeXMode, at most FailoverTime: a
// client version that cannot be read (say, no access to a legacy
// CoordinatorState table) must not stop a 2.x worker for good; the taker
// still refuses a table whose Migration3.0 it sees in 3.x. It reports false
// when ctx ended.
func (c *Coordinator) awaitMode(ctx context.Context) bool {
	t := time.NewTimer(c.cfg.FailoverTime)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-c.modeKnown:
	case <-t.C:
		c.log.Warn("the table's KCL client version is not known yet; the lease taker starts in 2.x mode")
	}
	return true
}

// scan is one taker scan (Java DynamoDBLeaseTaker.updateAllLeases →
// listLeases): the leases and the coordinator state, which on a 3.5 table
// comes with the scan and on a 3.0–3.4 fleet is read from the legacy
// CoordinatorState table at most every LegacyStateRefresh. It runs on the
// taker goroutine (and once before it starts).
func (c *Coordinator) scan(ctx context.Context) (TableScan, error) {
	ts, err := c.store.ScanTable(ctx)
	if err != nil {
		return ts, err
	}
	now := c.cfg.Clock.Now()
	if c.legacyAt.IsZero() || now.Sub(c.legacyAt) >= c.cfg.LegacyStateRefresh {
		legacy, err := c.store.LegacyCoordinatorState(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("reading the legacy coordinator state table; keeping the previous answer", zap.Error(err))
			}
		} else {
			c.legacy, c.legacyAt = legacy, now
		}
	}
	ts.State = ts.State.orElse(c.legacy)
	return ts, nil
}

// takeOnce is one run of the KCL 2.x lease taker (Java
// DynamoDBLeaseTaker.takeLeases).
func (c *Coordinator) takeOnce(ctx context.Context) (TakeResult, error) {
	if c.stopTaking.Load() {
		return TakeResult{Skipped: "stopped"}, nil
	}
	if c.threeXMode.Load() {
		return TakeResult{Skipped: c.refuseTaking(CoordinatorState{})}, nil
	}
	start := c.cfg.Clock.Now()
	ts, err := c.scan(ctx)
	if err != nil {
		return TakeResult{}, fmt.Errorf("list leases: %w", err)
	}
	c.threeX.Store(ts.State.ThreeX() || c.threeXMode.Load())
	if why := c.refuseTaking(ts.State); why != "" {
		return TakeResult{Skipped: why}, nil
	}
	scanTime := c.cfg.Clock.Now()
	observe(c.obs, ts.Leases, scanTime)
	p := takeParams{
		me: c.cfg.WorkerID, failover: c.cfg.FailoverTime, veryOldThreshold: c.cfg.VeryOldThreshold,
		maxForWorker: c.cfg.MaxLeasesForWorker, maxSteal: c.cfg.MaxLeasesToStealAtOneTime,
		priority: c.cfg.EnablePriorityLeaseAssignment, held: c.heldKeySet(),
	}
	toTake, res := planTake(p, ts.Leases, c.obs, scanTime, c.cfg.Rand)
	// Java re-reads steal candidates when the scan took longer than half a
	// renew interval (DynamoDBLeaseTaker.takeLeases).
	reread := res.Steal && scanTime.Sub(start) > c.cfg.FailoverTime/6
	for _, l := range toTake {
		if ctx.Err() != nil || c.threeXMode.Load() {
			break // stopped, or switched to 3.x mode during the run
		}
		if c.take(ctx, l, reread, res.Steal) {
			res.Taken++
		} else {
			res.Untaken++
		}
	}
	return res, nil
}

// discoverLoop runs discover every DiscoveryPeriod in KCL 3.x mode (Java
// LeaseDiscoveryRunnable, scheduled at a fixed rate).
func (c *Coordinator) discoverLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.DiscoveryPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c.threeXMode.Load() && !c.stopTaking.Load() {
			c.discover(ctx)
		}
	}
}

// discover is Java DynamoDBLeaseDiscoverer.discoverNewLeases, run in KCL
// 3.x mode, where the lock leader assigns the leases: the keys the
// LeaseOwnerToLeaseKeyIndex GSI lists for this worker and not held yet are
// re-read (consistently) and held when leaseOwner is this worker and no
// hand-off is pending (no checkpointOwner); the next renew proves ownership.
// It returns how many leases it added.
func (c *Coordinator) discover(ctx context.Context) int {
	var st DiscoveryStats
	start := c.cfg.Clock.Now()
	defer func() {
		st.Latency = c.cfg.Clock.Now().Sub(start)
		if c.cfg.OnDiscover != nil && ctx.Err() == nil {
			c.cfg.OnDiscover(st)
		}
	}()
	keys, err := c.store.ListLeaseKeysForWorker(ctx, c.cfg.WorkerID)
	listed := c.cfg.Clock.Now()
	st.ListLatency = listed.Sub(start)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("lease discovery through the lease-owner index failed", zap.Error(err))
		}
		return 0
	}
	held := c.heldKeySet()
	for _, k := range keys {
		if held[k] || ctx.Err() != nil {
			continue
		}
		l, err := c.store.GetLease(ctx, k)
		switch {
		case err != nil:
			st.GetLeaseErrors++
			continue
		case l != nil && l.Owner != c.cfg.WorkerID:
			st.OwnerMismatch++
			continue
		case l == nil || l.CheckpointOwner != "":
			continue
		}
		c.addHeld(*l, c.cfg.Clock.Now())
		st.NewLeases++
		c.log.Info("discovered a lease assigned by the KCL 3.x leader", zap.String("leaseKey", k))
	}
	st.Success, st.FetchLatency = true, c.cfg.Clock.Now().Sub(listed)
	return st.NewLeases
}

// DiscoveryStats are the figures of one discovery run (Java
// DynamoDBLeaseDiscoverer.discoverNewLeases metrics): Success is false when
// the index could not be listed; GetLeaseErrors and OwnerMismatch count the
// re-reads that failed or found another owner.
type DiscoveryStats struct {
	Success                            bool
	Latency, ListLatency, FetchLatency time.Duration
	NewLeases                          int
	OwnerMismatch, GetLeaseErrors      int
}

// heldKeySet returns the keys of the leases held now.
func (c *Coordinator) heldKeySet() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	held := make(map[string]bool, len(c.held))
	for k := range c.held {
		held[k] = true
	}
	return held
}

// take takes (W3) one lease chosen by planTake, first re-reading it when
// reread is set, and adds it to the held set. It reports success.
func (c *Coordinator) take(ctx context.Context, l Lease, reread, steal bool) bool {
	if reread {
		cur, err := c.store.GetLease(ctx, l.Key)
		if err != nil || cur == nil {
			return false
		}
		l = *cur
	}
	sent := c.cfg.Clock.Now()
	err := c.store.TakeLease(ctx, l, c.cfg.WorkerID)
	if errors.Is(err, ErrConditionFailed) && c.landed(ctx, l.Key, l.Counter+1, nil) {
		err = nil // an earlier attempt whose response was lost took it
	}
	if err != nil {
		if !errors.Is(err, ErrConditionFailed) && ctx.Err() == nil {
			c.log.Warn("take lease failed", zap.String("leaseKey", l.Key), zap.Error(err))
		}
		return false
	}
	prev := l.Owner
	if (l.Owner != "" && l.Owner != c.cfg.WorkerID) || l.CheckpointOwner == c.cfg.WorkerID {
		l.OwnerSwitchesSinceCheckpoint++
	}
	l.Owner, l.CheckpointOwner = c.cfg.WorkerID, ""
	l.Counter++
	c.addHeld(l, sent)
	c.log.Info("took lease", zap.String("leaseKey", l.Key), zap.String("previousOwner", prev), zap.Bool("steal", steal))
	return true
}

// landed reports whether a conditional write of ours that got a CCF had in
// fact landed on an earlier attempt (lost response, retried by the SDK or the
// store): the item is owned by us at exactly counter want (and carries
// checkpoint cp when given).
func (c *Coordinator) landed(ctx context.Context, key string, want int64, cp *seqnum.ESN) bool {
	cur, err := c.store.GetLease(ctx, key)
	if err != nil || cur == nil || cur.Owner != c.cfg.WorkerID || cur.Counter != want {
		return false
	}
	return cp == nil || cur.Checkpoint == *cp
}

// lockHeld returns the held lease of key with its io lock taken (writes on
// it are serialised), or ErrNotHeld when key is not held, before or after
// waiting for the lock. unlock releases the io lock.
func (c *Coordinator) lockHeld(key string) (h *heldLease, unlock func(), err error) {
	c.mu.Lock()
	h = c.held[key]
	c.mu.Unlock()
	if h == nil {
		return nil, nil, ErrNotHeld
	}
	h.io.Lock()
	c.mu.Lock()
	current := c.held[key] == h
	c.mu.Unlock()
	if !current {
		h.io.Unlock()
		return nil, nil, ErrNotHeld
	}
	return h, h.io.Unlock, nil
}

// Release gives up a held lease in DynamoDB (beyond Java): condition
// leaseCounter = N AND leaseOwner = me, REMOVE leaseOwner, SET leaseCounter =
// N+1, so any worker (Java included) can take it at once. The lease is
// dropped locally and its context cancelled with ErrReleased in every case,
// except a lease being handed off (KCL 3.x, also one whose W9 only the
// release's CCF shows): that one is transferred to its next owner instead
// (lease/handoff.go), its context ending with ErrHandedOff.
func (c *Coordinator) Release(ctx context.Context, key string) error {
	h, unlock, err := c.lockHeld(key)
	if err != nil {
		return fmt.Errorf("release %s: %w", key, err)
	}
	defer unlock()
	c.mu.Lock()
	l, handingOff := h.lease, h.handoff != nil
	c.mu.Unlock()
	if handingOff {
		// Releasing a lease being handed off gives it to its new owner, as
		// Java's worker-level graceful shutdown does (ShutdownNotificationTask
		// → attemptLeaseTransfer).
		return c.transfer(ctx, h, "released")
	}
	err = c.store.ReleaseLease(ctx, l, c.cfg.WorkerID)
	if errors.Is(err, ErrConditionFailed) {
		cur, gerr := c.store.GetLease(ctx, key)
		switch {
		case gerr != nil || cur == nil:
		case cur.Owner == "" && cur.Counter == l.Counter+1:
			// Only our release leaves the lease unowned at exactly N+1: an
			// earlier attempt whose response was lost did it.
			err = nil
		case c.handoffFromUs(*cur):
			return c.transferUnnoticed(ctx, h, *cur)
		}
	}
	c.drop(h, ErrReleased)
	if err != nil {
		if errors.Is(err, ErrConditionFailed) {
			return fmt.Errorf("release %s: %w: %w", key, ErrLeaseLost, err)
		}
		return fmt.Errorf("release %s: %w", key, err)
	}
	c.log.Info("released lease", zap.String("leaseKey", key))
	return nil
}

// IsLeader reports whether this worker is the shard-sync leader. In KCL 3.x
// mode that is the holder of the Leader lock (SetLockLeader; Java
// DynamoDBLockBasedLeaderDecider). Otherwise it is the KCL 2.x leader: the
// first of ShuffleLeaders(all lease owners), or every worker when no lease is
// owned (Java DeterministicShuffleShardSyncLeaderDecider.isLeader); that
// answer is reused for LeaderFirstRefresh, then LeaderRefresh.
func (c *Coordinator) IsLeader(ctx context.Context) bool {
	if c.threeXMode.Load() {
		return c.lockLeaderAnswer(ctx)
	}
	c.leaderMu.Lock()
	defer c.leaderMu.Unlock()
	now := c.cfg.Clock.Now()
	if c.leaderRounds > 0 {
		ttl := c.cfg.LeaderRefresh
		if c.leaderRounds == 1 {
			ttl = c.cfg.LeaderFirstRefresh
		}
		if now.Sub(c.leaderAt) < ttl {
			return c.leaderVal
		}
	}
	leases, err := c.store.ListLeases(ctx)
	if err != nil {
		c.log.Warn("leader election scan failed; keeping previous answer", zap.Error(err))
		return c.leaderVal
	}
	owners := make([]string, 0, len(leases))
	for _, l := range leases {
		owners = append(owners, l.Owner)
	}
	order := ShuffleLeaders(owners)
	c.leaderVal = len(order) == 0 || order[0] == c.cfg.WorkerID
	c.leaderAt = now
	c.leaderRounds++
	return c.leaderVal
}
