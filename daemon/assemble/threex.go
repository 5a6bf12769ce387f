package assemble

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/daemon"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/assign"
	"github.com/multilangd/multilangd/lease/lam"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/workermetrics"
)

// newMigration builds the KCL 3.x client-version follower and worker-metrics
// publisher (docs/compatibility.md "KCL 3.x") from clientVersionConfig and
// the workerMetrics* keys; coord's KCL 2.x leader decision picks the worker
// that flips an upgraded fleet to 3.x. Each client version entered switches
// the KCL 3.x components (x.enter).
func newMigration(cfg *properties.Config, store *lease.DynamoStore, coord *lease.Coordinator, client *dynamodb.Client, x *threeX, recheck <-chan struct{}, log *zap.Logger) *workermetrics.Migration {
	return workermetrics.NewMigration(store, client, workermetrics.MigrationConfig{
		WorkerID:             cfg.WorkerID,
		Configured:           cfg.ClientVersionConfig,
		ConfiguredExplicitly: cfg.ClientVersionConfigSet,
		MonitorInterval:      migrationMonitorInterval,
		Recheck:              recheck,
		LeaseTable:           cfg.TableName,
		LegacyTable:          cfg.WorkerMetricsTable.TableName,
		Reporter: workermetrics.Config{
			CaptureFrequency:  cfg.InMemoryWorkerMetricsCaptureFrequency,
			ReporterFrequency: cfg.WorkerMetricsReporterFreq,
			PersistedValues:   cfg.NoOfPersistedMetricsPerWorkerMetrics,
			DisableCPU:        cfg.DisableWorkerMetrics,
			OnReport:          x.reported,
		},
		OnVersion: func(v string) {
			log.Info("KCL client version in force", zap.String("clientVersion", v))
			x.enter(v)
		},
		IsLeader: coord.IsLeader,
	}, log)
}

// reported publishes a worker-metrics report (WorkerMetricStatsReporter).
func (x *threeX) reported(err error, took time.Duration) {
	if x.ops != nil {
		x.ops.workerMetricStatsReporter(err, took)
	}
}

// migrationMonitorInterval is how often Migration3.0 is re-read (0: Java's
// 1 min); tests shorten it.
var migrationMonitorInterval time.Duration

// startMigration runs m (and the KCL 3.x components it switches on, x)
// until ctx is done or the returned stop is called; stop waits for it and
// then stops x's components (assignment manager first, then the lock, which
// is released).
func startMigration(ctx context.Context, m *workermetrics.Migration, x *threeX) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	x.setContext(ctx)
	done := make(chan struct{})
	go func() { // owned by stop, which waits for it
		defer close(done)
		m.Run(ctx)
	}()
	return func() { cancel(); <-done; x.stopLeading() }
}

// lockDecider is the KCL 3.x leader decision (lease/leader Decider): Run
// heart-beats the Leader lock while held and releases it when ctx ends.
type lockDecider interface {
	lam.Leader
	Run(ctx context.Context) error
	// Running is closed once Run has started (IsLeader says no before).
	Running() <-chan struct{}
}

// threeX switches the KCL 3.x components with the client version in force,
// as Java DynamicMigrationComponentsInitializer.initializeClientVersionFor…:
// in 3X_WITH_ROLLBACK and 3X the coordinator is in 3.x mode, the leader
// decider competes for the Leader lock and the LeaseAssignmentManager runs
// (acting only while the lock is held); in UPGRADE_FROM_2X the
// LeaseOwnerToLeaseKeyIndex is created without waiting; in 3X (entered at
// start-up) it must be ACTIVE before leading starts; any other version is
// 2.x mode (a rollback stops the manager and releases the lock first).
type threeX struct {
	cfg   *properties.Config
	store *lease.DynamoStore
	coord *lease.Coordinator
	// newDecider builds the lock decider; nil: this build cannot lead (3.x
	// mode follows the lock holder's assignments only).
	newDecider func() (lockDecider, error)
	log        *zap.Logger
	// ops publishes the KCL 3.x CloudWatch datums (cloudwatch3x.go); nil
	// publishes none.
	ops *ops

	mu      sync.Mutex
	ctx     context.Context
	leading *leading
}

