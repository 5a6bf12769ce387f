package workermetrics

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/lease"
)

// readyMonitor is Java MigrationReadyMonitor: on the KCL 2.x shard-sync
// leader, in UPGRADE_FROM_2X, it flips Migration3.0 to 3X_WITH_ROLLBACK once
// the lease-owner GSI is ACTIVE and every lease owner has had fresh worker
// metrics for the whole stabilisation time (Java MonitorTriggerStabilizer).
type readyMonitor struct {
	m *Migration
	// trigger state (MonitorTriggerStabilizer)
	status    bool
	toggledAt time.Time
}

// run checks every ReadyInterval (first after one interval) until the flip
// is written, the client version is no longer UPGRADE_FROM_2X (Java runs the
// monitor only in MigrationClientVersionUpgradeFrom2xState) or ctx is done.
func (r *readyMonitor) run(ctx context.Context) {
	t := time.NewTimer(r.m.cfg.ReadyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.m.Version() != lease.ClientVersionUpgr {
			return
		}
		if r.once(ctx, time.Now()) {
			return
		}
		t.Reset(r.m.cfg.ReadyInterval)
	}
}

// once is one run (Java MigrationReadyMonitor.run); it reports whether the
// flip was written.
func (r *readyMonitor) once(ctx context.Context, now time.Time) bool {
	if r.m.cfg.IsLeader == nil || !r.m.cfg.IsLeader(ctx) {
		r.status = false
		return false
	}
	ready, err := r.ready(ctx, now)
	if err != nil {
		if ctx.Err() == nil {
			r.m.log.Warn("migration ready check failed; retrying next run", zap.Error(err))
		}
		return false
	}
	if ready != r.status {
		r.m.log.Info("fleet readiness for KCL 3.x changed", zap.Bool("ready", ready))
		r.status, r.toggledAt = ready, now
	}
	if !r.status || now.Sub(r.toggledAt) < r.m.cfg.FlipStabilization {
		return false
	}
	ok, err := r.m.store.UpdateClientVersion(ctx, lease.ClientVersionUpgr, lease.ClientVersion3XRoll, r.m.cfg.WorkerID, now)
	if err != nil {
		r.m.log.Warn("flipping the client version to "+lease.ClientVersion3XRoll+" failed; retrying next run", zap.Error(err))
		return false
	}
	if ok {
		r.m.log.Info("every worker is KCL 3.x compliant; client version flipped", zap.String("to", lease.ClientVersion3XRoll))
	}
	return ok
}

// ready is Java MigrationReadyMonitor.isReadyForUpgradeTo3x: the GSI is
// ACTIVE and every lease owner (an unowned lease counts as an owner without
// metrics, as in Java) has a WorkerMetricStats item updated within the
// expiry (2 × workerMetricsReporterFreqInMillis).
func (r *readyMonitor) ready(ctx context.Context, now time.Time) (bool, error) {
	active, err := r.m.store.LeaseOwnerIndexActive(ctx)
	if err != nil || !active {
		return false, err
	}
	fv, err := r.m.store.LoadFleetView(ctx, r.m.cfg.LegacyTable)
	if err != nil {
		return false, err
	}
	expiry := int64(r.m.cfg.metricsExpiry().Seconds())
	for _, l := range fv.Leases {
		lut, ok := fv.MetricsUpdate[l.Owner]
		if l.Owner == "" || !ok || lut+expiry <= now.Unix() {
			return false, nil
		}
	}
	return true, nil
}
