package assign

import (
	"slices"
)

// varianceDecider is Java VarianceBasedLeaseAssignmentDecider
// (WORKER_UTILIZATION_AWARE).
type varianceDecider struct {
	v   *view
	cfg Config
	// fleet is workerMetricsToFleetLevelAverageMap: metric name → average
	// of the active workers that report it, taken before any assignment.
	fleet map[string]float64
	// metricNames are fleet's keys in Java's HashMap order.
	metricNames []string
	// targetLeasePerWorker is max(leases ÷ workers (integer), 1).
	targetLeasePerWorker int
	queue                *workerQueue
}

func newVarianceDecider(v *view, cfg Config) *varianceDecider {
	d := &varianceDecider{v: v, cfg: cfg, fleet: map[string]float64{}}
	// Collectors.groupingBy(HashMap::new, averagingDouble) over the active
	// workers in order, then putAll into the decider's map.
	values := map[string][]float64{}
	grouped := &javaHashMap{}
	for _, w := range v.active {
		for _, name := range w.names {
			values[name] = append(values[name], w.value[name])
			grouped.computeIfAbsent(name)
		}
	}
	fleetMap := &javaHashMap{}
	fleetMap.putAll(grouped.order())
	d.metricNames = fleetMap.order()
	for name, vs := range values {
		d.fleet[name] = javaAverage(vs)
	}
	d.targetLeasePerWorker = max(len(v.leases)/max(len(v.active), 1), 1)
	d.queue = &workerQueue{fleet: d.fleet}
	// getAvailableWorkersForAssignment: hot workers stay eligible, only the
	// limits exclude.
	for _, w := range v.active {
		if v.underLimits(w.id) {
			d.queue.offer(w)
		}
	}
	return d
}

// assignExpiredOrUnassigned gives each lease, oldest observation first, to
// the worker with the most room; it stops when no worker is left under the
// limits.
func (d *varianceDecider) assignExpiredOrUnassigned(expired []int) int {
	leases := slices.Clone(expired)
	d.v.sortByLastCounterIncrement(leases)
	for n, lease := range leases {
		w := d.queue.poll()
		if w == nil {
			return n
		}
		d.assignLease(lease, w, true)
	}
	return len(leases)
}

// assignLease is VarianceBasedLeaseAssignmentDecider.assignLease: nothing to
// do when the worker already is the actual owner (unless the lease is an
// expired pending hand-off, which must be rewritten or it stays stuck);
// otherwise project the worker's metrics for the added throughput, record
// the move and put the worker back while it is under the limits.
func (d *varianceDecider) assignLease(lease int, w *worker, expired bool) {
	l := d.v.leases[lease]
	pendingCheckpointExpired := expired && l.CheckpointOwner != ""
	if !pendingCheckpointExpired && l.ActualOwner() == w.id {
		d.queue.offer(w)
		return
	}
	w.extrapolateForAddedThroughput(d.fleet, d.v.targetAverageThroughput, d.v.throughput[lease], d.targetLeasePerWorker)
	d.v.performLeaseAssignment(lease, w.id)
	if d.v.underLimits(w.id) {
		d.queue.offer(w)
	}
}

// donor is a worker to take throughput from.
type donor struct {
	id   string
	take float64
}

// balanceWorkerVariance is VarianceBasedLeaseAssignmentDecider.balanceWorkerVariance:
// each donor of the most outlying metric (largest take first) gives leases
// to the workers with most room while they stay under the fleet average and
// their operating range.
func (d *varianceDecider) balanceWorkerVariance() {
	for _, dn := range d.largestOutlierDonors() {
		for _, lease := range d.leasesToTake(dn.id, dn.take) {
			w := d.queue.poll()
			if w == nil {
				continue
			}
			if w.wouldGoAboveAverageOrOperatingRange(d.fleet, d.v.targetAverageThroughput, d.v.throughput[lease], d.targetLeasePerWorker) {
				// As in Java the polled worker is not put back.
				break
			}
			d.assignLease(lease, w, false)
		}
	}
}

