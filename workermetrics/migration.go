package workermetrics

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
)

// MigrationStore is what Migration reads and writes of the KCL 3.x
// coordinator state; lease.DynamoStore implements it.
type MigrationStore interface {
	CoordinatorState(ctx context.Context) (lease.CoordinatorState, error)
	CreateMigrationState(ctx context.Context, cv, workerID string, now time.Time) (bool, error)
	TableMigrationComplete(ctx context.Context) (bool, error)
	LeaseOwnerIndexActive(ctx context.Context) (bool, error)
	LoadFleetView(ctx context.Context, legacyMetricsTable string) (lease.FleetView, error)
	UpdateClientVersion(ctx context.Context, from, to, workerID string, now time.Time) (bool, error)
}

// MigrationConfig configures Migration.
type MigrationConfig struct {
	WorkerID string
	// Configured is clientVersionConfig; ConfiguredExplicitly is set when
	// the properties file gives it (not the default).
	Configured           string
	ConfiguredExplicitly bool
	// LeaseTable and LegacyTable are where the worker-metrics item goes
	// (leaseKey in the lease table; wid in <app>-WorkerMetricStats).
	LeaseTable, LegacyTable string
	// MonitorInterval is how often Migration3.0 is re-read (Java
	// ClientVersionChangeMonitor: 1 min, first after 1 min plus up to 50 %
	// jitter).
	MonitorInterval time.Duration
	// Recheck, when a value arrives, re-reads Migration3.0 at once (the
	// lease taker saw the table in a KCL 3.x client version this worker
	// has not entered yet); nil: only on MonitorInterval.
	Recheck <-chan struct{}
	// InitRetry is the pause between failed initial reads (1 s).
	InitRetry time.Duration
	// Reporter is the template of the worker-metrics reporter (WorkerID and
	// Target are filled in).
	Reporter Config
	// OnVersion, if set, is called with each client version entered.
	OnVersion func(string)
	// IsLeader is the KCL 2.x shard-sync leader decision
	// (lease.Coordinator.IsLeader); nil: never leader.
	IsLeader func(context.Context) bool
	// ReadyInterval is how often the leader checks whether the fleet is
	// ready for 3.x (Java MigrationReadyMonitor: 1 min), and
	// FlipStabilization how long it must stay ready before the flip (Java
	// Scheduler: 10 min).
	ReadyInterval, FlipStabilization time.Duration
}

// metricsExpiry is how old a worker's metrics may be and still count (Java
// DynamicMigrationComponentsInitializer.workerMetricsExpirySeconds: 2 ×
// workerMetricsReporterFreqInMillis).
func (c MigrationConfig) metricsExpiry() time.Duration {
	f := c.Reporter.ReporterFrequency
	if f <= 0 {
		f = 30 * time.Second
	}
	return 2 * f
}

// Migration follows the table's KCL 3.x client version (Java
// MigrationStateMachineImpl) and publishes worker metrics while that
// version asks for them (lease.PublishesWorkerMetrics); in UPGRADE_FROM_2X
// the KCL 2.x leader also runs the flip to 3X_WITH_ROLLBACK (readyMonitor).
type Migration struct {
	store   MigrationStore
	api     Writer
	cfg     MigrationConfig
	log     *zap.Logger
	version atomic.Value // string
	// latest is the last values the reporter wrote; nil while it does not run.
	latest atomic.Pointer[map[string]float64]
	// newMeter builds the CPU meter of each reporter (nil: throughput-only).
	newMeter func() *cpuMeter
}

// NewMigration returns a Migration; nothing runs until Run.
func NewMigration(store MigrationStore, api Writer, cfg MigrationConfig, log *zap.Logger) *Migration {
	if cfg.MonitorInterval <= 0 {
		cfg.MonitorInterval = time.Minute
	}
	if cfg.InitRetry <= 0 {
		cfg.InitRetry = time.Second
	}
	if cfg.ReadyInterval <= 0 {
		cfg.ReadyInterval = time.Minute
	}
	if cfg.FlipStabilization <= 0 {
		cfg.FlipStabilization = 10 * time.Minute
	}
	if log == nil {
		log = zap.NewNop()
	}
	m := &Migration{store: store, api: api, cfg: cfg, log: log}
	m.version.Store("")
	m.newMeter = func() *cpuMeter { return detectMeter(cfg.Reporter.DisableCPU, m.log) }
	return m
}

