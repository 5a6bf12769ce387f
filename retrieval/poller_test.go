package retrieval

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/retrieval/kpl"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// SDK HTTP clients keep idle keep-alive connections.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

func recs(seqs ...string) []record.Record {
	out := make([]record.Record, len(seqs))
	for i, s := range seqs {
		var sub int64
		if n := len(s); n > 2 && s[n-2] == '/' {
			sub, _ = strconv.ParseInt(s[n-1:], 10, 64)
			s = s[:n-2]
		}
		out[i] = record.Record{SequenceNumber: s, SubSequenceNumber: sub}
	}
	return out
}

func esns(rs []record.Record) []string {
	out := make([]string, len(rs))
	for i := range rs {
		out[i] = rs[i].ESN().String()
	}
	return out
}

func TestDropUpTo(t *testing.T) {
	cases := []struct {
		name string
		in   []record.Record
		cp   seqnum.ESN
		want []string
	}{
		{"trim horizon keeps all", recs("1", "2"), seqnum.Sentinel(seqnum.TrimHorizon), []string{"1", "2"}},
		{"latest keeps all", recs("1"), seqnum.Sentinel(seqnum.Latest), []string{"1"}},
		{"at timestamp keeps all", recs("1"), seqnum.Sentinel(seqnum.AtTimestamp), []string{"1"}},
		{"shard end drops all", recs("1", "2"), seqnum.Sentinel(seqnum.ShardEnd), []string{}},
		{"plain checkpoint drops it", recs("5", "6", "7"), seqnum.New("5", 0), []string{"6", "7"}},
		{"inside aggregate (S,k)", recs("5/0", "5/1", "5/2", "5/3", "6"), seqnum.New("5", 1), []string{"5/2", "5/3", "6"}},
		{"aggregate checkpointed as (S,0)", recs("5/0", "5/1", "5/2", "6"), seqnum.New("5", 0), []string{"5/1", "5/2", "6"}},
		{"numeric not lexical", recs("9", "10", "11"), seqnum.New("9", 0), []string{"10", "11"}},
		{"unordered input filtered", recs("3", "1", "4", "2"), seqnum.New("2", 0), []string{"3", "4"}},
		{"all dropped", recs("1", "2"), seqnum.New("3", 0), []string{}},
		{"invalid sequence kept", recs("x", "1"), seqnum.New("3", 0), []string{"x"}},
		{"empty", nil, seqnum.New("3", 0), []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			orig := esns(tc.in)
			got := esns(DropUpTo(tc.in, tc.cp))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("DropUpTo = %v, want %v", got, tc.want)
			}
			if fmt.Sprint(esns(tc.in)) != fmt.Sprint(orig) {
				t.Fatal("input modified")
			}
		})
	}
}

func TestValidResponse(t *testing.T) {
	child := func(parents ...string) types.ChildShard {
		return types.ChildShard{ShardId: aws.String("c"), ParentShards: parents}
	}
	cases := []struct {
		name     string
		next     string
		children []types.ChildShard
		want     bool
	}{
		{"open shard", "it", nil, true},
		{"iterator with children", "it", []types.ChildShard{child("p")}, false},
		{"shard end with children", "", []types.ChildShard{child("p"), child("p")}, true},
		{"shard end child without parents", "", []types.ChildShard{child("p"), child()}, false},
		{"shard end without children (kinesalite)", "", nil, true},
	}
	for _, tc := range cases {
		if got := validResponse(tc.next, tc.children); got != tc.want {
			t.Errorf("%s: validResponse = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// fakeKinesis serves scripted GetRecords results and records every call.
type fakeKinesis struct {
	mu        sync.Mutex
	iterCalls []kinesis.GetShardIteratorInput
	getCalls  []string // iterators passed to GetRecords
	// script returns the result of the n-th GetRecords call (0-based).
	script  func(n int, iterator string) (*kinesis.GetRecordsOutput, error)
	iterErr func(n int) error
	called  chan struct{}
}

func (f *fakeKinesis) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.iterCalls)
	f.iterCalls = append(f.iterCalls, *in)
	if f.iterErr != nil {
		if err := f.iterErr(n); err != nil {
			return nil, err
		}
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("iter-%d", n))}, nil
}

func (f *fakeKinesis) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	f.mu.Lock()
	n := len(f.getCalls)
	f.getCalls = append(f.getCalls, aws.ToString(in.ShardIterator))
	f.mu.Unlock()
	if f.called != nil {
		select {
		case f.called <- struct{}{}:
		default:
		}
	}
	return f.script(n, aws.ToString(in.ShardIterator))
}