// leading is one run of the lock decider and the assignment manager;
// closing stop (or the end of the context it was started with) stops the
// manager, then the decider, and closes done.
type leading struct {
	manager *lam.Manager
	stop    chan struct{}
	done    chan struct{}
}

func newThreeX(cfg *properties.Config, store *lease.DynamoStore, coord *lease.Coordinator, log *zap.Logger) *threeX {
	return &threeX{cfg: cfg, store: store, coord: coord, log: log, newDecider: newLockDecider(cfg, store, log)}
}

func (x *threeX) setContext(ctx context.Context) {
	x.mu.Lock()
	x.ctx = ctx
	x.mu.Unlock()
}

// enter applies client version v (called on the Migration goroutine).
func (x *threeX) enter(v string) {
	x.mu.Lock()
	ctx, running := x.ctx, x.leading != nil
	x.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	switch v {
	case lease.ClientVersion3X, lease.ClientVersion3XRoll:
		x.coord.SetThreeXMode(true)
		if v == lease.ClientVersion3X && !running {
			x.ensureIndex(ctx)
		}
		x.startLeading(ctx)
	case lease.ClientVersionUpgr:
		x.stopLeading()
		x.coord.SetThreeXMode(false)
		if _, err := x.store.CreateLeaseOwnerIndexIfNotExists(ctx); err != nil && ctx.Err() == nil {
			x.log.Warn("creating the lease-owner index failed (the 2.x→3.x flip waits for it)", zap.Error(err))
		}
	default:
		x.stopLeading()
		x.coord.SetThreeXMode(false)
	}
}

// indexPoll and indexTimeout are Java's (createGsi: every 10 s, up to 1 h).
const (
	indexPoll    = 10 * time.Second
	indexTimeout = time.Hour
)

// ensureIndex creates the LeaseOwnerToLeaseKeyIndex if missing and waits
// until it is ACTIVE (Java createGsi(true)); a failure is logged and 3.x
// mode goes on (discovery retries every period).
func (x *threeX) ensureIndex(ctx context.Context) {
	status, err := x.store.CreateLeaseOwnerIndexIfNotExists(ctx)
	if err == nil && status != "ACTIVE" {
		x.log.Info("waiting for the lease-owner index to become ACTIVE", zap.String("status", string(status)))
		err = x.store.WaitLeaseOwnerIndexActive(ctx, min(indexPoll, x.cfg.FailoverTime), indexTimeout)
	}
	if err != nil && ctx.Err() == nil {
		x.log.Error("the lease-owner index is not ACTIVE; leases assigned to this worker are not discovered until it is", zap.Error(err))
	}
}

// startLeading starts the lock decider and the assignment manager (once).
func (x *threeX) startLeading(ctx context.Context) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.leading != nil || ctx.Err() != nil {
		return
	}
	if x.newDecider == nil {
		x.log.Warn("this build has no KCL 3.x leader decider: following the lock holder's assignments only")
		return
	}
	dec, err := x.newDecider()
	if err != nil {
		x.log.Error("KCL 3.x leader decider not started; following the lock holder's assignments only", zap.Error(err))
		return
	}
	lc := lamConfig(x.cfg)
	if x.ops != nil {
		dec = publishingDecider{lockDecider: dec, o: x.ops}
		lc.OnRun, lc.OnNotLeader = x.ops.leaseAssignmentManager, x.ops.leaseAssignmentNotLeader
	}
	l := &leading{manager: lam.New(x.store, dec, lc, x.log.Named("lam")),
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() { // owned by stopLeading, which waits for it
		defer close(l.done)
		l.run(ctx, dec, x.log)
	}()
	x.coord.SetLockLeader(dec.IsLeader)
	x.leading = l
}

