package assemble

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/cwmetrics"
	"github.com/multilangd/multilangd/daemon"
	"github.com/multilangd/multilangd/properties"
)

// healthProbes builds /healthz and /readyz (docs/operations.md "Metrics and
// health"):
//   - live: the scheduler loop turns, and while leases are held their
//     renewals are attempted (within 2 × failoverTimeMillis, at least 30 s);
//   - ready: the scheduler is running and serves its leases (daemon
//     Scheduler.Ready), and neither the lease table nor the stream has gone
//     unanswered for readinessUnreachableThresholdMillis.
func healthProbes(cfg *properties.Config, s *daemon.Scheduler, o *ops, held func() int) probes {
	renewWithin := max(2*cfg.FailoverTime, 30*time.Second)
	return probes{
		live: func() error {
			return errors.Join(s.Live(), o.renewersAlive(held(), renewWithin))
		},
		ready: func() error {
			return errors.Join(s.Ready(),
				o.table.check(cfg.ReadinessUnreachableThreshold),
				o.stream.check(cfg.ReadinessUnreachableThreshold))
		},
	}
}

// withLog sets the publisher's logger.
func withLog(c cwmetrics.Config, log *zap.Logger) cwmetrics.Config {
	c.Log = log
	return c
}

// publishCloudWatch runs the publisher and the periodic datums (Java's
// per-pass RenewAllLeases every renewer period; the watchdog's StuckShards
// every metricsBufferTimeMillis) until the returned stop is called; stop
// flushes what is queued and waits. Without a publisher (or with
// metricsLevel = NONE) nothing runs.
func publishCloudWatch(o *ops, cwm *cwMetrics, renewEvery time.Duration, held func() int) (stop func()) {
	pub := o.cw
	if !pub.Enabled() {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = pub.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		renew := time.NewTicker(renewEvery)
		defer renew.Stop()
		stuck := time.NewTicker(pub.BufferTime())
		defer stuck.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-renew.C:
				o.renewAllLeases(held())
			case <-stuck.C:
				cwm.stuckShards()
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}
