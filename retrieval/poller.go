package retrieval

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/ctxutil"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

// KinesisAPI is the part of *kinesis.Client the Poller uses.
type KinesisAPI interface {
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// Poller defaults (Java PollingConfig / PrefetchRecordsPublisher); the
// defaults of properties keys (maxRecords, idleTimeBetweenReadsInMillis) come
// from properties.Defaults.
const (
	// MaxRecordsLimit is GetRecords' largest Limit.
	MaxRecordsLimit          = 10000
	DefaultMaxPendingBatches = 3
	DefaultMaxPendingBytes   = 8 << 20
	DefaultMaxPendingRecords = 30000
	DefaultRequestTimeout    = 30 * time.Second
	// maxConsecutiveWarnThrottles: ThrottlingReporter logs ERROR beyond it.
	maxConsecutiveWarnThrottles = 5
	// maxFailuresPerIterator: after this many consecutive unclassified
	// GetRecords failures the iterator is re-created (kinesis-local answers a
	// stale iterator with HTTP 500 instead of ExpiredIteratorException).
	maxFailuresPerIterator = 3
)

// Errors returned by Next (of a Poller or a Subscriber), wrapped as
// "retrieval: poller: closed" or "retrieval: fan-out subscriber: closed".
var (
	// ErrShardEnded: the final (ShardEnd) batch was already returned.
	ErrShardEnded = errors.New("shard end already delivered")
	// ErrClosed: the Poller or Subscriber was closed.
	ErrClosed = errors.New("closed")
	// ErrNotStarted: Next was called before Start.
	ErrNotStarted = errors.New("not started")
	// ErrInvalidStart: the start position cannot be turned into an iterator.
	ErrInvalidStart = errors.New("retrieval: invalid start position")
)

// PollerConfig configures one shard's Poller. Zero values take defaults.
type PollerConfig struct {
	// StreamName and/or StreamARN address the stream; the name wins when both
	// are set (kinesalite has no ARN support). GetRecords never needs either.
	StreamName string
	StreamARN  string
	// Shard is the shard to read; its hash range (from ListShards) drives the
	// KPL de-aggregation filter. An empty range means no filtering.
	Shard shard.Info
	// Start is the lease checkpoint (Java IteratorBuilder.request): digits ⇒ AT_SEQUENCE_NUMBER (the
	// caller drops records ≤ Start with DropUpTo); TRIM_HORIZON, LATEST and
	// AT_TIMESTAMP ⇒ that iterator type; SHARD_END ⇒ an immediate ShardEnd
	// batch without reading.
	Start seqnum.ESN
	// InitialTimestamp is used for an AT_TIMESTAMP start.
	InitialTimestamp time.Time
	// MaxRecords is GetRecords Limit (maxRecords, at most MaxRecordsLimit).
	MaxRecords int
	// IdleTimeBetweenReads is the minimum time from the end of one successful
	// GetRecords to the next call (idleTimeBetweenReadsInMillis).
	IdleTimeBetweenReads time.Duration
	// MillisBehindLatestThresholdForReducedTps: when the last response's
	// MillisBehindLatest was below it, wait at least this long between calls
	// (0 = off).
	MillisBehindLatestThresholdForReducedTps time.Duration
	// Prefetch bounds: fetching pauses while the queue holds at least
	// MaxPendingBatches batches, MaxPendingBytes bytes or MaxPendingRecords
	// Kinesis records (defaults 3, 8 MiB, 30000).
	MaxPendingBatches int
	MaxPendingBytes   int
	MaxPendingRecords int
	// RequestTimeout bounds each Kinesis call (default 30 s); a timed-out
	// call is retried with the same iterator.
	RequestTimeout time.Duration
	// Budget, shared by every Poller of the process, bounds the records held
	// in memory and shapes each call's Limit (nil: no daemon-wide bound).
	Budget *Budget
}

func (c *PollerConfig) setDefaults() {
	java := properties.Defaults()
	if c.MaxRecords <= 0 {
		c.MaxRecords = java.MaxRecords
	}
	c.MaxRecords = min(c.MaxRecords, MaxRecordsLimit)
	if c.IdleTimeBetweenReads <= 0 {
		c.IdleTimeBetweenReads = java.IdleTimeBetweenReads
	}
	if c.MaxPendingBatches <= 0 {
		c.MaxPendingBatches = DefaultMaxPendingBatches
	}
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if c.MaxPendingRecords <= 0 {
		c.MaxPendingRecords = DefaultMaxPendingRecords
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
}

// Poller reads one shard with GetRecords in a background goroutine that
// prefetches while the consumer works. Start it once, call Next from one
// goroutine, Close it when done.
type Poller struct {
	api  KinesisAPI
	cfg  PollerConfig
	log  *zap.Logger
	conv recordConverter

	batchQueue
}

// NewPoller returns a Poller for cfg.Shard. A *kinesis.Client satisfies api.
// log should already carry the shard's identity (e.g. a shardId field); the
// Poller adds none.
func NewPoller(api KinesisAPI, cfg PollerConfig, log *zap.Logger) *Poller {
	cfg.setDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	p := &Poller{
		api: api, cfg: cfg, log: log,
		conv:       newRecordConverter(cfg.Shard, log),
		batchQueue: newBatchQueue("poller", cfg.MaxPendingBatches, cfg.MaxPendingBytes, cfg.MaxPendingRecords),
	}
	p.budget = cfg.Budget
	return p
}

// Start launches the prefetch goroutine. It runs until the shard ends, ctx is
// done or Close is called. Start is a no-op when already started or closed.
func (p *Poller) Start(ctx context.Context) { p.start(ctx, p.run) }

// Close stops the prefetch goroutine and waits for it. It is idempotent.
func (p *Poller) Close() error {
	p.close()
	return nil
}

// Next returns the next batch: de-aggregated user records in shard order,
// filtered to the shard's hash range (possibly none), with
// MillisBehindLatest. The last batch of a closed shard has ShardEnd set and
// the children Kinesis reported (none on kinesalite, or when the shard or
// stream is gone); after it Next returns ErrShardEnded. Next blocks until a
// batch is ready or ctx is done.
func (p *Poller) Next(ctx context.Context) (record.Batch, error) { return p.next(ctx) }

// fetchState is the prefetch loop's position and pacing state.
type fetchState struct {
	iterator    string
	lastSeq     string    // sequence number of the last Kinesis record fetched
	lastSuccess time.Time // end of the last successful GetRecords
	lastMBL     *int64
	perRecord   int64   // recent budget bytes per Kinesis record (0: none yet)
	perData     int64   // recent data bytes per Kinesis record (0: none yet)
	userPer     float64 // user records per Kinesis record in the last page with aggregates
	throttles   int     // consecutive ProvisionedThroughputExceeded
	failures    int     // consecutive other GetRecords failures on this iterator
	restarts    int     // iterator re-creations since the last successful GetRecords
}

// run is the prefetch loop.
func (p *Poller) run(ctx context.Context) error {
	if err := p.cfg.Start.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidStart, err)
	}
	if p.cfg.Start.IsShardEnd() {
		p.push(record.Batch{ShardEnd: true}, 0, 0)
		return nil
	}
	if p.cfg.Start.Sequence == seqnum.AtTimestamp && p.cfg.InitialTimestamp.IsZero() {
		return fmt.Errorf("%w: AT_TIMESTAMP checkpoint without an initial timestamp", ErrInvalidStart)
	}
	var st fetchState
	for {
		if st.iterator == "" {
			it, err := p.getIterator(ctx, st.lastSeq)
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case isNotFound(err):
				p.log.Warn("shard or stream not found; treating as shard end with no children", zap.Error(err))
				p.push(record.Batch{ShardEnd: true}, 0, 0)
				return nil
			case err != nil:
				p.log.Warn("GetShardIterator failed; retrying", zap.Error(err))
				if err := ctxutil.Sleep(ctx, p.cfg.IdleTimeBetweenReads); err != nil {
					return err
				}
				continue
			}
			st.iterator, st.failures = it, 0
		}
		if err := p.waitSpace(ctx); err != nil {
			return err
		}
		if err := ctxutil.Sleep(ctx, p.pace(&st)); err != nil {
			return err
		}
		done, err := p.fetch(ctx, &st)
		if err != nil || done {
			return err
		}
	}
}

