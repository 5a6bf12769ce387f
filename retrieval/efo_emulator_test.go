package retrieval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

// TestEFOAgainstKinesisLocal runs enhanced fan-out against kinesis-local
// (kinesalite has no EFO).
func TestEFOAgainstKinesisLocal(t *testing.T) {
	t.Parallel()
	e := emu{kind: testenv.KinesisLocal, c: testenv.StartT(t, testenv.KinesisLocal).Kinesis()}
	t.Run("Registration", func(t *testing.T) { testEFORegistration(t, e) })
	t.Run("StartPositions", func(t *testing.T) { testEFOStartPositions(t, e) })
	t.Run("ResubscribeContinuity", func(t *testing.T) { testEFOResubscribe(t, e) })
	t.Run("ShardEndAfterSplit", func(t *testing.T) { testEFOShardEnd(t, e) })
}

func streamARN(t *testing.T, e emu, stream string) string {
	t.Helper()
	out, err := e.c.DescribeStreamSummary(ctxT(t), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.StreamDescriptionSummary.StreamARN)
}

func registerT(t *testing.T, e emu, stream, name string) string {
	t.Helper()
	arn, err := RegisterConsumer(ctxT(t), e.c, ConsumerConfig{StreamName: stream, ConsumerName: name, RetryBackoff: 100 * time.Millisecond}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("RegisterConsumer: %v", err)
	}
	return arn
}

func testEFORegistration(t *testing.T, e emu) {
	testenv.CreateStreamT(t, e.c, "efo-reg", 1)
	sarn := streamARN(t, e, "efo-reg")
	arn := registerT(t, e, "efo-reg", "app")
	if arn == "" {
		t.Fatal("empty consumer ARN")
	}
	d, err := e.c.DescribeStreamConsumer(ctxT(t), &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
	if err != nil || d.ConsumerDescription.ConsumerStatus != types.ConsumerStatusActive || aws.ToString(d.ConsumerDescription.ConsumerName) != "app" {
		t.Fatalf("described consumer %+v, %v; want ACTIVE app", d, err)
	}
	// Existing consumer: the same ARN, by stream name or by stream ARN.
	if again := registerT(t, e, "efo-reg", "app"); again != arn {
		t.Errorf("second registration: %s, want %s", again, arn)
	}
	byARN, err := RegisterConsumer(ctxT(t), e.c, ConsumerConfig{StreamARN: sarn, ConsumerName: "app"}, zaptest.NewLogger(t))
	if err != nil || byARN != arn {
		t.Errorf("registration by stream ARN: %s, %v; want %s", byARN, err, arn)
	}
	// A configured ARN is used as is (the API would fail every call).
	got, err := RegisterConsumer(ctxT(t), failingConsumerAPI{}, ConsumerConfig{ConsumerARN: "arn:given"}, nil)
	if err != nil || got != "arn:given" {
		t.Errorf("configured ARN: %s, %v", got, err)
	}
	l, err := e.c.ListStreamConsumers(ctxT(t), &kinesis.ListStreamConsumersInput{StreamARN: aws.String(sarn)})
	if err != nil || len(l.Consumers) != 1 {
		t.Errorf("ListStreamConsumers: %d consumers, %v; want 1", len(l.Consumers), err)
	}
}

type failingConsumerAPI struct{}

var errFailing = errors.New("must not be called")

func (failingConsumerAPI) DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	return nil, errFailing
}
func (failingConsumerAPI) DescribeStreamConsumer(context.Context, *kinesis.DescribeStreamConsumerInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	return nil, errFailing
}
func (failingConsumerAPI) RegisterStreamConsumer(context.Context, *kinesis.RegisterStreamConsumerInput, ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	return nil, errFailing
}

