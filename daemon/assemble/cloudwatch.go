package assemble

import (
	"sync"
	"time"

	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/multilangd/multilangd/cwmetrics"
	"github.com/multilangd/multilangd/daemon"
	"github.com/multilangd/multilangd/properties"
)

const (
	count = cwtypes.StandardUnitCount
	msec  = cwtypes.StandardUnitMilliseconds
	bytes = cwtypes.StandardUnitBytes
)

// cloudWatchConfig maps the metrics* properties onto the publisher (Java
// MetricsConfig: namespace = applicationName).
func cloudWatchConfig(cfg *properties.Config) cwmetrics.Config {
	return cwmetrics.Config{
		Namespace:         cfg.ApplicationName,
		Level:             cwmetrics.ParseLevel(cfg.MetricsLevel),
		EnabledDimensions: cfg.MetricsEnabledDimensions,
		BufferTime:        cfg.MetricsBufferTime,
		MaxQueueSize:      cfg.MetricsMaxQueueSize,
	}
}

// cwMetrics maps the scheduler's events onto Java's CloudWatch datums.
type cwMetrics struct {
	o *ops

	mu    sync.Mutex
	stuck map[string]bool // shards the watchdog reports
}

func newCWMetrics(o *ops) *cwMetrics { return &cwMetrics{o: o, stuck: map[string]bool{}} }

// RecordsProcessed is Java ProcessTask.call: RecordsProcessed and
// DataBytesProcessed start at 0 for every batch, MillisBehindLatest goes to
// the shard's ProcessTask and to the application-wide ApplicationTracker.
func (m *cwMetrics) RecordsProcessed(leaseKey string, b daemon.BatchStats) {
	s := m.o.shardScope("ProcessTask", leaseKey).
		Add("RecordsProcessed", 0, count, cwmetrics.Summary).
		Add("DataBytesProcessed", 0, bytes, cwmetrics.Summary)
	app := m.o.cw.Scope("ApplicationTracker")
	if b.MillisBehindLatest != nil {
		v := float64(*b.MillisBehindLatest)
		s.Add("MillisBehindLatest", v, msec, cwmetrics.Summary)
		app.Add("MillisBehindLatest", v, msec, cwmetrics.Summary)
	}
	if b.Records > 0 {
		s.Add("RecordsProcessed", float64(b.Records), count, cwmetrics.Summary)
		// Java adds each record's size: the set of those values.
		s.AddStats("DataBytesProcessed", statSet(b.Records, b.Bytes, b.MinRecordBytes, b.MaxRecordBytes), bytes, cwmetrics.Summary)
	}
	if b.Delivered {
		s.AddLatency("RecordProcessor.processRecords", b.ProcessRecords, cwmetrics.Summary)
	}
	s.AddSuccessAndLatency("", true, b.Task, cwmetrics.Summary).End()
	app.End()
}

func statSet(n, sum, lo, hi int) cwtypes.StatisticSet {
	f := func(v float64) *float64 { return &v }
	return cwtypes.StatisticSet{SampleCount: f(float64(n)), Sum: f(float64(sum)), Minimum: f(float64(lo)), Maximum: f(float64(hi))}
}

// TaskFailed is a ProcessTask that did not succeed.
func (m *cwMetrics) TaskFailed(leaseKey string) {
	m.o.shardScope("ProcessTask", leaseKey).AddSuccess("", false, cwmetrics.Summary).End()
}

// ChildInitialized is Java InitializeTask's RecordProcessor.initialize.Time
// (the scope has no ShardId).
func (m *cwMetrics) ChildInitialized(_ string, took time.Duration) {
	m.o.cw.Scope("InitializeTask").AddLatency("RecordProcessor.initialize", took, cwmetrics.Summary).End()
}

func (m *cwMetrics) LeaseReleased(string)   {}
func (m *cwMetrics) ConsumerStopped(string) {}

// ShardStuck records the watchdog's verdict; stuckShards publishes it.
func (m *cwMetrics) ShardStuck(leaseKey string, stuck bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if stuck {
		m.stuck[leaseKey] = true
		return
	}
	delete(m.stuck, leaseKey)
}

// stuckShards publishes the multilangd watchdog datums (no Java
// equivalent): StuckShards per worker, and Stuck = 1 per stuck shard.
func (m *cwMetrics) stuckShards() {
	m.mu.Lock()
	shards := make([]string, 0, len(m.stuck))
	for s := range m.stuck {
		shards = append(shards, s)
	}
	m.mu.Unlock()
	m.o.workerScope("ShardWatchdog").Add("StuckShards", float64(len(shards)), count, cwmetrics.Summary).End()
	for _, s := range shards {
		m.o.shardScope("ShardWatchdog", s).Add("Stuck", 1, count, cwmetrics.Summary).End()
	}
}

// teeMetrics hands each event to every sink (Prometheus and CloudWatch
// read the same events).
type teeMetrics []daemon.Metrics

func (t teeMetrics) RecordsProcessed(leaseKey string, b daemon.BatchStats) {
	for _, m := range t {
		m.RecordsProcessed(leaseKey, b)
	}
}

func (t teeMetrics) TaskFailed(leaseKey string) {
	for _, m := range t {
		m.TaskFailed(leaseKey)
	}
}

func (t teeMetrics) LeaseReleased(leaseKey string) {
	for _, m := range t {
		m.LeaseReleased(leaseKey)
	}
}

func (t teeMetrics) ConsumerStopped(leaseKey string) {
	for _, m := range t {
		m.ConsumerStopped(leaseKey)
	}
}

func (t teeMetrics) ChildInitialized(leaseKey string, took time.Duration) {
	for _, m := range t {
		m.ChildInitialized(leaseKey, took)
	}
}

func (t teeMetrics) ShardStuck(leaseKey string, stuck bool) {
	for _, m := range t {
		m.ShardStuck(leaseKey, stuck)
	}
}

// registerCloudWatch adds the publisher's queue and losses to Prometheus.
func registerCloudWatch(reg prometheus.Registerer, pub *cwmetrics.Publisher) {
	if !pub.Enabled() {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "multilangd_cloudwatch_queued_metrics",
			Help: "Distinct CloudWatch metrics aggregated locally, waiting to be published (bounded by metricsMaxQueueSize).",
		}, func() float64 { return float64(pub.Queued()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "multilangd_cloudwatch_dropped_metrics_total",
			Help: "CloudWatch metrics dropped because the queue was full (metricsMaxQueueSize).",
		}, func() float64 { full, _ := pub.Dropped(); return float64(full) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "multilangd_cloudwatch_failed_datums_total",
			Help: "Datums lost with PutMetricData requests that failed after the SDK's retries.",
		}, func() float64 { _, failed := pub.Dropped(); return float64(failed) }),
	)
}