func (f *fakeKinesis) snapshot() ([]kinesis.GetShardIteratorInput, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]kinesis.GetShardIteratorInput(nil), f.iterCalls...), append([]string(nil), f.getCalls...)
}

func kRecords(seqs ...string) []types.Record {
	out := make([]types.Record, len(seqs))
	for i, s := range seqs {
		out[i] = types.Record{SequenceNumber: aws.String(s), PartitionKey: aws.String("pk"), Data: []byte("d" + s),
			ApproximateArrivalTimestamp: aws.Time(time.UnixMilli(1_700_000_000_000))}
	}
	return out
}

func open(recs ...types.Record) *kinesis.GetRecordsOutput {
	return &kinesis.GetRecordsOutput{Records: recs, NextShardIterator: aws.String("next"), MillisBehindLatest: aws.Int64(7)}
}

func startPoller(t *testing.T, api KinesisAPI, cfg PollerConfig) *Poller {
	t.Helper()
	if cfg.Shard.ID == "" {
		cfg.Shard = shard.Info{ID: "shardId-000000000000"}
	}
	if cfg.StreamName == "" {
		cfg.StreamName = "s"
	}
	if cfg.IdleTimeBetweenReads == 0 {
		cfg.IdleTimeBetweenReads = time.Millisecond
	}
	p := NewPoller(api, cfg, zaptest.NewLogger(t).With(zap.String("shardId", cfg.Shard.ID)))
	p.Start(context.Background())
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func next(t *testing.T, p *Poller) record.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := p.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return b
}

// nextRecords reads batches until n records arrived.
func nextRecords(t *testing.T, p *Poller, n int) []record.Record {
	t.Helper()
	var out []record.Record
	for len(out) < n {
		b := next(t, p)
		out = append(out, b.Records...)
		if b.ShardEnd {
			break
		}
	}
	return out
}

func TestPollerIteratorRecovery(t *testing.T) {
	expired := &types.ExpiredIteratorException{Message: aws.String("expired")}
	invalid := &types.InvalidArgumentException{Message: aws.String("invalid")}
	cases := []struct {
		name  string
		start seqnum.ESN
		errAt int // GetRecords call that fails
		err   error
		// wantSecond is the iterator request after the failure.
		wantType types.ShardIteratorType
		wantSeq  string
	}{
		{"expired after a fetch ⇒ AFTER last fetched", seqnum.New("100", 2), 1, expired, types.ShardIteratorTypeAfterSequenceNumber, "101"},
		{"invalid argument after a fetch", seqnum.Sentinel(seqnum.TrimHorizon), 1, invalid, types.ShardIteratorTypeAfterSequenceNumber, "101"},
		{"expired before any fetch, digits ⇒ AT checkpoint", seqnum.New("100", 2), 0, expired, types.ShardIteratorTypeAtSequenceNumber, "100"},
		{"expired before any fetch, TRIM_HORIZON", seqnum.Sentinel(seqnum.TrimHorizon), 0, expired, types.ShardIteratorTypeTrimHorizon, ""},
		{"empty fetch then expired keeps original start", seqnum.Sentinel(seqnum.Latest), 1, expired, types.ShardIteratorTypeLatest, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeKinesis{script: func(n int, it string) (*kinesis.GetRecordsOutput, error) {
				switch {
				case n == tc.errAt:
					return nil, tc.err
				case n == 0 && tc.name != "empty fetch then expired keeps original start":
					return open(kRecords("100", "101")...), nil
				case n == 0:
					return open(), nil
				}
				return open(kRecords(fmt.Sprint(200 + n))...), nil
			}}
			p := startPoller(t, f, PollerConfig{Start: tc.start})
			got := nextRecords(t, p, 3)
			if len(got) < 1 {
				t.Fatal("no records")
			}
			iters, _ := f.snapshot()
			if len(iters) < 2 {
				t.Fatalf("GetShardIterator called %d times, want ≥ 2", len(iters))
			}
			second := iters[1]
			if second.ShardIteratorType != tc.wantType || aws.ToString(second.StartingSequenceNumber) != tc.wantSeq {
				t.Fatalf("re-created iterator %s %q, want %s %q", second.ShardIteratorType, aws.ToString(second.StartingSequenceNumber), tc.wantType, tc.wantSeq)
			}
		})
	}
}

