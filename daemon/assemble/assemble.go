// Package assemble builds a daemon.Scheduler from a properties.Config and
// the real implementations (lease store and coordinator, shard sync and
// cleanup, polling or enhanced fan-out retrieval, subprocess children) and
// runs it. It owns the mapping from KCL properties to each part's settings
// and nothing else.
package assemble

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/multilangd/multilangd/cwmetrics"
	"github.com/multilangd/multilangd/daemon"
	"github.com/multilangd/multilangd/iac"
	"github.com/multilangd/multilangd/internal/sdnotify"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/shardsync"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/retrieval"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
	"github.com/multilangd/multilangd/subprocess"
	"github.com/multilangd/multilangd/workermetrics"
)

// Clients are the AWS clients the daemon needs. CloudWatch may be nil:
// then no CloudWatch metrics are published.
type Clients struct {
	Kinesis    *kinesis.Client
	DynamoDB   *dynamodb.Client
	CloudWatch cwmetrics.PutAPI
}

// newStore returns the lease store; it also looks for a Java KCL 3.0–3.4
// fleet's coordinator state in coordinatorStateTableName (default
// <applicationName>-CoordinatorState), which 3.5 moved into the lease table,
// and scans in leaseTableScanTotalSegments parallel segments when set.
func newStore(cfg *properties.Config, client *dynamodb.Client, log *zap.Logger) *lease.DynamoStore {
	s := lease.NewDynamoStore(client, cfg.TableName, log.Named("lease")).
		WithCoordinatorStateTable(cfg.CoordinatorStateTable.TableName)
	if cfg.LeaseTableScanTotalSegments != nil {
		s.WithScanSegments(*cfg.LeaseTableScanTotalSegments)
	}
	return s
}

// missingTableError is the start-up error of leaseTableCreate = NEVER on a
// missing table: it carries the schema to provision (as `multilangd table
// schema` prints it).
func missingTableError(cfg *properties.Config, missing *lease.TableMissingError) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%v; create it, e.g. from this schema (also printed by `multilangd table schema -p %s`):\n\n", missing, cfg.Source)
	if err := iac.Schema(&b, iac.Tables(cfg, iac.KCL2)); err != nil {
		return fmt.Errorf("%w (rendering its schema: %v)", missing, err)
	}
	return fmt.Errorf("%s\n%w", strings.TrimRight(b.String(), "\n"), missing)
}

// errStoppedDuringStartup: ctx ended while Run was still building; there is
// nothing to shut down and Run returns nil, as after a graceful stop.
var errStoppedDuringStartup = errors.New("stopped during start-up")

// Run creates the lease table if needed, builds every part and runs the
// scheduler until ctx is done (then stops gracefully). A stop during
// start-up is not an error: Run returns nil as after a graceful stop.
func Run(ctx context.Context, cfg *properties.Config, c Clients, log *zap.Logger) error {
	return RunReloadable(ctx, cfg, c, nil, log)
}

// RunReloadable is Run that also applies every configuration received on
// reloads (re-read on SIGHUP; see reload.go).
func RunReloadable(ctx context.Context, cfg *properties.Config, c Clients, reloads <-chan *properties.Config, log *zap.Logger) error {
	d, err := build(ctx, cfg, c, log)
	if errors.Is(err, errStoppedDuringStartup) {
		return nil
	}
	if err != nil {
		return err
	}
	return d.run(ctx, cfg, reloads, log)
}