// Version is the client version in force ("" before initialisation).
func (m *Migration) Version() string { return m.version.Load().(string) }

// LastReported is the latest value of each metric in the last
// WorkerMetricStats item this worker wrote (short name → value; −1: no
// capture in that period; empty: throughput-only); nil while the worker
// publishes none (before the first report, or in a client version without
// worker metrics).
func (m *Migration) LastReported() map[string]float64 {
	if p := m.latest.Load(); p != nil {
		return *p
	}
	return nil
}

// Run determines the starting client version, then follows changes of the
// Migration3.0 item and runs the worker-metrics reporter while the version
// asks for it, until ctx is done.
func (m *Migration) Run(ctx context.Context) {
	v, ok := m.initialize(ctx)
	if !ok {
		return
	}
	var (
		wg         sync.WaitGroup
		stopReport context.CancelFunc
	)
	defer func() {
		if stopReport != nil {
			stopReport()
		}
		wg.Wait()
	}()
	apply := func(v string) {
		m.enter(v)
		want := lease.PublishesWorkerMetrics(v)
		switch {
		case want && stopReport == nil:
			rctx, cancel := context.WithCancel(ctx)
			stopReport = cancel
			wg.Add(2)
			go func() { defer wg.Done(); m.runReporter(rctx) }()
			go func() { defer wg.Done(); (&readyMonitor{m: m}).run(rctx) }()
		case !want && stopReport != nil:
			stopReport()
			stopReport = nil
			wg.Wait()
			m.latest.Store(nil)
		}
	}
	apply(v)
	if !monitored(v) && !m.followsInit(v) {
		<-ctx.Done()
		return
	}
	first := m.cfg.MonitorInterval + rand.N(m.cfg.MonitorInterval/2+1)
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.cfg.Recheck:
			if !t.Stop() {
				<-t.C
			}
		}
		t.Reset(m.cfg.MonitorInterval)
		cs, err := m.store.CoordinatorState(ctx)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("reading the client version; keeping "+v, zap.Error(err))
			}
			continue
		}
		next, ok := lease.NextClientVersion(v, cs.ClientVersion)
		if m.followsInit(v) {
			next, ok = m.versionFromInit(cs.ClientVersion)
		}
		if !ok {
			m.log.Error("migration state has a client version this worker cannot move to; staying",
				zap.String("current", v), zap.String("stored", cs.ClientVersion))
			continue
		}
		if next != v {
			m.log.Info("client version changed", zap.String("from", v), zap.String("to", next))
			v = next
			apply(v)
		}
	}
}

// followsInit: a worker left in INIT by the default clientVersionConfig
// (multilangd writes no Migration3.0 then, docs/compatibility.md "KCL 3.x")
// keeps re-reading Migration3.0 so that an upgrade started by other workers
// is followed; Java's INIT (Phase-1 configuration) is terminal.
func (m *Migration) followsInit(v string) bool {
	return v == lease.ClientVersionInit && m.cfg.Configured != properties.ClientVersionCompatible2XPhase1
}

// versionFromInit is the version a followsInit worker enters when
// Migration3.0 reads stored: what it would have started in.
func (m *Migration) versionFromInit(stored string) (string, bool) {
	if stored == "" {
		return lease.ClientVersionInit, true
	}
	v, err := m.fromStored(stored)
	return v, err == nil
}

// monitored: Java runs a ClientVersionChangeMonitor in 2X, UPGRADE_FROM_2X
// and 3X_WITH_ROLLBACK; INIT and 3X are terminal.
func monitored(v string) bool {
	return v == lease.ClientVersion2X || v == lease.ClientVersionUpgr || v == lease.ClientVersion3XRoll
}

func (m *Migration) enter(v string) {
	m.version.Store(v)
	if m.cfg.OnVersion != nil {
		m.cfg.OnVersion(v)
	}
}

