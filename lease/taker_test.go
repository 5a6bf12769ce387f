package lease

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/multilangd/multilangd/seqnum"
)

// TestPlanTake checks the counts of Java DynamoDBLeaseTaker.computeLeasesToTake
// and chooseLeasesToSteal: target, priority taking, stealing bounds.
func TestPlanTake(t *testing.T) {
	now := time.Unix(1000, 0)
	const failover = 10 * time.Second
	fresh := now.Add(-time.Second)        // renewed recently
	expired := now.Add(-15 * time.Second) // expired, not very old
	type spec struct {
		owner string
		at    time.Time // zero = never seen changing (infinitely old)
	}
	mk := func(specs ...spec) ([]Lease, map[string]observation) {
		var ls []Lease
		obs := map[string]observation{}
		for i, sp := range specs {
			k := fmt.Sprintf("shardId-%012d", i)
			ls = append(ls, Lease{Key: k, Owner: sp.owner, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
			obs[k] = observation{at: sp.at}
		}
		return ls, obs
	}
	rep := func(n int, sp spec) []spec {
		out := make([]spec, n)
		for i := range out {
			out[i] = sp
		}
		return out
	}
	cat := func(parts ...[]spec) []spec {
		var out []spec
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name         string
		leases       []spec
		maxForWorker int
		maxSteal     int
		priority     bool
		wantTake     int
		wantSteal    bool
		wantPriority bool
		wantTarget   int
		wantWorkers  int
	}{
		{"priority takes all never-owned", rep(12, spec{}), 1 << 30, 1, true, 12, false, true, 12, 1},
		{"priority bounded by maxLeasesForWorker", rep(12, spec{}), 5, 1, true, 5, false, true, 5, 1},
		{"no priority: target of one worker", rep(12, spec{}), 1 << 30, 1, false, 12, false, false, 12, 1},
		{"steal one at a time", cat(rep(8, spec{"a", fresh}), rep(4, spec{"b", fresh})), 1 << 30, 1, true, 1, true, false, 4, 3},
		{"steal bounded by count-target", cat(rep(8, spec{"a", fresh}), rep(4, spec{"b", fresh})), 1 << 30, 10, true, 4, true, false, 4, 3},
		{"needed>1 and n==0 steals one", cat(rep(4, spec{"a", fresh}), rep(4, spec{"b", fresh}), rep(2, spec{"me", fresh})), 1 << 30, 5, true, 1, true, false, 4, 3},
		{"needed==1 and count==target steals none", cat(rep(4, spec{"a", fresh}), rep(4, spec{"b", fresh}), rep(3, spec{"me", fresh})), 1 << 30, 5, true, 0, false, false, 4, 3},
		{"expired leases taken up to needed", cat(rep(2, spec{"a", fresh}), rep(4, spec{"dead", expired})), 1 << 30, 1, true, 3, false, false, 3, 2},
		{"balanced: nothing", cat(rep(4, spec{"a", fresh}), rep(4, spec{"me", fresh})), 1 << 30, 1, true, 0, false, false, 4, 2},
		{"empty table", nil, 1 << 30, 1, true, 0, false, false, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls, obs := mk(tt.leases...)
			p := takeParams{me: "me", failover: failover, veryOldThreshold: 3 * failover, maxForWorker: tt.maxForWorker,
				maxSteal: tt.maxSteal, priority: tt.priority, held: map[string]bool{}}
			got, res := planTake(p, ls, obs, now, rand.New(rand.NewPCG(1, 2)))
			if len(got) != tt.wantTake || res.Steal != tt.wantSteal || res.Priority != tt.wantPriority ||
				res.Target != tt.wantTarget || res.NumWorkers != tt.wantWorkers {
				t.Fatalf("took %d steal=%v priority=%v target=%d workers=%d; want %d %v %v %d %d (%+v)",
					len(got), res.Steal, res.Priority, res.Target, res.NumWorkers,
					tt.wantTake, tt.wantSteal, tt.wantPriority, tt.wantTarget, tt.wantWorkers, res)
			}
			for _, l := range got {
				if res.Steal && l.Owner != "a" {
					t.Fatalf("stole %s from %q, want the most-loaded worker a", l.Key, l.Owner)
				}
			}
		})
	}
}

func TestPlanTakeNeverRetakesHeld(t *testing.T) {
	now := time.Unix(1000, 0)
	ls := []Lease{{Key: "k1", Owner: "me"}, {Key: "k2"}}
	obs := map[string]observation{"k1": {}, "k2": {}}
	p := takeParams{me: "me", failover: time.Second, veryOldThreshold: 3 * time.Second, maxForWorker: 10, maxSteal: 1,
		priority: true, held: map[string]bool{"k1": true}}
	got, _ := planTake(p, ls, obs, now, rand.New(rand.NewPCG(1, 2)))
	if len(got) != 1 || got[0].Key != "k2" {
		t.Fatalf("got %v, want only k2", got)
	}
}

// TestObserve covers the local expiry observation (Java
// DynamoDBLeaseTaker.updateAllLeases): first sight unowned ⇒ infinitely old, owned ⇒
// scan time; a changed counter resets the time; vanished keys are forgotten.
func TestObserve(t *testing.T) {
	t0 := time.Unix(100, 0)
	obs := map[string]observation{}
	observe(obs, []Lease{{Key: "a"}, {Key: "b", Owner: "w", Counter: 5}}, t0)
	if !obs["a"].at.IsZero() || !obs["b"].at.Equal(t0) {
		t.Fatalf("first sight: %+v", obs)
	}
	t1 := t0.Add(20 * time.Second)
	observe(obs, []Lease{{Key: "b", Owner: "w", Counter: 5}, {Key: "c", Owner: "w"}}, t1)
	if _, ok := obs["a"]; ok {
		t.Fatal("vanished key kept")
	}
	if !obs["b"].at.Equal(t0) || !obs["b"].expired(t1, 10*time.Second) {
		t.Fatal("unchanged counter must keep the old time and be expired after failover")
	}
	t2 := t1.Add(time.Second)
	observe(obs, []Lease{{Key: "b", Owner: "w", Counter: 6}, {Key: "c", Owner: "w"}}, t2)
	if !obs["b"].at.Equal(t2) || obs["b"].expired(t2, 10*time.Second) {
		t.Fatal("changed counter must reset the observation")
	}
}

// BenchmarkPlanTake: one taker decision over 10 000 leases held by 100 workers.
func BenchmarkPlanTake(b *testing.B) {
	now := time.Unix(1000, 0)
	var ls []Lease
	obs := map[string]observation{}
	for i := 0; i < 10000; i++ {
		k := fmt.Sprintf("shardId-%012d", i)
		ls = append(ls, Lease{Key: k, Owner: fmt.Sprintf("w%d", i%100)})
		obs[k] = observation{at: now.Add(-time.Second)}
	}
	p := takeParams{me: "me", failover: 10 * time.Second, veryOldThreshold: 30 * time.Second, maxForWorker: 1 << 30,
		maxSteal: 1, priority: true, held: map[string]bool{}}
	rnd := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		planTake(p, ls, obs, now, rnd)
	}
}

