package assign

import (
	"fmt"
	"math"
	"testing"
)

func leaseCountConfig(maxLeases int) Config {
	c := javaTestConfig(math.MaxFloat64, 10)
	c.Strategy = LeaseCountBased
	c.MaxLeasesForWorker = maxLeases
	return c
}

// Facts from Java LeaseCountBasedLeaseAssignmentDeciderTest and
// LeaseAssignmentManagerTest.performAssignment_withLeaseCountStrategy_usesLeaseCountDecider.
func TestLeaseCountFactsFromJava(t *testing.T) {
	w := func(ids ...string) []WorkerMetrics {
		var out []WorkerMetrics
		for _, id := range ids {
			out = append(out, takeWorker(id))
		}
		return out
	}
	many := func(n int, owner string, from int) []Lease {
		var out []Lease
		for i := range n {
			l := owned(fmt.Sprintf("lease%d", from+i), owner)
			if owner == "" {
				l = unassigned(fmt.Sprintf("lease%d", from+i))
			}
			out = append(out, l)
		}
		return out
	}
	tests := []struct {
		name    string
		max     int
		balance bool
		in      Input
		check   func(t *testing.T, in Input, p Plan)
	}{
		{name: "noLeases_noAssignments", in: Input{Workers: w()}, check: func(t *testing.T, in Input, p Plan) {
			if len(p.Assignments) != 0 {
				t.Errorf("assignments %+v", p.Assignments)
			}
		}},
		{name: "singleWorker_takesAll", in: Input{Workers: w("worker1"), Leases: many(2, "", 1)}, check: func(t *testing.T, in Input, p Plan) {
			mustCount(t, in, p, "worker1", 2)
		}},
		{name: "twoWorkers_threeLeases_split", in: Input{Workers: w("worker1", "worker2"), Leases: many(3, "", 1)}, check: func(t *testing.T, in Input, p Plan) {
			if len(p.Assignments) != 3 {
				t.Errorf("assignments %+v", p.Assignments)
			}
			mustCount(t, in, p, "worker1", 2)
			mustCount(t, in, p, "worker2", 1)
		}},
		{name: "evenDistribution_noRebalancing", balance: true, in: Input{Workers: w("worker1", "worker2"), Leases: []Lease{owned("lease1", "worker1"), owned("lease2", "worker2")}},
			check: func(t *testing.T, in Input, p Plan) {
				if len(p.Assignments) != 0 {
					t.Errorf("assignments %+v", p.Assignments)
				}
			}},
		{name: "unbalanced_oneMovesToIdleWorker", balance: true, in: Input{Workers: w("worker1", "worker2"), Leases: many(2, "worker1", 1)},
			check: func(t *testing.T, in Input, p Plan) {
				if len(p.Assignments) != 1 || p.Assignments[0].To != "worker2" || p.Assignments[0].Expired {
					t.Errorf("assignments %+v", p.Assignments)
				}
			}},
		{name: "assignmentThenBalancing_seesUpdatedCounts", balance: true,
			in: Input{Workers: w("worker1", "worker2"), Leases: append(many(2, "worker1", 1), many(3, "", 3)...)},
			check: func(t *testing.T, in Input, p Plan) {
				if len(p.Assignments) != 3 {
					t.Errorf("assignments %+v, want the 3 unassigned only", p.Assignments)
				}
				mustCount(t, in, p, "worker2", 3)
			}},
		{name: "pendingHandoffLease_notStolen", balance: true,
			in: Input{Workers: w("worker1", "worker2"), Leases: []Lease{owned("lease1", "worker1"),
				{Key: "lease2", LeaseOwner: "worker2", CheckpointOwner: "worker1", ThroughputKBps: tp(10), LastCounterIncrement: now}}},
			check: func(t *testing.T, in Input, p Plan) {
				if len(p.Assignments) != 1 || p.Assignments[0].LeaseKey != "lease1" || p.Assignments[0].To != "worker2" {
					t.Errorf("assignments %+v, want lease1 → worker2 only", p.Assignments)
				}
			}},
		{name: "timedOutHandoffLease_available", balance: true,
			in: Input{Workers: w("worker1", "worker2"), Leases: []Lease{
				{Key: "lease2", LeaseOwner: "worker2", CheckpointOwner: "worker1", ThroughputKBps: tp(10), LastCounterIncrement: now, PendingCheckpointTimedOut: true},
				{Key: "lease3", LeaseOwner: "worker2", CheckpointOwner: "worker1", ThroughputKBps: tp(10), LastCounterIncrement: now}}},
			check: func(t *testing.T, in Input, p Plan) {
				if len(p.Assignments) != 1 || p.Assignments[0].LeaseKey != "lease2" || p.Assignments[0].To != "worker2" {
					t.Errorf("assignments %+v, want lease2 → worker2 only", p.Assignments)
				}
			}},
		{name: "bothAboveMaxLeases_noRebalancing", max: 10, balance: true,
			in: Input{Workers: w("worker1", "worker2"), Leases: append(many(12, "worker1", 1), many(12, "worker2", 13)...)},
			check: func(t *testing.T, in Input, p Plan) {
				if len(p.Assignments) != 0 {
					t.Errorf("assignments %+v", p.Assignments)
				}
			}},
		{name: "maxLeasesForWorker_stopsAssigning", max: 10, in: Input{Workers: w("worker1"), Leases: many(15, "", 1)},
			check: func(t *testing.T, in Input, p Plan) {
				mustCount(t, in, p, "worker1", 10)
				if p.LeaseSpillover != 5 {
					t.Errorf("spillover %d, want 5", p.LeaseSpillover)
				}
			}},
		{name: "deadWorkerLeases_goToActiveWorkers",
			in: Input{Workers: w("worker1", "worker2"), Leases: func() []Lease {
				ls := many(3, "deadWorker", 1)
				for i := range ls {
					ls[i].Expired = true
				}
				return ls
			}()},
			check: func(t *testing.T, in Input, p Plan) {
				mustCount(t, in, p, "deadWorker", 0)
				if len(p.Assignments) != 3 {
					t.Errorf("assignments %+v", p.Assignments)
				}
			}},
		{name: "fewerLeasesWins_despiteHigherUtilisation",
			in: Input{Workers: []WorkerMetrics{yieldWorker("YieldWorker"), takeWorker("TakeWorker")}, Leases: []Lease{owned("existingLease", "TakeWorker"), unassigned("newLease")}},
			check: func(t *testing.T, in Input, p Plan) {
				if o := owners(in, p); o["newLease"] != "YieldWorker" {
					t.Errorf("newLease → %q, want YieldWorker", o["newLease"])
				}
			}},
		{name: "expiredLeaseRewrittenToItsActiveOwner_asCoded",
			in: Input{Workers: w("worker1"), Leases: []Lease{{Key: "l", LeaseOwner: "worker1", Expired: true, LastCounterIncrement: now}}},
			check: func(t *testing.T, in Input, p Plan) {
				if len(p.Assignments) != 1 || p.Assignments[0] != (Assignment{LeaseKey: "l", From: "worker1", To: "worker1", Expired: true}) {
					t.Errorf("assignments %+v", p.Assignments)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Now, tc.in.Balance = now, tc.balance
			tc.check(t, tc.in, Decide(tc.in, leaseCountConfig(tc.max)))
		})
	}
}