func TestPollerStartPositions(t *testing.T) {
	ts := time.UnixMilli(1_600_000_000_000)
	cases := []struct {
		start    seqnum.ESN
		wantType types.ShardIteratorType
		wantSeq  string
		wantTS   bool
	}{
		{seqnum.Sentinel(seqnum.TrimHorizon), types.ShardIteratorTypeTrimHorizon, "", false},
		{seqnum.Sentinel(seqnum.Latest), types.ShardIteratorTypeLatest, "", false},
		{seqnum.Sentinel(seqnum.AtTimestamp), types.ShardIteratorTypeAtTimestamp, "", true},
		{seqnum.New("4242", 0), types.ShardIteratorTypeAtSequenceNumber, "4242", false},
		{seqnum.New("4242", 3), types.ShardIteratorTypeAtSequenceNumber, "4242", false},
	}
	for _, tc := range cases {
		t.Run(tc.start.String(), func(t *testing.T) {
			f := &fakeKinesis{script: func(int, string) (*kinesis.GetRecordsOutput, error) { return open(), nil }}
			p := startPoller(t, f, PollerConfig{Start: tc.start, InitialTimestamp: ts})
			b := next(t, p)
			if b.MillisBehindLatest == nil || *b.MillisBehindLatest != 7 {
				t.Fatalf("MillisBehindLatest = %v", b.MillisBehindLatest)
			}
			iters, _ := f.snapshot()
			in := iters[0]
			if in.ShardIteratorType != tc.wantType || aws.ToString(in.StartingSequenceNumber) != tc.wantSeq ||
				(in.Timestamp != nil) != tc.wantTS || (tc.wantTS && !in.Timestamp.Equal(ts)) || aws.ToString(in.StreamName) != "s" {
				t.Fatalf("GetShardIterator input %+v", in)
			}
		})
	}
}

func TestPollerShardEnd(t *testing.T) {
	notFound := &types.ResourceNotFoundException{Message: aws.String("gone")}
	children := []types.ChildShard{
		{ShardId: aws.String("c1"), ParentShards: []string{"p"}, HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String("9")}},
		{ShardId: aws.String("c2"), ParentShards: []string{"p"}, HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("10"), EndingHashKey: aws.String("20")}},
	}
	cases := []struct {
		name         string
		start        seqnum.ESN
		script       func(n int, it string) (*kinesis.GetRecordsOutput, error)
		iterErr      func(n int) error
		wantRecords  int
		wantChildren int
		wantCalls    int // GetRecords calls; -1 = don't check
	}{
		{name: "null next iterator with children", start: seqnum.Sentinel(seqnum.TrimHorizon),
			script: func(n int, _ string) (*kinesis.GetRecordsOutput, error) {
				if n == 0 {
					return open(kRecords("1")...), nil
				}
				return &kinesis.GetRecordsOutput{Records: kRecords("2"), ChildShards: children}, nil
			}, wantRecords: 2, wantChildren: 2, wantCalls: 2},
		{name: "null next iterator without children (kinesalite)", start: seqnum.Sentinel(seqnum.TrimHorizon),
			script: func(int, string) (*kinesis.GetRecordsOutput, error) {
				return &kinesis.GetRecordsOutput{Records: kRecords("1")}, nil
			}, wantRecords: 1, wantCalls: 1},
		{name: "inconsistent response retried", start: seqnum.Sentinel(seqnum.TrimHorizon),
			script: func(n int, _ string) (*kinesis.GetRecordsOutput, error) {
				if n == 0 { // iterator and children: invalid, records dropped
					return &kinesis.GetRecordsOutput{Records: kRecords("1"), NextShardIterator: aws.String("x"), ChildShards: children}, nil
				}
				return &kinesis.GetRecordsOutput{Records: kRecords("1"), ChildShards: children}, nil
			}, wantRecords: 1, wantChildren: 2, wantCalls: 2},
		{name: "ResourceNotFound on GetRecords", start: seqnum.Sentinel(seqnum.TrimHorizon),
			script: func(int, string) (*kinesis.GetRecordsOutput, error) { return nil, notFound }, wantCalls: 1},
		{name: "ResourceNotFound on GetShardIterator", start: seqnum.New("5", 0),
			script:  func(int, string) (*kinesis.GetRecordsOutput, error) { return open(), nil },
			iterErr: func(int) error { return notFound }, wantCalls: 0},
		{name: "SHARD_END checkpoint reads nothing", start: seqnum.Sentinel(seqnum.ShardEnd),
			script: func(int, string) (*kinesis.GetRecordsOutput, error) { return open(), nil }, wantCalls: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeKinesis{script: tc.script, iterErr: tc.iterErr}
			p := startPoller(t, f, PollerConfig{Start: tc.start})
			var got []record.Record
			var last record.Batch
			for !last.ShardEnd {
				last = next(t, p)
				got = append(got, last.Records...)
			}
			if len(got) != tc.wantRecords || len(last.ChildShards) != tc.wantChildren {
				t.Fatalf("got %d records, %d children; want %d, %d", len(got), len(last.ChildShards), tc.wantRecords, tc.wantChildren)
			}
			if tc.wantChildren > 0 {
				c := last.ChildShards[1]
				if c.ShardID != "c2" || c.StartingHashKey != "10" || c.EndingHashKey != "20" || len(c.ParentShardIDs) != 1 {
					t.Fatalf("child %+v", c)
				}
			}
			if _, err := p.Next(context.Background()); !errors.Is(err, ErrShardEnded) {
				t.Fatalf("Next after shard end: %v", err)
			}
			if _, calls := f.snapshot(); len(calls) != tc.wantCalls {
				t.Fatalf("GetRecords calls = %d, want %d", len(calls), tc.wantCalls)
			}
		})
	}
}

