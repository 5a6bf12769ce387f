package assign

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

// hostileValue draws the values a broken or hostile worker or table could
// hold: NaN, ±Inf, −1 (failing), 0, negative, tiny and huge magnitudes.
func hostileValue(r *rand.Rand) float64 {
	vals := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, 0, math.Copysign(0, -1), -50, 1e-300, 1e308, math.MaxFloat64, 50, 90}
	if r.IntN(3) == 0 {
		return r.Float64() * 100
	}
	return vals[r.IntN(len(vals))]
}

func hostileWorker(r *rand.Rand, id string) WorkerMetrics {
	m := WorkerMetrics{WorkerID: id, LastUpdate: now.Add(-time.Duration(r.IntN(90)) * time.Second)}
	if r.IntN(10) == 0 {
		m.LastUpdate = time.Time{}
	}
	switch r.IntN(5) {
	case 0: // absent sts and opr: throughput-only
	case 1:
		m.Stats = map[string][]float64{}
	case 2:
		m.Stats = map[string][]float64{throughputMetricName: {hostileValue(r)}}
	default:
		m.Stats, m.OperatingRange = map[string][]float64{}, map[string][]int64{}
		for _, name := range []string{"C", "M", "N"}[:1+r.IntN(3)] {
			var h []float64
			for range r.IntN(4) {
				h = append(h, hostileValue(r))
			}
			m.Stats[name] = h
			m.OperatingRange[name] = []int64{[]int64{0, 1, 80, 100, -5, math.MaxInt64}[r.IntN(6)]}
		}
	}
	return m
}

func hostileInput(r *rand.Rand) Input {
	in := Input{Now: now, Balance: r.IntN(2) == 0}
	nw := r.IntN(6)
	for i := range nw {
		id := "w" + strconv.Itoa(i)
		if r.IntN(12) == 0 {
			id = ""
		}
		in.Workers = append(in.Workers, hostileWorker(r, id))
		if r.IntN(8) == 0 { // listed twice (legacy and lease table)
			in.Workers = append(in.Workers, hostileWorker(r, id))
		}
	}
	for i := range r.IntN(40) {
		l := Lease{Key: "shardId-" + strconv.Itoa(i), Expired: r.IntN(3) == 0, ShardEnd: r.IntN(10) == 0}
		switch r.IntN(4) {
		case 0: // unassigned
		case 1:
			l.LeaseOwner = "gone"
		default:
			l.LeaseOwner = "w" + strconv.Itoa(r.IntN(max(nw, 1)))
		}
		if r.IntN(5) == 0 {
			l.CheckpointOwner = "w" + strconv.Itoa(r.IntN(max(nw, 1)))
			l.PendingCheckpointTimedOut = r.IntN(2) == 0
		}
		if r.IntN(3) != 0 {
			l.ThroughputKBps = tp(hostileValue(r))
		}
		if l.LeaseOwner != "" {
			l.LastCounterIncrement = now.Add(-time.Duration(r.IntN(100)) * time.Second)
		}
		in.Leases = append(in.Leases, l)
	}
	return in
}

func hostileConfig(r *rand.Rand) Config {
	cfg := Config{
		Strategy:                     []Strategy{WorkerUtilizationAware, LeaseCountBased}[r.IntN(2)],
		MaxLeasesForWorker:           []int{0, 1, 2, -3, math.MaxInt}[r.IntN(5)],
		MaxThroughputPerHostKBps:     []float64{0, 1, 1e-9, -1, math.NaN(), math.Inf(1), math.MaxFloat64}[r.IntN(7)],
		ReBalanceThresholdPercentage: []int{0, 1, 10, 100, 1000, -20}[r.IntN(6)],
		DampeningPercentage:          []int{0, 1, 60, 100, 500, -10}[r.IntN(6)],
		AllowThroughputOvershoot:     r.IntN(2) == 0,
		WorkerMetricsEMAAlpha:        []float64{0, 0.5, 1, 2, -1, math.NaN()}[r.IntN(6)],
		Rand:                         rand.New(rand.NewPCG(r.Uint64(), r.Uint64())),
	}
	return cfg
}

// TestHostileInputsNeverPanic: any table content and any configuration
// give a plan (no panic, no endless loop) that moves each lease at most
// once, only to an active worker, and whose figures add up.
func TestHostileInputsNeverPanic(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for i := range 20000 {
		in, cfg := hostileInput(r), hostileConfig(r)
		var p Plan
		func() {
			defer func() {
				if e := recover(); e != nil {
					t.Fatalf("case %d: Decide panicked: %v\ninput %+v\nconfig %+v", i, e, in, cfg)
				}
			}()
			p = Decide(in, cfg)
		}()
		seen := map[string]bool{}
		for _, a := range p.Assignments {
			if seen[a.LeaseKey] {
				t.Fatalf("case %d: lease %s moved twice in %+v", i, a.LeaseKey, p.Assignments)
			}
			seen[a.LeaseKey] = true
			if !slices.Contains(p.ActiveWorkers, a.To) || a.To == "" {
				t.Fatalf("case %d: lease %s given to %q, not an active worker %v", i, a.LeaseKey, a.To, p.ActiveWorkers)
			}
		}
		if p.TotalLeases != len(in.Leases) || p.LeaseSpillover < 0 || p.LeaseSpillover > p.ExpiredLeases {
			t.Fatalf("case %d: figures %+v for %d leases", i, p, len(in.Leases))
		}
	}
}
