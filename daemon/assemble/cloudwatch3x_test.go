package assemble

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/multilangd/multilangd/cwmetrics"
	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/lam"
)

// capturedDatum is one published datum's unit and statistic set.
type capturedDatum struct {
	unit     string
	sum, n   float64
	min, max float64
}

// datums returns what c received, by "Name{Dim=v,...}" (dimensions
// sorted), the statistic sets of several requests accumulated.
func (c *capturePut) datums() map[string]capturedDatum {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]capturedDatum{}
	for _, in := range c.ins {
		for _, d := range in.MetricData {
			var parts []string
			for _, dim := range d.Dimensions {
				parts = append(parts, aws.ToString(dim.Name)+"="+aws.ToString(dim.Value))
			}
			slices.Sort(parts)
			k := aws.ToString(d.MetricName) + "{" + strings.Join(parts, ",") + "}"
			s := d.StatisticValues
			c := capturedDatum{unit: string(d.Unit), sum: *s.Sum, n: *s.SampleCount, min: *s.Minimum, max: *s.Maximum}
			if prev, ok := out[k]; ok { // several flushes: accumulate
				c.sum, c.n, c.min, c.max = c.sum+prev.sum, c.n+prev.n, min(c.min, prev.min), max(c.max, prev.max)
			}
			out[k] = c
		}
	}
	return out
}

// publishWith runs f against a publisher at level with the enabled
// dimensions and returns what it published.
func publishWith(level cwmetrics.Level, dims []string, f func(o *ops)) map[string]capturedDatum {
	put := &capturePut{}
	pub := cwmetrics.New(put, cwmetrics.Config{Namespace: "app", Level: level, EnabledDimensions: dims})
	f(newOps(pub, "w1"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run flushes what is queued and returns
	_ = pub.Run(ctx)
	return put.datums()
}

var allDims = []string{cwmetrics.AllDimensions}

// wantDatums checks that got holds exactly want (key → unit and sum).
func wantDatums(t *testing.T, got map[string]capturedDatum, want map[string]capturedDatum) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if g.unit != w.unit || g.sum != w.sum {
			t.Errorf("%s = %s %v, want %s %v", k, g.unit, g.sum, w.unit, w.sum)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s = %+v", k, got[k])
		}
	}
}

func cnt(v float64) capturedDatum { return capturedDatum{unit: "Count", sum: v} }
func ms(v float64) capturedDatum  { return capturedDatum{unit: "Milliseconds", sum: v} }

