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
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

// fakeStream plays scripted events, then ends with err, or stays open
// until closed.
type fakeStream struct {
	ch       chan types.SubscribeToShardEventStream
	closed   chan struct{}
	once     sync.Once
	err      error
	sent     int
	mu       sync.Mutex
	stayOpen bool
}

func (s *fakeStream) Events() <-chan types.SubscribeToShardEventStream { return s.ch }
func (s *fakeStream) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}
func (s *fakeStream) Err() error { return s.err }

func (s *fakeStream) sentCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// fakeSub serves scripted subscriptions and records their positions.
type fakeSub struct {
	mu      sync.Mutex
	wg      sync.WaitGroup
	ins     []types.StartingPosition
	streams []*fakeStream
	// script returns the n-th subscription (0-based): its events, its end
	// error, whether it stays open, or an error from SubscribeToShard.
	script func(n int) ([]types.SubscribeToShardEventStream, error, bool, error)
}

func (f *fakeSub) Subscribe(_ context.Context, in *kinesis.SubscribeToShardInput) (EventStream, error) {
	f.mu.Lock()
	n := len(f.ins)
	f.ins = append(f.ins, *in.StartingPosition)
	f.mu.Unlock()
	evs, endErr, stayOpen, err := f.script(n)
	if err != nil {
		return nil, err
	}
	s := &fakeStream{ch: make(chan types.SubscribeToShardEventStream), closed: make(chan struct{}), err: endErr, stayOpen: stayOpen}
	f.mu.Lock()
	f.streams = append(f.streams, s)
	f.mu.Unlock()
	f.wg.Add(1)
	go func() { // owned by fakeSub: tests wait on wg
		defer f.wg.Done()
		defer close(s.ch)
		for _, ev := range evs {
			select {
			case s.ch <- ev:
				s.mu.Lock()
				s.sent++
				s.mu.Unlock()
			case <-s.closed:
				return
			}
		}
		if s.stayOpen {
			<-s.closed
		}
	}()
	return s, nil
}

func (f *fakeSub) positions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.ins))
	for i, p := range f.ins {
		out[i] = string(p.Type)
		if p.SequenceNumber != nil {
			out[i] += " " + *p.SequenceNumber
		}
	}
	return out
}

// waitPositions waits (bounded) until at least n subscriptions were made.
func (f *fakeSub) waitPositions(n int) []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pos := f.positions()
		if len(pos) >= n || time.Now().After(deadline) {
			return pos
		}
		time.Sleep(time.Millisecond)
	}
}

func ev(cont string, seqs ...string) types.SubscribeToShardEventStream {
	e := types.SubscribeToShardEvent{Records: kRecords(seqs...), MillisBehindLatest: aws.Int64(3)}
	if cont != "" {
		e.ContinuationSequenceNumber = aws.String(cont)
	}
	return &types.SubscribeToShardEventStreamMemberSubscribeToShardEvent{Value: e}
}

func endEv(children []types.ChildShard, seqs ...string) types.SubscribeToShardEventStream {
	e := ev("", seqs...)
	e.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value.ChildShards = children
	return e
}

// fakeLister returns a fixed listing (or error).
type fakeLister struct {
	mu    sync.Mutex
	calls int
	list  func(n int) ([]shard.Info, error)
}

func (l *fakeLister) ListShards(context.Context, shard.Filter) ([]shard.Info, error) {
	l.mu.Lock()
	n := l.calls
	l.calls++
	l.mu.Unlock()
	return l.list(n)
}

const testShard = "shardId-000000000000"

func openListing(int) ([]shard.Info, error) {
	return []shard.Info{{ID: testShard}}, nil
}

func closedListing(int) ([]shard.Info, error) {
	return []shard.Info{{ID: testShard, EndingSequenceNumber: "99"},
		{ID: "shardId-000000000001", ParentShardID: testShard, StartingHashKey: "0", EndingHashKey: "5"},
		{ID: "shardId-000000000002", ParentShardID: testShard, StartingHashKey: "6", EndingHashKey: "9"}}, nil
}

