package workermetrics

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
)

// Item attribute names (Java WorkerMetricStats).
const (
	AttrLastUpdateTime = "lut"
	AttrMetricStats    = "sts"
	AttrOperatingRange = "opr"
	AttrEntityType     = "entityType"
	// EntityType is the entityType of a worker-metrics item (Java
	// EntityType.WORKER_METRIC_STATS).
	EntityType = "WORKER_METRIC_STATS"
	// LeaseTableKey and LegacyTableKey are the partition keys of the item in
	// the lease table (3.5 single-table) and in <app>-WorkerMetricStats.
	LeaseTableKey  = "leaseKey"
	LegacyTableKey = "wid"
)

// Writer is the part of the DynamoDB API the reporter uses.
type Writer interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Target is where the item goes: the lease table with key leaseKey, or the
// legacy <app>-WorkerMetricStats table with key wid (Java
// WorkerMetricStatsDAO.getWriteDelegate).
type Target struct {
	Table        string
	PartitionKey string
}

// Config configures a Reporter (Java WorkerMetricsConfig defaults).
type Config struct {
	WorkerID string
	Target   Target
	// CaptureFrequency is inMemoryWorkerMetricsCaptureFrequencyMillis (1 s).
	CaptureFrequency time.Duration
	// ReporterFrequency is workerMetricsReporterFreqInMillis (30 s).
	ReporterFrequency time.Duration
	// PersistedValues is noOfPersistedMetricsPerWorkerMetrics (10).
	PersistedValues int
	// DisableCPU publishes throughput-only entries (disableWorkerMetrics).
	DisableCPU bool
	// Now is the wall clock (default time.Now).
	Now func() time.Time
	// OnReport, if set, is called after each report with its outcome and
	// how long it took (tests, metrics).
	OnReport func(err error, took time.Duration)
	// OnValues, if set, is called after each successful report with the
	// latest value of each metric written (by short name; empty for a
	// throughput-only entry).
	OnValues func(latest map[string]float64)
}