// initialize reads Migration3.0 (retrying every InitRetry) and applies
// clientVersionConfig (lease.InitialClientVersion). From no item, Java
// creates it; multilangd does so for UPGRADE_FROM_2X
// (clientVersionConfig = CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X) and for
// CLIENT_VERSION_3X when clientVersionConfig = CLIENT_VERSION_CONFIG_3X is
// written in the file (a pure multilangd 3.x fleet). With the key left at its
// default it writes nothing and stays a KCL 2.x-compatible worker (INIT)
// that follows a later upgrade (followsInit); likewise only the explicit
// setting advances 3X_WITH_ROLLBACK to 3X at start-up, as Java does
// (docs/compatibility.md "KCL 3.x").
func (m *Migration) initialize(ctx context.Context) (string, bool) {
	for {
		v, err := m.initialVersion(ctx)
		if err == nil {
			return v, true
		}
		if ctx.Err() != nil {
			return "", false
		}
		if errors.Is(err, errMigrationStateRaced) {
			m.log.Info("another worker wrote the migration state meanwhile; reading it again", zap.Error(err))
		} else {
			m.log.Warn("determining the client version failed; retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return "", false
		case <-time.After(m.cfg.InitRetry):
		}
	}
}

// errMigrationStateRaced: another worker wrote Migration3.0 between this
// worker's read and its conditional write, the normal start of a fleet;
// initialize reads it again (logged at INFO, not as a failure).
var errMigrationStateRaced = errors.New("migration state raced")

func (m *Migration) initialVersion(ctx context.Context) (string, error) {
	cs, err := m.store.CoordinatorState(ctx)
	if err != nil {
		return "", err
	}
	v, err := lease.InitialClientVersion(cs.ClientVersion, m.cfg.Configured)
	if err != nil {
		return "", err
	}
	create := v == lease.ClientVersionUpgr || (v == lease.ClientVersion3X && m.cfg.ConfiguredExplicitly)
	switch {
	case cs.ClientVersion == "" && create:
		created, err := m.store.CreateMigrationState(ctx, v, m.cfg.WorkerID, time.Now())
		if err != nil {
			return "", err
		}
		if !created { // another worker created it meanwhile: initialize reads again
			return "", fmt.Errorf("%w: %s was created by another worker", errMigrationStateRaced, lease.MigrationKey)
		}
		m.log.Info("created the migration state", zap.String("clientVersion", v))
		return v, nil
	case cs.ClientVersion == "":
		return lease.ClientVersionInit, nil
	case v == lease.ClientVersion3X && cs.ClientVersion == lease.ClientVersion3XRoll && m.cfg.ConfiguredExplicitly:
		// The upgrade is finalised (Java AbstractMigrationClientVersionState
		// ensureDdbStateMatchesClientVersion on entering 3X).
		ok, err := m.store.UpdateClientVersion(ctx, cs.ClientVersion, v, m.cfg.WorkerID, time.Now())
		if err != nil {
			return "", err
		}
		if !ok { // changed meanwhile (a rollback?): initialize reads again
			return "", fmt.Errorf("%w: %s changed while finalising the upgrade", errMigrationStateRaced, lease.MigrationKey)
		}
		m.log.Info("finalised the 3.x upgrade", zap.String("from", cs.ClientVersion), zap.String("clientVersion", v))
		return v, nil
	}
	return m.fromStored(cs.ClientVersion)
}

// fromStored is the version a worker starts in when Migration3.0 holds
// stored (non-empty), writing nothing: 3X_WITH_ROLLBACK stays in force
// unless clientVersionConfig = CLIENT_VERSION_CONFIG_3X is written in the
// file (initialVersion then finalises it).
func (m *Migration) fromStored(stored string) (string, error) {
	v, err := lease.InitialClientVersion(stored, m.cfg.Configured)
	if err != nil {
		return "", err
	}
	if v == lease.ClientVersion3X && stored == lease.ClientVersion3XRoll {
		return stored, nil
	}
	return v, nil
}

// runReporter publishes worker metrics into the table Java's
// WorkerMetricStatsDAO writes to, until ctx is done.
func (m *Migration) runReporter(ctx context.Context) {
	var done bool
	for {
		var err error
		done, err = m.store.TableMigrationComplete(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		m.log.Warn("finding the worker-metrics table failed; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.cfg.InitRetry):
		}
	}
	rc := m.cfg.Reporter
	rc.WorkerID = m.cfg.WorkerID
	rc.Target = Target{Table: m.cfg.LeaseTable, PartitionKey: LeaseTableKey}
	if !done {
		rc.Target = Target{Table: m.cfg.LegacyTable, PartitionKey: LegacyTableKey}
	}
	onValues := rc.OnValues
	rc.OnValues = func(latest map[string]float64) {
		m.latest.Store(&latest)
		if onValues != nil {
			onValues(latest)
		}
	}
	m.log.Info("publishing worker metrics", zap.String("table", rc.Target.Table))
	newReporter(m.api, rc, m.log, m.newMeter()).Run(ctx)
}
