package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// ErrHandedOff is the cause of a held lease's context when this worker
// handed it over to the owner a KCL 3.x leader chose (graceful hand-off,
// Java LeaseGracefulShutdownHandler): a planned move, not a loss.
var ErrHandedOff = errors.New("lease: lease handed off")

// handoffState is a graceful hand-off of a held lease in progress: the
// leader wrote W9 (leaseOwner = To, checkpointOwner = us) and this worker
// noticed it on a renew. Guarded by Coordinator.mu.
type handoffState struct {
	to                string
	started, deadline time.Time
	// retry is set when a transfer (W8) failed transiently: the hand-off
	// loop tries again at its next tick.
	retry bool
}

// HandoffStatus is one graceful hand-off in progress, for operators.
type HandoffStatus struct {
	Key string
	// To is the new owner the KCL 3.x leader chose (the item's leaseOwner).
	To string
	// Started is when this worker noticed the hand-off; Deadline is when
	// it transfers the lease even if the shard consumer has not finished
	// (gracefulLeaseHandoffTimeoutMillis later).
	Started, Deadline time.Time
}

// ActualOwner is the worker that really processes the lease: the
// checkpoint owner while a hand-off is pending, else the lease owner (Java
// Lease.actualOwner).
func (l *Lease) ActualOwner() string {
	if l.CheckpointOwner != "" {
		return l.CheckpointOwner
	}
	return l.Owner
}

// renewHandoffCCF handles a 3.x renew CCF that may be a hand-off request
// (Java DynamoDBLeaseRefresher.renewLease → handleGracefulShutdown): when
// the item (sent with the CCF, else re-read) has a checkpointOwner, is still
// ours (its actual owner is ours) and names a different next owner, the
// owners are adopted and the renew retried without the
// attribute_not_exists(checkpointOwner) clause. handled is false when the
// CCF is no hand-off (the caller goes on with its spurious-failure check).
func (c *Coordinator) renewHandoffCCF(ctx context.Context, l Lease, ccf error) (nl Lease, ok bool, err error, handled bool) {
	if !c.threeX.Load() || l.CheckpointOwner != "" {
		return l, false, nil, false
	}
	item := ConditionItem(ccf)
	if item == nil {
		cur, gerr := c.store.GetLease(ctx, l.Key)
		if gerr != nil {
			// Unknown, not lost: must not wrap ErrConditionFailed.
			return l, false, fmt.Errorf("renew %s: condition failed (%v), and the re-read failed: %w", l.Key, ccf, gerr), true
		}
		item = cur
	}
	if item == nil || item.CheckpointOwner == "" {
		return l, false, nil, false
	}
	if item.ActualOwner() != l.ActualOwner() || item.CheckpointOwner == item.Owner {
		c.log.Warn("renew failed: the lease is pending a hand-off that is not ours",
			zap.String("leaseKey", l.Key), zap.String("leaseOwner", item.Owner), zap.String("checkpointOwner", item.CheckpointOwner))
		return l, false, ccf, true
	}
	l.Owner, l.CheckpointOwner = item.Owner, item.CheckpointOwner
	c.log.Info("graceful hand-off requested by the KCL 3.x leader; renewing until it is transferred",
		zap.String("leaseKey", l.Key), zap.String("to", l.Owner))
	nl, ok, err = c.renewStored(ctx, l)
	return nl, ok, err, true
}

// handoffRenewable reports whether a held lease may still be renewed: with
// a hand-off pending only while checkpointOwner is this worker and
// leaseOwner is not (Java DynamoDBLeaseRenewer.isCheckpointOwner).
func (c *Coordinator) handoffRenewable(l Lease) bool {
	return l.CheckpointOwner == "" || c.handoffFromUs(l)
}

// handoffFromUs reports whether item is a graceful hand-off away from this
// worker (W9: checkpointOwner = us, leaseOwner = the next owner).
func (c *Coordinator) handoffFromUs(item Lease) bool {
	return item.CheckpointOwner == c.cfg.WorkerID && item.Owner != c.cfg.WorkerID
}

// transferUnnoticed finishes a hand-off that a release found (its CCF)
// before any renew noticed it: the shard consumer has already ended, so
// the lease goes to its next owner at once instead of waiting for the
// leader's deadline. h.io must be held.
func (c *Coordinator) transferUnnoticed(ctx context.Context, h *heldLease, item Lease) error {
	c.mu.Lock()
	c.adoptHandoffLocked(h, item)
	c.mu.Unlock()
	return c.transfer(ctx, h, "released")
}

// adoptHandoffLocked copies the hand-off owners a renew (or a release's
// CCF) found into the held lease and starts the hand-off when it is new.
// c.mu must be held.
func (c *Coordinator) adoptHandoffLocked(h *heldLease, nl Lease) {
	if nl.CheckpointOwner == "" || h.handoff != nil {
		return
	}
	h.lease.Owner, h.lease.CheckpointOwner = nl.Owner, nl.CheckpointOwner
	c.startHandoffLocked(h)
}

// startHandoffLocked marks h as being handed off and closes its Handoff
// channel, which tells the shard consumer to end its session (Java
// LeaseGracefulShutdownHandler.enqueueShutdown). c.mu must be held.
func (c *Coordinator) startHandoffLocked(h *heldLease) {
	if h.handoff != nil {
		return
	}
	now := c.cfg.Clock.Now()
	h.handoff = &handoffState{to: h.lease.Owner, started: now, deadline: now.Add(c.cfg.GracefulLeaseHandoffTimeout)}
	close(h.handoffCh)
}

