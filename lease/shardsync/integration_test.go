package shardsync

import (
	"context"
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/seqnum"
)

func sortedLeaseKeys(m map[string]lease.Lease) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestChecklist15_EmptyTableSync_AfterSplit: on a stream of shards 0, 1
// where 0 was split into 2, 3, an empty-table sync creates the leases Java
// creates against Kinesis: LATEST → {1,2,3}; TRIM_HORIZON → {0,1};
// AT_TIMESTAMP (before the split) → {0,1} — with the initial-position
// checkpoint, parentShardId and hash range from the listing.
func TestChecklist15_EmptyTableSync_AfterSplit(t *testing.T) {
	forEachPair(t, func(t *testing.T, e *env) {
		e.createStream(t, 2)
		time.Sleep(1100 * time.Millisecond)
		beforeSplit := time.Now()
		time.Sleep(1100 * time.Millisecond)
		e.split(t, sid(0))
		time.Sleep(1100 * time.Millisecond)
		afterSplit := time.Now()
		// Kinesis (and kinesis-local) answer AT_TIMESTAMP after the split with
		// the open shards; kinesalite ignores the filter, so the listing is
		// reduced to its roots (documented emulator-only divergence).
		afterWant := []string{sid(1), sid(2), sid(3)}
		if !e.p.childShards {
			afterWant = []string{sid(0), sid(1)}
		}
		tests := []struct {
			name, position string
			ts             time.Time
			want           []string
		}{
			{seqnum.Latest, seqnum.Latest, beforeSplit, []string{sid(1), sid(2), sid(3)}},
			{seqnum.TrimHorizon, seqnum.TrimHorizon, beforeSplit, []string{sid(0), sid(1)}},
			{"AT_TIMESTAMP before the split", seqnum.AtTimestamp, beforeSplit, []string{sid(0), sid(1)}},
			{"AT_TIMESTAMP after the split", seqnum.AtTimestamp, afterSplit, afterWant},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				store := newTable(t, e.ddb)
				s := New(store, e.lister, Config{InitialPosition: tt.position, InitialTimestamp: tt.ts, ListRetryDelay: 100 * time.Millisecond}, testLogger(t))
				if err := s.Sync(ctxT(t, 60*time.Second)); err != nil {
					t.Fatal(err)
				}
				ls, err := store.ListLeases(ctxT(t, 10*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, l := range ls {
					got = append(got, l.Key)
					sh := e.shardByID(t, l.Key)
					if l.Checkpoint != seqnum.Sentinel(tt.position) || l.Owner != "" || l.Counter != 0 ||
						!slices.Equal(l.ParentShardIDs, sh.Parents()) || l.StartingHashKey != sh.StartingHashKey || l.EndingHashKey != sh.EndingHashKey {
						t.Errorf("lease %+v does not match shard %+v", l, sh)
					}
				}
				sort.Strings(got)
				if !slices.Equal(got, tt.want) {
					t.Fatalf("leases %v, want %v", got, tt.want)
				}
			})
		}
	})
}

