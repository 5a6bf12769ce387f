package properties

import "time"

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
// file. Every field holds the Java *effective* default when the key is absent.
// Pointer fields are "unset" when nil (Java wrapper types with no default).
type Config struct {
	// Source is the path the configuration was loaded from.
	Source string

	// --- daemon / process ---
	ExecutableName     string // required
	ProcessingLanguage string
	MaxActiveThreads   int
	TimeoutInSeconds   *int          // nil = no per-message timeout
	ShutdownGrace      time.Duration // shutdownGraceMillis, Java default 0

	// --- application, stream, identity ---
	ApplicationName string // required
	StreamName      string // from streamArn when that is set
	StreamARN       string
	TableName       string // default ApplicationName
	WorkerID        string // default random UUID; explicit "" kept
	RegionName      string // "" = SDK default chain

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
	FailoverTime                     time.Duration // failoverTimeMillis 10000
	LeaseAssignmentInterval          time.Duration // 2 x failover
	ShardSyncInterval                time.Duration // 60000
	CleanupLeasesUponShardCompletion bool          // true; false is honoured (divergence)
	IgnoreUnexpectedChildShards      bool
	MaxLeasesForWorker               int  // MaxInt32
	MaxLeasesToStealAtOneTime        int  // 1
	EnablePriorityLeaseAssignment    bool // true
	InitialLeaseTableReadCapacity    int  // 10
	InitialLeaseTableWriteCapacity   int  // 10
	LeaseTableBillingProvisioned     bool // multilangd extension key leaseTableBillingMode=PROVISIONED; default PAY_PER_REQUEST
	LeaseTableDeletionProtection     bool
	LeaseTablePitrEnabled            bool
	LeaseTableScanTotalSegments      *int
	MaxLeaseRenewalThreads           int           // 20
	ListShardsBackoffTime            time.Duration // 1500
	MaxListShardsRetryAttempts       int           // 50

	// --- graceful hand-off (3.x) ---
	GracefulLeaseHandoffTimeout time.Duration // 30000
	GracefulLeaseHandoffEnabled bool          // true

	// --- worker-utilization-aware assignment (3.x; parsed, not used yet) ---
	InMemoryWorkerMetricsCaptureFrequency  time.Duration // 1000
	WorkerMetricsReporterFreq              time.Duration // 30000
	NoOfPersistedMetricsPerWorkerMetrics   int           // 10
	DisableWorkerMetrics                   bool
	MaxThroughputPerHostKBps               float64       // +Inf when unset (Java Double.MAX_VALUE)
	DampeningPercentage                    int           // 60
	ReBalanceThresholdPercentage           int           // 10
	AllowThroughputOvershoot               bool          // true
	VarianceBalancingFrequency             int           // 3
	WorkerMetricsEMAAlpha                  float64       // 0.5
	StaleWorkerMetricsEntryCleanupDuration time.Duration // P1D

	// --- 3.x metadata tables ---
	WorkerMetricsTable    TableConfig
	CoordinatorStateTable TableConfig

	// --- coordinator ---
	ParentShardPollInterval                          time.Duration // 10000
	SkipShardSyncAtWorkerInitializationIfLeasesExist bool
	SchedulerInitializationBackoffTime               time.Duration // 1000
	ClientVersionConfig                              string        // CLIENT_VERSION_CONFIG_3X
	MigrateAllEntitiesToLeaseTable                   bool
	TableMigrationCompleteBakeTime                   time.Duration // 86400 s, clamped 3600..604800

	// --- processing / lifecycle / metrics ---
	CallProcessRecordsEvenForEmptyRecordList bool
	TaskBackoffTime                          time.Duration  // 500
	LogWarningForTaskAfter                   *time.Duration // unset
	MetricsBufferTime                        time.Duration  // 10000
	MetricsMaxQueueSize                      int            // 10000
	MetricsLevel                             string         // NONE|SUMMARY|DETAILED, default DETAILED
	MetricsEnabledDimensions                 []string       // default [ALL]

	// --- retrieval ---
	RetrievalMode                            RetrievalMode // resolved: FANOUT or POLLING
	MaxRecords                               int           // 10000 (max 10000)
	IdleTimeBetweenReads                     time.Duration // 1500, clamped to >= 200 ms
	MillisBehindLatestThresholdForReducedTps time.Duration // 0 = off
	RetryGetRecordsInSeconds                 *int
	MaxGetRecordsThreadPool                  *int
	Fanout                                   FanoutConfig

	// --- multilangd extensions (not in Java; documented in docs/compatibility.md) ---
	// ChildStderrLevel is the zap level child stderr lines are logged at (default "info").
	ChildStderrLevel string
	// LogLevel / LogFormat: daemon logging (flag and env override these).
	LogLevel  string // default "info"
	LogFormat string // "console" | "json", default "console"
	// MetricsListenAddress: Prometheus /metrics and /healthz listen address; "" = off.
	MetricsListenAddress string
	// ChildShutdownGrace bounds waiting for a child to exit after stdin is closed
	// before its process group gets SIGTERM, then SIGKILL.
	ChildShutdownGrace time.Duration // default 5s
	// MaxChildFailures: consecutive child failures on one shard before its lease
	// is released so another worker can try (architecture decision 3).
	MaxChildFailures int // default 3

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
	ConsumerName                     string        // default ApplicationName
	MaxDescribeStreamSummaryRetries  int           // 10
	MaxDescribeStreamConsumerRetries int           // 10
	RegisterStreamConsumerRetries    int           // 10
	RetryBackoff                     time.Duration // 1000 ms
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
	return w.File + ":" + itoa(w.Line) + ": " + w.Key + ": " + w.Message
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	neg := i < 0
	if neg {
		i = -i
	}
	var b [20]byte
	p := len(b)
	for i > 0 {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
	}
	if neg {
		p--
		b[p] = '-'
	}
	return string(b[p:])
}
