package shardsync

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

func TestChecklist18_CreateChildLeases_Fake(t *testing.T) {
	r := ranges(2)
	full := hashUnion(r[0], r[1])
	parent := lease.Lease{Key: sid(0), Owner: "me", Counter: 7, Checkpoint: seqnum.New("42", 0), StartingHashKey: full[0], EndingHashKey: full[1]}
	split := []record.ChildShard{
		{ShardID: sid(1), ParentShardIDs: []string{sid(0)}, StartingHashKey: r[0][0], EndingHashKey: r[0][1]},
		{ShardID: sid(2), ParentShardIDs: []string{sid(0)}, StartingHashKey: r[1][0], EndingHashKey: r[1][1]},
	}
	merged := []record.ChildShard{{ShardID: sid(5), ParentShardIDs: []string{sid(0), sid(3)}, StartingHashKey: full[0], EndingHashKey: full[1]}}
	otherParent := lease.Lease{Key: sid(3), Checkpoint: seqnum.New("7", 0)}
	existingChild := lease.Lease{Key: sid(1), Owner: "other", Counter: 3, Checkpoint: seqnum.New("99", 0)}
	listing := []shard.Info{
		mkShard(0, -1, -1, full, "1", "50"),
		mkShard(1, 0, -1, r[0], "51", ""),
		mkShard(2, 0, -1, r[1], "52", ""),
	}

	tests := []struct {
		name         string
		store        []lease.Lease
		children     []record.ChildShard
		lister       *fakeLister
		wantErr      error
		wantCreated  []string
		wantChildIDs []string // written on the parent; nil = none
	}{
		{name: "split", store: []lease.Lease{parent}, children: split,
			wantCreated: []string{sid(1), sid(2)}, wantChildIDs: []string{sid(1), sid(2)}},
		{name: "split with one child lease already present", store: []lease.Lease{parent, existingChild}, children: split,
			wantCreated: []string{sid(2)}, wantChildIDs: []string{sid(1), sid(2)}},
		{name: "merge with both parent leases present", store: []lease.Lease{parent, otherParent}, children: merged,
			wantCreated: []string{sid(5)}, wantChildIDs: []string{sid(5)}},
		{name: "merge with the other parent lease missing", store: []lease.Lease{parent}, children: merged,
			wantErr: ErrMergeParentPending},
		{name: "merge child already created by the other parent", store: []lease.Lease{parent, {Key: sid(5), Checkpoint: seqnum.New("3", 0)}}, children: merged,
			wantCreated: nil, wantChildIDs: []string{sid(5)}},
		{name: "merge with both parent leases absent", store: nil, children: merged,
			wantCreated: []string{sid(5)}, wantChildIDs: []string{sid(5)}},
		{name: "only child with one parent", store: []lease.Lease{parent}, children: []record.ChildShard{{ShardID: sid(9), ParentShardIDs: []string{sid(0)}}},
			wantErr: ErrMissingMergeParent},
		{name: "no childShards: fall back to ListShards parent links", store: []lease.Lease{parent}, lister: &fakeLister{shards: listing},
			wantCreated: []string{sid(1), sid(2)}, wantChildIDs: []string{sid(1), sid(2)}},
		{name: "no childShards and stream deleted", store: []lease.Lease{parent}, lister: &fakeLister{err: notFound()}},
		{name: "no childShards, shard trimmed but its children listed", store: []lease.Lease{parent}, lister: &fakeLister{shards: listing[1:]},
			wantCreated: []string{sid(1), sid(2)}, wantChildIDs: []string{sid(1), sid(2)}},
		{name: "no childShards, shard and children trimmed", store: []lease.Lease{parent}, lister: &fakeLister{shards: []shard.Info{mkShard(7, -1, -1, full, "70", "")}}},
		{name: "no childShards, shard listed closed but no child listed", store: []lease.Lease{parent}, lister: &fakeLister{shards: listing[:1]},
			wantErr: ErrNoChildShards},
		{name: "no childShards, shard still listed open", store: []lease.Lease{parent}, lister: &fakeLister{shards: []shard.Info{mkShard(0, -1, -1, full, "1", "")}},
			wantErr: ErrNoChildShards},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore(tt.store...)
			ls := tt.lister
			if ls == nil {
				ls = &fakeLister{err: errors.New("lister must not be called")}
			}
			s := New(st, ls, Config{InitialPosition: seqnum.Latest}, nil)
			err := s.CreateChildLeases(context.Background(), parent, tt.children)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if len(st.createdKeys()) != 0 {
					t.Fatalf("created %v on error", st.createdKeys())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := st.createdKeys(); !slices.Equal(got, tt.wantCreated) {
				t.Fatalf("created %v, want %v", got, tt.wantCreated)
			}
			for _, k := range tt.wantCreated {
				l, _ := st.GetLease(context.Background(), k)
				if l.Checkpoint != seqnum.Sentinel(seqnum.TrimHorizon) || l.Owner != "" || l.Counter != 0 || len(l.ParentShardIDs) == 0 || l.StartingHashKey == "" || l.EndingHashKey == "" {
					t.Errorf("child lease %+v", l)
				}
			}
			if got := st.children[parent.Key]; !slices.Equal(got, tt.wantChildIDs) {
				t.Errorf("childShardIds on parent = %v, want %v", got, tt.wantChildIDs)
			}
			if l, _ := st.GetLease(context.Background(), sid(1)); l != nil && l.Owner == "other" && l.Counter != 3 {
				t.Errorf("existing child lease modified: %+v", l)
			}
		})
	}
}

func TestChecklist17_ParentsDone_Fake(t *testing.T) {
	child := lease.Lease{Key: sid(5), ParentShardIDs: []string{sid(1), sid(2)}, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}
	end := func(id int) lease.Lease {
		return lease.Lease{Key: sid(id), Checkpoint: seqnum.Sentinel(seqnum.ShardEnd)}
	}
	at := func(id int, cp seqnum.ESN) lease.Lease { return lease.Lease{Key: sid(id), Checkpoint: cp} }
	tests := []struct {
		name  string
		store []lease.Lease
		child lease.Lease
		want  bool
	}{
		{"no parents", nil, lease.Lease{Key: sid(0)}, true},
		{"both parents finished", []lease.Lease{end(1), end(2)}, child, true},
		{"one parent still processing", []lease.Lease{end(1), at(2, seqnum.New("17", 0))}, child, false},
		{"parent at TRIM_HORIZON", []lease.Lease{at(1, seqnum.Sentinel(seqnum.TrimHorizon)), end(2)}, child, false},
		{"SHARD_END with a non-zero sub-sequence is not finished", []lease.Lease{at(1, seqnum.New(seqnum.ShardEnd, 1)), end(2)}, child, false},
		{"missing parents count as finished", []lease.Lease{end(2)}, child, true},
		{"all parents missing", nil, child, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(newFakeStore(tt.store...), &fakeLister{}, Config{}, nil)
			got, err := s.ParentsDone(context.Background(), tt.child)
			if err != nil || got != tt.want {
				t.Fatalf("ParentsDone = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
