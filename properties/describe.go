package properties

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Setting is one resolved configuration value for display.
type Setting struct {
	// Section groups settings ("daemon", "stream", ...).
	Section string
	// Key is the properties key (canonical spelling).
	Key string
	// Value is the resolved value, secrets redacted.
	Value string
	// Line is where the value was set; 0 = default or derived.
	Line int
}

// Settings lists every resolved setting in a stable order, for `validate`
// and logs. Secrets in credentials-provider arguments are redacted.
func (c *Config) Settings() []Setting {
	var out []Setting
	sec := ""
	add := func(key, value string) {
		out = append(out, Setting{Section: sec, Key: key, Value: value, Line: c.Lines[key]})
	}
	// credentials keys are shown as users write them
	addCreds := func(key string, ps []CredentialsProvider) {
		parts := make([]string, len(ps))
		for j, p := range ps {
			parts[j] = p.Redacted()
		}
		out = append(out, Setting{Section: sec, Key: "A" + key[1:], Value: strings.Join(parts, ", "), Line: c.Lines[key]})
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	b := strconv.FormatBool
	i := strconv.Itoa
	orNone := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}

	sec = "daemon"
	add("executableName", c.ExecutableName)
	add("processingLanguage", orNone(c.ProcessingLanguage, "(unset)"))
	add("maxActiveThreads", i(c.MaxActiveThreads))
	if c.TimeoutInSeconds != nil {
		add("timeoutInSeconds", i(*c.TimeoutInSeconds))
	} else {
		add("timeoutInSeconds", "(unset: no per-message timeout)")
	}
	add("shutdownGraceMillis", ms(c.ShutdownGrace))

	sec = "application"
	add("applicationName", c.ApplicationName)
	add("streamName", c.StreamName)
	add("streamArn", orNone(c.StreamARN, "(unset)"))
	add("tableName", c.TableName)
	add("workerId", c.WorkerID)

	sec = "aws"
	add("regionName", orNone(c.RegionName, "(SDK default chain)"))
	add("kinesisClient.region", orNone(c.KinesisRegion, "(regionName)"))
	add("dynamoDbClient.region", orNone(c.DynamoDBRegion, "(regionName)"))
	add("cloudWatchClient.region", orNone(c.CloudWatchRegion, "(regionName)"))
	add("kinesisEndpoint", orNone(c.KinesisEndpoint, "(AWS)"))
	add("dynamoDBEndpoint", orNone(c.DynamoDBEndpoint, "(AWS)"))
	add("cloudWatchClient.endpointOverride", orNone(c.CloudWatchEndpoint, "(AWS)"))
	addCreds(keyCredentials, c.CredentialsKinesis)
	addCreds(keyCredentialsDynamoDB, c.CredentialsDynamoDB)
	addCreds(keyCredentialsCloudWatch, c.CredentialsCloudWatch)

	sec = "initial position"
	pos := string(c.InitialPosition)
	if c.InitialPosition == PositionAtTimestamp {
		pos += " " + c.InitialTimestamp.UTC().Format(time.RFC3339)
	}
	add("initialPositionInStream", pos)
	if c.InitialPosition == PositionAtTimestamp {
		out[len(out)-1].Line = c.Lines["initialPositionInStreamExtended"]
	}

	sec = "lease management"
	add("failoverTimeMillis", ms(c.FailoverTime))
	add("leaseAssignmentIntervalMillis", ms(c.LeaseAssignmentInterval))
	add("shardSyncIntervalMillis", ms(c.ShardSyncInterval))
	add("cleanupLeasesUponShardCompletion", b(c.CleanupLeasesUponShardCompletion))
	add("ignoreUnexpectedChildShards", b(c.IgnoreUnexpectedChildShards))
	add("maxLeasesForWorker", i(c.MaxLeasesForWorker))
	add("maxLeasesToStealAtOneTime", i(c.MaxLeasesToStealAtOneTime))
	add("enablePriorityLeaseAssignment", b(c.EnablePriorityLeaseAssignment))
	billing := BillingPayPerRequest
	if c.LeaseTableBillingProvisioned {
		billing = BillingProvisioned
	}
	add("leaseTableBillingMode", billing)
	add("initialLeaseTableReadCapacity", i(c.InitialLeaseTableReadCapacity))
	add("initialLeaseTableWriteCapacity", i(c.InitialLeaseTableWriteCapacity))
	add("leaseTableDeletionProtectionEnabled", b(c.LeaseTableDeletionProtection))
	add("leaseTablePitrEnabled", b(c.LeaseTablePitrEnabled))
	if c.LeaseTableScanTotalSegments != nil {
		add("leaseTableScanTotalSegments", i(*c.LeaseTableScanTotalSegments))
	} else {
		add("leaseTableScanTotalSegments", "(automatic)")
	}
	add("maxLeaseRenewalThreads", i(c.MaxLeaseRenewalThreads))
	add("listShardsBackoffTimeInMillis", ms(c.ListShardsBackoffTime))
	add("maxListShardsRetryAttempts", i(c.MaxListShardsRetryAttempts))
	add("gracefulLeaseHandoffTimeoutMillis", ms(c.GracefulLeaseHandoffTimeout))
	add("isGracefulLeaseHandoffEnabled", b(c.GracefulLeaseHandoffEnabled))

	sec = "worker utilization (3.x)"
	add("inMemoryWorkerMetricsCaptureFrequencyMillis", ms(c.InMemoryWorkerMetricsCaptureFrequency))
	add("workerMetricsReporterFreqInMillis", ms(c.WorkerMetricsReporterFreq))
	add("noOfPersistedMetricsPerWorkerMetrics", i(c.NoOfPersistedMetricsPerWorkerMetrics))
	add("disableWorkerMetrics", b(c.DisableWorkerMetrics))
	if math.IsInf(c.MaxThroughputPerHostKBps, 1) {
		add("maxThroughputPerHostKBps", "(unlimited)")
	} else {
		add("maxThroughputPerHostKBps", strconv.FormatFloat(c.MaxThroughputPerHostKBps, 'g', -1, 64))
	}
	add("dampeningPercentage", i(c.DampeningPercentage))
	add("reBalanceThresholdPercentage", i(c.ReBalanceThresholdPercentage))
	add("allowThroughputOvershoot", b(c.AllowThroughputOvershoot))
	add("varianceBalancingFrequency", i(c.VarianceBalancingFrequency))
	add("workerMetricsEMAAlpha", strconv.FormatFloat(c.WorkerMetricsEMAAlpha, 'g', -1, 64))
	add("staleWorkerMetricsEntryCleanupDuration", isoString(c.StaleWorkerMetricsEntryCleanupDuration))
	for _, t := range []struct {
		prefix string
		tc     TableConfig
	}{{"workerMetrics", c.WorkerMetricsTable}, {"coordinatorState", c.CoordinatorStateTable}} {
		add(t.prefix+"TableName", t.tc.TableName)
		add(t.prefix+"BillingMode", t.tc.BillingMode)
		if t.tc.BillingMode == BillingProvisioned {
			add(t.prefix+"ReadCapacity", strconv.FormatInt(t.tc.ReadCapacity, 10))
			add(t.prefix+"WriteCapacity", strconv.FormatInt(t.tc.WriteCapacity, 10))
		}
		add(t.prefix+"PointInTimeRecoveryEnabled", b(t.tc.PointInTimeRecoveryEnabled))
		add(t.prefix+"DeletionProtectionEnabled", b(t.tc.DeletionProtectionEnabled))
		if len(t.tc.Tags) > 0 {
			add(t.prefix+"Tags", fmt.Sprint(t.tc.Tags))
		}
	}

	sec = "coordinator"
	add("parentShardPollIntervalMillis", ms(c.ParentShardPollInterval))
	add("skipShardSyncAtWorkerInitializationIfLeasesExist", b(c.SkipShardSyncAtWorkerInitializationIfLeasesExist))
	add("schedulerInitializationBackoffTimeMillis", ms(c.SchedulerInitializationBackoffTime))
	add("clientVersionConfig", c.ClientVersionConfig)
	add("migrateAllEntitiesToLeaseTable", b(c.MigrateAllEntitiesToLeaseTable))
	add("tableMigrationCompleteBakeTimeSeconds", strconv.FormatInt(int64(c.TableMigrationCompleteBakeTime/time.Second), 10))

	sec = "processing and metrics"
	add("callProcessRecordsEvenForEmptyRecordList", b(c.CallProcessRecordsEvenForEmptyRecordList))
	add("taskBackoffTimeMillis", ms(c.TaskBackoffTime))
	if c.LogWarningForTaskAfter != nil {
		add("logWarningForTaskAfterMillis", ms(*c.LogWarningForTaskAfter))
	} else {
		add("logWarningForTaskAfterMillis", "(off)")
	}
	add("metricsBufferTimeMillis", ms(c.MetricsBufferTime))
	add("metricsMaxQueueSize", i(c.MetricsMaxQueueSize))
	add("metricsLevel", c.MetricsLevel)
	add("metricsEnabledDimensions", strings.Join(c.MetricsEnabledDimensions, ","))

	sec = "retrieval"
	add("retrievalMode", string(c.RetrievalMode))
	if c.RetrievalMode == RetrievalPolling {
		add("maxRecords", i(c.MaxRecords))
		add("idleTimeBetweenReadsInMillis", ms(c.IdleTimeBetweenReads))
		add("millisBehindLatestThresholdForReducedTps", ms(c.MillisBehindLatestThresholdForReducedTps))
	} else {
		add("fanoutConfig.consumerArn", orNone(c.Fanout.ConsumerARN, "(register fanoutConfig.consumerName)"))
		add("fanoutConfig.consumerName", c.Fanout.ConsumerName)
		add("fanoutConfig.maxDescribeStreamSummaryRetries", i(c.Fanout.MaxDescribeStreamSummaryRetries))
		add("fanoutConfig.maxDescribeStreamConsumerRetries", i(c.Fanout.MaxDescribeStreamConsumerRetries))
		add("fanoutConfig.registerStreamConsumerRetries", i(c.Fanout.RegisterStreamConsumerRetries))
		add("fanoutConfig.retryBackoffMillis", ms(c.Fanout.RetryBackoff))
	}

	sec = "multilangd"
	add("logLevel", c.LogLevel)
	add("logFormat", c.LogFormat)
	add("childStderrLogLevel", c.ChildStderrLevel)
	add("metricsListenAddress", orNone(c.MetricsListenAddress, "(off)"))
	add("childShutdownGraceMillis", ms(c.ChildShutdownGrace))
	add("maxChildFailures", i(c.MaxChildFailures))
	return out
}

// isoString formats d as an ISO-8601 duration (P1D, PT12H, PT1M30.5S).
func isoString(d time.Duration) string {
	if d == 0 {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteString("P")
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dD", days)
		d -= days * 24 * time.Hour
	}
	if d == 0 {
		return b.String()
	}
	b.WriteString("T")
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
		d -= m * time.Minute
	}
	if d > 0 {
		b.WriteString(strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S")
	}
	return b.String()
}
