package retrieval

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/ctxutil"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

// EventStream is one open SubscribeToShard subscription
// (*kinesis.SubscribeToShardEventStream satisfies it).
type EventStream interface {
	// Events is closed when the subscription ends; Err then says why (nil
	// when the service completed it, about every 5 minutes).
	Events() <-chan types.SubscribeToShardEventStream
	Close() error
	Err() error
}

// SubscribeAPI opens subscriptions. SDKSubscribe adapts a *kinesis.Client.
type SubscribeAPI interface {
	Subscribe(ctx context.Context, in *kinesis.SubscribeToShardInput) (EventStream, error)
}

// SDKSubscribe adapts a Kinesis client (preferably one from
// NewSubscribeClient) to SubscribeAPI.
type SDKSubscribe struct{ Client *kinesis.Client }

// Subscribe calls SubscribeToShard and returns its event stream.
func (s SDKSubscribe) Subscribe(ctx context.Context, in *kinesis.SubscribeToShardInput) (EventStream, error) {
	out, err := s.Client.SubscribeToShard(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.GetStream(), nil
}

// ShardLister lists a stream's shards (*Lister satisfies it).
type ShardLister interface {
	ListShards(ctx context.Context, f shard.Filter) ([]shard.Info, error)
}

// Subscriber defaults.
const (
	// DefaultMaxPendingEvents: the KCL buffers at most 11 undelivered events.
	DefaultMaxPendingEvents = 11
	// DefaultShardEndCheckInterval: after this long without records the
	// shard is looked up with ListShards (emulators never signal shard end
	// over enhanced fan-out).
	DefaultShardEndCheckInterval = 60 * time.Second
	// DefaultNoEventTimeout: a subscription silent this long is restarted
	// (the KCL's 60 s rule).
	DefaultNoEventTimeout = 60 * time.Second
	// DefaultSubscribeBackoff is the first wait after a failed subscription;
	// it doubles per consecutive failure up to maxSubscribeBackoff.
	DefaultSubscribeBackoff = time.Second
	maxSubscribeBackoff     = 10 * time.Second
)

// SubscriberConfig configures one shard's Subscriber.
type SubscriberConfig struct {
	// ConsumerARN is the registered consumer (see RegisterConsumer).
	ConsumerARN string
	// Poll addresses the stream and shard, gives the start position (as for
	// the Poller: digits ⇒ AT_SEQUENCE_NUMBER, the caller drops records ≤
	// the checkpoint) and configures the GetRecords drain of a closed shard
	// whose end the subscription did not signal.
	Poll PollerConfig
	// MaxPendingEvents and MaxPendingBytes bound the events received but not
	// yet returned by Next (defaults 11 and 8 MiB); reading the subscription
	// pauses while either is reached.
	MaxPendingEvents int
	MaxPendingBytes  int
	// ShardEndCheckInterval, NoEventTimeout and Backoff: see the Default*
	// constants.
	ShardEndCheckInterval time.Duration
	NoEventTimeout        time.Duration
	Backoff               time.Duration
}

func (c *SubscriberConfig) setDefaults() {
	c.Poll.setDefaults()
	if c.MaxPendingEvents <= 0 {
		c.MaxPendingEvents = DefaultMaxPendingEvents
	}
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if c.ShardEndCheckInterval <= 0 {
		c.ShardEndCheckInterval = DefaultShardEndCheckInterval
	}
	if c.NoEventTimeout <= 0 {
		c.NoEventTimeout = DefaultNoEventTimeout
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultSubscribeBackoff
	}
}

// Subscriber reads one shard with enhanced fan-out (SubscribeToShard) in a
// background goroutine, re-subscribing after each completed or failed
// subscription from the last event it queued. It has the Poller's lifecycle:
// Start once, Next from one goroutine, Close when done.
//
// Shard end comes from the subscription (a null ContinuationSequenceNumber)
// or, because emulators never send it, from a ListShards check made when a
// subscription ends or brings no records for ShardEndCheckInterval: a closed
// shard is then read to its end with GetRecords.
type Subscriber struct {
	sub    SubscribeAPI
	api    KinesisAPI
	lister ShardLister
	cfg    SubscriberConfig
	log    *zap.Logger
	conv   recordConverter

	batchQueue
}

// NewSubscriber returns a Subscriber for cfg.Poll.Shard. sub opens the
// subscriptions; api (GetShardIterator/GetRecords) and lister are used only
// to detect and drain a closed shard.
func NewSubscriber(sub SubscribeAPI, api KinesisAPI, lister ShardLister, cfg SubscriberConfig, log *zap.Logger) *Subscriber {
	cfg.setDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	return &Subscriber{
		sub: sub, api: api, lister: lister, cfg: cfg, log: log,
		conv: newRecordConverter(cfg.Poll.Shard, log),
		// Events are not bounded by their count of Kinesis records.
		batchQueue: newBatchQueue("fan-out subscriber", cfg.MaxPendingEvents, cfg.MaxPendingBytes, math.MaxInt),
	}
}

// Start launches the subscription goroutine; a no-op when already started
// or closed.
func (s *Subscriber) Start(ctx context.Context) { s.start(ctx, s.run) }

// Close ends the subscription and waits for the goroutine. Idempotent.
func (s *Subscriber) Close() error {
	s.close()
	return nil
}

// Next returns the next batch (one event's records, de-aggregated and
// filtered to the shard's hash range, possibly none) with the same contract
// as Poller.Next: the last batch of a closed shard has ShardEnd set, after it
// Next returns ErrShardEnded.
func (s *Subscriber) Next(ctx context.Context) (record.Batch, error) { return s.next(ctx) }

// subState is the subscription loop's position.
type subState struct {
	lastCont   string // ContinuationSequenceNumber of the last queued event
	lastRecSeq string // sequence number of the last queued Kinesis record
	failures   int    // consecutive failed subscriptions
}

// Why a subscription stopped without error or shard end.
var (
	errSubscriptionQuiet = errors.New("no event within the no-event timeout")
	errShardClosed       = errors.New("shard closed")
	errInvalidEvent      = errors.New("inconsistent event (ContinuationSequenceNumber vs ChildShards)")
)

// shardState is what a listing says about the shard.
type shardState int

const (
	shardOpen shardState = iota
	shardClosed
	shardGone
)

func (s *Subscriber) run(ctx context.Context) error {
	start := s.cfg.Poll.Start
	if err := start.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidStart, err)
	}
	if start.IsShardEnd() {
		return s.enqueue(ctx, record.Batch{ShardEnd: true}, 0, 0)
	}
	if start.Sequence == seqnum.AtTimestamp && s.cfg.Poll.InitialTimestamp.IsZero() {
		return fmt.Errorf("%w: AT_TIMESTAMP checkpoint without an initial timestamp", ErrInvalidStart)
	}
	var st subState
	for {
		events, err := s.subscribeOnce(ctx, &st)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, errShardEndQueued) {
			return nil
		}
		if events > 0 {
			st.failures = 0
		}
		if err != nil || events == 0 {
			st.failures++
		}
		var state shardState
		var listing []shard.Info
		switch {
		case errors.Is(err, errShardClosed):
			state = shardClosed
		case err == nil, isNotFound(err), errors.Is(err, errSubscriptionQuiet), st.failures%3 == 0:
			// The subscription ended: maybe because the shard did.
			state, listing, err = s.checkShard(ctx, err)
		}
		switch state {
		case shardGone:
			s.log.Warn("shard or stream not found; treating as shard end with no children")
			return s.enqueue(ctx, record.Batch{ShardEnd: true}, 0, 0)
		case shardClosed:
			return s.drain(ctx, &st, listing)
		}
		if err != nil {
			var inUse *types.ResourceInUseException
			lvl := s.log.Warn
			if errors.As(err, &inUse) {
				lvl = s.log.Info // the previous subscription is still being released
			}
			wait := min(s.cfg.Backoff<<min(max(st.failures-1, 0), 10), maxSubscribeBackoff)
			lvl("subscription failed; re-subscribing after back-off", zap.Int("consecutiveFailures", st.failures),
				zap.Duration("backoff", wait), zap.String("after", st.lastCont), zap.Error(err))
			if err := ctxutil.Sleep(ctx, wait); err != nil {
				return err
			}
		} else if st.failures > 0 {
			// Completed without any event: do not spin.
			if err := ctxutil.Sleep(ctx, s.cfg.Backoff); err != nil {
				return err
			}
		}
	}
}