// pace returns how long to wait before the next GetRecords (Java
// KinesisSleepTimeController): nothing before the first call, otherwise the
// rest of the idle time since the last successful call, or of the
// reduced-TPS threshold while caught up.
func (p *Poller) pace(st *fetchState) time.Duration {
	if st.lastSuccess.IsZero() {
		return 0
	}
	since := time.Since(st.lastSuccess)
	wait := p.cfg.IdleTimeBetweenReads - since
	if th := p.cfg.MillisBehindLatestThresholdForReducedTps; th > 0 && st.lastMBL != nil &&
		time.Duration(*st.lastMBL)*time.Millisecond < th && th-since > wait {
		wait = th - since
	}
	return wait
}

// fetch performs one GetRecords and queues its batch. done is true when the
// shard ended (the final batch was queued).
func (p *Poller) fetch(ctx context.Context, st *fetchState) (done bool, err error) {
	limit, reserved, err := p.reserve(ctx, st)
	if err != nil {
		return false, err
	}
	charged := false
	defer func() {
		if !charged {
			p.cfg.Budget.release(reserved)
		}
	}()
	cctx, cancel := p.requestContext(ctx)
	out, err := p.api.GetRecords(cctx, &kinesis.GetRecordsInput{
		ShardIterator: aws.String(st.iterator),
		Limit:         aws.Int32(int32(limit)), //nolint:gosec // bounded by MaxRecords ≤ 10000
	}, withRelayDecoder)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err := p.onFetchError(ctx, st, err); !errors.Is(err, errShardEndQueued) {
			return false, err
		}
		return true, nil
	}
	st.lastSuccess = time.Now()
	if st.throttles > 0 {
		p.log.Info("GetRecords no longer throttled", zap.Int("consecutiveThrottles", st.throttles))
	}
	st.throttles, st.failures, st.restarts = 0, 0, 0
	next := aws.ToString(out.NextShardIterator)
	if !validResponse(next, out.ChildShards) {
		// Java retries the same iterator (and drops the records) on an
		// inconsistent response.
		p.log.Warn("GetRecords response inconsistent (NextShardIterator vs ChildShards); retrying the same iterator",
			zap.Bool("nextShardIterator", next != ""), zap.Int("childShards", len(out.ChildShards)))
		return false, ctxutil.Sleep(ctx, p.cfg.IdleTimeBetweenReads)
	}
	st.lastMBL = out.MillisBehindLatest
	batch, bytes, kinesisRecords, cost := p.convertOutput(out, st)
	batch.MillisBehindLatest = out.MillisBehindLatest
	if kinesisRecords > 0 { // a moving average of the last responses
		per := max(cost/int64(kinesisRecords), 1)
		if st.perRecord > 0 {
			per = (st.perRecord + per + 1) / 2
		}
		st.perRecord = per
		st.perData = max(int64(bytes)/int64(kinesisRecords), 1)
	}
	p.cfg.Budget.adjust(reserved, cost)
	charged = true
	if next == "" {
		batch.ShardEnd = true
		for _, c := range out.ChildShards {
			cs := record.ChildShard{ShardID: aws.ToString(c.ShardId), ParentShardIDs: append([]string(nil), c.ParentShards...)}
			if c.HashKeyRange != nil {
				cs.StartingHashKey = aws.ToString(c.HashKeyRange.StartingHashKey)
				cs.EndingHashKey = aws.ToString(c.HashKeyRange.EndingHashKey)
			}
			batch.ChildShards = append(batch.ChildShards, cs)
		}
		p.log.Info("shard end reached", zap.Int("childShards", len(batch.ChildShards)))
	}
	p.pushCharged(batch, bytes, kinesisRecords, cost)
	// A copy: a relayed iterator is a substring of the response, which it
	// would keep alive after the budget released it, for as long as this
	// loop waits for queue space or budget room.
	st.iterator = strings.Clone(next)
	return next == "", nil
}

