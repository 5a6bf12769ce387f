package lam

import (
	"errors"
	"testing"
	"time"
)

// TestRunStatsForMetrics: OnRun gets the figures of Java's
// LeaseAssignmentManager datums (load and write phases, whether balancing
// ran); a run that found another leader calls only OnNotLeader; a run whose
// load failed is not Loaded and did not write.
func TestRunStatsForMetrics(t *testing.T) {
	var runs []RunStats
	notLeader := 0
	h := newHarness(t, func(c *Config) {
		c.OnRun = func(s RunStats) { runs = append(runs, s) }
		c.OnNotLeader = func(time.Duration) { notLeader++ }
	})
	h.store.put(owned("a", "", 0))
	h.run() // first run after taking over: balances
	h.run()
	if len(runs) != 2 || !runs[0].Loaded || !runs[0].Balanced || !runs[0].Wrote || !runs[0].WriteOK || !runs[0].Success ||
		runs[1].Balanced || runs[0].TotalLeases != 1 {
		t.Fatalf("runs %+v", runs)
	}
	h.leader.leader = false
	h.run()
	if notLeader != 1 || len(runs) != 2 {
		t.Fatalf("not-leader run: OnNotLeader %d, OnRun %d", notLeader, len(runs))
	}
	h.leader.leader = true
	h.store.loadErr = errors.New("throttled")
	h.run()
	if last := runs[len(runs)-1]; last.Loaded || last.Wrote || last.Success {
		t.Fatalf("failed load run %+v", last)
	}
}
