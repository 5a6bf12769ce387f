package assign

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// now is the wall clock of every test run.
var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func tp(v float64) *float64 { return &v }

// cpuWorker reports one CPU history ("C") against an operating range.
func cpuWorker(id string, values []float64, opr int64) WorkerMetrics {
	return WorkerMetrics{WorkerID: id, LastUpdate: now,
		Stats:          map[string][]float64{"C": values},
		OperatingRange: map[string][]int64{"C": {opr}}}
}

// The workers of Java's LeaseAssignmentManagerTest: a yield worker at 90 %
// CPU and a take worker at 50 %, both with an operating range of 80.
func yieldWorker(id string) WorkerMetrics { return cpuWorker(id, []float64{90, 90}, 80) }
func takeWorker(id string) WorkerMetrics  { return cpuWorker(id, []float64{50, 50}, 80) }

// defaultWorker is a throughput-only worker (sts present and empty).
func defaultWorker(id string) WorkerMetrics {
	return WorkerMetrics{WorkerID: id, LastUpdate: now, Stats: map[string][]float64{}}
}

func unassigned(key string) Lease { return Lease{Key: key} }

// owned is a live lease of owner with 10 KB/s, as Java's createDummyLease.
func owned(key, owner string) Lease { return ownedAt(key, owner, 10) }

func ownedAt(key, owner string, kbps float64) Lease {
	return Lease{Key: key, LeaseOwner: owner, ThroughputKBps: tp(kbps), LastCounterIncrement: now}
}

// javaTestConfig is LeaseAssignmentManagerTest.getWorkerUtilizationAwareAssignmentConfig:
// dampening 80, balancing on every run.
func javaTestConfig(maxThroughput float64, reBalanceThreshold int) Config {
	return Config{
		MaxThroughputPerHostKBps:     maxThroughput,
		ReBalanceThresholdPercentage: reBalanceThreshold,
		DampeningPercentage:          80,
		AllowThroughputOvershoot:     true,
		Rand:                         rand.New(rand.NewPCG(1, 2)),
	}
}

// owners applies the plan and returns lease key → owner.
func owners(in Input, p Plan) map[string]string {
	out := map[string]string{}
	for _, l := range in.Leases {
		out[l.Key] = l.ActualOwner()
	}
	for _, a := range p.Assignments {
		out[a.LeaseKey] = a.To
	}
	return out
}

// leasesOf lists the keys owned by worker after the plan, sorted.
func leasesOf(in Input, p Plan, worker string) []string {
	var keys []string
	for k, o := range owners(in, p) {
		if o == worker {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func throughputOf(in Input, p Plan, worker string) float64 {
	o := owners(in, p)
	sum := 0.0
	for _, l := range in.Leases {
		if o[l.Key] == worker && l.ThroughputKBps != nil {
			sum += *l.ThroughputKBps
		}
	}
	return sum
}

func mustCount(t *testing.T, in Input, p Plan, worker string, want int) {
	t.Helper()
	if got := leasesOf(in, p, worker); len(got) != want {
		t.Errorf("%s holds %v after the plan, want %d leases (plan %+v)", worker, got, want, p.Assignments)
	}
}