// TestPlanTakeSpreadsAcrossStreams: in a multi-stream table the leases taken
// are spread over the streams, the streams this worker holds least of
// first, however many shards the busiest stream has.
func TestPlanTakeSpreadsAcrossStreams(t *testing.T) {
	now := time.Unix(1000, 0)
	var ls []Lease
	obs := map[string]observation{}
	add := func(stream string, n int, owner string) {
		for i := 0; i < n; i++ {
			k := MultiStreamKey(stream, fmt.Sprintf("shardId-%012d", i))
			ls = append(ls, Lease{Key: k, Owner: owner, StreamName: stream, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
			obs[k] = observation{at: now.Add(-time.Second)}
		}
	}
	add("1:hot:1", 20, "")
	add("1:quiet:1", 1, "")
	add("1:mid:1", 3, "")
	add("1:held:1", 1, "me")
	for seed := uint64(0); seed < 20; seed++ {
		p := takeParams{me: "me", failover: 10 * time.Second, veryOldThreshold: time.Hour, maxForWorker: 4,
			maxSteal: 1, held: map[string]bool{MultiStreamKey("1:held:1", "shardId-000000000000"): true}}
		got, _ := planTake(p, ls, obs, now, rand.New(rand.NewPCG(seed, 2)))
		per := map[string]int{}
		for _, l := range got {
			per[l.StreamName]++
		}
		if len(got) != 3 || per["1:hot:1"] != 1 || per["1:quiet:1"] != 1 || per["1:mid:1"] != 1 {
			t.Fatalf("seed %d: took %v, want one lease of each unheld stream", seed, per)
		}
	}
	// One stream: the shuffled order is kept.
	single := []int{3, 1, 2}
	if got := spreadAcrossStreams(single, ls, nil); !slices.Equal(got, []int{3, 1, 2}) {
		t.Fatalf("single-stream candidates reordered: %v", got)
	}
}
