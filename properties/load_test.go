package properties

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const base = "executableName = app.py\napplicationName = app\nstreamName = s\nAwsCredentialsProvider = DefaultCredentialsProvider\n"

func mustParse(t *testing.T, extra string) *Config {
	t.Helper()
	c, err := Parse("test.properties", []byte(base+extra))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func ip(i int) *int                     { return &i }
func dp(d time.Duration) *time.Duration { return &d }

// TestEveryKey sets each known key (and its aliases) to a non-default value.
func TestEveryKey(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		key, value string
		get        func(*Config) any
		want       any
	}{
		{"executableName", "python3 app.py --v", func(c *Config) any { return c.ExecutableName }, "python3 app.py --v"},
		{"processingLanguage", "python/3.8", func(c *Config) any { return c.ProcessingLanguage }, "python/3.8"},
		{"maxActiveThreads", "-1", func(c *Config) any { return c.MaxActiveThreads }, -1},
		{"timeoutInSeconds", "30", func(c *Config) any { return c.TimeoutInSeconds }, ip(30)},
		{"shutdownGraceMillis", "7000", func(c *Config) any { return c.ShutdownGrace }, 7 * time.Second},
		{"applicationName", "other", func(c *Config) any { return c.ApplicationName }, "other"},
		{"streamName", "st", func(c *Config) any { return c.StreamName }, "st"},
		{"streamArn", "arn:aws:kinesis:eu-west-1:123456789012:stream/fromarn", func(c *Config) any { return c.StreamName + " " + c.StreamARN }, "fromarn arn:aws:kinesis:eu-west-1:123456789012:stream/fromarn"},
		{"streams", "orders=at_timestamp:1700000000, arn:aws:kinesis:eu-west-1:123456789012:stream/clicks=TRIM_HORIZON, 111122223333:audit:1700000000=latest", func(c *Config) any { return c.Streams }, []StreamConfig{
			{Name: "orders", InitialPosition: PositionAtTimestamp, InitialTimestamp: time.Unix(1700000000, 0).UTC()},
			{Name: "clicks", ARN: "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks", AccountID: "123456789012", InitialPosition: PositionTrimHorizon},
			{Name: "audit", AccountID: "111122223333", CreationEpoch: 1700000000, InitialPosition: PositionLatest},
		}},
		{"formerStreamsLeasesDeletionStrategy", "no_streams_leases_deletion", func(c *Config) any { return c.FormerStreamsLeasesDeletionStrategy }, NoStreamsLeasesDeletion},
		{"waitPeriodToDeleteFormerStreamsMillis", "0", func(c *Config) any { return c.WaitPeriodToDeleteFormerStreams }, time.Duration(0)},
		{"streamsCheckIntervalMillis", "5000", func(c *Config) any { return c.StreamsCheckInterval }, 5 * time.Second},
		{"tableName", "leases", func(c *Config) any { return c.TableName }, "leases"},
		{"workerId", "w1", func(c *Config) any { return c.WorkerID }, "w1"},
		{"workerIdentifier", "w2", func(c *Config) any { return c.WorkerID }, "w2"},
		{"regionName", "eu-west-1", func(c *Config) any { return c.RegionName }, "eu-west-1"},
		{"kinesisEndpoint", "http://localhost:4567", func(c *Config) any { return c.KinesisEndpoint }, "http://localhost:4567"},
		{"kinesisClient.endpointOverride", "https://k.example", func(c *Config) any { return c.KinesisEndpoint }, "https://k.example"},
		{"dynamoDBEndpoint", "http://localhost:8000", func(c *Config) any { return c.DynamoDBEndpoint }, "http://localhost:8000"},
		{"dynamoDbClient.endpointOverride", "http://d:1", func(c *Config) any { return c.DynamoDBEndpoint }, "http://d:1"},
		{"cloudWatchClient.endpointOverride", "http://cw:1", func(c *Config) any { return c.CloudWatchEndpoint }, "http://cw:1"},
		{"kinesisClient.region", "us-west-2", func(c *Config) any { return c.KinesisRegion }, "us-west-2"},
		{"dynamoDbClient.region", "us-west-1", func(c *Config) any { return c.DynamoDBRegion }, "us-west-1"},
		{"cloudWatchClient.region", "ap-south-1", func(c *Config) any { return c.CloudWatchRegion }, "ap-south-1"},
		{"awsCredentialsProvider", "ProfileCredentialsProvider|dev", func(c *Config) any { return c.CredentialsKinesis[0].Name + "|" + c.CredentialsKinesis[0].Args[0] }, "ProfileCredentialsProvider|dev"},
		{"awsCredentialsProviderDynamoDB", "EnvironmentVariableCredentialsProvider", func(c *Config) any { return c.CredentialsDynamoDB[0].Name }, CredEnvironment},
		{"awsCredentialsProviderCloudWatch", "AnonymousCredentialsProvider", func(c *Config) any { return c.CredentialsCloudWatch[0].Name }, CredAnonymous},
		{"initialPositionInStream", "trim_horizon", func(c *Config) any { return c.InitialPosition }, PositionTrimHorizon},
		{"initialPositionInStreamExtended", "1636609142", func(c *Config) any { return string(c.InitialPosition) + " " + c.InitialTimestamp.Format(time.RFC3339) }, "AT_TIMESTAMP 2021-11-11T05:39:02Z"},
		{"failoverTimeMillis", "3000", func(c *Config) any { return []time.Duration{c.FailoverTime, c.LeaseAssignmentInterval} }, []time.Duration{3 * time.Second, 6 * time.Second}},
		{"leaseAssignmentIntervalMillis", "5000", func(c *Config) any { return c.LeaseAssignmentInterval }, 5 * time.Second},
		{"dynamoDbLockBasedLeaderLeaseDurationInMillis", "90000", func(c *Config) any { return c.LeaderLockLeaseDuration }, 90 * time.Second},
		{"dynamoDbLockBasedLeaderHeartbeatPeriodInMillis", "20000", func(c *Config) any { return c.LeaderLockHeartbeatPeriod }, 20 * time.Second},
		{"shardSyncIntervalMillis", "1000", func(c *Config) any { return c.ShardSyncInterval }, time.Second},
		{"cleanupLeasesUponShardCompletion", "false", func(c *Config) any { return c.CleanupLeasesUponShardCompletion }, false},
		{"ignoreUnexpectedChildShards", "yes", func(c *Config) any { return c.IgnoreUnexpectedChildShards }, true},
		{"maxLeasesForWorker", "5", func(c *Config) any { return c.MaxLeasesForWorker }, 5},
		{"maxLeasesToStealAtOneTime", "2", func(c *Config) any { return c.MaxLeasesToStealAtOneTime }, 2},
		{"enablePriorityLeaseAssignment", "off", func(c *Config) any { return c.EnablePriorityLeaseAssignment }, false},
		{"initialLeaseTableReadCapacity", "7", func(c *Config) any { return c.InitialLeaseTableReadCapacity }, 7},
		{"initialLeaseTableWriteCapacity", "8", func(c *Config) any { return c.InitialLeaseTableWriteCapacity }, 8},
		{"leaseTableDeletionProtectionEnabled", "true", func(c *Config) any { return c.LeaseTableDeletionProtection }, true},
		{"leaseTablePitrEnabled", "TRUE", func(c *Config) any { return c.LeaseTablePitrEnabled }, true},
		{"leaseTableScanTotalSegments", "4", func(c *Config) any { return c.LeaseTableScanTotalSegments }, ip(4)},
		{"maxLeaseRenewalThreads", "3", func(c *Config) any { return c.MaxLeaseRenewalThreads }, 3},
		{"listShardsBackoffTimeInMillis", "100", func(c *Config) any { return c.ListShardsBackoffTime }, 100 * ms},
		{"maxListShardsRetryAttempts", "9", func(c *Config) any { return c.MaxListShardsRetryAttempts }, 9},
		{"leaseCleanupIntervalMillis", "1000", func(c *Config) any { return c.LeaseCleanupInterval }, time.Second},
		{"completedLeaseCleanupIntervalMillis", "2000", func(c *Config) any { return c.CompletedLeaseCleanupInterval }, 2 * time.Second},
		{"garbageLeaseCleanupIntervalMillis", "3000", func(c *Config) any { return c.GarbageLeaseCleanupInterval }, 3 * time.Second},
		{"gracefulLeaseHandoffTimeoutMillis", "0", func(c *Config) any { return c.GracefulLeaseHandoffTimeout }, time.Duration(0)},
		{"gracefulLeaseHandoffConfigBean.gracefulLeaseHandoffTimeoutMillis", "5", func(c *Config) any { return c.GracefulLeaseHandoffTimeout }, 5 * ms},
		{"isGracefulLeaseHandoffEnabled", "false", func(c *Config) any { return c.GracefulLeaseHandoffEnabled }, false},
		{"inMemoryWorkerMetricsCaptureFrequencyMillis", "2000", func(c *Config) any { return c.InMemoryWorkerMetricsCaptureFrequency }, 2 * time.Second},
		{"workerMetricsReporterFreqInMillis", "60000", func(c *Config) any { return c.WorkerMetricsReporterFreq }, time.Minute},
		{"noOfPersistedMetricsPerWorkerMetrics", "5", func(c *Config) any { return c.NoOfPersistedMetricsPerWorkerMetrics }, 5},
		{"disableWorkerMetrics", "true", func(c *Config) any { return c.DisableWorkerMetrics }, true},
		{"maxThroughputPerHostKBps", "1024.5", func(c *Config) any { return c.MaxThroughputPerHostKBps }, 1024.5},
		{"dampeningPercentage", "50", func(c *Config) any { return c.DampeningPercentage }, 50},
		{"reBalanceThresholdPercentage", "20", func(c *Config) any { return c.ReBalanceThresholdPercentage }, 20},
		{"allowThroughputOvershoot", "false", func(c *Config) any { return c.AllowThroughputOvershoot }, false},
		{"varianceBalancingFrequency", "4", func(c *Config) any { return c.VarianceBalancingFrequency }, 4},
		{"leaseAssignmentStrategy", "LEASE_COUNT_BASED", func(c *Config) any { return c.LeaseAssignmentStrategy }, "LEASE_COUNT_BASED"},
		{"workerMetricsEMAAlpha", "0.25", func(c *Config) any { return c.WorkerMetricsEMAAlpha }, 0.25},
		{"workerUtilizationAwareAssignmentConfigBean.workerMetricsEMAAlpha", "0.75", func(c *Config) any { return c.WorkerMetricsEMAAlpha }, 0.75},
		{"staleWorkerMetricsEntryCleanupDuration", "PT12H", func(c *Config) any { return c.StaleWorkerMetricsEntryCleanupDuration }, 12 * time.Hour},
		{"workerMetricsTableName", "wm", func(c *Config) any { return c.WorkerMetricsTable.TableName }, "wm"},
		{"workerMetricsBillingMode", "provisioned", func(c *Config) any { return c.WorkerMetricsTable.BillingMode }, BillingProvisioned},
		{"workerMetricsReadCapacity", "5", func(c *Config) any { return c.WorkerMetricsTable.ReadCapacity }, int64(5)},
		{"workerMetricsWriteCapacity", "6", func(c *Config) any { return c.WorkerMetricsTable.WriteCapacity }, int64(6)},
		{"workerMetricsPointInTimeRecoveryEnabled", "true", func(c *Config) any { return c.WorkerMetricsTable.PointInTimeRecoveryEnabled }, true},
		{"workerMetricsDeletionProtectionEnabled", "true", func(c *Config) any { return c.WorkerMetricsTable.DeletionProtectionEnabled }, true},
		{"workerMetricsTags", "a=1, b=2", func(c *Config) any { return c.WorkerMetricsTable.Tags }, map[string]string{"a": "1", "b": "2"}},
		{"workerMetricStatsTableConfigBean.workerMetricsTableName", "wm2", func(c *Config) any { return c.WorkerMetricsTable.TableName }, "wm2"},
		{"coordinatorStateTableName", "cs", func(c *Config) any { return c.CoordinatorStateTable.TableName }, "cs"},
		{"coordinatorStateBillingMode", "PROVISIONED", func(c *Config) any { return c.CoordinatorStateTable.BillingMode }, BillingProvisioned},
		{"coordinatorStateReadCapacity", "1", func(c *Config) any { return c.CoordinatorStateTable.ReadCapacity }, int64(1)},
		{"coordinatorStateWriteCapacity", "2", func(c *Config) any { return c.CoordinatorStateTable.WriteCapacity }, int64(2)},
		{"coordinatorStatePointInTimeRecoveryEnabled", "1", func(c *Config) any { return c.CoordinatorStateTable.PointInTimeRecoveryEnabled }, true},
		{"coordinatorStateDeletionProtectionEnabled", "y", func(c *Config) any { return c.CoordinatorStateTable.DeletionProtectionEnabled }, true},
		{"coordinatorStateTags", "k=v", func(c *Config) any { return c.CoordinatorStateTable.Tags }, map[string]string{"k": "v"}},
		{"coordinatorStateTableConfigBean.coordinatorStateBillingMode", "provisioned", func(c *Config) any { return c.CoordinatorStateTable.BillingMode }, BillingProvisioned},
		{"parentShardPollIntervalMillis", "250", func(c *Config) any { return c.ParentShardPollInterval }, 250 * ms},
		{"skipShardSyncAtWorkerInitializationIfLeasesExist", "true", func(c *Config) any { return c.SkipShardSyncAtWorkerInitializationIfLeasesExist }, true},
		{"schedulerInitializationBackoffTimeMillis", "10", func(c *Config) any { return c.SchedulerInitializationBackoffTime }, 10 * ms},
		{"clientVersionConfig", "client_version_config_compatible_with_2x", func(c *Config) any { return c.ClientVersionConfig }, ClientVersionCompatible2X},
		{"migrateAllEntitiesToLeaseTable", "true", func(c *Config) any { return c.MigrateAllEntitiesToLeaseTable }, true},
		{"tableMigrationCompleteBakeTimeSeconds", "7200", func(c *Config) any { return c.TableMigrationCompleteBakeTime }, 2 * time.Hour},
		{"callProcessRecordsEvenForEmptyRecordList", "true", func(c *Config) any { return c.CallProcessRecordsEvenForEmptyRecordList }, true},
		{"taskBackoffTimeMillis", "50", func(c *Config) any { return c.TaskBackoffTime }, 50 * ms},
		{"logWarningForTaskAfterMillis", "60000", func(c *Config) any { return c.LogWarningForTaskAfter }, dp(time.Minute)},
		{"metricsBufferTimeMillis", "100", func(c *Config) any { return c.MetricsBufferTime }, 100 * ms},
		{"metricsMaxQueueSize", "10", func(c *Config) any { return c.MetricsMaxQueueSize }, 10},
		{"metricsLevel", "summary", func(c *Config) any { return c.MetricsLevel }, "SUMMARY"},
		{"metricsEnabledDimensions", `Operation,ShardId WorkerIdentifier;"a b"`, func(c *Config) any { return c.MetricsEnabledDimensions }, []string{"Operation", "ShardId", "WorkerIdentifier", "a b"}},
		{"validateSequenceNumberBeforeCheckpointing", "true", func(c *Config) any { return len(c.Warnings) }, 1},
		{"retrievalMode", "polling", func(c *Config) any { return c.RetrievalMode }, RetrievalPolling},
		{"maxRecords", "500", func(c *Config) any { return []any{c.MaxRecords, c.RetrievalMode} }, []any{500, RetrievalPolling}},
		{"pollingConfig.maxRecords", "400", func(c *Config) any { return []any{c.MaxRecords, c.RetrievalMode} }, []any{400, RetrievalPolling}},
		{"idleTimeBetweenReadsInMillis", "250", func(c *Config) any { return []any{c.IdleTimeBetweenReads, c.RetrievalMode} }, []any{250 * ms, RetrievalPolling}},
		{"millisBehindLatestThresholdForReducedTps", "5000", func(c *Config) any { return []any{c.MillisBehindLatestThresholdForReducedTps, c.RetrievalMode} }, []any{5 * time.Second, RetrievalPolling}},
		{"retryGetRecordsInSeconds", "3", func(c *Config) any { return []any{c.RetryGetRecordsInSeconds, c.RetrievalMode} }, []any{ip(3), RetrievalPolling}},
		{"maxGetRecordsThreadPool", "2", func(c *Config) any { return []any{c.MaxGetRecordsThreadPool, c.RetrievalMode} }, []any{ip(2), RetrievalPolling}},
		{"fanoutConfig.consumerArn", "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1", func(c *Config) any { return c.Fanout.ConsumerARN }, "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1"},
		{"fanoutConfig.consumerName", "cn", func(c *Config) any { return c.Fanout.ConsumerName }, "cn"},
		{"fanoutConfig.maxDescribeStreamSummaryRetries", "3", func(c *Config) any { return c.Fanout.MaxDescribeStreamSummaryRetries }, 3},
		{"fanoutConfig.maxDescribeStreamConsumerRetries", "4", func(c *Config) any { return c.Fanout.MaxDescribeStreamConsumerRetries }, 4},
		{"fanoutConfig.registerStreamConsumerRetries", "5", func(c *Config) any { return c.Fanout.RegisterStreamConsumerRetries }, 5},
		{"fanoutConfig.retryBackoffMillis", "20", func(c *Config) any { return c.Fanout.RetryBackoff }, 20 * ms},
		{"childStderrLogLevel", "WARNING", func(c *Config) any { return c.ChildStderrLevel }, "warn"},
		{"logLevel", "debug", func(c *Config) any { return c.LogLevel }, "debug"},
		{"logFormat", "JSON", func(c *Config) any { return c.LogFormat }, "json"},
		{"metricsListenAddress", ":9090", func(c *Config) any { return c.MetricsListenAddress }, ":9090"},
		{"childShutdownGraceMillis", "100", func(c *Config) any { return c.ChildShutdownGrace }, 100 * ms},
		{"maxChildFailures", "7", func(c *Config) any { return c.MaxChildFailures }, 7},
		{"memoryBudgetBytes", "134217728", func(c *Config) any { return c.MemoryBudgetBytes }, int64(128 << 20)},
		{"stuckShardThresholdMillis", "0", func(c *Config) any { return c.StuckShardThreshold }, time.Duration(0)},
		{"stuckShardRestartChild", "true", func(c *Config) any { return c.StuckShardRestartChild }, true},
		{"stuckShardFailsReadiness", "true", func(c *Config) any { return c.StuckShardFailsReadiness }, true},
		{"readinessUnreachableThresholdMillis", "2500", func(c *Config) any { return c.ReadinessUnreachableThreshold }, 2500 * ms},
		{"leaseTableBillingMode", "provisioned", func(c *Config) any { return c.LeaseTableBillingProvisioned }, true},
		{"leaseTableCreate", "never", func(c *Config) any { return c.LeaseTableCreate }, LeaseTableCreateNever},
		{"shardPrioritization", "x", nil, nil}, // an error: see TestErrors
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.key] = true
		if tt.get == nil {
			continue
		}
		t.Run(tt.key, func(t *testing.T) {
			line := 5
			var c *Config
			if tt.key == keyCredentials {
				line = 4
				c = mustParseNoCreds(t, tt.key+" = "+tt.value+"\n")
			} else {
				c = mustParse(t, tt.key+" = "+tt.value+"\n")
			}
			if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%s = %q: got %#v, want %#v", tt.key, tt.value, got, tt.want)
			}
			canonical := tt.key
			if a, ok := aliases[canonical]; ok {
				canonical = a
			}
			if i := strings.Index(canonical, "."); i > 0 && knownKeys[canonical].set == nil {
				canonical = canonical[i+1:]
			}
			if c.Lines[canonical] != line {
				t.Fatalf("Lines[%s] = %d, want %d", canonical, c.Lines[canonical], line)
			}
		})
	}
	for _, k := range KnownKeys() {
		if !covered[k] {
			t.Errorf("known key %s has no test row", k)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, "")
	d := Defaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"TableName", c.TableName, "app"},
		{"WorkerID is a UUID", len(c.WorkerID), 36},
		{"RegionName", c.RegionName, ""},
		{"CredentialsDynamoDB", c.CredentialsDynamoDB, c.CredentialsKinesis},
		{"CredentialsCloudWatch", c.CredentialsCloudWatch, c.CredentialsKinesis},
		{"InitialPosition", c.InitialPosition, PositionLatest},
		{"FailoverTime", c.FailoverTime, 10 * time.Second},
		{"LeaseAssignmentInterval", c.LeaseAssignmentInterval, 20 * time.Second},
		{"ShardSyncInterval", c.ShardSyncInterval, time.Minute},
		{"CleanupLeasesUponShardCompletion", c.CleanupLeasesUponShardCompletion, true},
		{"MaxLeasesForWorker", c.MaxLeasesForWorker, math.MaxInt32},
		{"MaxLeasesToStealAtOneTime", c.MaxLeasesToStealAtOneTime, 1},
		{"EnablePriorityLeaseAssignment", c.EnablePriorityLeaseAssignment, true},
		{"MaxLeaseRenewalThreads", c.MaxLeaseRenewalThreads, 20},
		{"ListShardsBackoffTime", c.ListShardsBackoffTime, 1500 * time.Millisecond},
		{"MaxListShardsRetryAttempts", c.MaxListShardsRetryAttempts, 50},
		{"GracefulLeaseHandoffTimeout", c.GracefulLeaseHandoffTimeout, 30 * time.Second},
		{"GracefulLeaseHandoffEnabled", c.GracefulLeaseHandoffEnabled, true},
		{"MaxThroughputPerHostKBps", c.MaxThroughputPerHostKBps, math.MaxFloat64},
		{"lease cleanup intervals", []time.Duration{c.LeaseCleanupInterval, c.CompletedLeaseCleanupInterval, c.GarbageLeaseCleanupInterval}, []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute}},
		{"StaleWorkerMetricsEntryCleanupDuration", c.StaleWorkerMetricsEntryCleanupDuration, 24 * time.Hour},
		{"WorkerMetricsTable", c.WorkerMetricsTable, TableConfig{TableName: "app-WorkerMetricStats", BillingMode: BillingPayPerRequest}},
		{"CoordinatorStateTable", c.CoordinatorStateTable, TableConfig{TableName: "app-CoordinatorState", BillingMode: BillingPayPerRequest}},
		{"ClientVersionConfig", c.ClientVersionConfig, ClientVersion3X},
		{"TableMigrationCompleteBakeTime", c.TableMigrationCompleteBakeTime, 24 * time.Hour},
		{"TaskBackoffTime", c.TaskBackoffTime, 500 * time.Millisecond},
		{"MetricsLevel", c.MetricsLevel, "DETAILED"},
		{"MetricsEnabledDimensions", c.MetricsEnabledDimensions, []string{"ALL"}},
		{"RetrievalMode", c.RetrievalMode, RetrievalFanout},
		{"MaxRecords", c.MaxRecords, 10000},
		{"IdleTimeBetweenReads", c.IdleTimeBetweenReads, 1500 * time.Millisecond},
		{"Fanout", c.Fanout, FanoutConfig{ConsumerName: "app", MaxDescribeStreamSummaryRetries: 10, MaxDescribeStreamConsumerRetries: 10, RegisterStreamConsumerRetries: 10, RetryBackoff: time.Second}},
		{"ShutdownGrace", c.ShutdownGrace, time.Duration(0)},
		{"TimeoutInSeconds", c.TimeoutInSeconds, (*int)(nil)},
		{"ChildShutdownGrace", c.ChildShutdownGrace, 5 * time.Second},
		{"MaxChildFailures", c.MaxChildFailures, 3},
		{"LogLevel/LogFormat/ChildStderrLevel", []string{c.LogLevel, c.LogFormat, c.ChildStderrLevel}, []string{"info", "console", "info"}},
		{"LeaseTableBillingProvisioned", c.LeaseTableBillingProvisioned, false},
		{"Warnings", len(c.Warnings), 0},
		{"Defaults().MetricsMaxQueueSize", d.MetricsMaxQueueSize, 10000},
		{"InitialLeaseTableReadCapacity", c.InitialLeaseTableReadCapacity, 10},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if c2 := mustParse(t, ""); c2.WorkerID == c.WorkerID {
		t.Errorf("two loads produced the same random worker id %s", c.WorkerID)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string // replaces base when full is set
		full    bool
		key     string
		line    int
		msg     string
	}{
		{"bad int", "maxLeasesForWorker = 100nf", false, "maxLeasesForWorker", 5, "not a decimal integer"},
		{"hex int", "maxLeasesForWorker = 0x10", false, "maxLeasesForWorker", 5, "not a decimal integer"},
		{"out of range int", "maxLeasesForWorker = 99999999999", false, "maxLeasesForWorker", 5, "must be"},
		{"zero where Java keeps the default", "failoverTimeMillis = 0", false, "failoverTimeMillis", 5, "must be >= 1"},
		{"leader heartbeat over half the lease", "dynamoDbLockBasedLeaderHeartbeatPeriodInMillis = 61000", false, "dynamoDbLockBasedLeaderHeartbeatPeriodInMillis", 5, "at most half its lease duration"},
		{"leader lease under twice the heartbeat", "dynamoDbLockBasedLeaderLeaseDurationInMillis = 59000", false, "dynamoDbLockBasedLeaderLeaseDurationInMillis", 5, "at most half its lease duration"},
		{"negative millis", "shardSyncIntervalMillis = -5", false, "shardSyncIntervalMillis", 5, "must be >= 1"},
		{"maxRecords over 10000", "maxRecords = 10001", false, "maxRecords", 5, "between 1 and 10000"},
		{"bad bool", "ignoreUnexpectedChildShards = maybe", false, "ignoreUnexpectedChildShards", 5, "not a boolean"},
		{"bad enum", "metricsLevel = LOUD", false, "metricsLevel", 5, "NONE, SUMMARY, DETAILED"},
		{"bad retrieval mode", "retrievalMode = push", false, "retrievalMode", 5, "(FANOUT, POLLING, DEFAULT)"},
		{"AT_TIMESTAMP position", "initialPositionInStream = AT_TIMESTAMP", false, "initialPositionInStream", 5, "initialPositionInStreamExtended"},
		{"bad position", "initialPositionInStream = OLDEST", false, "initialPositionInStream", 5, "LATEST or TRIM_HORIZON"},
		{"bad timestamp", "initialPositionInStreamExtended = 2021-11-11", false, "initialPositionInStreamExtended", 5, "epoch seconds"},
		{"bad duration", "staleWorkerMetricsEntryCleanupDuration = 1 day", false, "staleWorkerMetricsEntryCleanupDuration", 5, "ISO-8601"},
		{"negative duration", "staleWorkerMetricsEntryCleanupDuration = -PT1H", false, "staleWorkerMetricsEntryCleanupDuration", 5, "negative"},
		{"bad double", "workerMetricsEMAAlpha = half", false, "workerMetricsEMAAlpha", 5, "not a decimal number"},
		{"alpha out of range", "workerMetricsEMAAlpha = 1.5", false, "workerMetricsEMAAlpha", 5, "must be"},
		{"bad stream ARN", "streams = a, arn:aws:kinesis:us-east-1:12345:stream/x", false, "streams", 5, "stream 2 (\"arn:aws:kinesis:us-east-1:12345:stream/x\"): not a Kinesis stream ARN"},
		{"bad stream identifier", "streams = 1:a", false, "streams", 5, "account:streamName:creationEpoch"},
		{"zero creation epoch", "streams = 123:a:0", false, "streams", 5, "creation epoch must be > 0"},
		{"bad stream position", "streams = a=OLDEST", false, "streams", 5, "LATEST, TRIM_HORIZON or AT_TIMESTAMP:<epoch seconds>"},
		{"bad stream timestamp", "streams = a=AT_TIMESTAMP:yesterday", false, "streams", 5, "AT_TIMESTAMP needs epoch seconds"},
		{"duplicate stream", "streams = a, 123:a:5", false, "streams", 5, "already listed as stream 1"},
		{"empty streams", "streams = ,", false, "streams", 5, "no streams listed"},
		{"bad stream name", "streams = a b", false, "streams", 5, "is not 1-128 characters"},
		{"bad ARN", "streamArn = arn:aws:kinesis:us-east-1:12345:stream/x", false, "streamArn", 5, "not a Kinesis stream ARN"},
		{"endpoint without scheme", "kinesisEndpoint = localhost:4567", false, "kinesisEndpoint", 5, "not an endpoint URL"},
		{"bad region", "regionName = us east 1", false, "regionName", 5, "not a region"},
		{"timeout zero", "timeoutInSeconds = 0", false, "timeoutInSeconds", 5, "must be >= 1"},
		{"empty worker id", "workerId =", false, "workerId", 5, "must not be empty"},
		{"shardPrioritization", "shardPrioritization = x", false, "shardPrioritization", 5, "cannot be set"},
		{"unknown credentials provider", "AwsCredentialsProviderDynamoDB = MagicProvider", false, "AwsCredentialsProviderDynamoDB", 5, "unknown credentials provider"},
		{"credentials twice with different case", "AWSCredentialsProvider = DefaultCredentialsProvider", false, "AWSCredentialsProvider", 5, "given twice"},
		{"STS without session", "AwsCredentialsProviderCloudWatch = StsAssumeRoleCredentialsProvider|arn:aws:iam::123456789012:role/r", false, "AwsCredentialsProviderCloudWatch", 5, "session name"},
		{"STS bad arn", "AwsCredentialsProviderCloudWatch = StsAssumeRoleCredentialsProvider|role|s", false, "AwsCredentialsProviderCloudWatch", 5, "not an IAM role ARN"},
		{"STS unknown arg", "AwsCredentialsProviderCloudWatch = StsAssumeRoleCredentialsProvider|arn:aws:iam::123456789012:role/r|s|color=red", false, "AwsCredentialsProviderCloudWatch", 5, "unknown argument"},
		{"only system properties", "AwsCredentialsProviderCloudWatch = SystemPropertyCredentialsProvider", false, "AwsCredentialsProviderCloudWatch", 5, "JVM system properties"},
		{"anonymous in a chain", "AwsCredentialsProviderCloudWatch = AnonymousCredentialsProvider, DefaultCredentialsProvider", false, "AwsCredentialsProviderCloudWatch", 5, "cannot be combined"},
		{"empty credentials", "AwsCredentialsProviderCloudWatch = , ,", false, "AwsCredentialsProviderCloudWatch", 5, "no credential providers"},
		{"credentials builder keys", "kinesisCredentialsProvider.class = ProfileCredentialsProvider", false, "kinesisCredentialsProvider.class", 5, "not supported"},
		{"bad log level", "logLevel = chatty", false, "logLevel", 5, "debug, info, warn, error"},
		{"bad log format", "logFormat = xml", false, "logFormat", 5, "console or json"},
		{"bad listen address", "metricsListenAddress = 9090", false, "metricsListenAddress", 5, "host:port"},
		{"bad billing", "leaseTableBillingMode = FREE", false, "leaseTableBillingMode", 5, "PAY_PER_REQUEST, PROVISIONED"},
		{"bad table create", "leaseTableCreate = sometimes", false, "leaseTableCreate", 5, "IF_NOT_EXISTS, NEVER"},
		{"percentage range", "dampeningPercentage = 101", false, "dampeningPercentage", 5, "between 1 and 100"},
		{"malformed unicode", "processingLanguage = \\u00zz", false, "processingLanguage", 5, "malformed"},
		{"malformed unicode in a required key", "executableName = a\\u12\napplicationName=a\nstreamName=s\nAwsCredentialsProvider=DefaultCredentialsProvider\n", true, "executableName", 1, "malformed"},
		{"unknown provider in the required credentials key", "executableName=x\napplicationName=a\nstreamName=s\nAWSCredentialsProvider = MagicProvider\n", true, "AWSCredentialsProvider", 4, "unknown credentials provider"},
		{"bad ARN without streamName", "executableName=x\napplicationName=a\nstreamArn = arn:aws:kinesis:us-east-1:12345:stream/x\nAwsCredentialsProvider=DefaultCredentialsProvider\n", true, "streamArn", 3, "not a Kinesis stream ARN"},
		{"missing executableName", "applicationName=a\nstreamName=s\nAwsCredentialsProvider=DefaultCredentialsProvider\n", true, "executableName", 0, "Must provide an executable name"},
		{"empty executableName", "executableName=\napplicationName=a\nstreamName=s\nAwsCredentialsProvider=DefaultCredentialsProvider\n", true, "executableName", 1, "empty"},
		{"missing applicationName", "executableName=x\nstreamName=s\nAwsCredentialsProvider=DefaultCredentialsProvider\n", true, "applicationName", 0, "Application name is required"},
		{"blank applicationName", "executableName=x\napplicationName = \nstreamName=s\nAwsCredentialsProvider=DefaultCredentialsProvider\n", true, "applicationName", 2, "required"},
		{"missing stream", "executableName=x\napplicationName=a\nAwsCredentialsProvider=DefaultCredentialsProvider\n", true, "streamName", 0, "Stream name or Stream Arn is required"},
		{"missing credentials", "executableName=x\napplicationName=a\nstreamName=s\n", true, "AwsCredentialsProvider", 0, "credentials must be provided"},
		{"empty tableName", "tableName =", false, "tableName", 5, "table name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := base + tt.content + "\n"
			if tt.full {
				content = tt.content
			}
			_, err := Parse("f.properties", []byte(content))
			if err == nil {
				t.Fatal("no error")
			}
			errs := Errors(err)
			if len(errs) != 1 {
				t.Fatalf("want 1 error, got %d: %v", len(errs), err)
			}
			e := errs[0]
			if e.File != "f.properties" || e.Key != tt.key || e.Line != tt.line || !strings.Contains(e.Msg, tt.msg) {
				t.Fatalf("got %+v (%q), want key %q line %d msg ~%q", e, e.Error(), tt.key, tt.line, tt.msg)
			}
			if tt.line > 0 && tt.key != "" && !strings.Contains(e.Error(), "f.properties:") {
				t.Fatalf("message %q lacks file:line", e.Error())
			}
		})
	}
}

