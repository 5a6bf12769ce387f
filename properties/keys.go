package properties

// The key registry below is the single source of every configuration fact:
// each key's parser, type, Java effective default, section, description and
// how `validate` shows it. Defaults(), Config.Settings (the `validate`
// listing) and the key tables of docs/configuration.md are derived from it.
//
// How to add a key:
//  1. add the field to Config (config.go);
//  2. add one keySpec to registry below, in its section: name, kind (the
//     value's parser, e.g. millis(1, func(c *Config) *time.Duration { ... })),
//     def (Java's effective default as it would be written in the file),
//     doc, and extension: true for a multilangd-only key;
//  3. add a row to TestEveryKey (load_test.go);
//  4. run `make docs` (go generate ./properties) to regenerate the tables in
//     docs/configuration.md.
//
// Guard tests: TestEveryKey fails for a key without a test row,
// TestRegistryComplete for a key without type, description or section,
// TestDefaultsApply for a default the parser rejects,
// TestConfigurationDocIsGenerated when docs/configuration.md was not
// regenerated, and TestCompatibilityListsInertKeys for an inert key that
// docs/compatibility.md does not list.

//go:generate go run ./gendoc ../docs/configuration.md

import (
	"math"
	"slices"
	"strings"
	"time"
)

// keySpec describes one known key.
type keySpec struct {
	// name is the canonical spelling.
	name string
	// section groups the key in `validate` and in docs/configuration.md.
	section string
	kind
	// def is Java's effective default written as a value of the key;
	// Defaults() applies it. "" when the default is derived from other keys
	// (see Parse) or there is none.
	def string
	// defDoc replaces def in the docs where def is "" or says too little.
	defDoc string
	// unset is what `validate` shows for an empty or nil value.
	unset string
	// doc is the docs' description.
	doc string
	// required: Load fails without the key.
	required bool
	// polling marks the keys that switch retrievalMode DEFAULT to polling
	// when set to a non-zero value.
	polling bool
	// inert is set on keys that are parsed and validated but not acted on:
	// loading them warns, so nobody relies on them silently.
	inert bool
	// javaNoOp marks inert keys that the Java daemon 2.x/3.x ignores too;
	// their warning says so instead of "not yet".
	javaNoOp bool
	// extension marks multilangd-only keys (Java ignores them).
	extension bool
	// listed reports whether `validate` lists the key for this config (nil:
	// always), e.g. polling keys only in polling mode.
	listed func(*Config) bool
}

// Credentials keys after Java's case-insensitive prefix rewrite.
const (
	keyCredentials           = "awsCredentialsProvider"
	keyCredentialsDynamoDB   = "awsCredentialsProviderDynamoDB"
	keyCredentialsCloudWatch = "awsCredentialsProviderCloudWatch"
)

const maxInt32 = math.MaxInt32

// Sections, in the order of `validate` and docs/configuration.md.
const (
	secDaemon      = "daemon"
	secApplication = "application"
	secAWS         = "aws"
	secPosition    = "initial position"
	secLease       = "lease management"
	secUtilization = "worker utilization (3.x)"
	secTables      = "3.x metadata tables"
	secCoordinator = "coordinator"
	secProcessing  = "processing and metrics"
	secRetrieval   = "retrieval"
	secExtensions  = "multilangd"
)

// sections lists every section once, in order.
var sections = []string{secDaemon, secApplication, secAWS, secPosition, secLease, secUtilization,
	secTables, secCoordinator, secProcessing, secRetrieval, secExtensions}

func isPolling(c *Config) bool     { return c.RetrievalMode == RetrievalPolling }
func isFanout(c *Config) bool      { return c.RetrievalMode != RetrievalPolling }
func isMultiStream(c *Config) bool { return c.MultiStream() }

