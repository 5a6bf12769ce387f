package assemble

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
)

type fakeStreamStore struct {
	mu      sync.Mutex
	leases  []lease.Lease
	deleted []string
}

func (f *fakeStreamStore) ListLeases(context.Context) ([]lease.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.leases), nil
}

func (f *fakeStreamStore) DeleteLease(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, key)
	f.leases = slices.DeleteFunc(f.leases, func(l lease.Lease) bool { return l.Key == key })
	return nil
}

func msLease(stream, shard string) lease.Lease {
	return lease.Lease{Key: lease.MultiStreamKey(stream, shard), StreamName: stream, ShardID: shard}
}

// TestFormerStreamsDeferredDeletion: Java
// FORMER_STREAMS_AUTO_DETECTION_DEFERRED_DELETION — a stream no longer
// listed loses its leases only after the wait period, a stream listed again
// in time keeps them, and NO_STREAMS_LEASES_DELETION never deletes.
func TestFormerStreamsDeferredDeletion(t *testing.T) {
	const a, b = "1:a:10", "1:b:20"
	streams := func(ids ...string) []properties.StreamConfig {
		var out []properties.StreamConfig
		for _, id := range ids {
			ss, err := properties.ParseStreams(id)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ss...)
		}
		return out
	}
	for _, strategy := range []string{properties.FormerStreamsAutoDetectionDeferredDeletion, properties.NoStreamsLeasesDeletion} {
		t.Run(strategy, func(t *testing.T) {
			store := &fakeStreamStore{leases: []lease.Lease{msLease(a, "shardId-0"), msLease(b, "shardId-0"), msLease(b, "shardId-1")}}
			cfg := &properties.Config{Streams: streams(a), FormerStreamsLeasesDeletionStrategy: strategy, WaitPeriodToDeleteFormerStreams: time.Hour}
			s := newStreamSet(cfg, store, nil, nil, zap.NewNop())
			now := time.Unix(1_000_000, 0)
			s.now = func() time.Time { return now }
			const idle = "1:c:30" // built for a lease since deleted
			s.parts[a], s.parts[b], s.parts[idle] = &streamParts{}, &streamParts{}, &streamParts{}
			ctx := context.Background()

			s.check(ctx)
			if _, ok := s.parts[idle]; ok || !s.listed(a) || s.listed(b) {
				t.Fatalf("after a check: idle parts kept %v, a listed %v, b listed %v", ok, s.listed(a), s.listed(b))
			}
			now = now.Add(59 * time.Minute)
			s.check(ctx)
			if len(store.deleted) != 0 {
				t.Fatalf("deleted %v before the wait period", store.deleted)
			}
			s.setStreams(&properties.Config{Streams: streams(a, b)}) // b listed again
			s.check(ctx)
			s.setStreams(&properties.Config{Streams: streams(a)}) // and removed again
			now = now.Add(30 * time.Minute)
			s.check(ctx)
			if len(store.deleted) != 0 {
				t.Fatalf("deleted %v: the wait restarts when a stream is listed again", store.deleted)
			}
			now = now.Add(time.Hour)
			s.check(ctx)
			want := []string(nil)
			if strategy == properties.FormerStreamsAutoDetectionDeferredDeletion {
				want = []string{lease.MultiStreamKey(b, "shardId-0"), lease.MultiStreamKey(b, "shardId-1")}
			}
			slices.Sort(store.deleted)
			if !slices.Equal(store.deleted, want) {
				t.Fatalf("deleted %v, want %v", store.deleted, want)
			}
			if _, kept := s.parts[b]; kept == (want != nil) {
				t.Errorf("parts of b kept = %v after deletion %v", kept, want)
			}
		})
	}
}

func TestParseIdentifier(t *testing.T) {
	sc, err := parseIdentifier("123456789012:orders:1700000000")
	if err != nil || sc.Name != "orders" || sc.AccountID != "123456789012" || sc.CreationEpoch != 1700000000 {
		t.Fatalf("parseIdentifier = %+v, %v", sc, err)
	}
	for _, bad := range []string{"", "orders", "arn:aws:kinesis:us-east-1:123456789012:stream/x", "1:a:0"} {
		if _, err := parseIdentifier(bad); err == nil {
			t.Errorf("parseIdentifier(%q) accepted", bad)
		}
	}
}
