package assign

import (
	"math"
	"testing"
	"time"
)

// Facts from Java WorkerMetricsTest (isValidWorkerMetric,
// isUsingDefaultWorkerMetric, isAnyWorkerMetricFailing).
func TestWorkerMetricValidity(t *testing.T) {
	tests := []struct {
		name                   string
		m                      WorkerMetrics
		valid, defaultM, fails bool
	}{
		{"no sts no opr: default", WorkerMetrics{LastUpdate: now}, true, true, false},
		{"empty sts and opr: default", WorkerMetrics{LastUpdate: now, Stats: map[string][]float64{}, OperatingRange: map[string][]int64{}}, true, true, false},
		{"sts without opr", WorkerMetrics{LastUpdate: now, Stats: map[string][]float64{"C": {}}}, false, false, false},
		{"no lut", WorkerMetrics{Stats: map[string][]float64{"C": {5, 5}}, OperatingRange: map[string][]int64{"C": {80, 10}}}, false, false, false},
		{"opr without sts", WorkerMetrics{LastUpdate: now, OperatingRange: map[string][]int64{"C": {80, 10}}}, false, false, false},
		{"sts and opr keys differ", WorkerMetrics{LastUpdate: now, Stats: map[string][]float64{"C": {5, 5}}, OperatingRange: map[string][]int64{"M": {80, 10}}}, false, false, false},
		{"empty operating range", WorkerMetrics{LastUpdate: now, Stats: map[string][]float64{"C": {5, 5}}, OperatingRange: map[string][]int64{"C": {}}}, false, false, false},
		{"empty sts with opr", WorkerMetrics{LastUpdate: now, Stats: map[string][]float64{}, OperatingRange: map[string][]int64{"C": {80, 10}}}, true, false, false},
		{"zero max utilisation", WorkerMetrics{LastUpdate: now, Stats: map[string][]float64{"C": {5, 5}}, OperatingRange: map[string][]int64{"C": {0, 10}}}, false, false, false},
		{"valid", WorkerMetrics{LastUpdate: now, Stats: map[string][]float64{"C": {5, 5}}, OperatingRange: map[string][]int64{"C": {80, 10}}}, true, false, false},
		{"failing: last value -1", WorkerMetrics{LastUpdate: now, Stats: map[string][]float64{"C": {50, -1}, "M": {20, 11}}, OperatingRange: map[string][]int64{"C": {80}, "M": {80}}}, true, false, true},
		{"failed earlier only", WorkerMetrics{LastUpdate: now, Stats: map[string][]float64{"C": {50, 1}, "M": {-1, 11}}, OperatingRange: map[string][]int64{"C": {80}, "M": {80}}}, true, false, false},
		{"empty history is not failing", WorkerMetrics{LastUpdate: now, Stats: map[string][]float64{"C": {}}, OperatingRange: map[string][]int64{"C": {80}}}, true, false, false},
		// isUsingDefaultWorkerMetric matches WorkerMetricType.THROUGHPUT.name().
		{"THROUGHPUT key: default, never failing", WorkerMetrics{LastUpdate: now, Stats: map[string][]float64{"THROUGHPUT": {-1}}}, true, true, false},
		{"T key without opr is not default", WorkerMetrics{LastUpdate: now, Stats: map[string][]float64{"T": {5}}}, false, false, false},
	}
	for _, tc := range tests {
		if got := validWorkerMetric(tc.m); got != tc.valid {
			t.Errorf("%s: valid = %v, want %v", tc.name, got, tc.valid)
		}
		if got := usingDefaultWorkerMetric(tc.m); got != tc.defaultM {
			t.Errorf("%s: default = %v, want %v", tc.name, got, tc.defaultM)
		}
		if got := anyWorkerMetricFailing(tc.m); got != tc.fails {
			t.Errorf("%s: failing = %v, want %v", tc.name, got, tc.fails)
		}
	}
}

func TestWorkerMetricExpiry(t *testing.T) {
	m := takeWorker("w")
	m.LastUpdate = now.Add(-60 * time.Second)
	if workerMetricExpired(m, now, 60*time.Second) {
		t.Error("lut exactly 2 × reporter frequency old must still be active (isExpired uses >)")
	}
	m.LastUpdate = now.Add(-61 * time.Second)
	if !workerMetricExpired(m, now, 60*time.Second) {
		t.Error("lut older than 2 × reporter frequency must be expired")
	}
}

