package properties

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"time"
)

// setter applies one entry's value to the config being built.
type setter func(l *loader, e Entry) error

// keySpec describes one known key.
type keySpec struct {
	set setter
	// polling marks the keys that switch retrievalMode DEFAULT to polling
	// when set to a non-zero value.
	polling bool
	// inert is set on keys that are parsed and validated but not acted on
	// (yet): loading them warns, so nobody relies on them silently.
	inert bool
}

// Credentials keys after Java's case-insensitive prefix rewrite.
const (
	keyCredentials           = "awsCredentialsProvider"
	keyCredentialsDynamoDB   = "awsCredentialsProviderDynamoDB"
	keyCredentialsCloudWatch = "awsCredentialsProviderCloudWatch"
)

const maxInt32 = math.MaxInt32

// knownKeys maps every supported key (canonical spelling) to its setter.
var knownKeys = map[string]keySpec{
	// daemon / process
	"executableName":      {set: str(func(c *Config) *string { return &c.ExecutableName })},
	"processingLanguage":  {set: str(func(c *Config) *string { return &c.ProcessingLanguage })},
	"maxActiveThreads":    {set: integer(math.MinInt32, maxInt32, func(c *Config) *int { return &c.MaxActiveThreads }), inert: true},
	"timeoutInSeconds":    {set: intPtr(1, maxInt32, func(c *Config) **int { return &c.TimeoutInSeconds })},
	"shutdownGraceMillis": {set: millis(0, func(c *Config) *time.Duration { return &c.ShutdownGrace })},

	// application, stream, identity
	"applicationName": {set: str(func(c *Config) *string { return &c.ApplicationName })},
	"streamName":      {set: str(func(c *Config) *string { return &c.StreamName })},
	"streamArn":       {set: str(func(c *Config) *string { return &c.StreamARN })},
	"tableName":       {set: str(func(c *Config) *string { return &c.TableName })},
	"workerId":        {set: setWorkerID},
	"regionName":      {set: region(func(c *Config) *string { return &c.RegionName })},

	// AWS clients
	"kinesisEndpoint":                   {set: endpoint(func(c *Config) *string { return &c.KinesisEndpoint })},
	"dynamoDBEndpoint":                  {set: endpoint(func(c *Config) *string { return &c.DynamoDBEndpoint })},
	"cloudWatchClient.endpointOverride": {set: endpoint(func(c *Config) *string { return &c.CloudWatchEndpoint })},
	"kinesisClient.region":              {set: region(func(c *Config) *string { return &c.KinesisRegion })},
	"dynamoDbClient.region":             {set: region(func(c *Config) *string { return &c.DynamoDBRegion })},
	"cloudWatchClient.region":           {set: region(func(c *Config) *string { return &c.CloudWatchRegion })},
	keyCredentials:                      {set: credentials(func(c *Config) *[]CredentialsProvider { return &c.CredentialsKinesis })},
	keyCredentialsDynamoDB:              {set: credentials(func(c *Config) *[]CredentialsProvider { return &c.CredentialsDynamoDB })},
	keyCredentialsCloudWatch:            {set: credentials(func(c *Config) *[]CredentialsProvider { return &c.CredentialsCloudWatch })},

	// initial position
	"initialPositionInStream":         {set: setInitialPosition},
	"initialPositionInStreamExtended": {set: setInitialTimestamp},

	// lease management
	"failoverTimeMillis":                  {set: millis(1, func(c *Config) *time.Duration { return &c.FailoverTime })},
	"leaseAssignmentIntervalMillis":       {set: millis(1, func(c *Config) *time.Duration { return &c.LeaseAssignmentInterval }), inert: true},
	"shardSyncIntervalMillis":             {set: millis(1, func(c *Config) *time.Duration { return &c.ShardSyncInterval })},
	"cleanupLeasesUponShardCompletion":    {set: setCleanupLeases},
	"ignoreUnexpectedChildShards":         {set: boolean(func(c *Config) *bool { return &c.IgnoreUnexpectedChildShards })},
	"maxLeasesForWorker":                  {set: integer(1, maxInt32, func(c *Config) *int { return &c.MaxLeasesForWorker })},
	"maxLeasesToStealAtOneTime":           {set: integer(1, maxInt32, func(c *Config) *int { return &c.MaxLeasesToStealAtOneTime })},
	"enablePriorityLeaseAssignment":       {set: boolean(func(c *Config) *bool { return &c.EnablePriorityLeaseAssignment })},
	"initialLeaseTableReadCapacity":       {set: integer(1, maxInt32, func(c *Config) *int { return &c.InitialLeaseTableReadCapacity })},
	"initialLeaseTableWriteCapacity":      {set: integer(1, maxInt32, func(c *Config) *int { return &c.InitialLeaseTableWriteCapacity })},
	"leaseTableDeletionProtectionEnabled": {set: boolean(func(c *Config) *bool { return &c.LeaseTableDeletionProtection })},
	"leaseTablePitrEnabled":               {set: boolean(func(c *Config) *bool { return &c.LeaseTablePitrEnabled }), inert: true},
	"leaseTableScanTotalSegments":         {set: intPtr(1, maxInt32, func(c *Config) **int { return &c.LeaseTableScanTotalSegments }), inert: true},
	"maxLeaseRenewalThreads":              {set: integer(1, maxInt32, func(c *Config) *int { return &c.MaxLeaseRenewalThreads })},
	"listShardsBackoffTimeInMillis":       {set: millis(1, func(c *Config) *time.Duration { return &c.ListShardsBackoffTime })},
	"maxListShardsRetryAttempts":          {set: integer(1, maxInt32, func(c *Config) *int { return &c.MaxListShardsRetryAttempts })},

	// graceful hand-off
	"gracefulLeaseHandoffTimeoutMillis": {set: millis(0, func(c *Config) *time.Duration { return &c.GracefulLeaseHandoffTimeout }), inert: true},
	"isGracefulLeaseHandoffEnabled":     {set: boolean(func(c *Config) *bool { return &c.GracefulLeaseHandoffEnabled }), inert: true},

	// worker-utilization-aware assignment
	"inMemoryWorkerMetricsCaptureFrequencyMillis": {set: millis(1, func(c *Config) *time.Duration { return &c.InMemoryWorkerMetricsCaptureFrequency }), inert: true},
	"workerMetricsReporterFreqInMillis":           {set: millis(1, func(c *Config) *time.Duration { return &c.WorkerMetricsReporterFreq }), inert: true},
	"noOfPersistedMetricsPerWorkerMetrics":        {set: integer(1, maxInt32, func(c *Config) *int { return &c.NoOfPersistedMetricsPerWorkerMetrics }), inert: true},
	"disableWorkerMetrics":                        {set: boolean(func(c *Config) *bool { return &c.DisableWorkerMetrics }), inert: true},
	"maxThroughputPerHostKBps":                    {set: float(0, false, math.Inf(1), func(c *Config) *float64 { return &c.MaxThroughputPerHostKBps }), inert: true},
	"dampeningPercentage":                         {set: integer(1, 100, func(c *Config) *int { return &c.DampeningPercentage }), inert: true},
	"reBalanceThresholdPercentage":                {set: integer(1, 100, func(c *Config) *int { return &c.ReBalanceThresholdPercentage }), inert: true},
	"allowThroughputOvershoot":                    {set: boolean(func(c *Config) *bool { return &c.AllowThroughputOvershoot }), inert: true},
	"varianceBalancingFrequency":                  {set: integer(1, maxInt32, func(c *Config) *int { return &c.VarianceBalancingFrequency }), inert: true},
	"workerMetricsEMAAlpha":                       {set: float(0, false, 1, func(c *Config) *float64 { return &c.WorkerMetricsEMAAlpha }), inert: true},
	"staleWorkerMetricsEntryCleanupDuration":      {set: isoDuration(func(c *Config) *time.Duration { return &c.StaleWorkerMetricsEntryCleanupDuration }), inert: true},

	// coordinator
	"parentShardPollIntervalMillis":                    {set: millis(1, func(c *Config) *time.Duration { return &c.ParentShardPollInterval })},
	"skipShardSyncAtWorkerInitializationIfLeasesExist": {set: boolean(func(c *Config) *bool { return &c.SkipShardSyncAtWorkerInitializationIfLeasesExist })},
	"schedulerInitializationBackoffTimeMillis":         {set: millis(1, func(c *Config) *time.Duration { return &c.SchedulerInitializationBackoffTime })},
	"clientVersionConfig":                              {set: enum(func(c *Config) *string { return &c.ClientVersionConfig }, ClientVersion3X, ClientVersionCompatible2X, ClientVersionCompatible2XPhase1), inert: true},
	"migrateAllEntitiesToLeaseTable":                   {set: boolean(func(c *Config) *bool { return &c.MigrateAllEntitiesToLeaseTable }), inert: true},
	"tableMigrationCompleteBakeTimeSeconds":            {set: setBakeTime, inert: true},
	"shardPrioritization":                              {set: rejected("cannot be set from a properties file (Java fails at startup too)")},

	// processing / lifecycle / metrics
	"callProcessRecordsEvenForEmptyRecordList":  {set: boolean(func(c *Config) *bool { return &c.CallProcessRecordsEvenForEmptyRecordList })},
	"taskBackoffTimeMillis":                     {set: millis(1, func(c *Config) *time.Duration { return &c.TaskBackoffTime })},
	"logWarningForTaskAfterMillis":              {set: millisPtr(1, func(c *Config) **time.Duration { return &c.LogWarningForTaskAfter }), inert: true},
	"metricsBufferTimeMillis":                   {set: millis(1, func(c *Config) *time.Duration { return &c.MetricsBufferTime }), inert: true},
	"metricsMaxQueueSize":                       {set: integer(1, maxInt32, func(c *Config) *int { return &c.MetricsMaxQueueSize }), inert: true},
	"metricsLevel":                              {set: enum(func(c *Config) *string { return &c.MetricsLevel }, "NONE", "SUMMARY", "DETAILED"), inert: true},
	"metricsEnabledDimensions":                  {set: setDimensions, inert: true},
	"validateSequenceNumberBeforeCheckpointing": {set: noEffect("accepted but has no effect in KCL 2.x/3.x or multilangd")},

	// retrieval
	"retrievalMode":                                 {set: setRetrievalMode},
	"maxRecords":                                    {set: integer(1, 10000, func(c *Config) *int { return &c.MaxRecords }), polling: true},
	"idleTimeBetweenReadsInMillis":                  {set: setIdleTime, polling: true},
	"millisBehindLatestThresholdForReducedTps":      {set: millis(0, func(c *Config) *time.Duration { return &c.MillisBehindLatestThresholdForReducedTps }), polling: true},
	"retryGetRecordsInSeconds":                      {set: intPtr(1, maxInt32, func(c *Config) **int { return &c.RetryGetRecordsInSeconds }), polling: true},
	"maxGetRecordsThreadPool":                       {set: intPtr(1, maxInt32, func(c *Config) **int { return &c.MaxGetRecordsThreadPool }), polling: true},
	"fanoutConfig.consumerArn":                      {set: str(func(c *Config) *string { return &c.Fanout.ConsumerARN })},
	"fanoutConfig.consumerName":                     {set: str(func(c *Config) *string { return &c.Fanout.ConsumerName })},
	"fanoutConfig.maxDescribeStreamSummaryRetries":  {set: integer(1, maxInt32, func(c *Config) *int { return &c.Fanout.MaxDescribeStreamSummaryRetries })},
	"fanoutConfig.maxDescribeStreamConsumerRetries": {set: integer(1, maxInt32, func(c *Config) *int { return &c.Fanout.MaxDescribeStreamConsumerRetries })},
	"fanoutConfig.registerStreamConsumerRetries":    {set: integer(1, maxInt32, func(c *Config) *int { return &c.Fanout.RegisterStreamConsumerRetries })},
	"fanoutConfig.retryBackoffMillis":               {set: millis(1, func(c *Config) *time.Duration { return &c.Fanout.RetryBackoff })},

	// multilangd extensions
	"childStderrLogLevel":      {set: logLevel(func(c *Config) *string { return &c.ChildStderrLevel })},
	"logLevel":                 {set: logLevel(func(c *Config) *string { return &c.LogLevel })},
	"logFormat":                {set: setLogFormat},
	"metricsListenAddress":     {set: setListenAddress},
	"childShutdownGraceMillis": {set: millis(0, func(c *Config) *time.Duration { return &c.ChildShutdownGrace })},
	"maxChildFailures":         {set: integer(1, maxInt32, func(c *Config) *int { return &c.MaxChildFailures })},
	"leaseTableBillingMode":    {set: setLeaseTableBillingMode},
}

