// Package lam is the KCL 3.x LeaseAssignmentManager (Java
// LeaseAssignmentManager): it runs on every worker in KCL 3.x mode, acts
// only while this worker holds the Leader lock, and on each run loads the
// leases and worker metrics, decides which lease goes where (lease/assign)
// and writes the moves: W8 for expired or unassigned leases, W9 (graceful
// hand-off) for live ones. See docs/architecture.md "KCL 3.x mode".
package lam

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/assign"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/seqnum"
)

// Leader is the KCL 3.x leader decision (lease/leader Decider).
type Leader interface {
	IsLeader(ctx context.Context) bool
	ReleaseLeadershipIfHeld(ctx context.Context)
}

// termScoped is a Leader whose leadership term can scope a run (lease/leader
// Decider.LeadershipContext: cancelled the moment the lock is lost).
type termScoped interface {
	LeadershipContext(parent context.Context) (context.Context, context.CancelFunc)
}

// Store is what the manager reads and writes; lease.DynamoStore implements
// it.
type Store interface {
	LoadAssignmentView(ctx context.Context, legacyMetricsTable string) (lease.AssignmentView, error)
	AssignLease(ctx context.Context, l lease.Lease, newOwner string) (lease.Lease, error)
	InitiateHandoff(ctx context.Context, l lease.Lease, newOwner string) (lease.Lease, error)
	DeleteWorkerMetrics(ctx context.Context, legacyMetricsTable string, w lease.WorkerMetricsEntry) (bool, error)
}

// Config configures a Manager. Zero values take the Java defaults.
type Config struct {
	WorkerID string
	// FailoverTime is failoverTimeMillis (Java leaseDurationMillis): a lease
	// whose counter has not moved for longer is expired.
	FailoverTime time.Duration
	// Interval is leaseAssignmentIntervalMillis (default 2 × FailoverTime);
	// runs are spaced by it (fixed delay, the first at once).
	Interval time.Duration
	// VarianceBalancingFrequency: balancing runs on the first run after
	// gaining leadership and on every n-th run after it (default 3).
	VarianceBalancingFrequency int
	// GracefulHandoff is isGracefulLeaseHandoffEnabled (Java default true;
	// callers pass the parsed property) and HandoffTimeout
	// gracefulLeaseHandoffTimeoutMillis (default 30 s).
	GracefulHandoff bool
	HandoffTimeout  time.Duration
	// StaleMetricsCleanup is staleWorkerMetricsEntryCleanupDuration
	// (default 1 day).
	StaleMetricsCleanup time.Duration
	// LegacyMetricsTable is the <app>-WorkerMetricStats table, read (and
	// cleaned) unless the 3.5 table migration is COMPLETE.
	LegacyMetricsTable string
	// Assign configures the decision.
	Assign assign.Config
	// WriteParallelism bounds the assignment writes in flight (default: the
	// number of CPUs, Java's LEASE_ASSIGNMENT_CALL_THREAD_POOL).
	WriteParallelism int
	// Clock is the monotonic clock for lease observations (default
	// time.Now); WallClock the wall clock for worker-metrics lut (default
	// time.Now).
	Clock     lease.Clock
	WallClock func() time.Time
	// OnRun, if set, is called after every run this worker led (metrics).
	OnRun func(RunStats)
	// OnNotLeader, if set, is called after every run that found another
	// worker leading, with its duration (Java performAssignment's Success =
	// 1 and Time on a non-leader).
	OnNotLeader func(took time.Duration)
}