// run runs the decider and the manager until ctx ends or stop is closed,
// then stops the manager first and the decider after it (which releases
// the lock if held), each on its own context so that the order holds. The
// manager starts once the decider runs: its first IsLeader, asked before,
// would say no and the first election would wait a whole interval.
func (l *leading) run(ctx context.Context, dec lockDecider, log *zap.Logger) {
	lockCtx, stopLock := context.WithCancel(context.WithoutCancel(ctx))
	lamCtx, stopLAM := context.WithCancel(context.WithoutCancel(ctx))
	lockDone, lamDone := make(chan struct{}), make(chan struct{})
	go func() { // owned here: waited for below
		defer close(lockDone)
		if err := dec.Run(lockCtx); err != nil && lockCtx.Err() == nil {
			log.Error("KCL 3.x leader decider ended", zap.Error(err))
		}
	}()
	go func() { // owned here: waited for below
		defer close(lamDone)
		select {
		case <-dec.Running():
		case <-lockDone: // the decider ended before it ran: nobody to ask
			return
		case <-lamCtx.Done():
			return
		}
		l.manager.Run(lamCtx)
	}()
	select {
	case <-ctx.Done():
	case <-l.stop:
	}
	stopLAM()
	<-lamDone
	stopLock()
	<-lockDone
}

// stopLeading stops the assignment manager, then the lock decider, which
// releases the lock if held (Java: LAM stop, then the leader decider's
// shutdown).
func (x *threeX) stopLeading() {
	x.mu.Lock()
	l := x.leading
	x.leading = nil
	x.mu.Unlock()
	if l == nil {
		return
	}
	x.coord.SetLockLeader(nil)
	close(l.stop)
	<-l.done
}

// Status is the assignment manager's status; ok is false when it does not
// run (2.x mode).
func (x *threeX) Status() (s lam.Status, ok bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.leading == nil {
		return lam.Status{}, false
	}
	return x.leading.manager.Status(), true
}

// lamConfig maps the leaseAssignment*, variance-balancing, worker-metrics
// and graceful hand-off keys (Java LeaseManagementConfig,
// WorkerUtilizationAwareAssignmentConfig, GracefulLeaseHandoffConfig).
func lamConfig(cfg *properties.Config) lam.Config {
	return lam.Config{
		WorkerID:                   cfg.WorkerID,
		FailoverTime:               cfg.FailoverTime,
		Interval:                   cfg.LeaseAssignmentInterval,
		VarianceBalancingFrequency: cfg.VarianceBalancingFrequency,
		GracefulHandoff:            cfg.GracefulLeaseHandoffEnabled,
		HandoffTimeout:             cfg.GracefulLeaseHandoffTimeout,
		StaleMetricsCleanup:        cfg.StaleWorkerMetricsEntryCleanupDuration,
		LegacyMetricsTable:         cfg.WorkerMetricsTable.TableName,
		Assign: assign.Config{
			Strategy:                     assign.Strategy(cfg.LeaseAssignmentStrategy),
			MaxLeasesForWorker:           cfg.MaxLeasesForWorker,
			MaxThroughputPerHostKBps:     cfg.MaxThroughputPerHostKBps,
			ReBalanceThresholdPercentage: cfg.ReBalanceThresholdPercentage,
			DampeningPercentage:          cfg.DampeningPercentage,
			AllowThroughputOvershoot:     cfg.AllowThroughputOvershoot,
			WorkerMetricsEMAAlpha:        cfg.WorkerMetricsEMAAlpha,
			WorkerMetricsExpiry:          2 * cfg.WorkerMetricsReporterFreq,
		},
	}
}

// throughputMetrics feeds the data bytes of every delivered batch to the
// coordinator, which writes each lease's throughputKBps with its renew on a
// KCL 3.x table (Java ProcessTask.publishLeaseStats).
type throughputMetrics struct{ coord *lease.Coordinator }

func (t throughputMetrics) RecordsProcessed(leaseKey string, b daemon.BatchStats) {
	if b.Delivered {
		t.coord.RecordDelivered(leaseKey, b.Bytes)
	}
}
func (throughputMetrics) TaskFailed(string)                      {}
func (throughputMetrics) LeaseReleased(string)                   {}
func (throughputMetrics) ConsumerStopped(string)                 {}
func (throughputMetrics) ChildInitialized(string, time.Duration) {}
func (throughputMetrics) ShardStuck(string, bool)                {}