// registry lists every supported key, in display order.
var registry = slices.Concat(
	section(secDaemon,
		keySpec{name: "executableName", kind: str(func(c *Config) *string { return &c.ExecutableName }), required: true,
			doc: "record processor command line, split on spaces (no shell, no quoting); started once per shard lease"},
		keySpec{name: "processingLanguage", kind: str(func(c *Config) *string { return &c.ProcessingLanguage }), unset: "(unset)",
			doc: "informational only"},
		keySpec{name: "maxActiveThreads", kind: integer(math.MinInt32, maxInt32, func(c *Config) *int { return &c.MaxActiveThreads }), def: "0", inert: true,
			doc: "multilangd does not use a bounded thread pool"},
		keySpec{name: "timeoutInSeconds", kind: intPtr(1, maxInt32, func(c *Config) **int { return &c.TimeoutInSeconds }),
			defDoc: "unset (no timeout)", unset: "(unset: no per-message timeout)",
			doc: "a child silent for this long during an action is killed; only its shard is affected"},
		keySpec{name: "shutdownGraceMillis", kind: millis(0, func(c *Config) *time.Duration { return &c.ShutdownGrace }), def: "0",
			doc: "graceful-stop budget on SIGTERM/SIGINT: the deadline is max(this, 20 s), then remaining children are killed"},
	),
	section(secApplication,
		keySpec{name: "applicationName", kind: str(func(c *Config) *string { return &c.ApplicationName }), required: true,
			doc: "lease table name, CloudWatch namespace, default fan-out consumer name, prefix of the 3.x tables"},
		keySpec{name: "streamName", kind: str(func(c *Config) *string { return &c.StreamName }),
			doc: "required unless `streamArn` is set"},
		keySpec{name: "streamArn", kind: typed(str(func(c *Config) *string { return &c.StreamARN }), "stream ARN"), unset: "(unset)",
			doc: "`arn:aws:kinesis:<region>:<account>:stream/<name>`; overrides `streamName` (with a warning): the stream name is taken from the ARN and stream calls address the stream by name, as Java's MultiLangDaemon does (see compatibility.md)"},
		keySpec{name: "streams", kind: streamsKind(), unset: "(single stream)", extension: true,
			doc: "multi-stream application (Java `MultiStreamTracker`): comma-separated streams, each a name, an ARN or a Java stream identifier `account:streamName:creationEpoch`, optionally followed by `=LATEST`, `=TRIM_HORIZON` or `=AT_TIMESTAMP:<epoch seconds>` (default `initialPositionInStream`); `streamName`/`streamArn` are then ignored, lease keys are Java's multi-stream keys and a SIGHUP reload adds or removes streams ([multi-stream](multistream.md))"},
		keySpec{name: "formerStreamsLeasesDeletionStrategy", kind: enum(func(c *Config) *string { return &c.FormerStreamsLeasesDeletionStrategy }, FormerStreamsAutoDetectionDeferredDeletion, NoStreamsLeasesDeletion),
			def: FormerStreamsAutoDetectionDeferredDeletion, extension: true, listed: isMultiStream,
			doc: "multi-stream: what happens to the leases of a stream no longer in `streams` (Java `FormerStreamsLeasesDeletionStrategy`): deleted after `waitPeriodToDeleteFormerStreamsMillis`, or kept"},
		keySpec{name: "waitPeriodToDeleteFormerStreamsMillis", kind: millis(0, func(c *Config) *time.Duration { return &c.WaitPeriodToDeleteFormerStreams }), def: "3600000", extension: true, listed: isMultiStream,
			doc: "multi-stream: how long a stream must stay out of `streams` before its leases are deleted (Java `waitPeriodToDeleteFormerStreams`)"},
		keySpec{name: "streamsCheckIntervalMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.StreamsCheckInterval }), def: "60000", extension: true, listed: isMultiStream,
			doc: "multi-stream: how often the stream list is compared with the lease table and former streams' leases are deleted (Java `NEW_STREAM_CHECK_INTERVAL_MILLIS`)"},
		keySpec{name: "tableName", kind: str(func(c *Config) *string { return &c.TableName }), defDoc: "`applicationName`",
			doc: "lease table"},
		keySpec{name: "workerId", kind: workerID(), defDoc: "random UUID",
			doc: "worker identity in the lease table; an explicitly empty value is an error (every worker using the file would share it)"},
	),
	section(secAWS,
		keySpec{name: "regionName", kind: region(func(c *Config) *string { return &c.RegionName }),
			defDoc: "SDK default chain (`AWS_REGION`, profile, EC2 instance metadata)", unset: "(SDK default chain)",
			doc: "region of all three clients"},
		keySpec{name: "kinesisClient.region", kind: region(func(c *Config) *string { return &c.KinesisRegion }), defDoc: "`regionName`", unset: "(regionName)",
			doc: "Kinesis client region"},
		keySpec{name: "dynamoDbClient.region", kind: region(func(c *Config) *string { return &c.DynamoDBRegion }), defDoc: "`regionName`", unset: "(regionName)",
			doc: "DynamoDB client region"},
		keySpec{name: "cloudWatchClient.region", kind: region(func(c *Config) *string { return &c.CloudWatchRegion }), defDoc: "`regionName`", unset: "(regionName)",
			doc: "CloudWatch client region"},
		keySpec{name: "kinesisEndpoint", kind: endpoint(func(c *Config) *string { return &c.KinesisEndpoint }), defDoc: "AWS", unset: "(AWS)",
			doc: "Kinesis endpoint, e.g. `http://localhost:4567`"},
		keySpec{name: "dynamoDBEndpoint", kind: endpoint(func(c *Config) *string { return &c.DynamoDBEndpoint }), defDoc: "AWS", unset: "(AWS)",
			doc: "DynamoDB endpoint"},
		keySpec{name: "cloudWatchClient.endpointOverride", kind: endpoint(func(c *Config) *string { return &c.CloudWatchEndpoint }), defDoc: "AWS", unset: "(AWS)",
			doc: "CloudWatch endpoint"},
		keySpec{name: keyCredentials, kind: credentials(func(c *Config) *[]CredentialsProvider { return &c.CredentialsKinesis }), required: true,
			doc: "credentials of the Kinesis client, and of the other two unless set below"},
		keySpec{name: keyCredentialsDynamoDB, kind: credentials(func(c *Config) *[]CredentialsProvider { return &c.CredentialsDynamoDB }), defDoc: "`AwsCredentialsProvider`",
			doc: "DynamoDB client credentials"},
		keySpec{name: keyCredentialsCloudWatch, kind: credentials(func(c *Config) *[]CredentialsProvider { return &c.CredentialsCloudWatch }), defDoc: "`AwsCredentialsProvider`",
			doc: "CloudWatch client credentials"},
	),
	section(secPosition,
		keySpec{name: "initialPositionInStream", kind: initialPosition(), def: string(PositionLatest),
			listed: func(c *Config) bool { return c.InitialPosition != PositionAtTimestamp },
			doc:    "where a shard without a checkpoint starts"},
		keySpec{name: "initialPositionInStreamExtended", kind: initialTimestamp(),
			listed: func(c *Config) bool { return c.InitialPosition == PositionAtTimestamp },
			doc:    "start at that time (AT_TIMESTAMP); wins over `initialPositionInStream`"},
	),
	section(secLease,
		keySpec{name: "failoverTimeMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.FailoverTime }), def: "10000",
			doc: "a lease not renewed for this long may be taken"},
		keySpec{name: "leaseAssignmentIntervalMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.LeaseAssignmentInterval }), defDoc: "2 × `failoverTimeMillis`",
			doc: "KCL 3.x: how often the lease assignment manager runs (every worker; it acts only on the Leader-lock holder). In 2.x mode the taker runs every 2 × (`failoverTimeMillis` + 25 ms) instead"},
		keySpec{name: "dynamoDbLockBasedLeaderLeaseDurationInMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.LeaderLockLeaseDuration }), def: "120000", extension: true,
			doc: "KCL 3.x `Leader` lock: how long the lock stays its holder's without a heartbeat landing, and how long another worker must see it unchanged before taking it over (Java `LeaseManagementConfig.dynamoDbLockBasedLeaderLeaseDurationInMillis`, which Java's MultiLangDaemon does not expose)"},
		keySpec{name: "dynamoDbLockBasedLeaderHeartbeatPeriodInMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.LeaderLockHeartbeatPeriod }), def: "30000", extension: true,
			doc: "KCL 3.x `Leader` lock: how often its holder heart-beats it, and how long a worker reuses a \"not the leader\" answer (`LeaseManagementConfig.dynamoDbLockBasedLeaderHeartbeatPeriodInMillis`); at most half the lease duration, as the lock client requires"},
		keySpec{name: "shardSyncIntervalMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.ShardSyncInterval }), def: "60000",
			doc: "periodic shard sync"},
		keySpec{name: "cleanupLeasesUponShardCompletion", kind: cleanupLeases(), def: "true",
			doc: "delete leases of finished shards (`false` is honoured, unlike Java)"},
		keySpec{name: "ignoreUnexpectedChildShards", kind: boolean(func(c *Config) *bool { return &c.IgnoreUnexpectedChildShards }), def: "false",
			doc: "shard sync skips an open child shard of a still-open (or missing) parent instead of failing the sync"},
		keySpec{name: "maxLeasesForWorker", kind: integer(1, maxInt32, func(c *Config) *int { return &c.MaxLeasesForWorker }), def: "2147483647",
			doc: "most leases this worker holds"},
		keySpec{name: "maxLeasesToStealAtOneTime", kind: integer(1, maxInt32, func(c *Config) *int { return &c.MaxLeasesToStealAtOneTime }), def: "1",
			doc: "most leases taken from other live workers per taker run"},
		keySpec{name: "enablePriorityLeaseAssignment", kind: boolean(func(c *Config) *bool { return &c.EnablePriorityLeaseAssignment }), def: "true",
			doc: "the taker first takes leases not renewed for 3 × `failoverTimeMillis`"},
		keySpec{name: "leaseTableBillingMode", kind: leaseTableBillingMode(), def: BillingPayPerRequest, extension: true,
			doc: "billing mode when multilangd creates the lease table"},
		keySpec{name: "leaseTableCreate", kind: enum(func(c *Config) *string { return &c.LeaseTableCreate }, LeaseTableCreateIfNotExists, LeaseTableCreateNever), def: LeaseTableCreateIfNotExists, extension: true,
			doc: "`IF_NOT_EXISTS` describes the lease table at start-up and creates it when missing (Java's behaviour; of several workers starting together exactly one creates it, the others wait for it to become ACTIVE). `NEVER` (tables provisioned with CloudFormation or Terraform) never calls `CreateTable`: a missing table is a start-up error (exit 1) that prints the table's schema, as `multilangd table schema` does"},
		keySpec{name: "initialLeaseTableReadCapacity", kind: integer(1, maxInt32, func(c *Config) *int { return &c.InitialLeaseTableReadCapacity }), def: "10",
			doc: "used with `leaseTableBillingMode = PROVISIONED`"},
		keySpec{name: "initialLeaseTableWriteCapacity", kind: integer(1, maxInt32, func(c *Config) *int { return &c.InitialLeaseTableWriteCapacity }), def: "10",
			doc: "used with `leaseTableBillingMode = PROVISIONED`"},
		keySpec{name: "leaseTableDeletionProtectionEnabled", kind: boolean(func(c *Config) *bool { return &c.LeaseTableDeletionProtection }), def: "false",
			doc: "used when multilangd creates the lease table"},
		keySpec{name: "leaseTablePitrEnabled", kind: boolean(func(c *Config) *bool { return &c.LeaseTablePitrEnabled }), def: "false", inert: true,
			doc: "point-in-time recovery is not enabled on a table multilangd creates"},
		keySpec{name: "leaseTableScanTotalSegments", kind: intPtr(1, maxInt32, func(c *Config) **int { return &c.LeaseTableScanTotalSegments }),
			defDoc: "unset", unset: "(serial)",
			doc: "every lease-table scan (taker, leader election, shard sync, auditor) runs as a parallel scan of this many segments; unset scans serially, as the Java 2.x taker"},
		keySpec{name: "maxLeaseRenewalThreads", kind: integer(1, maxInt32, func(c *Config) *int { return &c.MaxLeaseRenewalThreads }), def: "20",
			doc: "renewals in flight at once"},
		keySpec{name: "listShardsBackoffTimeInMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.ListShardsBackoffTime }), def: "1500",
			doc: "pause before retrying a ListShards call the stream's state refused"},
		keySpec{name: "maxListShardsRetryAttempts", kind: integer(1, maxInt32, func(c *Config) *int { return &c.MaxListShardsRetryAttempts }), def: "50",
			doc: "ListShards attempts per listing"},
		keySpec{name: "leaseCleanupIntervalMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.LeaseCleanupInterval }), def: "60000", extension: true,
			doc: "how often the lease cleaner looks at its queue (Java `LeaseCleanupConfig.leaseCleanupIntervalMillis`, which Java's MultiLangDaemon does not expose)"},
		keySpec{name: "completedLeaseCleanupIntervalMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.CompletedLeaseCleanupInterval }), def: "300000", extension: true,
			doc: "how often leases of finished shards are examined for deletion (`LeaseCleanupConfig.completedLeaseCleanupIntervalMillis`)"},
		keySpec{name: "garbageLeaseCleanupIntervalMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.GarbageLeaseCleanupInterval }), def: "1800000", extension: true,
			doc: "how often leases of shards that no longer exist are examined for deletion (`LeaseCleanupConfig.garbageLeaseCleanupIntervalMillis`)"},
		keySpec{name: "gracefulLeaseHandoffTimeoutMillis", kind: millis(0, func(c *Config) *time.Duration { return &c.GracefulLeaseHandoffTimeout }), def: "30000",
			doc: "KCL 3.x graceful hand-off away from this worker: how long the shard's child has (`shutdownRequested`, final checkpoint) before the lease is transferred to its new owner anyway (checked every 2 s); as leader, how long a pending hand-off is waited for before the lease is re-assigned"},
		keySpec{name: "isGracefulLeaseHandoffEnabled", kind: boolean(func(c *Config) *bool { return &c.GracefulLeaseHandoffEnabled }), def: "true",
			doc: "as KCL 3.x leader, move live leases by graceful hand-off (`false`: plain re-assignment, the old owner sees a lost lease); a hand-off requested by another leader is always honoured, as in Java"},
	),
	section(secUtilization,
		keySpec{name: "inMemoryWorkerMetricsCaptureFrequencyMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.InMemoryWorkerMetricsCaptureFrequency }), def: "1000",
			doc: "how often the worker's CPU is sampled for its KCL 3.x worker metrics"},
		keySpec{name: "workerMetricsReporterFreqInMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.WorkerMetricsReporterFreq }), def: "30000",
			doc: "how often the KCL 3.x WorkerMetricStats item is written, while the table's client version asks for it (compatibility.md)"},
		keySpec{name: "noOfPersistedMetricsPerWorkerMetrics", kind: integer(1, maxInt32, func(c *Config) *int { return &c.NoOfPersistedMetricsPerWorkerMetrics }), def: "10",
			doc: "values kept in the worker-metrics item's history (`sts`)"},
		keySpec{name: "disableWorkerMetrics", kind: boolean(func(c *Config) *bool { return &c.DisableWorkerMetrics }), def: "false",
			doc: "publish throughput-only worker metrics (no CPU figure)"},
		keySpec{name: "maxThroughputPerHostKBps", kind: float(0, false, math.Inf(1), func(c *Config) *float64 { return &c.MaxThroughputPerHostKBps }),
			def: "1.7976931348623157E308", defDoc: "unlimited", unset: "(unlimited)",
			doc: "KCL 3.x leader: most throughput assigned to one worker"},
		keySpec{name: "dampeningPercentage", kind: integer(1, 100, func(c *Config) *int { return &c.DampeningPercentage }), def: "60",
			doc: "KCL 3.x leader: share of a loaded worker's excess that one balancing run moves"},
		keySpec{name: "reBalanceThresholdPercentage", kind: integer(1, 100, func(c *Config) *int { return &c.ReBalanceThresholdPercentage }), def: "10",
			doc: "KCL 3.x leader: balancing starts when a worker is this far from the fleet average"},
		keySpec{name: "allowThroughputOvershoot", kind: boolean(func(c *Config) *bool { return &c.AllowThroughputOvershoot }), def: "true",
			doc: "KCL 3.x leader: balancing may move a donor's smallest lease even if that overshoots"},
		keySpec{name: "varianceBalancingFrequency", kind: integer(1, maxInt32, func(c *Config) *int { return &c.VarianceBalancingFrequency }), def: "3",
			doc: "KCL 3.x leader: balance on every n-th lease assignment run (and the first after gaining the lock)"},
		keySpec{name: "leaseAssignmentStrategy", kind: enum(func(c *Config) *string { return &c.LeaseAssignmentStrategy }, LeaseAssignmentWorkerUtilizationAware, LeaseAssignmentLeaseCountBased),
			def: LeaseAssignmentWorkerUtilizationAware, extension: true,
			doc: "KCL 3.x leader: how leases are spread (Java `LeaseManagementConfig.leaseAssignmentStrategy`, which Java's MultiLangDaemon does not expose): by worker utilisation, or `LEASE_COUNT_BASED` (equal lease counts over the workers with live metrics)"},
		keySpec{name: "workerMetricsEMAAlpha", kind: float(0, false, 1, func(c *Config) *float64 { return &c.WorkerMetricsEMAAlpha }), def: "0.5",
			doc: "KCL 3.x leader: smoothing of each worker's metric history"},
		keySpec{name: "staleWorkerMetricsEntryCleanupDuration", kind: isoDuration(func(c *Config) *time.Duration { return &c.StaleWorkerMetricsEntryCleanupDuration }), def: "P1D",
			doc: "KCL 3.x leader: deletes WorkerMetricStats entries not updated for this long"},
	),
	section(secTables, slices.Concat(
		tableKeys("workerMetrics", "WorkerMetricStats", func(c *Config) *TableConfig { return &c.WorkerMetricsTable }),
		tableKeys("coordinatorState", "CoordinatorState", func(c *Config) *TableConfig { return &c.CoordinatorStateTable }),
	)...),
	section(secCoordinator,
		keySpec{name: "parentShardPollIntervalMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.ParentShardPollInterval }), def: "10000",
			doc: "how often a child shard checks whether its parents are done"},
		keySpec{name: "skipShardSyncAtWorkerInitializationIfLeasesExist", kind: boolean(func(c *Config) *bool { return &c.SkipShardSyncAtWorkerInitializationIfLeasesExist }), def: "false",
			doc: "skip the start-up shard sync when the lease table has leases"},
		keySpec{name: "schedulerInitializationBackoffTimeMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.SchedulerInitializationBackoffTime }), def: "1000",
			doc: "pause between the (up to 20) start-up shard sync attempts"},
		keySpec{name: "clientVersionConfig", kind: enum(func(c *Config) *string { return &c.ClientVersionConfig }, ClientVersion3X, ClientVersionCompatible2X, ClientVersionCompatible2XPhase1),
			def: ClientVersion3X,
			doc: "KCL 3.x client version policy, applied to the table's `Migration3.0` item as Java does. Written in the file as `CLIENT_VERSION_CONFIG_3X`, a worker on a table without `Migration3.0` creates it (a new 3.x fleet); left at the default it writes nothing, runs in 2.x mode and follows a later upgrade (compatibility.md)"},
		keySpec{name: "migrateAllEntitiesToLeaseTable", kind: boolean(func(c *Config) *bool { return &c.MigrateAllEntitiesToLeaseTable }), def: "false", inert: true,
			doc: "KCL 3.5 moves the 3.x metadata items into the lease table"},
		keySpec{name: "tableMigrationCompleteBakeTimeSeconds", kind: bakeTime(), def: "86400", inert: true},
		keySpec{name: "shardPrioritization", kind: rejected("cannot be set from a properties file (Java fails at startup too)"),
			doc: "cannot be set from a file (error, as in Java)"},
	),
	section(secProcessing,
		keySpec{name: "callProcessRecordsEvenForEmptyRecordList", kind: boolean(func(c *Config) *bool { return &c.CallProcessRecordsEvenForEmptyRecordList }), def: "false",
			doc: "send `processRecords` with `records: []`"},
		keySpec{name: "taskBackoffTimeMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.TaskBackoffTime }), def: "500",
			doc: "pause before a failed shard task is retried (doubling up to 30 s)"},
		keySpec{name: "logWarningForTaskAfterMillis", kind: millisPtr(1, func(c *Config) **time.Duration { return &c.LogWarningForTaskAfter }),
			defDoc: "off", unset: "(off)", inert: true,
			doc: "Java warns when a task runs longer; use `timeoutInSeconds` to bound a child action"},
		keySpec{name: "metricsBufferTimeMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.MetricsBufferTime }), def: "10000",
			doc: "CloudWatch: how long datums are aggregated locally before they are published (earlier once 200 are queued)"},
		keySpec{name: "metricsMaxQueueSize", kind: integer(1, maxInt32, func(c *Config) *int { return &c.MetricsMaxQueueSize }), def: "10000",
			doc: "CloudWatch: distinct metrics held locally; beyond it new ones are dropped (bounded memory while CloudWatch is down)"},
		keySpec{name: "metricsLevel", kind: enum(func(c *Config) *string { return &c.MetricsLevel }, "NONE", "SUMMARY", "DETAILED"), def: "DETAILED",
			doc: "CloudWatch: `NONE` publishes nothing (and needs no CloudWatch credentials), `SUMMARY` leaves out the DETAILED datums ([operations](operations.md#cloudwatch-metrics))"},
		keySpec{name: "metricsEnabledDimensions", kind: dimensions(), def: "ALL",
			doc: "CloudWatch: the dimensions kept (`Operation`, `ShardId`, `WorkerIdentifier`, or `ALL`), separated by commas or whitespace; as in Java, a list without `Operation` drops it too"},
		keySpec{name: "validateSequenceNumberBeforeCheckpointing", kind: noEffect("bool", "accepted but has no effect in KCL 2.x/3.x or multilangd"),
			doc: "accepted, no effect in Java 2.x/3.x either (warning)"},
	),
	section(secRetrieval,
		keySpec{name: "retrievalMode", kind: retrievalMode(), def: string(RetrievalDefault),
			doc: "DEFAULT = enhanced fan-out unless a polling key below is set to a non-zero value, then polling"},
		keySpec{name: "maxRecords", kind: integer(1, 10000, func(c *Config) *int { return &c.MaxRecords }), def: "10000", polling: true, listed: isPolling,
			doc: "polling: records per GetRecords"},
		keySpec{name: "idleTimeBetweenReadsInMillis", kind: idleTime(), def: "1500", polling: true, listed: isPolling,
			doc: "polling: pause between GetRecords calls"},
		keySpec{name: "millisBehindLatestThresholdForReducedTps", kind: millis(0, func(c *Config) *time.Duration { return &c.MillisBehindLatestThresholdForReducedTps }),
			def: "0", defDoc: "0 (off)", polling: true, listed: isPolling,
			doc: "polling: while the last response's MillisBehindLatest is below this, calls are at least this far apart"},
		keySpec{name: "retryGetRecordsInSeconds", kind: intPtr(1, maxInt32, func(c *Config) **int { return &c.RetryGetRecordsInSeconds }),
			defDoc: "unset", unset: "(unset)", polling: true, inert: true, javaNoOp: true, listed: isPolling,
			doc: "a no-op in Java 2.x/3.x too; still selects polling under DEFAULT"},
		keySpec{name: "maxGetRecordsThreadPool", kind: intPtr(1, maxInt32, func(c *Config) **int { return &c.MaxGetRecordsThreadPool }),
			defDoc: "unset", unset: "(unset)", polling: true, inert: true, javaNoOp: true, listed: isPolling,
			doc: "a no-op in Java 2.x/3.x too; still selects polling under DEFAULT"},
		keySpec{name: "fanoutConfig.consumerArn", kind: typed(str(func(c *Config) *string { return &c.Fanout.ConsumerARN }), "consumer ARN"),
			unset: "(register fanoutConfig.consumerName)", listed: isFanout,
			doc: "use an existing fan-out consumer"},
		keySpec{name: "fanoutConfig.consumerName", kind: str(func(c *Config) *string { return &c.Fanout.ConsumerName }), defDoc: "`applicationName`", listed: isFanout,
			doc: "consumer to register"},
		keySpec{name: "fanoutConfig.maxDescribeStreamSummaryRetries", kind: integer(1, maxInt32, func(c *Config) *int { return &c.Fanout.MaxDescribeStreamSummaryRetries }), def: "10", listed: isFanout,
			doc: "DescribeStreamSummary attempts at start-up"},
		keySpec{name: "fanoutConfig.maxDescribeStreamConsumerRetries", kind: integer(1, maxInt32, func(c *Config) *int { return &c.Fanout.MaxDescribeStreamConsumerRetries }), def: "10", listed: isFanout,
			doc: "DescribeStreamConsumer attempts while the consumer becomes active"},
		keySpec{name: "fanoutConfig.registerStreamConsumerRetries", kind: integer(1, maxInt32, func(c *Config) *int { return &c.Fanout.RegisterStreamConsumerRetries }), def: "10", listed: isFanout,
			doc: "RegisterStreamConsumer attempts"},
		keySpec{name: "fanoutConfig.retryBackoffMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.Fanout.RetryBackoff }), def: "1000", listed: isFanout,
			doc: "pause between those attempts"},
	),
	section(secExtensions,
		keySpec{name: "logLevel", kind: logLevel(func(c *Config) *string { return &c.LogLevel }), def: "info", extension: true,
			doc: "overridden by `MULTILANGD_LOG_LEVEL` and `--log-level`"},
		keySpec{name: "logFormat", kind: logFormat(), def: "console", extension: true,
			doc: "overridden by `MULTILANGD_LOG_FORMAT` and `--log-format`"},
		keySpec{name: "childStderrLogLevel", kind: logLevel(func(c *Config) *string { return &c.ChildStderrLevel }), def: "info", extension: true,
			doc: "level of the log lines made from a child's stderr"},
		keySpec{name: "metricsListenAddress", kind: listenAddress(), defDoc: "off", unset: "(off)", extension: true,
			doc: "Prometheus `/metrics`, `/healthz` (liveness) and `/readyz` (readiness) ([operations](operations.md#metrics-and-health))"},
		keySpec{name: "childShutdownGraceMillis", kind: millis(0, func(c *Config) *time.Duration { return &c.ChildShutdownGrace }), def: "5000", extension: true,
			doc: "after closing a child's stdin, how long to wait before SIGTERM then SIGKILL of its process group; 0 signals at once without waiting"},
		keySpec{name: "maxChildFailures", kind: integer(1, maxInt32, func(c *Config) *int { return &c.MaxChildFailures }), def: "3", extension: true,
			doc: "consecutive child failures on a shard before its lease is released"},
		keySpec{name: "memoryBudgetBytes", kind: integer(0, math.MaxInt64, func(c *Config) *int64 { return &c.MemoryBudgetBytes }), def: "0", extension: true,
			defDoc: "0: `GOMEMLIMIT` when set, else 512 MiB",
			doc:    "the daemon's resident memory budget: records fetched and not yet processed by the children (all shards together) may hold about half of it beyond a 40 MiB base, GetRecords pauses on every shard while that is used up and sizes each call's `Limit` to what is left; unless `GOMEMLIMIT` is set, the Go runtime's soft memory limit is set to three quarters of it ([performance](performance.md#memory))"},
		keySpec{name: "stuckShardThresholdMillis", kind: millis(0, func(c *Config) *time.Duration { return &c.StuckShardThreshold }), def: "300000", extension: true,
			doc: "stuck-shard watchdog: a shard whose child has not answered, or that is behind (`MillisBehindLatest` > 0) without a batch delivered or a checkpoint, for this long is reported (WARN, `multilangd_shard_stuck`, CloudWatch `StuckShards`); 0 turns the watchdog off ([operations](operations.md#stuck-shard-watchdog))"},
		keySpec{name: "stuckShardRestartChild", kind: boolean(func(c *Config) *bool { return &c.StuckShardRestartChild }), def: "false", extension: true,
			doc: "the watchdog also restarts a stuck shard's child (it resumes from the checkpoint; the lease is kept)"},
		keySpec{name: "stuckShardFailsReadiness", kind: boolean(func(c *Config) *bool { return &c.StuckShardFailsReadiness }), def: "false", extension: true,
			doc: "`/readyz` fails while a shard is stuck"},
		keySpec{name: "readinessUnreachableThresholdMillis", kind: millis(1, func(c *Config) *time.Duration { return &c.ReadinessUnreachableThreshold }), def: "30000", extension: true,
			doc: "`/readyz` fails once the lease table or the stream has not answered for this long"},
	),
)

