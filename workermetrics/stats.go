package workermetrics

import (
	"math"
	"sync"
	"time"
)

// CPUShortName is the short name of the CPU worker metric (Java
// WorkerMetricType.CPU).
const CPUShortName = "C"

// highFreqStatsCount bounds the raw captures kept between two reports (Java
// WorkerMetricStatsManager.HIGH_FREQUENCY_STATS_COUNT).
const highFreqStatsCount = 300

// maxUtilization is the operating range of the CPU metric (Java
// WorkerMetricsSelector.DEFAULT_100_PERC_UTILIZED_OPERATING_RANGE).
const maxUtilization = 100

// stats is Java WorkerMetricStatsManager for the one CPU metric: raw
// captures are averaged at each report into a bounded history.
type stats struct {
	mu       sync.Mutex
	meter    *cpuMeter // nil: no CPU figure can be had (throughput-only entry)
	raw      []float64
	averages []float64
	maxCount int
	// onCaptureError reports a failed capture (the report then shows −1).
	onCaptureError func(error)
}

func newStats(meter *cpuMeter, maxCount int, onErr func(error)) *stats {
	return &stats{meter: meter, maxCount: maxCount, onCaptureError: onErr}
}

// capture is one run of Java WorkerMetricStatsManager.recordWorkerMetrics.
func (s *stats) capture(now time.Time) {
	if s.meter == nil {
		return
	}
	v, err := s.meter.capture(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.onCaptureError != nil {
			s.onCaptureError(err)
		}
		return
	}
	if len(s.raw) == highFreqStatsCount {
		s.raw = s.raw[1:]
	}
	s.raw = append(s.raw, v)
}

// compute is Java WorkerMetricStatsManager.computeMetrics: the captures
// since the last call are averaged (6 decimals, half up) and appended to the
// history of at most maxCount values; no capture appends −1 (failure). With
// no CPU metric it returns an empty map.
func (s *stats) compute() map[string][]float64 {
	out := map[string][]float64{}
	if s.meter == nil {
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := -1.0
	if len(s.raw) > 0 {
		sum := 0.0
		for _, r := range s.raw {
			sum += r
		}
		v = roundHalfUp6(sum / float64(len(s.raw)))
		s.raw = s.raw[:0]
	}
	if len(s.averages) == s.maxCount {
		s.averages = s.averages[1:]
	}
	s.averages = append(s.averages, v)
	out[CPUShortName] = append([]float64(nil), s.averages...)
	return out
}

// operatingRange is Java WorkerMetricStatsManager.getOperatingRange.
func (s *stats) operatingRange() map[string][]int64 {
	if s.meter == nil {
		return map[string][]int64{}
	}
	return map[string][]int64{CPUShortName: {maxUtilization}}
}

// roundHalfUp6 is BigDecimal.setScale(6, HALF_UP) for the values at hand.
func roundHalfUp6(v float64) float64 {
	const scale = 1e6
	if v < 0 {
		return -math.Floor(-v*scale+0.5) / scale
	}
	return math.Floor(v*scale+0.5) / scale
}