// Client version values of clientVersionConfig.
const (
	ClientVersion3X                 = "CLIENT_VERSION_CONFIG_3X"
	ClientVersionCompatible2X       = "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X"
	ClientVersionCompatible2XPhase1 = "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X_PHASE1"
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
	"pollingConfig.":                  {"maxRecords", "idleTimeBetweenReadsInMillis", "retryGetRecordsInSeconds", "maxGetRecordsThreadPool", "millisBehindLatestThresholdForReducedTps"},
	"gracefulLeaseHandoffConfigBean.": {"gracefulLeaseHandoffTimeoutMillis", "isGracefulLeaseHandoffEnabled"},
	"workerUtilizationAwareAssignmentConfigBean.": {"inMemoryWorkerMetricsCaptureFrequencyMillis", "workerMetricsReporterFreqInMillis",
		"noOfPersistedMetricsPerWorkerMetrics", "disableWorkerMetrics", "maxThroughputPerHostKBps", "dampeningPercentage",
		"reBalanceThresholdPercentage", "allowThroughputOvershoot", "varianceBalancingFrequency", "workerMetricsEMAAlpha",
		"staleWorkerMetricsEntryCleanupDuration"},
	"workerMetricStatsTableConfigBean.": tableKeys("workerMetrics"),
	"coordinatorStateTableConfigBean.":  tableKeys("coordinatorState"),
}

