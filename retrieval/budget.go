package retrieval

import (
	"context"
	"sync"
	"unsafe"

	"github.com/multilangd/multilangd/record"
)

// Budget bounds, across every shard of the process, the memory held by
// fetched records: a GetRecords response counts from the call until the
// child's processRecords for it has returned (the consumer asks for the next
// batch). Before each call a Poller reserves room and sizes the call's Limit
// from the room it got and the shard's recent bytes per record; when too
// little is free, prefetching pauses on every shard until a consumer frees
// some. Java has no such bound (its per-shard prefetch bounds only count
// queued batches, and a response can exceed them); see docs/performance.md.
// A nil *Budget bounds nothing.
type Budget struct {
	mu    sync.Mutex
	limit int64
	used  int64
	freed chan struct{} // closed and replaced whenever bytes are released
}

// NewBudget returns a budget of limit bytes; nil when limit <= 0.
func NewBudget(limit int64) *Budget {
	if limit <= 0 {
		return nil
	}
	return &Budget{limit: limit, freed: make(chan struct{})}
}

// Limit returns the budget's size in bytes.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Used returns the bytes currently reserved or held.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// reserve waits until at least floor bytes are free (or nothing at all is
// used, so one shard can always make progress), then takes up to want bytes
// and returns how many it took (floor ≤ n ≤ want, or want when nothing was
// used). want and floor are clamped to at least 1.
func (b *Budget) reserve(ctx context.Context, want, floor int64) (int64, error) {
	if b == nil {
		return want, nil
	}
	want = max(want, 1)
	floor = min(max(floor, 1), want)
	for {
		b.mu.Lock()
		free := b.limit - b.used
		if free >= floor || b.used == 0 {
			n := min(want, max(free, floor))
			b.used += n
			b.mu.Unlock()
			return n, nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-freed:
		}
	}
}

// adjust changes a reservation of had bytes to have bytes (a response
// larger than reserved is charged without waiting: it is already here).
func (b *Budget) adjust(had, have int64) {
	if b == nil || had == have {
		return
	}
	b.mu.Lock()
	b.used += have - had
	b.wake()
	b.mu.Unlock()
}

// release frees n bytes.
func (b *Budget) release(n int64) { b.adjust(n, 0) }

// wake lets waiters re-check; b.mu is held.
func (b *Budget) wake() {
	close(b.freed)
	b.freed = make(chan struct{})
}

// recordOverhead is what one record.Record costs besides its data.
const recordOverhead = int64(unsafe.Sizeof(record.Record{}))