func TestPollerThrottlingAndErrors(t *testing.T) {
	throttled := &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
	f := &fakeKinesis{script: func(n int, it string) (*kinesis.GetRecordsOutput, error) {
		switch {
		case n < 7:
			return nil, throttled // > 5 consecutive: logged at ERROR
		case n < 7+maxFailuresPerIterator:
			return nil, errors.New("HTTP 500 UnknownError")
		}
		return &kinesis.GetRecordsOutput{Records: kRecords("1")}, nil
	}}
	p := startPoller(t, f, PollerConfig{Start: seqnum.Sentinel(seqnum.TrimHorizon)})
	if got := nextRecords(t, p, 1); len(got) != 1 {
		t.Fatalf("got %d records", len(got))
	}
	iters, calls := f.snapshot()
	// Throttles retry the same iterator; repeated unknown failures re-create it.
	for i := 0; i < 7+maxFailuresPerIterator; i++ {
		if calls[i] != "iter-0" {
			t.Fatalf("call %d used %s", i, calls[i])
		}
	}
	if len(iters) != 2 || calls[len(calls)-1] != "iter-1" {
		t.Fatalf("iterators %d, last call %s", len(iters), calls[len(calls)-1])
	}
}

func TestPollerPrefetchBounds(t *testing.T) {
	cases := []struct {
		name      string
		cfg       PollerConfig
		perCall   int
		wantCalls int
	}{
		{"batches", PollerConfig{MaxPendingBatches: 3}, 1, 3},
		{"records", PollerConfig{MaxPendingRecords: 5}, 2, 3},
		{"bytes", PollerConfig{MaxPendingBytes: 17}, 2, 3}, // 8 bytes per call
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			called := make(chan struct{}, 1)
			seq := 0
			f := &fakeKinesis{called: called, script: func(int, string) (*kinesis.GetRecordsOutput, error) {
				var s []string
				for i := 0; i < tc.perCall; i++ {
					seq++
					s = append(s, fmt.Sprint(100+seq))
				}
				return open(kRecords(s...)...), nil
			}}
			tc.cfg.Start = seqnum.Sentinel(seqnum.TrimHorizon)
			p := startPoller(t, f, tc.cfg)
			// Wait until the loop stalls on the full queue: no call for a while.
			for {
				select {
				case <-called:
					continue
				case <-time.After(300 * time.Millisecond):
				}
				break
			}
			if _, calls := f.snapshot(); len(calls) != tc.wantCalls {
				t.Fatalf("prefetched %d calls before the consumer read, want %d", len(calls), tc.wantCalls)
			}
			// Taking one batch lets exactly one more fetch happen.
			next(t, p)
			<-called
			select {
			case <-called:
			case <-time.After(300 * time.Millisecond):
			}
			if _, calls := f.snapshot(); len(calls) != tc.wantCalls+1 {
				t.Fatalf("after one Next: %d calls, want %d", len(calls), tc.wantCalls+1)
			}
		})
	}
}