func tableKeys(prefix string) []string {
	return []string{prefix + "TableName", prefix + "BillingMode", prefix + "ReadCapacity", prefix + "WriteCapacity",
		prefix + "PointInTimeRecoveryEnabled", prefix + "DeletionProtectionEnabled", prefix + "Tags"}
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
	"leaseCleanupIntervalMillis":           "",
	"completedLeaseCleanupThresholdMillis": "",
	"garbageLeaseCleanupThresholdMillis":   "",
	"maxInitializationAttempts":            "",
	"timestampAtInitialPositionInStream":   "use initialPositionInStreamExtended = <epoch seconds>",
	"skipShardSyncAtStartupIfLeasesExist":  "use skipShardSyncAtWorkerInitializationIfLeasesExist",
	"http.proxyHost":                       "set HTTPS_PROXY/HTTP_PROXY in the environment instead",
	"http.proxyPort":                       "set HTTPS_PROXY/HTTP_PROXY in the environment instead",
}

func init() {
	for _, prefix := range []string{"workerMetrics", "coordinatorState"} {
		prefix := prefix
		tc := func(c *Config) *TableConfig {
			if prefix == "workerMetrics" {
				return &c.WorkerMetricsTable
			}
			return &c.CoordinatorStateTable
		}
		knownKeys[prefix+"TableName"] = keySpec{set: str(func(c *Config) *string { return &tc(c).TableName }), inert: prefix == "workerMetrics"}
		knownKeys[prefix+"BillingMode"] = keySpec{set: enum(func(c *Config) *string { return &tc(c).BillingMode }, BillingPayPerRequest, BillingProvisioned), inert: true}
		knownKeys[prefix+"ReadCapacity"] = keySpec{set: int64v(0, math.MaxInt64, func(c *Config) *int64 { return &tc(c).ReadCapacity }), inert: true}
		knownKeys[prefix+"WriteCapacity"] = keySpec{set: int64v(0, math.MaxInt64, func(c *Config) *int64 { return &tc(c).WriteCapacity }), inert: true}
		knownKeys[prefix+"PointInTimeRecoveryEnabled"] = keySpec{set: boolean(func(c *Config) *bool { return &tc(c).PointInTimeRecoveryEnabled }), inert: true}
		knownKeys[prefix+"DeletionProtectionEnabled"] = keySpec{set: boolean(func(c *Config) *bool { return &tc(c).DeletionProtectionEnabled }), inert: true}
		knownKeys[prefix+"Tags"] = keySpec{set: func(l *loader, e Entry) error {
			tags, skipped := parseTags(e.Value)
			for _, s := range skipped {
				l.warn(e, fmt.Sprintf("tag %q is not key=value and is skipped (as in Java)", s))
			}
			tc(l.cfg).Tags = tags
			return nil
		}, inert: true}
	}
}