// Java LeaseAssignmentManager.performAssignment: a led run with balancing,
// spillover and a failed assignment, at DETAILED; the same at SUMMARY
// leaves out the DETAILED datums; a run that failed to load publishes only
// Success = 0 and Time; a forced release adds ForceLeaderRelease.
func TestLeaseAssignmentManagerDatums(t *testing.T) {
	run := lam.RunStats{Success: true, TotalLeases: 6, NumWorkers: 3, ExpiredLeases: 2, LeaseSpillover: 1,
		NumOfLeasesReassignment: 1, FailedAssignmentCount: 1, Latency: 40 * time.Millisecond,
		Loaded: true, Balanced: true, Wrote: true, WriteOK: true, LoadLatency: 10 * time.Millisecond, WriteLatency: 20 * time.Millisecond}
	const op = "{Operation=LeaseAssignmentManager}"
	summary := map[string]capturedDatum{
		"TotalLeases" + op: cnt(6), "NumWorkers" + op: cnt(3), "ExpiredLeases" + op: cnt(2), "LeaseSpillover" + op: cnt(1),
		"NumOfLeasesReassignment" + op: cnt(1), "Success" + op: cnt(1), "Time" + op: ms(40),
	}
	detailed := map[string]capturedDatum{
		"LeaseAndWorkerMetricsLoad.Time" + op: ms(10), "FailedAssignmentCount" + op: cnt(1),
		"ParallelyAssignLeases.Success" + op: cnt(1), "ParallelyAssignLeases.Time" + op: ms(20),
	}
	for k, v := range summary {
		detailed[k] = v
	}
	// WorkerIdentifier is not a dimension of this operation in Java.
	wantDatums(t, publishWith(cwmetrics.Detailed, allDims, func(o *ops) { o.leaseAssignmentManager(run) }), detailed)
	wantDatums(t, publishWith(cwmetrics.Summary, allDims, func(o *ops) { o.leaseAssignmentManager(run) }), summary)

	// No spillover, no balancing this run: neither datum (Java adds them
	// only then).
	quiet := run
	quiet.LeaseSpillover, quiet.Balanced = 0, false
	got := publishWith(cwmetrics.Summary, allDims, func(o *ops) { o.leaseAssignmentManager(quiet) })
	if _, ok := got["LeaseSpillover"+op]; ok {
		t.Error("LeaseSpillover published without spillover")
	}
	if _, ok := got["NumOfLeasesReassignment"+op]; ok {
		t.Error("NumOfLeasesReassignment published without balancing")
	}

	wantDatums(t, publishWith(cwmetrics.Summary, allDims, func(o *ops) { o.leaseAssignmentNotLeader(3 * time.Millisecond) }),
		map[string]capturedDatum{"Success" + op: cnt(1), "Time" + op: ms(3)})

	failed := lam.RunStats{Latency: 5 * time.Millisecond, ForceLeaderRelease: true}
	wantDatums(t, publishWith(cwmetrics.Detailed, allDims, func(o *ops) { o.leaseAssignmentManager(failed) }),
		map[string]capturedDatum{"Success" + op: cnt(0), "Time" + op: ms(5), "ForceLeaderRelease" + op: cnt(1)})
}

// Java DynamoDBLeaseDiscoverer.discoverNewLeases: Operation and
// WorkerIdentifier; metricsEnabledDimensions = Operation drops the worker.
func TestLeaseDiscoveryDatums(t *testing.T) {
	st := lease.DiscoveryStats{Success: true, Latency: 30 * time.Millisecond, ListLatency: 10 * time.Millisecond,
		FetchLatency: 15 * time.Millisecond, NewLeases: 2, OwnerMismatch: 1, GetLeaseErrors: 1}
	const d = "{Operation=LeaseDiscovery,WorkerIdentifier=w1}"
	wantDatums(t, publishWith(cwmetrics.Detailed, allDims, func(o *ops) { o.leaseDiscovery(st) }), map[string]capturedDatum{
		"ListLeaseKeysForWorker.Time" + d: ms(10), "FetchNewLeases.Time" + d: ms(15), "NewLeasesDiscovered" + d: cnt(2),
		"OwnerMismatch" + d: cnt(1), "GetLease:Error" + d: cnt(1), "Success" + d: cnt(1), "Time" + d: ms(30),
	})
	wantDatums(t, publishWith(cwmetrics.Summary, []string{cwmetrics.DimOperation}, func(o *ops) { o.leaseDiscovery(st) }), map[string]capturedDatum{
		"GetLease:Error{Operation=LeaseDiscovery}": cnt(1), "Success{Operation=LeaseDiscovery}": cnt(1), "Time{Operation=LeaseDiscovery}": ms(30),
	})
	// The index could not be listed: a failure with its time.
	wantDatums(t, publishWith(cwmetrics.Detailed, allDims, func(o *ops) {
		o.leaseDiscovery(lease.DiscoveryStats{Latency: 7 * time.Millisecond, ListLatency: 7 * time.Millisecond})
	}), map[string]capturedDatum{"ListLeaseKeysForWorker.Time" + d: ms(7), "Success" + d: cnt(0), "Time" + d: ms(7)})
}

