package shardsync

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

func rl(key string, r [2]string, cp string) lease.Lease {
	return lease.Lease{Key: key, StartingHashKey: r[0], EndingHashKey: r[1], Checkpoint: seqnum.Sentinel(cp)}
}

func TestHoleIn(t *testing.T) {
	r := ranges(4)
	overlapping := [2]string{r[0][0], r[1][1]}
	tests := []struct {
		name     string
		leases   []lease.Lease
		wantHole bool
	}{
		{"complete", []lease.Lease{rl("a", r[0], "1"), rl("b", r[1], "1"), rl("c", r[2], "1"), rl("d", r[3], "1")}, false},
		{"complete, unsorted", []lease.Lease{rl("d", r[3], "1"), rl("b", r[1], "1"), rl("a", r[0], "1"), rl("c", r[2], "1")}, false},
		{"overlaps are merged", []lease.Lease{rl("a", r[0], "1"), rl("x", overlapping, "1"), rl("b", r[1], "1"), rl("c", r[2], "1"), rl("d", r[3], "1")}, false},
		{"gap in the middle", []lease.Lease{rl("a", r[0], "1"), rl("b", r[1], "1"), rl("d", r[3], "1")}, true},
		{"does not start at 0", []lease.Lease{rl("b", r[1], "1"), rl("c", r[2], "1"), rl("d", r[3], "1")}, true},
		{"does not reach the end", []lease.Lease{rl("a", r[0], "1"), rl("b", r[1], "1"), rl("c", r[2], "1")}, true},
		{"no ranges at all", []lease.Lease{{Key: "x"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := holeIn(tt.leases) != nil; got != tt.wantHole {
				t.Fatalf("hole = %v, want %v", got, tt.wantHole)
			}
		})
	}
}

// TestAuditor: no leases ⇒ sync at once; a hole ⇒ sync only on the
// threshold-th consecutive sighting; SHARD_END leases do not count; leases
// without hash range are back-filled first.
func TestAuditor(t *testing.T) {
	r := ranges(2)
	listing := []shard.Info{mkShard(0, -1, -1, r[0], "1", ""), mkShard(1, -1, -1, r[1], "2", "")}
	ctx := context.Background()

	t.Run("no leases", func(t *testing.T) {
		st := newFakeStore()
		a := &auditor{s: New(st, &fakeLister{shards: listing}, Config{}, nil)}
		if synced, err := a.run(ctx); !synced || err != nil {
			t.Fatalf("run = %v, %v", synced, err)
		}
		if len(st.keys()) != 2 {
			t.Fatalf("leases %v", st.keys())
		}
	})

	t.Run("hole needs the same sighting three times", func(t *testing.T) {
		// Lease 1 finished (SHARD_END) and its children were never created:
		// its range is a hole.
		st := newFakeStore(rl(sid(0), r[0], "5"), rl(sid(1), r[1], seqnum.ShardEnd))
		lst := &fakeLister{shards: []shard.Info{listing[0], mkShard(1, -1, -1, r[1], "2", "9"), mkShard(2, 1, -1, r[1], "10", "")}}
		a := &auditor{s: New(st, lst, Config{InitialPosition: seqnum.TrimHorizon}, nil)}
		for i := 1; i <= 3; i++ {
			synced, err := a.run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if synced != (i == 3) {
				t.Fatalf("audit %d synced=%v", i, synced)
			}
		}
		// The non-empty sync found open shard 2 as a descendant of leased 1,
		// so the hole is closed at 1's SHARD_END path; the auditor still
		// calls Sync and resets its tracker.
		if a.holeRuns != 0 {
			t.Errorf("tracker not reset: %d", a.holeRuns)
		}
	})

	t.Run("a different hole restarts the count", func(t *testing.T) {
		r4 := ranges(4)
		st := newFakeStore(rl("a", r4[0], "1"), rl("c", r4[2], "1"), rl("d", r4[3], "1"))
		a := &auditor{s: New(st, &fakeLister{shards: listing}, Config{}, nil)}
		for i := 0; i < 2; i++ {
			if synced, _ := a.run(ctx); synced {
				t.Fatal("synced too early")
			}
		}
		// Move the hole.
		_ = st.DeleteLease(ctx, "a")
		_, _ = st.CreateLeaseIfNotExists(ctx, rl("b", r4[1], "1"))
		if synced, _ := a.run(ctx); synced || a.holeRuns != 1 {
			t.Fatalf("synced=%v runs=%d after the hole moved", synced, a.holeRuns)
		}
	})

	t.Run("no hole resets", func(t *testing.T) {
		st := newFakeStore(rl(sid(0), r[0], "1"), rl(sid(1), r[1], "1"))
		a := &auditor{s: New(st, &fakeLister{shards: listing}, Config{}, nil), hole: &hole{}, holeRuns: 2}
		if synced, err := a.run(ctx); synced || err != nil || a.holeRuns != 0 {
			t.Fatalf("synced=%v err=%v runs=%d", synced, err, a.holeRuns)
		}
	})

	t.Run("hash ranges are back-filled", func(t *testing.T) {
		st := newFakeStore(lease.Lease{Key: sid(0), Checkpoint: seqnum.New("1", 0)}, lease.Lease{Key: sid(1), Checkpoint: seqnum.New("1", 0)})
		a := &auditor{s: New(st, &fakeLister{shards: listing}, Config{}, nil)}
		if synced, err := a.run(ctx); synced || err != nil {
			t.Fatalf("synced=%v err=%v", synced, err)
		}
		if st.ranges[sid(0)] != r[0] || st.ranges[sid(1)] != r[1] {
			t.Fatalf("back-filled %v", st.ranges)
		}
	})

	t.Run("syncs are at least ShardSyncInterval apart", func(t *testing.T) {
		st := newFakeStore()
		lst := &fakeLister{shards: nil} // empty stream: the sync fails, the table stays empty
		a := &auditor{s: New(st, lst, Config{ListAttempts: 1, ShardSyncInterval: time.Hour}, nil)}
		if synced, _ := a.run(ctx); !synced {
			t.Fatal("first audit did not sync")
		}
		if synced, _ := a.run(ctx); synced {
			t.Fatal("second audit synced within ShardSyncInterval")
		}
	})
}

// TestRunPeriodic: only the leader audits; RunPeriodic returns on cancel.
func TestRunPeriodic(t *testing.T) {
	r := ranges(1)
	for _, leader := range []bool{false, true} {
		st := newFakeStore()
		lst := &fakeLister{shards: []shard.Info{mkShard(0, -1, -1, r[0], "1", "")}}
		s := New(st, lst, Config{AuditorInitialDelay: time.Millisecond, AuditorPeriod: time.Millisecond}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		var asked atomic.Int32
		done := make(chan error, 1)
		go func() {
			done <- s.RunPeriodic(ctx, func(context.Context) bool {
				if asked.Add(1) >= 5 {
					cancel()
				}
				return leader
			})
		}()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		cancel()
		if got := len(st.keys()) == 1; got != leader {
			t.Fatalf("leader=%v: leases %v", leader, st.keys())
		}
	}
}
