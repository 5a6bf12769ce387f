// Package cwmetrics publishes the KCL's CloudWatch metrics as the Java KCL
// does (CloudWatchMetricsFactory, CloudWatchMetricsScope,
// FilteringMetricsScope, MetricAccumulatingQueue, CloudWatchPublisherRunnable,
// CloudWatchMetricsPublisher): data are filtered by level and enabled
// dimensions, accumulated locally into statistic sets per (name,
// dimensions), and flushed by one goroutine every BufferTime or when
// FlushSize are queued, in PutMetricData calls of at most 20 datums. Adding
// data never blocks on CloudWatch; when CloudWatch is down the queue stays
// bounded by MaxQueueSize distinct metrics (new ones are dropped, as Java's
// queue does) and failed requests are dropped after the SDK's retries.
package cwmetrics

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/properties"
)

// Level is Java's MetricsLevel: a datum is kept when its level is at least
// the configured one (DETAILED < SUMMARY < NONE).
type Level int

// Levels, ordered like Java's MetricsLevel values.
const (
	Detailed Level = iota
	Summary
	None
)

// ParseLevel maps metricsLevel (NONE, SUMMARY, DETAILED; any case) to a
// Level; anything else is DETAILED, the Java default.
func ParseLevel(s string) Level {
	switch strings.ToUpper(s) {
	case "NONE":
		return None
	case "SUMMARY":
		return Summary
	}
	return Detailed
}

func (l Level) String() string { return [...]string{"DETAILED", "SUMMARY", "NONE"}[l] }

// Dimension names (Java MetricsUtil).
const (
	DimOperation = "Operation"
	DimShardID   = "ShardId"
	DimStreamID  = "StreamId" // multi-stream only (MetricsUtil.STREAM_IDENTIFIER)
	DimWorker    = "WorkerIdentifier"
	// AllDimensions in EnabledDimensions enables every dimension (Java
	// MetricsScope.METRICS_DIMENSIONS_ALL).
	AllDimensions = "ALL"
)

// Java constants without a properties key (MetricsConfig.publisherFlushBuffer,
// CloudWatchMetricsPublisher's batch size) and the per-request bound; the
// keyed defaults (metricsBufferTimeMillis, metricsMaxQueueSize,
// metricsEnabledDimensions) come from properties.Defaults.
const (
	DefaultFlushSize    = 200
	MaxDatumsPerRequest = 20
	DefaultPutTimeout   = 5 * time.Second
)

// PutAPI is the CloudWatch call the publisher makes.
type PutAPI interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// Config configures a Publisher.
type Config struct {
	// Namespace is the CloudWatch namespace (the KCL uses applicationName).
	Namespace string
	// Level is metricsLevel; None publishes nothing.
	Level Level
	// EnabledDimensions is metricsEnabledDimensions; containing
	// AllDimensions (the default) enables all.
	EnabledDimensions []string
	// BufferTime is metricsBufferTimeMillis.
	BufferTime time.Duration
	// MaxQueueSize is metricsMaxQueueSize: distinct metrics held locally.
	MaxQueueSize int
	// FlushSize flushes early when this many are queued (Java
	// publisherFlushBuffer, 200).
	FlushSize int
	// PutTimeout bounds one PutMetricData call, retries included.
	PutTimeout time.Duration
	// Log receives publication failures; nil discards them.
	Log *zap.Logger
}