// newSubscriber starts a Subscriber on kinesis-local with short timings.
func newSubscriber(t *testing.T, e emu, sub SubscribeAPI, stream, consumerARN string, sh shard.Info, start seqnum.ESN) *Subscriber {
	t.Helper()
	log := zaptest.NewLogger(t).With(zap.String("shardId", sh.ID))
	s := NewSubscriber(sub, e.c, NewLister(e.c, stream, "", ListerConfig{Backoff: 10 * time.Millisecond}, log), SubscriberConfig{
		ConsumerARN:           consumerARN,
		Poll:                  PollerConfig{StreamName: stream, Shard: sh, Start: start, IdleTimeBetweenReads: 100 * time.Millisecond},
		ShardEndCheckInterval: 2 * time.Second,
		NoEventTimeout:        10 * time.Second,
		Backoff:               200 * time.Millisecond,
	}, log)
	s.Start(context.Background())
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// collect reads batches until n records (or shard end) arrived.
func collect(t *testing.T, s *Subscriber, n int) (recs []record.Record, last record.Batch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(recs) < n {
		b, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d records: %v", len(recs), err)
		}
		recs = append(recs, b.Records...)
		last = b
		if b.ShardEnd {
			break
		}
	}
	return recs, last
}

func seqsOf(rs []record.Record) []string {
	out := make([]string, len(rs))
	for i := range rs {
		out[i] = rs[i].SequenceNumber
	}
	return out
}

func putN(t *testing.T, e emu, stream string, n int) []string {
	t.Helper()
	var seqs []string
	for i := 0; i < n; i++ {
		seq, _ := put(t, e, stream, fmt.Sprintf("pk%d", i), "", []byte(fmt.Sprintf("r%d", i)))
		seqs = append(seqs, seq)
	}
	return seqs
}

func testEFOStartPositions(t *testing.T, e emu) {
	const stream = "efo-start"
	testenv.CreateStreamT(t, e.c, stream, 1)
	sh := listShards(t, e, stream)[0]
	sub := SDKSubscribe{Client: NewSubscribeClient(e.c)}
	before := putN(t, e, stream, 4)
	// One consumer per case: kinesis-local keeps a closed subscription "in
	// use" for a few seconds.

	t.Run("TRIM_HORIZON", func(t *testing.T) {
		arn := registerT(t, e, stream, "app-trim-horizon")
		s := newSubscriber(t, e, sub, stream, arn, sh, seqnum.Sentinel(seqnum.TrimHorizon))
		got, _ := collect(t, s, 4)
		if !slices.Equal(seqsOf(got), before) {
			t.Errorf("got %v, want %v", seqsOf(got), before)
		}
		if string(got[0].Payload()) != "r0" || got[0].PartitionKey != "pk0" {
			t.Errorf("first record %q/%q", got[0].Payload(), got[0].PartitionKey)
		}
	})
	t.Run("AT_SEQUENCE_NUMBER", func(t *testing.T) {
		arn := registerT(t, e, stream, "app-at-sequence-number")
		cp := seqnum.New(before[1], 0)
		s := newSubscriber(t, e, sub, stream, arn, sh, cp)
		got, _ := collect(t, s, 3)
		if !slices.Equal(seqsOf(got), before[1:]) {
			t.Errorf("got %v, want %v (checkpointed record re-read)", seqsOf(got), before[1:])
		}
		if kept := DropUpTo(got, cp); !slices.Equal(seqsOf(kept), before[2:]) {
			t.Errorf("after the ≤-checkpoint drop: %v, want %v", seqsOf(kept), before[2:])
		}
	})
	t.Run("LATEST", func(t *testing.T) {
		arn := registerT(t, e, stream, "app-latest")
		s := newSubscriber(t, e, sub, stream, arn, sh, seqnum.Sentinel(seqnum.Latest))
		// Wait for the first (empty) event so that the subscription is live.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if b, err := s.Next(ctx); err != nil || len(b.Records) != 0 {
			t.Fatalf("first event: %d records, %v; want an empty event", len(b.Records), err)
		}
		live := putN(t, e, stream, 2)
		got, _ := collect(t, s, 2)
		if !slices.Equal(seqsOf(got), live) {
			t.Errorf("got %v, want only the live records %v", seqsOf(got), live)
		}
	})
}

// limitedSubscribe ends each subscription after its first event with
// records, forcing a re-subscription.
type limitedSubscribe struct {
	next SubscribeAPI
	mu   sync.Mutex
	ins  []types.StartingPosition
}