// section sets the section of keys.
func section(name string, keys ...keySpec) []keySpec {
	for i := range keys {
		keys[i].section = name
	}
	return keys
}

// tableKeys are the keys of one 3.x metadata table (Java's
// WorkerMetricsTableConfig / CoordinatorStateTableConfig); only the table
// names are used.
func tableKeys(prefix, suffix string, tc func(*Config) *TableConfig) []keySpec {
	provisioned := func(c *Config) bool { return tc(c).BillingMode == BillingProvisioned }
	return []keySpec{
		{name: prefix + "TableName", kind: str(func(c *Config) *string { return &tc(c).TableName }), defDoc: "`<applicationName>-" + suffix + "`",
			doc: "the KCL 3.0–3.4 " + suffix + " table; multilangd reads `Migration3.0` from a legacy CoordinatorState table and writes its worker metrics into the legacy WorkerMetricStats table until a 3.5 table migration completes"},
		{name: prefix + "BillingMode", kind: enum(func(c *Config) *string { return &tc(c).BillingMode }, BillingPayPerRequest, BillingProvisioned), def: BillingPayPerRequest, inert: true,
			doc: "multilangd never creates this table"},
		{name: prefix + "ReadCapacity", kind: integer(0, math.MaxInt64, func(c *Config) *int64 { return &tc(c).ReadCapacity }), def: "0", inert: true, listed: provisioned},
		{name: prefix + "WriteCapacity", kind: integer(0, math.MaxInt64, func(c *Config) *int64 { return &tc(c).WriteCapacity }), def: "0", inert: true, listed: provisioned},
		{name: prefix + "PointInTimeRecoveryEnabled", kind: boolean(func(c *Config) *bool { return &tc(c).PointInTimeRecoveryEnabled }), def: "false", inert: true},
		{name: prefix + "DeletionProtectionEnabled", kind: boolean(func(c *Config) *bool { return &tc(c).DeletionProtectionEnabled }), def: "false", inert: true},
		{name: prefix + "Tags", kind: tags(func(c *Config) *map[string]string { return &tc(c).Tags }), defDoc: "none", inert: true,
			listed: func(c *Config) bool { return len(tc(c).Tags) > 0 }},
	}
}