func (c *Config) setDefaults() {
	def := properties.Defaults()
	if c.BufferTime <= 0 {
		c.BufferTime = def.MetricsBufferTime
	}
	if c.MaxQueueSize <= 0 {
		c.MaxQueueSize = def.MetricsMaxQueueSize
	}
	if c.FlushSize <= 0 {
		c.FlushSize = DefaultFlushSize
	}
	if c.PutTimeout <= 0 {
		c.PutTimeout = DefaultPutTimeout
	}
	if len(c.EnabledDimensions) == 0 {
		c.EnabledDimensions = def.MetricsEnabledDimensions
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
}

// Publisher accumulates data and publishes them from Run.
type Publisher struct {
	api     PutAPI
	cfg     Config
	allDims bool

	mu      sync.Mutex
	queue   []string          // keys in first-queued order
	data    map[string]*datum // by key
	dropped int               // new metrics dropped since the last report
	wake    chan struct{}     // FlushSize reached

	droppedTotal atomic.Int64 // new metrics dropped because the queue was full
	failedTotal  atomic.Int64 // datums in failed PutMetricData requests
}

type datum struct {
	name  string
	unit  types.StandardUnit
	dims  []types.Dimension
	stats types.StatisticSet
}

// New returns a publisher; nothing is sent until Run.
func New(api PutAPI, cfg Config) *Publisher {
	cfg.setDefaults()
	return &Publisher{
		api: api, cfg: cfg,
		allDims: slices.Contains(cfg.EnabledDimensions, AllDimensions),
		data:    map[string]*datum{},
		wake:    make(chan struct{}, 1),
	}
}

// Enabled reports whether anything is published (level is not NONE).
func (p *Publisher) Enabled() bool { return p != nil && p.cfg.Level != None }

// BufferTime is the flush period in effect (metricsBufferTimeMillis).
func (p *Publisher) BufferTime() time.Duration { return p.cfg.BufferTime }

// Queued returns how many distinct metrics wait for publication.
func (p *Publisher) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// Dropped returns how many new metrics were dropped because the queue was
// full, and how many datums were lost with failed requests.
func (p *Publisher) Dropped() (queueFull, failed int64) {
	return p.droppedTotal.Load(), p.failedTotal.Load()
}

// enqueue accumulates one scope's data (MetricAccumulatingQueue.offer).
func (p *Publisher) enqueue(ds []*datum) {
	p.mu.Lock()
	for _, d := range ds {
		k := key(d.name, d.dims)
		if old, ok := p.data[k]; ok {
			if old.unit != d.unit {
				p.cfg.Log.Warn("CloudWatch metric unit mismatch; datum dropped", zap.String("metric", d.name))
				continue
			}
			old.stats = merge(old.stats, d.stats)
			continue
		}
		if len(p.queue) >= p.cfg.MaxQueueSize {
			p.dropped++
			p.droppedTotal.Add(1)
			continue
		}
		p.queue = append(p.queue, k)
		p.data[k] = d
	}
	full := len(p.queue) >= p.cfg.FlushSize
	p.mu.Unlock()
	if full {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// drain removes up to n queued metrics, oldest first.
func (p *Publisher) drain(n int) (out []types.MetricDatum, dropped int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n = min(n, len(p.queue))
	for _, k := range p.queue[:n] {
		d := p.data[k]
		delete(p.data, k)
		out = append(out, types.MetricDatum{
			MetricName: aws.String(d.name), Unit: d.unit, Dimensions: d.dims, StatisticValues: &d.stats,
		})
	}
	p.queue = slices.Delete(p.queue, 0, n)
	dropped, p.dropped = p.dropped, 0
	return out, dropped
}

// Run publishes until ctx is done, then flushes what is queued (bounded by
// PutTimeout per request) and returns nil. With level NONE it returns at once.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.Enabled() {
		return nil
	}
	t := time.NewTimer(p.cfg.BufferTime)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// Java drains the queue at shutdown; bounded here so that a
			// CloudWatch outage cannot hold up the stop.
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.PutTimeout)
			defer cancel()
			for p.Queued() > 0 && final.Err() == nil {
				p.flush(final)
			}
			return nil
		case <-t.C:
		case <-p.wake:
		}
		p.flush(ctx)
		// Java CloudWatchPublisherRunnable: flush again at once while a
		// full batch is waiting, otherwise after BufferTime.
		next := p.cfg.BufferTime
		if p.Queued() >= p.cfg.FlushSize {
			next = 0
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// flush drains up to FlushSize metrics and sends them in requests of at most
// MaxDatumsPerRequest (CloudWatchMetricsPublisher.publishMetrics); a failed
// request is logged and its data dropped.
func (p *Publisher) flush(ctx context.Context) {
	ds, dropped := p.drain(p.cfg.FlushSize)
	if dropped > 0 {
		p.cfg.Log.Warn("CloudWatch metrics queue full; new metrics dropped",
			zap.Int("dropped", dropped), zap.Int("metricsMaxQueueSize", p.cfg.MaxQueueSize))
	}
	for batch := range slices.Chunk(ds, MaxDatumsPerRequest) {
		rctx, cancel := context.WithTimeout(ctx, p.cfg.PutTimeout)
		_, err := p.api.PutMetricData(rctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(p.cfg.Namespace), MetricData: batch})
		cancel()
		if err != nil {
			p.failedTotal.Add(int64(len(batch)))
			p.cfg.Log.Warn("could not publish datums to CloudWatch", zap.Int("datums", len(batch)), zap.Error(err))
		}
	}
}

// Scope collects the data of one operation run (Java MetricsScope). It is
// not safe for concurrent use; End hands it to the publisher.
type Scope struct {
	p     *Publisher
	dims  []types.Dimension
	data  map[string]*datum
	order []string
}