func startSub(t *testing.T, sub *fakeSub, api KinesisAPI, l ShardLister, cfg SubscriberConfig) *Subscriber {
	t.Helper()
	cfg.ConsumerARN = "arn:consumer"
	cfg.Poll.StreamName = "s"
	cfg.Poll.Shard = shard.Info{ID: testShard}
	cfg.Poll.IdleTimeBetweenReads = time.Millisecond
	if cfg.Poll.Start.Sequence == "" {
		cfg.Poll.Start = seqnum.Sentinel(seqnum.TrimHorizon)
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	if cfg.ShardEndCheckInterval == 0 {
		cfg.ShardEndCheckInterval = time.Hour
	}
	if cfg.NoEventTimeout == 0 {
		cfg.NoEventTimeout = time.Hour
	}
	if api == nil {
		api = &fakeKinesis{script: func(int, string) (*kinesis.GetRecordsOutput, error) { return nil, errors.New("no GetRecords expected") }}
	}
	s := NewSubscriber(sub, api, l, cfg, zaptest.NewLogger(t))
	s.Start(context.Background())
	t.Cleanup(func() {
		_ = s.Close()
		sub.wg.Wait()
	})
	return s
}

// drainSub reads batches until n records or shard end.
func drainSub(t *testing.T, s *Subscriber, n int) ([]string, record.Batch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	var last record.Batch
	for len(got) < n {
		b, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %v: %v", got, err)
		}
		got = append(got, seqsOf(b.Records)...)
		last = b
		if b.ShardEnd {
			break
		}
	}
	return got, last
}

func TestSubscriberResubscribes(t *testing.T) {
	errBroken := errors.New("connection reset")
	cases := []struct {
		name   string
		start  seqnum.ESN
		script func(n int) ([]types.SubscribeToShardEventStream, error, bool, error)
		want   []string
		// positions of the first subscriptions
		positions []string
	}{
		{
			name:  "completed subscription: AFTER the last continuation",
			start: seqnum.Sentinel(seqnum.TrimHorizon),
			script: func(n int) ([]types.SubscribeToShardEventStream, error, bool, error) {
				switch n {
				case 0:
					return []types.SubscribeToShardEventStream{ev("c1", "1", "2"), ev("c2", "3")}, nil, false, nil
				case 1:
					return []types.SubscribeToShardEventStream{ev("c3"), ev("c4", "4")}, nil, false, nil
				}
				return nil, nil, true, nil
			},
			want:      []string{"1", "2", "3", "4"},
			positions: []string{"TRIM_HORIZON", "AFTER_SEQUENCE_NUMBER c2", "AFTER_SEQUENCE_NUMBER c4"},
		},
		{
			name:  "stream error: AFTER the last queued continuation",
			start: seqnum.Sentinel(seqnum.Latest),
			script: func(n int) ([]types.SubscribeToShardEventStream, error, bool, error) {
				switch n {
				case 0:
					return []types.SubscribeToShardEventStream{ev("c1", "1")}, errBroken, false, nil
				case 1:
					return []types.SubscribeToShardEventStream{ev("c2", "2")}, nil, true, nil
				}
				return nil, nil, true, nil
			},
			want:      []string{"1", "2"},
			positions: []string{"LATEST", "AFTER_SEQUENCE_NUMBER c1"},
		},
		{
			name:  "SubscribeToShard fails before any event: the checkpoint again",
			start: seqnum.New("5", 2),
			script: func(n int) ([]types.SubscribeToShardEventStream, error, bool, error) {
				switch n {
				case 0:
					return nil, nil, false, errBroken
				case 1:
					return nil, nil, false, &types.ResourceInUseException{Message: aws.String("busy")}
				case 2:
					return []types.SubscribeToShardEventStream{ev("c6", "5", "6")}, nil, true, nil
				}
				return nil, nil, true, nil
			},
			want:      []string{"5", "6"},
			positions: []string{"AT_SEQUENCE_NUMBER 5", "AT_SEQUENCE_NUMBER 5", "AT_SEQUENCE_NUMBER 5"},
		},
		{
			name:  "inconsistent event: dropped, AFTER the last good continuation",
			start: seqnum.Sentinel(seqnum.TrimHorizon),
			script: func(n int) ([]types.SubscribeToShardEventStream, error, bool, error) {
				switch n {
				case 0:
					bad := ev("c9", "9")
					bad.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value.ChildShards = []types.ChildShard{{ShardId: aws.String("x"), ParentShards: []string{testShard}}}
					return []types.SubscribeToShardEventStream{ev("c1", "1"), bad}, nil, true, nil
				case 1:
					return []types.SubscribeToShardEventStream{ev("c2", "2")}, nil, true, nil
				}
				return nil, nil, true, nil
			},
			want:      []string{"1", "2"},
			positions: []string{"TRIM_HORIZON", "AFTER_SEQUENCE_NUMBER c1"},
		},
		{
			name:  "open shard answers ResourceNotFound: retried, not ended",
			start: seqnum.Sentinel(seqnum.TrimHorizon),
			script: func(n int) ([]types.SubscribeToShardEventStream, error, bool, error) {
				if n == 0 {
					return nil, nil, false, &types.ResourceNotFoundException{Message: aws.String("consumer?")}
				}
				return []types.SubscribeToShardEventStream{ev("c1", "1")}, nil, true, nil
			},
			want:      []string{"1"},
			positions: []string{"TRIM_HORIZON", "TRIM_HORIZON"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := &fakeSub{script: tc.script}
			s := startSub(t, sub, nil, &fakeLister{list: openListing}, SubscriberConfig{Poll: PollerConfig{Start: tc.start}})
			got, last := drainSub(t, s, len(tc.want))
			if !slices.Equal(got, tc.want) {
				t.Errorf("records %v, want %v", got, tc.want)
			}
			if last.ShardEnd {
				t.Error("unexpected shard end")
			}
			if last.MillisBehindLatest == nil || *last.MillisBehindLatest != 3 {
				t.Errorf("MillisBehindLatest %v, want 3", last.MillisBehindLatest)
			}
			pos := sub.waitPositions(len(tc.positions))
			if len(pos) < len(tc.positions) || !slices.Equal(pos[:len(tc.positions)], tc.positions) {
				t.Errorf("subscriptions %v, want %v first", pos, tc.positions)
			}
		})
	}
}