func (c *Config) setDefaults() {
	java := properties.Defaults()
	if c.FailoverTime <= 0 {
		c.FailoverTime = java.FailoverTime
	}
	if c.Interval <= 0 {
		c.Interval = 2 * c.FailoverTime
	}
	if c.VarianceBalancingFrequency <= 0 {
		c.VarianceBalancingFrequency = java.VarianceBalancingFrequency
	}
	if c.HandoffTimeout <= 0 {
		c.HandoffTimeout = java.GracefulLeaseHandoffTimeout
	}
	if c.StaleMetricsCleanup <= 0 {
		c.StaleMetricsCleanup = java.StaleWorkerMetricsEntryCleanupDuration
	}
	if c.WriteParallelism <= 0 {
		c.WriteParallelism = runtime.NumCPU()
	}
	if c.Clock == nil {
		c.Clock = lease.SystemClock{}
	}
	if c.WallClock == nil {
		c.WallClock = time.Now
	}
}

// failuresToRelease is Java LeaseAssignmentManager
// DEFAULT_FAILURE_COUNT_TO_SWITCH_LEADER: after this many failed runs in a
// row the leader releases the lock (after 1 when the run panicked, as Java
// does for an Error).
const failuresToRelease = 3

// RunStats are the figures of one run this worker led (Java
// LeaseAssignmentManager metrics of the same names).
type RunStats struct {
	At                      time.Time
	Success                 bool
	Err                     string
	TotalLeases, NumWorkers int
	ExpiredLeases           int
	LeaseSpillover          int
	NumOfLeasesReassignment int
	// Assigned (W8) and HandoffsStarted (W9) are the writes that landed;
	// FailedAssignmentCount the ones whose condition failed; Blocked the
	// moves skipped while a hand-off waits for its checkpoint.
	Assigned, HandoffsStarted int
	FailedAssignmentCount     int
	Blocked                   int
	// StaleMetricsDeleted counts WorkerMetricStats entries removed.
	StaleMetricsDeleted int
	// ForceLeaderRelease is set when this run released the lock.
	ForceLeaderRelease bool
	Latency            time.Duration
	// Loaded: the leases and worker metrics were read (LoadLatency, Java
	// LeaseAndWorkerMetricsLoad); Balanced: variance balancing ran this run
	// (NumOfLeasesReassignment counts its moves); Wrote: the assignment
	// writes were attempted (WriteLatency and WriteOK, Java
	// ParallelyAssignLeases).
	Loaded, Balanced, Wrote, WriteOK bool
	LoadLatency, WriteLatency        time.Duration
}

// Status is what operators see of the manager.
type Status struct {
	// Leading: the last run found this worker holding the lock.
	Leading bool
	// LastRun are the figures of the last run this worker led (zero when it
	// never led).
	LastRun RunStats
	// ConsecutiveFailures is the count that releases the lock at 3.
	ConsecutiveFailures int
	// ForcedReleases counts lock releases after failed runs.
	ForcedReleases int
	// Totals of the writes of every run this manager led: W8, W9, and
	// assignments whose condition failed.
	TotalAssigned, TotalHandoffsStarted, TotalFailedAssignments int
}

// Manager is the LeaseAssignmentManager of one worker.
type Manager struct {
	store  Store
	leader Leader
	cfg    Config
	log    *zap.Logger

	// run-goroutine state (Java prevRunLeasesState, tookOverLeadershipInThisRun,
	// lamRunCounter, noOfContinuousFailedAttempts)
	seen     map[string]observed
	tookOver bool
	runCount int
	failures int

	mu     sync.Mutex
	status Status

	// decide is assign.Decide (replaced by unit tests).
	decide func(assign.Input, assign.Config) assign.Plan
}

// New returns a manager; nothing runs until Run.
func New(store Store, leader Leader, cfg Config, log *zap.Logger) *Manager {
	cfg.setDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	return &Manager{store: store, leader: leader, cfg: cfg, log: log, seen: map[string]observed{}, decide: assign.Decide}
}

// Config returns the effective configuration.
func (m *Manager) Config() Config { return m.cfg }

// Status returns a snapshot for operators.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