func (l *limitedSubscribe) Subscribe(ctx context.Context, in *kinesis.SubscribeToShardInput) (EventStream, error) {
	l.mu.Lock()
	l.ins = append(l.ins, *in.StartingPosition)
	l.mu.Unlock()
	es, err := l.next.Subscribe(ctx, in)
	if err != nil {
		return nil, err
	}
	out := make(chan types.SubscribeToShardEventStream)
	done := make(chan struct{})
	go func() { // owned by the stream: Close waits for it
		defer close(out)
		for {
			select {
			case <-done:
				return
			case ev, ok := <-es.Events():
				if !ok {
					return
				}
				select {
				case out <- ev:
				case <-done:
					return
				}
				if e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok && len(e.Value.Records) > 0 {
					return
				}
			}
		}
	}()
	return &limitedStream{EventStream: es, out: out, done: done}, nil
}

func (l *limitedSubscribe) positions() []types.StartingPosition {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]types.StartingPosition(nil), l.ins...)
}

type limitedStream struct {
	EventStream
	out  chan types.SubscribeToShardEventStream
	done chan struct{}
	once sync.Once
}

func (s *limitedStream) Events() <-chan types.SubscribeToShardEventStream { return s.out }

func (s *limitedStream) Close() error {
	s.once.Do(func() { close(s.done) })
	for range s.out { //nolint:revive // wait for the forwarding goroutine
	}
	return s.EventStream.Close()
}

func testEFOResubscribe(t *testing.T, e emu) {
	const stream = "efo-resub"
	testenv.CreateStreamT(t, e.c, stream, 1)
	arn := registerT(t, e, stream, "app")
	sh := listShards(t, e, stream)[0]
	ls := &limitedSubscribe{next: SDKSubscribe{Client: NewSubscribeClient(e.c)}}
	want := putN(t, e, stream, 3)
	s := newSubscriber(t, e, ls, stream, arn, sh, seqnum.Sentinel(seqnum.TrimHorizon))
	got, _ := collect(t, s, 3)
	for round := 0; round < 2; round++ {
		more := putN(t, e, stream, 2)
		want = append(want, more...)
		r, _ := collect(t, s, 2)
		got = append(got, r...)
	}
	if !slices.Equal(seqsOf(got), want) {
		t.Errorf("records across re-subscriptions:\n got %v\nwant %v", seqsOf(got), want)
	}
	pos := ls.positions()
	if len(pos) < 3 || pos[0].Type != types.ShardIteratorTypeTrimHorizon {
		t.Fatalf("subscriptions %+v: want TRIM_HORIZON then re-subscriptions", pos)
	}
	for _, p := range pos[1:] {
		if p.Type != types.ShardIteratorTypeAfterSequenceNumber || aws.ToString(p.SequenceNumber) == "" {
			t.Errorf("re-subscription at %s %s, want AFTER_SEQUENCE_NUMBER the last continuation", p.Type, aws.ToString(p.SequenceNumber))
		}
	}
}

func testEFOShardEnd(t *testing.T, e emu) {
	const stream = "efo-split"
	testenv.CreateStreamT(t, e.c, stream, 1)
	arn := registerT(t, e, stream, "app")
	sh := listShards(t, e, stream)[0]
	want := putN(t, e, stream, 3)
	s := newSubscriber(t, e, SDKSubscribe{Client: NewSubscribeClient(e.c)}, stream, arn, sh, seqnum.Sentinel(seqnum.TrimHorizon))
	got, _ := collect(t, s, 3)
	// Records written just before the split may come from the
	// subscription or from the GetRecords drain; either way exactly once.
	want = append(want, putN(t, e, stream, 2)...)
	if _, err := e.c.SplitShard(ctxT(t), &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String(sh.ID),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	rest, last := collect(t, s, 1<<30)
	got = append(got, rest...)
	if !last.ShardEnd {
		t.Fatal("no shard end")
	}
	if !slices.Equal(seqsOf(got), want) {
		t.Errorf("records:\n got %v\nwant %v", seqsOf(got), want)
	}
	if len(last.ChildShards) != 2 {
		t.Fatalf("children %+v, want 2", last.ChildShards)
	}
	for _, c := range last.ChildShards {
		if !slices.Equal(c.ParentShardIDs, []string{sh.ID}) || c.StartingHashKey == "" {
			t.Errorf("child %+v: want parent %s and a hash range", c, sh.ID)
		}
	}
	if _, err := s.Next(ctxT(t)); !errors.Is(err, ErrShardEnded) {
		t.Errorf("Next after shard end: %v, want ErrShardEnded", err)
	}
}
