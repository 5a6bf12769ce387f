package lam

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/assign"
)

// write performs the plan's moves in parallel (Java
// LeaseAssignmentManager.parallelyAssignLeases): a lease blocked on a
// pending checkpoint is skipped; a live eligible lease gets W9 when
// graceful hand-off is enabled, any other W8. Expiry is as of scanTime (Java
// marks the expired leases when it filters them after the load). A
// condition failure counts as a failed assignment; any other error fails
// the run.
func (m *Manager) write(ctx context.Context, moves []assign.Assignment, byKey map[string]lease.Lease, scanTime time.Time, stats *RunStats) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	written := map[string]observed{}
	sem := make(chan struct{}, m.cfg.WriteParallelism)
	now := m.cfg.Clock.Now()
	for _, mv := range moves {
		if ctx.Err() != nil {
			break // stopped, or the leadership term ended
		}
		l, ok := byKey[mv.LeaseKey]
		if !ok || mv.To == "" {
			continue
		}
		dl := m.decisionLease(l, scanTime, now)
		if dl.BlockedOnPendingCheckpoint() {
			stats.Blocked++
			continue
		}
		handoff := m.cfg.GracefulHandoff && dl.EligibleForGracefulHandoff()
		wg.Add(1)
		sem <- struct{}{}
		go func() { // owned here: write waits for every write
			defer wg.Done()
			defer func() { <-sem }()
			o, landed, err := m.writeOne(ctx, l, mv.To, handoff)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case !landed:
				stats.FailedAssignmentCount++
			case handoff:
				stats.HandoffsStarted++
				written[l.Key] = o
			default:
				stats.Assigned++
				written[l.Key] = o
			}
		}()
	}
	wg.Wait()
	maps.Copy(m.seen, written)
	if len(errs) > 0 {
		return fmt.Errorf("%w: %d of %d: %w", errWrite, len(errs), len(moves), errors.Join(errs...))
	}
	return nil
}

// writeOne writes one move and returns its effect on the observation of
// the lease, as Java records it on the lease object (W8: a counter
// increment now; W9: a fresh hand-off deadline). It reports whether the
// write landed. m.seen is only read here.
func (m *Manager) writeOne(ctx context.Context, l lease.Lease, to string, handoff bool) (observed, bool, error) {
	var (
		nl  lease.Lease
		err error
	)
	if handoff {
		nl, err = m.store.InitiateHandoff(ctx, l, to)
	} else {
		nl, err = m.store.AssignLease(ctx, l, to)
	}
	if errors.Is(err, lease.ErrConditionFailed) {
		m.log.Debug("lease assignment condition failed", zap.String("leaseKey", l.Key), zap.String("to", to), zap.Bool("handoff", handoff))
		return observed{}, false, nil
	}
	if err != nil {
		return observed{}, false, fmt.Errorf("assign %s to %s: %w", l.Key, to, err)
	}
	o := observed{counter: nl.Counter, owner: nl.Owner, cpOwner: nl.CheckpointOwner}
	now := m.cfg.Clock.Now()
	if handoff {
		o.lastIncrement, o.handoffDeadline = m.seen[l.Key].lastIncrement, m.handoffDeadline()
		m.log.Info("lease hand-off started", zap.String("leaseKey", l.Key), zap.String("from", l.Owner), zap.String("to", to))
	} else {
		o.lastIncrement = now
		m.log.Info("lease assigned", zap.String("leaseKey", l.Key), zap.String("from", l.ActualOwner()), zap.String("to", to))
	}
	return o, true, nil
}

// deleteStaleMetrics is the leader's cleanup of WorkerMetricStats entries
// not updated for StaleMetricsCleanup (Java
// MigrationAwareLAMDataManager.deleteStaleWorkerMetricsAsync), each in the
// table it was read from, conditioned on the lut seen. Failures are logged
// only, as in Java. It returns how many entries were deleted.
func (m *Manager) deleteStaleMetrics(ctx context.Context, workers []lease.WorkerMetricsEntry) int {
	now := m.cfg.WallClock()
	deleted := 0
	for _, w := range workers {
		if !w.HasLastUpdate || now.Sub(time.Unix(w.LastUpdate, 0)) <= m.cfg.StaleMetricsCleanup || ctx.Err() != nil {
			continue
		}
		ok, err := m.store.DeleteWorkerMetrics(ctx, m.cfg.LegacyMetricsTable, w)
		switch {
		case err != nil:
			m.log.Warn("deleting stale worker metrics failed", zap.String("workerId", w.WorkerID), zap.Bool("legacyTable", w.Legacy), zap.Error(err))
		case ok:
			deleted++
			m.log.Info("deleted stale worker metrics", zap.String("workerId", w.WorkerID), zap.Bool("legacyTable", w.Legacy),
				zap.Time("lastUpdate", time.Unix(w.LastUpdate, 0)))
		}
	}
	return deleted
}
