package retrieval

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/retrieval/kpl"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

// emu is one running Kinesis emulator with a client.
type emu struct {
	kind testenv.Kind
	c    *kinesis.Client
}

// TestAgainstEmulators runs the retrieval features against kinesalite and
// kinesis-local.
func TestAgainstEmulators(t *testing.T) {
	for _, kind := range []testenv.Kind{testenv.Kinesalite, testenv.KinesisLocal} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			e := emu{kind: kind, c: testenv.StartT(t, kind).Kinesis()}
			t.Run("StartPositions", func(t *testing.T) { testStartPositions(t, e) })
			t.Run("ResumeInsideAggregate", func(t *testing.T) { testResumeInsideAggregate(t, e) })
			t.Run("HashRangeFilter", func(t *testing.T) { testHashRangeFilter(t, e) })
			t.Run("ShardEndAfterSplit", func(t *testing.T) { testShardEndAfterSplit(t, e) })
			t.Run("Lister", func(t *testing.T) { testLister(t, e) })
			t.Run("StreamGone", func(t *testing.T) { testStreamGone(t, e) })
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// put puts one record and returns its sequence number and shard.
func put(t *testing.T, e emu, stream, pk, ehk string, data []byte) (seq, shardID string) {
	t.Helper()
	in := &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(pk), Data: data}
	if ehk != "" {
		in.ExplicitHashKey = aws.String(ehk)
	}
	out, err := e.c.PutRecord(ctxT(t), in)
	if err != nil {
		t.Fatalf("PutRecord: %v", err)
	}
	return aws.ToString(out.SequenceNumber), aws.ToString(out.ShardId)
}

func listShards(t *testing.T, e emu, stream string) []shard.Info {
	t.Helper()
	l := NewLister(e.c, stream, "", ListerConfig{Backoff: 10 * time.Millisecond}, zaptest.NewLogger(t))
	s, err := l.ListShards(ctxT(t), shard.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(s, func(i, j int) bool { return s[i].ID < s[j].ID })
	return s
}

func newPoller(t *testing.T, e emu, stream string, sh shard.Info, start seqnum.ESN, ts time.Time) *Poller {
	t.Helper()
	p := NewPoller(e.c, PollerConfig{StreamName: stream, Shard: sh, Start: start, InitialTimestamp: ts,
		IdleTimeBetweenReads: 20 * time.Millisecond}, zaptest.NewLogger(t))
	p.Start(context.Background())
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// readUntil collects records until stop returns true or the shard ends.
func readUntil(t *testing.T, p *Poller, stop func([]record.Record) bool) ([]record.Record, record.Batch) {
	t.Helper()
	var got []record.Record
	deadline := time.Now().Add(45 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("records so far %v: expected more", datas(got))
		}
		b := next(t, p)
		got = append(got, b.Records...)
		if b.ShardEnd || stop(got) {
			return got, b
		}
	}
}

func datas(rs []record.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Payload())
	}
	return out
}