func TestSubscriberShardEnd(t *testing.T) {
	children := []types.ChildShard{
		{ShardId: aws.String("shardId-000000000003"), ParentShards: []string{testShard}, HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String("9")}},
	}
	cases := []struct {
		name         string
		script       func(n int) ([]types.SubscribeToShardEventStream, error, bool, error)
		list         func(int) ([]shard.Info, error)
		start        seqnum.ESN
		wantRecords  []string
		wantChildren []string
	}{
		{
			name: "null continuation with ChildShards",
			script: func(int) ([]types.SubscribeToShardEventStream, error, bool, error) {
				return []types.SubscribeToShardEventStream{ev("c1", "1"), endEv(children, "2")}, nil, true, nil
			},
			list:         openListing,
			wantRecords:  []string{"1", "2"},
			wantChildren: []string{"shardId-000000000003"},
		},
		{
			name: "null continuation without ChildShards: children from ListShards",
			script: func(int) ([]types.SubscribeToShardEventStream, error, bool, error) {
				return []types.SubscribeToShardEventStream{endEv(nil, "1")}, nil, true, nil
			},
			list:         closedListing,
			wantRecords:  []string{"1"},
			wantChildren: []string{"shardId-000000000001", "shardId-000000000002"},
		},
		{
			name: "ResourceNotFound and the shard is gone: end without children",
			script: func(int) ([]types.SubscribeToShardEventStream, error, bool, error) {
				return nil, nil, false, &types.ResourceNotFoundException{Message: aws.String("gone")}
			},
			list: func(int) ([]shard.Info, error) { return []shard.Info{{ID: "shardId-000000000009"}}, nil },
		},
		{
			name: "stream deleted",
			script: func(int) ([]types.SubscribeToShardEventStream, error, bool, error) {
				return nil, nil, false, &types.ResourceNotFoundException{Message: aws.String("gone")}
			},
			list: func(int) ([]shard.Info, error) { return nil, fmt.Errorf("x: %w", ErrStreamNotFound) },
		},
		{
			name:   "SHARD_END checkpoint: nothing read",
			script: func(int) ([]types.SubscribeToShardEventStream, error, bool, error) { panic("no subscription expected") },
			list:   openListing,
			start:  seqnum.Sentinel(seqnum.ShardEnd),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := &fakeSub{script: tc.script}
			s := startSub(t, sub, nil, &fakeLister{list: tc.list}, SubscriberConfig{Poll: PollerConfig{Start: tc.start}})
			got, last := drainSub(t, s, 1<<30)
			if !slices.Equal(got, tc.wantRecords) {
				t.Errorf("records %v, want %v", got, tc.wantRecords)
			}
			if !last.ShardEnd {
				t.Fatal("no shard end")
			}
			var ids []string
			for _, c := range last.ChildShards {
				ids = append(ids, c.ShardID)
			}
			if !slices.Equal(ids, tc.wantChildren) {
				t.Errorf("children %v, want %v", ids, tc.wantChildren)
			}
			if _, err := s.Next(context.Background()); !errors.Is(err, ErrShardEnded) {
				t.Errorf("Next after shard end: %v, want ErrShardEnded", err)
			}
		})
	}
}