// Java WorkerMetricStatsReporter.run: Success and Time (SUMMARY) with
// WorkerIdentifier, two reports accumulated into one statistic set.
func TestWorkerMetricStatsReporterDatums(t *testing.T) {
	const d = "{Operation=WorkerMetricStatsReporter,WorkerIdentifier=w1}"
	got := publishWith(cwmetrics.Summary, allDims, func(o *ops) {
		o.workerMetricStatsReporter(nil, 4*time.Millisecond)
		o.workerMetricStatsReporter(errors.New("throttled"), 6*time.Millisecond)
	})
	wantDatums(t, got, map[string]capturedDatum{"Success" + d: cnt(1), "Time" + d: ms(10)})
	if s := got["Success"+d]; s.n != 2 || s.min != 0 || s.max != 1 {
		t.Errorf("Success statistics %+v, want 2 samples 0..1", s)
	}
	if got := publishWith(cwmetrics.None, allDims, func(o *ops) { o.workerMetricStatsReporter(nil, time.Millisecond) }); len(got) > 0 {
		t.Errorf("metricsLevel NONE published %v", got)
	}
}

// answeringLock is a lock decider answering held.
type answeringLock struct{ held bool }

func (f answeringLock) IsLeader(context.Context) bool         { return f.held }
func (answeringLock) ReleaseLeadershipIfHeld(context.Context) {}
func (answeringLock) Running() <-chan struct{}                { return nil }
func (answeringLock) Run(ctx context.Context) error           { <-ctx.Done(); return nil }

// Java DynamoDBLockBasedLeaderDecider.isLeader publishes LeaderDecider:IsLeader
// (DETAILED, Operation only) on every call; in KCL 2.x mode the coordinator
// adapter publishes the shuffle decider's answer; both name the decider in
// use (MigrationAdaptiveLeaderDecider). SUMMARY publishes none of them.
func TestLeaderDeciderDatums(t *testing.T) {
	const d = "{Operation=LeaderDecider}"
	got := publishWith(cwmetrics.Detailed, allDims, func(o *ops) {
		dec := publishingDecider{lockDecider: answeringLock{held: true}, o: o}
		dec.IsLeader(context.Background())
		publishingDecider{lockDecider: answeringLock{}, o: o}.IsLeader(context.Background())
	})
	wantDatums(t, got, map[string]capturedDatum{"LeaderDecider:IsLeader" + d: cnt(1)})
	if s := got["LeaderDecider:IsLeader"+d]; s.n != 2 {
		t.Errorf("IsLeader samples %v, want 2", s.n)
	}

	// KCL 2.x mode: no lease is owned, so every worker leads.
	coord := lease.NewCoordinator(emptyStore{}, lease.CoordinatorConfig{WorkerID: "w1"}, nil)
	got = publishWith(cwmetrics.Detailed, allDims, func(o *ops) { coordinator{coord, o}.IsLeader(context.Background()) })
	wantDatums(t, got, map[string]capturedDatum{"LeaderDecider:IsLeader" + d: cnt(1), "DeterministicShuffleShardSyncLeaderDecider" + d: cnt(1)})
	got = publishWith(cwmetrics.Summary, allDims, func(o *ops) { coordinator{coord, o}.IsLeader(context.Background()) })
	wantDatums(t, got, nil)
}

// emptyStore is a lease table with no leases.
type emptyStore struct{ lease.Store }

func (emptyStore) ListLeases(context.Context) ([]lease.Lease, error) { return nil, nil }

