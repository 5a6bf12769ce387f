package assign

import (
	"slices"
	"time"
)

// view is Java LeaseAssignmentManager.InMemoryStorageView: the leases, the
// active workers and the in-memory effect of the assignments decided so far
// in this run. Leases are addressed by their index in leases.
type view struct {
	cfg    Config
	leases []Lease
	// throughput is each lease's throughputKBps, the fleet-average lease
	// throughput where the item has none (loadInMemoryStorageView).
	throughput []float64
	active     []*worker
	activeSet  map[string]bool
	// workerLeases is workerToLeasesMap: actual owner ("" = unassigned) →
	// leases, in scan order, then in order of assignment; ownerOrder
	// models the map's own (HashMap) key order.
	workerLeases map[string]*leaseSet
	ownerOrder   *javaHashMap
	// workerThroughput is workerToTotalAssignedThroughputMap.
	workerThroughput map[string]float64
	// targetAverageThroughput is the throughput each active worker would
	// carry in an even split.
	targetAverageThroughput float64
	// newOwner is leaseToNewAssignedWorkerMap; decided keeps the order of
	// the first decision for each lease.
	newOwner map[int]string
	decided  []int
}

// newView is InMemoryStorageView.loadInMemoryStorageView after
// MigrationAwareLAMDataManager.loadData: keep the valid, unexpired, not
// failing worker metrics, fill unknown lease throughput with the average,
// and synthesise the utilisation of throughput-only workers.
func newView(in Input, cfg Config) *view {
	v := &view{
		cfg:              cfg,
		leases:           in.Leases,
		throughput:       make([]float64, len(in.Leases)),
		activeSet:        map[string]bool{},
		workerLeases:     map[string]*leaseSet{},
		ownerOrder:       &javaHashMap{},
		workerThroughput: map[string]float64{},
		newOwner:         map[int]string{},
	}
	for _, m := range activeWorkerMetrics(in.Workers, in.Now, cfg.WorkerMetricsExpiry) {
		w := newWorker(m, cfg.WorkerMetricsEMAAlpha)
		v.active = append(v.active, w)
		v.activeSet[w.id] = true
	}
	var known []float64
	for _, l := range in.Leases {
		if l.ThroughputKBps != nil {
			known = append(known, *l.ThroughputKBps)
		}
	}
	// DoubleStream.average() of the known values, 0 when none is known
	// (application start).
	averageLeaseThroughput := javaAverage(known)
	v.targetAverageThroughput = averageLeaseThroughput * float64(len(in.Leases)) / float64(max(1, len(v.active)))
	for i, l := range in.Leases {
		v.throughput[i] = averageLeaseThroughput
		if l.ThroughputKBps != nil {
			v.throughput[i] = *l.ThroughputKBps
		}
		v.setOf(l.ActualOwner()).add(i)
		v.addThroughput(l.ActualOwner(), v.throughput[i])
	}
	for _, w := range v.active {
		if w.defaultMetric {
			// setOperatingRangeAndWorkerMetricsDataForDefaultWorker: the
			// ceiling 100 is the fleet's target throughput.
			w.setDefaultUtilisation(v.workerThroughput[w.id] / v.targetAverageThroughput)
		}
	}
	return v
}

// activeWorkerMetrics keeps, in input order, the entries that are valid
// (WorkerMetricStats.isValidWorkerMetric), not expired (isExpired with
// 2 × workerMetricsReporterFreqInMillis) and not failing
// (isAnyWorkerMetricFailing). A worker listed twice (the legacy and the
// lease table during a table migration) is kept once, with its newest
// entry, at the place of its first entry.
func activeWorkerMetrics(all []WorkerMetrics, now time.Time, expiry time.Duration) []WorkerMetrics {
	var out []WorkerMetrics
	at := map[string]int{}
	for _, m := range all {
		if m.WorkerID == "" || !validWorkerMetric(m) || workerMetricExpired(m, now, expiry) || anyWorkerMetricFailing(m) {
			continue
		}
		if i, ok := at[m.WorkerID]; ok {
			if m.LastUpdate.After(out[i].LastUpdate) {
				out[i] = m
			}
			continue
		}
		at[m.WorkerID] = len(out)
		out = append(out, m)
	}
	return out
}

