package lease

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/seqnum"
)

// Checkpointer validates and writes checkpoints for one held lease (one
// concurrency token), with the Java RecordProcessorCheckpointer semantics
// (ShardRecordProcessorCheckpointer.checkpoint; docs/protocol.md §6). It
// implements subprocess.Checkpointer.
type Checkpointer struct {
	c     *Coordinator
	key   string
	token string

	mu         sync.Mutex
	last       seqnum.ESN
	largest    seqnum.ESN
	atShardEnd *seqnum.ESN // last delivered ESN once SetShardEnd was called
}

// Checkpointer returns the checkpointer for h. Its last checkpoint and
// largest permitted value start at h.Lease.Checkpoint.
func (c *Coordinator) Checkpointer(h *Held) *Checkpointer {
	return &Checkpointer{c: c, key: h.Lease.Key, token: h.Token, last: h.Lease.Checkpoint, largest: h.Lease.Checkpoint}
}

// SetLargestPermitted records the largest ESN delivered to the processor so
// far (after the ≤-checkpoint filter).
func (p *Checkpointer) SetLargestPermitted(e seqnum.ESN) {
	p.mu.Lock()
	p.largest = e
	p.mu.Unlock()
}

// SetShardEnd is called when the shard has been read to its end: the largest
// permitted value becomes SHARD_END, and a checkpoint of exactly the last
// delivered ESN is stored as SHARD_END.
func (p *Checkpointer) SetShardEnd() {
	p.mu.Lock()
	last := p.largest
	p.atShardEnd = &last
	p.largest = seqnum.Sentinel(seqnum.ShardEnd)
	p.mu.Unlock()
}