// convertOutput turns a GetRecords output into a batch, its data size, its
// count of Kinesis records and its cost in budget bytes (the response, the
// decoded aggregates, the record structs), and notes the last sequence
// number fetched.
func (p *Poller) convertOutput(out *kinesis.GetRecordsOutput, st *fetchState) (record.Batch, int, int, int64) {
	if page, ok := relayedPage(out); ok {
		if n := len(page.records); n > 0 {
			// A copy: the record's string would keep the whole response alive.
			st.lastSeq = strings.Clone(page.records[n-1].SequenceNumber)
		}
		b := p.conv.convertPage(page, int(st.userPer*float64(len(page.records))))
		if page.aggregates > 0 {
			st.userPer = float64(len(b.Records)) / float64(len(page.records))
		}
		structs := cap(page.records)
		if page.aggregates > 0 { // a second slice for the user records
			structs += cap(b.Records)
		}
		cost := int64(page.bodyBytes) + int64(page.aggregateBytes) + recordOverhead*int64(structs)
		return b, page.dataBytes, len(page.records), cost
	}
	batch, bytes := p.conv.convert(out.Records)
	if n := len(out.Records); n > 0 {
		st.lastSeq = aws.ToString(out.Records[n-1].SequenceNumber)
	}
	return batch, bytes, len(out.Records), int64(bytes) + recordOverhead*int64(len(out.Records)+cap(batch.Records))
}

