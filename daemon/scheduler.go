package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
)

// MinShutdownGrace is the least graceful-stop budget (docs/operations.md
// "Signals and exit codes"): Java's default shutdownGraceMillis of 0 would
// leave no time for shutdownRequested, leaseLost and the lease release.
const MinShutdownGrace = 20 * time.Second

// Config holds the scheduler's timing and policy knobs (from properties).
type Config struct {
	// WorkerID is this worker's lease owner name (for logs).
	WorkerID string
	// DispatchInterval is how often held leases are reconciled with running
	// consumers (Java shardConsumerDispatchPollInterval, 1 s).
	DispatchInterval time.Duration
	// ParentShardPollInterval is the parent-gate poll (parentShardPollIntervalMillis).
	ParentShardPollInterval time.Duration
	// TaskBackoff is the first back-off after a failed task (taskBackoffTimeMillis);
	// it doubles per consecutive failure up to MaxBackoff.
	TaskBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxChildFailures consecutive failures release the lease; 0 = never.
	MaxChildFailures int
	// Cooldown is how long a released-after-failures shard is not consumed
	// locally (default 2 × failover time).
	Cooldown time.Duration
	// CallProcessRecordsEvenForEmptyRecordList sends empty batches too.
	CallProcessRecordsEvenForEmptyRecordList bool
	// ShutdownGrace bounds the graceful stop: max(shutdownGraceMillis,
	// MinShutdownGrace), and MinShutdownGrace when zero.
	ShutdownGrace time.Duration
	// ChildCloseTimeout bounds one child Close call.
	ChildCloseTimeout time.Duration
	// InitAttempts and InitBackoff bound the start-up shard sync retries
	// (Java: 20 attempts, schedulerInitializationBackoffTimeMillis apart).
	InitAttempts int
	InitBackoff  time.Duration
	// SkipInitialSync skips the start-up shard sync (set by the caller when
	// skipShardSyncAtWorkerInitializationIfLeasesExist holds and leases exist).
	SkipInitialSync bool
	// LeasesTaken, when set, is signalled after each lease-taker run: the
	// scheduler reconciles at once, so a shard consumer starts as
	// soon as its lease is held instead of at the next DispatchInterval tick
	// (docs/compatibility.md, start-up). Nil keeps the tick alone.
	LeasesTaken <-chan struct{}
	// StuckShardAfter is the stuck-shard watchdog's threshold
	// (stuckShardThresholdMillis); 0 turns the watchdog off.
	StuckShardAfter time.Duration
	// StuckShardRestartChild restarts a stuck shard's child.
	StuckShardRestartChild bool
	// StuckShardFailsReadiness makes Ready fail while a shard is stuck.
	StuckShardFailsReadiness bool
}

func (c *Config) setDefaults() {
	if c.DispatchInterval <= 0 {
		c.DispatchInterval = time.Second
	}
	java := properties.Defaults()
	if c.ParentShardPollInterval <= 0 {
		c.ParentShardPollInterval = java.ParentShardPollInterval
	}
	if c.TaskBackoff <= 0 {
		c.TaskBackoff = java.TaskBackoffTime
	}
	if c.MaxBackoff < c.TaskBackoff {
		c.MaxBackoff = max(30*time.Second, c.TaskBackoff)
	}
	if c.Cooldown <= 0 {
		c.Cooldown = 20 * time.Second
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = MinShutdownGrace
	}
	if c.ChildCloseTimeout <= 0 {
		c.ChildCloseTimeout = 10 * time.Second
	}
	if c.InitAttempts <= 0 {
		c.InitAttempts = 20
	}
	if c.InitBackoff <= 0 {
		c.InitBackoff = java.SchedulerInitializationBackoffTime
	}
}

// Deps are the scheduler's collaborators.
type Deps struct {
	Coordinator Coordinator
	Store       LeaseReader
	Syncer      ShardSyncer
	Cleaner     Cleaner
	Sources     SourceFactory
	Children    ChildFactory
	Log         *zap.Logger
	// Metrics is optional.
	Metrics Metrics
}

func (d *Deps) validate() error {
	var missing []string
	if d.Coordinator == nil {
		missing = append(missing, "Coordinator")
	}
	if d.Store == nil {
		missing = append(missing, "Store")
	}
	if d.Syncer == nil {
		missing = append(missing, "Syncer")
	}
	if d.Cleaner == nil {
		missing = append(missing, "Cleaner")
	}
	if d.Sources == nil {
		missing = append(missing, "Sources")
	}
	if d.Children == nil {
		missing = append(missing, "Children")
	}
	if len(missing) > 0 {
		return fmt.Errorf("daemon: missing dependencies %v", missing)
	}
	return nil
}