// knownKeys indexes registry by canonical name.
var knownKeys = func() map[string]keySpec {
	m := make(map[string]keySpec, len(registry))
	for _, k := range registry {
		m[k.name] = k
	}
	return m
}()

// Values of leaseAssignmentStrategy (Java LeaseAssignmentStrategy).
const (
	LeaseAssignmentWorkerUtilizationAware = "WORKER_UTILIZATION_AWARE"
	LeaseAssignmentLeaseCountBased        = "LEASE_COUNT_BASED"
)

// Client version values of clientVersionConfig.
const (
	ClientVersion3X                 = "CLIENT_VERSION_CONFIG_3X"
	ClientVersionCompatible2X       = "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X"
	ClientVersionCompatible2XPhase1 = "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X_PHASE1"
)

// Values of the leaseTableCreate extension key: IF_NOT_EXISTS creates a
// missing lease table (Java behaviour); NEVER makes it a start-up error that
// prints the table's schema (tables provisioned as code).
const (
	LeaseTableCreateIfNotExists = "IF_NOT_EXISTS"
	LeaseTableCreateNever       = "NEVER"
)

// Billing modes.
const (
	BillingPayPerRequest = "PAY_PER_REQUEST"
	BillingProvisioned   = "PROVISIONED"
)

// aliases maps alternative spellings to the canonical key. Java applies
// entries in hash order, so which of two conflicting spellings wins is
// arbitrary there; we take the later line and warn.
var aliases = map[string]string{
	"workerIdentifier":                "workerId",
	"kinesisClient.endpointOverride":  "kinesisEndpoint",
	"dynamoDbClient.endpointOverride": "dynamoDBEndpoint",
}

