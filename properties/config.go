package properties

import (
	"strconv"
	"time"
)

// RetrievalMode is the resolved record retrieval mode.
type RetrievalMode string

// Retrieval modes. DEFAULT never survives Load: it resolves to FANOUT or POLLING
// with Java's rule (fan-out unless a polling key is set).
const (
	RetrievalFanout  RetrievalMode = "FANOUT"
	RetrievalPolling RetrievalMode = "POLLING"
	RetrievalDefault RetrievalMode = "DEFAULT"
)

// InitialPosition is where a brand-new lease starts reading.
type InitialPosition string

// Initial positions (the lease checkpoint sentinels).
const (
	PositionLatest      InitialPosition = "LATEST"
	PositionTrimHorizon InitialPosition = "TRIM_HORIZON"
	PositionAtTimestamp InitialPosition = "AT_TIMESTAMP"
)

// Config is the typed, validated content of a KCL MultiLangDaemon .properties
// file. Every field holds the Java *effective* default when the key is absent;
// the defaults, like every other fact about a key, are in the key registry
// (keys.go). Pointer fields are "unset" when nil (Java wrapper types with no
// default).
type Config struct {
	// Source is the path the configuration was loaded from.
	Source string

	// --- daemon / process ---
	ExecutableName     string // required
	ProcessingLanguage string
	MaxActiveThreads   int
	TimeoutInSeconds   *int // nil = no per-message timeout
	ShutdownGrace      time.Duration

	// --- application, stream, identity ---
	ApplicationName string // required
	StreamName      string // from streamArn when that is set
	StreamARN       string
	// Streams lists the streams of a multi-stream application (extension
	// key `streams`, Java MultiStreamTracker.streamConfigList); empty for a
	// single-stream application.
	Streams []StreamConfig
	// FormerStreamsLeasesDeletionStrategy (NoStreamsLeasesDeletion or
	// FormerStreamsAutoDetectionDeferredDeletion) and
	// WaitPeriodToDeleteFormerStreams decide what happens to the leases of a
	// stream no longer listed; StreamsCheckInterval is how often the list is
	// compared with the lease table (Java NEW_STREAM_CHECK_INTERVAL_MILLIS).
	FormerStreamsLeasesDeletionStrategy string
	WaitPeriodToDeleteFormerStreams     time.Duration
	StreamsCheckInterval                time.Duration
	TableName                           string // default ApplicationName
	WorkerID                            string // default random UUID; never empty
	RegionName                          string // "" = SDK default chain

	// --- AWS clients ---
	KinesisEndpoint    string // kinesisEndpoint or kinesisClient.endpointOverride
	DynamoDBEndpoint   string // dynamoDBEndpoint or dynamoDbClient.endpointOverride
	CloudWatchEndpoint string // cloudWatchClient.endpointOverride
	KinesisRegion      string // kinesisClient.region (overrides RegionName for that client)
	DynamoDBRegion     string // dynamoDbClient.region
	CloudWatchRegion   string // cloudWatchClient.region

	CredentialsKinesis    []CredentialsProvider // required (AwsCredentialsProvider)
	CredentialsDynamoDB   []CredentialsProvider // default = CredentialsKinesis
	CredentialsCloudWatch []CredentialsProvider // default = CredentialsKinesis

	// --- initial position ---
	InitialPosition  InitialPosition
	InitialTimestamp time.Time // set when InitialPosition is AT_TIMESTAMP

	// --- lease management ---
	FailoverTime                     time.Duration
	LeaseAssignmentInterval          time.Duration
	ShardSyncInterval                time.Duration
	CleanupLeasesUponShardCompletion bool
	IgnoreUnexpectedChildShards      bool
	MaxLeasesForWorker               int
	MaxLeasesToStealAtOneTime        int
	EnablePriorityLeaseAssignment    bool
	InitialLeaseTableReadCapacity    int
	InitialLeaseTableWriteCapacity   int
	LeaseTableBillingProvisioned     bool   // multilangd extension key leaseTableBillingMode=PROVISIONED; default PAY_PER_REQUEST
	LeaseTableCreate                 string // multilangd extension key leaseTableCreate: IF_NOT_EXISTS (default) | NEVER
	LeaseTableDeletionProtection     bool
	LeaseTablePitrEnabled            bool
	LeaseTableScanTotalSegments      *int
	MaxLeaseRenewalThreads           int
	ListShardsBackoffTime            time.Duration
	MaxListShardsRetryAttempts       int
	// The lease cleaner's intervals (Java LeaseCleanupConfig; multilangd
	// extension keys).
	LeaseCleanupInterval          time.Duration
	CompletedLeaseCleanupInterval time.Duration
	GarbageLeaseCleanupInterval   time.Duration

	// The KCL 3.x Leader lock (Java LeaseManagementConfig
	// dynamoDbLockBasedLeader*; multilangd extension keys).
	LeaderLockLeaseDuration   time.Duration
	LeaderLockHeartbeatPeriod time.Duration

	// --- graceful hand-off (3.x) ---
	GracefulLeaseHandoffTimeout time.Duration
	GracefulLeaseHandoffEnabled bool

	// --- worker-utilization-aware assignment (3.x; parsed, not used yet) ---
	InMemoryWorkerMetricsCaptureFrequency time.Duration
	WorkerMetricsReporterFreq             time.Duration
	NoOfPersistedMetricsPerWorkerMetrics  int
	DisableWorkerMetrics                  bool
	MaxThroughputPerHostKBps              float64
	DampeningPercentage                   int
	ReBalanceThresholdPercentage          int
	AllowThroughputOvershoot              bool
	VarianceBalancingFrequency            int
	// LeaseAssignmentStrategy is LeaseAssignmentWorkerUtilizationAware or
	// LeaseAssignmentLeaseCountBased (extension key).
	LeaseAssignmentStrategy                string
	WorkerMetricsEMAAlpha                  float64
	StaleWorkerMetricsEntryCleanupDuration time.Duration

	// --- 3.x metadata tables ---
	WorkerMetricsTable    TableConfig
	CoordinatorStateTable TableConfig

	// --- coordinator ---
	ParentShardPollInterval                          time.Duration
	SkipShardSyncAtWorkerInitializationIfLeasesExist bool
	SchedulerInitializationBackoffTime               time.Duration
	ClientVersionConfig                              string
	// ClientVersionConfigSet: clientVersionConfig is given in the file
	// (not left at its default).
	ClientVersionConfigSet         bool
	MigrateAllEntitiesToLeaseTable bool
	TableMigrationCompleteBakeTime time.Duration

	// --- processing / lifecycle / metrics ---
	CallProcessRecordsEvenForEmptyRecordList bool
	TaskBackoffTime                          time.Duration
	LogWarningForTaskAfter                   *time.Duration
	MetricsBufferTime                        time.Duration
	MetricsMaxQueueSize                      int
	MetricsLevel                             string
	MetricsEnabledDimensions                 []string

	// --- retrieval ---
	RetrievalMode                            RetrievalMode // resolved: FANOUT or POLLING
	MaxRecords                               int
	IdleTimeBetweenReads                     time.Duration
	MillisBehindLatestThresholdForReducedTps time.Duration
	RetryGetRecordsInSeconds                 *int
	MaxGetRecordsThreadPool                  *int
	Fanout                                   FanoutConfig

	// --- multilangd extensions (not in Java; documented in docs/compatibility.md) ---
	// ChildStderrLevel is the zap level child stderr lines are logged at.
	ChildStderrLevel string
	// LogLevel / LogFormat: daemon logging (flag and env override these).
	LogLevel  string
	LogFormat string // "console" | "json"
	// MetricsListenAddress: Prometheus /metrics and /healthz listen address; "" = off.
	MetricsListenAddress string
	// ChildShutdownGrace bounds waiting for a child to exit after stdin is closed
	// before its process group gets SIGTERM, then SIGKILL.
	ChildShutdownGrace time.Duration
	// MaxChildFailures: consecutive child failures on one shard before its lease
	// is released so another worker can try (architecture decision 3).
	MaxChildFailures int
	// MemoryBudgetBytes is the daemon's memory budget (memoryBudgetBytes,
	// multilangd extension); 0 derives it from GOMEMLIMIT or a constant
	// (daemon/assemble).
	MemoryBudgetBytes int64
	// StuckShardThreshold: a shard with data but no progress for this long
	// is reported by the stuck-shard watchdog; 0 = off (docs/operations.md).
	StuckShardThreshold time.Duration
	// StuckShardRestartChild restarts a stuck shard's child.
	StuckShardRestartChild bool
	// StuckShardFailsReadiness makes /readyz fail while a shard is stuck.
	StuckShardFailsReadiness bool
	// ReadinessUnreachableThreshold: /readyz fails once the lease table or
	// the stream has not answered for this long.
	ReadinessUnreachableThreshold time.Duration

	// Lines maps each canonical key that was set in the file to the line of
	// the entry that took effect (absent keys hold their defaults).
	Lines map[string]int

	// Warnings collects non-fatal findings (unknown keys, ignored 1.x keys, ...)
	// in file order, each naming file:line and key.
	Warnings []Warning
}

