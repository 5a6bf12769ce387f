package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/ctxutil"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/retrieval"
	"github.com/multilangd/multilangd/seqnum"
)

// State is a shard consumer's state (Java ConsumerStates.ShardConsumerState).
type State int32

// Consumer states.
const (
	WaitingOnParentShards State = iota
	Initializing
	Processing
	ShuttingDown
	ShutdownComplete
)

func (s State) String() string {
	switch s {
	case WaitingOnParentShards:
		return "WAITING_ON_PARENT_SHARDS"
	case Initializing:
		return "INITIALIZING"
	case Processing:
		return "PROCESSING"
	case ShuttingDown:
		return "SHUTTING_DOWN"
	case ShutdownComplete:
		return "SHUTDOWN_COMPLETE"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// outcome is how a consumer ended.
type outcome int

const (
	outcomeLeaseLost outcome = iota // lease lost or deleted; nothing released
	outcomeShardEnd                 // shard completed (lease checkpoint SHARD_END)
	outcomeStopped                  // graceful stop; lease released
	outcomeReleased                 // too many failures; lease released, cool-down
)

func (o outcome) String() string {
	return [...]string{"lease lost", "shard end", "stopped", "released after failures"}[o]
}

// ErrNoShardEndCheckpoint is returned (and retried) when the child answered
// shardEnded without checkpointing SHARD_END.
var ErrNoShardEndCheckpoint = errors.New("application didn't checkpoint at end of shard")

// shardEndPending remembers a shard end whose final step failed, so the retry
// goes straight to the shard-end step with a new child instead of re-reading.
type shardEndPending struct {
	lastDelivered seqnum.ESN // zero when nothing was delivered in this consumer
	children      []record.ChildShard
}

// consumer drives one held lease through the state machine. The scheduler
// owns its goroutine.
type consumer struct {
	s       *Scheduler
	held    *lease.Held
	key     string
	shardID string
	log     *zap.Logger

	state    atomic.Int32
	stopping atomic.Bool
	runCtx   context.Context
	cancel   context.CancelFunc
	stopHard func() bool

	pending       *shardEndPending
	lastDelivered seqnum.ESN

	doneOnce sync.Once
	done     chan struct{}
	result   outcome
}

func newConsumer(s *Scheduler, h *lease.Held, hardCtx context.Context) *consumer {
	c := &consumer{
		s:       s,
		held:    h,
		key:     h.Lease.Key,
		shardID: h.Lease.ShardIDOf(),
		done:    make(chan struct{}),
	}
	c.log = s.log.With(zap.String("shardId", c.shardID), zap.String("leaseKey", c.key))
	// runCtx ends on lease loss, on a stop request and when the hard deadline passes.
	c.runCtx, c.cancel = context.WithCancel(h.Ctx)
	c.stopHard = context.AfterFunc(hardCtx, c.cancel)
	return c
}

// State returns the consumer's current state.
func (c *consumer) State() State { return State(c.state.Load()) }

func (c *consumer) setState(st State) {
	if State(c.state.Swap(int32(st))) != st {
		c.log.Debug("shard consumer state", zap.Stringer("state", st))
	}
}

// requestStop asks for a graceful stop: shutdownRequested, leaseLost, release.
func (c *consumer) requestStop() {
	c.stopping.Store(true)
	c.cancel()
}

// leaseGone ends the consumer as lease lost (the lease left the held set).
func (c *consumer) leaseGone() { c.cancel() }

// run executes the state machine and records the outcome.
func (c *consumer) run(hardCtx context.Context) {
	defer func() {
		c.setState(ShutdownComplete)
		c.stopHard()
		c.cancel()
		c.doneOnce.Do(func() { close(c.done) })
	}()
	c.result = c.runStates(hardCtx)
	c.s.deps.Metrics.ConsumerStopped(c.shardID)
	c.log.Info("shard consumer finished", zap.Stringer("outcome", c.result))
}

func (c *consumer) runStates(hardCtx context.Context) outcome {
	cfg := &c.s.cfg
	c.setState(WaitingOnParentShards)
	if len(c.held.Lease.ParentShardIDs) > 0 {
		for {
			ok, err := c.s.deps.Syncer.ParentsDone(c.runCtx, c.held.Lease)
			if err == nil && ok {
				break
			}
			if err != nil && c.runCtx.Err() == nil {
				c.log.Warn("checking parent shards failed", zap.Error(err))
			}
			if !sleepCtx(c.runCtx, cfg.ParentShardPollInterval) {
				return c.endWithoutChild(hardCtx)
			}
		}
	}

	failures := 0
	backoff := cfg.TaskBackoff
	for {
		progressed, res, err := c.session(hardCtx)
		if err == nil {
			return res
		}
		if c.runCtx.Err() != nil {
			// The failure raced with a lease loss or stop: end accordingly.
			return c.endWithoutChild(hardCtx)
		}
		if progressed {
			failures, backoff = 0, cfg.TaskBackoff
		}
		failures++
		c.s.deps.Metrics.TaskFailed(c.shardID)
		c.log.Error("shard consumer task failed", zap.Error(err), zap.Int("consecutiveFailures", failures),
			zap.Duration("backoff", backoff))
		if cfg.MaxChildFailures > 0 && failures >= cfg.MaxChildFailures {
			c.log.Error("releasing lease after repeated failures so another worker can try",
				zap.Int("failures", failures))
			c.s.deps.Metrics.LeaseReleased(c.shardID)
			if err := c.s.deps.Coordinator.Release(hardCtx, c.key); err != nil {
				c.log.Warn("releasing lease failed", zap.Error(err))
			}
			return outcomeReleased
		}
		if !sleepCtx(c.runCtx, backoff) {
			return c.endWithoutChild(hardCtx)
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
}

// endWithoutChild finishes a consumer that has no live child.
func (c *consumer) endWithoutChild(hardCtx context.Context) outcome {
	c.setState(ShuttingDown)
	if c.stopping.Load() && c.held.Ctx.Err() == nil {
		c.release(hardCtx)
		return outcomeStopped
	}
	return outcomeLeaseLost
}

func (c *consumer) release(hardCtx context.Context) {
	if err := c.s.deps.Coordinator.Release(hardCtx, c.key); err != nil {
		c.log.Warn("releasing lease failed", zap.Error(err))
	}
}

// session runs one child lifetime: initialize, process, and the shutdown
// that ends it. progressed reports whether at least one batch was processed.
func (c *consumer) session(hardCtx context.Context) (progressed bool, res outcome, err error) {
	c.setState(Initializing)
	l, err := c.s.deps.Store.GetLease(c.runCtx, c.key)
	if err != nil {
		return false, 0, fmt.Errorf("reading lease %s: %w", c.key, err)
	}
	if l == nil {
		c.log.Info("lease no longer exists")
		return false, outcomeLeaseLost, nil
	}
	if l.IsShardEnd() {
		return false, outcomeShardEnd, c.shardEndWithoutChild(*l)
	}
	// The checkpointer starts from the checkpoint just read (as Java
	// InitializeTask.call), not
	// from the lease as it was when taken: a retry after a child failure must
	// neither re-deliver nor let the child move the checkpoint back below what
	// an earlier child of this consumer already checkpointed.
	h := *c.held
	h.Lease = *l
	cp := c.s.deps.Coordinator.Checkpointer(&h)

	child, err := c.s.deps.Children(hardCtx, c.shardID)
	if err != nil {
		return false, 0, fmt.Errorf("starting child: %w", err)
	}
	defer c.closeChild(hardCtx, child)
	seq, sub := l.Checkpoint.Sequence, l.Checkpoint.SubSequence
	if err := child.Initialize(hardCtx, c.shardID, &seq, &sub); err != nil {
		return false, 0, fmt.Errorf("initialize: %w", err)
	}

	if p := c.pending; p != nil {
		c.setState(ShuttingDown)
		if c.runCtx.Err() != nil {
			return false, c.endSession(hardCtx, child, cp), nil
		}
		if p.lastDelivered.Sequence != "" {
			cp.SetLargestPermitted(p.lastDelivered)
		}
		if err := c.shardEnd(hardCtx, child, cp, *l, p.children); err != nil {
			if c.runCtx.Err() != nil {
				return false, c.endSession(hardCtx, child, cp), nil
			}
			return false, 0, err
		}
		return false, outcomeShardEnd, nil
	}

	src, err := c.s.deps.Sources(c.runCtx, *l, l.Checkpoint)
	if err != nil {
		return false, 0, fmt.Errorf("starting record source: %w", err)
	}
	defer func() {
		if cerr := src.Close(); cerr != nil {
			c.log.Debug("closing record source", zap.Error(cerr))
		}
	}()

	c.setState(Processing)
	for {
		if c.runCtx.Err() != nil {
			return progressed, c.endSession(hardCtx, child, cp), nil
		}
		b, err := src.Next(c.runCtx)
		if err != nil {
			if c.runCtx.Err() != nil {
				return progressed, c.endSession(hardCtx, child, cp), nil
			}
			return progressed, 0, fmt.Errorf("getting records: %w", err)
		}
		if c.runCtx.Err() != nil {
			// Lost or stopping while the batch arrived: no processRecords after
			// that (docs/protocol.md §5); the next owner reads it from the checkpoint.
			return progressed, c.endSession(hardCtx, child, cp), nil
		}
		recs := retrieval.DropUpTo(b.Records, cp.LastCheckpoint())
		if len(recs) > 0 {
			last := recs[len(recs)-1].ESN()
			cp.SetLargestPermitted(last)
			c.lastDelivered = last
		}
		if len(recs) > 0 || c.s.cfg.CallProcessRecordsEvenForEmptyRecordList {
			if err := child.ProcessRecords(hardCtx, recs, b.MillisBehindLatest, cp); err != nil {
				return progressed, 0, fmt.Errorf("processRecords: %w", err)
			}
			c.s.deps.Metrics.RecordsProcessed(c.shardID, len(recs), b.MillisBehindLatest)
			progressed = true
		}
		if b.ShardEnd {
			c.setState(ShuttingDown)
			c.pending = &shardEndPending{lastDelivered: c.lastDelivered, children: b.ChildShards}
			if err := c.shardEnd(hardCtx, child, cp, *l, b.ChildShards); err != nil {
				if c.runCtx.Err() != nil {
					// Lease loss takes precedence over a shard end in progress.
					return progressed, c.endSession(hardCtx, child, cp), nil
				}
				return progressed, 0, err
			}
			return progressed, outcomeShardEnd, nil
		}
	}
}

// endSession tells the live child why it stops: shutdownRequested then
// leaseLost on a graceful stop (and releases the lease), leaseLost otherwise.
func (c *consumer) endSession(hardCtx context.Context, child Child, cp Checkpointer) outcome {
	c.setState(ShuttingDown)
	if c.stopping.Load() && c.held.Ctx.Err() == nil {
		if err := child.ShutdownRequested(hardCtx, cp); err != nil {
			c.log.Warn("shutdownRequested failed", zap.Error(err))
		}
		if err := child.LeaseLost(hardCtx); err != nil {
			c.log.Warn("leaseLost failed", zap.Error(err))
		}
		c.closeChild(hardCtx, child)
		c.release(hardCtx)
		return outcomeStopped
	}
	if err := child.LeaseLost(hardCtx); err != nil {
		c.log.Warn("leaseLost failed", zap.Error(err))
	}
	return outcomeLeaseLost
}

// shardEnd is the SHARD_END shutdown step: child leases, shardEnded, verify
// the SHARD_END checkpoint, enqueue for cleanup. A failure leaves c.pending
// set so that the retry repeats only this step, with a new child.
func (c *consumer) shardEnd(hardCtx context.Context, child Child, cp Checkpointer, l lease.Lease, children []record.ChildShard) error {
	if err := c.s.deps.Syncer.CreateChildLeases(c.runCtx, l, children); err != nil {
		return fmt.Errorf("creating child leases: %w", err)
	}
	if err := c.runCtx.Err(); err != nil {
		// Lease loss (or a stop) takes precedence over the shard end (Java
		// ShutdownReason.canTransitionTo: LEASE_LOST outranks SHARD_END).
		return fmt.Errorf("before shardEnded: %w", err)
	}
	cp.SetShardEnd()
	if err := child.ShardEnded(hardCtx, cp); err != nil {
		return fmt.Errorf("shardEnded: %w", err)
	}
	got, err := c.s.deps.Store.GetLease(c.runCtx, c.key)
	if err != nil {
		return fmt.Errorf("verifying shard-end checkpoint: %w", err)
	}
	if got == nil || !got.IsShardEnd() {
		var at seqnum.ESN
		if got != nil {
			at = got.Checkpoint
		}
		return fmt.Errorf("%w (checkpoint is %s)", ErrNoShardEndCheckpoint, at)
	}
	c.pending = nil
	c.log.Info("shard ended; lease checkpointed at SHARD_END")
	c.s.deps.Cleaner.Enqueue(c.key)
	return nil
}

// shardEndWithoutChild completes a lease already at SHARD_END: make sure the
// child leases exist, then hand it to the cleaner. No child is started.
func (c *consumer) shardEndWithoutChild(l lease.Lease) error {
	c.setState(ShuttingDown)
	if err := c.s.deps.Syncer.CreateChildLeases(c.runCtx, l, nil); err != nil {
		return fmt.Errorf("creating child leases: %w", err)
	}
	c.s.deps.Cleaner.Enqueue(c.key)
	return nil
}

func (c *consumer) closeChild(hardCtx context.Context, child Child) {
	// Before the hard deadline the child gets its grace (stdin EOF, wait,
	// SIGTERM, SIGKILL); after it, a cancelled ctx makes Close kill at once.
	// Either way Close reaps the process.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(hardCtx), c.s.cfg.ChildCloseTimeout)
	defer cancel()
	if hardCtx.Err() != nil {
		cancel()
	}
	if err := child.Close(ctx); err != nil {
		c.log.Debug("child close", zap.Error(err))
	}
}

// sleepCtx sleeps d or until ctx is done; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	return ctxutil.Sleep(ctx, d) == nil
}