// Scheduler runs one shard consumer per held lease (one per process).
type Scheduler struct {
	cfg  Config
	deps Deps
	log  *zap.Logger

	mu        sync.Mutex
	consumers map[string]*consumer // by lease key, while running
	finished  map[string]bool      // shard completed here: never restart
	cooldown  map[string]time.Time // released after failures: until
	wg        sync.WaitGroup       // consumer goroutines
	phase     phase                // guarded by mu
	loopBeat  atomic.Int64         // unix nanos of the scheduler loop's last turn (Live)
	childGen  atomic.Int64         // generation of the child factory's settings (RestartChildren)
}

// phase is the scheduler's life-cycle stage, for health checks.
type phase int

const (
	phaseStarting phase = iota
	phaseRunning
	phaseStopping
	phaseStopped
)

// ErrNotRunning is returned by Healthy while the scheduler is starting or stopping.
var ErrNotRunning = errors.New("daemon: scheduler not running")

// Healthy returns nil while the scheduler runs (after the start-up shard
// sync, before a stop), ErrNotRunning otherwise.
func (s *Scheduler) Healthy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.phase {
	case phaseRunning:
		return nil
	case phaseStarting:
		return fmt.Errorf("%w: starting", ErrNotRunning)
	case phaseStopping:
		return fmt.Errorf("%w: stopping", ErrNotRunning)
	}
	return fmt.Errorf("%w: stopped", ErrNotRunning)
}

func (s *Scheduler) setPhase(p phase) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

// ShardStatus is one consumer's state, for logs and health.
type ShardStatus struct {
	LeaseKey string
	State    State
}

// New returns a scheduler; Run starts it.
func New(cfg Config, deps Deps) (*Scheduler, error) {
	if err := deps.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if deps.Log == nil {
		deps.Log = zap.NewNop()
	}
	if deps.Metrics == nil {
		deps.Metrics = nopMetrics{}
	}
	return &Scheduler{
		cfg:       cfg,
		deps:      deps,
		log:       deps.Log,
		consumers: map[string]*consumer{},
		finished:  map[string]bool{},
		cooldown:  map[string]time.Time{},
	}, nil
}

// consumerList returns the current consumers ordered by lease key.
func (s *Scheduler) consumerList() []*consumer {
	s.mu.Lock()
	cs := slices.Collect(maps.Values(s.consumers))
	s.mu.Unlock()
	slices.SortFunc(cs, func(a, b *consumer) int { return strings.Compare(a.key, b.key) })
	return cs
}

// Status returns the running consumers' states sorted by lease key.
func (s *Scheduler) Status() []ShardStatus {
	cs := s.consumerList()
	out := make([]ShardStatus, 0, len(cs))
	for _, c := range cs {
		out = append(out, ShardStatus{LeaseKey: c.key, State: c.State()})
	}
	return out
}

// Run syncs shards, starts the coordinator, the periodic shard sync and the
// cleaner, and reconciles held leases with consumers until ctx is done. Then
// it stops gracefully: no more taking; each consumer gets shutdownRequested,
// leaseLost and its lease released; bounded by ShutdownGrace, after which
// children are killed. It returns nil after a graceful stop.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.cfg.SkipInitialSync {
		if err := s.initialSync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}

	// The coordinator keeps renewing during the graceful stop, so it gets a
	// context of its own, cancelled last.
	coordCtx, coordCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer coordCancel()
	// periodicCtx bounds the periodic shard sync and the cleaner: both end
	// with ctx.
	periodicCtx, periodicCancel := context.WithCancel(ctx)
	defer periodicCancel()
	// hardStopCtx bounds what must still run after ctx ends (child calls,
	// closing children, lease releases); it is cancelled when the graceful
	// stop's deadline passes.
	hardStopCtx, hardCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hardCancel()

	var bg sync.WaitGroup
	coordDone := s.startBackground(coordCtx, periodicCtx, &bg)
	runErr := s.dispatch(ctx, hardStopCtx, coordDone)

	s.setPhase(phaseStopping)
	s.shutdown(hardStopCtx, hardCancel)
	periodicCancel()
	coordCancel()
	bg.Wait()
	if err := <-coordDone; err != nil && runErr == nil && !errors.Is(err, context.Canceled) {
		s.log.Debug("lease coordinator returned", zap.Error(err))
	}
	s.setPhase(phaseStopped)
	s.log.Info("scheduler stopped")
	return runErr
}

// startBackground starts the coordinator (its result goes to the returned
// channel, buffered), the periodic shard sync and the cleaner, each owned by
// bg.
func (s *Scheduler) startBackground(coordCtx, periodicCtx context.Context, bg *sync.WaitGroup) chan error {
	coordDone := make(chan error, 1)
	bg.Add(3)
	go func() {
		defer bg.Done()
		coordDone <- s.deps.Coordinator.Run(coordCtx)
	}()
	go func() {
		defer bg.Done()
		if err := s.deps.Syncer.RunPeriodic(periodicCtx, s.deps.Coordinator.IsLeader); err != nil && periodicCtx.Err() == nil {
			s.log.Error("periodic shard sync stopped", zap.Error(err))
		}
	}()
	go func() {
		defer bg.Done()
		if err := s.deps.Cleaner.Run(periodicCtx); err != nil && periodicCtx.Err() == nil {
			s.log.Error("lease cleaner stopped", zap.Error(err))
		}
	}()
	return coordDone
}