// TestThreeXDatumsAgainstEmulators: the only worker of a pure multilangd
// 3.x fleet (DynamoDB Local for the lease-owner index), assembled as Run
// builds it, publishes Java's KCL 3.x datums: its LeaseAssignmentManager
// runs see the stream's two leases and one worker and assign both, its
// discovery finds them through the index, its worker metrics are reported
// and its lock decider answers IsLeader = 1.
func TestThreeXDatumsAgainstEmulators(t *testing.T) {
	kin := testenv.StartT(t, testenv.Kinesalite)
	ddb := testenv.StartT(t, testenv.DynamoDBLocal)
	testenv.CreateStreamT(t, kin.Kinesis(), "cw3x", 2)
	put := &capturePut{}
	d := startAssembledCW(t, kin, ddb, put, "cw3x",
		"clientVersionConfig = CLIENT_VERSION_CONFIG_3X",
		"workerMetricsReporterFreqInMillis = 1000",
		"metricsBufferTimeMillis = 200")
	const (
		lamOp = "{Operation=LeaseAssignmentManager}"
		disc  = "{Operation=LeaseDiscovery,WorkerIdentifier=w1}"
		rep   = "{Operation=WorkerMetricStatsReporter,WorkerIdentifier=w1}"
		ld    = "{Operation=LeaderDecider}"
	)
	check := func(got map[string]capturedDatum) string {
		for _, w := range []struct {
			key, unit string
			ok        func(capturedDatum) bool
		}{
			{"TotalLeases" + lamOp, "Count", func(c capturedDatum) bool { return c.max == 2 }},
			{"NumWorkers" + lamOp, "Count", func(c capturedDatum) bool { return c.max == 1 }},
			{"ExpiredLeases" + lamOp, "Count", func(c capturedDatum) bool { return c.max == 2 }},
			{"NumOfLeasesReassignment" + lamOp, "Count", func(c capturedDatum) bool { return true }},
			{"FailedAssignmentCount" + lamOp, "Count", func(c capturedDatum) bool { return c.sum == 0 }},
			{"LeaseAndWorkerMetricsLoad.Time" + lamOp, "Milliseconds", func(c capturedDatum) bool { return true }},
			{"ParallelyAssignLeases.Success" + lamOp, "Count", func(c capturedDatum) bool { return c.min == 1 }},
			{"ParallelyAssignLeases.Time" + lamOp, "Milliseconds", func(c capturedDatum) bool { return true }},
			{"Success" + lamOp, "Count", func(c capturedDatum) bool { return c.min == 1 }},
			{"Time" + lamOp, "Milliseconds", func(c capturedDatum) bool { return true }},
			{"NewLeasesDiscovered" + disc, "Count", func(c capturedDatum) bool { return c.sum == 2 }},
			{"ListLeaseKeysForWorker.Time" + disc, "Milliseconds", func(c capturedDatum) bool { return true }},
			{"FetchNewLeases.Time" + disc, "Milliseconds", func(c capturedDatum) bool { return true }},
			{"Success" + disc, "Count", func(c capturedDatum) bool { return c.max == 1 }},
			{"Time" + disc, "Milliseconds", func(c capturedDatum) bool { return true }},
			{"Success" + rep, "Count", func(c capturedDatum) bool { return c.max == 1 }},
			{"Time" + rep, "Milliseconds", func(c capturedDatum) bool { return true }},
			{"LeaderDecider:IsLeader" + ld, "Count", func(c capturedDatum) bool { return c.max == 1 }},
		} {
			c, ok := got[w.key]
			if !ok || c.unit != w.unit || !w.ok(c) {
				return fmt.Sprintf("%s: %+v (present %v)", w.key, c, ok)
			}
		}
		return ""
	}
	var missing string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if missing = check(put.datums()); missing == "" {
			break
		}
		if time.Now().After(deadline) {
			var keys []string
			for k, c := range put.datums() {
				if strings.Contains(k, "LeaseAssignmentManager") || strings.Contains(k, "LeaseDiscovery") ||
					strings.Contains(k, "WorkerMetricStats") || strings.Contains(k, "LeaderDecider") {
					keys = append(keys, fmt.Sprintf("%s %+v", k, c))
				}
			}
			slices.Sort(keys)
			t.Fatalf("after 60 s: %s; KCL 3.x datums received:\n%s", missing, strings.Join(keys, "\n"))
		}
	}
	d.stop(t)
	for k, c := range put.datums() {
		if strings.Contains(k, "Operation=LeaseAssignmentManager") || strings.Contains(k, "Operation=LeaderDecider") {
			if strings.Contains(k, "WorkerIdentifier") {
				t.Errorf("%s carries WorkerIdentifier (Java's scope has only Operation)", k)
			}
		}
		t.Logf("%s %s sum=%v n=%v", k, c.unit, c.sum, c.n)
	}
}