// ExponentialMovingAverage seeded with the first value; −1 entries ignored.
func TestEMAIgnoringFailures(t *testing.T) {
	tests := []struct {
		values []float64
		alpha  float64
		want   float64
	}{
		{nil, 0.5, 0},
		{[]float64{90, 90}, 0.5, 90},
		{[]float64{10, 20}, 0.5, 15},
		{[]float64{10, 20, 30}, 0.5, 22.5},
		{[]float64{-1, 50, 50}, 0.5, 50},
		{[]float64{10, -1, 20}, 0.2, 12},
		{[]float64{-1}, 0.5, 0},
	}
	for _, tc := range tests {
		if got := emaIgnoringFailures(tc.values, tc.alpha); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("ema(%v, %v) = %v, want %v", tc.values, tc.alpha, got, tc.want)
		}
	}
}

// A worker listed twice (legacy table and lease table) counts once, newest
// entry.
func TestDuplicateWorkerEntriesKeepNewest(t *testing.T) {
	old := yieldWorker("w")
	old.LastUpdate = now.Add(-10 * time.Second)
	got := activeWorkerMetrics([]WorkerMetrics{old, takeWorker("x"), takeWorker("w")}, now, time.Minute)
	if len(got) != 2 || got[0].WorkerID != "w" || got[0].Stats["C"][0] != 50 || got[1].WorkerID != "x" {
		t.Errorf("active = %+v", got)
	}
}

func TestJavaAverageAndCompare(t *testing.T) {
	// Values printed by OpenJDK 17 for DoubleStream.of(…).average().
	for _, tc := range []struct {
		values []float64
		want   float64
	}{
		{[]float64{0.1, 0.2, 0.3}, 0.19999999999999998},
		{[]float64{1e308, 1e308, -1e308}, math.Inf(1)},
	} {
		if got := javaAverage(tc.values); got != tc.want {
			t.Errorf("javaAverage(%v) = %v, want %v", tc.values, got, tc.want)
		}
	}
	if javaCompare(math.NaN(), math.Inf(1)) != 1 || javaCompare(math.Copysign(0, -1), 0) != -1 || javaCompare(math.NaN(), math.NaN()) != 0 {
		t.Error("javaCompare differs from Double.compare")
	}
}

// With equal room (here NaN: throughput-only workers, no throughput known)
// java.util.PriorityQueue alternates between the first and the last worker
// inserted; the port keeps that order.
func TestWorkerQueueTiesFollowJavaPriorityQueue(t *testing.T) {
	q := &workerQueue{fleet: map[string]float64{}}
	for _, id := range []string{"a", "b", "c"} {
		q.offer(&worker{id: id})
	}
	var got []string
	for range 4 {
		w := q.poll()
		got = append(got, w.id)
		q.offer(w)
	}
	if want := []string{"a", "c", "a", "c"}; !equal(got, want) {
		t.Errorf("poll order %v, want %v", got, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Iteration orders printed by OpenJDK 17 for the same operations.
func TestJavaHashMapOrder(t *testing.T) {
	a, b := "ip-10-0-37-98.ec2.internal:e3ee332c", "ip-10-0-164-55.ec2.internal:1befc3c2" // same bucket
	viaCompute := &javaHashMap{}
	viaCompute.computeIfAbsent(a)
	viaCompute.computeIfAbsent(b)
	viaPut := &javaHashMap{}
	viaPut.put(a)
	viaPut.put(b)
	two := &javaHashMap{}
	two.putAll([]string{"C", "T"})
	three := &javaHashMap{}
	three.putAll([]string{"C", "M", "T"})
	for _, tc := range []struct {
		got, want []string
	}{
		{viaCompute.order(), []string{b, a}},
		{viaPut.order(), []string{a, b}},
		{two.order(), []string{"T", "C"}},
		{three.order(), []string{"C", "T", "M"}},
	} {
		if !equal(tc.got, tc.want) {
			t.Errorf("order %v, want %v", tc.got, tc.want)
		}
	}
}