// KnownKeys returns every key Load understands (canonical spellings), for
// documentation and tests.
func KnownKeys() []string {
	out := make([]string, 0, len(knownKeys))
	for k := range knownKeys {
		out = append(out, k)
	}
	return out
}

// ---- setter constructors ----

// str keeps the value exactly as written, like Java: trailing whitespace
// becomes part of a name (and so of the lease table name), which is worth a
// warning but must not be "fixed" or a mixed fleet would split.
func str(f func(*Config) *string) setter {
	return func(l *loader, e Entry) error {
		if strings.TrimSpace(e.Value) != e.Value && e.Key != "executableName" && e.Key != "processingLanguage" {
			l.warn(e, fmt.Sprintf("value %q has surrounding whitespace, kept as written (as in Java)", e.Value))
		}
		*f(l.cfg) = e.Value
		return nil
	}
}

func integer(min, max int64, f func(*Config) *int) setter {
	return func(l *loader, e Entry) error {
		n, err := parseInt(e.Value, min, max)
		if err != nil {
			return err
		}
		*f(l.cfg) = int(n)
		return nil
	}
}

func int64v(min, max int64, f func(*Config) *int64) setter {
	return func(l *loader, e Entry) error {
		n, err := parseInt(e.Value, min, max)
		if err != nil {
			return err
		}
		*f(l.cfg) = n
		return nil
	}
}