// position is the StartingPosition of the next subscription (Java
// IteratorBuilder.reconnectRequest): after
// the last queued event's continuation, else the start position.
func (s *Subscriber) position(st *subState) *types.StartingPosition {
	if st.lastCont != "" {
		return &types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(st.lastCont)}
	}
	switch start := s.cfg.Poll.Start.Sequence; start {
	case seqnum.TrimHorizon:
		return &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}
	case seqnum.Latest:
		return &types.StartingPosition{Type: types.ShardIteratorTypeLatest}
	case seqnum.AtTimestamp:
		return &types.StartingPosition{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(s.cfg.Poll.InitialTimestamp)}
	default:
		return &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(start)}
	}
}

// subscribeOnce runs one subscription until it ends. It returns the number
// of events received and why it ended: nil (completed by the service),
// errShardEndQueued, errShardClosed (found closed by a listing while idle),
// errSubscriptionQuiet, errInvalidEvent or the subscription's error.
func (s *Subscriber) subscribeOnce(ctx context.Context, st *subState) (int, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pos := s.position(st)
	// The call itself is bounded by the no-event timeout too: it returns only
	// with the first message, and a server that never sends one must not
	// stall the shard until the lease ends.
	unanswered := time.AfterFunc(s.cfg.NoEventTimeout, cancel)
	stream, err := s.sub.Subscribe(sctx, &kinesis.SubscribeToShardInput{
		ConsumerARN:      aws.String(s.cfg.ConsumerARN),
		ShardId:          aws.String(s.cfg.Poll.Shard.ID),
		StartingPosition: pos,
	})
	if !unanswered.Stop() && ctx.Err() == nil {
		if err == nil {
			_ = stream.Close()
		}
		return 0, fmt.Errorf("SubscribeToShard %s %s: no answer within %s: %w", s.cfg.Poll.Shard.ID, pos.Type, s.cfg.NoEventTimeout, errSubscriptionQuiet)
	}
	if err != nil {
		return 0, fmt.Errorf("SubscribeToShard %s %s: %w", s.cfg.Poll.Shard.ID, pos.Type, err)
	}
	defer func() {
		cancel()
		_ = stream.Close()
	}()
	s.log.Debug("subscribed", zap.String("position", string(pos.Type)), zap.String("sequenceNumber", aws.ToString(pos.SequenceNumber)))
	quiet := time.NewTimer(s.cfg.NoEventTimeout)
	defer quiet.Stop()
	idle := time.NewTimer(s.cfg.ShardEndCheckInterval)
	defer idle.Stop()
	events := 0
	for {
		select {
		case <-ctx.Done():
			return events, ctx.Err()
		case <-quiet.C:
			return events, errSubscriptionQuiet
		case <-idle.C:
			state, _, err := s.checkShard(ctx, nil)
			if err == nil && state != shardOpen {
				return events, errShardClosed
			}
			idle.Reset(s.cfg.ShardEndCheckInterval)
		case ev, ok := <-stream.Events():
			if !ok {
				return events, stream.Err()
			}
			e, isEvent := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
			if !isEvent {
				continue
			}
			events++
			end, err := s.onEvent(ctx, st, &e.Value)
			if err != nil || end {
				return events, err
			}
			quiet.Reset(s.cfg.NoEventTimeout)
			if len(e.Value.Records) > 0 {
				idle.Reset(s.cfg.ShardEndCheckInterval)
			}
		}
	}
}

