package assign

import (
	"slices"
)

// leaseCountDecider is Java LeaseCountBasedLeaseAssignmentDecider
// (LEASE_COUNT_BASED, KCL 3.4.3+): lease counts over the active workers,
// ignoring utilisation.
type leaseCountDecider struct {
	v   *view
	cfg Config
}

func newLeaseCountDecider(v *view, cfg Config) *leaseCountDecider {
	return &leaseCountDecider{v: v, cfg: cfg}
}

// targetLeaseCount is calculateTargetLeaseCount: 1 when there are at least
// as many workers as leases, else ⌈leases ÷ workers⌉ capped at
// maxLeasesForWorker.
func (d *leaseCountDecider) targetLeaseCount() int {
	leases, workers := len(d.v.leases), len(d.v.active)
	if workers >= leases {
		return 1
	}
	target := leases / workers
	if leases%workers != 0 {
		target++
	}
	return min(target, d.cfg.MaxLeasesForWorker)
}

// workerCount is one active worker's lease count.
type workerCount struct {
	id    string
	count int
}

// countsAscending is getActiveWorkerLeaseCounts sorted by count, a stable
// sort of its HashMap's entries: equal counts come in Java's HashMap order
// (filled from workerToLeasesMap, then from the activeWorkerIdSet HashSet).
func (d *leaseCountDecider) countsAscending() []*workerCount {
	activeSet := &javaHashMap{}
	for _, w := range d.v.active {
		activeSet.put(w.id)
	}
	counts := &javaHashMap{}
	for _, id := range d.v.ownerOrder.order() {
		if id != "" && d.v.activeSet[id] {
			counts.put(id)
		}
	}
	for _, id := range activeSet.order() {
		counts.put(id)
	}
	out := make([]*workerCount, 0, len(d.v.active))
	for _, id := range counts.order() {
		n := 0
		if s := d.v.workerLeases[id]; s != nil {
			n = s.len()
		}
		out = append(out, &workerCount{id: id, count: n})
	}
	slices.SortStableFunc(out, func(a, b *workerCount) int { return a.count - b.count })
	return out
}

// assignExpiredOrUnassigned fills the least loaded workers first, each up to
// the target (a worker already at the target still gets one lease when its
// turn comes, as coded in Java). No check of the current owner: an expired
// lease can be rewritten to the worker that holds it.
func (d *leaseCountDecider) assignExpiredOrUnassigned(expired []int) int {
	if len(expired) == 0 || len(d.v.active) == 0 {
		return 0
	}
	leases := slices.Clone(expired)
	d.v.sortByLastCounterIncrement(leases)
	target := d.targetLeaseCount()
	queue := d.countsAscending()
	next := 0
	for n, lease := range leases {
		if next >= len(queue) {
			return n
		}
		w := queue[next]
		d.v.performLeaseAssignment(lease, w.id)
		w.count++
		if w.count >= target {
			next++
		}
	}
	return len(leases)
}

// balanceWorkerVariance moves leases from the most to the least loaded
// workers until each is within the target (two pointers over the sorted
// counts), never a lease blocked on a pending hand-off checkpoint.
func (d *leaseCountDecider) balanceWorkerVariance() {
	if len(d.v.active) == 0 {
		return
	}
	available := map[string][]int{}
	for _, w := range d.v.active {
		if s := d.v.workerLeases[w.id]; s != nil {
			for _, lease := range s.list() {
				if !d.blocked(lease) {
					available[w.id] = append(available[w.id], lease)
				}
			}
		}
	}
	target := d.targetLeaseCount()
	sorted := d.countsAscending()
	left, right := 0, len(sorted)-1
	for left < right {
		under, over := sorted[left], sorted[right]
		if target-under.count <= 0 {
			left++
			continue
		}
		if over.count-target <= 0 {
			right--
			continue
		}
		if len(available[over.id]) == 0 {
			right--
			continue
		}
		lease := available[over.id][0]
		available[over.id] = available[over.id][1:]
		d.v.performLeaseAssignment(lease, under.id)
		under.count++
		over.count--
	}
}

// blocked is Lease.blockedOnPendingCheckpoint with this run's
// expired-or-unassigned marking.
func (d *leaseCountDecider) blocked(lease int) bool {
	return d.v.leases[lease].BlockedOnPendingCheckpoint()
}