// assembled is the daemon Run built: the scheduler over every part, the
// coordinator (for the held-lease count), the metrics registry and the
// operational instruments (CloudWatch publisher, health).
type assembled struct {
	coord     *lease.Coordinator
	scheduler *daemon.Scheduler
	registry  *prometheus.Registry
	ops       *ops
	cw        *cwMetrics
	// cfg is the configuration in effect; children the child settings a
	// reload may replace (reload.go).
	cfg      *properties.Config
	children atomic.Pointer[subprocess.Config]
	// streams routes shard sync, cleanup and retrieval to each stream of a
	// multi-stream application (multistream.go); nil for a single stream.
	streams *streamSet
	// migration follows the KCL 3.x client version and publishes worker
	// metrics when it asks for them (threex.go).
	migration *workermetrics.Migration
	// threeX runs the KCL 3.x mode, leader decider and lease assignment
	// manager the client version asks for (threex.go).
	threeX *threeX
}

// build creates the lease table if needed and wires every part into a
// scheduler. startupCtx bounds only the start-up requests (table creation,
// lease listing, consumer registration).
func build(startupCtx context.Context, cfg *properties.Config, c Clients, log *zap.Logger) (*assembled, error) {
	if len(cfg.WorkerID) == 0 {
		return nil, fmt.Errorf("workerId is empty")
	}
	store, err := openStore(startupCtx, cfg, c.DynamoDB, log)
	if err != nil {
		return nil, err
	}
	var pub *cwmetrics.Publisher
	if c.CloudWatch != nil {
		pub = cwmetrics.New(c.CloudWatch, withLog(cloudWatchConfig(cfg), log.Named("cloudwatch")))
	}
	o := newOps(pub, cfg.WorkerID)
	observed := observedStore{Store: store, o: o}
	leasesTaken := make(chan struct{}, 1)
	recheck := make(chan struct{}, 1) // the taker's "3.x table" to the client-version monitor
	coord := newCoordinator(cfg, observed, leasesTaken, recheck, o, log)
	lister := newLister(cfg, c, log)
	syncCfg := shardSyncConfig(cfg)
	skipSync, err := skipInitialSync(startupCtx, cfg, store)
	if err != nil {
		return nil, err
	}
	budget := memoryBudget(cfg, log)
	var sources daemon.SourceFactory
	if !cfg.MultiStream() {
		if sources, err = sourceFactory(startupCtx, cfg, c, o, lister, budget, log); err != nil {
			if startupCtx.Err() != nil {
				return nil, errStoppedDuringStartup
			}
			return nil, err
		}
	}

	// Shard sync, the parent gate and the cleaner read single leases
	// eventually consistently, as Java does (docs/compatibility.md).
	syncStore := store.EventuallyConsistentGets()
	x := newThreeX(cfg, store, coord, log.Named("threex"))
	x.ops = o
	d := &assembled{coord: coord, registry: prometheus.NewRegistry(), ops: o, cw: newCWMetrics(o), cfg: cfg, threeX: x,
		migration: newMigration(cfg, store, coord, c.DynamoDB, x, recheck, log.Named("clientversion"))}
	cc := childConfig(cfg)
	d.children.Store(&cc)
	registerCloudWatch(d.registry, pub)
	d.registry.MustRegister(newThreeXCollector(threeXGaugeSources(d.migration, coord, x)))
	metrics := teeMetrics{newPromMetrics(d.registry,
		func() []daemon.ShardStatus { return d.scheduler.Status() },
		func() int { return len(coord.Held()) }), d.cw, throughputMetrics{coord}}
	deps := daemon.Deps{
		Coordinator: coordinator{coord, o},
		Store:       observed,
		Syncer:      shardsync.New(syncStore, lister, syncCfg, log.Named("shardsync")),
		Cleaner:     shardsync.NewCleaner(syncStore, lister, syncCfg, log.Named("cleaner")),
		Sources:     sources,
		Children:    childFactory(&d.children, cfg.MultiStream(), log.Named("child")),
		Log:         log,
		Metrics:     metrics,
	}
	if cfg.MultiStream() {
		d.streams = newStreamSet(cfg, syncStore, c.Kinesis, streamBuilder(cfg, c, o, syncStore, budget, log), log)
		deps.Syncer, deps.Cleaner, deps.Sources = d.streams, d.streams, d.streams.Sources
	}
	d.scheduler, err = daemon.New(schedulerConfig(cfg, skipSync, leasesTaken), deps)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// run serves /metrics, /healthz and /readyz, sends the systemd
// notifications, publishes CloudWatch metrics and runs the scheduler until
// ctx is done and the graceful stop finished.
func (d *assembled) run(ctx context.Context, cfg *properties.Config, reloads <-chan *properties.Config, log *zap.Logger) error {
	held := func() int { return len(d.coord.Held()) }
	pr := healthProbes(cfg, d.scheduler, d.ops, held)
	if cfg.MetricsListenAddress != "" {
		srv, err := startHTTP(cfg.MetricsListenAddress, d.registry, pr, log.Named("http"))
		if err != nil {
			return err
		}
		defer srv.stop()
	}
	log.Info("multilangd starting",
		zap.String("applicationName", cfg.ApplicationName),
		zap.String("streamName", cfg.StreamName),
		zap.String("leaseTable", cfg.TableName),
		zap.String("workerId", cfg.WorkerID),
		zap.String("executableName", cfg.ExecutableName))
	schedulerDone := make(chan struct{})
	notifierDone := make(chan struct{})
	go func() { // owned here: run waits for it below
		defer close(notifierDone)
		notifySystemd(ctx, schedulerDone, sdnotify.FromEnv(), d.scheduler.Healthy, pr.live, held, log.Named("systemd"))
	}()
	stopPublishing := publishCloudWatch(d.ops, d.cw, d.coord.Config().RenewerPeriod, held)
	stopReloading := d.applyReloads(ctx, reloads, d.scheduler.Healthy, sdnotify.FromEnv(), log.Named("reload"))
	stopMigration := startMigration(ctx, d.migration, d.threeX)
	err := d.scheduler.Run(ctx)
	stopMigration()
	stopReloading()
	stopPublishing()
	close(schedulerDone)
	<-notifierDone
	return err
}

func newLister(cfg *properties.Config, c Clients, log *zap.Logger) *retrieval.Lister {
	return retrieval.NewLister(c.Kinesis, cfg.StreamName, cfg.StreamARN, retrieval.ListerConfig{Backoff: cfg.ListShardsBackoffTime, MaxAttempts: cfg.MaxListShardsRetryAttempts}, log.Named("lister"))
}

// streamBuilder builds one stream's parts of a multi-stream application
// from perStreamConfig, as build does for the single stream.
// Each stream reads under its own Share of the memory budget, so a hot
// stream cannot starve a quiet one.
func streamBuilder(cfg *properties.Config, c Clients, o *ops, store shardsync.Store, budget *retrieval.Budget, log *zap.Logger) func(context.Context, properties.StreamConfig) (*streamParts, error) {
	return func(ctx context.Context, sc properties.StreamConfig) (*streamParts, error) {
		scfg := perStreamConfig(cfg, sc)
		slog := log.With(zap.String("stream", sc.Identifier()))
		lister := newLister(scfg, c, slog)
		syncCfg := shardSyncConfig(scfg)
		syncCfg.StreamIdentifier = sc.Identifier()
		sources, err := sourceFactory(ctx, scfg, c, o, lister, budget.Share(sc.Identifier()), slog)
		if err != nil {
			return nil, err
		}
		return &streamParts{sc: sc, sources: sources,
			syncer:  shardsync.New(store, lister, syncCfg, slog.Named("shardsync")),
			cleaner: shardsync.NewCleaner(store, lister, syncCfg, slog.Named("cleaner"))}, nil
	}
}

// openStore returns the lease store after creating the lease table if it
// does not exist (unless leaseTableCreate = NEVER).
func openStore(startupCtx context.Context, cfg *properties.Config, client *dynamodb.Client, log *zap.Logger) (*lease.DynamoStore, error) {
	store := newStore(cfg, client, log)
	topts := iac.LeaseTableOptions(cfg)
	topts.NeverCreate = cfg.LeaseTableCreate == properties.LeaseTableCreateNever
	topts.PollInterval = time.Second
	if err := store.CreateTableIfNotExists(startupCtx, topts); err != nil {
		if startupCtx.Err() != nil {
			return nil, errStoppedDuringStartup
		}
		var missing *lease.TableMissingError
		if errors.As(err, &missing) {
			return nil, missingTableError(cfg, missing)
		}
		return nil, fmt.Errorf("lease table %s: %w", cfg.TableName, err)
	}
	return store, nil
}

// newCoordinator maps the lease-management properties onto the coordinator;
// every taker run signals leasesTaken and is published (TakeLeases), every
// lost lease counted (RenewAllLeases LostLeases).
func newCoordinator(cfg *properties.Config, store lease.Store, leasesTaken, recheck chan<- struct{}, o *ops, log *zap.Logger) *lease.Coordinator {
	return lease.NewCoordinator(store, lease.CoordinatorConfig{
		OnThreeXTable: func() {
			select {
			case recheck <- struct{}{}:
			default: // a re-read is already due
			}
		},
		OnTake: func(r lease.TakeResult) {
			signalTaken(leasesTaken, r)
			o.takeLeases(r)
		},
		OnDiscover:                    o.leaseDiscovery,
		OnLost:                        func(string, error) { o.lost.Add(1) },
		WorkerID:                      cfg.WorkerID,
		FailoverTime:                  cfg.FailoverTime,
		MaxLeasesForWorker:            cfg.MaxLeasesForWorker,
		MaxLeasesToStealAtOneTime:     cfg.MaxLeasesToStealAtOneTime,
		EnablePriorityLeaseAssignment: cfg.EnablePriorityLeaseAssignment,
		MaxLeaseRenewalThreads:        cfg.MaxLeaseRenewalThreads,
		// 0 in the file: transfer at the first check, as Java (0 here
		// would mean the default).
		GracefulLeaseHandoffTimeout: max(cfg.GracefulLeaseHandoffTimeout, time.Millisecond),
		AwaitMode:                   true, // threex.go sets the mode from Migration3.0
	}, log.Named("coordinator"))
}

// shardSyncConfig maps the shard-sync and lease-cleanup properties.
func shardSyncConfig(cfg *properties.Config) shardsync.Config {
	return shardsync.Config{
		InitialPosition:                  string(cfg.InitialPosition),
		InitialTimestamp:                 cfg.InitialTimestamp,
		IgnoreUnexpectedChildShards:      cfg.IgnoreUnexpectedChildShards,
		ShardSyncInterval:                cfg.ShardSyncInterval,
		CleanupLeasesUponShardCompletion: cfg.CleanupLeasesUponShardCompletion,
		CleanupInterval:                  cfg.LeaseCleanupInterval,
		CompletedCleanupInterval:         cfg.CompletedLeaseCleanupInterval,
		GarbageCleanupInterval:           cfg.GarbageLeaseCleanupInterval,
	}
}

// skipInitialSync reports whether the start-up shard sync is skipped:
// skipShardSyncAtWorkerInitializationIfLeasesExist is set and leases exist.
// A multi-stream application always syncs at start-up: a stream added
// while it was down has no leases yet.
func skipInitialSync(startupCtx context.Context, cfg *properties.Config, store *lease.DynamoStore) (bool, error) {
	if !cfg.SkipShardSyncAtWorkerInitializationIfLeasesExist || cfg.MultiStream() {
		return false, nil
	}
	ls, err := store.ListLeases(startupCtx)
	if err != nil {
		if startupCtx.Err() != nil {
			return false, errStoppedDuringStartup
		}
		return false, fmt.Errorf("listing leases in %s: %w", cfg.TableName, err)
	}
	return len(ls) > 0, nil
}

// schedulerConfig maps the scheduler and shard-consumer properties.
func schedulerConfig(cfg *properties.Config, skipSync bool, leasesTaken <-chan struct{}) daemon.Config {
	return daemon.Config{
		WorkerID:                                 cfg.WorkerID,
		ParentShardPollInterval:                  cfg.ParentShardPollInterval,
		TaskBackoff:                              cfg.TaskBackoffTime,
		MaxChildFailures:                         cfg.MaxChildFailures,
		Cooldown:                                 2 * cfg.FailoverTime,
		CallProcessRecordsEvenForEmptyRecordList: cfg.CallProcessRecordsEvenForEmptyRecordList,
		ShutdownGrace:                            max(cfg.ShutdownGrace, daemon.MinShutdownGrace),
		InitBackoff:                              cfg.SchedulerInitializationBackoffTime,
		SkipInitialSync:                          skipSync,
		LeasesTaken:                              leasesTaken,
		StuckShardAfter:                          cfg.StuckShardThreshold,
		StuckShardRestartChild:                   cfg.StuckShardRestartChild,
		StuckShardFailsReadiness:                 cfg.StuckShardFailsReadiness,
	}
}

// childConfig maps executableName, timeoutInSeconds and the child extension
// properties onto one child's settings (ShardID and Logger left out).
func childConfig(cfg *properties.Config) subprocess.Config {
	var timeout time.Duration
	if cfg.TimeoutInSeconds != nil {
		// Java: 0 (or garbage) times out at once; keep that a tiny timeout.
		timeout = max(time.Duration(*cfg.TimeoutInSeconds)*time.Second, time.Millisecond)
	}
	// childStderrLogLevel is validated by properties; its default is in the
	// key registry, not here.
	stderrLevel, _ := zapcore.ParseLevel(cfg.ChildStderrLevel)
	grace := cfg.ChildShutdownGrace
	if grace == 0 {
		grace = subprocess.NoShutdownGrace // 0 in the file is no wait, not the default
	}
	return subprocess.Config{
		Command:            cfg.ExecutableName,
		Timeout:            timeout,
		ChildShutdownGrace: grace,
		StderrLevel:        stderrLevel,
	}
}

// childFactory spawns one record-processor child per shard with the
// settings current at spawn time (a reload replaces them). Its log lines
// carry the leaseKey; subprocess adds the shardId.
// In a multi-stream application the child also learns its stream
// (subprocess.Config.StreamName).
func childFactory(settings *atomic.Pointer[subprocess.Config], multiStream bool, childLog *zap.Logger) daemon.ChildFactory {
	return func(ctx context.Context, shardID, leaseKey string) (daemon.Child, error) {
		sc := *settings.Load()
		sc.ShardID, sc.Logger = shardID, childLog.With(zap.String("leaseKey", leaseKey))
		if id, _, ok := lease.ParseMultiStreamKey(leaseKey); ok && multiStream {
			s, err := parseIdentifier(id)
			if err != nil {
				return nil, err
			}
			sc.StreamName, sc.StreamIdentifier = s.Name, id
		}
		ch, err := subprocess.Start(ctx, sc)
		if err != nil {
			return nil, err
		}
		return ch, nil
	}
}

// signalTaken wakes the scheduler (without blocking the taker) after every
// taker run: the held set may have grown by the leases it took or, on the
// first run, by the ones the coordinator's start-up re-acquired. A run is
// every few seconds at most, so the extra reconciles cost nothing.
func signalTaken(ch chan<- struct{}, _ lease.TakeResult) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sourceFactory returns the per-shard record source for the configured
// retrieval mode. For enhanced fan-out it first registers (or looks up) the
// stream consumer, once per process, as the Java KCL does at start-up.
// budget is the daemon-wide memory budget (a stream's Share of it in a
// multi-stream application).
func sourceFactory(ctx context.Context, cfg *properties.Config, c Clients, o *ops, lister *retrieval.Lister, budget *retrieval.Budget, log *zap.Logger) (daemon.SourceFactory, error) {
	if cfg.RetrievalMode != properties.RetrievalFanout {
		pollLog := log.Named("poller")
		return func(ctx context.Context, l lease.Lease, start seqnum.ESN) (daemon.RecordSource, error) {
			pc := pollerConfig(cfg, l, start)
			pc.Budget = budget
			api := observedKinesis{KinesisAPI: c.Kinesis, o: o, leaseKey: l.Key}
			p := retrieval.NewPoller(api, pc, shardLog(pollLog, l))
			p.Start(ctx)
			return p, nil
		}, nil
	}
	name := cfg.Fanout.ConsumerName
	if name == "" {
		name = cfg.ApplicationName
	}
	arn, err := retrieval.RegisterConsumer(ctx, c.Kinesis, retrieval.ConsumerConfig{
		StreamName:                       cfg.StreamName,
		StreamARN:                        cfg.StreamARN,
		ConsumerName:                     name,
		ConsumerARN:                      cfg.Fanout.ConsumerARN,
		MaxDescribeStreamSummaryRetries:  cfg.Fanout.MaxDescribeStreamSummaryRetries,
		MaxDescribeStreamConsumerRetries: cfg.Fanout.MaxDescribeStreamConsumerRetries,
		RegisterStreamConsumerRetries:    cfg.Fanout.RegisterStreamConsumerRetries,
		RetryBackoff:                     cfg.Fanout.RetryBackoff,
	}, log.Named("efo"))
	if err != nil {
		return nil, fmt.Errorf("enhanced fan-out consumer %q: %w", name, err)
	}
	sub := observedSubscribe{SubscribeAPI: retrieval.SDKSubscribe{Client: retrieval.NewSubscribeClient(c.Kinesis)}, o: o}
	efoLog := log.Named("efo")
	return func(ctx context.Context, l lease.Lease, start seqnum.ESN) (daemon.RecordSource, error) {
		pc := pollerConfig(cfg, l, start)
		api := observedKinesis{KinesisAPI: c.Kinesis, o: o, leaseKey: l.Key}
		s := retrieval.NewSubscriber(sub, api, lister, retrieval.SubscriberConfig{ConsumerARN: arn, Poll: pc},
			shardLog(efoLog, l))
		s.Start(ctx)
		return s, nil
	}, nil
}

// shardLog tags log with the lease's shardId and leaseKey, as every log line
// about a shard is (docs/operations.md, Logs).
func shardLog(log *zap.Logger, l lease.Lease) *zap.Logger {
	return log.With(zap.String("shardId", l.ShardIDOf()), zap.String("leaseKey", l.Key))
}

// pollerConfig maps the polling properties onto one shard's poller.
func pollerConfig(cfg *properties.Config, l lease.Lease, start seqnum.ESN) retrieval.PollerConfig {
	info := shard.Info{
		ID:              l.ShardIDOf(),
		StartingHashKey: l.StartingHashKey,
		EndingHashKey:   l.EndingHashKey,
	}
	if len(l.ParentShardIDs) > 0 {
		info.ParentShardID = l.ParentShardIDs[0]
	}
	if len(l.ParentShardIDs) > 1 {
		info.AdjacentParentShardID = l.ParentShardIDs[1]
	}
	return retrieval.PollerConfig{
		StreamName:                               cfg.StreamName,
		StreamARN:                                cfg.StreamARN,
		Shard:                                    info,
		Start:                                    start,
		InitialTimestamp:                         cfg.InitialTimestamp,
		MaxRecords:                               cfg.MaxRecords,
		IdleTimeBetweenReads:                     cfg.IdleTimeBetweenReads,
		MillisBehindLatestThresholdForReducedTps: cfg.MillisBehindLatestThresholdForReducedTps,
	}
}