// Scope starts a scope with the Operation dimension (MetricsUtil
// createMetricsWithOperation). A nil or disabled publisher returns a scope
// that records nothing.
func (p *Publisher) Scope(operation string) *Scope {
	if !p.Enabled() {
		return &Scope{}
	}
	s := &Scope{p: p, data: map[string]*datum{}}
	s.AddDimension(DimOperation, operation)
	return s
}

// AddDimension adds a dimension unless metricsEnabledDimensions leaves it
// out (FilteringMetricsScope.addDimension).
func (s *Scope) AddDimension(name, value string) *Scope {
	if s.p == nil || (!s.p.allDims && !slices.Contains(s.p.cfg.EnabledDimensions, name)) {
		return s
	}
	for i, d := range s.dims {
		if *d.Name == name {
			s.dims[i].Value = aws.String(value)
			return s
		}
	}
	s.dims = append(s.dims, types.Dimension{Name: aws.String(name), Value: aws.String(value)})
	return s
}

// Add records one value (FilteringMetricsScope.addData): dropped below the
// configured level, else accumulated by name.
func (s *Scope) Add(name string, value float64, unit types.StandardUnit, level Level) *Scope {
	return s.AddStats(name, types.StatisticSet{Minimum: &value, Maximum: aws.Float64(value), Sum: aws.Float64(value), SampleCount: aws.Float64(1)}, unit, level)
}

// AddStats records several values at once as their statistic set.
func (s *Scope) AddStats(name string, st types.StatisticSet, unit types.StandardUnit, level Level) *Scope {
	if s.p == nil || level < s.p.cfg.Level {
		return s
	}
	if d, ok := s.data[name]; ok {
		if d.unit == unit {
			d.stats = merge(d.stats, st)
		}
		return s
	}
	st = types.StatisticSet{Minimum: aws.Float64(*st.Minimum), Maximum: aws.Float64(*st.Maximum), Sum: aws.Float64(*st.Sum), SampleCount: aws.Float64(*st.SampleCount)}
	s.data[name] = &datum{name: name, unit: unit, stats: st}
	s.order = append(s.order, name)
	return s
}

// AddSuccessAndLatency records <prefix>.Success (1/0, Count) and
// <prefix>.Time (ms), or Success and Time for an empty prefix
// (MetricsUtil.addSuccessAndLatency).
func (s *Scope) AddSuccessAndLatency(prefix string, ok bool, took time.Duration, level Level) *Scope {
	s.AddSuccess(prefix, ok, level)
	return s.AddLatency(prefix, took, level)
}

// AddSuccess records <prefix>.Success or Success (MetricsUtil.addSuccess).
func (s *Scope) AddSuccess(prefix string, ok bool, level Level) *Scope {
	v := 0.0
	if ok {
		v = 1
	}
	return s.Add(joinName(prefix, "Success"), v, types.StandardUnitCount, level)
}

// AddLatency records <prefix>.Time or Time in milliseconds (MetricsUtil.addLatency).
func (s *Scope) AddLatency(prefix string, took time.Duration, level Level) *Scope {
	return s.Add(joinName(prefix, "Time"), float64(took.Milliseconds()), types.StandardUnitMilliseconds, level)
}

// End hands the scope's data, each with the scope's dimensions, to the
// publisher (CloudWatchMetricsScope.end).
func (s *Scope) End() {
	if s.p == nil || len(s.order) == 0 {
		return
	}
	dims := slices.Clone(s.dims)
	slices.SortFunc(dims, func(a, b types.Dimension) int { return strings.Compare(*a.Name, *b.Name) })
	ds := make([]*datum, 0, len(s.order))
	for _, n := range s.order {
		d := s.data[n]
		d.dims = dims
		ds = append(ds, d)
	}
	s.p.enqueue(ds)
	s.data, s.order = nil, nil
}

func joinName(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// key identifies a metric by name and (sorted) dimensions (CloudWatchMetricKey).
func key(name string, dims []types.Dimension) string {
	var b strings.Builder
	b.WriteString(name)
	for _, d := range dims {
		fmt.Fprintf(&b, "\x00%s=%s", *d.Name, *d.Value)
	}
	return b.String()
}

// merge accumulates two statistic sets (MetricAccumulatingQueue.accumulate).
func merge(a, b types.StatisticSet) types.StatisticSet {
	return types.StatisticSet{
		Minimum:     aws.Float64(min(*a.Minimum, *b.Minimum)),
		Maximum:     aws.Float64(max(*a.Maximum, *b.Maximum)),
		Sum:         aws.Float64(*a.Sum + *b.Sum),
		SampleCount: aws.Float64(*a.SampleCount + *b.SampleCount),
	}
}