// beanPrefixes are the Java config-bean dotted forms whose inner names are
// the flat keys listed.
var beanPrefixes = map[string][]string{
	"pollingConfig.":                              keysWhere(func(k keySpec) bool { return k.polling }),
	"gracefulLeaseHandoffConfigBean.":             {"gracefulLeaseHandoffTimeoutMillis", "isGracefulLeaseHandoffEnabled"},
	"workerUtilizationAwareAssignmentConfigBean.": keysWhere(func(k keySpec) bool { return k.section == secUtilization }),
	"workerMetricStatsTableConfigBean.":           keysWhere(func(k keySpec) bool { return strings.HasPrefix(k.name, "workerMetrics") && k.section == secTables }),
	"coordinatorStateTableConfigBean.":            keysWhere(func(k keySpec) bool { return strings.HasPrefix(k.name, "coordinatorState") }),
}

// keysWhere lists the registry keys for which pred holds, in order.
func keysWhere(pred func(keySpec) bool) []string {
	var out []string
	for _, k := range registry {
		if pred(k) {
			out = append(out, k.name)
		}
	}
	return out
}

// legacyKeys are KCL 1.x keys that Java 2.x/3.x silently ignore.
var legacyKeys = map[string]string{
	"billingMode":                          "use leaseTableBillingMode (multilangd extension) to choose the lease table billing mode",
	"userAgent":                            "",
	"idleMillisBetweenCalls":               "",
	"maxCacheByteSize":                     "",
	"maxRecordsCount":                      "",
	"maxPendingProcessRecordsInput":        "",
	"dataFetchingStrategy":                 "",
	"shardSyncStrategyType":                "",
	"completedLeaseCleanupThresholdMillis": "use completedLeaseCleanupIntervalMillis (multilangd extension)",
	"garbageLeaseCleanupThresholdMillis":   "use garbageLeaseCleanupIntervalMillis (multilangd extension)",
	"maxInitializationAttempts":            "",
	"timestampAtInitialPositionInStream":   "use initialPositionInStreamExtended = <epoch seconds>",
	"skipShardSyncAtStartupIfLeasesExist":  "use skipShardSyncAtWorkerInitializationIfLeasesExist",
	"http.proxyHost":                       "set HTTPS_PROXY/HTTP_PROXY in the environment instead",
	"http.proxyPort":                       "set HTTPS_PROXY/HTTP_PROXY in the environment instead",
}

// KnownKeys returns every key Load understands (canonical spellings), in
// registry order, for documentation and tests.
func KnownKeys() []string {
	return keysWhere(func(keySpec) bool { return true })
}