// LastCheckpoint returns the last checkpoint written (or read at start).
func (p *Checkpointer) LastCheckpoint() seqnum.ESN {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// LargestPermitted returns the current largest permitted checkpoint.
func (p *Checkpointer) LargestPermitted() seqnum.ESN {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.largest
}

// Checkpoint writes a checkpoint. sequenceNumber nil means the largest
// permitted value; subSequenceNumber nil means 0. Errors are
// *CheckpointError (ExceptionName gives the Java exception).
func (p *Checkpointer) Checkpoint(ctx context.Context, sequenceNumber *string, subSequenceNumber *int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var value seqnum.ESN
	if sequenceNumber == nil {
		value = p.largest
	} else {
		var sub int64
		if subSequenceNumber != nil {
			sub = *subSequenceNumber
		}
		if sub < 0 {
			return cpErr(CheckpointIllegalArgument, nil, "Could not checkpoint at invalid, negative subsequence number %d", sub)
		}
		value = seqnum.New(*sequenceNumber, sub)
		if err := value.Validate(); err != nil {
			return cpErr(CheckpointIllegalArgument, err, "Could not checkpoint at invalid sequence number %q", *sequenceNumber)
		}
		lo, err1 := seqnum.Compare(p.last, value)
		hi, err2 := seqnum.Compare(value, p.largest)
		if err := errors.Join(err1, err2); err != nil {
			return cpErr(CheckpointIllegalArgument, err, "Could not checkpoint at %s", value)
		}
		if lo > 0 || hi > 0 {
			return cpErr(CheckpointIllegalArgument, nil,
				"Could not checkpoint at extended sequence number %s as it did not fall into acceptable range between the last checkpoint %s and the greatest extended sequence number passed to this record processor %s",
				value, p.last, p.largest)
		}
	}
	toRecord := value
	if p.atShardEnd != nil && value == *p.atShardEnd {
		toRecord = seqnum.Sentinel(seqnum.ShardEnd)
	}
	if toRecord == p.last {
		return nil
	}
	if err := p.c.checkpoint(ctx, p.key, p.token, toRecord); err != nil {
		return err
	}
	p.last = toRecord
	return nil
}

// checkpoint is W4 for a held lease, fenced by its counter.
func (c *Coordinator) checkpoint(ctx context.Context, key, token string, cp seqnum.ESN) error {
	c.mu.Lock()
	h := c.held[key]
	c.mu.Unlock()
	if h == nil || h.token != token {
		return cpErr(CheckpointShutdown, ErrNotHeld, "Can't update checkpoint - instance doesn't hold the lease for this shard")
	}
	h.io.Lock()
	defer h.io.Unlock()
	c.mu.Lock()
	if c.held[key] != h {
		c.mu.Unlock()
		return cpErr(CheckpointShutdown, ErrNotHeld, "Can't update checkpoint - instance doesn't hold the lease for this shard")
	}
	l, last := h.lease, h.lastRenew
	c.mu.Unlock()
	if c.cfg.Clock.Now().Sub(last) > c.cfg.FailoverTime {
		c.drop(h, ErrLeaseLost)
		return cpErr(CheckpointShutdown, ErrLeaseLost, "Can't update checkpoint - lease for this shard expired locally")
	}
	sent := c.cfg.Clock.Now()
	err := c.store.UpdateCheckpoint(ctx, l, cp)
	if errors.Is(err, ErrConditionFailed) {
		var final *CheckpointError
		if l, sent, final, err = c.checkpointCCF(ctx, h, l, cp, sent, err); final != nil {
			return final
		}
	}
	return c.checkpointDone(h, l, cp, sent, err)
}

// checkpointCCF handles a checkpoint whose condition failed. The counter is
// the fence, but a CCF is not always a loss: one read tells our own landed
// writes from another worker's. It returns the lease and send time of the
// write that counts and its error, or final when the checkpoint ends here.
func (c *Coordinator) checkpointCCF(ctx context.Context, h *heldLease, l Lease, cp seqnum.ESN, sent time.Time, ccf error) (Lease, time.Time, *CheckpointError, error) {
	key := l.Key
	cur, gerr := c.store.GetLease(ctx, key)
	switch {
	case gerr != nil:
		// Unknown: keep the lease; the renewer settles it (spurious check
		// or loss). The child may retry.
		return l, sent, cpErr(CheckpointDependency, gerr, "checkpoint of %s: condition failed and the lease could not be re-read", key), ccf
	case cur == nil:
		c.drop(h, ErrLeaseLost)
		return l, sent, cpErr(CheckpointInvalidState, ccf, "lease %s no longer exists in the lease table", key), ccf
	case cur.ActualOwner() == c.cfg.WorkerID && cur.Counter == l.Counter+1 && cur.Checkpoint == cp:
		return l, sent, nil, nil // an earlier attempt whose response was lost wrote it
	case cur.ActualOwner() == c.cfg.WorkerID && cur.Counter == l.Counter+1:
		// Still ours, one ahead: a renew of ours landed although it
		// reported an error. Adopt its counter and write once more.
		c.mu.Lock()
		h.lease.Counter = cur.Counter
		c.mu.Unlock()
		l.Counter = cur.Counter
		sent = c.cfg.Clock.Now()
		err := c.store.UpdateCheckpoint(ctx, l, cp)
		if errors.Is(err, ErrConditionFailed) && c.landed(ctx, key, l.Counter+1, &cp) {
			err = nil
		}
		return l, sent, nil, err
	default:
		return l, sent, nil, ccf
	}
}

// checkpointDone records a successful checkpoint write (also a renewal) or
// maps its error to the Java exception the child sees.
func (c *Coordinator) checkpointDone(h *heldLease, l Lease, cp seqnum.ESN, sent time.Time, err error) error {
	switch {
	case err == nil:
		c.mu.Lock()
		c.renewed(h, l.Counter+1, sent)
		h.lease.Checkpoint = cp
		h.lease.OwnerSwitchesSinceCheckpoint = 0
		h.lease.PendingCheckpoint = nil
		h.lease.PendingCheckpointState = nil
		c.mu.Unlock()
		return nil
	case errors.Is(err, ErrConditionFailed):
		c.log.Info("lease lost: checkpoint condition failed", zap.String("leaseKey", l.Key))
		c.drop(h, ErrLeaseLost)
		return cpErr(CheckpointShutdown, err, "Can't update checkpoint - instance doesn't hold the lease for this shard")
	case errors.Is(err, ErrThrottled):
		return cpErr(CheckpointThrottling, err, "checkpoint of %s throttled", l.Key)
	case errors.Is(err, ErrTableNotFound):
		return cpErr(CheckpointInvalidState, err, "lease table missing")
	default:
		return cpErr(CheckpointDependency, err, "checkpoint of %s failed", l.Key)
	}
}
