// Package assign is the pure decision half of the KCL 3.x
// LeaseAssignmentManager: given the leases and worker metrics of one run,
// which lease goes to which worker (Java VarianceBasedLeaseAssignmentDecider
// for WORKER_UTILIZATION_AWARE, the lease-count decider for
// LEASE_COUNT_BASED, and the in-memory view they share, Java
// LeaseAssignmentManager.InMemoryStorageView). It does no I/O: loading the
// table, tracking expiry, and writing the assignments (W8 / W9) belong to
// the caller (lease/lam).
package assign

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/multilangd/multilangd/properties"
)

// Strategy is the assignment strategy (Java LeaseAssignmentStrategy… of
// WorkerUtilizationAwareAssignmentConfig).
type Strategy string

// The strategies.
const (
	WorkerUtilizationAware Strategy = "WORKER_UTILIZATION_AWARE"
	LeaseCountBased        Strategy = "LEASE_COUNT_BASED"
)

// Config holds the decider settings (Java WorkerUtilizationAwareAssignmentConfig
// and LeaseManagementConfig). Zero values take the Java defaults.
type Config struct {
	Strategy Strategy
	// MaxLeasesForWorker caps the leases of one worker (0 = unlimited).
	MaxLeasesForWorker int
	// MaxThroughputPerHostKBps caps a worker's assigned throughput
	// (0 or +Inf = unlimited).
	MaxThroughputPerHostKBps float64
	// ReBalanceThresholdPercentage (default 10), DampeningPercentage
	// (default 60), AllowThroughputOvershoot (Java default true: callers pass
	// the parsed property), WorkerMetricsEMAAlpha (default 0.5).
	ReBalanceThresholdPercentage int
	DampeningPercentage          int
	AllowThroughputOvershoot     bool
	WorkerMetricsEMAAlpha        float64
	// WorkerMetricsExpiry: a worker whose lut is older than this is not
	// active (2 × workerMetricsReporterFreqInMillis, default 60 s).
	WorkerMetricsExpiry time.Duration
	// Rand drives the shuffles (default: randomly seeded).
	Rand *rand.Rand
}

// Lease is the decider's view of one lease.
type Lease struct {
	Key             string
	LeaseOwner      string // "" = none
	CheckpointOwner string // "" = no hand-off pending
	ThroughputKBps  *float64
	ShardEnd        bool
	// Expired is decided by the caller from its local observation of the
	// lease counter (Java LeaseAssignmentManager keeps
	// lastCounterIncrementNanos per lease).
	Expired bool
	// LastCounterIncrement orders expired leases (oldest first); zero for
	// an unassigned lease.
	LastCounterIncrement time.Time
	// PendingCheckpointTimedOut: a hand-off is pending (CheckpointOwner
	// set) and the caller's deadline for it (Java
	// Lease.checkpointOwnerTimeoutTimestampMillis, kept by
	// LeaseAssignmentManager) has passed. Only read through
	// BlockedOnPendingCheckpoint.
	PendingCheckpointTimedOut bool
}

// ExpiredOrUnassigned is the lease's membership of the run's
// expired-or-unassigned list (Java LeaseAssignmentManager.performAssignment
// marks those leases with Lease.isExpiredOrUnassigned(true)).
func (l Lease) ExpiredOrUnassigned() bool {
	return l.Expired || l.ActualOwner() == ""
}

// BlockedOnPendingCheckpoint is Java Lease.blockedOnPendingCheckpoint: a
// live lease whose graceful hand-off is still within its deadline must not
// be written. The caller skips such assignments when writing (Java
// LeaseAssignmentManager.parallelyAssignLeases); the LEASE_COUNT_BASED
// balancer never picks them.
func (l Lease) BlockedOnPendingCheckpoint() bool {
	return !(l.ExpiredOrUnassigned() || l.ShardEnd || l.CheckpointOwner == "" || l.PendingCheckpointTimedOut)
}

// EligibleForGracefulHandoff is Java Lease.isEligibleForGracefulShutdown:
// the caller writes W9 (graceful hand-off) for such a lease when graceful
// hand-off is enabled, else W8.
func (l Lease) EligibleForGracefulHandoff() bool {
	return !l.ExpiredOrUnassigned() && !l.ShardEnd && l.CheckpointOwner == ""
}

// ActualOwner is checkpointOwner when a hand-off is pending, else
// leaseOwner (Java Lease.actualOwner).
func (l Lease) ActualOwner() string {
	if l.CheckpointOwner != "" {
		return l.CheckpointOwner
	}
	return l.LeaseOwner
}