// Budget shaping: before the first response of a shard its bytes per
// record are guessed at firstPerRecordGuess (a 1 KiB record as JSON);
// prefetching pauses while less than minRecordsPerCall records' worth of
// the budget is free.
const (
	firstPerRecordGuess = 1500
	minRecordsPerCall   = 100
	// maxFloorShare: a call never waits for more than 1/maxFloorShare of
	// the budget to be free.
	maxFloorShare = 4
)

// reserve takes budget room for the next call and returns the call's Limit:
// MaxRecords, or fewer when the room left does not hold that many records
// of the shard's recent size.
func (p *Poller) reserve(ctx context.Context, st *fetchState) (limit int, reserved int64, err error) {
	maxRecords := p.shardRoom(st)
	if p.cfg.Budget == nil {
		return maxRecords, 0, nil
	}
	per := st.perRecord
	if per <= 0 {
		per = firstPerRecordGuess
	}
	want := per * int64(maxRecords)
	// The floor is at most a quarter of the budget: larger, it could only
	// be met with the budget entirely free, which another shard's batch in
	// its child or idle shards' calls in flight may never allow (large
	// records under a small budget); the call's Limit is then at least 1.
	floor := min(per*min(minRecordsPerCall, int64(maxRecords)), max(p.cfg.Budget.Limit()/maxFloorShare, 1))
	reserved, err = p.cfg.Budget.reserve(ctx, want, floor)
	if err != nil {
		return 0, 0, err
	}
	limit = int(min(max(reserved/per, 1), int64(maxRecords)))
	return limit, reserved, nil
}

// shardRoom returns the call's Limit under the shard's own prefetch byte
// bound: MaxRecords when nothing is queued (as Java), else as many records
// of the shard's recent data size as fit in what the queue has left of
// MaxPendingBytes, so a prefetched response does not overshoot the bound by
// a whole batch (Java admits a batch whenever the queue is below its
// bounds). Capping the first batch too cost a fifth of the throughput of a
// single shard paced by idleTimeBetweenReadsInMillis (make bench, 1 KiB).
func (p *Poller) shardRoom(st *fetchState) int {
	p.mu.Lock()
	room, queued := int64(p.maxBytes-p.bytes), len(p.queue)
	p.mu.Unlock()
	if queued == 0 || st.perData <= 0 {
		return p.cfg.MaxRecords
	}
	return int(min(max(room/st.perData, 1), int64(p.cfg.MaxRecords)))
}

// onFetchError classifies a failed GetRecords and waits as Java does.
func (p *Poller) onFetchError(ctx context.Context, st *fetchState, err error) error {
	var expired *types.ExpiredIteratorException
	var invalid *types.InvalidArgumentException
	var throttled *types.ProvisionedThroughputExceededException
	switch {
	case isNotFound(err):
		p.log.Warn("shard or stream not found; treating as shard end with no children", zap.Error(err))
		p.push(record.Batch{ShardEnd: true}, 0, 0)
		return errShardEndQueued
	case errors.As(err, &expired), errors.As(err, &invalid):
		p.log.Info("shard iterator unusable; re-creating it", zap.String("after", st.lastSeq), zap.Error(err))
		st.iterator = ""
		st.restarts++
		if st.restarts > 1 { // do not spin if re-created iterators keep failing
			return ctxutil.Sleep(ctx, p.cfg.IdleTimeBetweenReads)
		}
		return nil
	case errors.As(err, &throttled):
		st.throttles++
		if st.throttles > maxConsecutiveWarnThrottles {
			p.log.Error("GetRecords throttled", zap.Int("consecutiveThrottles", st.throttles), zap.Error(err))
		} else {
			p.log.Warn("GetRecords throttled", zap.Int("consecutiveThrottles", st.throttles), zap.Error(err))
		}
	default:
		st.failures++
		p.log.Warn("GetRecords failed; retrying", zap.Int("consecutiveFailures", st.failures), zap.Error(err))
		if st.failures >= maxFailuresPerIterator {
			st.iterator = ""
		}
	}
	return ctxutil.Sleep(ctx, p.cfg.IdleTimeBetweenReads)
}

