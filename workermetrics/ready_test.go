package workermetrics

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multilangd/multilangd/lease"
)

// countingStore is a MigrationStore that only counts the readiness reads.
type countingStore struct {
	MigrationStore
	reads atomic.Int64
}

func (s *countingStore) LeaseOwnerIndexActive(context.Context) (bool, error) {
	s.reads.Add(1)
	return true, nil
}

func (s *countingStore) LoadFleetView(context.Context, string) (lease.FleetView, error) {
	s.reads.Add(1)
	return lease.FleetView{}, nil
}

func (s *countingStore) UpdateClientVersion(context.Context, string, string, string, time.Time) (bool, error) {
	s.reads.Add(1)
	return false, nil
}

// TestReadyMonitorOnlyInUpgrade: Java runs MigrationReadyMonitor only in
// UPGRADE_FROM_2X; in 3X_WITH_ROLLBACK and 3X the leader must not keep
// scanning the fleet every ReadyInterval (and run must return).
func TestReadyMonitorOnlyInUpgrade(t *testing.T) {
	for _, v := range []string{lease.ClientVersion3XRoll, lease.ClientVersion3X, lease.ClientVersion2X} {
		st := &countingStore{}
		m := NewMigration(st, nil, MigrationConfig{WorkerID: "w", ReadyInterval: time.Millisecond,
			IsLeader: func(context.Context) bool { return true }}, nil)
		m.enter(v)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		(&readyMonitor{m: m}).run(ctx)
		if ctx.Err() != nil {
			t.Errorf("%s: readyMonitor.run kept running", v)
		}
		cancel()
		if n := st.reads.Load(); n != 0 {
			t.Errorf("%s: readyMonitor made %d readiness calls, want 0", v, n)
		}
	}
}
