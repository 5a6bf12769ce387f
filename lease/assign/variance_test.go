package assign

import (
	"math"
	"testing"
	"time"
)

// Facts from Java LeaseAssignmentManagerTest (one LAM run, balancing on).
func TestVarianceFactsFromJava(t *testing.T) {
	yieldID, takeID := "YieldWorker", "TakeWorker"
	tests := []struct {
		name  string
		cfg   Config
		in    Input
		check func(t *testing.T, in Input, p Plan)
	}{
		{
			name: "yieldAndTakeWorker_newLeaseGoesToTakeWorker",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in:   Input{Workers: []WorkerMetrics{yieldWorker(yieldID), takeWorker(takeID)}, Leases: []Lease{unassigned("something")}},
			check: func(t *testing.T, in Input, p Plan) {
				mustCount(t, in, p, takeID, 1)
			},
		},
		{
			name: "workerWithFailingWorkerMetric_getsNothing",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in: Input{Workers: []WorkerMetrics{cpuWorker("failing", []float64{50, -1}, 80)},
				Leases: []Lease{unassigned("something1"), unassigned("something2")}},
			check: func(t *testing.T, in Input, p Plan) {
				mustCount(t, in, p, "failing", 0)
				if len(p.ActiveWorkers) != 0 || p.LeaseSpillover != 2 {
					t.Errorf("active %v spillover %d, want none and 2", p.ActiveWorkers, p.LeaseSpillover)
				}
			},
		},
		{
			name: "workerWithFailingWorkerMetricInPast_getsLeases",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in: Input{Workers: []WorkerMetrics{cpuWorker("failedBefore", []float64{-1, 50, 50}, 80)},
				Leases: []Lease{unassigned("something1"), unassigned("something2")}},
			check: func(t *testing.T, in Input, p Plan) { mustCount(t, in, p, "failedBefore", 2) },
		},
		{
			name: "noThroughputOnDonor_oneLeaseTaken",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in: func() Input {
				in := Input{Workers: []WorkerMetrics{yieldWorker(yieldID), takeWorker(takeID)}}
				for _, k := range []string{"l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9"} {
					in.Leases = append(in.Leases, ownedAt(k, yieldID, 0))
				}
				return in
			}(),
			check: func(t *testing.T, in Input, p Plan) {
				mustCount(t, in, p, yieldID, 9)
				mustCount(t, in, p, takeID, 1)
			},
		},
		{
			name: "moreLeasesThanMaxLeasesForWorker_someStayUnassigned",
			cfg:  func() Config { c := javaTestConfig(math.MaxFloat64, 20); c.MaxLeasesForWorker = 2; return c }(),
			in: Input{Workers: []WorkerMetrics{takeWorker(takeID)},
				Leases: []Lease{unassigned("lease1"), unassigned("lease2"), unassigned("lease3")}},
			check: func(t *testing.T, in Input, p Plan) {
				mustCount(t, in, p, takeID, 2)
				if p.LeaseSpillover != 1 || p.ExpiredLeases != 3 {
					t.Errorf("spillover %d expired %d, want 1 and 3", p.LeaseSpillover, p.ExpiredLeases)
				}
			},
		},
		{
			name: "unassignedAndExpiredBoth_unassignedFirst_maxThroughputStops",
			cfg:  javaTestConfig(9, 20),
			in: Input{Workers: []WorkerMetrics{takeWorker(takeID)}, Leases: []Lease{
				{Key: "expiredLease", LeaseOwner: "random-owner", ThroughputKBps: tp(10), Expired: true, LastCounterIncrement: now.Add(-time.Second)},
				unassigned("unAssignedLease"),
			}},
			check: func(t *testing.T, in Input, p Plan) {
				o := owners(in, p)
				if o["unAssignedLease"] != takeID || o["expiredLease"] == takeID {
					t.Errorf("owners %v: want only unAssignedLease on %s", o, takeID)
				}
				if p.LeaseSpillover != 1 {
					t.Errorf("spillover %d, want 1", p.LeaseSpillover)
				}
			},
		},
		{
			name: "notAboveThresholdButAboveOperatingRange_rebalances",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in: Input{Workers: []WorkerMetrics{cpuWorker("Worker1", []float64{41, 41}, 50), cpuWorker("Worker2", []float64{59, 59}, 50)},
				Leases: []Lease{ownedAt("lease1", "Worker2", 1000), ownedAt("lease2", "Worker2", 1)}},
			check: func(t *testing.T, in Input, p Plan) {
				if got := leasesOf(in, p, "Worker1"); len(got) != 1 || got[0] != "lease2" {
					t.Errorf("Worker1 holds %v, want [lease2]", got)
				}
			},
		},
		{
			name: "inactiveWorkerWithLowUtilisation_getsNothing",
			cfg:  javaTestConfig(9, 20),
			in: Input{Workers: []WorkerMetrics{yieldWorker(yieldID),
				{WorkerID: "InActiveWorker", LastUpdate: time.Unix(0, 0), Stats: map[string][]float64{"C": {5, 5}}, OperatingRange: map[string][]int64{"C": {80}}}},
				Leases: []Lease{unassigned("leaseKey1"), unassigned("leaseKey2")}},
			check: func(t *testing.T, in Input, p Plan) {
				mustCount(t, in, p, yieldID, 2)
				mustCount(t, in, p, "InActiveWorker", 0)
			},
		},
		{
			name: "takeAndYield_throughputTaken",
			cfg:  javaTestConfig(math.MaxFloat64, 10),
			in: Input{Workers: []WorkerMetrics{yieldWorker(yieldID), takeWorker(takeID)}, Leases: []Lease{
				ownedAt("lease1", yieldID, 100), ownedAt("lease2", yieldID, 200), ownedAt("lease3", yieldID, 300), ownedAt("lease4", yieldID, 400)}},
			check: func(t *testing.T, in Input, p Plan) {
				if got := throughputOf(in, p, takeID); got < 100 {
					t.Errorf("take worker carries %v KB/s, want ≥ 100", got)
				}
			},
		},
		{
			name: "overshootAllowed_smallestLeaseTaken",
			cfg:  javaTestConfig(math.MaxFloat64, 10),
			in: Input{Workers: []WorkerMetrics{yieldWorker(yieldID), takeWorker(takeID)}, Leases: []Lease{
				ownedAt("lease1", yieldID, 300), ownedAt("lease2", yieldID, 299), ownedAt("lease3", yieldID, 301), ownedAt("lease4", takeID, 3000)}},
			check: func(t *testing.T, in Input, p Plan) {
				if got := leasesOf(in, p, takeID); len(got) != 2 || got[0] != "lease2" || got[1] != "lease4" {
					t.Errorf("take worker holds %v, want [lease2 lease4]", got)
				}
			},
		},
		{
			name: "overshootNotAllowed_nothingTaken",
			cfg:  func() Config { c := javaTestConfig(math.MaxFloat64, 10); c.AllowThroughputOvershoot = false; return c }(),
			in: Input{Workers: []WorkerMetrics{yieldWorker(yieldID), takeWorker(takeID)}, Leases: []Lease{
				ownedAt("lease1", yieldID, 300), ownedAt("lease2", yieldID, 299), ownedAt("lease3", yieldID, 301), ownedAt("lease4", takeID, 3000)}},
			check: func(t *testing.T, in Input, p Plan) {
				mustCount(t, in, p, takeID, 1)
				if len(p.Assignments) != 0 {
					t.Errorf("assignments %+v, want none", p.Assignments)
				}
			},
		},
		{
			name: "takeAndTwoYieldWorkersWithSeveralLeases_balancedBetweenLeases",
			cfg:  javaTestConfig(math.MaxFloat64, 10),
			in: Input{Workers: []WorkerMetrics{yieldWorker(yieldID + "1"), yieldWorker(yieldID + "2"), takeWorker(takeID)}, Leases: []Lease{
				owned("lease1", yieldID+"1"), ownedAt("lease2", yieldID+"1", 1000),
				owned("lease3", yieldID+"2"), ownedAt("lease4", yieldID+"2", 1000),
				owned("lease5", takeID)}},
			check: func(t *testing.T, in Input, p Plan) {
				mustCount(t, in, p, takeID, 3)
				mustCount(t, in, p, yieldID+"1", 1)
				mustCount(t, in, p, yieldID+"2", 1)
			},
		},
		{
			name: "notABalancingRun_noMoves",
			cfg:  javaTestConfig(math.MaxFloat64, 10),
			in: Input{Balance: false, Workers: []WorkerMetrics{yieldWorker(yieldID + "1"), yieldWorker(yieldID + "2"), takeWorker(takeID)}, Leases: []Lease{
				owned("lease1", yieldID+"1"), ownedAt("lease2", yieldID+"1", 1000),
				owned("lease3", yieldID+"2"), ownedAt("lease4", yieldID+"2", 1000),
				owned("lease5", takeID)}},
			check: func(t *testing.T, in Input, p Plan) {
				if len(p.Assignments) != 0 {
					t.Errorf("assignments %+v, want none", p.Assignments)
				}
			},
		},
		{
			name: "underUtilisedWorker_balancingAndUnassignedLeaseToSameWorker",
			cfg:  javaTestConfig(math.MaxFloat64, 10),
			in: Input{Workers: []WorkerMetrics{yieldWorker(yieldID), takeWorker(takeID)}, Leases: []Lease{
				ownedAt("leaseY1", yieldID, 1000), unassigned("leaseT1"),
				owned("leaseY2", yieldID), owned("leaseY3", yieldID), owned("leaseY5", yieldID), owned("leaseY6", yieldID),
				owned("leaseY7", yieldID), owned("leaseY8", yieldID), owned("leaseY9", yieldID)}},
			check: func(t *testing.T, in Input, p Plan) { mustCount(t, in, p, takeID, 4) },
		},
		{
			name: "hotWorkerMetricButNotAboveAverage_rebalances",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in: Input{Workers: []WorkerMetrics{cpuWorker("randomWorkerId", []float64{90, 90}, 50), cpuWorker(takeID, []float64{40, 40}, 80)}, Leases: []Lease{
				owned("leaseKey1", "randomWorkerId"), owned("leaseKey2", "randomWorkerId"), owned("leaseKey3", "randomWorkerId"),
				owned("leaseKey4", "randomWorkerId"), owned("leaseKey5", "randomWorkerId"), owned("leaseKey6", "randomWorkerId")}},
			check: func(t *testing.T, in Input, p Plan) {
				mustCount(t, in, p, "randomWorkerId", 5)
				mustCount(t, in, p, takeID, 1)
			},
		},
		{
			name: "yieldWorkerWithSingleLease_rebalances",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in: Input{Workers: []WorkerMetrics{yieldWorker(yieldID), takeWorker(takeID)}, Leases: []Lease{
				ownedAt("lease1", yieldID, 5), ownedAt("lease2", takeID, 30)}},
			check: func(t *testing.T, in Input, p Plan) {
				mustCount(t, in, p, takeID, 2)
				mustCount(t, in, p, yieldID, 0)
			},
		},
		{
			name: "expiredLeaseWithPendingCheckpoint_assigned",
			cfg:  javaTestConfig(9, 20),
			in: Input{Workers: []WorkerMetrics{takeWorker(takeID)}, Leases: []Lease{
				{Key: "expiredLease", LeaseOwner: "random-owner", CheckpointOwner: "another-random-owner", ThroughputKBps: tp(10), Expired: true, LastCounterIncrement: now}}},
			check: func(t *testing.T, in Input, p Plan) {
				if len(p.Assignments) != 1 || p.Assignments[0] != (Assignment{LeaseKey: "expiredLease", From: "another-random-owner", To: takeID, Expired: true}) {
					t.Errorf("assignments %+v", p.Assignments)
				}
			},
		},
		{
			name: "expiredPendingCheckpointHeldByOnlyWorker_rewrittenToIt",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in: Input{Workers: []WorkerMetrics{takeWorker("B")}, Leases: []Lease{
				{Key: "stuck", LeaseOwner: "A", CheckpointOwner: "B", ThroughputKBps: tp(10), Expired: true, LastCounterIncrement: now}}},
			check: func(t *testing.T, in Input, p Plan) {
				if len(p.Assignments) != 1 || p.Assignments[0] != (Assignment{LeaseKey: "stuck", From: "B", To: "B", Expired: true}) {
					t.Errorf("assignments %+v, want stuck B→B", p.Assignments)
				}
			},
		},
		{
			name: "expiredLeaseOfTheChosenWorker_nothingWritten",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in: Input{Workers: []WorkerMetrics{takeWorker(takeID)}, Leases: []Lease{
				{Key: "mine", LeaseOwner: takeID, ThroughputKBps: tp(10), Expired: true, LastCounterIncrement: now}}},
			check: func(t *testing.T, in Input, p Plan) {
				if len(p.Assignments) != 0 || p.LeaseSpillover != 0 {
					t.Errorf("assignments %+v spillover %d, want none", p.Assignments, p.LeaseSpillover)
				}
			},
		},
		{
			name: "defaultWorkerMetric_utilisationRatio_takesLeases",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in: Input{Workers: []WorkerMetrics{defaultWorker("worker1"), takeWorker("worker2")}, Leases: []Lease{
				unassigned("lease1"), unassigned("lease2"), unassigned("lease3"), owned("lease6", "worker2")}},
			check: func(t *testing.T, in Input, p Plan) {
				mustCount(t, in, p, "worker1", 3)
				mustCount(t, in, p, "worker2", 1)
			},
		},
		{
			name: "optimallyUtilisedDefaultWorker_nothingTaken",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in: Input{Workers: []WorkerMetrics{defaultWorker("worker1"), takeWorker("worker2")}, Leases: []Lease{
				ownedAt("lease1", "worker1", 100), ownedAt("lease2", "worker1", 200), ownedAt("lease3", "worker2", 300), ownedAt("lease4", "worker2", 400)}},
			check: func(t *testing.T, in Input, p Plan) {
				if len(p.Assignments) != 0 {
					t.Errorf("assignments %+v, want none", p.Assignments)
				}
			},
		},
		{
			name: "defaultAndCPUWorkersOverloaded_nothingTaken",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in: Input{Workers: []WorkerMetrics{defaultWorker("worker1"), yieldWorker("worker2")}, Leases: []Lease{
				owned("lease1", "worker1"), owned("lease2", "worker2")}},
			check: func(t *testing.T, in Input, p Plan) {
				if len(p.Assignments) != 0 {
					t.Errorf("assignments %+v, want none", p.Assignments)
				}
			},
		},
		{
			name: "workerUtilisationStrategy_lowerUtilisationWins",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in: Input{Workers: []WorkerMetrics{yieldWorker(yieldID), takeWorker(takeID)}, Leases: []Lease{
				owned("existingLease", takeID), unassigned("newLease")}},
			check: func(t *testing.T, in Input, p Plan) {
				if o := owners(in, p); o["newLease"] != takeID {
					t.Errorf("newLease → %q, want %s", o["newLease"], takeID)
				}
			},
		},
		{
			name: "duringTableMigration_workersOfBothTablesGetLeases",
			cfg:  javaTestConfig(math.MaxFloat64, 20),
			in: Input{Workers: []WorkerMetrics{takeWorker("worker-3-5"), takeWorker("worker-3-4")}, Leases: []Lease{
				unassigned("lease1"), unassigned("lease2")}},
			check: func(t *testing.T, in Input, p Plan) {
				mustCount(t, in, p, "worker-3-5", 1)
				mustCount(t, in, p, "worker-3-4", 1)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Now = now
			if tc.name != "notABalancingRun_noMoves" {
				tc.in.Balance = true // varianceBalancingFrequency 1 in the Java tests
			}
			tc.check(t, tc.in, Decide(tc.in, tc.cfg))
		})
	}
}
