package producer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/retrieval"
	"github.com/multilangd/multilangd/retrieval/kpl"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// fakePut records PutRecords calls and rejects entries on request.
type fakePut struct {
	mu     sync.Mutex
	calls  [][]types.PutRecordsRequestEntry
	reject func(call, i int) bool
	fail   func(call int) error
}

func (f *fakePut) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := len(f.calls)
	f.calls = append(f.calls, in.Records)
	if f.fail != nil {
		if err := f.fail(call); err != nil {
			return nil, err
		}
	}
	out := &kinesis.PutRecordsOutput{}
	for i := range in.Records {
		r := types.PutRecordsResultEntry{SequenceNumber: aws.String(fmt.Sprint(call*1000 + i)), ShardId: aws.String("shardId-0")}
		if f.reject != nil && f.reject(call, i) {
			r = types.PutRecordsResultEntry{ErrorCode: aws.String("ProvisionedThroughputExceededException")}
			out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
		}
		out.Records = append(out.Records, r)
	}
	return out, nil
}

// delivered returns the payloads that were accepted (not rejected), de-aggregated.
func (f *fakePut) delivered(t *testing.T) []string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for call, entries := range f.calls {
		if f.fail != nil && f.fail(call) != nil {
			continue
		}
		for i, e := range entries {
			if f.reject != nil && f.reject(call, i) {
				continue
			}
			for _, r := range kpl.Deaggregate(record.Record{Data: e.Data, SequenceNumber: "1"}, "", "") {
				out = append(out, string(r.Data))
			}
		}
	}
	sort.Strings(out)
	return out
}

func wantWords(n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, string(Words(i)))
	}
	return out
}

func TestProduceFake(t *testing.T) {
	cases := []struct {
		name        string
		opts        Options
		reject      func(call, i int) bool
		fail        func(call int) error
		wantKinesis int
		wantCalls   int
	}{
		{name: "plain", opts: Options{Count: 1234}, wantKinesis: 1234, wantCalls: 3},
		{name: "aggregated", opts: Options{Count: 1234, Aggregate: true, RecordsPerAggregate: 10}, wantKinesis: 124, wantCalls: 1},
		{name: "every 3rd is an aggregate", opts: Options{Count: 26, AggregateEvery: 3, RecordsPerAggregate: 5}, wantKinesis: 12, wantCalls: 1},
		{name: "small batches", opts: Options{Count: 10, BatchSize: 3}, wantKinesis: 10, wantCalls: 4},
		{name: "rejected entries re-sent", opts: Options{Count: 20},
			reject: func(call, i int) bool { return call == 0 && i%3 == 0 }, wantKinesis: 20, wantCalls: 2},
		{name: "failed call retried", opts: Options{Count: 5},
			fail: func(call int) error {
				if call == 0 {
					return errors.New("HTTP 500")
				}
				return nil
			}, wantKinesis: 5, wantCalls: 2},
		{name: "rate limited", opts: Options{Count: 30, Rate: 1000}, wantKinesis: 30, wantCalls: -1},
		{name: "rate limited aggregates are full", opts: Options{Count: 40, Rate: 2000, AggregateEvery: 2, RecordsPerAggregate: 9},
			wantKinesis: 8, wantCalls: -1}, // 1+9, 1+9, 1+9, 1+9
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakePut{reject: tc.reject, fail: tc.fail}
			tc.opts.Stream = "s"
			var progress bytes.Buffer
			tc.opts.Progress = &progress
			st, err := Produce(context.Background(), f, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if st.UserRecords != tc.opts.Count || st.KinesisRecords != tc.wantKinesis {
				t.Fatalf("stats %+v", st)
			}
			if tc.wantCalls >= 0 && len(f.calls) != tc.wantCalls {
				t.Fatalf("%d PutRecords calls, want %d", len(f.calls), tc.wantCalls)
			}
			if got, want := f.delivered(t), wantWords(tc.opts.Count); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("delivered %d payloads, want %d (or different ones)", len(got), len(want))
			}
			if !bytes.Contains(progress.Bytes(), []byte(fmt.Sprintf("put %d records", tc.opts.Count))) {
				t.Fatalf("progress %q", progress.String())
			}
		})
	}
}

