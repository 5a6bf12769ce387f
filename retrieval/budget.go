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
	mu     sync.Mutex
	limit  int64
	used   int64
	freed  chan struct{}          // closed and replaced whenever bytes are released
	groups map[string]*groupShare // holding or waiting groups (Share)

	// root and group are set on a Share view: every call goes to root.
	root  *Budget
	group string
}

// groupShare is one group's bytes held and pollers waiting.
type groupShare struct {
	used    int64
	waiting int
}

// Share returns a view of b for one group of shards (a stream of a
// multi-stream application, docs/multistream.md). Reservations through it
// count against b; while a poller of another group waits for room, a group
// holding at least its equal share of b (limit / groups holding or waiting)
// waits too, so a busy stream cannot starve a quiet one. Without contention
// a group may use all of b. Nil for a nil b.
func (b *Budget) Share(group string) *Budget {
	if b == nil {
		return nil
	}
	if b.root != nil {
		b = b.root
	}
	return &Budget{root: b, group: group}
}

// NewBudget returns a budget of limit bytes; nil when limit <= 0.
func NewBudget(limit int64) *Budget {
	if limit <= 0 {
		return nil
	}
	return &Budget{limit: limit, freed: make(chan struct{}), groups: map[string]*groupShare{}}
}

// Limit returns the budget's size in bytes.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	if b.root != nil {
		return b.root.limit
	}
	return b.limit
}

// Used returns the bytes currently reserved or held.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	if b.root != nil {
		b = b.root
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// reserve waits until at least floor bytes are free (or nothing at all is
// used, so one shard can always make progress), then takes up to want bytes
// and returns how many it took (floor ≤ n ≤ want, or want when nothing was
// used). want and floor are clamped to at least 1. Through a Share view the
// group's fair share also applies.
func (b *Budget) reserve(ctx context.Context, want, floor int64) (int64, error) {
	if b == nil {
		return want, nil
	}
	if b.root != nil {
		return b.root.reserveFor(ctx, b.group, want, floor)
	}
	return b.reserveFor(ctx, "", want, floor)
}

func (b *Budget) reserveFor(ctx context.Context, group string, want, floor int64) (int64, error) {
	want = max(want, 1)
	floor = min(max(floor, 1), want)
	waiting := false
	for {
		b.mu.Lock()
		g := b.groupOf(group)
		free := b.limit - b.used
		share, contended := b.shareOf(group)
		fits := free >= floor || b.used == 0
		fair := !contended || g.used == 0 || g.used+floor <= share
		if fits && fair {
			n := min(want, max(free, floor))
			if contended {
				n = min(n, max(share-g.used, floor))
			}
			b.used += n
			g.used += n
			if waiting {
				g.waiting--
			}
			b.mu.Unlock()
			return n, nil
		}
		if !waiting {
			g.waiting++
			waiting = true
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			b.mu.Lock()
			g.waiting--
			b.forget(group, g)
			b.mu.Unlock()
			return 0, ctx.Err()
		case <-freed:
		}
	}
}

// groupOf returns group's entry, creating it; b.mu is held.
func (b *Budget) groupOf(group string) *groupShare {
	g := b.groups[group]
	if g == nil {
		g = &groupShare{}
		b.groups[group] = g
	}
	return g
}

// forget drops an idle group's entry; b.mu is held.
func (b *Budget) forget(group string, g *groupShare) {
	if g.used <= 0 && g.waiting <= 0 {
		delete(b.groups, group)
	}
}

// shareOf is group's equal share of the limit among the groups holding or
// waiting for room (group included) and whether another group is waiting;
// b.mu is held.
func (b *Budget) shareOf(group string) (share int64, contended bool) {
	active := 0
	for name, g := range b.groups {
		if name == group || g.used > 0 || g.waiting > 0 {
			active++
		}
		if name != group && g.waiting > 0 {
			contended = true
		}
	}
	return b.limit / int64(max(active, 1)), contended
}

// adjust changes a reservation of had bytes to have bytes (a response
// larger than reserved is charged without waiting: it is already here).
func (b *Budget) adjust(had, have int64) {
	if b == nil || had == have {
		return
	}
	group := ""
	if b.root != nil {
		group, b = b.group, b.root
	}
	b.mu.Lock()
	b.used += have - had
	g := b.groupOf(group)
	g.used += have - had
	b.forget(group, g)
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