// errShardEndQueued ends the loop after a synthetic shard end was queued.
var errShardEndQueued = errors.New("shard end queued")

// closeGrace is how long an in-flight Kinesis call may continue after the
// Poller's context ends.
const closeGrace = 2 * time.Second

// requestContext returns the context for one Kinesis call: bounded by
// RequestTimeout and cancelled only closeGrace after ctx ends, so that
// closing a Poller normally lets an in-flight call finish instead of
// aborting it (kinesalite crashes when a client aborts a request).
func (p *Poller) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return ctxutil.GraceContext(ctx, p.cfg.RequestTimeout, closeGrace)
}

// validResponse is Java's GetRecords validity rule with one relaxation: a
// null NextShardIterator with no ChildShards is accepted as shard end
// (kinesalite never reports children; the caller lists them instead).
func validResponse(next string, children []types.ChildShard) bool {
	if next != "" {
		return len(children) == 0
	}
	for _, c := range children {
		if len(c.ParentShards) == 0 {
			return false
		}
	}
	return true
}

// getIterator creates the shard iterator: from the start position until a
// record has been fetched, then AFTER_SEQUENCE_NUMBER the last fetched one.
func (p *Poller) getIterator(ctx context.Context, lastSeq string) (string, error) {
	in := &kinesis.GetShardIteratorInput{ShardId: aws.String(p.cfg.Shard.ID)}
	if p.cfg.StreamName != "" {
		in.StreamName = aws.String(p.cfg.StreamName)
	} else {
		in.StreamARN = aws.String(p.cfg.StreamARN)
	}
	switch start := p.cfg.Start.Sequence; {
	case lastSeq != "":
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(lastSeq)
	case start == seqnum.TrimHorizon:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case start == seqnum.Latest:
		in.ShardIteratorType = types.ShardIteratorTypeLatest
	case start == seqnum.AtTimestamp:
		in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
		in.Timestamp = aws.Time(p.cfg.InitialTimestamp)
	default:
		// Re-read the checkpointed record: its later KPL sub-records may be
		// unprocessed; DropUpTo removes the processed ones.
		in.ShardIteratorType = types.ShardIteratorTypeAtSequenceNumber
		in.StartingSequenceNumber = aws.String(start)
	}
	cctx, cancel := p.requestContext(ctx)
	defer cancel()
	out, err := p.api.GetShardIterator(cctx, in)
	if err != nil {
		return "", fmt.Errorf("GetShardIterator %s %s: %w", p.cfg.Shard.ID, in.ShardIteratorType, err)
	}
	it := aws.ToString(out.ShardIterator)
	if it == "" {
		// A closed shard past its end has no iterator: shard end.
		return "", fmt.Errorf("GetShardIterator %s: %w", p.cfg.Shard.ID, errNoIterator)
	}
	return it, nil
}

var errNoIterator = &types.ResourceNotFoundException{Message: aws.String("no shard iterator returned")}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return true
	}
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "ResourceNotFoundException"
}

// DropUpTo returns the records whose extended sequence number is greater
// than checkpoint (the KCL's ≤-checkpoint filter before processRecords). A
// sentinel checkpoint other than SHARD_END keeps everything. Records whose
// sequence number cannot be compared are kept. The result may share recs'
// backing array; recs itself is not modified.
func DropUpTo(recs []record.Record, checkpoint seqnum.ESN) []record.Record {
	keep := func(r *record.Record) bool {
		c, err := seqnum.Compare(r.ESN(), checkpoint)
		return err != nil || c > 0
	}
	for i := range recs {
		if !keep(&recs[i]) {
			continue
		}
		// recs[i] is the first kept record; usually all later ones are too.
		j := i + 1
		for j < len(recs) && keep(&recs[j]) {
			j++
		}
		if j == len(recs) {
			return recs[i:]
		}
		out := append([]record.Record(nil), recs[i:j]...)
		for _, r := range recs[j:] {
			if keep(&r) {
				out = append(out, r)
			}
		}
		return out
	}
	return nil
}
