package lease

import (
	"math"
	"math/rand/v2"
	"time"
)

// TakeResult describes one taker run; the fields carry the Java
// TakeLeases metric names (DynamoDBLeaseTaker.takeLeases).
type TakeResult struct {
	TotalLeases  int  // TotalLeases (includes SHARD_END leases)
	NumWorkers   int  // NumWorkers
	Expired      int  // ExpiredLeases: unowned or expired
	VeryOld      int  // VeryOldLeases
	Target       int  // per-worker target
	Spillover    int  // LeaseSpillover
	Needed       int  // NeededLeases
	LeasesToTake int  // LeasesToTake
	Priority     bool // the very-old priority path was used
	Steal        bool // the leases to take are steals
	Taken        int  // TakenLeases
	Untaken      int  // UntakenLeases
	// Skipped is non-empty when the round did nothing on purpose
	// ("stopped", "java-3x-leader-live").
	Skipped string
}

type takeParams struct {
	me               string
	failover         time.Duration
	veryOldThreshold time.Duration
	maxForWorker     int
	maxSteal         int
	priority         bool
	held             map[string]bool // leases this worker already holds: never re-taken
}

// planTake is the pure part of the KCL 2.x lease taker (Java
// DynamoDBLeaseTaker.computeLeaseCounts, computeLeasesToTake, chooseLeasesToSteal).
func planTake(p takeParams, leases []Lease, obs map[string]observation, now time.Time, rnd *rand.Rand) ([]Lease, TakeResult) {
	var res TakeResult
	res.TotalLeases = len(leases)
	// Indices into leases keep this allocation-light on large tables.
	var available, veryOld []int
	counts := map[string]int{}
	for i := range leases {
		l := &leases[i]
		o := obs[l.Key]
		if l.Owner == "" || o.expired(now, p.failover) {
			res.Expired++
			if !p.held[l.Key] {
				available = append(available, i)
			}
		} else {
			counts[l.Owner]++
		}
		if p.priority && o.olderThan(now, p.veryOldThreshold) && !p.held[l.Key] {
			veryOld = append(veryOld, i)
		}
	}
	pick := func(idx []int, n int) []Lease {
		rnd.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		out := make([]Lease, n)
		for i := range out {
			out[i] = leases[idx[i]]
		}
		return out
	}
	if _, ok := counts[p.me]; !ok {
		counts[p.me] = 0
	}
	res.NumWorkers = len(counts)
	res.VeryOld = len(veryOld)
	if res.TotalLeases == 0 {
		return nil, res
	}
	target := 1
	if res.NumWorkers < res.TotalLeases {
		target = int(math.Ceil(float64(res.TotalLeases) / float64(res.NumWorkers)))
	}
	if target > p.maxForWorker {
		res.Spillover = target - p.maxForWorker
		target = p.maxForWorker
	}
	res.Target = target
	myCount := counts[p.me]
	if len(veryOld) > 0 {
		res.Priority = true
		n := min(p.maxForWorker-myCount, len(veryOld))
		if n <= 0 {
			return nil, res
		}
		res.LeasesToTake = n
		return pick(veryOld, n), res
	}
	needed := target - myCount
	res.Needed = max(needed, 0)
	if needed <= 0 {
		return nil, res
	}
	if len(available) > 0 {
		n := min(needed, len(available))
		res.LeasesToTake = n
		return pick(available, n), res
	}
	// Steal from the most-loaded worker.
	most, mostCount := "", -1
	for w, c := range counts {
		if w == p.me {
			continue
		}
		if c > mostCount || (c == mostCount && w < most) {
			most, mostCount = w, c
		}
	}
	if most == "" || mostCount < target {
		return nil, res
	}
	n := min(needed, mostCount-target)
	if needed > 1 && n == 0 {
		n = 1
	}
	n = min(n, p.maxSteal)
	if n <= 0 {
		return nil, res
	}
	var cand []int
	for i := range leases {
		l := &leases[i]
		if l.Owner == most && !(l.Owner == "" || obs[l.Key].expired(now, p.failover)) {
			cand = append(cand, i)
		}
	}
	res.Steal = true
	res.LeasesToTake = n
	return pick(cand, n), res
}