func TestSeveralErrorsAreJoined(t *testing.T) {
	_, err := Parse("f", []byte("maxRecords = x\nfailoverTimeMillis = y\n"))
	errs := Errors(err)
	// two bad values + executableName, applicationName, stream, credentials missing
	if len(errs) != 6 {
		t.Fatalf("got %d errors: %v", len(errs), err)
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.Line != 1 || pe.Key != "maxRecords" || pe.Value != "x" {
		t.Fatalf("errors.As gave %+v", pe)
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "a.properties", Line: 3, Key: "maxRecords", Value: "x", Msg: "bad"}
	if got, want := e.Error(), `a.properties:3: maxRecords = "x": bad`; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	e = &Error{File: "a.properties", Key: "applicationName", Msg: "required"}
	if got, want := e.Error(), `a.properties: applicationName: required`; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name, extra string
		line        int
		key, msg    string
	}{
		{"unknown key", "colour = red", 5, "colour", "unknown key, ignored"},
		{"near miss", "failoverTimeMilis = 10", 5, "failoverTimeMilis", "did you mean failoverTimeMillis?"},
		{"wrong case", "FailoverTimeMillis = 10", 5, "FailoverTimeMillis", "keys are case-sensitive: did you mean failoverTimeMillis?"},
		{"legacy key", "idleMillisBetweenCalls = 100", 5, "idleMillisBetweenCalls", "KCL 1.x key"},
		{"legacy key with hint", "timestampAtInitialPositionInStream = 1", 5, "timestampAtInitialPositionInStream", "initialPositionInStreamExtended"},
		{"duplicate key", "tableName = a\ntableName = b", 6, "tableName", "replaces the one on line 5"},
		{"alias conflict", "workerId = a\nworkerIdentifier = b", 6, "workerIdentifier", "the later line wins"},
		{"idle clamp", "retrievalMode = POLLING\nidleTimeBetweenReadsInMillis = 100", 6, "idleTimeBetweenReadsInMillis", "raised to the minimum of 200 ms"},
		{"bool with trailing space", "ignoreUnexpectedChildShards = true ", 5, "ignoreUnexpectedChildShards", "Java reads it as false"},
		{"enum with trailing space", "metricsLevel = NONE ", 5, "metricsLevel", "Java rejects it"},
		{"cleanup false honoured", "cleanupLeasesUponShardCompletion = false", 5, "cleanupLeasesUponShardCompletion", "false is honoured"},
		{"no-effect key", "validateSequenceNumberBeforeCheckpointing = true", 5, "validateSequenceNumberBeforeCheckpointing", "no effect"},
		{"unsupported client setting", "kinesisClient.httpClient = x", 5, "kinesisClient.httpClient", "not supported"},
		{"unknown bean property", "pollingConfig.colour = red", 5, "pollingConfig.colour", "pollingConfig accepts"},
		{"polling key selects polling", "maxRecords = 100", 5, "maxRecords", "resolves to POLLING"},
		{"extended beats position", "initialPositionInStream = LATEST\ninitialPositionInStreamExtended = 1", 5, "initialPositionInStream", "takes precedence"},
		{"inert 3.x key", "leaseTablePitrEnabled = true", 5, "leaseTablePitrEnabled", "no effect in multilangd yet"},
		{"inert task-duration key", "logWarningForTaskAfterMillis = 100", 5, "logWarningForTaskAfterMillis", "no effect in multilangd yet"},
		{"inert polling key", "retryGetRecordsInSeconds = 3", 5, "retryGetRecordsInSeconds", "as in the Java daemon 2.x/3.x"},
		{"inert polling bean key", "pollingConfig.maxGetRecordsThreadPool = 2", 5, "pollingConfig.maxGetRecordsThreadPool", "as in the Java daemon 2.x/3.x"},
		{"bad tag skipped", "workerMetricsTags = a=1,b", 5, "workerMetricsTags", `tag "b"`},
		{"bake time clamp", "tableMigrationCompleteBakeTimeSeconds = 5", 5, "tableMigrationCompleteBakeTimeSeconds", "clamped to 3600"},
		{"ARN overrides name", "streamArn = arn:aws:kinesis:us-east-1:123456789012:stream/other", 3, "streamName", "overrides streamName"},
		{"ARN region differs", "regionName = eu-west-1\nstreamArn = arn:aws:kinesis:us-east-1:123456789012:stream/s", 6, "streamArn", "differs from regionName"},
		{"v1 credentials alias", "AwsCredentialsProviderDynamoDB = com.amazonaws.auth.DefaultAWSCredentialsProviderChain", 5, "AwsCredentialsProviderDynamoDB", "read as DefaultCredentialsProvider"},
		{"system property in chain", "AwsCredentialsProviderDynamoDB = SystemPropertyCredentialsProvider,DefaultCredentialsProvider", 5, "AwsCredentialsProviderDynamoDB", "never yields credentials"},
		{"name with trailing whitespace", "tableName = leases  ", 5, "tableName", "surrounding whitespace, kept as written"},
		{"args dropped", "AwsCredentialsProviderDynamoDB = EnvironmentVariableCredentialsProvider|x", 5, "AwsCredentialsProviderDynamoDB", "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.extra+"\n")
			for _, w := range c.Warnings {
				if w.Line == tt.line && w.Key == tt.key && strings.Contains(w.Message, tt.msg) && w.File == "test.properties" {
					if !strings.HasPrefix(w.String(), "test.properties:") {
						t.Fatalf("warning string %q", w.String())
					}
					return
				}
			}
			t.Fatalf("no warning line %d key %s ~%q; got %v", tt.line, tt.key, tt.msg, c.Warnings)
		})
	}
}

