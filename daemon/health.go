package daemon

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrNotReady wraps every reason Ready gives.
var ErrNotReady = errors.New("daemon: not ready")

// loopStallAfter is how long the scheduler loop may go without a turn before
// Live reports it hung: generous, a turn normally takes DispatchInterval.
func (c *Config) loopStallAfter() time.Duration { return max(30*time.Second, 10*c.DispatchInterval) }

// Live is the liveness check (/healthz, the systemd watchdog): nil while
// the process should be left running. It fails only when the scheduler loop
// has not turned for loopStallAfter while running (a hang); starting and a
// graceful stop in progress are alive.
func (s *Scheduler) Live() error {
	s.mu.Lock()
	ph := s.phase
	s.mu.Unlock()
	if ph == phaseStopped {
		return fmt.Errorf("%w: stopped", ErrNotRunning)
	}
	if ph != phaseRunning {
		return nil
	}
	if since := time.Since(time.Unix(0, s.loopBeat.Load())); since > s.cfg.loopStallAfter() {
		return fmt.Errorf("scheduler loop has not run for %s", since.Round(time.Second))
	}
	return nil
}

// Ready is the readiness check (/readyz): nil once the scheduler runs and
// while it serves its leases. It fails while starting or stopping, while
// every shard this worker holds is failing (a consumer whose last session
// failed without a batch handed on since, or a lease in cool-down after
// repeated failures), and, with StuckShardFailsReadiness, while a shard is
// stuck. A worker holding no leases is ready: other workers hold them.
func (s *Scheduler) Ready() error {
	if err := s.Healthy(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var failing, stuck []string
	total := 0
	for k, c := range s.consumers {
		total++
		if c.prog.failing.Load() {
			failing = append(failing, k)
		}
		if c.prog.stuck.Load() {
			stuck = append(stuck, k)
		}
	}
	for k, until := range s.cooldown {
		if _, running := s.consumers[k]; !running && now.Before(until) {
			total++
			failing = append(failing, k)
		}
	}
	if total > 0 && len(failing) == total {
		return fmt.Errorf("%w: every held shard is failing (%s)", ErrNotReady, strings.Join(slices.Sorted(slices.Values(failing)), ", "))
	}
	if s.cfg.StuckShardFailsReadiness && len(stuck) > 0 {
		return fmt.Errorf("%w: stuck shards (%s)", ErrNotReady, strings.Join(slices.Sorted(slices.Values(stuck)), ", "))
	}
	return nil
}