// Run performs an assignment run at once and then every Interval after the
// previous one ended (Java scheduleWithFixedDelay), until ctx is done.
// Leadership is left alone on return (the caller releases the lock).
func (m *Manager) Run(ctx context.Context) {
	m.tookOver = false // a restarted manager re-learns the leases (Java start)
	m.log.Info("lease assignment manager started", zap.Duration("interval", m.cfg.Interval),
		zap.String("strategy", string(m.cfg.Assign.Strategy)))
	defer m.log.Info("lease assignment manager stopped")
	for {
		m.RunOnce(ctx)
		t := time.NewTimer(m.cfg.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// RunOnce is one run (Java LeaseAssignmentManager.performAssignment).
func (m *Manager) RunOnce(ctx context.Context) {
	asked := m.cfg.Clock.Now()
	if !m.leader.IsLeader(ctx) {
		if ctx.Err() == nil {
			m.tookOver = false
			m.setLeading(false)
			if m.cfg.OnNotLeader != nil {
				m.cfg.OnNotLeader(m.cfg.Clock.Now().Sub(asked))
			}
		}
		return
	}
	if !m.tookOver {
		// A leader change: forget what an earlier term observed (Java
		// prepareAfterLeaderSwitch).
		m.tookOver = true
		m.runCount = 0
		m.failures = 0
		clear(m.seen)
		m.log.Info("leading: this worker assigns the leases")
	}
	start := m.cfg.Clock.Now()
	runCtx, endRun := m.termContext(ctx)
	stats, panicked, err := m.guardedRun(runCtx)
	lost := context.Cause(runCtx)
	endRun()
	if ctx.Err() != nil {
		return // stopped mid-run: neither a success nor a failure
	}
	if lost != nil {
		// The lock was lost during the run: its remaining writes were
		// abandoned; the next run asks IsLeader again.
		m.log.Warn("leadership ended during a lease assignment run", zap.NamedError("cause", lost))
		m.tookOver = false
		m.setLeading(false)
		return
	}
	stats.At, stats.Latency, stats.Success = m.cfg.WallClock(), m.cfg.Clock.Now().Sub(start), err == nil
	if err == nil {
		m.failures = 0
	} else {
		stats.Err = err.Error()
		m.failures++
		threshold := failuresToRelease
		if panicked {
			threshold = 1
		}
		m.log.Error("lease assignment run failed", zap.Int("failuresInARow", m.failures), zap.Error(err))
		if m.failures >= threshold {
			m.log.Error("lease assignment failed too often in a row; releasing leadership", zap.Int("failures", m.failures))
			// The observations and the failure count are kept, as Java's
			// (a worker that wins the lock back fails over again at the
			// next failed run).
			m.leader.ReleaseLeadershipIfHeld(ctx)
			stats.ForceLeaderRelease = true
		}
	}
	m.mu.Lock()
	m.status.Leading = !stats.ForceLeaderRelease
	m.status.LastRun = stats
	m.status.ConsecutiveFailures = m.failures
	if stats.ForceLeaderRelease {
		m.status.ForcedReleases++
	}
	m.status.TotalAssigned += stats.Assigned
	m.status.TotalHandoffsStarted += stats.HandoffsStarted
	m.status.TotalFailedAssignments += stats.FailedAssignmentCount
	m.mu.Unlock()
	if m.cfg.OnRun != nil {
		m.cfg.OnRun(stats)
	}
}

// termContext scopes a run to the current leadership term when the Leader
// can (beyond Java, whose run goes on to its end: a worker that lost the
// lock stops writing at once; the conditional writes keep either safe).
func (m *Manager) termContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ts, ok := m.leader.(termScoped); ok {
		return ts.LeadershipContext(ctx)
	}
	return ctx, func() {}
}

func (m *Manager) setLeading(v bool) {
	m.mu.Lock()
	m.status.Leading = v
	m.mu.Unlock()
}

// guardedRun is run with a panic turned into a failure (Java counts an
// Error as a failure that releases the lock at once).
func (m *Manager) guardedRun(ctx context.Context) (stats RunStats, panicked bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("lease assignment run panicked", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			panicked, err = true, fmt.Errorf("lease assignment panicked: %v", r)
		}
	}()
	stats, err = m.run(ctx)
	return stats, false, err
}

// run loads, decides and writes.
func (m *Manager) run(ctx context.Context) (RunStats, error) {
	var stats RunStats
	loadStart := m.cfg.Clock.Now()
	view, err := m.load(ctx)
	if err != nil {
		return stats, err
	}
	scanTime := m.cfg.Clock.Now()
	stats.Loaded, stats.LoadLatency = true, scanTime.Sub(loadStart)
	m.observe(view.Leases, scanTime)
	in := assign.Input{Now: m.cfg.WallClock(), Balance: m.balanceThisRun()}
	stats.Balanced = in.Balance
	byKey := make(map[string]lease.Lease, len(view.Leases))
	for _, l := range view.Leases {
		byKey[l.Key] = l
		in.Leases = append(in.Leases, m.decisionLease(l, scanTime, scanTime))
	}
	for _, w := range view.Workers {
		in.Workers = append(in.Workers, assign.WorkerMetrics{WorkerID: w.WorkerID, LastUpdate: lutTime(w),
			Stats: w.Stats, OperatingRange: w.OperatingRange})
	}
	plan := m.decide(in, m.cfg.Assign)
	stats.TotalLeases, stats.NumWorkers = len(view.Leases), len(plan.ActiveWorkers)
	stats.ExpiredLeases, stats.LeaseSpillover = plan.ExpiredLeases, plan.LeaseSpillover
	for _, a := range plan.Assignments {
		if !a.Expired {
			stats.NumOfLeasesReassignment++
		}
	}
	writeStart := m.cfg.Clock.Now()
	err = m.write(ctx, plan.Assignments, byKey, scanTime, &stats)
	stats.Wrote, stats.WriteOK, stats.WriteLatency = true, err == nil, m.cfg.Clock.Now().Sub(writeStart)
	if err != nil {
		return stats, err
	}
	stats.StaleMetricsDeleted = m.deleteStaleMetrics(ctx, view.Workers)
	m.log.Debug("lease assignment run", zap.Int("leases", stats.TotalLeases), zap.Int("workers", stats.NumWorkers),
		zap.Int("assigned", stats.Assigned), zap.Int("handoffs", stats.HandoffsStarted), zap.Int("failed", stats.FailedAssignmentCount))
	return stats, nil
}

// load is Java MigrationAwareLAMDataManager.loadData with its one retry.
func (m *Manager) load(ctx context.Context) (lease.AssignmentView, error) {
	view, err := m.store.LoadAssignmentView(ctx, m.cfg.LegacyMetricsTable)
	if err != nil && ctx.Err() == nil {
		m.log.Warn("loading leases and worker metrics failed; retrying once", zap.Error(err))
		view, err = m.store.LoadAssignmentView(ctx, m.cfg.LegacyMetricsTable)
	}
	if err != nil {
		return view, fmt.Errorf("load leases and worker metrics: %w", err)
	}
	return view, nil
}

// balanceThisRun is Java shouldRunVarianceBalancing: the first run of a
// term and every VarianceBalancingFrequency-th one after it.
func (m *Manager) balanceThisRun() bool {
	b := m.runCount == 0
	m.runCount = (m.runCount + 1) % m.cfg.VarianceBalancingFrequency
	return b
}

func lutTime(w lease.WorkerMetricsEntry) time.Time {
	if !w.HasLastUpdate {
		return time.Time{}
	}
	return time.Unix(w.LastUpdate, 0)
}

func isShardEnd(l lease.Lease) bool {
	return l.Checkpoint.Sequence == seqnum.ShardEnd && l.Checkpoint.SubSequence == 0
}

// errWrite marks a failed assignment write other than a condition failure.
var errWrite = errors.New("lease assignment write failed")
