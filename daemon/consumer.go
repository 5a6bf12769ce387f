package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	outcomeHandedOff                // KCL 3.x graceful hand-off; lease transferred to its new owner
)

func (o outcome) String() string {
	return [...]string{"lease lost", "shard end", "stopped", "released after failures", "handed off"}[o]
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
	// handingOff is set when the lease's graceful hand-off starts
	// (lease.Held.Handoff, handoff.go); it outranks stopping.
	handingOff atomic.Bool
	// leaseCtx bounds retrieval and lease reads: it ends when the lease is
	// lost, a stop is requested or the hard-stop deadline passes. Child calls
	// are bounded by the scheduler's hardStopCtx instead, so a lost lease
	// does not interrupt an in-flight processRecords.
	leaseCtx context.Context
	cancel   context.CancelFunc
	stopHard func() bool

	pending       *shardEndPending
	lastDelivered seqnum.ESN
	prog          *progress // watchdog and readiness (watchdog.go)

	// restartReq is a pending reload restart (restart.go); stopReading
	// interrupts the session's wait for the next batch.
	restartReq  atomic.Pointer[restartRequest]
	stopReading atomic.Pointer[context.CancelFunc]

	doneOnce sync.Once
	done     chan struct{}
	result   outcome
}

func newConsumer(s *Scheduler, h *lease.Held, hardStopCtx context.Context) *consumer {
	c := &consumer{
		s:       s,
		held:    h,
		key:     h.Lease.Key,
		shardID: h.Lease.ShardIDOf(),
		done:    make(chan struct{}),
		prog:    newProgress(),
	}
	c.log = s.log.With(zap.String("shardId", c.shardID), zap.String("leaseKey", c.key))
	c.leaseCtx, c.cancel = context.WithCancel(h.Ctx)
	c.stopHard = context.AfterFunc(hardStopCtx, c.cancel)
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
func (c *consumer) run(hardStopCtx context.Context) {
	stopWatch := c.watchHandoff()
	defer func() {
		c.setState(ShutdownComplete)
		c.stopHard()
		c.cancel()
		stopWatch()
		c.doneOnce.Do(func() { close(c.done) })
	}()
	c.result = c.runStates(hardStopCtx)
	if r := c.restartReq.Swap(nil); r != nil {
		r.finish()
	}
	if c.prog.stuck.Swap(false) {
		c.s.deps.Metrics.ShardStuck(c.key, false)
	}
	c.s.deps.Metrics.ConsumerStopped(c.key)
	c.log.Info("shard consumer finished", zap.Stringer("outcome", c.result))
}

func (c *consumer) runStates(hardStopCtx context.Context) outcome {
	cfg := &c.s.cfg
	c.setState(WaitingOnParentShards)
	if len(c.held.Lease.ParentShardIDs) > 0 {
		for {
			ok, err := c.s.deps.Syncer.ParentsDone(c.leaseCtx, c.held.Lease)
			if err == nil && ok {
				break
			}
			if err != nil && c.leaseCtx.Err() == nil {
				c.log.Warn("checking parent shards failed", zap.Error(err))
			}
			if !sleepCtx(c.leaseCtx, cfg.ParentShardPollInterval) {
				return c.endWithoutChild(hardStopCtx)
			}
		}
	}

	failures := 0
	backoff := cfg.TaskBackoff
	for {
		progressed, res, err := c.session(hardStopCtx)
		if err == nil {
			return res
		}
		if c.leaseCtx.Err() != nil {
			// The failure raced with a lease loss or stop: end accordingly.
			return c.endWithoutChild(hardStopCtx)
		}
		if errors.Is(err, errRestart) {
			continue // reload: a new child at once, the lease kept
		}
		if progressed {
			failures, backoff = 0, cfg.TaskBackoff
		}
		failures++
		c.prog.failing.Store(true)
		c.s.deps.Metrics.TaskFailed(c.key)
		c.log.Error("shard consumer task failed", zap.Error(err), zap.Int("consecutiveFailures", failures),
			zap.Duration("backoff", backoff))
		if cfg.MaxChildFailures > 0 && failures >= cfg.MaxChildFailures {
			c.log.Error("releasing lease after repeated failures so another worker can try",
				zap.Int("failures", failures))
			c.s.deps.Metrics.LeaseReleased(c.key)
			if err := c.s.deps.Coordinator.Release(hardStopCtx, c.key); err != nil {
				c.log.Warn("releasing lease failed", zap.Error(err))
			}
			return outcomeReleased
		}
		if !sleepCtx(c.leaseCtx, backoff) {
			return c.endWithoutChild(hardStopCtx)
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
}

// endWithoutChild finishes a consumer that has no live child.
func (c *consumer) endWithoutChild(hardStopCtx context.Context) outcome {
	c.setState(ShuttingDown)
	if c.handingOff.Load() && c.held.Ctx.Err() == nil {
		c.completeHandoff(hardStopCtx)
		return outcomeHandedOff
	}
	if c.stopping.Load() && c.held.Ctx.Err() == nil {
		c.release(hardStopCtx)
		return outcomeStopped
	}
	return outcomeLeaseLost
}

func (c *consumer) release(hardStopCtx context.Context) {
	if err := c.s.deps.Coordinator.Release(hardStopCtx, c.key); err != nil {
		c.log.Warn("releasing lease failed", zap.Error(err))
	}
}

// session runs one child lifetime: initialize, then either the pending
// shard-end step (retryShardEnd) or the process loop, and the shutdown that
// ends it. progressed reports whether at least one batch was processed.
func (c *consumer) session(hardStopCtx context.Context) (progressed bool, res outcome, err error) {
	c.setState(Initializing)
	l, err := c.s.deps.Store.GetLease(c.leaseCtx, c.key)
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
	// InitializeTask.call), not from the lease as it was when taken: a retry
	// after a child failure must neither re-deliver nor let the child move
	// the checkpoint back below what an earlier child of this consumer
	// already checkpointed.
	h := *c.held
	h.Lease = *l
	cp := c.s.deps.Coordinator.Checkpointer(&h)
	if c.handoffStarted() {
		return false, c.endWithoutChild(hardStopCtx), nil // no child for a lease being handed off
	}

	gen := c.s.childGen.Load() // the factory's settings this child gets
	child, err := c.s.deps.Children(hardStopCtx, c.shardID, c.key)
	if err != nil {
		return false, 0, fmt.Errorf("starting child: %w", err)
	}
	defer c.closeChild(hardStopCtx, child)
	// childCtx bounds initialize and processRecords: the stuck-shard
	// watchdog may cut them short to restart the child (watchdog.go).
	childCtx, restart := context.WithCancelCause(hardStopCtx)
	c.prog.pid.Store(int64(child.PID()))
	c.prog.restart.Store(&restart)
	c.prog.advanced()
	defer func() {
		c.prog.restart.Store(nil)
		restart(nil)
		c.prog.pid.Store(0)
	}()
	seq, sub := l.Checkpoint.Sequence, l.Checkpoint.SubSequence
	idle, initStart := c.prog.busy(), time.Now()
	err = child.Initialize(childCtx, c.shardID, &seq, &sub)
	idle()
	if err != nil {
		return false, 0, fmt.Errorf("initialize: %w", childErr(childCtx, err))
	}
	c.s.deps.Metrics.ChildInitialized(c.key, time.Since(initStart))
	c.childReady(gen)
	if c.pending != nil {
		res, err := c.retryShardEnd(hardStopCtx, child, cp, *l)
		return false, res, err
	}
	return c.process(hardStopCtx, childCtx, gen, child, cp, *l)
}

// retryShardEnd repeats a failed shard-end step with the new child, without
// re-reading the shard.
func (c *consumer) retryShardEnd(hardStopCtx context.Context, child Child, cp Checkpointer, l lease.Lease) (outcome, error) {
	p := c.pending
	c.setState(ShuttingDown)
	if c.leaseCtx.Err() != nil {
		return c.endSession(hardStopCtx, child, cp), nil
	}
	if p.lastDelivered.Sequence != "" {
		cp.SetLargestPermitted(p.lastDelivered)
	}
	if err := c.shardEnd(hardStopCtx, child, cp, l, p.children); err != nil {
		if c.leaseCtx.Err() != nil {
			return c.endSession(hardStopCtx, child, cp), nil
		}
		return 0, err
	}
	return outcomeShardEnd, nil
}

// process reads the shard from the checkpoint and hands every batch to the
// child until the lease is lost, a stop is requested, reading or the child
// fails, or the shard ends (then the shard-end step runs).
func (c *consumer) process(hardStopCtx, childCtx context.Context, gen int64, child Child, cp Checkpointer, l lease.Lease) (progressed bool, res outcome, err error) {
	src, err := c.s.deps.Sources(c.leaseCtx, l, l.Checkpoint)
	if err != nil {
		return false, 0, fmt.Errorf("starting record source: %w", err)
	}
	defer func() {
		if cerr := src.Close(); cerr != nil {
			c.log.Debug("closing record source", zap.Error(cerr))
		}
	}()

	// readCtx is leaseCtx that a reload restart may also end (restart.go).
	readCtx, stopReading := context.WithCancel(c.leaseCtx)
	c.stopReading.Store(&stopReading)
	defer func() {
		c.stopReading.Store(nil)
		stopReading()
	}()
	c.setState(Processing)
	for {
		if c.leaseCtx.Err() != nil {
			return progressed, c.endSession(hardStopCtx, child, cp), nil
		}
		if c.restartWanted(gen) {
			return progressed, 0, c.endForRestart(hardStopCtx, childCtx, child, cp)
		}
		b, err := src.Next(readCtx)
		if err != nil {
			if c.leaseCtx.Err() != nil {
				return progressed, c.endSession(hardStopCtx, child, cp), nil
			}
			if readCtx.Err() != nil {
				// A restart request: handled at the top of the loop (or
				// already satisfied by this child: read on).
				c.childReady(gen)
				readCtx, stopReading = context.WithCancel(c.leaseCtx)
				c.stopReading.Store(&stopReading)
				continue
			}
			return progressed, 0, fmt.Errorf("getting records: %w", err)
		}
		if c.leaseCtx.Err() != nil {
			// Lost or stopping while the batch arrived: no processRecords after
			// that (docs/protocol.md §5); the next owner reads it from the checkpoint.
			return progressed, c.endSession(hardStopCtx, child, cp), nil
		}
		delivered, err := c.deliver(childCtx, child, cp, b)
		if err != nil {
			return progressed, 0, err
		}
		progressed = progressed || delivered
		if b.ShardEnd {
			res, err := c.endAtShardEnd(hardStopCtx, child, cp, l, b.ChildShards)
			return progressed, res, err
		}
	}
}

// endAtShardEnd runs the shard-end step after the final batch; a failure
// leaves it pending for retryShardEnd.
func (c *consumer) endAtShardEnd(hardStopCtx context.Context, child Child, cp Checkpointer, l lease.Lease, children []record.ChildShard) (outcome, error) {
	c.setState(ShuttingDown)
	c.pending = &shardEndPending{lastDelivered: c.lastDelivered, children: children}
	if err := c.shardEnd(hardStopCtx, child, cp, l, children); err != nil {
		if c.leaseCtx.Err() != nil {
			// Lease loss takes precedence over a shard end in progress.
			return c.endSession(hardStopCtx, child, cp), nil
		}
		return 0, err
	}
	return outcomeShardEnd, nil
}

// deliver drops the records at or below the last checkpoint, raises the
// largest permitted checkpoint to the last one left and sends them with
// processRecords (an empty batch only with
// callProcessRecordsEvenForEmptyRecordList). It reports whether
// processRecords was called. Every batch is reported to Metrics (Java
// ProcessTask) and counts as progress for the watchdog.
func (c *consumer) deliver(childCtx context.Context, child Child, cp Checkpointer, b record.Batch) (bool, error) {
	start := time.Now()
	if b.MillisBehindLatest != nil {
		c.prog.behind.Store(*b.MillisBehindLatest)
	}
	recs := retrieval.DropUpTo(b.Records, cp.LastCheckpoint())
	if len(recs) > 0 {
		last := recs[len(recs)-1].ESN()
		// A copy: a relayed record's sequence number is a substring of its
		// GetRecords response, which this would keep alive past the
		// retrieval.Budget's release (docs/performance.md#memory).
		last.Sequence = strings.Clone(last.Sequence)
		cp.SetLargestPermitted(last)
		c.lastDelivered = last
	}
	st := BatchStats{MillisBehindLatest: b.MillisBehindLatest}
	if len(recs) > 0 || c.s.cfg.CallProcessRecordsEvenForEmptyRecordList {
		var err error
		if st, err = c.processRecords(childCtx, child, cp, recs, b.MillisBehindLatest); err != nil {
			return false, fmt.Errorf("processRecords: %w", err)
		}
	}
	// A batch handed on, empty ones included: the session works again (a
	// failed child may have checkpointed all it had, leaving nothing to
	// re-deliver on an idle stream).
	c.prog.failing.Store(false)
	st.Task = time.Since(start)
	c.s.deps.Metrics.RecordsProcessed(c.key, st)
	c.prog.advanced()
	return st.Delivered, nil
}

// processRecords sends one batch to the child, marked outstanding for the
// watchdog; a checkpoint the child writes counts as progress.
func (c *consumer) processRecords(childCtx context.Context, child Child, cp Checkpointer, recs []record.Record, behind *int64) (BatchStats, error) {
	st := BatchStats{Delivered: true, Records: len(recs), MillisBehindLatest: behind}
	for i := range recs {
		n := recs[i].DataLen() // Data64 when the relay decoder kept the base64 text
		st.Bytes += n
		if i == 0 || n < st.MinRecordBytes {
			st.MinRecordBytes = n
		}
		st.MaxRecordBytes = max(st.MaxRecordBytes, n)
	}
	idle := func() {}
	if len(recs) > 0 {
		idle = c.prog.busy()
	}
	start := time.Now()
	err := child.ProcessRecords(childCtx, recs, behind, progressCheckpointer{cp, c.prog})
	idle()
	st.ProcessRecords = time.Since(start)
	return st, childErr(childCtx, err)
}

// childErr names the watchdog restart as the cause of a child call that
// ended because of it.
func childErr(childCtx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(childCtx), ErrStuckRestart) {
		return fmt.Errorf("%w: %w", ErrStuckRestart, err)
	}
	return err
}

// endSession tells the live child why it stops: shutdownRequested then
// leaseLost on a graceful stop (and releases the lease), leaseLost otherwise.
func (c *consumer) endSession(hardStopCtx context.Context, child Child, cp Checkpointer) outcome {
	c.setState(ShuttingDown)
	if c.handingOff.Load() && c.held.Ctx.Err() == nil {
		return c.endForHandoff(hardStopCtx, child, cp)
	}
	if c.stopping.Load() && c.held.Ctx.Err() == nil {
		if err := child.ShutdownRequested(hardStopCtx, cp); err != nil {
			c.log.Warn("shutdownRequested failed", zap.Error(err))
		}
		if err := child.LeaseLost(hardStopCtx); err != nil {
			c.log.Warn("leaseLost failed", zap.Error(err))
		}
		c.closeChild(hardStopCtx, child)
		c.release(hardStopCtx)
		return outcomeStopped
	}
	if err := child.LeaseLost(hardStopCtx); err != nil {
		c.log.Warn("leaseLost failed", zap.Error(err))
	}
	return outcomeLeaseLost
}

// shardEnd is the SHARD_END shutdown step: child leases, shardEnded, verify
// the SHARD_END checkpoint, enqueue for cleanup. A failure leaves c.pending
// set so that the retry repeats only this step, with a new child.
func (c *consumer) shardEnd(hardStopCtx context.Context, child Child, cp Checkpointer, l lease.Lease, children []record.ChildShard) error {
	if err := c.s.deps.Syncer.CreateChildLeases(c.leaseCtx, l, children); err != nil {
		return fmt.Errorf("creating child leases: %w", err)
	}
	if err := c.leaseCtx.Err(); err != nil {
		// Lease loss (or a stop) takes precedence over the shard end (Java
		// ShutdownReason.canTransitionTo: LEASE_LOST outranks SHARD_END).
		return fmt.Errorf("before shardEnded: %w", err)
	}
	cp.SetShardEnd()
	if err := child.ShardEnded(hardStopCtx, cp); err != nil {
		return fmt.Errorf("shardEnded: %w", err)
	}
	got, err := c.s.deps.Store.GetLease(c.leaseCtx, c.key)
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
	if err := c.s.deps.Syncer.CreateChildLeases(c.leaseCtx, l, nil); err != nil {
		return fmt.Errorf("creating child leases: %w", err)
	}
	c.s.deps.Cleaner.Enqueue(c.key)
	return nil
}

func (c *consumer) closeChild(hardStopCtx context.Context, child Child) {
	// Before the hard deadline the child gets its grace (stdin EOF, wait,
	// SIGTERM, SIGKILL); after it, a cancelled ctx makes Close kill at once.
	// Either way Close reaps the process.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(hardStopCtx), c.s.cfg.ChildCloseTimeout)
	defer cancel()
	if hardStopCtx.Err() != nil {
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
