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
	"math/rand/v2"
	"time"
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
	// throughput-only ("default") worker.
	Stats map[string][]float64
	// OperatingRange is opr (metric short name → [max utilisation, …]).
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

// Decide computes the assignments of one LAM run.
func Decide(in Input, cfg Config) Plan {
	return Plan{} // built by the decider work (issue "KCL 3.x")
}
