package lease

import (
	"math"
	"math/rand/v2"
	"slices"
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
// DynamoDBLeaseTaker.takeLeases after its scan): priority taking of very old
// leases, else available leases up to the target, else one steal.
func planTake(p takeParams, leases []Lease, obs map[string]observation, now time.Time, rnd *rand.Rand) ([]Lease, TakeResult) {
	c := takeCensus(p, leases, obs, now)
	res := TakeResult{
		TotalLeases: len(leases),
		NumWorkers:  len(c.counts),
		Expired:     c.expired,
		VeryOld:     len(c.veryOld),
	}
	if res.TotalLeases == 0 {
		return nil, res
	}
	res.Target, res.Spillover = leaseTarget(res.TotalLeases, res.NumWorkers, p.maxForWorker)
	pick := func(idx []int, n int) []Lease {
		rnd.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		idx = spreadAcrossStreams(idx, leases, p.held)
		out := make([]Lease, n)
		for i := range out {
			out[i] = leases[idx[i]]
		}
		return out
	}
	myCount := c.counts[p.me]
	if len(c.veryOld) > 0 {
		res.Priority = true
		n := min(p.maxForWorker-myCount, len(c.veryOld))
		if n <= 0 {
			return nil, res
		}
		res.LeasesToTake = n
		return pick(c.veryOld, n), res
	}
	needed := res.Target - myCount
	res.Needed = max(needed, 0)
	if needed <= 0 {
		return nil, res
	}
	if len(c.available) > 0 {
		n := min(needed, len(c.available))
		res.LeasesToTake = n
		return pick(c.available, n), res
	}
	victim, n := chooseSteal(p, c.counts, res.Target, needed)
	if n <= 0 {
		return nil, res
	}
	var cand []int
	for i := range leases {
		if l := &leases[i]; l.Owner == victim && !obs[l.Key].expired(now, p.failover) {
			cand = append(cand, i)
		}
	}
	res.Steal = true
	res.LeasesToTake = n
	return pick(cand, n), res
}

// census is what the taker reads from one scan (Java
// DynamoDBLeaseTaker.getAvailableLeases and computeLeaseCounts). Indices into
// the scanned leases keep it allocation-light on large tables.
type census struct {
	available []int          // unowned or expired, and not held here
	veryOld   []int          // priority candidates (not held here)
	expired   int            // unowned or expired, held here or not
	counts    map[string]int // live leases per owner; this worker always present
}

func takeCensus(p takeParams, leases []Lease, obs map[string]observation, now time.Time) census {
	c := census{counts: map[string]int{p.me: 0}}
	for i := range leases {
		l := &leases[i]
		o := obs[l.Key]
		if l.Owner == "" || o.expired(now, p.failover) {
			c.expired++
			if !p.held[l.Key] {
				c.available = append(c.available, i)
			}
		} else {
			c.counts[l.Owner]++
		}
		if p.priority && o.olderThan(now, p.veryOldThreshold) && !p.held[l.Key] {
			c.veryOld = append(c.veryOld, i)
		}
	}
	return c
}

// leaseTarget is the per-worker target, capped at maxForWorker; spillover is
// what the cap removed (Java computeLeasesToTake).
func leaseTarget(total, workers, maxForWorker int) (target, spillover int) {
	target = 1
	if workers < total {
		target = int(math.Ceil(float64(total) / float64(workers)))
	}
	if target > maxForWorker {
		return maxForWorker, target - maxForWorker
	}
	return target, 0
}

// chooseSteal picks the most-loaded other worker (ties: the smallest id) and
// how many of its leases to steal; n <= 0 means none (Java
// chooseLeasesToSteal).
func chooseSteal(p takeParams, counts map[string]int, target, needed int) (victim string, n int) {
	mostCount := -1
	for w, c := range counts {
		if w == p.me {
			continue
		}
		if c > mostCount || (c == mostCount && w < victim) {
			victim, mostCount = w, c
		}
	}
	if victim == "" || mostCount < target {
		return "", 0
	}
	n = min(needed, mostCount-target)
	if needed > 1 && n == 0 {
		n = 1
	}
	return victim, min(n, p.maxSteal)
}

// spreadAcrossStreams reorders shuffled candidates of a multi-stream table
// so that taking a prefix takes round-robin across their streams, starting
// with the streams this worker holds fewest leases of: a stream with many
// shards cannot crowd a quiet stream out of a worker's share
// (docs/multistream.md). Candidates of one stream keep the shuffled order,
// so a single-stream table is picked exactly as Java does.
func spreadAcrossStreams(idx []int, leases []Lease, held map[string]bool) []int {
	var order []string
	byStream := map[string][]int{}
	for _, i := range idx {
		s := leases[i].StreamOf()
		if _, ok := byStream[s]; !ok {
			order = append(order, s)
		}
		byStream[s] = append(byStream[s], i)
	}
	if len(order) < 2 {
		return idx
	}
	mine := map[string]int{}
	for k := range held {
		id, _, _ := ParseMultiStreamKey(k)
		mine[id]++
	}
	slices.SortStableFunc(order, func(a, b string) int { return mine[a] - mine[b] })
	out := make([]int, 0, len(idx))
	for round := 0; len(out) < len(idx); round++ {
		for _, s := range order {
			if round < len(byStream[s]) {
				out = append(out, byStream[s][round])
			}
		}
	}
	return out
}