func TestWarningsWithErrorsAreReturned(t *testing.T) {
	c, err := Parse("f", []byte("executableName=x\napplicationname=a\nstreamName=s\nAwsCredentialsProvider=DefaultCredentialsProvider\n"))
	if err == nil || c == nil || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Message, "did you mean applicationName") {
		t.Fatalf("err=%v cfg=%v", err, c)
	}
}

func TestRetrievalModeResolution(t *testing.T) {
	tests := []struct {
		extra string
		want  RetrievalMode
	}{
		{"", RetrievalFanout},
		{"retrievalMode = DEFAULT", RetrievalFanout},
		{"retrievalMode = fanout\nmaxRecords = 100", RetrievalFanout},
		{"retrievalMode = POLLING", RetrievalPolling},
		{"maxRecords = 100", RetrievalPolling},
		{"pollingConfig.maxRecords = 100", RetrievalPolling},
		{"idleTimeBetweenReadsInMillis = 1000", RetrievalPolling},
		{"idleTimeBetweenReadsInMillis = 0", RetrievalFanout}, // zero is "unset" in Java's rule
		{"millisBehindLatestThresholdForReducedTps = 0", RetrievalFanout},
		{"millisBehindLatestThresholdForReducedTps = 1", RetrievalPolling},
		{"retryGetRecordsInSeconds = 1", RetrievalPolling},
		{"maxGetRecordsThreadPool = 1", RetrievalPolling},
		{"fanoutConfig.consumerName = x", RetrievalFanout},
	}
	for _, tt := range tests {
		if got := mustParse(t, tt.extra+"\n").RetrievalMode; got != tt.want {
			t.Errorf("%q: got %s want %s", tt.extra, got, tt.want)
		}
	}
}