func (v *view) activeIDs() []string {
	ids := make([]string, len(v.active))
	for i, w := range v.active {
		ids[i] = w.id
	}
	return ids
}

// expiredOrUnassigned lists, in scan order, the leases that are expired or
// have no actual owner (LeaseAssignmentManager.performAssignment).
func (v *view) expiredOrUnassigned() []int {
	var out []int
	for i, l := range v.leases {
		if l.ExpiredOrUnassigned() {
			out = append(out, i)
		}
	}
	return out
}

// sortByLastCounterIncrement orders leases oldest observation first,
// unassigned (zero) first, keeping scan order among equals (Java sorts the
// list with a stable sort).
func (v *view) sortByLastCounterIncrement(leases []int) {
	slices.SortStableFunc(leases, func(a, b int) int {
		return v.leases[a].LastCounterIncrement.Compare(v.leases[b].LastCounterIncrement)
	})
}

func (v *view) setOf(owner string) *leaseSet {
	v.ownerOrder.computeIfAbsent(owner) // the null key hashes to 0, as ""
	s, ok := v.workerLeases[owner]
	if !ok {
		s = &leaseSet{}
		v.workerLeases[owner] = s
	}
	return s
}

func (v *view) addThroughput(owner string, t float64) {
	v.workerThroughput[owner] += t
}

// performLeaseAssignment records lease → newOwner in memory. As in Java the
// lease itself is not changed: a second move of the same lease in one run is
// again accounted from its owner at scan time.
func (v *view) performLeaseAssignment(lease int, newOwner string) {
	existing := v.leases[lease].ActualOwner()
	v.workerLeases[existing].remove(lease) // get, not computeIfAbsent
	v.setOf(newOwner).add(lease)
	v.addThroughput(newOwner, v.throughput[lease])
	v.addThroughput(existing, -v.throughput[lease])
	if _, ok := v.newOwner[lease]; !ok {
		v.decided = append(v.decided, lease)
	}
	v.newOwner[lease] = newOwner
}

// underLimits reports whether worker may be given another lease: its
// throughput and its lease count are under the configured maxima.
func (v *view) underLimits(worker string) bool {
	return v.throughputUnderMax(worker) && v.leasesUnderMax(worker)
}

// throughputUnderMax is isWorkerTotalThroughputLessThanMaxThroughput (≤, as
// coded).
func (v *view) throughputUnderMax(worker string) bool {
	return v.workerThroughput[worker] <= v.cfg.MaxThroughputPerHostKBps
}

// leasesUnderMax is isWorkerAssignedLeasesLessThanMaxLeases.
func (v *view) leasesUnderMax(worker string) bool {
	s := v.workerLeases[worker]
	return s == nil || s.len() == 0 || s.len() < v.cfg.MaxLeasesForWorker
}

// assignments lists the decided moves in the order they were first decided.
func (v *view) assignments() []Assignment {
	out := make([]Assignment, 0, len(v.decided))
	for _, i := range v.decided {
		l := v.leases[i]
		out = append(out, Assignment{LeaseKey: l.Key, From: l.ActualOwner(), To: v.newOwner[i], Expired: l.ExpiredOrUnassigned()})
	}
	return out
}

// leaseSet is an insertion-ordered set of lease indexes (a HashSet in Java;
// the order here makes the run reproducible).
type leaseSet struct {
	items []int
}

func (s *leaseSet) len() int { return len(s.items) }

func (s *leaseSet) add(lease int) {
	if !slices.Contains(s.items, lease) {
		s.items = append(s.items, lease)
	}
}

func (s *leaseSet) remove(lease int) {
	if i := slices.Index(s.items, lease); i >= 0 {
		s.items = slices.Delete(s.items, i, i+1)
	}
}

func (s *leaseSet) list() []int { return slices.Clone(s.items) }