// A closed shard whose subscription never signals the end (kinesis-local):
// the idle check finds it closed and GetRecords reads the rest.
func TestSubscriberDrainsClosedShard(t *testing.T) {
	cases := []struct {
		name     string
		start    seqnum.ESN
		events   []types.SubscribeToShardEventStream
		wantIter string // GetShardIterator type and sequence
		want     []string
	}{
		{"after records", seqnum.ESN{}, []types.SubscribeToShardEventStream{ev("c2", "1", "2"), ev("c3")}, "AT_SEQUENCE_NUMBER 2", []string{"1", "2", "3", "4"}},
		{"nothing received: from the start position", seqnum.ESN{}, nil, "TRIM_HORIZON ", []string{"2", "3", "4"}},
		// LATEST again would skip what was written since the subscription
		// started: read from the continuation (AT it, itself dropped).
		{"only empty events after LATEST: from the continuation", seqnum.Sentinel(seqnum.Latest), []types.SubscribeToShardEventStream{ev("2")}, "AT_SEQUENCE_NUMBER 2", []string{"3", "4"}},
		{"only empty events after TRIM_HORIZON: from the continuation", seqnum.ESN{}, []types.SubscribeToShardEventStream{ev("2")}, "AT_SEQUENCE_NUMBER 2", []string{"3", "4"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := &fakeSub{script: func(n int) ([]types.SubscribeToShardEventStream, error, bool, error) {
				if n == 0 {
					return tc.events, nil, true, nil
				}
				return nil, nil, false, errors.New("only one subscription expected")
			}}
			api := &fakeKinesis{script: func(n int, _ string) (*kinesis.GetRecordsOutput, error) {
				if n == 0 {
					return open(kRecords("2", "3")...), nil
				}
				return &kinesis.GetRecordsOutput{Records: kRecords("4")}, nil // closed, no ChildShards (kinesis-local)
			}}
			lister := &fakeLister{list: func(n int) ([]shard.Info, error) {
				if n == 0 {
					return openListing(n)
				}
				return closedListing(n)
			}}
			s := startSub(t, sub, api, lister, SubscriberConfig{ShardEndCheckInterval: 20 * time.Millisecond, Poll: PollerConfig{Start: tc.start}})
			got, last := drainSub(t, s, 1<<30)
			if !slices.Equal(got, tc.want) {
				t.Errorf("records %v, want %v", got, tc.want)
			}
			if !last.ShardEnd || len(last.ChildShards) != 2 {
				t.Fatalf("last batch: shardEnd %v children %+v; want the 2 children from ListShards", last.ShardEnd, last.ChildShards)
			}
			iters, _ := api.snapshot()
			if len(iters) == 0 {
				t.Fatal("no GetShardIterator")
			}
			if g := string(iters[0].ShardIteratorType) + " " + aws.ToString(iters[0].StartingSequenceNumber); g != tc.wantIter {
				t.Errorf("drain iterator %q, want %q", g, tc.wantIter)
			}
		})
	}
}

func TestSubscriberBackPressure(t *testing.T) {
	var evs []types.SubscribeToShardEventStream
	var want []string
	for i := 0; i < 10; i++ {
		seq := fmt.Sprint(i + 1)
		evs = append(evs, ev("c"+seq, seq))
		want = append(want, seq)
	}
	sub := &fakeSub{script: func(int) ([]types.SubscribeToShardEventStream, error, bool, error) { return evs, nil, true, nil }}
	s := startSub(t, sub, nil, &fakeLister{list: openListing}, SubscriberConfig{MaxPendingEvents: 2})
	// Wait until the queue is full, then check that reading stopped.
	for {
		s.mu.Lock()
		n := len(s.queue)
		s.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	sub.mu.Lock()
	stream := sub.streams[0]
	sub.mu.Unlock()
	if n := stream.sentCount(); n > 3 {
		t.Errorf("%d events taken from the subscription with 2 queued; want at most 3 (one waiting for room)", n)
	}
	got, _ := drainSub(t, s, 10)
	if !slices.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
}

func TestSubscriberQuietSubscriptionRestarted(t *testing.T) {
	sub := &fakeSub{script: func(n int) ([]types.SubscribeToShardEventStream, error, bool, error) {
		if n == 0 {
			return []types.SubscribeToShardEventStream{ev("c1", "1")}, nil, true, nil // then silence
		}
		return []types.SubscribeToShardEventStream{ev("c2", "2")}, nil, true, nil
	}}
	s := startSub(t, sub, nil, &fakeLister{list: openListing}, SubscriberConfig{NoEventTimeout: 20 * time.Millisecond})
	got, _ := drainSub(t, s, 2)
	if !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("records %v", got)
	}
	if pos := sub.waitPositions(2); pos[1] != "AFTER_SEQUENCE_NUMBER c1" {
		t.Errorf("subscriptions %v: want the restart AFTER c1", pos)
	}
}