// TableConfig is one 3.x metadata table's configuration.
type TableConfig struct {
	TableName                  string
	BillingMode                string // PAY_PER_REQUEST | PROVISIONED
	ReadCapacity               int64
	WriteCapacity              int64
	PointInTimeRecoveryEnabled bool
	DeletionProtectionEnabled  bool
	Tags                       map[string]string
}

// FanoutConfig holds the fanoutConfig.* keys.
type FanoutConfig struct {
	ConsumerARN                      string
	ConsumerName                     string // default ApplicationName
	MaxDescribeStreamSummaryRetries  int
	MaxDescribeStreamConsumerRetries int
	RegisterStreamConsumerRetries    int
	RetryBackoff                     time.Duration
}

// CredentialsProvider is one entry of an AwsCredentialsProvider chain, e.g.
// "ProfileCredentialsProvider|dev" gives Name "ProfileCredentialsProvider" and
// Args ["dev"]. Name is normalised to the SDK v2 short name (v1 aliases and
// fully-qualified class names are mapped by the parser).
type CredentialsProvider struct {
	Name string
	Args []string
	// Raw is the entry as written, for messages.
	Raw string
}

// Warning is a non-fatal finding while loading a properties file.
type Warning struct {
	File    string
	Line    int
	Key     string
	Message string
}

func (w Warning) String() string {
	return w.File + ":" + strconv.Itoa(w.Line) + ": " + w.Key + ": " + w.Message
}