// WorkerMetrics is one WorkerMetricStats entry as read from the table.
type WorkerMetrics struct {
	WorkerID string
	// LastUpdate is lut (epoch seconds in the item).
	LastUpdate time.Time
	// Stats is sts (metric short name → history); empty for a
	// throughput-only ("default") worker. nil means the attribute is
	// absent, an empty non-nil map that it is present and empty: Java
	// WorkerMetricStats.isValidWorkerMetric tells them apart.
	Stats map[string][]float64
	// OperatingRange is opr (metric short name → [max utilisation, …]);
	// nil = absent, as for Stats.
	OperatingRange map[string][]int64
}

// Input is what one LAM run decides on.
type Input struct {
	// Now is the wall clock, for the lut expiry of worker metrics.
	Now     time.Time
	Leases  []Lease
	Workers []WorkerMetrics // every entry read; Decide keeps the active ones
	// Balance is set on the runs that also balance (the first run after
	// gaining leadership and every varianceBalancingFrequency-th one).
	Balance bool
}

// Assignment moves one lease.
type Assignment struct {
	LeaseKey string
	From     string // actual owner at scan time ("" when unassigned)
	To       string
	// Expired: the lease was expired or unassigned (the caller writes W8);
	// otherwise it is a balancing move of a live lease (W9 when graceful
	// hand-off is enabled and the lease is eligible, else W8).
	Expired bool
}

// Plan is the result of one run.
type Plan struct {
	Assignments   []Assignment
	ActiveWorkers []string
	// Figures for metrics (Java LeaseAssignmentManager metrics).
	TotalLeases, ExpiredLeases, LeaseSpillover int
}

// WithDefaults fills the zero fields with the Java defaults: unlimited
// leases and throughput (Integer.MAX_VALUE, Double.MAX_VALUE), a randomly
// seeded Rand. AllowThroughputOvershoot is taken as given.
func (c Config) WithDefaults() Config {
	if c.Strategy == "" {
		c.Strategy = WorkerUtilizationAware
	}
	if c.MaxLeasesForWorker <= 0 {
		c.MaxLeasesForWorker = math.MaxInt32
	}
	if c.MaxThroughputPerHostKBps <= 0 || math.IsInf(c.MaxThroughputPerHostKBps, 1) {
		c.MaxThroughputPerHostKBps = math.MaxFloat64
	}
	// Java defaults (LeaseManagementConfig.WorkerUtilizationAwareAssignmentConfig),
	// from the key registry.
	java := properties.Defaults()
	if c.ReBalanceThresholdPercentage == 0 {
		c.ReBalanceThresholdPercentage = java.ReBalanceThresholdPercentage
	}
	if c.DampeningPercentage == 0 {
		c.DampeningPercentage = java.DampeningPercentage
	}
	if c.WorkerMetricsEMAAlpha == 0 {
		c.WorkerMetricsEMAAlpha = java.WorkerMetricsEMAAlpha
	}
	if c.WorkerMetricsExpiry == 0 {
		c.WorkerMetricsExpiry = 2 * java.WorkerMetricsReporterFreq
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return c
}

// Decide computes the assignments of one LAM run (Java
// LeaseAssignmentManager.performAssignment between the load and the
// writes): build the in-memory view, assign the expired and unassigned
// leases, balance when in.Balance is set. With the same Input and a Rand in
// the same state the Plan is the same. Orders: Input.Workers and
// Input.Leases are taken as the scan order Java would see; ties follow
// java.util.PriorityQueue and HashMap orders (heap.go, javahashmap.go);
// which lease a donor gives up is drawn with Rand (Java: an unseeded
// shuffle or a HashSet's first element). Assignments come in the order
// they were first decided (Java writes them in parallel).
func Decide(in Input, cfg Config) Plan {
	cfg = cfg.WithDefaults()
	v := newView(in, cfg)
	expired := v.expiredOrUnassigned()
	plan := Plan{
		ActiveWorkers: v.activeIDs(),
		TotalLeases:   len(v.leases),
		ExpiredLeases: len(expired),
	}
	var d decider
	if cfg.Strategy == LeaseCountBased {
		d = newLeaseCountDecider(v, cfg)
	} else {
		d = newVarianceDecider(v, cfg)
	}
	plan.LeaseSpillover = len(expired) - d.assignExpiredOrUnassigned(expired)
	if in.Balance {
		d.balanceWorkerVariance()
	}
	plan.Assignments = v.assignments()
	return plan
}

// decider is Java LeaseAssignmentDecider.
type decider interface {
	// assignExpiredOrUnassigned returns how many of the leases it dealt
	// with (the rest is the spillover).
	assignExpiredOrUnassigned(expired []int) int
	balanceWorkerVariance()
}
