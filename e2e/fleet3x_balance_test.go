package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// waitOneLeader waits until the Leader lock is held by one of ids and
// returns the holder.
func (f *fleet3x) waitOneLeader(limit time.Duration, ids ...string) string {
	f.t.Helper()
	var owner string
	waitFor(f.t, limit, "one worker holding the Leader lock", func() bool {
		owner, _ = lockOwner(context.Background(), f.t, f.ddb.DynamoDB(), f.app)
		for _, id := range ids {
			if owner == id {
				return true
			}
		}
		return false
	}, f.running()...)
	return owner
}

// waitBalanced waits until every lease is owned by one of ids, none has a
// hand-off pending, and the counts differ by at most one.
func (f *fleet3x) waitBalanced(limit time.Duration, ids ...string) map[string]int {
	f.t.Helper()
	var c map[string]int
	var last string
	deadline := time.Now().Add(limit)
	for {
		c, last = map[string]int{}, ""
		for _, id := range ids {
			c[id] = 0
		}
		ok := true
		for _, l := range f.leases() {
			last += fmt.Sprintf("%s owner=%s checkpointOwner=%s; ", l.Key, l.Owner, l.CheckpointOwner)
			if _, mine := c[l.Owner]; !mine || l.CheckpointOwner != "" {
				ok = false
				continue
			}
			c[l.Owner]++
		}
		lo, hi := 1<<30, 0
		for _, n := range c {
			lo, hi = min(lo, n), max(hi, n)
		}
		if ok && hi-lo <= 1 {
			return c
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("leases not balanced by count within 1 among %v after %s: %s", ids, limit, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitSettled waits until every lease is owned by one of ids, each of ids
// holds at least one, no hand-off is pending, and the assignment has not
// changed for quiet (longer than a balancing period: the leader's decider
// is content with it).
func (f *fleet3x) waitSettled(limit, quiet time.Duration, ids ...string) map[string]int {
	f.t.Helper()
	deadline := time.Now().Add(limit)
	var prev string
	var since time.Time
	for {
		c := map[string]int{}
		for _, id := range ids {
			c[id] = 0
		}
		ok, cur := true, ""
		for _, l := range f.leases() {
			cur += fmt.Sprintf("%s owner=%s checkpointOwner=%s; ", l.Key, l.Owner, l.CheckpointOwner)
			if _, mine := c[l.Owner]; !mine || l.CheckpointOwner != "" {
				ok = false
				continue
			}
			c[l.Owner]++
		}
		for _, n := range c {
			ok = ok && n > 0
		}
		if cur != prev {
			prev, since = cur, time.Now()
		}
		if ok && time.Since(since) >= quiet {
			return c
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("leases not settled on %v (each holding one, unchanged for %s) after %s: %s", ids, quiet, limit, cur)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestMultilangd3xFleetLeadsBalancesAndMovesWithoutRedelivery: three
// multilangd processes on a fresh KCL 3.x table (clientVersionConfig =
// CLIENT_VERSION_CONFIG_3X, DynamoDB Local, each worker in a CPU cgroup of
// its own) elect exactly one leader (the Leader lock), assign every shard
// and settle with every worker holding leases (the utilisation-aware
// decider balances CPU, not counts: a worker that became active after the
// first assignment can stay one lease short of a count balance, as in
// Java); when one worker's children burn CPU,
// leases move away from it with graceful hand-offs that re-deliver no
// record (the checking child sees each record once); a SIGKILLed worker's
// leases move after failover, re-delivering at most its un-checkpointed
// window.
func TestMultilangd3xFleetLeadsBalancesAndMovesWithoutRedelivery(t *testing.T) {
	e := newEnv(t, testenv.Kinesalite, testenv.DynamoDBLocal, 6)
	f := newFleet3x(e, fleet3xProps())
	f.cgroups = true
	// Each child costs 5 % of a CPU, so a worker's utilisation follows its
	// lease count (a worker without leases draws some from the others); a
	// loaded worker's children cost 50 %. Checkpointing every 3rd batch gives a crash a window to
	// re-deliver, while a planned move (shutdownRequested checkpoints) must
	// re-deliver nothing.
	f.childEnv = []string{"FLEET_BURN_BASE=0.05", "FLEET_BURN=0.5", "FLEET_CHECKPOINT_EVERY=3"}
	ids := []string{"w1", "w2", "w3"}
	for _, id := range ids {
		f.start(id, nil)
	}
	leader := f.waitOneLeader(120*time.Second, ids...)
	counts := f.waitSettled(120*time.Second, 8*time.Second, ids...)
	t.Logf("leader %s; settled: %s", leader, fmtCounts(counts))

	p := e.startProducer(10, 500*time.Millisecond)
	tl := f.waitRecords(p.count(), 90*time.Second)
	if tl.redelivered() != 0 {
		t.Fatalf("%d records re-delivered before any move", tl.redelivered())
	}

	// load one follower: its children burn CPU
	loaded := ""
	for _, id := range ids {
		if id != leader && counts[id] > 0 {
			loaded = id
			break
		}
	}
	before := counts[loaded]
	if err := os.WriteFile(f.burnMarker(loaded), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	moves := f.watchMoves()
	waitFor(t, 180*time.Second, "leases moving away from the loaded worker "+loaded, func() bool {
		return f.counts()[loaded] < before
	}, f.running()...)
	_ = os.Remove(f.burnMarker(loaded))
	waitFor(t, 60*time.Second, "no hand-off pending", func() bool {
		for _, l := range f.leases() {
			if l.CheckpointOwner != "" {
				return false
			}
		}
		return true
	}, f.running()...)
	planned := moves.stop()
	tl = f.waitRecords(p.count(), 90*time.Second)
	t.Logf("loaded %s: %d → %d leases (%s); %d planned moves; records %d, deliveries %d, re-delivered %d",
		loaded, before, f.counts()[loaded], fmtCounts(f.counts()), len(planned), tl.distinct, tl.deliveries, tl.redelivered())
	if len(planned) == 0 {
		t.Fatal("no lease moved")
	}
	if n := tl.redelivered(); n != 0 {
		t.Errorf("planned moves %v re-delivered %d records, want 0: %v", planned, n, redeliveredExamples(tl))
	}

	// SIGKILL a follower holding leases
	victim := ""
	for _, id := range ids {
		if id != leader && f.counts()[id] > 0 {
			victim = id
		}
	}
	if victim == "" {
		t.Fatalf("no follower holds a lease: %s", fmtCounts(f.counts()))
	}
	// kill while its children hold records they have not checkpointed
	// (every 3rd batch is checkpointed), so the window is not empty
	var victimShards []string
	waitFor(t, 60*time.Second, victim+"'s children holding un-checkpointed records", func() bool {
		victimShards = nil
		for _, l := range f.leases() {
			if l.Owner == victim {
				victimShards = append(victimShards, l.Key)
			}
		}
		return f.uncheckpointed(victim, victimShards) > 0
	}, f.running()...)
	redeliveredBefore := f.tally().redelivered()
	f.workers[victim].kill()
	window := f.uncheckpointed(victim, victimShards)
	waitFor(t, 120*time.Second, "the killed worker's leases owned by the survivors", func() bool {
		for _, l := range f.leases() {
			if l.Owner == victim || l.CheckpointOwner == victim {
				return false
			}
		}
		return true
	}, f.running()...)
	n := p.stop()
	tl = f.waitRecords(n, 120*time.Second)
	after := tl.redelivered() - redeliveredBefore
	t.Logf("SIGKILL %s (shards %v): un-checkpointed window %d records, re-delivered %d; total records %d, deliveries %d",
		victim, victimShards, window, after, tl.distinct, tl.deliveries)
	if after > window {
		t.Errorf("%d records re-delivered after the SIGKILL, more than the %d its children had not checkpointed: %v", after, window, redeliveredExamples(tl))
	}
	// exactly one leader for the whole run: no other worker ever acquired the lock
	var acquired []string
	for _, id := range ids {
		b, _ := os.ReadFile(f.workers[id].log)
		if strings.Contains(string(b), "acquired the Leader lock") {
			acquired = append(acquired, id)
		}
	}
	if len(acquired) != 1 || acquired[0] != leader {
		t.Errorf("workers that acquired the Leader lock during the run: %v, want only %s", acquired, leader)
	}
}

// uncheckpointed counts, for each of shards, the records the newest child
// of worker on that shard logged after its last acknowledged checkpoint:
// what a crash of the worker may re-deliver.
func (f *fleet3x) uncheckpointed(worker string, shards []string) int {
	want := map[string]bool{}
	for _, sh := range shards {
		want[sh] = true
	}
	newest := map[string]int{} // shard -> pid of the newest child
	sinceCP := map[int]int{}   // pid -> records since its last checkpoint
	for _, ev := range f.readEvents() {
		if ev.Worker != worker || !want[ev.Shard] {
			continue
		}
		switch ev.Ev {
		case "init":
			newest[ev.Shard] = ev.Pid
		case "rec":
			sinceCP[ev.Pid]++
		case "cp":
			sinceCP[ev.Pid] = 0
		}
	}
	n := 0
	for _, pid := range newest {
		n += sinceCP[pid]
	}
	return n
}

func redeliveredExamples(tl tally) []string {
	var out []string
	for r, n := range tl.times {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s×%d", r, n))
		}
	}
	sort.Strings(out)
	return out[:min(len(out), 5)]
}

// moveWatch records every change of a lease's owner it observes.
type moveWatch struct {
	stopc chan struct{}
	done  chan []string
}

// watchMoves polls the lease table until stop and returns the moves seen
// ("key: from → to").
func (f *fleet3x) watchMoves() *moveWatch {
	w := &moveWatch{stopc: make(chan struct{}), done: make(chan []string, 1)}
	last := map[string]string{}
	for _, l := range f.leases() {
		last[l.Key] = l.Owner
	}
	go func() { // owned by stop, which waits for its result
		var moves []string
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stopc:
				w.done <- moves
				return
			case <-t.C:
			}
			ls, err := f.tryLeases()
			if err != nil {
				continue
			}
			for _, l := range ls {
				if l.Owner != last[l.Key] {
					moves = append(moves, fmt.Sprintf("%s: %s → %s", l.Key, last[l.Key], l.Owner))
					last[l.Key] = l.Owner
				}
			}
		}
	}()
	return w
}

func (w *moveWatch) stop() []string {
	close(w.stopc)
	return <-w.done
}