func intPtr(min, max int64, f func(*Config) **int) setter {
	return func(l *loader, e Entry) error {
		n, err := parseInt(e.Value, min, max)
		if err != nil {
			return err
		}
		v := int(n)
		*f(l.cfg) = &v
		return nil
	}
}

// millis parses a long number of milliseconds.
func millis(min int64, f func(*Config) *time.Duration) setter {
	return func(l *loader, e Entry) error {
		n, err := parseInt(e.Value, min, math.MaxInt64/int64(time.Millisecond))
		if err != nil {
			return err
		}
		*f(l.cfg) = time.Duration(n) * time.Millisecond
		return nil
	}
}

func millisPtr(min int64, f func(*Config) **time.Duration) setter {
	return func(l *loader, e Entry) error {
		n, err := parseInt(e.Value, min, math.MaxInt64/int64(time.Millisecond))
		if err != nil {
			return err
		}
		d := time.Duration(n) * time.Millisecond
		*f(l.cfg) = &d
		return nil
	}
}

func isoDuration(f func(*Config) *time.Duration) setter {
	return func(l *loader, e Entry) error {
		d, err := parseISODuration(e.Value)
		if err != nil {
			return err
		}
		*f(l.cfg) = d
		return nil
	}
}

// float parses a number in (min, max] (min inclusive when minIncl).
func float(min float64, minIncl bool, max float64, f func(*Config) *float64) setter {
	return func(l *loader, e Entry) error {
		v, err := parseFloat(e.Value)
		if err != nil {
			return err
		}
		if v < min || (!minIncl && v == min) || v > max {
			if math.IsInf(max, 1) {
				return fmt.Errorf("must be > %g", min)
			}
			return fmt.Errorf("must be > %g and <= %g", min, max)
		}
		*f(l.cfg) = v
		return nil
	}
}