func testStartPositions(t *testing.T, e emu) {
	const stream = "starts"
	testenv.CreateStreamT(t, e.c, stream, 1)
	sh := listShards(t, e, stream)[0]
	s0, _ := put(t, e, stream, "pk", "", []byte("r0"))
	// AT_TIMESTAMP granularity differs between emulators; leave a clear gap.
	time.Sleep(1100 * time.Millisecond)
	ts := time.Now()
	time.Sleep(1100 * time.Millisecond)
	s1, _ := put(t, e, stream, "pk", "", []byte("r1"))
	put(t, e, stream, "pk", "", []byte("r2"))

	cases := []struct {
		name  string
		start seqnum.ESN
		want  string
	}{
		{"TRIM_HORIZON", seqnum.Sentinel(seqnum.TrimHorizon), "[r0 r1 r2]"},
		{"AT_TIMESTAMP", seqnum.Sentinel(seqnum.AtTimestamp), "[r1 r2]"},
		{"AT_SEQUENCE_NUMBER first", seqnum.New(s0, 0), "[r1 r2]"},
		{"AT_SEQUENCE_NUMBER middle", seqnum.New(s1, 0), "[r2]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPoller(t, e, stream, sh, tc.start, ts)
			got, _ := readUntil(t, p, func(r []record.Record) bool { return len(r) > 0 && string(r[len(r)-1].Payload()) == "r2" })
			if s := fmt.Sprint(datas(DropUpTo(got, tc.start))); s != tc.want {
				t.Fatalf("got %s, want %s", s, tc.want)
			}
		})
	}
	t.Run("LATEST", func(t *testing.T) {
		p := newPoller(t, e, stream, sh, seqnum.Sentinel(seqnum.Latest), time.Time{})
		if b := next(t, p); len(b.Records) != 0 { // the iterator exists now
			t.Fatalf("LATEST delivered old records: %v", datas(b.Records))
		}
		put(t, e, stream, "pk", "", []byte("r3"))
		got, _ := readUntil(t, p, func(r []record.Record) bool { return len(r) > 0 })
		if s := fmt.Sprint(datas(got)); s != "[r3]" {
			t.Fatalf("got %s", s)
		}
	})
}

// testResumeInsideAggregate: checklist items 2, 3 and 21.
func testResumeInsideAggregate(t *testing.T, e emu) {
	const stream = "aggregates"
	testenv.CreateStreamT(t, e.c, stream, 1)
	sh := listShards(t, e, stream)[0]
	var users []kpl.UserRecord
	for i := 0; i < 5; i++ {
		users = append(users, kpl.UserRecord{PartitionKey: fmt.Sprintf("user-%d", i), Data: []byte(fmt.Sprintf("a%d", i))})
	}
	agg, err := kpl.Aggregate(users)
	if err != nil {
		t.Fatal(err)
	}
	sAgg, _ := put(t, e, stream, "container", "", agg)
	corrupt := append([]byte{}, agg...)
	corrupt[len(corrupt)-1] ^= 1 // bad MD5
	put(t, e, stream, "corrupt", "", corrupt)
	put(t, e, stream, "plain", "", []byte("p"))

	cases := []struct {
		name string
		cp   seqnum.ESN
		want string
	}{
		{"(S,2) ⇒ sub-records 3..4", seqnum.New(sAgg, 2), "[a3/3 a4/4 corrupt/0 p/0]"},
		{"(S,0) ⇒ sub-records 1..4", seqnum.New(sAgg, 0), "[a1/1 a2/2 a3/3 a4/4 corrupt/0 p/0]"},
		{"(S,4) ⇒ nothing of S", seqnum.New(sAgg, 4), "[corrupt/0 p/0]"},
		{"TRIM_HORIZON ⇒ all", seqnum.Sentinel(seqnum.TrimHorizon), "[a0/0 a1/1 a2/2 a3/3 a4/4 corrupt/0 p/0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPoller(t, e, stream, sh, tc.cp, time.Time{})
			got, _ := readUntil(t, p, func(r []record.Record) bool {
				return len(r) >= 7 || (len(r) > 0 && string(r[len(r)-1].Payload()) == "p")
			})
			got = DropUpTo(got, tc.cp)
			var s []string
			for _, r := range got {
				d := string(r.Payload())
				if bytes.Equal(r.Payload(), corrupt) {
					d = "corrupt"
					if r.Aggregated || r.PartitionKey != "corrupt" {
						t.Errorf("corrupt aggregate delivered as %+v", r)
					}
				}
				if r.Aggregated && (r.SequenceNumber != sAgg || r.PartitionKey != fmt.Sprintf("user-%d", r.SubSequenceNumber)) {
					t.Errorf("sub-record %+v", r)
				}
				s = append(s, fmt.Sprintf("%s/%d", d, r.SubSequenceNumber))
			}
			if fmt.Sprint(s) != tc.want {
				t.Fatalf("got %v, want %s", s, tc.want)
			}
		})
	}
}

