package assign

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// lastDraw makes Rand.IntN(n) return n−1: shuffles keep the order and a
// donor without throughput gives its last lease.
type lastDraw struct{}

func (lastDraw) Uint64() uint64 { return math.MaxUint64 }

// Plans printed by Java's deciders (KCL 3.5.1 VarianceBasedLeaseAssignmentDecider
// and LeaseCountBasedLeaseAssignmentDecider on the InMemoryStorageView, OpenJDK
// 17) for the same inputs, the donor's lease order fixed as lastDraw fixes it.
func TestPlansPrintedByJava(t *testing.T) {
	w := func(id string, c []float64, opr int64) WorkerMetrics { return cpuWorker(id, c, opr) }
	thr := func(id string) WorkerMetrics { return WorkerMetrics{WorkerID: id, LastUpdate: now} }
	old := func(m WorkerMetrics) WorkerMetrics { m.LastUpdate = now.Add(-time.Hour); return m }
	at := func(s int) time.Time { return now.Add(-time.Hour).Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name string
		cfg  Config
		in   Input
		want map[string]string
	}{
		{
			// T (throughput-only worker) comes before C in Java's HashMap:
			// its total take (0) wins the tie and nothing moves.
			name: "metricOrderTie_noMove",
			cfg:  Config{MaxLeasesForWorker: 8, MaxThroughputPerHostKBps: 393, ReBalanceThresholdPercentage: 5, DampeningPercentage: 80, AllowThroughputOvershoot: true, WorkerMetricsEMAAlpha: 0.2},
			in: Input{Balance: true, Workers: []WorkerMetrics{
				w("w0", []float64{59}, 62), w("w1", []float64{87.6, 42.2, 32}, 75), w("w2", []float64{64.3, 78.9}, 72),
				w("w3", []float64{46.3}, 70), w("w4", []float64{97.9, 25.6, 26, 31.4, 49.4}, 94), thr("w5"), w("w6", []float64{37.8, 7.7}, 72)},
				Leases: []Lease{{Key: "shardId-000", LeaseOwner: "w4", ThroughputKBps: tp(0), LastCounterIncrement: at(944)}}},
			want: map[string]string{},
		},
		{
			name: "mixedFleet_balancing",
			cfg:  Config{ReBalanceThresholdPercentage: 20, DampeningPercentage: 100, AllowThroughputOvershoot: true, WorkerMetricsEMAAlpha: 0.9, MaxThroughputPerHostKBps: 573},
			in: Input{Balance: true, Workers: []WorkerMetrics{
				w("w0", []float64{15.5, 62.1}, 71), thr("w1"), old(w("w2", []float64{18.8, 90.4}, 98)), w("w3", []float64{86.2, 45.6, 89.6, 1.8, 5.3}, 88)},
				Leases: []Lease{
					{Key: "shardId-000", LeaseOwner: "gone", ThroughputKBps: tp(22.8), Expired: true, LastCounterIncrement: at(441)},
					{Key: "shardId-001", LeaseOwner: "w1", ThroughputKBps: tp(14.9), LastCounterIncrement: at(590)},
					{Key: "shardId-002", LeaseOwner: "w1", ThroughputKBps: tp(388.2), LastCounterIncrement: at(146)},
					{Key: "shardId-003", LeaseOwner: "w3", ThroughputKBps: tp(204.4), LastCounterIncrement: at(113)},
					{Key: "shardId-004", LeaseOwner: "w3", LastCounterIncrement: at(841)},
					{Key: "shardId-005", LeaseOwner: "w1", LastCounterIncrement: at(106)},
					{Key: "shardId-006", LeaseOwner: "w1", CheckpointOwner: "gone", ThroughputKBps: tp(31), LastCounterIncrement: at(855)},
				}},
			want: map[string]string{"shardId-000": "w3", "shardId-001": "w3"},
		},
		{
			// No throughput known: every throughput-only worker's room is
			// NaN, the queue's ties alternate between its first and last
			// worker and b gets nothing.
			name: "throughputOnlyFleet_atStart",
			cfg:  Config{AllowThroughputOvershoot: true},
			in: Input{Balance: true, Workers: []WorkerMetrics{thr("a"), thr("b"), thr("c")},
				Leases: []Lease{unassigned("s0"), unassigned("s1"), unassigned("s2"), unassigned("s3"), unassigned("s4"), unassigned("s5")}},
			want: map[string]string{"s0": "a", "s1": "c", "s2": "a", "s3": "c", "s4": "a", "s5": "c"},
		},
		{
			name: "equalCPUFleet_atStart",
			cfg:  Config{AllowThroughputOvershoot: true},
			in: Input{Balance: true, Workers: []WorkerMetrics{w("a", []float64{10}, 100), w("b", []float64{10}, 100), w("c", []float64{10}, 100)},
				Leases: []Lease{unassigned("s0"), unassigned("s1"), unassigned("s2"), unassigned("s3"), unassigned("s4"), unassigned("s5")}},
			want: map[string]string{"s0": "a", "s1": "c", "s2": "b", "s3": "c", "s4": "b", "s5": "a"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Now = now
			tc.cfg.Rand = rand.New(lastDraw{})
			got := map[string]string{}
			for _, a := range Decide(tc.in, tc.cfg).Assignments {
				got[a.LeaseKey] = a.To
			}
			if len(got) != len(tc.want) {
				t.Fatalf("plan %v, Java %v", sorted(got), sorted(tc.want))
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("plan %v, Java %v", sorted(got), sorted(tc.want))
				}
			}
		})
	}
}

func sorted(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"→"+v)
	}
	sort.Strings(out)
	return out
}
