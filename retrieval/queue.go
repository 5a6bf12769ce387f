package retrieval

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/multilangd/multilangd/record"
)

// batchQueue is the bounded queue of batches between a reader goroutine
// (the Poller's fetch loop, the Subscriber's subscription loop) and Next,
// with that goroutine's lifecycle: start once, close cancels it and waits.
// Poller and Subscriber embed it.
type batchQueue struct {
	// source names the reader in Next's errors: "poller", "fan-out subscriber".
	source string
	// Bounds: waitSpace blocks while the queue holds at least maxBatches
	// batches, maxBytes bytes or maxRecords Kinesis records.
	maxBatches, maxBytes, maxRecords int

	dataCh  chan struct{} // signalled (cap 1) when a batch is queued or the loop ends
	spaceCh chan struct{} // signalled (cap 1) when a batch is taken

	mu      sync.Mutex
	queue   []queued
	bytes   int
	records int
	loopEnd bool  // the reader goroutine has returned
	loopErr error // why, when it was not a shard end
	ended   bool  // the ShardEnd batch was returned by next
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// budget is charged for every queued batch (queued.charged) and for the
	// batch next returned last (inUse) until the consumer asks for the next
	// one or closes the queue; nil for none.
	budget *Budget
	inUse  int64
}

type queued struct {
	batch   record.Batch
	bytes   int
	records int
	charged int64 // bytes of budget held by the batch
}

func newBatchQueue(source string, maxBatches, maxBytes, maxRecords int) batchQueue {
	return batchQueue{
		source:     source,
		maxBatches: maxBatches, maxBytes: maxBytes, maxRecords: maxRecords,
		dataCh:  make(chan struct{}, 1),
		spaceCh: make(chan struct{}, 1),
	}
}

// start runs run in a goroutine with a context that close cancels; its
// result ends the queue for next. A no-op when already started or closed.
func (q *batchQueue) start(ctx context.Context, run func(context.Context) error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started || q.closed {
		return
	}
	q.started = true
	ctx, q.cancel = context.WithCancel(ctx)
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		err := run(ctx)
		q.mu.Lock()
		q.loopEnd, q.loopErr = true, err
		q.mu.Unlock()
		signal(q.dataCh)
	}()
}

// close cancels the goroutine and waits for it. Idempotent.
func (q *batchQueue) close() {
	q.mu.Lock()
	q.closed = true
	cancel := q.cancel
	q.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	q.wg.Wait()
	q.mu.Lock()
	held := q.inUse
	q.inUse = 0
	for i := range q.queue {
		held += q.queue[i].charged
		q.queue[i].charged = 0
	}
	q.mu.Unlock()
	q.budget.release(held)
}

// next returns the oldest queued batch, blocking until there is one, the
// goroutine has ended or ctx is done. Errors: ErrNotStarted, ErrClosed (also
// when the goroutine returned nil or was cancelled), ErrShardEnded after
// the ShardEnd batch, the goroutine's error or ctx's.
func (q *batchQueue) next(ctx context.Context) (record.Batch, error) {
	// The consumer is done with the batch it had: its budget is free.
	q.mu.Lock()
	done := q.inUse
	q.inUse = 0
	q.mu.Unlock()
	q.budget.release(done)
	for {
		q.mu.Lock()
		switch {
		case !q.started:
			q.mu.Unlock()
			return record.Batch{}, q.errorf(ErrNotStarted)
		case q.closed:
			q.mu.Unlock()
			return record.Batch{}, q.errorf(ErrClosed)
		case len(q.queue) > 0:
			e := q.queue[0]
			q.queue[0] = queued{}
			q.queue = q.queue[1:]
			q.bytes -= e.bytes
			q.records -= e.records
			q.inUse = e.charged
			if e.batch.ShardEnd {
				q.ended = true
			}
			q.mu.Unlock()
			signal(q.spaceCh)
			return e.batch, nil
		case q.ended:
			q.mu.Unlock()
			return record.Batch{}, q.errorf(ErrShardEnded)
		case q.loopEnd:
			err := q.loopErr
			q.mu.Unlock()
			if err == nil || errors.Is(err, context.Canceled) {
				err = q.errorf(ErrClosed)
			}
			return record.Batch{}, err
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return record.Batch{}, ctx.Err()
		case <-q.dataCh:
		}
	}
}

// errorf wraps one of Next's sentinel errors with the reader's name.
func (q *batchQueue) errorf(sentinel error) error {
	return fmt.Errorf("retrieval: %s: %w", q.source, sentinel)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push queues a batch for next without checking the bounds.
func (q *batchQueue) push(b record.Batch, bytes, records int) { q.pushCharged(b, bytes, records, 0) }

// pushCharged is push for a batch holding charged bytes of q.budget, which
// the queue releases once the consumer is done with the batch.
func (q *batchQueue) pushCharged(b record.Batch, bytes, records int, charged int64) {
	q.mu.Lock()
	q.queue = append(q.queue, queued{batch: b, bytes: bytes, records: records, charged: charged})
	q.bytes += bytes
	q.records += records
	q.mu.Unlock()
	signal(q.dataCh)
}

// waitSpace blocks while the queue is full. As in Java, a batch is admitted
// when the queue is below every bound, so one batch may overshoot.
func (q *batchQueue) waitSpace(ctx context.Context) error {
	for {
		q.mu.Lock()
		full := len(q.queue) >= q.maxBatches || q.bytes >= q.maxBytes || q.records >= q.maxRecords
		q.mu.Unlock()
		if !full {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-q.spaceCh:
		}
	}
}

// enqueue waits for room (back-pressure), then queues b. There is one
// producer (the goroutine), so the room found cannot shrink before b is
// queued.
func (q *batchQueue) enqueue(ctx context.Context, b record.Batch, bytes, records int) error {
	if err := q.waitSpace(ctx); err != nil {
		return err
	}
	q.push(b, bytes, records)
	return nil
}