// TestChecklist16_NonEmptyTableSync_SpecExample_Emulators rebuilds the 0–10
// shard example of Java NonEmptyLeaseTableSynchronizer.determineNewLeasesToCreate
// by real resharding (merge 0+1→6, 2+3→7, 6+7→8,
// split 5→9,10), seeds leases 4, 5, 7 and checks {6} / {0,1} / {0,1}.
func TestChecklist16_NonEmptyTableSync_SpecExample_Emulators(t *testing.T) {
	forEachPair(t, func(t *testing.T, e *env) {
		e.createStream(t, 6)
		e.merge(t, sid(0), sid(1))
		e.merge(t, sid(2), sid(3))
		e.merge(t, sid(6), sid(7))
		e.split(t, sid(5))
		if sh := e.shardByID(t, sid(8)); !slices.Equal(sh.Parents(), []string{sid(6), sid(7)}) {
			t.Fatalf("unexpected shard ids from the emulator: 8 = %+v", sh)
		}
		tests := []struct {
			position string
			want     map[string]string
		}{
			{seqnum.Latest, map[string]string{sid(6): seqnum.Latest}},
			{seqnum.TrimHorizon, map[string]string{sid(0): seqnum.TrimHorizon, sid(1): seqnum.TrimHorizon}},
			{seqnum.AtTimestamp, map[string]string{sid(0): seqnum.AtTimestamp, sid(1): seqnum.AtTimestamp}},
		}
		for _, tt := range tests {
			t.Run(tt.position, func(t *testing.T) {
				store := newTable(t, e.ddb)
				for _, n := range []int{4, 5, 7} {
					if ok, err := store.CreateLeaseIfNotExists(ctxT(t, 10*time.Second), leaseFor(e.shardByID(t, sid(n)), seqnum.TrimHorizon)); !ok || err != nil {
						t.Fatal(ok, err)
					}
				}
				s := New(store, e.lister, Config{InitialPosition: tt.position, InitialTimestamp: time.Now().Add(-time.Minute)}, testLogger(t))
				created, err := s.sync(ctxT(t, 60*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]string{}
				for _, k := range created {
					l, err := store.GetLease(ctxT(t, 10*time.Second), k)
					if err != nil || l == nil {
						t.Fatal(k, err)
					}
					got[k] = l.Checkpoint.Sequence
				}
				if !mapsEqual(got, tt.want) {
					t.Fatalf("created %v, want %v", got, tt.want)
				}
			})
		}
	})
}

// TestChecklist17_ParentGate_Emulators: a child is gated while a present
// parent lease is not at (SHARD_END, 0); a missing parent does not block.
func TestChecklist17_ParentGate_Emulators(t *testing.T) {
	forEachPair(t, func(t *testing.T, e *env) {
		ctx := ctxT(t, 30*time.Second)
		s := New(e.store, e.lister, Config{}, testLogger(t))
		child := lease.Lease{Key: sid(5), ParentShardIDs: []string{sid(1), sid(2)}, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}
		if _, err := e.store.CreateLeaseIfNotExists(ctx, child); err != nil {
			t.Fatal(err)
		}
		for _, p := range []int{1, 2} {
			if _, err := e.store.CreateLeaseIfNotExists(ctx, lease.Lease{Key: sid(p), Checkpoint: seqnum.New("49590338271490256608559692538361571095921575989136588898", 0)}); err != nil {
				t.Fatal(err)
			}
		}
		steps := []struct {
			name string
			do   func()
			want bool
		}{
			{"both parents processing", func() {}, false},
			{"one parent at SHARD_END", func() { e.setCheckpoint(t, sid(1), seqnum.ShardEnd) }, false},
			{"both parents at SHARD_END", func() { e.setCheckpoint(t, sid(2), seqnum.ShardEnd) }, true},
			{"parent reprocessing (not SHARD_END)", func() { e.setCheckpoint(t, sid(2), seqnum.TrimHorizon) }, false},
			{"that parent's lease deleted", func() {
				if err := e.store.DeleteLease(ctx, sid(2)); err != nil {
					t.Fatal(err)
				}
			}, true},
			{"all parent leases deleted", func() {
				if err := e.store.DeleteLease(ctx, sid(1)); err != nil {
					t.Fatal(err)
				}
			}, true},
		}
		for _, st := range steps {
			st.do()
			got, err := s.ParentsDone(ctx, child)
			if err != nil || got != st.want {
				t.Fatalf("%s: ParentsDone = %v, %v; want %v", st.name, got, err, st.want)
			}
		}
	})
}

// TestChecklist18_SplitAndMerge_ChildLeases: at SHARD_END of a split parent
// the child leases are written with TRIM_HORIZON, parentShardId SS, hash
// range, counter 0, no owner, and the parent gets childShardIds; a merge
// child is created only when both parent leases exist. On kinesalite (no
// ChildShards) the children come from ListShards parent links.
func TestChecklist18_SplitAndMerge_ChildLeases(t *testing.T) {
	forEachPair(t, func(t *testing.T, e *env) {
		ctx := ctxT(t, 60*time.Second)
		e.createStream(t, 2)
		s := New(e.store, e.lister, Config{InitialPosition: seqnum.Latest}, testLogger(t))
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		e.split(t, sid(0))
		children := e.childShardsAtEnd(t, sid(0))
		if e.p.childShards != (len(children) == 2) {
			t.Fatalf("ChildShards from GetRecords: %+v", children)
		}
		parent, err := e.store.GetLease(ctx, sid(0))
		if err != nil || parent == nil {
			t.Fatal(parent, err)
		}
		if err := s.CreateChildLeases(ctx, *parent, children); err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{sid(2), sid(3)} {
			item := e.rawItem(t, c)
			sh := e.shardByID(t, c)
			wantS := map[string]string{"leaseKey": c, "checkpoint": seqnum.TrimHorizon, "startingHashKey": sh.StartingHashKey, "endingHashKey": sh.EndingHashKey, "entityType": "LEASE"}
			for k, v := range wantS {
				if got, ok := item[k].(*ddbtypes.AttributeValueMemberS); !ok || got.Value != v {
					t.Errorf("%s.%s = %#v, want S %q", c, k, item[k], v)
				}
			}
			for _, k := range []string{"leaseCounter", "checkpointSubSequenceNumber", "ownerSwitchesSinceCheckpoint"} {
				if got, ok := item[k].(*ddbtypes.AttributeValueMemberN); !ok || got.Value != "0" {
					t.Errorf("%s.%s = %#v, want N 0", c, k, item[k])
				}
			}
			if got, ok := item["parentShardId"].(*ddbtypes.AttributeValueMemberSS); !ok || !slices.Equal(got.Value, []string{sid(0)}) {
				t.Errorf("%s.parentShardId = %#v", c, item["parentShardId"])
			}
			if _, ok := item["leaseOwner"]; ok {
				t.Errorf("%s has an owner", c)
			}
		}
		if got, ok := e.rawItem(t, sid(0))["childShardIds"].(*ddbtypes.AttributeValueMemberSS); !ok || !sameSet(got.Value, []string{sid(2), sid(3)}) {
			t.Errorf("parent childShardIds = %#v", e.rawItem(t, sid(0))["childShardIds"])
		}

		// Merge 2+3 → 4. With lease 3 gone only one parent lease exists: deferred.
		e.merge(t, sid(2), sid(3))
		mchildren := e.childShardsAtEnd(t, sid(2))
		if e.p.childShards && (len(mchildren) != 1 || !sameSet(mchildren[0].ParentShardIDs, []string{sid(2), sid(3)})) {
			t.Fatalf("merge ChildShards %+v", mchildren)
		}
		l2, _ := e.store.GetLease(ctx, sid(2))
		l3, _ := e.store.GetLease(ctx, sid(3))
		if err := e.store.DeleteLease(ctx, sid(3)); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateChildLeases(ctx, *l2, mchildren); !errors.Is(err, ErrMergeParentPending) {
			t.Fatalf("merge with one parent lease: err = %v", err)
		}
		if l, _ := e.store.GetLease(ctx, sid(4)); l != nil {
			t.Fatalf("merge child created early: %+v", l)
		}
		if _, err := e.store.CreateLeaseIfNotExists(ctx, *l3); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateChildLeases(ctx, *l2, mchildren); err != nil {
			t.Fatal(err)
		}
		// The other parent finishing later finds the child already there.
		if err := s.CreateChildLeases(ctx, *l3, mchildren); err != nil {
			t.Fatal(err)
		}
		l4, err := e.store.GetLease(ctx, sid(4))
		if err != nil || l4 == nil {
			t.Fatal(l4, err)
		}
		if l4.Checkpoint != seqnum.Sentinel(seqnum.TrimHorizon) || !sameSet(l4.ParentShardIDs, []string{sid(2), sid(3)}) || l4.Owner != "" {
			t.Errorf("merge child lease %+v", l4)
		}
		for _, p := range []string{sid(2), sid(3)} {
			if l, _ := e.store.GetLease(ctx, p); l == nil || !slices.Equal(l.ChildShardIDs, []string{sid(4)}) {
				t.Errorf("%s childShardIds = %+v", p, l)
			}
		}
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// TestChecklist19_Cleanup_Emulators: a finished parent lease is deleted only
// once both children have started and no grand-parent lease remains; a
// lease whose stream was deleted is deleted as garbage.
func TestChecklist19_Cleanup_Emulators(t *testing.T) {
	forEachPair(t, func(t *testing.T, e *env) {
		ctx := ctxT(t, 60*time.Second)
		e.createStream(t, 1)
		s := New(e.store, e.lister, Config{InitialPosition: seqnum.TrimHorizon}, testLogger(t))
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		e.split(t, sid(0))
		// A grand-parent lease left over from earlier resharding.
		const gp = "shardId-000000000099"
		if _, err := e.store.CreateLeaseIfNotExists(ctx, lease.Lease{Key: gp, Checkpoint: seqnum.Sentinel(seqnum.ShardEnd)}); err != nil {
			t.Fatal(err)
		}
		e.setParents(t, sid(0), gp)
		parent, _ := e.store.GetLease(ctx, sid(0))
		if err := s.CreateChildLeases(ctx, *parent, e.childShardsAtEnd(t, sid(0))); err != nil {
			t.Fatal(err)
		}
		e.setCheckpoint(t, sid(0), seqnum.ShardEnd)

		c := NewCleaner(e.store, e.lister, Config{CleanupLeasesUponShardCompletion: true}, testLogger(t))
		c.Enqueue(sid(0))
		step := func(name string, wantDeleted bool) {
			t.Helper()
			deleted, err := c.CleanupNow(ctx)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := slices.Contains(deleted, sid(0)); got != wantDeleted {
				t.Fatalf("%s: deleted %v, want parent deleted=%v", name, deleted, wantDeleted)
			}
			l, _ := e.store.GetLease(ctx, sid(0))
			if (l == nil) != wantDeleted {
				t.Fatalf("%s: parent lease present=%v", name, l != nil)
			}
		}
		step("children at TRIM_HORIZON", false)
		e.setCheckpoint(t, sid(1), "49590338271490256608559692538361571095921575989136588898")
		step("one child started", false)
		e.setCheckpoint(t, sid(2), seqnum.ShardEnd)
		step("both children started, grand-parent lease remains", false)
		if err := e.store.DeleteLease(ctx, gp); err != nil {
			t.Fatal(err)
		}
		step("both children started, no grand-parent", true)
		for _, k := range []string{sid(1), sid(2)} {
			if l, _ := e.store.GetLease(ctx, k); l == nil {
				t.Errorf("child %s deleted", k)
			}
		}
		if c.Enqueued(sid(0)) {
			t.Error("still queued after deletion")
		}

		// Garbage: the stream is deleted; a queued lease of it goes at once.
		if _, err := e.kin.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(e.stream)}); err != nil {
			t.Fatal(err)
		}
		waitStreamGone(t, e)
		c.Enqueue(sid(1))
		deleted, err := c.CleanupNow(ctx)
		if err != nil || !slices.Equal(deleted, []string{sid(1)}) {
			t.Fatalf("garbage cleanup deleted %v, %v", deleted, err)
		}
		if l, _ := e.store.GetLease(ctx, sid(2)); l == nil {
			t.Error("a lease that was not queued was deleted")
		}
	})
}

// TestRunPeriodic_Emulators: the leader's auditor creates the leases of a
// stream that has none and back-fills the hash range of a lease written
// without one (a pre-2.3 Java lease).
func TestRunPeriodic_Emulators(t *testing.T) {
	forEachPair(t, func(t *testing.T, e *env) {
		e.createStream(t, 2)
		s := New(e.store, e.lister, Config{InitialPosition: seqnum.TrimHorizon, AuditorInitialDelay: 10 * time.Millisecond, AuditorPeriod: 50 * time.Millisecond}, testLogger(t))
		runAuditor := func(cond func(map[string]lease.Lease) bool) {
			t.Helper()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.RunPeriodic(ctx, func(context.Context) bool { return true }) }()
			deadline := time.Now().Add(30 * time.Second)
			for !cond(e.leaseSet(t)) {
				if time.Now().After(deadline) {
					cancel()
					<-done
					t.Fatalf("auditor did not reach the expected state: %v", sortedLeaseKeys(e.leaseSet(t)))
				}
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		runAuditor(func(m map[string]lease.Lease) bool { return len(m) == 2 })

		// Replace lease 1 by one without hash range; the audit back-fills it.
		if err := e.store.DeleteLease(ctxT(t, 10*time.Second), sid(1)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.CreateLeaseIfNotExists(ctxT(t, 10*time.Second), lease.Lease{Key: sid(1), Checkpoint: seqnum.New("7", 0)}); err != nil {
			t.Fatal(err)
		}
		sh := e.shardByID(t, sid(1))
		runAuditor(func(m map[string]lease.Lease) bool {
			l := m[sid(1)]
			return l.StartingHashKey == sh.StartingHashKey && l.EndingHashKey == sh.EndingHashKey
		})
	})
}