// dispatch reconciles held leases with consumers every DispatchInterval
// (and after each taker run) until ctx is done or the coordinator fails;
// a coordinator failure is returned and its result put back on coordDone.
func (s *Scheduler) dispatch(ctx, hardStopCtx context.Context, coordDone chan error) error {
	s.loopBeat.Store(time.Now().UnixNano())
	s.setPhase(phaseRunning)
	s.log.Info("scheduler started", zap.String("workerId", s.cfg.WorkerID))
	tick := time.NewTicker(s.cfg.DispatchInterval)
	defer tick.Stop()
	for {
		s.reconcile(hardStopCtx)
		now := time.Now()
		s.watchStuck(now)
		s.loopBeat.Store(now.UnixNano())
		select {
		case <-ctx.Done():
			return nil
		case err := <-coordDone:
			// The coordinator only returns early on a fatal error.
			coordDone <- err
			return fmt.Errorf("lease coordinator stopped: %w", err)
		case <-tick.C:
		case <-s.cfg.LeasesTaken:
		}
	}
}

func (s *Scheduler) initialSync(ctx context.Context) error {
	var err error
	for i := 0; i < s.cfg.InitAttempts; i++ {
		if err = s.deps.Syncer.Sync(ctx); err == nil {
			return nil
		}
		s.log.Warn("initial shard sync failed", zap.Error(err), zap.Int("attempt", i+1))
		if !sleepCtx(ctx, s.cfg.InitBackoff) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("initial shard sync: %w", err)
}

// reconcile starts a consumer for every newly held lease and ends consumers
// whose lease left the held set.
func (s *Scheduler) reconcile(hardStopCtx context.Context) {
	held := s.deps.Coordinator.Held()
	byKey := make(map[string]*lease.Held, len(held))
	for _, h := range held {
		byKey[h.Lease.Key] = h
	}
	now := time.Now()
	var release []string

	s.mu.Lock()
	for k := range s.finished {
		if _, ok := byKey[k]; !ok {
			// Deleted by the cleaner or taken elsewhere; should it come back,
			// a new consumer just confirms SHARD_END without a child.
			delete(s.finished, k)
		}
	}
	for k, c := range s.consumers {
		if h, ok := byKey[k]; !ok || h.Token != c.held.Token {
			c.leaseGone()
		}
	}
	for _, h := range held {
		k := h.Lease.Key
		if s.finished[k] {
			continue
		}
		if until, ok := s.cooldown[k]; ok {
			if now.Before(until) {
				release = append(release, k)
				continue
			}
			delete(s.cooldown, k)
		}
		if _, running := s.consumers[k]; running {
			continue // same token, or the old consumer is still finishing
		}
		if h.Ctx.Err() != nil {
			continue
		}
		c := newConsumer(s, h, hardStopCtx)
		s.consumers[k] = c
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.run(hardStopCtx)
			s.consumerDone(c)
		}()
	}
	s.mu.Unlock()

	for _, k := range release {
		s.log.Info("lease in cool-down after repeated failures; releasing again", zap.String("leaseKey", k))
		if err := s.deps.Coordinator.Release(hardStopCtx, k); err != nil {
			s.log.Warn("releasing lease failed", zap.String("leaseKey", k), zap.Error(err))
		}
	}
}

func (s *Scheduler) consumerDone(c *consumer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.consumers[c.key] == c {
		delete(s.consumers, c.key)
	}
	switch c.result {
	case outcomeShardEnd:
		s.finished[c.key] = true
	case outcomeReleased:
		s.cooldown[c.key] = time.Now().Add(s.cfg.Cooldown)
	}
}

// shutdown is the graceful stop (architecture decision 5).
func (s *Scheduler) shutdown(hardStopCtx context.Context, hardCancel context.CancelFunc) {
	s.log.Info("graceful stop: shutting down shard consumers", zap.Duration("deadline", s.cfg.ShutdownGrace))
	s.deps.Coordinator.StopTaking()
	s.mu.Lock()
	for _, c := range s.consumers {
		c.requestStop()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	timer := time.NewTimer(s.cfg.ShutdownGrace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.log.Warn("graceful stop deadline passed; killing remaining children")
		hardCancel()
		<-done
	}

	// Release what is still held without a consumer (finished shards,
	// cool-downs) so other workers take it at once.
	relCtx, cancel := context.WithTimeout(context.WithoutCancel(hardStopCtx), 5*time.Second)
	defer cancel()
	for _, h := range s.deps.Coordinator.Held() {
		if h.Ctx.Err() != nil {
			continue
		}
		if err := s.deps.Coordinator.Release(relCtx, h.Lease.Key); err != nil {
			s.log.Warn("releasing lease failed", zap.String("leaseKey", h.Lease.Key), zap.Error(err))
		}
	}
}