func boolean(f func(*Config) *bool) setter {
	return func(l *loader, e Entry) error {
		b, trimmed, err := parseBool(e.Value)
		if err != nil {
			return err
		}
		if trimmed && b {
			l.warn(e, "value has surrounding whitespace; Java reads it as false, multilangd reads it as true")
		}
		*f(l.cfg) = b
		return nil
	}
}

func enum(f func(*Config) *string, allowed ...string) setter {
	return func(l *loader, e Entry) error {
		v, err := parseEnum(e.Value, allowed...)
		if err != nil {
			return err
		}
		if strings.TrimSpace(e.Value) != e.Value {
			l.warn(e, "value has surrounding whitespace; Java rejects it at startup, multilangd trims it")
		}
		*f(l.cfg) = v
		return nil
	}
}

func region(f func(*Config) *string) setter {
	return func(l *loader, e Entry) error {
		v := strings.TrimSpace(e.Value)
		if v == "" {
			return fmt.Errorf("region is empty (remove the key to use the SDK default region chain)")
		}
		if strings.ContainsAny(v, " /:") {
			return fmt.Errorf("not a region name such as us-east-1")
		}
		*f(l.cfg) = v
		return nil
	}
}

func endpoint(f func(*Config) *string) setter {
	return func(l *loader, e Entry) error {
		v := strings.TrimSpace(e.Value)
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("not an endpoint URL with scheme, such as https://kinesis.us-east-1.amazonaws.com or http://localhost:4567")
		}
		*f(l.cfg) = v
		return nil
	}
}

func credentials(f func(*Config) *[]CredentialsProvider) setter {
	return func(l *loader, e Entry) error {
		ps, warnings, err := parseCredentials(e.Value)
		for _, w := range warnings {
			l.warn(e, w)
		}
		if err != nil {
			return err
		}
		*f(l.cfg) = ps
		return nil
	}
}

func rejected(msg string) setter {
	return func(*loader, Entry) error { return fmt.Errorf("%s", msg) }
}

func noEffect(msg string) setter {
	return func(l *loader, e Entry) error { l.warn(e, msg); return nil }
}

func logLevel(f func(*Config) *string) setter {
	return func(l *loader, e Entry) error {
		v := strings.ToLower(strings.TrimSpace(e.Value))
		switch v {
		case "warning":
			v = "warn"
		case "debug", "info", "warn", "error":
		default:
			return fmt.Errorf("must be one of debug, info, warn, error")
		}
		*f(l.cfg) = v
		return nil
	}
}

// ---- individual setters ----

func setWorkerID(l *loader, e Entry) error {
	if e.Value == "" {
		// Java 2.x/3.x keep "", so every worker using the file shares one id
		// and they renew each other's leases; the daemon refuses that.
		return fmt.Errorf("must not be empty (every worker using this file would share the id); remove the key for a random id")
	}
	l.cfg.WorkerID = e.Value
	l.workerIDSet = true
	return nil
}