// onEvent queues one event's batch (waiting for room) and advances st.
func (s *Subscriber) onEvent(ctx context.Context, st *subState, e *types.SubscribeToShardEvent) (end bool, err error) {
	cont := aws.ToString(e.ContinuationSequenceNumber)
	if !validResponse(cont, e.ChildShards) {
		return false, errInvalidEvent
	}
	batch, bytes := s.conv.convert(e.Records)
	batch.MillisBehindLatest = e.MillisBehindLatest
	if cont == "" {
		batch.ShardEnd = true
		batch.ChildShards = convertChildren(e.ChildShards)
		if len(batch.ChildShards) == 0 {
			if _, listing, err := s.checkShard(ctx, nil); err == nil {
				batch.ChildShards = record.ChildrenFromListing(listing, s.cfg.Poll.Shard.ID)
			}
		}
		s.log.Info("shard end reached", zap.Int("childShards", len(batch.ChildShards)))
	}
	if err := s.enqueue(ctx, batch, bytes, len(batch.Records)); err != nil {
		return false, err
	}
	if n := len(e.Records); n > 0 {
		st.lastRecSeq = aws.ToString(e.Records[n-1].SequenceNumber)
	}
	st.lastCont = cont
	if cont == "" {
		return true, errShardEndQueued
	}
	return false, nil
}

