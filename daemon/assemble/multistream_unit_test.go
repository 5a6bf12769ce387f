package assemble

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/cwmetrics"
	"github.com/multilangd/multilangd/daemon"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
)

type fakeStreamStore struct {
	mu      sync.Mutex
	leases  []lease.Lease
	deleted []string
}

func (f *fakeStreamStore) ListLeases(context.Context) ([]lease.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.leases), nil
}

func (f *fakeStreamStore) DeleteLease(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, key)
	f.leases = slices.DeleteFunc(f.leases, func(l lease.Lease) bool { return l.Key == key })
	return nil
}

func msLease(stream, shard string) lease.Lease {
	return lease.Lease{Key: lease.MultiStreamKey(stream, shard), StreamName: stream, ShardID: shard}
}

// TestFormerStreamsDeferredDeletion: Java
// FORMER_STREAMS_AUTO_DETECTION_DEFERRED_DELETION — a stream no longer
// listed loses its leases only after the wait period, a stream listed again
// in time keeps them, and NO_STREAMS_LEASES_DELETION never deletes.
func TestFormerStreamsDeferredDeletion(t *testing.T) {
	const a, b = "1:a:10", "1:b:20"
	streams := func(ids ...string) []properties.StreamConfig {
		var out []properties.StreamConfig
		for _, id := range ids {
			ss, err := properties.ParseStreams(id)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ss...)
		}
		return out
	}
	for _, strategy := range []string{properties.FormerStreamsAutoDetectionDeferredDeletion, properties.NoStreamsLeasesDeletion} {
		t.Run(strategy, func(t *testing.T) {
			store := &fakeStreamStore{leases: []lease.Lease{msLease(a, "shardId-0"), msLease(b, "shardId-0"), msLease(b, "shardId-1")}}
			cfg := &properties.Config{Streams: streams(a), FormerStreamsLeasesDeletionStrategy: strategy, WaitPeriodToDeleteFormerStreams: time.Hour}
			s := newStreamSet(cfg, store, nil, nil, zap.NewNop())
			now := time.Unix(1_000_000, 0)
			s.now = func() time.Time { return now }
			const idle = "1:c:30" // built for a lease since deleted
			s.parts[a], s.parts[b], s.parts[idle] = &streamParts{}, &streamParts{}, &streamParts{}
			ctx := context.Background()

			s.check(ctx, alwaysLeader)
			if _, ok := s.parts[idle]; ok || !s.listed(a) || s.listed(b) {
				t.Fatalf("after a check: idle parts kept %v, a listed %v, b listed %v", ok, s.listed(a), s.listed(b))
			}
			now = now.Add(59 * time.Minute)
			s.check(ctx, alwaysLeader)
			if len(store.deleted) != 0 {
				t.Fatalf("deleted %v before the wait period", store.deleted)
			}
			s.setStreams(&properties.Config{Streams: streams(a, b)}) // b listed again
			s.check(ctx, alwaysLeader)
			s.setStreams(&properties.Config{Streams: streams(a)}) // and removed again
			now = now.Add(30 * time.Minute)
			s.check(ctx, alwaysLeader)
			if len(store.deleted) != 0 {
				t.Fatalf("deleted %v: the wait restarts when a stream is listed again", store.deleted)
			}
			now = now.Add(time.Hour)
			s.check(ctx, alwaysLeader)
			want := []string(nil)
			if strategy == properties.FormerStreamsAutoDetectionDeferredDeletion {
				want = []string{lease.MultiStreamKey(b, "shardId-0"), lease.MultiStreamKey(b, "shardId-1")}
			}
			slices.Sort(store.deleted)
			if !slices.Equal(store.deleted, want) {
				t.Fatalf("deleted %v, want %v", store.deleted, want)
			}
			if _, kept := s.parts[b]; kept == (want != nil) {
				t.Errorf("parts of b kept = %v after deletion %v", kept, want)
			}
		})
	}
}

func TestParseIdentifier(t *testing.T) {
	sc, err := parseIdentifier("123456789012:orders:1700000000")
	if err != nil || sc.Name != "orders" || sc.AccountID != "123456789012" || sc.CreationEpoch != 1700000000 {
		t.Fatalf("parseIdentifier = %+v, %v", sc, err)
	}
	for _, bad := range []string{"", "orders", "arn:aws:kinesis:us-east-1:123456789012:stream/x", "1:a:0"} {
		if _, err := parseIdentifier(bad); err == nil {
			t.Errorf("parseIdentifier(%q) accepted", bad)
		}
	}
}