// testHashRangeFilter: checklist item 20 on a 2-shard stream.
func testHashRangeFilter(t *testing.T, e emu) {
	const stream = "hashrange"
	testenv.CreateStreamT(t, e.c, stream, 2)
	shards := listShards(t, e, stream)
	s0 := shards[0]
	if s0.StartingHashKey != "0" {
		t.Fatalf("unexpected first shard %+v", s0)
	}
	inside, outside := "1000", shards[1].StartingHashKey
	whole := aggregate(t, inside, "2000", inside)
	mixed := aggregate(t, inside, outside)
	// Both containers are routed to shard 0 by their explicit hash key.
	if _, sid := put(t, e, stream, "c", inside, mixed); sid != s0.ID {
		t.Fatalf("mixed aggregate went to %s", sid)
	}
	put(t, e, stream, "c", inside, whole)
	put(t, e, stream, "c", inside, []byte("end"))

	p := newPoller(t, e, stream, s0, seqnum.Sentinel(seqnum.TrimHorizon), time.Time{})
	got, _ := readUntil(t, p, func(r []record.Record) bool { return len(r) > 0 && string(r[len(r)-1].Payload()) == "end" })
	if s := fmt.Sprint(datas(got)); s != "[ehk-0 ehk-1 ehk-2 end]" {
		t.Fatalf("got %s; want the mixed aggregate dropped and the other delivered whole", s)
	}
}

func testShardEndAfterSplit(t *testing.T, e emu) {
	const stream = "split"
	testenv.CreateStreamT(t, e.c, stream, 1)
	parent := listShards(t, e, stream)[0]
	for i := 0; i < 3; i++ {
		put(t, e, stream, fmt.Sprintf("pk-%d", i), "", []byte(fmt.Sprintf("before-%d", i)))
	}
	end, _ := new(big.Int).SetString(parent.EndingHashKey, 10)
	mid := new(big.Int).Rsh(end, 1).String()
	if _, err := e.c.SplitShard(ctxT(t), &kinesis.SplitShardInput{StreamName: aws.String(stream),
		ShardToSplit: aws.String(parent.ID), NewStartingHashKey: aws.String(mid)}); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitStreamActive(ctxT(t), e.c, stream); err != nil {
		t.Fatal(err)
	}
	put(t, e, stream, "pk-after", "", []byte("after")) // goes to a child

	p := newPoller(t, e, stream, parent, seqnum.Sentinel(seqnum.TrimHorizon), time.Time{})
	got, last := readUntil(t, p, func([]record.Record) bool { return false })
	if !last.ShardEnd {
		t.Fatal("no shard end")
	}
	if s := fmt.Sprint(datas(got)); s != "[before-0 before-1 before-2]" {
		t.Fatalf("parent records %s", s)
	}
	children := last.ChildShards
	switch e.kind {
	case testenv.KinesisLocal:
		if len(children) != 2 {
			t.Fatalf("kinesis-local reported %d children, want 2", len(children))
		}
	case testenv.Kinesalite:
		if len(children) != 0 {
			t.Fatalf("kinesalite unexpectedly reported children %+v", children)
		}
		children = record.ChildrenFromListing(listShards(t, e, stream), parent.ID)
	}
	if len(children) != 2 {
		t.Fatalf("children %+v", children)
	}
	sort.Slice(children, func(i, j int) bool { return children[i].ShardID < children[j].ShardID })
	for _, c := range children {
		if len(c.ParentShardIDs) != 1 || c.ParentShardIDs[0] != parent.ID || c.StartingHashKey == "" || c.EndingHashKey == "" {
			t.Fatalf("child %+v", c)
		}
	}
	if children[0].StartingHashKey != "0" && children[1].StartingHashKey != "0" {
		t.Fatalf("no child starts at 0: %+v", children)
	}
}

