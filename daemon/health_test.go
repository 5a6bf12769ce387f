package daemon

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/seqnum"
)

// Ready fails while every held shard is failing and recovers once one
// processes a batch; Live stays nil throughout.
func TestReadyFailsWhileEveryShardFails(t *testing.T) {
	h := startCfg(t, func(c *Config) {
		c.MaxChildFailures = 0 // never release: keep failing
		c.TaskBackoff, c.MaxBackoff = 50*time.Millisecond, 50*time.Millisecond
	}, childBehaviour{failProcess: 1 << 30}, map[string][]record.Batch{
		"s1": {{Records: recs("100")}}, "s2": {{Records: recs("200")}},
	}, lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}, lease.Lease{Key: "s2", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.eventually("running", func() bool { return h.s.Ready() == nil })
	h.coord.grant("s1", "t1")
	h.coord.grant("s2", "t2")
	h.eventually("not ready", func() bool {
		err := h.s.Ready()
		return err != nil && strings.Contains(err.Error(), "every held shard is failing (s1, s2)")
	})
	if err := h.s.Live(); err != nil {
		t.Fatalf("Live: %v", err)
	}
	if !errors.Is(h.s.Ready(), ErrNotReady) {
		t.Fatal("Ready error is not ErrNotReady")
	}
	h.kids.mu.Lock()
	h.kids.b.failProcess = 0
	h.kids.mu.Unlock()
	h.eventually("ready again", func() bool { return h.s.Ready() == nil })
}

// A child that checkpointed its batch and then failed leaves nothing to
// re-deliver: once its successor reads on (empty batches on an idle
// stream), the shard is no longer failing and the worker is ready again.
func TestReadyAfterFailureOnIdleStream(t *testing.T) {
	h := startCfg(t, func(c *Config) {
		c.TaskBackoff, c.MaxBackoff = 50*time.Millisecond, 50*time.Millisecond
	}, childBehaviour{cpThenFail: 1}, map[string][]record.Batch{
		"s1": {{Records: recs("100")}, {MillisBehindLatest: new(int64)}},
	}, lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.eventually("second child reading", func() bool { return count(h.w.Events(), "source s1") == 2 && count(h.w.Events(), "init s1") == 2 })
	h.eventually("ready again", func() bool { return h.s.Ready() == nil })
	if ev := h.w.Events(); count(ev, "rec s1") != 1 {
		t.Fatalf("record re-delivered after its checkpoint: %v", ev)
	}
}

// A lease in cool-down after repeated failures counts as failing: with no
// other shard, the worker is not ready.
func TestReadyCountsCooldown(t *testing.T) {
	h := start(t, childBehaviour{startFail: true}, nil, lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.eventually("released", func() bool { return slices.Contains(h.coord.Released(), "s1") })
	h.eventually("not ready", func() bool { return h.s.Ready() != nil })
}

// A child that hangs in processRecords is reported stuck after the
// threshold and, with StuckShardRestartChild, replaced by a new child that
// resumes from the checkpoint.
func TestStuckShardWatchdogRestartsChild(t *testing.T) {
	h := startCfg(t, func(c *Config) {
		c.StuckShardAfter = 100 * time.Millisecond
		c.StuckShardRestartChild = true
		c.StuckShardFailsReadiness = true
	}, childBehaviour{hangFirst: 1}, map[string][]record.Batch{
		"s1": {{Records: recs("100")}, {Records: recs("101")}},
	}, lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.eventually("stuck reported", func() bool { return slices.Contains(h.metrics.stuckEvents(), "s1=true") })
	h.eventually("new child resumes", func() bool { return h.hasEvent("checkpoint s1 101") })
	ev := h.w.Events()
	if count(ev, "init s1") < 2 {
		t.Fatalf("child not restarted: %v", ev)
	}
	h.eventually("no longer stuck", func() bool { return slices.Contains(h.metrics.stuckEvents(), "s1=false") })
	if err := h.s.Ready(); err != nil {
		t.Fatalf("Ready after recovery: %v", err)
	}
}

// Without the restart key the watchdog only reports, and readiness fails
// while the shard is stuck when so configured.
func TestStuckShardWatchdogReportsOnly(t *testing.T) {
	h := startCfg(t, func(c *Config) {
		c.StuckShardAfter = 100 * time.Millisecond
		c.StuckShardFailsReadiness = true
	}, childBehaviour{blockProcess: true}, map[string][]record.Batch{"s1": {{Records: recs("100")}}},
		lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.eventually("stuck reported", func() bool { return slices.Contains(h.metrics.stuckEvents(), "s1=true") })
	if err := h.s.Ready(); err == nil || !strings.Contains(err.Error(), "stuck shards (s1)") {
		t.Fatalf("Ready = %v, want stuck shards", err)
	}
	if n := count(h.w.Events(), "init s1"); n != 1 {
		t.Fatalf("%d children started, want 1 (no restart)", n)
	}
}

// RestartChildren replaces every shard's child one at a time: the old child
// gets shutdownRequested (and checkpoints) and leaseLost, the new one is
// initialized at that checkpoint; no lease is released.
func TestRestartChildrenKeepsLeases(t *testing.T) {
	h := start(t, childBehaviour{}, map[string][]record.Batch{
		"s1": {{Records: recs("100")}}, "s2": {{Records: recs("200")}},
	}, lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}, lease.Lease{Key: "s2", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.coord.grant("s2", "t2")
	h.eventually("both processed", func() bool { return h.hasEvent("checkpoint s1 100") && h.hasEvent("checkpoint s2 200") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.s.RestartChildren(ctx); err != nil {
		t.Fatal(err)
	}
	ev := h.w.Events()
	for _, s := range []string{"s1", "s2"} {
		if count(ev, "shutdownRequested "+s) != 1 || count(ev, "leaseLost "+s) != 1 || count(ev, "init "+s) != 2 {
			t.Fatalf("%s not restarted once: %v", s, ev)
		}
	}
	// One shard at a time: s1's new child is initialized before s2 is asked.
	i1 := slices.IndexFunc(ev, func(e string) bool { return strings.HasPrefix(e, "init s1 100/0") })
	i2 := slices.IndexFunc(ev, func(e string) bool { return strings.HasPrefix(e, "shutdownRequested s2") })
	if i1 < 0 || i2 < 0 || i1 > i2 {
		t.Fatalf("not one shard at a time (new s1 child at %d, s2 asked at %d): %v", i1, i2, ev)
	}
	if r := h.coord.Released(); len(r) != 0 {
		t.Fatalf("leases released: %v", r)
	}
	if _, failed, _ := h.metrics.get(); failed != 0 {
		t.Fatalf("%d task failures for a reload", failed)
	}
}

// A shard waiting for its parent has no child yet: its first child comes
// from the new settings anyway, so a reload does not wait for the parent
// to finish (which can take as long as the parent's owner needs).
func TestRestartChildrenSkipsShardWaitingOnParent(t *testing.T) {
	h := start(t, childBehaviour{}, map[string][]record.Batch{
		"s1": {{Records: recs("100")}}, "child": {{Records: recs("200")}},
	},
		lease.Lease{Key: "parent", Checkpoint: seqnum.New("150", 0)},
		lease.Lease{Key: "child", ParentShardIDs: []string{"parent"}, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)},
		lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("child", "t1")
	h.coord.grant("s1", "t1")
	h.eventually("s1 processed", func() bool { return h.hasEvent("checkpoint s1 100") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.s.RestartChildren(ctx); err != nil {
		t.Fatalf("reload waited for a shard whose parent is not done: %v (%v)", err, h.w.Events())
	}
	if ev := h.w.Events(); count(ev, "init s1") != 2 || h.hasEvent("init child") {
		t.Fatalf("want s1 restarted and no child for the gated shard: %v", ev)
	}
	h.w.mu.Lock()
	h.w.leases["parent"].Checkpoint = seqnum.Sentinel(seqnum.ShardEnd)
	h.w.mu.Unlock()
	h.eventually("gated shard processed", func() bool { return h.hasEvent("checkpoint child 200") })
}

// A child that hangs in the reload's shutdownRequested is cut short by the
// stuck-shard watchdog (with stuckShardRestartChild), so the reload ends.
func TestRestartChildrenHungShutdownCutByWatchdog(t *testing.T) {
	h := startCfg(t, func(c *Config) {
		c.StuckShardAfter = 100 * time.Millisecond
		c.StuckShardRestartChild = true
	}, childBehaviour{hangShutdown: 1}, map[string][]record.Batch{"s1": {{Records: recs("100")}}},
		lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.eventually("processed", func() bool { return h.hasEvent("checkpoint s1 100") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.s.RestartChildren(ctx); err != nil {
		t.Fatalf("reload held up by a child hung in shutdownRequested: %v (%v)", err, h.w.Events())
	}
	if ev := h.w.Events(); count(ev, "init s1") != 2 {
		t.Fatalf("child not replaced: %v", ev)
	}
	if r := h.coord.Released(); len(r) != 0 {
		t.Fatalf("leases released: %v", r)
	}
}

// A reload to a processor that cannot start does not hang: each shard fails
// maxChildFailures times, is released, and the reload moves on.
func TestRestartChildrenToBrokenProcessorEnds(t *testing.T) {
	h := startCfg(t, func(c *Config) {
		c.TaskBackoff, c.MaxBackoff = 20*time.Millisecond, 20*time.Millisecond
	}, childBehaviour{}, map[string][]record.Batch{
		"s1": {{Records: recs("100")}}, "s2": {{Records: recs("200")}},
	}, lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}, lease.Lease{Key: "s2", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.coord.grant("s2", "t2")
	h.eventually("both processed", func() bool { return h.hasEvent("checkpoint s1 100") && h.hasEvent("checkpoint s2 200") })
	h.kids.mu.Lock()
	h.kids.b.startFail = true // the reloaded executable cannot start
	h.kids.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.s.RestartChildren(ctx); err != nil {
		t.Fatalf("reload to a broken processor did not end: %v", err)
	}
	if r := h.coord.Released(); !slices.Contains(r, "s1") || !slices.Contains(r, "s2") {
		t.Fatalf("released %v, want both shards handed on", r)
	}
}