// TestMetricsPerStreamShard: the same shard id in two streams gives two
// Prometheus series (the lease key names the shard), and the CloudWatch
// scope carries ShardId plus, when enabled, Java's StreamId.
func TestMetricsPerStreamShard(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newPromMetrics(reg, func() []daemon.ShardStatus { return nil }, func() int { return 0 })
	k1, k2 := lease.MultiStreamKey("1:a:10", "shardId-0"), lease.MultiStreamKey("1:b:20", "shardId-0")
	m.RecordsProcessed(k1, daemon.BatchStats{Records: 2})
	m.RecordsProcessed(k2, daemon.BatchStats{Records: 3})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "multilangd_records_processed_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			got[mt.GetLabel()[0].GetValue()] = mt.GetCounter().GetValue()
		}
	}
	if got[k1] != 2 || got[k2] != 3 {
		t.Errorf("records per lease key %v, want %s=2 and %s=3", got, k1, k2)
	}

	put := &capturePut{}
	pub := cwmetrics.New(put, cwmetrics.Config{Level: cwmetrics.Detailed, EnabledDimensions: []string{cwmetrics.AllDimensions}})
	o := newOps(pub, "w1")
	o.shardScope("ProcessTask", k2).Add("RecordsProcessed", 1, "Count", cwmetrics.Summary).End()
	o.shardScope("ProcessTask", "shardId-7").Add("RecordsProcessed", 1, "Count", cwmetrics.Summary).End()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run flushes what is queued and returns
	_ = pub.Run(ctx)
	dims := put.dimensions()
	if !slices.Contains(dims, "Operation=ProcessTask,ShardId=shardId-0,StreamId=1:b:20") ||
		!slices.Contains(dims, "Operation=ProcessTask,ShardId=shardId-7") {
		t.Errorf("datum dimensions %q", dims)
	}
}

type capturePut struct {
	mu  sync.Mutex
	ins []*cloudwatch.PutMetricDataInput
}

func (c *capturePut) PutMetricData(_ context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ins = append(c.ins, in)
	return &cloudwatch.PutMetricDataOutput{}, nil
}

func (c *capturePut) dimensions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, in := range c.ins {
		for _, d := range in.MetricData {
			var parts []string
			for _, dim := range d.Dimensions {
				parts = append(parts, aws.ToString(dim.Name)+"="+aws.ToString(dim.Value))
			}
			slices.Sort(parts)
			out = append(out, strings.Join(parts, ","))
		}
	}
	return out
}

// TestListedStreamReplacesOrphanParts: parts built for another worker's
// stream (LATEST) are replaced by the configured ones once this worker lists
// the stream; configured parts are kept.
func TestListedStreamReplacesOrphanParts(t *testing.T) {
	const id = "1:a:10"
	var built []properties.StreamConfig
	build := func(_ context.Context, sc properties.StreamConfig) (*streamParts, error) {
		built = append(built, sc)
		return &streamParts{sc: sc}, nil
	}
	s := newStreamSet(&properties.Config{}, &fakeStreamStore{}, nil, build, zap.NewNop())
	orphan, err := s.partsOf(context.Background(), id)
	if err != nil || !orphan.orphan || orphan.sc.InitialPosition != properties.PositionLatest {
		t.Fatalf("orphan parts %+v, %v", orphan, err)
	}
	ss, err := properties.ParseStreams(id + "=TRIM_HORIZON")
	if err != nil {
		t.Fatal(err)
	}
	s.setStreams(&properties.Config{Streams: ss})
	if added := s.ensure(context.Background()); len(added) != 1 || added[0].orphan || added[0].sc.InitialPosition != properties.PositionTrimHorizon {
		t.Fatalf("ensure added %+v, want the configured parts", added)
	}
	if p, _ := s.partsOf(context.Background(), id); p.orphan {
		t.Fatal("orphan parts still routed after the stream was listed")
	}
	if added := s.ensure(context.Background()); len(added) != 0 || len(built) != 2 {
		t.Fatalf("second ensure added %d, built %d times; want 0 and 2", len(added), len(built))
	}
}