func testLister(t *testing.T, e emu) {
	const stream = "lister"
	testenv.CreateStreamT(t, e.c, stream, 5)
	ctx := ctxT(t)
	l := NewLister(e.c, stream, "", ListerConfig{PageSize: 2}, zaptest.NewLogger(t))
	all, err := l.ListShards(ctx, shard.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 {
		t.Fatalf("got %d shards, want 5", len(all))
	}
	for _, s := range all {
		if s.StartingHashKey == "" || s.EndingHashKey == "" || s.StartingSequenceNumber == "" || !s.Open() {
			t.Fatalf("shard %+v", s)
		}
	}
	filtered, err := l.ListShards(ctx, shard.Filter{Type: "AT_LATEST"})
	if err != nil || len(filtered) != 5 {
		t.Fatalf("AT_LATEST: %d shards, %v", len(filtered), err)
	}
	if e.kind == testenv.KinesisLocal { // kinesalite has no ARN addressing
		d, err := e.c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err != nil {
			t.Fatal(err)
		}
		byARN, err := NewLister(e.c, "", aws.ToString(d.StreamDescriptionSummary.StreamARN), ListerConfig{}, nil).ListShards(ctx, shard.Filter{})
		if err != nil || len(byARN) != 5 {
			t.Fatalf("by ARN: %d shards, %v", len(byARN), err)
		}
	}
	_, err = NewLister(e.c, "no-such-stream", "", ListerConfig{}, nil).ListShards(ctx, shard.Filter{})
	if !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("missing stream: %v", err)
	}
}

func testStreamGone(t *testing.T, e emu) {
	p := newPoller(t, e, "never-created", shard.Info{ID: "shardId-000000000000"}, seqnum.Sentinel(seqnum.TrimHorizon), time.Time{})
	b := next(t, p)
	if !b.ShardEnd || len(b.ChildShards) != 0 || len(b.Records) != 0 {
		t.Fatalf("batch %+v, want shard end with no children", b)
	}
}

// fakeLimit makes the first n ListShards calls fail with LimitExceeded.
type fakeLimit struct {
	ListShardsAPI
	n int
}

func (f *fakeLimit) ListShards(ctx context.Context, in *kinesis.ListShardsInput, o ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	if f.n > 0 {
		f.n--
		return nil, &types.LimitExceededException{Message: aws.String("slow down")}
	}
	return f.ListShardsAPI.ListShards(ctx, in, o...)
}

func TestListerLimitExceeded(t *testing.T) {
	e := emu{kind: testenv.Kinesalite, c: testenv.StartT(t, testenv.Kinesalite).Kinesis()}
	testenv.CreateStreamT(t, e.c, "limits", 2)
	cases := []struct {
		failures, attempts int
		wantErr            error
	}{
		{failures: 2, attempts: 3},
		{failures: 3, attempts: 3, wantErr: ErrListShardsExhausted},
	}
	for _, tc := range cases {
		l := NewLister(&fakeLimit{ListShardsAPI: e.c, n: tc.failures}, "limits", "", ListerConfig{Backoff: time.Millisecond, MaxAttempts: tc.attempts}, zaptest.NewLogger(t))
		s, err := l.ListShards(ctxT(t), shard.Filter{})
		if !errors.Is(err, tc.wantErr) || (err == nil && len(s) != 2) {
			t.Fatalf("%d failures, %d attempts: %d shards, err %v", tc.failures, tc.attempts, len(s), err)
		}
	}
}

