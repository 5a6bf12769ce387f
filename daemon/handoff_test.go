package daemon

import (
	"slices"
	"testing"
	"time"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/seqnum"
)

// TestHandoffEndsSessionWithoutRelease: a graceful hand-off ends the
// session as Java ShutdownNotificationTask then ShutdownTask do:
// shutdownRequested (whose checkpoint lands), the transfer, leaseLost;
// nothing is released and no record is delivered after shutdownRequested.
func TestHandoffEndsSessionWithoutRelease(t *testing.T) {
	h := start(t, childBehaviour{}, map[string][]record.Batch{"s1": {{Records: recs("100")}, {Records: recs("200")}}},
		lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.eventually("processed", func() bool { return h.hasEvent("checkpoint s1 200") })
	h.coord.handoff("s1")
	h.eventually("handed off", func() bool { return h.hasEvent("hand off s1") })
	h.eventually("consumer stopped", func() bool { return h.metrics.stops() == 1 })
	ev := h.w.Events()
	i := slices.Index(ev, "shutdownRequested s1")
	if i < 0 {
		t.Fatalf("no shutdownRequested: %v", ev)
	}
	want := []string{"shutdownRequested s1", "checkpoint s1 200", "hand off s1", "leaseLost s1"}
	if got := ev[i:min(i+4, len(ev))]; !slices.Equal(got, want) {
		t.Fatalf("after the hand-off started: %v, want %v", got, want)
	}
	if len(h.coord.Released()) != 0 || count(ev[i:], "rec ") != 0 {
		t.Fatalf("released or delivered after shutdownRequested: %v", ev)
	}
}

// TestHandoffBeforeChildStarts: a lease whose hand-off started before its
// consumer had a child is transferred without starting one.
func TestHandoffBeforeChildStarts(t *testing.T) {
	h := start(t, childBehaviour{}, nil,
		lease.Lease{Key: "p", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)},
		lease.Lease{Key: "s1", ParentShardIDs: []string{"p"}, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1") // waits on its unfinished parent
	h.coord.handoff("s1")
	h.eventually("handed off", func() bool { return h.hasEvent("hand off s1") })
	if h.hasEvent("init s1") || h.hasEvent("shutdownRequested") || len(h.coord.Released()) != 0 {
		t.Fatalf("unexpected: %v", h.w.Events())
	}
}

// TestHandoffOutranksGracefulStop: a worker stopping while a hand-off is
// in progress transfers the lease instead of releasing it.
func TestHandoffOutranksGracefulStop(t *testing.T) {
	h := start(t, childBehaviour{hangShutdown: 1}, map[string][]record.Batch{"s1": {{Records: recs("100")}}},
		lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.eventually("processed", func() bool { return h.hasEvent("checkpoint s1 100") })
	h.coord.handoff("s1")
	h.eventually("shutdownRequested", func() bool { return h.hasEvent("shutdownRequested s1") })
	h.stop() // the hanging shutdownRequested is cut at the stop deadline
	if !h.hasEvent("hand off s1") || len(h.coord.Released()) != 0 {
		t.Fatalf("events %v, released %v", h.w.Events(), h.coord.Released())
	}
}

// TestHandoffAlreadyStarted: a consumer started for a lease whose hand-off
// is already under way (its transfer failed and is retried) starts no
// child and completes the hand-off.
func TestHandoffAlreadyStarted(t *testing.T) {
	taken := make(chan struct{}, 1)
	h := startCfg(t, func(c *Config) { c.DispatchInterval = time.Hour; c.LeasesTaken = taken }, childBehaviour{},
		map[string][]record.Batch{"s1": {{Records: recs("100")}}},
		lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.eventually("scheduler running", func() bool { return h.s.Healthy() == nil })
	h.coord.grant("s1", "t1")
	h.coord.handoff("s1")
	taken <- struct{}{}
	h.eventually("handed off", func() bool { return h.hasEvent("hand off s1") })
	if h.hasEvent("init s1") || h.hasEvent("rec ") {
		t.Fatalf("a child started for a lease being handed off: %v", h.w.Events())
	}
}

// TestHandoffTransferFailsThenRetried: a transfer that fails transiently
// (DynamoDB unreachable) leaves the lease held; the consumer started again
// for it starts no child and completes the hand-off, and no record is
// delivered after shutdownRequested.
func TestHandoffTransferFailsThenRetried(t *testing.T) {
	h := start(t, childBehaviour{}, map[string][]record.Batch{"s1": {{Records: recs("100")}, {Records: recs("200")}}},
		lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.mu.Lock()
	h.coord.failHandoffs = 1
	h.coord.mu.Unlock()
	h.coord.grant("s1", "t1")
	h.eventually("processed", func() bool { return h.hasEvent("checkpoint s1 200") })
	h.coord.handoff("s1")
	h.eventually("handed off on the retry", func() bool { return h.hasEvent("hand off s1") })
	ev := h.w.Events()
	i := slices.Index(ev, "shutdownRequested s1")
	if i < 0 || !h.hasEvent("hand off failed s1") {
		t.Fatalf("events %v", ev)
	}
	if count(ev, "init s1") != 1 || count(ev[i:], "rec ") != 0 || count(ev, "shutdownRequested") != 1 || len(h.coord.Released()) != 0 {
		t.Fatalf("a second child, a record after shutdownRequested or a release: %v", ev)
	}
}

// TestHandoffLeaseLostDuringShutdownRequested: the lease is lost (the
// leader re-assigned it, or the timeout transfer dropped it) while the
// child is still in shutdownRequested: the call is abandoned, no transfer
// is attempted and no leaseLost is sent (docs/compatibility.md, KCL 3.x:
// graceful hand-off).
func TestHandoffLeaseLostDuringShutdownRequested(t *testing.T) {
	h := start(t, childBehaviour{hangShutdown: 1}, map[string][]record.Batch{"s1": {{Records: recs("100")}}},
		lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	h.coord.grant("s1", "t1")
	h.eventually("processed", func() bool { return h.hasEvent("checkpoint s1 100") })
	h.coord.handoff("s1")
	h.eventually("shutdownRequested", func() bool { return h.hasEvent("shutdownRequested s1") })
	h.coord.lose("s1")
	h.eventually("consumer stopped", func() bool { return h.metrics.stops() == 1 })
	if h.hasEvent("hand off") || h.hasEvent("leaseLost s1") || len(h.coord.Released()) != 0 {
		t.Fatalf("events %v, released %v", h.w.Events(), h.coord.Released())
	}
}
