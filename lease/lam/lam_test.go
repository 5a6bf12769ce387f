package lam

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/assign"
	"github.com/multilangd/multilangd/seqnum"
)

const failover = 10 * time.Second

type harness struct {
	m      *Manager
	store  *memStore
	leader *fakeLeader
	clock  *fakeClock
	wall   time.Time
	// plan is what the decider returns; inputs what it was asked.
	plan   func(assign.Input) []assign.Assignment
	inputs []assign.Input
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	h := &harness{store: newMemStore(), leader: &fakeLeader{leader: true}, clock: &fakeClock{t: time.Unix(1000, 0)},
		wall: time.Unix(1_764_000_000, 0)}
	cfg := Config{WorkerID: "leader", FailoverTime: failover, GracefulHandoff: true, Clock: h.clock,
		WallClock: func() time.Time { return h.wall }}
	if mod != nil {
		mod(&cfg)
	}
	h.m = New(h.store, h.leader, cfg, nil)
	h.m.decide = func(in assign.Input, _ assign.Config) assign.Plan {
		h.inputs = append(h.inputs, in)
		if h.plan == nil {
			return assign.Plan{}
		}
		return assign.Plan{Assignments: h.plan(in)}
	}
	return h
}

func (h *harness) run() { h.m.RunOnce(context.Background()) }

func owned(key, owner string, counter int64) lease.Lease {
	return lease.Lease{Key: key, Owner: owner, Counter: counter, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}
}

func inputLease(in assign.Input, key string) assign.Lease {
	for _, l := range in.Leases {
		if l.Key == key {
			return l
		}
	}
	return assign.Lease{}
}

