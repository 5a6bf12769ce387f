package daemon

import (
	"context"
	"sync"

	"go.uber.org/zap"
)

// The shard consumer's side of a KCL 3.x graceful hand-off (docs/architecture.md
// "Graceful hand-off"): when the coordinator closes lease.Held.Handoff, the
// consumer stops reading (no processRecords after that), gives the child
// shutdownRequested with a checkpointer (its checkpoint still lands: the
// lease is renewed until the transfer), transfers the lease to its new
// owner (Coordinator.CompleteHandoff, W8), then sends leaseLost and closes
// the child, as Java ShutdownNotificationTask followed by ShutdownTask
// (LEASE_LOST) does. The lease is never released.

// watchHandoff starts the goroutine that turns a closed Held.Handoff into
// the end of the consumer's session; the returned func stops it and waits.
func (c *consumer) watchHandoff() (stop func()) {
	if c.held.Handoff == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by run: stop waits for it
		defer wg.Done()
		select {
		case <-c.held.Handoff:
			c.log.Info("graceful hand-off of the lease started; ending the session")
			c.handingOff.Store(true)
			c.cancel()
		case <-ctx.Done():
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// handoffStarted reports whether the lease's hand-off has started, without
// waiting for the watcher (a consumer started for a lease whose hand-off
// is already under way, e.g. after a failed transfer, starts no child).
func (c *consumer) handoffStarted() bool {
	select {
	case <-c.held.Handoff:
		c.handingOff.Store(true)
		return true
	default:
		return c.handingOff.Load()
	}
}

// endForHandoff ends a live child's session for a graceful hand-off:
// shutdownRequested, the transfer, leaseLost, close. The child's calls are
// also cut short when the lease leaves the held set meanwhile (the
// coordinator transferred it after gracefulLeaseHandoffTimeoutMillis).
func (c *consumer) endForHandoff(hardStopCtx context.Context, child Child, cp Checkpointer) outcome {
	ctx, cancel := context.WithCancel(hardStopCtx)
	stop := context.AfterFunc(c.held.Ctx, cancel)
	if err := child.ShutdownRequested(ctx, cp); err != nil {
		c.log.Warn("shutdownRequested failed", zap.Error(err))
	}
	stop()
	cut := ctx.Err() != nil // the child was abandoned (and terminated)
	cancel()
	if c.held.Ctx.Err() == nil {
		c.completeHandoff(hardStopCtx)
	}
	if !cut {
		if err := child.LeaseLost(hardStopCtx); err != nil {
			c.log.Warn("leaseLost failed", zap.Error(err))
		}
	}
	c.closeChild(hardStopCtx, child)
	return outcomeHandedOff
}

// completeHandoff transfers the lease to its new owner; a failure is
// retried by the coordinator until the hand-off deadline.
func (c *consumer) completeHandoff(hardStopCtx context.Context) {
	if err := c.s.deps.Coordinator.CompleteHandoff(hardStopCtx, c.key); err != nil {
		c.log.Warn("completing the graceful hand-off failed", zap.Error(err))
	}
}