// BenchmarkPollerKinesalite measures Poller throughput (records/s) reading
// 1 KiB records from one kinesalite shard, including de-aggregation of
// plain records and the prefetch hand-off.
func BenchmarkPollerKinesalite(b *testing.B) {
	e := emu{kind: testenv.Kinesalite, c: testenv.StartT(b, testenv.Kinesalite).Kinesis()}
	const stream, total = "bench", 20000
	testenv.CreateStreamT(b, e.c, stream, 1)
	ctx := context.Background()
	payload := bytes.Repeat([]byte{'x'}, 1024)
	for i := 0; i < total; i += 500 {
		var entries []types.PutRecordsRequestEntry
		for j := 0; j < 500; j++ {
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(j)), Data: payload})
		}
		if _, err := e.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries}); err != nil {
			b.Fatal(err)
		}
	}
	l := NewLister(e.c, stream, "", ListerConfig{}, nil)
	shards, err := l.ListShards(ctx, shard.Filter{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("poller", func(b *testing.B) {
		for b.Loop() {
			p := NewPoller(e.c, PollerConfig{StreamName: stream, Shard: shards[0], Start: seqnum.Sentinel(seqnum.TrimHorizon),
				IdleTimeBetweenReads: time.Millisecond}, nil)
			p.Start(ctx)
			n := 0
			for n < total {
				batch, err := p.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				n += len(batch.Records)
			}
			_ = p.Close()
		}
		b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	// Baseline: the same reads with bare GetRecords calls, no prefetch.
	b.Run("raw-GetRecords", func(b *testing.B) {
		for b.Loop() {
			it, err := e.c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
				ShardId: aws.String(shards[0].ID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for iter := it.ShardIterator; n < total; {
				out, err := e.c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
				if err != nil {
					b.Fatal(err)
				}
				n += len(out.Records)
				iter = out.NextShardIterator
			}
		}
		b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

// faultyKinesis injects errors into chosen GetRecords calls of a real client.
type faultyKinesis struct {
	KinesisAPI
	mu    sync.Mutex
	calls int
	fail  map[int]error
}

func (f *faultyKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, o ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	f.mu.Lock()
	n := f.calls
	f.calls++
	err := f.fail[n]
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.KinesisAPI.GetRecords(ctx, in, o...)
}

// TestIteratorRecoveryKinesalite: expired/invalid iterators and repeated
// unknown failures mid-stream neither lose nor repeat records.
func TestIteratorRecoveryKinesalite(t *testing.T) {
	e := emu{kind: testenv.Kinesalite, c: testenv.StartT(t, testenv.Kinesalite).Kinesis()}
	const stream = "recovery"
	testenv.CreateStreamT(t, e.c, stream, 1)
	sh := listShards(t, e, stream)[0]
	var want []string
	for i := 0; i < 30; i++ {
		d := fmt.Sprintf("r%02d", i)
		put(t, e, stream, "pk", "", []byte(d))
		want = append(want, d)
	}
	unknown := errors.New("HTTP 500 UnknownError")
	cases := []struct {
		name string
		fail map[int]error
	}{
		{"expired mid-stream", map[int]error{2: &types.ExpiredIteratorException{Message: aws.String("expired")}}},
		{"expired first call", map[int]error{0: &types.ExpiredIteratorException{Message: aws.String("expired")}}},
		{"invalid argument twice", map[int]error{1: &types.InvalidArgumentException{Message: aws.String("x")}, 2: &types.InvalidArgumentException{Message: aws.String("x")}}},
		{"unknown failures re-create", map[int]error{3: unknown, 4: unknown, 5: unknown}},
		{"throttled", map[int]error{1: &types.ProvisionedThroughputExceededException{Message: aws.String("slow")}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := &faultyKinesis{KinesisAPI: e.c, fail: tc.fail}
			p := NewPoller(api, PollerConfig{StreamName: stream, Shard: sh, Start: seqnum.Sentinel(seqnum.TrimHorizon),
				MaxRecords: 4, IdleTimeBetweenReads: 5 * time.Millisecond}, zaptest.NewLogger(t))
			p.Start(context.Background())
			defer p.Close()
			got, _ := readUntil(t, p, func(r []record.Record) bool { return len(r) >= len(want) })
			if fmt.Sprint(datas(got)) != fmt.Sprint(want) {
				t.Fatalf("got %v", datas(got))
			}
		})
	}
}