func TestCredentialsParsing(t *testing.T) {
	tests := []struct {
		key, value string
		want       []CredentialsProvider
	}{
		{"AwsCredentialsProvider", "DefaultCredentialsProvider", []CredentialsProvider{{Name: CredDefault, Raw: "DefaultCredentialsProvider"}}},
		{"awscredentialsprovider", " ProfileCredentialsProvider|dev , EnvironmentVariableCredentialsProvider ,", []CredentialsProvider{
			{Name: CredProfile, Args: []string{"dev"}, Raw: "ProfileCredentialsProvider|dev"},
			{Name: CredEnvironment, Raw: "EnvironmentVariableCredentialsProvider"}}},
		{"AWSCredentialsProvider", "software.amazon.awssdk.auth.credentials.InstanceProfileCredentialsProvider", []CredentialsProvider{{Name: CredInstanceProfile, Raw: "software.amazon.awssdk.auth.credentials.InstanceProfileCredentialsProvider"}}},
		{"AWSCREDENTIALSPROVIDER", "com.amazonaws.auth.profile.ProfileCredentialsProvider|p", []CredentialsProvider{{Name: CredProfile, Args: []string{"p"}, Raw: "com.amazonaws.auth.profile.ProfileCredentialsProvider|p"}}},
		{"AwsCredentialsProvider", "ContainerCredentialsProvider,WebIdentityTokenFileCredentialsProvider", []CredentialsProvider{{Name: CredContainer, Raw: "ContainerCredentialsProvider"}, {Name: CredWebIdentity, Raw: "WebIdentityTokenFileCredentialsProvider"}}},
		{"AwsCredentialsProvider", "KclSTSAssumeRoleSessionCredentialsProvider|arn:aws:iam::123456789012:role/r|sess|externalId=abc|endpointRegion=us-west-2",
			[]CredentialsProvider{{Name: CredStsAssumeRole, Args: []string{"arn:aws:iam::123456789012:role/r", "sess", "externalId=abc", "endpointRegion=us-west-2"}, Raw: "KclSTSAssumeRoleSessionCredentialsProvider|arn:aws:iam::123456789012:role/r|sess|externalId=abc|endpointRegion=us-west-2"}}},
	}
	for _, tt := range tests {
		c := mustParseNoCreds(t, tt.key+" = "+tt.value+"\n")
		for i := range c.CredentialsKinesis {
			if len(c.CredentialsKinesis[i].Args) == 0 {
				c.CredentialsKinesis[i].Args = nil
			}
		}
		if !reflect.DeepEqual(c.CredentialsKinesis, tt.want) {
			t.Errorf("%s = %s:\n got %#v\nwant %#v", tt.key, tt.value, c.CredentialsKinesis, tt.want)
		}
	}
}

