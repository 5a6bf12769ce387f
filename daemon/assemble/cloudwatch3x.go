package assemble

import (
	"context"
	"time"

	"github.com/multilangd/multilangd/cwmetrics"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/lam"
)

// The KCL 3.x CloudWatch datums (docs/operations.md "CloudWatch metrics"):
// same operations, names, units, levels and dimensions as Java.

// Java operation names and LeaderDecider.METRIC_OPERATION_LEADER_DECIDER_IS_LEADER.
const (
	opLeaseAssignmentManager    = "LeaseAssignmentManager"
	opLeaseDiscovery            = "LeaseDiscovery"
	opWorkerMetricStatsReporter = "WorkerMetricStatsReporter"
	opLeaderDecider             = "LeaderDecider"
	isLeaderMetric              = opLeaderDecider + ":IsLeader"
)

// leaseAssignmentManager publishes one run this worker led (Java
// LeaseAssignmentManager.performAssignment, publishLeaseAndWorkerCountMetrics
// and parallelyAssignLeases); the scope has only the Operation dimension.
func (o *ops) leaseAssignmentManager(s lam.RunStats) {
	sc := o.cw.Scope(opLeaseAssignmentManager)
	if s.Loaded {
		sc.AddLatency("LeaseAndWorkerMetricsLoad", s.LoadLatency, cwmetrics.Detailed).
			Add("TotalLeases", float64(s.TotalLeases), count, cwmetrics.Summary).
			Add("NumWorkers", float64(s.NumWorkers), count, cwmetrics.Summary).
			Add("ExpiredLeases", float64(s.ExpiredLeases), count, cwmetrics.Summary)
		if s.LeaseSpillover > 0 {
			sc.Add("LeaseSpillover", float64(s.LeaseSpillover), count, cwmetrics.Summary)
		}
		if s.Balanced {
			sc.Add("NumOfLeasesReassignment", float64(s.NumOfLeasesReassignment), count, cwmetrics.Summary)
		}
	}
	if s.Wrote {
		sc.Add("FailedAssignmentCount", float64(s.FailedAssignmentCount), count, cwmetrics.Detailed).
			AddSuccessAndLatency("ParallelyAssignLeases", s.WriteOK, s.WriteLatency, cwmetrics.Detailed)
	}
	if s.ForceLeaderRelease {
		sc.Add("ForceLeaderRelease", 1, count, cwmetrics.Summary)
	}
	sc.AddSuccessAndLatency("", s.Success, s.Latency, cwmetrics.Summary).End()
}

// leaseAssignmentNotLeader publishes a run that found another worker
// leading: Java performAssignment's Success = 1 and Time only.
func (o *ops) leaseAssignmentNotLeader(took time.Duration) {
	o.cw.Scope(opLeaseAssignmentManager).AddSuccessAndLatency("", true, took, cwmetrics.Summary).End()
}

// leaseDiscovery publishes one discovery run (Java
// DynamoDBLeaseDiscoverer.discoverNewLeases and fetchLease), with the
// WorkerIdentifier dimension.
func (o *ops) leaseDiscovery(s lease.DiscoveryStats) {
	sc := o.workerScope(opLeaseDiscovery).AddLatency("ListLeaseKeysForWorker", s.ListLatency, cwmetrics.Detailed)
	if s.OwnerMismatch > 0 {
		sc.Add("OwnerMismatch", float64(s.OwnerMismatch), count, cwmetrics.Detailed)
	}
	if s.GetLeaseErrors > 0 {
		sc.Add("GetLease:Error", float64(s.GetLeaseErrors), count, cwmetrics.Summary)
	}
	if s.Success {
		sc.AddLatency("FetchNewLeases", s.FetchLatency, cwmetrics.Detailed).
			Add("NewLeasesDiscovered", float64(s.NewLeases), count, cwmetrics.Detailed)
	}
	sc.AddSuccessAndLatency("", s.Success, s.Latency, cwmetrics.Summary).End()
}

// workerMetricStatsReporter publishes one worker-metrics report (Java
// WorkerMetricStatsReporter.run), with the WorkerIdentifier dimension.
func (o *ops) workerMetricStatsReporter(err error, took time.Duration) {
	o.workerScope(opWorkerMetricStatsReporter).AddSuccessAndLatency("", err == nil, took, cwmetrics.Summary).End()
}

// isLeader publishes one leader decision (Java
// DynamoDBLockBasedLeaderDecider.publishIsLeaderMetrics, DETAILED, Operation
// dimension only).
func (o *ops) isLeader(v bool) {
	n := 0.0
	if v {
		n = 1
	}
	o.cw.Scope(opLeaderDecider).Add(isLeaderMetric, n, count, cwmetrics.Detailed).End()
}

// leaderDeciderInUse publishes the decider in use (Java
// MigrationAdaptiveLeaderDecider.publishSelectedLeaderDeciderMetrics: the
// decider's class name = 1, DETAILED).
func (o *ops) leaderDeciderInUse(threeX bool) {
	name := "DeterministicShuffleShardSyncLeaderDecider"
	if threeX {
		name = "DynamoDBLockBasedLeaderDecider"
	}
	o.cw.Scope(opLeaderDecider).Add(name, 1, count, cwmetrics.Detailed).End()
}

// publishingDecider is the lock decider with every IsLeader answer
// published, as Java's isLeader does on each call (cached answers included).
type publishingDecider struct {
	lockDecider
	o *ops
}

func (d publishingDecider) IsLeader(ctx context.Context) bool {
	v := d.lockDecider.IsLeader(ctx)
	if ctx.Err() == nil {
		d.o.isLeader(v)
	}
	return v
}

// LeadershipContext forwards the decider's term scope (lam uses it when
// present; without it a run is scoped by ctx alone).
func (d publishingDecider) LeadershipContext(parent context.Context) (context.Context, context.CancelFunc) {
	if ts, ok := d.lockDecider.(interface {
		LeadershipContext(context.Context) (context.Context, context.CancelFunc)
	}); ok {
		return ts.LeadershipContext(parent)
	}
	return parent, func() {}
}
