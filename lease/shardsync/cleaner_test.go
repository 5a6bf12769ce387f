package shardsync

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

func TestChecklist19_Cleaner_Fake(t *testing.T) {
	r := ranges(2)
	full := hashUnion(r[0], r[1])
	listing := []shard.Info{
		mkShard(0, -1, -1, full, "1", "50"),
		mkShard(1, 0, -1, r[0], "51", ""),
		mkShard(2, 0, -1, r[1], "52", ""),
	}
	done := lease.Lease{Key: sid(0), Checkpoint: seqnum.Sentinel(seqnum.ShardEnd), ChildShardIDs: []string{sid(1), sid(2)}}
	doneNoChildren := lease.Lease{Key: sid(0), Checkpoint: seqnum.Sentinel(seqnum.ShardEnd)}
	withGrandParent := done
	withGrandParent.ParentShardIDs = []string{"shardId-000000000077"}
	grandParent := lease.Lease{Key: "shardId-000000000077", Checkpoint: seqnum.Sentinel(seqnum.ShardEnd)}
	child := func(id int, cp string) lease.Lease {
		return lease.Lease{Key: sid(id), Checkpoint: seqnum.Sentinel(cp), ParentShardIDs: []string{sid(0)}}
	}
	started := func(id int) lease.Lease {
		return lease.Lease{Key: sid(id), Checkpoint: seqnum.New("77", 0), ParentShardIDs: []string{sid(0)}}
	}
	notDone := lease.Lease{Key: sid(0), Checkpoint: seqnum.New("5", 0), ChildShardIDs: []string{sid(1), sid(2)}}

	tests := []struct {
		name        string
		store       []lease.Lease
		lister      *fakeLister
		noCleanup   bool // CleanupLeasesUponShardCompletion=false
		wantDeleted bool
		wantQueued  bool
	}{
		{name: "children started, no parent: deleted", store: []lease.Lease{done, started(1), started(2)}, wantDeleted: true},
		{name: "a child still at TRIM_HORIZON", store: []lease.Lease{done, started(1), child(2, seqnum.TrimHorizon)}, wantQueued: true},
		{name: "a child still at AT_TIMESTAMP", store: []lease.Lease{done, started(1), child(2, seqnum.AtTimestamp)}, wantQueued: true},
		{name: "a child at LATEST counts as started", store: []lease.Lease{done, started(1), child(2, seqnum.Latest)}, wantDeleted: true},
		{name: "a child lease missing", store: []lease.Lease{done, started(1)}, wantQueued: true},
		{name: "a parent lease remains", store: []lease.Lease{withGrandParent, grandParent, started(1), started(2)}, wantQueued: true},
		{name: "not at SHARD_END", store: []lease.Lease{notDone, started(1), started(2)}, wantQueued: true},
		{name: "children found by listing", store: []lease.Lease{doneNoChildren, started(1), started(2)}, lister: &fakeLister{shards: listing}, wantDeleted: true},
		{name: "cleanup disabled keeps it", store: []lease.Lease{done, started(1), started(2)}, noCleanup: true, wantQueued: true},
		{name: "stream deleted: garbage", store: []lease.Lease{notDone}, lister: &fakeLister{err: notFound()}, wantDeleted: true},
		{name: "shard gone from listing: garbage", store: []lease.Lease{notDone}, lister: &fakeLister{shards: listing[1:]}, wantDeleted: true},
		{name: "cleanup disabled still removes garbage", store: []lease.Lease{done}, noCleanup: true, lister: &fakeLister{err: notFound()}, wantDeleted: true},
		{name: "listing error keeps it", store: []lease.Lease{notDone}, lister: &fakeLister{err: errors.New("throttled")}, wantQueued: true},
		{name: "already gone", store: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore(tt.store...)
			lst := tt.lister
			if lst == nil {
				lst = &fakeLister{shards: listing}
			}
			c := NewCleaner(st, lst, Config{CleanupLeasesUponShardCompletion: !tt.noCleanup}, nil)
			c.Enqueue(sid(0))
			c.Enqueue(sid(0)) // idempotent
			deleted, _ := c.CleanupNow(context.Background())
			if got := slices.Contains(deleted, sid(0)); got != tt.wantDeleted {
				t.Fatalf("deleted %v, want deleted=%v", deleted, tt.wantDeleted)
			}
			if l, _ := st.GetLease(context.Background(), sid(0)); (l == nil) != (tt.wantDeleted || tt.store == nil) {
				t.Fatalf("lease present=%v", l != nil)
			}
			if got := c.Enqueued(sid(0)); got != tt.wantQueued {
				t.Fatalf("still queued=%v, want %v (pending %v)", got, tt.wantQueued, c.Pending())
			}
			if tt.wantQueued && len(c.Pending()) != 1 {
				t.Fatalf("pending %v", c.Pending())
			}
			// Child leases are never deleted by the cleaner.
			for _, k := range []string{sid(1), sid(2), grandParent.Key} {
				if slices.Contains(st.deleted, k) {
					t.Fatalf("deleted %s", k)
				}
			}
		})
	}
}

// TestCleanerRun: the loop deletes a ready lease once the completed-lease
// interval has passed and then stops on cancel.
func TestCleanerRun(t *testing.T) {
	st := newFakeStore(
		lease.Lease{Key: sid(0), Checkpoint: seqnum.Sentinel(seqnum.ShardEnd), ChildShardIDs: []string{sid(1)}},
		lease.Lease{Key: sid(1), Checkpoint: seqnum.New("9", 0)},
	)
	c := NewCleaner(st, &fakeLister{}, Config{CleanupLeasesUponShardCompletion: true,
		CleanupInterval: time.Millisecond, CompletedCleanupInterval: time.Millisecond, GarbageCleanupInterval: time.Hour}, nil)
	c.Enqueue(sid(0))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for c.Enqueued(sid(0)) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l, _ := st.GetLease(context.Background(), sid(0)); l != nil {
		t.Fatalf("lease not deleted: %+v", l)
	}
}
