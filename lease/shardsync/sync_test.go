package shardsync

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

// TestChecklist16_NonEmptyTableSync_SpecExample: existing leases 4, 5, 7 on
// the 0–10 shard example yield {6} / {0,1} / {0,1}, as documented on Java
// NonEmptyLeaseTableSynchronizer.determineNewLeasesToCreate.
func TestChecklist16_NonEmptyTableSync_SpecExample(t *testing.T) {
	tests := []struct {
		position string
		want     map[string]string // key → checkpoint
	}{
		{seqnum.Latest, map[string]string{sid(6): seqnum.Latest}},
		{seqnum.TrimHorizon, map[string]string{sid(0): seqnum.TrimHorizon, sid(1): seqnum.TrimHorizon}},
		{seqnum.AtTimestamp, map[string]string{sid(0): seqnum.AtTimestamp, sid(1): seqnum.AtTimestamp}},
	}
	for _, tt := range tests {
		t.Run(tt.position, func(t *testing.T) {
			shards := specExample()
			existing := []lease.Lease{
				leaseFor(byID(shards, 4), "49"), leaseFor(byID(shards, 5), seqnum.ShardEnd), leaseFor(byID(shards, 7), seqnum.TrimHorizon),
			}
			st := newFakeStore(existing...)
			s := New(st, &fakeLister{shards: shards}, Config{InitialPosition: tt.position, InitialTimestamp: time.UnixMilli(1e12)}, nil)
			created, err := s.sync(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, k := range created {
				l, _ := st.GetLease(context.Background(), k)
				got[k] = l.Checkpoint.Sequence
				if l.Owner != "" || l.Counter != 0 || l.EntityType != lease.EntityTypeLease {
					t.Errorf("%s: new lease must be unowned, counter 0, entityType LEASE: %+v", k, l)
				}
			}
			if !mapsEqual(got, tt.want) {
				t.Fatalf("created %v, want %v", got, tt.want)
			}
			// Parent links and hash range come from the listing.
			if tt.position == seqnum.Latest {
				l, _ := st.GetLease(context.Background(), sid(6))
				if !slices.Equal(l.ParentShardIDs, []string{sid(0), sid(1)}) || l.StartingHashKey != byID(shards, 6).StartingHashKey || l.EndingHashKey != byID(shards, 6).EndingHashKey {
					t.Errorf("lease 6 = %+v", l)
				}
			}
			// The filter of a non-empty-table sync is "none".
			if f := s.lister.(*fakeLister).calls(); len(f) != 1 || f[0].Type != "" {
				t.Errorf("ListShards filters = %+v, want one unfiltered call", f)
			}
			// A second sync is a no-op.
			again, err := s.sync(context.Background())
			if err != nil || len(again) != 0 {
				t.Errorf("second sync created %v, %v", again, err)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestNonEmptyTableSync_Rules covers the remaining NonEmptyLeaseTableSynchronizer cases.
func TestNonEmptyTableSync_Rules(t *testing.T) {
	r := ranges(2)
	full := hashUnion(r[0], r[1])
	tests := []struct {
		name     string
		shards   []shard.Info
		leased   []int
		position string
		want     []string
	}{
		{
			name:     "new open shard without ancestors gets its own lease",
			shards:   []shard.Info{mkShard(0, -1, -1, r[0], "1", ""), mkShard(1, -1, -1, r[1], "2", "")},
			leased:   []int{0},
			position: seqnum.TrimHorizon,
			want:     []string{sid(1) + "=" + seqnum.TrimHorizon},
		},
		{
			name:     "children of a leased parent are left to SHARD_END",
			shards:   []shard.Info{mkShard(0, -1, -1, full, "1", "5"), mkShard(1, 0, -1, r[0], "6", ""), mkShard(2, 0, -1, r[1], "7", "")},
			leased:   []int{0},
			position: seqnum.Latest,
			want:     nil,
		},
		{
			// 1 is a child of leased 0: its lease comes from 0's SHARD_END.
			name: "grand-child of a leased shard waits for SHARD_END of the leased ancestor",
			shards: []shard.Info{mkShard(0, -1, -1, full, "1", "5"), mkShard(1, 0, -1, r[0], "6", "9"), mkShard(2, 0, -1, r[1], "7", ""),
				mkShard(3, 1, -1, r[0], "10", "")},
			leased:   []int{0, 2},
			position: seqnum.Latest,
			want:     nil,
		},
		{
			name: "same for AT_TIMESTAMP",
			shards: []shard.Info{mkShard(0, -1, -1, full, "1", "5"), mkShard(1, 0, -1, r[0], "6", "9"), mkShard(2, 0, -1, r[1], "7", ""),
				mkShard(3, 1, -1, r[0], "10", "")},
			leased:   []int{0, 2},
			position: seqnum.AtTimestamp,
			want:     nil,
		},
		{
			name: "TRIM_HORIZON: un-leased root ancestors of a merge are created, not the open child",
			shards: []shard.Info{mkShard(0, -1, -1, r[0], "1", "5"), mkShard(1, -1, -1, r[1], "2", "5"),
				mkShard(2, 0, 1, full, "6", "")},
			leased:   []int{},
			position: seqnum.TrimHorizon,
			want:     []string{sid(0) + "=" + seqnum.TrimHorizon, sid(1) + "=" + seqnum.TrimHorizon},
		},
		{
			name: "LATEST: the open child of un-leased closed parents gets its own lease",
			shards: []shard.Info{mkShard(0, -1, -1, r[0], "1", "5"), mkShard(1, -1, -1, r[1], "2", "5"),
				mkShard(2, 0, 1, full, "6", "")},
			leased:   []int{},
			position: seqnum.Latest,
			want:     []string{sid(2) + "=" + seqnum.Latest},
		},
		{
			name:     "unlisted (trimmed) parents are ignored",
			shards:   []shard.Info{mkShard(3, 1, 2, full, "10", "")},
			leased:   []int{},
			position: seqnum.Latest,
			want:     []string{sid(3) + "=" + seqnum.Latest},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var current []lease.Lease
			for _, n := range tt.leased {
				current = append(current, leaseFor(byID(tt.shards, n), "1"))
			}
			if len(current) == 0 { // force the non-empty path with an unrelated lease
				current = append(current, lease.Lease{Key: "shardId-999999999999", Checkpoint: seqnum.Sentinel(seqnum.ShardEnd)})
			}
			got := nonEmptyTableLeases(keys{}, tt.shards, current, tt.position, inconsistentShards(tt.shards))
			var keysGot []string
			for _, l := range got {
				keysGot = append(keysGot, l.Key+"="+l.Checkpoint.Sequence)
			}
			want := tt.want
			if !slices.Equal(keysGot, want) {
				t.Fatalf("got %v, want %v", keysGot, want)
			}
		})
	}
}

// TestSync_CreationOrder: leases are written in ascending order of starting
// sequence number compared as big integers, ties by shard id.
func TestSync_CreationOrder(t *testing.T) {
	r := ranges(4)
	shards := []shard.Info{
		mkShard(0, -1, -1, r[0], "1000", ""),
		mkShard(1, -1, -1, r[1], "20", ""),
		mkShard(2, -1, -1, r[2], "300", ""),
		mkShard(3, -1, -1, r[3], "20", ""),
	}
	st := newFakeStore()
	s := New(st, &fakeLister{shards: shards}, Config{InitialPosition: seqnum.TrimHorizon}, nil)
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{sid(1), sid(3), sid(2), sid(0)}
	if got := st.createdKeys(); !slices.Equal(got, want) {
		t.Fatalf("creation order %v, want %v", got, want)
	}
}

// TestChecklist15_EmptyTableSync_Fake: the empty-table synchroniser with a
// lister that honours the filter and one that ignores it (kinesalite).
func TestChecklist15_EmptyTableSync_Fake(t *testing.T) {
	r := ranges(2)
	full := hashUnion(r[0], r[1])
	// Shard 0 was split into 1 and 2; 3 is an unrelated... no: single stream
	// with one root split into two open children.
	shards := []shard.Info{
		mkShard(0, -1, -1, full, "1", "50"),
		mkShard(1, 0, -1, r[0], "51", ""),
		mkShard(2, 0, -1, r[1], "52", ""),
	}
	tests := []struct {
		position   string
		honour     bool
		wantFilter string
		want       []string
	}{
		{seqnum.Latest, true, "AT_LATEST", []string{sid(1), sid(2)}},
		{seqnum.Latest, false, "AT_LATEST", []string{sid(1), sid(2)}},
		{seqnum.TrimHorizon, false, "AT_TRIM_HORIZON", []string{sid(0)}},
		{seqnum.AtTimestamp, false, "AT_TIMESTAMP", []string{sid(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.position, func(t *testing.T) {
			st := newFakeStore()
			ls := &fakeLister{shards: shards, honourFilter: tt.honour}
			ts := time.UnixMilli(1_700_000_000_000)
			s := New(st, ls, Config{InitialPosition: tt.position, InitialTimestamp: ts}, nil)
			if err := s.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := st.keys(); !slices.Equal(got, tt.want) {
				t.Fatalf("leases %v, want %v", got, tt.want)
			}
			for _, k := range tt.want {
				l, _ := st.GetLease(context.Background(), k)
				if l.Checkpoint != seqnum.Sentinel(tt.position) {
					t.Errorf("%s checkpoint %v", k, l.Checkpoint)
				}
			}
			f := ls.calls()
			if len(f) != 1 || f[0].Type != tt.wantFilter {
				t.Fatalf("filters %+v, want one %s", f, tt.wantFilter)
			}
			if tt.position == seqnum.AtTimestamp && f[0].TimestampMillis != ts.UnixMilli() {
				t.Errorf("timestamp %d", f[0].TimestampMillis)
			}
		})
	}
}

// TestEmptyTableSync_IncompleteHashRange: a listing with a gap is retried
// ListAttempts times, then the sync fails creating nothing.
func TestEmptyTableSync_IncompleteHashRange(t *testing.T) {
	r := ranges(3)
	ls := &fakeLister{shards: []shard.Info{mkShard(0, -1, -1, r[0], "1", ""), mkShard(2, -1, -1, r[2], "1", "")}}
	st := newFakeStore()
	s := New(st, ls, Config{InitialPosition: seqnum.Latest, ListRetryDelay: time.Millisecond}, nil)
	err := s.Sync(context.Background())
	if !errors.Is(err, ErrIncompleteHashRange) {
		t.Fatalf("err = %v", err)
	}
	if n := len(ls.calls()); n != 3 {
		t.Errorf("ListShards called %d times, want 3", n)
	}
	if len(st.keys()) != 0 {
		t.Errorf("created %v", st.keys())
	}
}

// TestSync_InconsistentChild: an open child of an open parent aborts the
// sync unless IgnoreUnexpectedChildShards, which skips that child.
func TestSync_InconsistentChild(t *testing.T) {
	r := ranges(2)
	full := hashUnion(r[0], r[1])
	shards := []shard.Info{
		mkShard(0, -1, -1, full, "1", ""), // parent still open
		mkShard(1, 0, -1, r[0], "51", ""),
		mkShard(5, -1, -1, r[1], "60", ""), // unrelated new shard
	}
	existing := lease.Lease{Key: "shardId-999999999999", Checkpoint: seqnum.Sentinel(seqnum.ShardEnd)}
	for _, ignore := range []bool{false, true} {
		st := newFakeStore(existing)
		s := New(st, &fakeLister{shards: shards}, Config{InitialPosition: seqnum.Latest, IgnoreUnexpectedChildShards: ignore}, nil)
		err := s.Sync(context.Background())
		if !ignore {
			if !errors.Is(err, ErrInconsistentShards) || len(st.createdKeys()) != 0 {
				t.Fatalf("ignore=false: err=%v created=%v", err, st.createdKeys())
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := st.createdKeys(); !slices.Equal(got, []string{sid(0), sid(5)}) {
			t.Fatalf("ignore=true: created %v", got)
		}
	}
}

// TestSync_Errors: listing and store errors are returned wrapped.
func TestSync_Errors(t *testing.T) {
	boom := errors.New("boom")
	st := newFakeStore()
	st.listErr = boom
	if err := New(st, &fakeLister{}, Config{}, nil).Sync(context.Background()); !errors.Is(err, boom) {
		t.Errorf("store error: %v", err)
	}
	if err := New(newFakeStore(), &fakeLister{err: boom}, Config{}, nil).Sync(context.Background()); !errors.Is(err, boom) {
		t.Errorf("lister error: %v", err)
	}
	if err := New(newFakeStore(), &fakeLister{}, Config{InitialPosition: "BOGUS"}, nil).Sync(context.Background()); err == nil {
		t.Error("bad initial position accepted")
	}
}

// TestMultiStreamKeys: with a stream identifier, keys carry the prefix,
// parent ids stay bare and leases of other streams are ignored.
func TestMultiStreamKeys(t *testing.T) {
	const sidf = "123456789012:orders:1700000000"
	r := ranges(2)
	shards := []shard.Info{mkShard(1, 0, -1, r[0], "5", ""), mkShard(2, 0, -1, r[1], "6", "")}
	other := lease.Lease{Key: "123456789012:other:1:" + sid(9), StreamName: "123456789012:other:1", ShardID: sid(9), Checkpoint: seqnum.Sentinel(seqnum.Latest)}
	st := newFakeStore(other)
	s := New(st, &fakeLister{shards: shards}, Config{InitialPosition: seqnum.Latest, StreamIdentifier: sidf}, nil)
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, _ := st.GetLease(context.Background(), sidf+":"+sid(1))
	if l == nil || l.StreamName != sidf || l.ShardID != sid(1) || !slices.Equal(l.ParentShardIDs, []string{sid(0)}) {
		t.Fatalf("multi-stream lease = %+v", l)
	}
}

// TestInitialSync: an empty table is synced after the random wait; a
// table another worker filled meanwhile (or already had leases) is not.
func TestInitialSync(t *testing.T) {
	r := ranges(1)
	listing := []shard.Info{mkShard(0, -1, -1, r[0], "1", "")}
	cfg := Config{InitialSyncMinWait: time.Millisecond, InitialSyncMaxWait: 5 * time.Millisecond, InitialSyncCheckInterval: time.Millisecond}

	st := newFakeStore()
	synced, err := New(st, &fakeLister{shards: listing}, cfg, nil).InitialSync(context.Background())
	if err != nil || !synced || len(st.keys()) != 1 {
		t.Fatalf("empty table: synced=%v err=%v leases=%v", synced, err, st.keys())
	}

	lst := &fakeLister{shards: listing}
	synced, err = New(st, lst, cfg, nil).InitialSync(context.Background())
	if err != nil || synced || len(lst.calls()) != 0 {
		t.Fatalf("non-empty table: synced=%v err=%v listings=%d", synced, err, len(lst.calls()))
	}
}

// emptyScanStore hides the leases from ListLeases: another worker created
// them after this worker's scan.
type emptyScanStore struct{ *fakeStore }

func (emptyScanStore) ListLeases(context.Context) ([]lease.Lease, error) { return nil, nil }

// TestEmptyTableSync_AnotherCreator: when the first lease of an empty-table
// sync already exists, another worker is filling the table; the sync stops
// instead of sending a failing conditional put for every other shard.
func TestEmptyTableSync_AnotherCreator(t *testing.T) {
	r := ranges(2)
	shards := []shard.Info{mkShard(1, -1, -1, r[0], "51", ""), mkShard(2, -1, -1, r[1], "52", "")}
	st := newFakeStore(lease.Lease{Key: sid(1)})
	s := New(emptyScanStore{st}, &fakeLister{shards: shards}, Config{InitialPosition: seqnum.TrimHorizon}, nil)
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(st.created) != 0 {
		t.Errorf("created %v after finding %s already created by another worker", st.created, sid(1))
	}
}

// TestEmptyTableSync_FillerDied: the worker filling the empty table created
// the first lease and died; the second worker's empty-table sync stops at
// that lease, and the leader's auditor creates the rest (the hash-range hole
// they leave) after AuditorConfidenceThreshold audits.
func TestEmptyTableSync_FillerDied(t *testing.T) {
	r := ranges(4)
	var shards []shard.Info
	for i := range 4 {
		shards = append(shards, mkShard(i, -1, -1, r[i], strconv.Itoa(50+i), ""))
	}
	ctx := context.Background()
	st := newFakeStore(lease.Lease{Key: sid(0), StartingHashKey: r[0][0], EndingHashKey: r[0][1], Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
	lst := &fakeLister{shards: shards}
	cfg := Config{InitialPosition: seqnum.TrimHorizon}
	if err := New(emptyScanStore{st}, lst, cfg, nil).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if len(st.created) != 0 {
		t.Fatalf("second worker created %v", st.created)
	}
	a := &auditor{s: New(st, lst, cfg, nil)}
	for i := 0; i < 3; i++ {
		if _, err := a.run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := st.keys(); len(got) != 4 {
		t.Fatalf("after 3 audits the table has %v, want all 4 shards", got)
	}
}