func TestSubscriberLifecycle(t *testing.T) {
	never := func(int) ([]types.SubscribeToShardEventStream, error, bool, error) { return nil, nil, true, nil }
	t.Run("not started", func(t *testing.T) {
		s := NewSubscriber(&fakeSub{script: never}, nil, &fakeLister{list: openListing}, SubscriberConfig{}, nil)
		if _, err := s.Next(context.Background()); !errors.Is(err, ErrNotStarted) {
			t.Errorf("Next = %v, want ErrNotStarted", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		sub := &fakeSub{script: never}
		s := startSub(t, sub, nil, &fakeLister{list: openListing}, SubscriberConfig{})
		_ = s.Close()
		_ = s.Close()
		if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
			t.Errorf("Next = %v, want ErrClosed", err)
		}
	})
	t.Run("invalid start", func(t *testing.T) {
		sub := &fakeSub{script: never}
		s := startSub(t, sub, nil, &fakeLister{list: openListing}, SubscriberConfig{Poll: PollerConfig{Start: seqnum.Sentinel(seqnum.AtTimestamp)}})
		if _, err := s.Next(context.Background()); !errors.Is(err, ErrInvalidStart) {
			t.Errorf("Next = %v, want ErrInvalidStart", err)
		}
	})
	t.Run("ctx done", func(t *testing.T) {
		sub := &fakeSub{script: never}
		s := startSub(t, sub, nil, &fakeLister{list: openListing}, SubscriberConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Next(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Next = %v, want context.Canceled", err)
		}
	})
}

// hangingSub never answers its first SubscribeToShard (until its context
// ends), then delegates.
type hangingSub struct {
	next  SubscribeAPI
	mu    sync.Mutex
	calls int
}

func (h *hangingSub) Subscribe(ctx context.Context, in *kinesis.SubscribeToShardInput) (EventStream, error) {
	h.mu.Lock()
	h.calls++
	first := h.calls == 1
	h.mu.Unlock()
	if first {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return h.next.Subscribe(ctx, in)
}

// A SubscribeToShard call that never answers is abandoned after the
// no-event timeout (Java's 60 s rule), not waited for until the lease ends.
func TestSubscriberUnansweredSubscribeRestarted(t *testing.T) {
	inner := &fakeSub{script: func(int) ([]types.SubscribeToShardEventStream, error, bool, error) {
		return []types.SubscribeToShardEventStream{ev("c1", "1")}, nil, true, nil
	}}
	s := NewSubscriber(&hangingSub{next: inner}, nil, &fakeLister{list: openListing}, SubscriberConfig{
		ConsumerARN: "arn:consumer",
		Poll:        PollerConfig{StreamName: "s", Shard: shard.Info{ID: testShard}, Start: seqnum.Sentinel(seqnum.TrimHorizon)},
		Backoff:     time.Millisecond, ShardEndCheckInterval: time.Hour, NoEventTimeout: 20 * time.Millisecond,
	}, zaptest.NewLogger(t))
	s.Start(context.Background())
	t.Cleanup(func() {
		_ = s.Close()
		inner.wg.Wait()
	})
	got, _ := drainSub(t, s, 1)
	if !slices.Equal(got, []string{"1"}) {
		t.Errorf("records %v", got)
	}
	if pos := inner.positions(); len(pos) == 0 || pos[0] != "TRIM_HORIZON" {
		t.Errorf("retried subscriptions %v, want TRIM_HORIZON again", pos)
	}
}

// Subscriptions that deliver events before failing are not consecutive
// failures: the back-off and the every-third-failure ListShards check start
// over (a long-lived flow reset now and then must not end up 10 s behind).
func TestSubscriberFailureCountResetByEvents(t *testing.T) {
	errBroken := errors.New("connection reset")
	sub := &fakeSub{script: func(n int) ([]types.SubscribeToShardEventStream, error, bool, error) {
		seq := fmt.Sprint(n + 1)
		if n < 4 {
			return []types.SubscribeToShardEventStream{ev("c"+seq, seq)}, errBroken, false, nil
		}
		return []types.SubscribeToShardEventStream{ev("c"+seq, seq)}, nil, true, nil
	}}
	lister := &fakeLister{list: openListing}
	s := startSub(t, sub, nil, lister, SubscriberConfig{})
	got, _ := drainSub(t, s, 5)
	if !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Errorf("records %v", got)
	}
	lister.mu.Lock()
	defer lister.mu.Unlock()
	if lister.calls != 0 {
		t.Errorf("%d ListShards checks; want none (no two failures in a row)", lister.calls)
	}
}