func TestPollerCloseAndErrors(t *testing.T) {
	f := &fakeKinesis{script: func(int, string) (*kinesis.GetRecordsOutput, error) { return open(), nil }}
	p := NewPoller(f, PollerConfig{Shard: shard.Info{ID: "s"}, StreamName: "x", Start: seqnum.Sentinel(seqnum.TrimHorizon)}, nil)
	if _, err := p.Next(context.Background()); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("before Start: %v", err)
	}
	p.Start(context.Background())
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}

	// Invalid start positions end the loop with ErrInvalidStart.
	for _, start := range []seqnum.ESN{seqnum.New("abc", 0), seqnum.Sentinel(seqnum.AtTimestamp)} {
		p := startPoller(t, f, PollerConfig{Start: start})
		if _, err := p.Next(context.Background()); !errors.Is(err, ErrInvalidStart) {
			t.Fatalf("start %v: %v", start, err)
		}
	}

	// Next honours its context.
	blocked := &fakeKinesis{script: func(int, string) (*kinesis.GetRecordsOutput, error) { return open(), nil },
		iterErr: func(int) error { return errors.New("boom") }}
	p = startPoller(t, blocked, PollerConfig{Start: seqnum.Sentinel(seqnum.TrimHorizon), IdleTimeBetweenReads: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with expiring ctx: %v", err)
	}
}

func TestPollerHashRangeFilter(t *testing.T) {
	// Detailed filter cases live in kpl; here: the Poller uses the shard's range.
	f := &fakeKinesis{script: func(int, string) (*kinesis.GetRecordsOutput, error) {
		return &kinesis.GetRecordsOutput{Records: []types.Record{
			{SequenceNumber: aws.String("1"), PartitionKey: aws.String("c"), Data: aggregate(t, "5", "15")},
			{SequenceNumber: aws.String("2"), PartitionKey: aws.String("c"), Data: aggregate(t, "5", "6")},
		}}, nil
	}}
	p := startPoller(t, f, PollerConfig{Start: seqnum.Sentinel(seqnum.TrimHorizon),
		Shard: shard.Info{ID: "shardId-1", StartingHashKey: "0", EndingHashKey: "10"}})
	got := nextRecords(t, p, 2)
	if fmt.Sprint(esns(got)) != "[2 2/1]" {
		t.Fatalf("got %v", esns(got))
	}
}

func TestPollerPacing(t *testing.T) {
	p := NewPoller(nil, PollerConfig{IdleTimeBetweenReads: time.Second, MillisBehindLatestThresholdForReducedTps: 5 * time.Second}, nil)
	var st fetchState
	if d := p.pace(&st); d != 0 {
		t.Fatalf("first call waits %v", d)
	}
	st.lastSuccess = time.Now()
	if d := p.pace(&st); d <= 0 || d > time.Second {
		t.Fatalf("idle wait %v", d)
	}
	st.lastMBL = aws.Int64(100) // caught up: reduced TPS
	if d := p.pace(&st); d <= time.Second || d > 5*time.Second {
		t.Fatalf("reduced-TPS wait %v", d)
	}
	st.lastMBL = aws.Int64(10_000)
	if d := p.pace(&st); d > time.Second {
		t.Fatalf("behind: wait %v", d)
	}
}

// aggregate builds a KPL aggregate whose sub-records carry the given explicit
// hash keys (data "ehk-<i>").
func aggregate(t testing.TB, ehks ...string) []byte {
	t.Helper()
	var u []kpl.UserRecord
	for i, e := range ehks {
		u = append(u, kpl.UserRecord{PartitionKey: fmt.Sprintf("pk-%d", i), ExplicitHashKey: e, Data: []byte(fmt.Sprintf("ehk-%d", i))})
	}
	b, err := kpl.Aggregate(u)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
