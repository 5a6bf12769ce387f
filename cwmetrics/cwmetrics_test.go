package cwmetrics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"go.uber.org/goleak"

	"github.com/multilangd/multilangd/properties"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeCW records every request; fail makes each call fail.
type fakeCW struct {
	mu   sync.Mutex
	reqs []*cloudwatch.PutMetricDataInput
	fail bool
}

func (f *fakeCW) PutMetricData(_ context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, in)
	if f.fail {
		return nil, errors.New("CloudWatch is down")
	}
	return &cloudwatch.PutMetricDataOutput{}, nil
}

func (f *fakeCW) datums() map[string]types.MetricDatum {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]types.MetricDatum{}
	for _, r := range f.reqs {
		for _, d := range r.MetricData {
			out[describe(d)] = d
		}
	}
	return out
}

// describe is "name{dim=value,...}".
func describe(d types.MetricDatum) string {
	s := *d.MetricName + "{"
	for i, dim := range d.Dimensions {
		if i > 0 {
			s += ","
		}
		s += *dim.Name + "=" + *dim.Value
	}
	return s + "}"
}

func TestScopeFiltersAndAccumulates(t *testing.T) {
	tests := []struct {
		name  string
		level Level
		dims  []string
		want  map[string]string // datum -> "count/sum/min/max unit"
	}{
		{"detailed, all dimensions", Detailed, nil, map[string]string{
			"RecordsProcessed{Operation=ProcessTask,ShardId=s1}":                      "2/5/2/3 Count",
			"KinesisDataFetcher.getRecords.Time{Operation=ProcessTask,ShardId=s1}":    "1/7/7/7 Milliseconds",
			"KinesisDataFetcher.getRecords.Success{Operation=ProcessTask,ShardId=s1}": "1/1/1/1 Count",
		}},
		{"summary omits detailed", Summary, nil, map[string]string{
			"RecordsProcessed{Operation=ProcessTask,ShardId=s1}": "2/5/2/3 Count",
		}},
		{"enabled dimensions filter", Detailed, []string{"ShardId"}, map[string]string{
			"RecordsProcessed{ShardId=s1}":                      "2/5/2/3 Count",
			"KinesisDataFetcher.getRecords.Time{ShardId=s1}":    "1/7/7/7 Milliseconds",
			"KinesisDataFetcher.getRecords.Success{ShardId=s1}": "1/1/1/1 Count",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cw := &fakeCW{}
			p := New(cw, Config{Namespace: "app", Level: tt.level, EnabledDimensions: tt.dims})
			for _, n := range []float64{2, 3} {
				p.Scope("ProcessTask").AddDimension(DimShardID, "s1").Add("RecordsProcessed", n, types.StandardUnitCount, Summary).End()
			}
			p.Scope("ProcessTask").AddDimension(DimShardID, "s1").
				AddSuccessAndLatency("KinesisDataFetcher.getRecords", true, 7*time.Millisecond, Detailed).End()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = p.Run(ctx) // final flush
			got := cw.datums()
			if len(got) != len(tt.want) {
				t.Fatalf("got %d datums %v, want %v", len(got), keys(got), tt.want)
			}
			for k, w := range tt.want {
				d, ok := got[k]
				if !ok {
					t.Fatalf("no %s in %v", k, keys(got))
				}
				st := d.StatisticValues
				if s := fmt.Sprintf("%g/%g/%g/%g %s", *st.SampleCount, *st.Sum, *st.Minimum, *st.Maximum, d.Unit); s != w {
					t.Errorf("%s = %s, want %s", k, s, w)
				}
			}
			for _, r := range cw.reqs {
				if *r.Namespace != "app" {
					t.Errorf("namespace %q", *r.Namespace)
				}
			}
		})
	}
}

func keys(m map[string]types.MetricDatum) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestNoneSendsNothing(t *testing.T) {
	cw := &fakeCW{}
	p := New(cw, Config{Namespace: "app", Level: None})
	p.Scope("ProcessTask").Add("RecordsProcessed", 1, types.StandardUnitCount, Summary).End()
	if err := p.Run(context.Background()); err != nil { // returns at once
		t.Fatal(err)
	}
	if len(cw.reqs) != 0 || p.Queued() != 0 {
		t.Fatalf("NONE sent %d requests, queued %d", len(cw.reqs), p.Queued())
	}
}

// Requests carry at most 20 datums; a flush drains at most FlushSize; the
// queue is bounded by MaxQueueSize while CloudWatch is down and adding never
// blocks.
func TestBatchingAndBoundedQueue(t *testing.T) {
	cw := &fakeCW{fail: true}
	p := New(cw, Config{Namespace: "app", MaxQueueSize: 100, FlushSize: 50, BufferTime: time.Hour})
	for i := range 1000 {
		p.Scope("ProcessTask").AddDimension(DimShardID, fmt.Sprint("s", i)).Add("RecordsProcessed", 1, types.StandardUnitCount, Summary).End()
	}
	if q := p.Queued(); q != 100 {
		t.Fatalf("queued %d, want the bound 100", q)
	}
	p.flush(context.Background())
	if q := p.Queued(); q != 50 {
		t.Fatalf("queued after one flush %d, want 50", q)
	}
	for _, r := range cw.reqs {
		if len(r.MetricData) > MaxDatumsPerRequest {
			t.Fatalf("request with %d datums", len(r.MetricData))
		}
	}
	if len(cw.reqs) != 3 { // 20 + 20 + 10
		t.Fatalf("%d requests, want 3", len(cw.reqs))
	}
	// Existing metrics still accumulate while the queue is full.
	p.Scope("ProcessTask").AddDimension(DimShardID, "s99").Add("RecordsProcessed", 1, types.StandardUnitCount, Summary).End()
	if q := p.Queued(); q != 50 {
		t.Fatalf("queued %d", q)
	}
}

// Reaching FlushSize wakes the publisher before BufferTime.
func TestFlushSizeWakesPublisher(t *testing.T) {
	cw := &fakeCW{}
	p := New(cw, Config{Namespace: "app", FlushSize: 5, BufferTime: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	for i := range 5 {
		p.Scope("ProcessTask").AddDimension(DimShardID, fmt.Sprint("s", i)).Add("RecordsProcessed", 1, types.StandardUnitCount, Summary).End()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(cw.datums()) < 5 {
		if time.Now().After(deadline) {
			t.Fatal("not flushed at FlushSize")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

// Unset keyed settings take the registry's defaults (one place for them).
func TestDefaultsFromProperties(t *testing.T) {
	def := properties.Defaults()
	p := New(nil, Config{})
	if p.BufferTime() != def.MetricsBufferTime || p.cfg.MaxQueueSize != def.MetricsMaxQueueSize ||
		!slices.Equal(p.cfg.EnabledDimensions, def.MetricsEnabledDimensions) || !p.allDims {
		t.Fatalf("defaults %v %d %v, want the properties defaults %v %d %v", p.BufferTime(), p.cfg.MaxQueueSize,
			p.cfg.EnabledDimensions, def.MetricsBufferTime, def.MetricsMaxQueueSize, def.MetricsEnabledDimensions)
	}
}