// largestOutlierDonors is the choice of balanceWorkerVariance: per metric
// the donors and what each gives up (donorTakes); the metric with the
// largest total wins (the first in HashMap order on a tie). Donors come
// largest take first (Double.compareTo, a stable sort of the HashMap's
// entries).
func (d *varianceDecider) largestOutlierDonors() []donor {
	takes := map[string]float64{}
	takeOrder := &javaHashMap{} // workerIdToThroughputToTakeMap
	maxTake := -1.0
	for _, name := range d.metricNames {
		metricTakes, metricOrder, total := d.donorTakes(name)
		if maxTake < total {
			takeOrder.clear()
			takeOrder.putAll(metricOrder.order())
			takes, maxTake = metricTakes, total
		}
	}
	donors := make([]donor, 0, len(takes))
	for _, id := range takeOrder.order() {
		donors = append(donors, donor{id: id, take: takes[id]})
	}
	slices.SortStableFunc(donors, func(a, b donor) int { return javaCompare(b.take, a.take) })
	return donors
}

// donorTakes is, for one metric, the throughput each donor gives up: its
// assigned throughput × (value − fleet average) ÷ value, dampened; with
// the donors' HashMap order and the total.
func (d *varianceDecider) donorTakes(name string) (takes map[string]float64, order *javaHashMap, total float64) {
	avg := d.fleet[name]
	var reporting []*worker
	for _, w := range d.v.active {
		if _, ok := w.stats[name]; ok {
			reporting = append(reporting, w)
		}
	}
	takes, order = map[string]float64{}, &javaHashMap{}
	for _, w := range d.workersToTakeLeasesFrom(reporting, name, avg) {
		value := w.value[name]
		loadToTake := (value - avg) / value
		dampened := loadToTake * (float64(d.cfg.DampeningPercentage) / 100)
		take := float64(d.v.workerThroughput[w.id] * dampened)
		total += take
		takes[w.id] = take
		order.put(w.id)
	}
	return takes, order, total
}

// workersToTakeLeasesFrom is getWorkersToTakeLeasesFromIfRequired: balance
// when some worker is outside avg ± reBalanceThresholdPercentage or above
// its operating range; the donors are the workers at or above the upper
// limit or above their range, else the single most loaded one.
func (d *varianceDecider) workersToTakeLeasesFrom(current []*worker, name string, avg float64) []*worker {
	upper := avg * (1.0 + float64(d.cfg.ReBalanceThresholdPercentage)/100)
	lower := avg * (1.0 - float64(d.cfg.ReBalanceThresholdPercentage)/100)
	trigger := false
	var donors []*worker
	var mostLoaded *worker
	for _, w := range current {
		value := w.value[name]
		above := w.aboveOperatingRange(name)
		if value > upper || value < lower || above {
			trigger = true
		}
		if value >= upper || above {
			donors = append(donors, w)
		}
		if mostLoaded == nil || mostLoaded.value[name] < value {
			mostLoaded = w
		}
	}
	if !trigger {
		return nil
	}
	if len(donors) == 0 {
		donors = append(donors, mostLoaded)
	}
	return donors
}

// leasesToTake is getLeasesToTake: one lease when the worker carries no
// throughput (a random one; Java takes the first of a hash set), else
// getLeasesCombiningToThroughput.
func (d *varianceDecider) leasesToTake(worker string, take float64) []int {
	s := d.v.workerLeases[worker]
	if s == nil || s.len() == 0 {
		return nil
	}
	leases := s.list()
	if d.v.workerThroughput[worker] == 0 {
		return []int{leases[d.cfg.Rand.IntN(len(leases))]}
	}
	javaShuffle(leases, d.cfg)
	var out []int
	remaining := take
	for _, lease := range leases {
		t := d.v.throughput[lease]
		// Skip a lease that would bring the remainder to zero or below.
		if remaining-t <= 0 {
			continue
		}
		remaining -= t
		out = append(out, lease)
	}
	if d.cfg.AllowThroughputOvershoot && len(out) == 0 {
		smallest := leases[0]
		for _, lease := range leases[1:] {
			if javaCompare(d.v.throughput[lease], d.v.throughput[smallest]) < 0 {
				smallest = lease
			}
		}
		out = append(out, smallest)
	}
	return out
}

// javaShuffle is Collections.shuffle's loop driven by cfg.Rand.
func javaShuffle(items []int, cfg Config) {
	for i := len(items); i > 1; i-- {
		j := cfg.Rand.IntN(i)
		items[i-1], items[j] = items[j], items[i-1]
	}
}