// CompleteHandoff ends a graceful hand-off once the shard consumer has
// finished (Java ShutdownNotificationTask → attemptLeaseTransfer): W8 to
// the new owner (leaseOwner stays, checkpointOwner removed, counter +1),
// then the lease is dropped locally with cause ErrHandedOff. A failed
// transfer is retried by the hand-off loop (the lease stays held until
// then); a CCF drops the lease as lost unless the lease is already with
// its new owner (transferred).
func (c *Coordinator) CompleteHandoff(ctx context.Context, key string) error {
	h, unlock, err := c.lockHeld(key)
	if err != nil {
		return fmt.Errorf("complete hand-off of %s: %w", key, err)
	}
	defer unlock()
	c.mu.Lock()
	pending := h.handoff != nil
	c.mu.Unlock()
	if !pending {
		return fmt.Errorf("complete hand-off of %s: no hand-off in progress", key)
	}
	return c.transfer(ctx, h, "shard consumer finished")
}

// transfer is W8 of a held lease being handed off to its new owner; h.io
// must be held. Like a renew, it gives up after FailoverTime (Java bounds
// assignLease by the DynamoDB request timeout): a hung request would
// otherwise hold h.io, and with it the lease's renewals and the hand-off
// loop, until the caller's context ends.
func (c *Coordinator) transfer(ctx context.Context, h *heldLease, why string) error {
	c.mu.Lock()
	l := h.lease
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.FailoverTime)
	defer cancel()
	_, err := c.store.AssignLease(ctx, l, l.Owner)
	if errors.Is(err, ErrConditionFailed) && c.transferred(ctx, l) {
		err = nil
	}
	switch {
	case err == nil:
		c.log.Info("lease handed off", zap.String("leaseKey", l.Key), zap.String("to", l.Owner), zap.String("why", why))
		c.drop(h, fmt.Errorf("%w: %s to %s", ErrHandedOff, l.Key, l.Owner))
		return nil
	case errors.Is(err, ErrConditionFailed):
		c.log.Info("lease lost during its hand-off: transfer condition failed", zap.String("leaseKey", l.Key))
		c.drop(h, fmt.Errorf("%w: %s: hand-off transfer: %w", ErrLeaseLost, l.Key, err))
		return fmt.Errorf("hand-off of %s: %w", l.Key, err)
	default:
		c.mu.Lock()
		if h.handoff != nil {
			h.handoff.retry = true
		}
		c.mu.Unlock()
		return fmt.Errorf("hand-off of %s (retried): %w", l.Key, err)
	}
}

// transferred reports, after a transfer's CCF, whether the lease is
// already with its new owner and no hand-off is pending: an earlier attempt
// whose response was lost did the W8 (only a W8 or a take removes
// checkpointOwner, each adding to the counter), and the new owner may have
// renewed it since.
func (c *Coordinator) transferred(ctx context.Context, l Lease) bool {
	cur, err := c.store.GetLease(ctx, l.Key)
	return err == nil && cur != nil && cur.Owner == l.Owner && cur.CheckpointOwner == "" && cur.Counter > l.Counter
}

// handoffLoop transfers every lease whose hand-off has not completed
// within GracefulLeaseHandoffTimeout, checked every HandoffCheckPeriod
// (Java LeaseGracefulShutdownHandler.monitorGracefulShutdownLeases), and
// retries transfers that failed transiently.
func (c *Coordinator) handoffLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.HandoffCheckPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, h := range c.handoffsDue() {
			if ctx.Err() != nil {
				return
			}
			c.transferDue(ctx, h)
		}
	}
}

// handoffsDue returns the held leases whose hand-off is past its deadline
// or whose transfer is to be retried.
func (c *Coordinator) handoffsDue() []*heldLease {
	now := c.cfg.Clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var due []*heldLease
	for _, h := range c.held {
		if h.handoff != nil && (h.handoff.retry || !now.Before(h.handoff.deadline)) {
			due = append(due, h)
		}
	}
	return due
}

func (c *Coordinator) transferDue(ctx context.Context, h *heldLease) {
	h.io.Lock()
	defer h.io.Unlock()
	c.mu.Lock()
	current := c.held[h.lease.Key] == h
	key, timedOut := h.lease.Key, h.handoff != nil && !c.cfg.Clock.Now().Before(h.handoff.deadline)
	c.mu.Unlock()
	if !current {
		return
	}
	why := "retry"
	if timedOut {
		why = "timeout"
		c.log.Warn("graceful hand-off not completed within gracefulLeaseHandoffTimeoutMillis; transferring the lease",
			zap.String("leaseKey", key), zap.Duration("timeout", c.cfg.GracefulLeaseHandoffTimeout))
	}
	if err := c.transfer(ctx, h, why); err != nil && ctx.Err() == nil {
		c.log.Warn("hand-off transfer failed", zap.String("leaseKey", key), zap.Error(err))
	}
}

// Handoffs returns the graceful hand-offs in progress, sorted by lease key.
func (c *Coordinator) Handoffs() []HandoffStatus {
	c.mu.Lock()
	var out []HandoffStatus
	for k, h := range c.held {
		if h.handoff != nil {
			out = append(out, HandoffStatus{Key: k, To: h.handoff.to, Started: h.handoff.started, Deadline: h.handoff.deadline})
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b HandoffStatus) int { return strings.Compare(a.Key, b.Key) })
	return out
}
