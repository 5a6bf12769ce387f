package daemon

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ErrStuckRestart is the cause of a child call cut short by the stuck-shard
// watchdog (Config.StuckShardRestartChild): the session fails and the shard
// restarts from its checkpoint with a new child.
var ErrStuckRestart = errors.New("stuck-shard watchdog restarted the child")

// progress is what the watchdog and the readiness check know about one
// consumer. Every field is written by the consumer's goroutine and read by
// the scheduler loop and health handlers.
type progress struct {
	// at is when the shard last made progress (unix nanos): a batch taken
	// from the record source and handed on, a checkpoint written, or the
	// start of a child session.
	at atomic.Int64
	// busySince is when the outstanding child call (initialize or a
	// processRecords with records) was sent; 0 when none is outstanding.
	busySince atomic.Int64
	// behind is the last batch's MillisBehindLatest; -1 when unknown.
	behind atomic.Int64
	// pid is the live child's process id; 0 when there is none.
	pid atomic.Int64
	// failing is set when a session failed and cleared by the next batch
	// handed on (processed, or empty after the checkpoint).
	failing atomic.Bool
	// stuck is set while the watchdog reports the shard.
	stuck atomic.Bool
	// restart cuts the live child's calls short (nil without a child).
	restart atomic.Pointer[context.CancelCauseFunc]
}

func newProgress() *progress {
	p := &progress{}
	p.behind.Store(-1)
	p.advanced()
	return p
}

func (p *progress) advanced() { p.at.Store(time.Now().UnixNano()) }

// busy marks a child call outstanding; the returned func marks it done.
func (p *progress) busy() func() {
	p.busySince.Store(time.Now().UnixNano())
	return func() { p.busySince.Store(0) }
}

// stalled reports why the shard counts as stuck at now, or "" when it does
// not: a child call outstanding for longer than after, or data waiting in
// the stream (MillisBehindLatest > 0) without progress for longer than after.
func (p *progress) stalled(now time.Time, after time.Duration) string {
	if b := p.busySince.Load(); b != 0 && now.Sub(time.Unix(0, b)) > after {
		return "child has not answered"
	}
	if p.behind.Load() > 0 && now.Sub(time.Unix(0, p.at.Load())) > after {
		return "no batch delivered and no checkpoint while the shard is behind"
	}
	return ""
}

// progressCheckpointer marks progress when the child checkpoints.
type progressCheckpointer struct {
	ChildCheckpointer
	p *progress
}

func (c progressCheckpointer) Checkpoint(ctx context.Context, seq *string, sub *int64) error {
	err := c.ChildCheckpointer.Checkpoint(ctx, seq, sub)
	if err == nil {
		c.p.advanced()
	}
	return err
}

// watchStuck is the stuck-shard watchdog, run from the scheduler loop: a
// consumer past WAITING_ON_PARENT_SHARDS that stalled for StuckShardAfter
// is reported once (WARN, ShardStuck) per episode and, with
// StuckShardRestartChild, its child is restarted. Java has no equivalent
// (docs/compatibility.md).
func (s *Scheduler) watchStuck(now time.Time) {
	after := s.cfg.StuckShardAfter
	if after <= 0 {
		return
	}
	for _, c := range s.consumerList() {
		why := ""
		if st := c.State(); st != WaitingOnParentShards && st != ShutdownComplete {
			why = c.prog.stalled(now, after)
		}
		was := c.prog.stuck.Load()
		switch {
		case why != "" && !was:
			c.prog.stuck.Store(true)
			s.deps.Metrics.ShardStuck(c.key, true)
			c.log.Warn("shard is stuck: no progress while it has data",
				zap.String("reason", why), zap.Stringer("state", c.State()),
				zap.Int64("childPid", c.prog.pid.Load()), zap.Int64("millisBehindLatest", c.prog.behind.Load()),
				zap.Duration("sinceProgress", now.Sub(time.Unix(0, c.prog.at.Load()))),
				zap.Duration("threshold", after), zap.Bool("restartingChild", s.cfg.StuckShardRestartChild))
			if s.cfg.StuckShardRestartChild {
				if r := c.prog.restart.Load(); r != nil {
					(*r)(ErrStuckRestart)
				}
			}
		case why == "" && was:
			c.prog.stuck.Store(false)
			s.deps.Metrics.ShardStuck(c.key, false)
			c.log.Info("shard is making progress again")
		}
	}
}
