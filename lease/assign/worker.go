package assign

import (
	"math"
	"slices"
	"time"
)

// throughputMetricName is the sts key that marks a throughput-only worker
// in Java WorkerMetricStats.isUsingDefaultWorkerMetric
// (WorkerMetricType.THROUGHPUT.name(), not its short name "T").
const throughputMetricName = "THROUGHPUT"

// defaultWorkerMetricName and defaultWorkerOperatingRange are what the LAM
// synthesises for a throughput-only worker
// (setOperatingRangeAndWorkerMetricsDataForDefaultWorker).
const (
	defaultWorkerMetricName     = "T"
	defaultWorkerOperatingRange = 100
)

// usingDefaultWorkerMetric is WorkerMetricStats.isUsingDefaultWorkerMetric.
func usingDefaultWorkerMetric(m WorkerMetrics) bool {
	if len(m.Stats) == 0 && len(m.OperatingRange) == 0 {
		return true
	}
	_, ok := m.Stats[throughputMetricName]
	return ok
}

// validWorkerMetric is WorkerMetricStats.isValidWorkerMetric.
func validWorkerMetric(m WorkerMetrics) bool {
	if m.LastUpdate.IsZero() {
		return false
	}
	if usingDefaultWorkerMetric(m) {
		return true
	}
	if m.Stats == nil || m.OperatingRange == nil {
		return false
	}
	for name := range m.Stats {
		if _, ok := m.OperatingRange[name]; !ok {
			return false
		}
	}
	for _, r := range m.OperatingRange {
		if len(r) == 0 || r[0] == 0 {
			return false
		}
	}
	return true
}

// workerMetricExpired is WorkerMetricStats.isExpired.
func workerMetricExpired(m WorkerMetrics, now time.Time, maxAge time.Duration) bool {
	return m.LastUpdate.IsZero() || now.Sub(m.LastUpdate) > maxAge
}

// anyWorkerMetricFailing is WorkerMetricStats.isAnyWorkerMetricFailing: the
// last value of some history is −1 (the worker could not read it).
func anyWorkerMetricFailing(m WorkerMetrics) bool {
	if usingDefaultWorkerMetric(m) {
		return false
	}
	for _, values := range m.Stats {
		if len(values) > 0 && values[len(values)-1] == -1 {
			return true
		}
	}
	return false
}

// worker is one active WorkerMetricStats during a run: its histories, its
// operating range and its current (then projected) value per metric (Java
// metricStatsMap).
type worker struct {
	id            string
	defaultMetric bool
	alpha         float64
	names         []string // sts keys, sorted
	stats         map[string][]float64
	opr           map[string][]int64
	value         map[string]float64
}

func newWorker(m WorkerMetrics, alpha float64) *worker {
	w := &worker{id: m.WorkerID, defaultMetric: usingDefaultWorkerMetric(m), alpha: alpha}
	w.setStats(m.Stats, m.OperatingRange)
	return w
}

func (w *worker) setStats(stats map[string][]float64, opr map[string][]int64) {
	w.stats, w.opr = stats, opr
	w.names = w.names[:0]
	w.value = make(map[string]float64, len(stats))
	for name, values := range stats {
		w.names = append(w.names, name)
		w.value[name] = emaIgnoringFailures(values, w.alpha)
	}
	slices.Sort(w.names)
}

// setDefaultUtilisation gives a throughput-only worker the utilisation
// 100 × ratio against an operating range of 100.
func (w *worker) setDefaultUtilisation(ratio float64) {
	u := ratio * 100
	w.setStats(
		map[string][]float64{defaultWorkerMetricName: {u, u}},
		map[string][]int64{defaultWorkerMetricName: {defaultWorkerOperatingRange}})
}

// emaIgnoringFailures is WorkerMetricStats.computeAverage: the exponential
// moving average (utils.ExponentialMovingAverage, seeded with the first
// value) of the history without its −1 entries; 0 for an empty history.
func emaIgnoringFailures(values []float64, alpha float64) float64 {
	var ema float64
	seeded := false
	for _, x := range values {
		if x == -1 {
			continue
		}
		if !seeded {
			ema, seeded = x, true
			continue
		}
		// explicit conversions keep each product rounded (no fused
		// multiply-add), as Java evaluates it.
		ema = float64(alpha*x) + float64((1-alpha)*ema)
	}
	return ema
}

// extrapolatedValue is WorkerMetricStats.extrapolateMetricsValue: the value
// of a metric after adding throughput inc, the metric's fleet average being
// reached at the target average throughput (or, with no throughput known, at
// the average lease count).
func (w *worker) extrapolatedValue(name string, fleetAverage, averageThroughput, inc float64, averageLeaseCount int) float64 {
	if averageThroughput > 0 {
		return w.value[name] + float64(inc*fleetAverage)/averageThroughput
	}
	return w.value[name] + fleetAverage/float64(averageLeaseCount)
}

// extrapolateForAddedThroughput is
// extrapolateMetricStatValuesForAddedThroughput.
func (w *worker) extrapolateForAddedThroughput(fleet map[string]float64, averageThroughput, inc float64, averageLeaseCount int) {
	next := make(map[string]float64, len(w.value))
	for name := range w.value {
		next[name] = w.extrapolatedValue(name, fleet[name], averageThroughput, inc, averageLeaseCount)
	}
	w.value = next
}

// wouldGoAboveAverageOrOperatingRange is
// willAnyMetricStatsGoAboveAverageUtilizationOrOperatingRange.
func (w *worker) wouldGoAboveAverageOrOperatingRange(fleet map[string]float64, averageThroughput, inc float64, averageLeaseCount int) bool {
	for _, name := range w.names {
		v := w.extrapolatedValue(name, fleet[name], averageThroughput, inc, averageLeaseCount)
		if v > fleet[name] || v > float64(w.opr[name][0]) {
			return true
		}
	}
	return false
}

// percentageToReachAverage is computePercentageToReachAverage: the smallest,
// over the worker's metrics, of (fleet average − value) ÷ value (1 when the
// value is 0): how much more load, relative to its own, the worker can take.
func (w *worker) percentageToReachAverage(fleet map[string]float64) float64 {
	m := math.MaxFloat64
	for _, name := range w.names {
		v := w.value[name]
		ratio := 1.0
		if v != 0 {
			ratio = (fleet[name] - v) / v
		}
		m = math.Min(m, ratio) // NaN wins, as in Java Math.min
	}
	return m
}

// aboveOperatingRange is isWorkerMetricAboveOperatingRange.
func (w *worker) aboveOperatingRange(name string) bool {
	v, ok := w.value[name]
	return ok && v > float64(w.opr[name][0])
}

// javaAverage is DoubleStream.average() / Collectors.averagingDouble: a
// Kahan-compensated sum divided by the count (JDK 18+ final sum); 0 for no
// values.
func javaAverage(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	var sum, c, simple float64
	for _, x := range values {
		y := x - c
		t := sum + y
		c = (t - sum) - y
		sum = t
		simple += x
	}
	total := sum - c
	if math.IsNaN(total) && math.IsInf(simple, 0) {
		total = simple
	}
	return total / float64(len(values))
}

// javaCompare is Double.compare: NaN above everything, −0 below +0.
func javaCompare(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	}
	sa, sb := math.Signbit(a), math.Signbit(b)
	switch {
	case sa == sb:
		return 0
	case sa:
		return -1
	}
	return 1
}