// TestObservationExpiry: as Java updateLeasesLastCounterIncrementNanos…,
// an unassigned lease is expired at once; an assigned one seen for the
// first time is live until its counter has not moved for longer than
// failover on this leader's clock; a counter increase makes it live again.
func TestObservationExpiry(t *testing.T) {
	h := newHarness(t, nil)
	h.store.put(lease.Lease{Key: "free", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.store.put(owned("a", "w1", 5))
	h.run()
	in := h.inputs[0]
	if l := inputLease(in, "free"); !l.Expired || !l.LastCounterIncrement.IsZero() {
		t.Fatalf("unassigned lease: %+v", l)
	}
	if l := inputLease(in, "a"); l.Expired {
		t.Fatalf("a lease seen for the first time is expired: %+v", l)
	}
	h.clock.advance(failover)
	h.run()
	if inputLease(h.inputs[1], "a").Expired {
		t.Fatal("expired at exactly failover")
	}
	h.clock.advance(time.Millisecond)
	h.run()
	if !inputLease(h.inputs[2], "a").Expired {
		t.Fatal("not expired after failover without a counter increase")
	}
	h.store.put(owned("a", "w1", 6))
	h.run()
	if inputLease(h.inputs[3], "a").Expired {
		t.Fatal("expired although the counter moved")
	}
}

// TestW8ForExpiredW9ForLive: an expired (or unassigned) lease is assigned
// with W8; a live lease moved by balancing gets W9 when graceful hand-off is
// enabled (checkpointOwner = old owner, counter unchanged), W8 when it is
// disabled or the lease is at SHARD_END.
func TestW8ForExpiredW9ForLive(t *testing.T) {
	for _, tc := range []struct {
		name     string
		graceful bool
		shardEnd bool
		want     string
	}{
		{"graceful", true, false, "W9 live w2"},
		{"graceful disabled", false, false, "W8 live w2"},
		{"shard end", true, true, "W8 live w2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.GracefulHandoff = tc.graceful })
			h.store.put(lease.Lease{Key: "free", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
			live := owned("live", "w1", 7)
			if tc.shardEnd {
				live.Checkpoint = seqnum.Sentinel(seqnum.ShardEnd)
			}
			h.store.put(live)
			h.plan = func(assign.Input) []assign.Assignment {
				return []assign.Assignment{{LeaseKey: "free", To: "w1", Expired: true}, {LeaseKey: "live", From: "w1", To: "w2"}}
			}
			h.run()
			got := h.store.takeWrites()
			slices.Sort(got)
			if want := []string{"W8 free w1", tc.want}; !slices.Equal(got, want) {
				t.Fatalf("writes %v, want %v", got, want)
			}
			l := h.store.get("live")
			if tc.want[:2] == "W9" && (l.Owner != "w2" || l.CheckpointOwner != "w1" || l.Counter != 7) {
				t.Fatalf("after W9: %+v", l)
			}
			st := h.m.Status()
			if !st.Leading || !st.LastRun.Success || st.LastRun.Assigned+st.LastRun.HandoffsStarted != 2 {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

// TestBlockedOnPendingCheckpoint: a lease whose hand-off is pending is not
// moved again until gracefulLeaseHandoffTimeout + failover after the
// leader first saw the hand-off (Java Lease.blockedOnPendingCheckpoint);
// once its counter stops, it is expired and re-assigned with W8 at once.
func TestBlockedOnPendingCheckpoint(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.HandoffTimeout = 30 * time.Second })
	h.store.put(owned("k", "w1", 3))
	h.plan = func(assign.Input) []assign.Assignment {
		return []assign.Assignment{{LeaseKey: "k", From: "w1", To: "w2"}}
	}
	h.run()
	if got := h.store.takeWrites(); !slices.Equal(got, []string{"W9 k w2"}) {
		t.Fatalf("first run wrote %v", got)
	}
	// The old owner keeps renewing while it checkpoints.
	h.plan = func(assign.Input) []assign.Assignment {
		return []assign.Assignment{{LeaseKey: "k", From: "w1", To: "w3"}}
	}
	for i := int64(0); i < 4; i++ {
		h.clock.advance(failover)
		h.store.put(lease.Lease{Key: "k", Owner: "w2", CheckpointOwner: "w1", Counter: 4 + i, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
		h.run()
		if got := h.store.takeWrites(); i < 3 && len(got) != 0 {
			t.Fatalf("run %d before the deadline wrote %v", i, got)
		} else if i == 3 && !slices.Equal(got, []string{"W8 k w3"}) {
			t.Fatalf("after the deadline wrote %v, want W8", got)
		}
		if i < 3 && h.m.Status().LastRun.Blocked != 1 {
			t.Fatalf("run %d: status %+v", i, h.m.Status().LastRun)
		}
	}
}

// TestFailedRunsReleaseLeadership: three failed runs in a row release the
// lock (Java ForceLeaderRelease); a success in between resets the count; a
// worker that wins the lock back keeps its count (Java).
func TestFailedRunsReleaseLeadership(t *testing.T) {
	h := newHarness(t, nil)
	h.store.loadErr = errLoad
	h.run()
	h.run()
	h.store.loadErr = nil
	h.run()
	h.store.loadErr = errLoad
	h.run()
	h.run()
	if h.leader.released != 0 {
		t.Fatal("released after 2 failures in a row")
	}
	h.run()
	st := h.m.Status()
	if h.leader.released != 1 || !st.LastRun.ForceLeaderRelease || st.ForcedReleases != 1 || st.Leading {
		t.Fatalf("released %d, status %+v", h.leader.released, st)
	}
	// Winning the lock straight back (no run saw another leader), as Java:
	// the count is kept, the next failure releases again.
	h.leader.leader = true
	h.run()
	if h.leader.released != 2 {
		t.Fatalf("released %d times, want 2", h.leader.released)
	}
	// Not the leader any more: nothing is loaded or decided.
	n := len(h.inputs)
	h.run()
	if len(h.inputs) != n {
		t.Fatal("a non-leader ran the decider")
	}
}

// TestPanicReleasesAtOnce: a panicking run releases the lock at once (Java
// releases after one Error).
func TestPanicReleasesAtOnce(t *testing.T) {
	h := newHarness(t, nil)
	h.store.put(owned("k", "w1", 1))
	h.plan = func(assign.Input) []assign.Assignment { panic("decider bug") }
	h.run()
	if h.leader.released != 1 || h.m.Status().LastRun.Success {
		t.Fatalf("released %d, status %+v", h.leader.released, h.m.Status())
	}
}

// TestBalancingCadence: balancing runs on the first run after gaining
// leadership and every varianceBalancingFrequency-th run; losing and
// regaining the lock starts over.
func TestBalancingCadence(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.VarianceBalancingFrequency = 3 })
	for range 7 {
		h.run()
	}
	h.leader.leader = false
	h.run()
	h.leader.leader = true
	h.run()
	h.run()
	var got []bool
	for _, in := range h.inputs {
		got = append(got, in.Balance)
	}
	if want := []bool{true, false, false, true, false, false, true, true, false}; !slices.Equal(got, want) {
		t.Fatalf("balance runs %v, want %v", got, want)
	}
}

// TestStaleWorkerMetricsDeleted: entries whose lut is older than
// staleWorkerMetricsEntryCleanupDuration are deleted on the lut seen; fresh
// ones and ones without lut stay.
func TestStaleWorkerMetricsDeleted(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.StaleMetricsCleanup = time.Hour })
	now := h.wall.Unix()
	h.store.workers["old"] = lease.WorkerMetricsEntry{WorkerID: "old", LastUpdate: now - 3601, HasLastUpdate: true}
	h.store.workers["fresh"] = lease.WorkerMetricsEntry{WorkerID: "fresh", LastUpdate: now - 3600, HasLastUpdate: true}
	h.store.workers["nolut"] = lease.WorkerMetricsEntry{WorkerID: "nolut"}
	h.run()
	if !slices.Equal(h.store.deleted, []string{"old"}) || h.m.Status().LastRun.StaleMetricsDeleted != 1 {
		t.Fatalf("deleted %v, status %+v", h.store.deleted, h.m.Status().LastRun)
	}
}

// TestLeadershipLostMidRun: when the lock is lost during a run (the
// decider's term context ends), the run's writes are abandoned, nothing is
// counted as a failure, and the next run starts a new term.
func TestLeadershipLostMidRun(t *testing.T) {
	h := newHarness(t, nil)
	tl := &termLeader{fakeLeader: h.leader}
	h.m.leader = tl
	h.store.put(lease.Lease{Key: "free", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.plan = func(assign.Input) []assign.Assignment {
		tl.loseLock()
		return []assign.Assignment{{LeaseKey: "free", To: "w1", Expired: true}}
	}
	h.run()
	st := h.m.Status()
	if w := h.store.takeWrites(); len(w) != 0 || st.Leading || st.ConsecutiveFailures != 0 || !st.LastRun.At.IsZero() {
		t.Fatalf("writes %v, status %+v", w, st)
	}
	h.plan = nil
	h.run()
	if !h.m.Status().Leading || !h.inputs[1].Balance {
		t.Fatalf("the next run is not a new term: %+v", h.m.Status())
	}
}

// TestPendingCheckpointTimedOutReachesTheDecider: the decider learns that a
// pending hand-off has passed its deadline (Java keeps
// checkpointOwnerTimeoutTimestampMillis on the lease, which
// LeaseCountBasedLeaseAssignmentDecider reads through
// blockedOnPendingCheckpoint): before the deadline the lease is blocked,
// after it the decider may move it.
func TestPendingCheckpointTimedOutReachesTheDecider(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.HandoffTimeout = 30 * time.Second })
	pending := func(counter int64) lease.Lease {
		return lease.Lease{Key: "k", Owner: "w2", CheckpointOwner: "w1", Counter: counter, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}
	}
	h.store.put(pending(3))
	h.run()
	if l := inputLease(h.inputs[0], "k"); l.PendingCheckpointTimedOut || !l.BlockedOnPendingCheckpoint() {
		t.Fatalf("hand-off just seen: %+v", l)
	}
	// Deadline = first sight + hand-off timeout + failover; the old owner
	// keeps renewing, so the lease stays live.
	for i, c := range []int64{4, 5, 6, 7} {
		h.clock.advance(failover)
		h.store.put(pending(c))
		h.run()
		l := inputLease(h.inputs[i+1], "k")
		if timedOut := i == 3; l.PendingCheckpointTimedOut != timedOut || l.BlockedOnPendingCheckpoint() == timedOut {
			t.Fatalf("run %d (%v after first sight): %+v", i+1, time.Duration(i+1)*failover, l)
		}
	}
}