func (c *Config) setDefaults() {
	if c.CaptureFrequency <= 0 {
		c.CaptureFrequency = time.Second
	}
	if c.ReporterFrequency <= 0 {
		c.ReporterFrequency = 30 * time.Second
	}
	if c.PersistedValues <= 0 {
		c.PersistedValues = 10
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Reporter captures the worker's CPU and writes its WorkerMetricStats item
// (Java WorkerMetricStatsManager + WorkerMetricStatsReporter).
type Reporter struct {
	api   Writer
	cfg   Config
	log   *zap.Logger
	stats *stats
}

// NewReporter returns a reporter for cfg; the CPU source is detected from
// /proc/self/cgroup (see detectCPUSource). When none can be found, or
// DisableCPU is set, the entries are throughput-only (no sts/opr values).
func NewReporter(api Writer, cfg Config, log *zap.Logger) (*Reporter, error) {
	if cfg.WorkerID == "" || cfg.Target.Table == "" || cfg.Target.PartitionKey == "" {
		return nil, errors.New("workermetrics: WorkerID and Target are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	return newReporter(api, cfg, log, detectMeter(cfg.DisableCPU, log)), nil
}

// detectMeter is the CPU meter of this process's worker, nil when disabled
// or when no source can be found (logged).
func detectMeter(disabled bool, log *zap.Logger) *cpuMeter {
	if disabled {
		return nil
	}
	src, err := detectCPUSource("/", os.Getpid())
	if err != nil {
		log.Warn("no CPU figure for worker metrics; publishing throughput-only entries", zap.Error(err))
		return nil
	}
	log.Info("worker metrics CPU source", zap.String("source", src.name()))
	return newCPUMeter(src)
}

func newReporter(api Writer, cfg Config, log *zap.Logger, meter *cpuMeter) *Reporter {
	cfg.setDefaults()
	r := &Reporter{api: api, cfg: cfg, log: log.With(zap.String("workerMetricsTable", cfg.Target.Table))}
	r.stats = newStats(meter, cfg.PersistedValues, func(err error) {
		r.log.Warn("worker metric capture failed", zap.String("metric", CPUShortName), zap.Error(err))
	})
	return r
}

// Run captures every CaptureFrequency (first after a random jitter, Java
// WorkerMetricStatsManager.startManager) and reports at a fixed rate of
// ReporterFrequency after an initial 2 × CaptureFrequency (Java
// DynamicMigrationComponentsInitializer.startWorkerMetricsReporting) until
// ctx is done.
func (r *Reporter) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.loop(ctx, rand.N(r.cfg.CaptureFrequency), r.cfg.CaptureFrequency, func() { r.stats.capture(r.cfg.Now()) })
	}()
	go func() {
		defer wg.Done()
		r.loop(ctx, 2*r.cfg.CaptureFrequency, r.cfg.ReporterFrequency, func() {
			start := time.Now()
			err := r.Report(ctx)
			took := time.Since(start)
			if err != nil && ctx.Err() == nil {
				r.log.Warn("publishing worker metrics failed", zap.Error(err))
			}
			if r.cfg.OnReport != nil && ctx.Err() == nil {
				r.cfg.OnReport(err, took)
			}
		})
	}()
	wg.Wait()
}

func (r *Reporter) loop(ctx context.Context, first, every time.Duration, f func()) {
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f()
		t.Reset(every)
	}
}

// Report writes the item once: an UpdateItem without condition that SETs
// lut (epoch seconds), sts, opr and entityType (Java
// WorkerMetricStatsDAO.updateMetrics through the enhanced client with
// IGNORE_NULLS). sup/slu are not written (docs/compatibility.md).
func (r *Reporter) Report(ctx context.Context) error {
	sts := r.stats.compute()
	item := Item(sts, r.stats.operatingRange(), r.cfg.Now())
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	expr := "SET "
	i := 0
	for _, k := range []string{AttrLastUpdateTime, AttrMetricStats, AttrOperatingRange, AttrEntityType} {
		if i > 0 {
			expr += ", "
		}
		n, v := "#a"+strconv.Itoa(i), ":v"+strconv.Itoa(i)
		names[n], values[v] = k, item[k]
		expr += n + " = " + v
		i++
	}
	_, err := r.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(r.cfg.Target.Table),
		Key:                       map[string]types.AttributeValue{r.cfg.Target.PartitionKey: &types.AttributeValueMemberS{Value: r.cfg.WorkerID}},
		UpdateExpression:          aws.String(expr),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return fmt.Errorf("worker metrics of %s to %s: %w", r.cfg.WorkerID, r.cfg.Target.Table, err)
	}
	if r.cfg.OnValues != nil {
		latest := make(map[string]float64, len(sts))
		for name, vs := range sts {
			if len(vs) > 0 {
				latest[name] = vs[len(vs)-1]
			}
		}
		r.cfg.OnValues(latest)
	}
	return nil
}

// Item is the non-key attributes of a WorkerMetricStats item.
func Item(sts map[string][]float64, opr map[string][]int64, now time.Time) map[string]types.AttributeValue {
	stsM := map[string]types.AttributeValue{}
	for k, vs := range sts {
		l := make([]types.AttributeValue, len(vs))
		for i, v := range vs {
			l[i] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(v, 'f', -1, 64)}
		}
		stsM[k] = &types.AttributeValueMemberL{Value: l}
	}
	oprM := map[string]types.AttributeValue{}
	for k, vs := range opr {
		l := make([]types.AttributeValue, len(vs))
		for i, v := range vs {
			l[i] = &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
		}
		oprM[k] = &types.AttributeValueMemberL{Value: l}
	}
	return map[string]types.AttributeValue{
		AttrLastUpdateTime: &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
		AttrMetricStats:    &types.AttributeValueMemberM{Value: stsM},
		AttrOperatingRange: &types.AttributeValueMemberM{Value: oprM},
		AttrEntityType:     &types.AttributeValueMemberS{Value: EntityType},
	}
}
