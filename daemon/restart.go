package daemon

import (
	"context"
	"errors"
	"sync/atomic"

	"go.uber.org/zap"
)

// errRestart ends a session so that the next one starts a new child (a
// reload), keeping the lease; it is not a failure.
var errRestart = errors.New("child restart requested")

// restartRequest asks one consumer for a new child started at or after
// generation gen; done is closed once such a child answered initialize, or
// the consumer ended.
type restartRequest struct {
	gen  int64
	done chan struct{}
	once atomic.Bool
}

func (r *restartRequest) finish() {
	if r.once.CompareAndSwap(false, true) {
		close(r.done)
	}
}

// RestartChildren gives every shard a new child, one shard at a time (hot
// reload, docs/operations.md "Reload"): the running child gets
// shutdownRequested (it may checkpoint) and leaseLost and is closed, then a
// new child is started and initialized at the stored checkpoint, and
// reading resumes from there. Leases are kept throughout. Children started
// after the call begins come from the factory's new settings already. It
// returns when every consumer has a new child (or ended), or ctx is done.
func (s *Scheduler) RestartChildren(ctx context.Context) error {
	gen := s.childGen.Add(1)
	for _, c := range s.consumerList() {
		r := &restartRequest{gen: gen, done: make(chan struct{})}
		c.requestRestart(r)
		select {
		case <-r.done:
			if pid := c.prog.pid.Load(); pid != 0 {
				c.log.Info("child restarted for the reload", zap.Int64("childPid", pid))
			}
		case <-c.done:
			r.finish()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// requestRestart asks the consumer for a child of r.gen or later: a session
// reading records stops waiting for the next batch and ends with errRestart.
// A consumer still waiting for its parent shards has no child: its first one
// comes from the new settings (its session loads childGen after leaving that
// state), so the request is satisfied at once instead of waiting for the
// parent's owner to finish the parent.
func (c *consumer) requestRestart(r *restartRequest) {
	if old := c.restartReq.Swap(r); old != nil {
		old.finish() // superseded by the newer request
	}
	if c.State() == WaitingOnParentShards && c.restartReq.CompareAndSwap(r, nil) {
		r.finish()
		return
	}
	if f := c.stopReading.Load(); f != nil {
		(*f)()
	}
	select {
	case <-c.done:
		r.finish()
	default:
	}
}

// restartWanted reports whether the live child (of generation childGen) must
// be replaced.
func (c *consumer) restartWanted(childGen int64) bool {
	r := c.restartReq.Load()
	return r != nil && r.gen > childGen
}

// childReady acknowledges the restart requests a child of childGen satisfies.
func (c *consumer) childReady(childGen int64) {
	if r := c.restartReq.Load(); r != nil && r.gen <= childGen && c.restartReq.CompareAndSwap(r, nil) {
		r.finish()
	}
}

// endForRestart ends the live child for a reload: shutdownRequested (the
// child may checkpoint), leaseLost, close. The lease stays held. The calls
// are bounded by childCtx and marked outstanding, so the stuck-shard
// watchdog can cut short a child that hangs in them instead of holding the
// reload up.
func (c *consumer) endForRestart(hardStopCtx, childCtx context.Context, child Child, cp Checkpointer) error {
	c.setState(ShuttingDown)
	idle := c.prog.busy()
	err := child.ShutdownRequested(childCtx, progressCheckpointer{cp, c.prog})
	idle()
	if err != nil {
		c.log.Warn("shutdownRequested failed", zap.Error(childErr(childCtx, err)))
	}
	if err := child.LeaseLost(childCtx); err != nil {
		c.log.Warn("leaseLost failed", zap.Error(err))
	}
	c.closeChild(hardStopCtx, child)
	return errRestart
}