// TestFormerStreamsDeletedByLeaderOnly: as Java Scheduler.runProcessLoop
// runs checkAndSyncStreamShardsAndLeases only on the leader, a worker that
// is not the leader never deletes a former stream's leases (a worker with a
// stale stream list must not delete a stream the fleet still consumes), and
// the wait period starts when this worker is leader.
func TestFormerStreamsDeletedByLeaderOnly(t *testing.T) {
	const a, b = "1:a:10", "1:b:20"
	ss, err := properties.ParseStreams(a)
	if err != nil {
		t.Fatal(err)
	}
	store := &fakeStreamStore{leases: []lease.Lease{msLease(a, "shardId-0"), msLease(b, "shardId-0")}}
	cfg := &properties.Config{Streams: ss, FormerStreamsLeasesDeletionStrategy: properties.FormerStreamsAutoDetectionDeferredDeletion, WaitPeriodToDeleteFormerStreams: time.Hour}
	s := newStreamSet(cfg, store, nil, nil, zap.NewNop())
	now := time.Unix(1_000_000, 0)
	s.now = func() time.Time { return now }
	s.parts[a], s.parts[b] = &streamParts{}, &streamParts{}
	ctx := context.Background()
	leader := false
	isLeader := func(context.Context) bool { return leader }

	s.check(ctx, isLeader)
	now = now.Add(2 * time.Hour)
	s.check(ctx, isLeader)
	if len(store.deleted) != 0 {
		t.Fatalf("a worker that is not the leader deleted %v", store.deleted)
	}
	leader = true
	s.check(ctx, isLeader)
	if len(store.deleted) != 0 {
		t.Fatalf("deleted %v at once on becoming leader: the wait starts then", store.deleted)
	}
	now = now.Add(time.Hour)
	s.check(ctx, isLeader)
	if want := []string{lease.MultiStreamKey(b, "shardId-0")}; !slices.Equal(store.deleted, want) {
		t.Fatalf("leader deleted %v, want %v", store.deleted, want)
	}
}

func alwaysLeader(context.Context) bool { return true }

// reloadingDescriber resolves every name to account 1, epoch 30, and runs
// during its first call a reload (a SIGHUP arriving while a streams check
// resolves).
type reloadingDescriber struct{ reload func() }

func (d *reloadingDescriber) DescribeStreamSummary(_ context.Context, in *kinesis.DescribeStreamSummaryInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	if d.reload != nil {
		d.reload()
		d.reload = nil
	}
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &kinesistypes.StreamDescriptionSummary{
		StreamARN:               aws.String("arn:aws:kinesis:us-east-1:1:stream/" + aws.ToString(in.StreamName)),
		StreamCreationTimestamp: aws.Time(time.Unix(30, 0)),
	}}, nil
}

// TestReaddedStreamNotDeletedByCheckInFlight: a former stream listed again by
// a reload that lands while a streams check is resolving the old list keeps
// its leases, even when its wait period ends in that check.
func TestReaddedStreamNotDeletedByCheckInFlight(t *testing.T) {
	const a, b, x = "1:a:10", "1:b:20", "1:x:30"
	parse := func(entries string) []properties.StreamConfig {
		ss, err := properties.ParseStreams(entries)
		if err != nil {
			t.Fatal(err)
		}
		return ss
	}
	store := &fakeStreamStore{leases: []lease.Lease{msLease(a, "shardId-0"), msLease(b, "shardId-0"), msLease(x, "shardId-0")}}
	cfg := &properties.Config{Streams: parse(a + ",x"), FormerStreamsLeasesDeletionStrategy: properties.FormerStreamsAutoDetectionDeferredDeletion, WaitPeriodToDeleteFormerStreams: time.Hour}
	d := &reloadingDescriber{}
	s := newStreamSet(cfg, store, d, nil, zap.NewNop())
	now := time.Unix(1_000_000, 0)
	s.now = func() time.Time { return now }
	s.parts[a], s.parts[b], s.parts[x] = &streamParts{}, &streamParts{}, &streamParts{}
	ctx := context.Background()

	s.check(ctx, alwaysLeader) // b is a former stream from now on
	now = now.Add(time.Hour)
	d.reload = func() { s.setStreams(&properties.Config{Streams: parse(a + ",x," + b)}) }
	s.setStreams(cfg) // x is resolved again in the next check, where the reload lands
	s.check(ctx, alwaysLeader)
	if len(store.deleted) != 0 {
		t.Fatalf("deleted %v: stream %s was listed again before its leases were deleted", store.deleted, b)
	}
}