// checkShard lists the stream to learn whether the shard is still open.
// cause is the subscription's end reason, returned unchanged when the shard
// is open (or the listing failed).
func (s *Subscriber) checkShard(ctx context.Context, cause error) (shardState, []shard.Info, error) {
	listing, err := s.lister.ListShards(ctx, shard.Filter{})
	switch {
	case errors.Is(err, ErrStreamNotFound):
		return shardGone, nil, nil
	case err != nil:
		s.log.Warn("ListShards for the shard-end check failed", zap.Error(err))
		if cause == nil {
			cause = err
		}
		return shardOpen, nil, cause
	}
	for _, sh := range listing {
		if sh.ID != s.cfg.Poll.Shard.ID {
			continue
		}
		if sh.EndingSequenceNumber != "" {
			s.log.Info("shard is closed", zap.String("endingSequenceNumber", sh.EndingSequenceNumber))
			return shardClosed, listing, nil
		}
		return shardOpen, listing, cause
	}
	return shardGone, listing, nil
}

// drain reads a closed shard's remaining records with GetRecords, from
// after the last queued record, else after the last queued continuation
// (where the next subscription would start), else from the start position,
// and queues them, ending with the ShardEnd batch.
func (s *Subscriber) drain(ctx context.Context, st *subState, listing []shard.Info) error {
	pc := s.cfg.Poll
	var drop *seqnum.ESN
	// AT that position, then drop all of it: every sub-record of the last
	// record was queued already. The last record's sequence number is a real
	// one on every Kinesis; a continuation is used only when no record came
	// (a LATEST start would otherwise skip what was written since the
	// subscription started).
	if after := cmp.Or(st.lastRecSeq, st.lastCont); after != "" {
		pc.Start = seqnum.New(after, 0)
		d := seqnum.New(after, math.MaxInt64)
		drop = &d
	}
	s.log.Info("draining closed shard with GetRecords", zap.String("from", pc.Start.String()))
	p := NewPoller(s.api, pc, s.log)
	p.Start(ctx)
	defer p.Close()
	for {
		b, err := p.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // the drain's Poller reports its own close
			}
			return fmt.Errorf("draining closed shard with GetRecords: %w", err)
		}
		if drop != nil {
			b.Records = DropUpTo(b.Records, *drop)
		}
		if b.ShardEnd && len(b.ChildShards) == 0 {
			if listing == nil {
				_, listing, _ = s.checkShard(ctx, nil)
			}
			b.ChildShards = record.ChildrenFromListing(listing, s.cfg.Poll.Shard.ID)
		}
		bytes := 0
		for i := range b.Records {
			bytes += len(b.Records[i].Data)
		}
		if err := s.enqueue(ctx, b, bytes, len(b.Records)); err != nil {
			return err
		}
		if b.ShardEnd {
			return nil
		}
	}
}

func convertChildren(cs []types.ChildShard) []record.ChildShard {
	var out []record.ChildShard
	for _, c := range cs {
		r := record.ChildShard{ShardID: aws.ToString(c.ShardId), ParentShardIDs: append([]string(nil), c.ParentShards...)}
		if c.HashKeyRange != nil {
			r.StartingHashKey = aws.ToString(c.HashKeyRange.StartingHashKey)
			r.EndingHashKey = aws.ToString(c.HashKeyRange.EndingHashKey)
		}
		out = append(out, r)
	}
	return out
}