func setInitialPosition(l *loader, e Entry) error {
	v, err := parseEnum(e.Value, string(PositionLatest), string(PositionTrimHorizon), string(PositionAtTimestamp))
	if err != nil {
		return fmt.Errorf("must be LATEST or TRIM_HORIZON")
	}
	if v == string(PositionAtTimestamp) {
		return fmt.Errorf("AT_TIMESTAMP cannot be set here; use initialPositionInStreamExtended = <epoch seconds>")
	}
	if strings.TrimSpace(e.Value) != e.Value {
		l.warn(e, "value has surrounding whitespace; Java rejects it at startup, multilangd trims it")
	}
	l.position = InitialPosition(v)
	l.positionEntry = &e
	return nil
}

func setInitialTimestamp(l *loader, e Entry) error {
	n, err := parseInt(e.Value, 0, 253402300799) // up to 9999-12-31
	if err != nil {
		return fmt.Errorf("must be epoch seconds: %w", err)
	}
	l.timestamp = time.Unix(n, 0).UTC()
	l.timestampEntry = &e
	return nil
}

func setCleanupLeases(l *loader, e Entry) error {
	b, trimmed, err := parseBool(e.Value)
	if err != nil {
		return err
	}
	if trimmed && b {
		l.warn(e, "value has surrounding whitespace; Java reads it as false, multilangd reads it as true")
	}
	if !b {
		l.warn(e, "false is honoured by multilangd: finished shards' leases are kept (Java silently keeps cleaning them up)")
	}
	l.cfg.CleanupLeasesUponShardCompletion = b
	return nil
}

func setBakeTime(l *loader, e Entry) error {
	n, err := parseInt(e.Value, 0, math.MaxInt64/int64(time.Second))
	if err != nil {
		return err
	}
	c := min(max(n, 3600), 604800)
	if c != n {
		l.warn(e, fmt.Sprintf("clamped to %d seconds (allowed 3600..604800, as in Java)", c))
	}
	l.cfg.TableMigrationCompleteBakeTime = time.Duration(c) * time.Second
	return nil
}

func setDimensions(l *loader, e Entry) error {
	d := splitDimensions(e.Value)
	if len(d) == 0 {
		return fmt.Errorf("no dimension names (e.g. ALL, or ShardId,WorkerIdentifier)")
	}
	l.cfg.MetricsEnabledDimensions = d
	return nil
}

func setRetrievalMode(l *loader, e Entry) error {
	v, err := parseEnum(e.Value, string(RetrievalFanout), string(RetrievalPolling), string(RetrievalDefault))
	if err != nil {
		return fmt.Errorf("must be one of (FANOUT, POLLING, DEFAULT)")
	}
	if strings.TrimSpace(e.Value) != e.Value {
		l.warn(e, "value has surrounding whitespace; Java rejects it at startup, multilangd trims it")
	}
	l.cfg.RetrievalMode = RetrievalMode(v)
	return nil
}

func setIdleTime(l *loader, e Entry) error {
	n, err := parseInt(e.Value, 0, math.MaxInt64/int64(time.Millisecond))
	if err != nil {
		return err
	}
	if n < 200 {
		l.warn(e, "raised to the minimum of 200 ms (as in KCL 3.x)")
		n = 200
	}
	l.cfg.IdleTimeBetweenReads = time.Duration(n) * time.Millisecond
	return nil
}

func setLogFormat(l *loader, e Entry) error {
	v := strings.ToLower(strings.TrimSpace(e.Value))
	if v != "console" && v != "json" {
		return fmt.Errorf("must be console or json")
	}
	l.cfg.LogFormat = v
	return nil
}

func setListenAddress(l *loader, e Entry) error {
	v := strings.TrimSpace(e.Value)
	if v != "" {
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			return fmt.Errorf("must be host:port or :port (empty = off)")
		}
	}
	l.cfg.MetricsListenAddress = v
	return nil
}

func setLeaseTableBillingMode(l *loader, e Entry) error {
	v, err := parseEnum(e.Value, BillingPayPerRequest, BillingProvisioned)
	if err != nil {
		return err
	}
	l.cfg.LeaseTableBillingProvisioned = v == BillingProvisioned
	return nil
}