func TestProduceErrors(t *testing.T) {
	if err := Run(context.Background(), &fakePut{}, Options{Count: 1}); err == nil {
		t.Fatal("no stream accepted")
	}
	notFound := &fakePut{fail: func(int) error { return &types.ResourceNotFoundException{Message: aws.String("no stream")} }}
	if err := Run(context.Background(), notFound, Options{Stream: "x", Count: 1}); err == nil || len(notFound.calls) != 1 {
		t.Fatalf("missing stream: %v after %d calls", err, len(notFound.calls))
	}
	always := &fakePut{reject: func(int, int) bool { return true }}
	if err := Run(context.Background(), always, Options{Stream: "x", Count: 1, MaxRetries: 2}); err == nil || len(always.calls) != 3 {
		t.Fatalf("always rejected: %v after %d calls", err, len(always.calls))
	}
	// An open-ended run ends cleanly with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	st, err := Produce(ctx, &fakePut{}, Options{Stream: "x"})
	if err != nil || st.UserRecords == 0 {
		t.Fatalf("open-ended run: %+v, %v", st, err)
	}
	// A counted run cut short reports the context error.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := Run(ctx2, &fakePut{}, Options{Stream: "x", Count: 1000, Rate: 10}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("counted run cut short: %v", err)
	}
}

func TestAggregateFitsRecordLimit(t *testing.T) {
	f := &fakePut{}
	big := bytes.Repeat([]byte{'x'}, 300<<10)
	st, err := Produce(context.Background(), f, Options{Stream: "s", Count: 10, Aggregate: true, RecordsPerAggregate: 10,
		Payload: func(int) []byte { return big }})
	if err != nil {
		t.Fatal(err)
	}
	if st.KinesisRecords != 4 { // 3 per aggregate under 1 MiB
		t.Fatalf("%d Kinesis records", st.KinesisRecords)
	}
	for _, c := range f.calls {
		for _, e := range c {
			if len(e.Data) > maxRecordBytes {
				t.Fatalf("record of %d bytes", len(e.Data))
			}
		}
	}
}

// TestProduceEmulators puts into real emulators and reads everything back
// with the retrieval package, aggregates included.
func TestProduceEmulators(t *testing.T) {
	cases := []struct {
		kind  testenv.Kind
		count int
	}{
		{testenv.Kinesalite, 3000},
		{testenv.KinesisLocal, 150}, // kinesis-local is slow to write
	}
	for _, tc := range cases {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			em := testenv.StartT(t, tc.kind)
			t.Cleanup(func() { // runs before the emulator stops
				if t.Failed() {
					b, _ := os.ReadFile(em.LogPath)
					t.Logf("%s log:\n%s", tc.kind, b)
				}
			})
			c := em.Kinesis()
			modes := []struct {
				name  string
				every int
				all   bool
			}{{"plain", 0, false}, {"aggregated", 0, true}, {"mixed", 3, false}}
			for _, m := range modes {
				stream := "produce-" + m.name
				testenv.CreateStreamT(t, c, stream, 3)
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				defer cancel()
				st, err := Produce(ctx, c, Options{Stream: stream, Count: tc.count, Aggregate: m.all, AggregateEvery: m.every,
					RecordsPerAggregate: 7, PartitionKeys: 50})
				if err != nil {
					t.Fatal(err)
				}
				got := readAll(ctx, t, c, stream, st.KinesisRecords)
				if fmt.Sprint(got) != fmt.Sprint(wantWords(tc.count)) {
					t.Fatalf("%s: read back %d records, want %d", m.name, len(got), tc.count)
				}
			}
		})
	}
}

// readAll reads every shard from TRIM_HORIZON until kinesisRecords Kinesis
// records were seen and returns the sorted user payloads.
func readAll(ctx context.Context, t *testing.T, c *kinesis.Client, stream string, kinesisRecords int) []string {
	t.Helper()
	shards, err := retrieval.NewLister(c, stream, "", retrieval.ListerConfig{}, zaptest.NewLogger(t)).ListShards(ctx, shard.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	seen := 0
	for _, s := range shards {
		// Count Kinesis records per shard with a plain GetRecords pass.
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(s.ID),
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for iter := it.ShardIterator; ; {
			r, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			n += len(r.Records)
			if len(r.Records) == 0 {
				break
			}
			iter = r.NextShardIterator
		}
		seen += n
		p := retrieval.NewPoller(c, retrieval.PollerConfig{StreamName: stream, Shard: s, Start: seqnum.Sentinel(seqnum.TrimHorizon),
			IdleTimeBetweenReads: 10 * time.Millisecond}, zaptest.NewLogger(t))
		p.Start(ctx)
		raw := map[string]bool{}
		for len(raw) < n {
			b, err := p.Next(ctx)
			if err != nil {
				_ = p.Close()
				t.Fatal(err)
			}
			for _, r := range b.Records {
				raw[r.SequenceNumber] = true
				out = append(out, string(r.Payload())) // the poller keeps plain records base64 (Data64)
			}
		}
		_ = p.Close()
	}
	if seen != kinesisRecords {
		t.Fatalf("stream holds %d Kinesis records, producer reported %d", seen, kinesisRecords)
	}
	sort.Strings(out)
	return out
}