func mustParseNoCreds(t *testing.T, extra string) *Config {
	t.Helper()
	c, err := Parse("t", []byte("executableName=x\napplicationName=a\nstreamName=s\n"+extra))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSTSAndRedaction(t *testing.T) {
	p := CredentialsProvider{Name: CredStsAssumeRole, Args: []string{"arn:aws:iam::123456789012:role/r", "sess", "externalId=s3cr3t", "endpoint=sts.example.com^eu-west-1", "endpointRegion=eu-west-1"}}
	s, ok := p.STS()
	want := StsAssumeRole{RoleARN: "arn:aws:iam::123456789012:role/r", SessionName: "sess", ExternalID: "s3cr3t", Endpoint: "https://sts.example.com", SigningRegion: "eu-west-1", EndpointRegion: "eu-west-1"}
	if !ok || s != want {
		t.Fatalf("STS() = %+v, %v", s, ok)
	}
	r := p.Redacted()
	if strings.Contains(r, "s3cr3t") || !strings.Contains(r, "externalId=<redacted>") || !strings.Contains(r, "role/r") {
		t.Fatalf("Redacted() = %q", r)
	}
	q := CredentialsProvider{Name: CredProfile, Args: []string{"wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"}}
	if strings.Contains(q.Redacted(), "EXAMPLEKEY") {
		t.Fatalf("secret-looking argument not redacted: %q", q.Redacted())
	}
	c := mustParse(t, "AwsCredentialsProviderDynamoDB = StsAssumeRoleCredentialsProvider|arn:aws:iam::123456789012:role/r|sess|externalId=hidden\n")
	for _, st := range c.Settings() {
		if strings.Contains(st.Value, "hidden") {
			t.Fatalf("Settings leaks the external id: %+v", st)
		}
	}
}

func TestISODuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"PT15M", 15 * time.Minute, true},
		{"pt12h", 12 * time.Hour, true},
		{"P2D", 48 * time.Hour, true},
		{"P1DT1H1M1.5S", 25*time.Hour + time.Minute + 1500*time.Millisecond, true},
		{" PT1S ", time.Second, true},
		{"PT0S", 0, true},
		{"P", 0, false},
		{"PT", 0, false},
		{"1h", 0, false},
		{"-PT1S", 0, false},
	}
	for _, tt := range tests {
		got, err := parseISODuration(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("%q: got %v, %v", tt.in, got, err)
		}
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.properties")
	if err := os.WriteFile(p, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil || c.Source != p || c.ExecutableName != "app.py" {
		t.Fatalf("Load: %v %+v", err, c)
	}
	_, err = Load(filepath.Join(dir, "missing.properties"))
	var pe *Error
	if !errors.As(err, &pe) || !errors.Is(err, os.ErrNotExist) || pe.File == "" {
		t.Fatalf("missing file: %v", err)
	}
}

// TestSample loads the repository's Python sample and checks the settings
// it resolves to (docs/configuration.md).
func TestSample(t *testing.T) {
	c, err := Load("../samples/python/sample.properties")
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.ExecutableName, c.StreamName, c.ApplicationName, c.RegionName, c.InitialPosition, c.RetrievalMode, c.CredentialsKinesis[0].Name, c.ProcessingLanguage}
	want := []any{"sample_kclpy_app.py", "kclpysample", "PythonKCLSample", "us-east-1", PositionTrimHorizon, RetrievalFanout, CredDefault, "python/3.8"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

func TestSuggest(t *testing.T) {
	if s := suggest("zzzzzz"); s != "" {
		t.Fatalf("suggest for nonsense: %q", s)
	}
	if s := suggest("streamname"); !strings.Contains(s, "streamName") {
		t.Fatalf("suggest(streamname) = %q", s)
	}
}

func TestISOString(t *testing.T) {
	for _, in := range []string{"P1D", "PT12H", "PT1M30.5S", "P2DT3H4M5S", "PT0S"} {
		d, err := parseISODuration(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := isoString(d); got != in {
			t.Errorf("isoString(%v) = %q, want %q", d, got, in)
		}
	}
}
