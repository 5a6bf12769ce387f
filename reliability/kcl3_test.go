//go:build reliability

package reliability

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/reliability/faultproxy"
)

// The KCL 3.x scenarios (docs/architecture.md "KCL 3.x mode"): a pure
// multilangd fleet on a 3.x table (clientVersionConfig written in the file
// creates Migration3.0 = CLIENT_VERSION_3X), the Leader lock and the lease
// assignment manager, on DynamoDB Local behind the fault proxy (dynalite
// accepts an UpdateTable creating a GSI but never creates it).

// kcl3Lock is the Leader lock's lease duration in these scenarios: a
// worker takes over a lock it has seen unchanged for this long.
const kcl3Lock = 10 * time.Second

// kcl3Props are the 3.x properties every worker of these scenarios gets:
// the Leader lock and lease assignment on a short schedule, worker
// metrics every second (a worker counts for the leader once it has
// published them), and lease-count balancing, so that the balanced
// assignment does not depend on the CPU figures of a shared machine.
func kcl3Props() map[string]string {
	return map[string]string{
		"clientVersionConfig":                            "CLIENT_VERSION_CONFIG_3X",
		"dynamoDbLockBasedLeaderLeaseDurationInMillis":   fmt.Sprint(kcl3Lock.Milliseconds()),
		"dynamoDbLockBasedLeaderHeartbeatPeriodInMillis": "2000",
		"leaseAssignmentIntervalMillis":                  "2000",
		"leaseAssignmentStrategy":                        "LEASE_COUNT_BASED",
		"workerMetricsReporterFreqInMillis":              "1000",
		"inMemoryWorkerMetricsCaptureFrequencyMillis":    "200",
	}
}

// newKCL3Fleet is a fleet on DynamoDB Local whose workers run in 3.x mode.
func newKCL3Fleet(t *testing.T, shards int32) *fleet {
	f := newFleetOn(t, shards, testenv.DynamoDBLocal)
	for k, v := range kcl3Props() {
		f.base[k] = v
	}
	return f
}

// startKCL3Fleet starts three 3.x workers on an 8-shard stream and a
// steady producer, and waits until every shard delivers, one worker holds
// the Leader lock and every worker holds a lease.
func startKCL3Fleet(t *testing.T) (*fleet, *producer) {
	f := newKCL3Fleet(t, fleetShards)
	for i := 1; i <= 3; i++ {
		f.start(fmt.Sprintf("w%d", i), nil)
	}
	p := f.startProducer(40, 500*time.Millisecond)
	f.waitShardsProgress(fleetShards, 180*time.Second)
	f.waitLeader(120*time.Second, "")
	f.waitBalanced(180 * time.Second)
	return f, p
}

// waitBalanced waits until each of w1, w2, w3 holds 2 leases or more and
// no hand-off is pending (the leader balanced the fleet).
func (f *fleet) waitBalanced(limit time.Duration) {
	f.t.Helper()
	f.waitFor(limit, "w1, w2 and w3 holding 2 leases each, no hand-off pending", func() bool {
		held := map[string]int{}
		for _, l := range f.leases() {
			if l.CheckpointOwner != "" {
				return false
			}
			held[l.Owner]++
		}
		return held["w1"] >= 2 && held["w2"] >= 2 && held["w3"] >= 2
	})
}

// leader returns the owner of the Leader lock item ("" when there is none
// or it is released).
func (f *fleet) leader() string {
	owner, _ := f.lock()
	return owner
}

// lock returns the Leader lock item's owner and record version number
// (which every acquisition and heartbeat changes); "" when there is none
// or it is released.
func (f *fleet) lock() (owner, rvn string) {
	st := lease.NewDynamoStore(f.ddb.DynamoDB(), f.app, zap.NewNop())
	ts, err := st.ScanTable(context.Background())
	if err != nil || ts.State.Leader == nil || ts.State.Leader.Released {
		return "", ""
	}
	return ts.State.Leader.Owner, ts.State.Leader.RecordVersionNumber
}

// waitLeader waits until a worker other than not holds the Leader lock
// and returns it.
func (f *fleet) waitLeader(limit time.Duration, not string) string {
	f.t.Helper()
	var ld string
	f.waitFor(limit, "a Leader lock holder other than "+not, func() bool {
		ld = f.leader()
		return ld != "" && ld != not
	})
	return ld
}

// running returns worker's running daemon.
func (f *fleet) running(worker string) *daemon {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.daemons {
		if d.worker == worker && !d.exited() {
			return d
		}
	}
	f.t.Fatalf("no running daemon for %s", worker)
	return nil
}

// heldBy returns the keys of the leases worker holds: it owns them, or
// it is the old owner of a hand-off not transferred yet (checkpointOwner).
func (f *fleet) heldBy(worker string) map[string]bool {
	held := map[string]bool{}
	for _, l := range f.leases() {
		if l.Owner == worker && l.CheckpointOwner == "" || l.CheckpointOwner == worker {
			held[l.Key] = true
		}
	}
	return held
}

// observe appends a measured figure to the last injected fault's text.
func (f *fleet) observe(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	f.t.Log(s)
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.injected); n > 0 {
		f.injected[n-1] += " (" + s + ")"
	}
}

// KCL 3.x: the Leader-lock holder is SIGKILLed. Another worker takes the
// lock once it has seen it unchanged for the lock's lease duration, and as
// leader re-assigns the dead worker's expired leases (W8). Nothing is lost;
// duplicates only in the un-checkpointed window.
func TestKCL3KillLeader(t *testing.T) {
	f, p := startKCL3Fleet(t)
	ld := f.leader()
	held := f.heldBy(ld)
	var killed time.Time
	f.fault("SIGKILL the Leader-lock holder", func() {
		killed = time.Now()
		f.running(ld).kill()
	}, nil)
	next := f.waitLeader(120*time.Second, ld)
	took := time.Since(killed)
	f.waitFor(120*time.Second, "the killed leader's leases re-assigned", func() bool { return len(f.heldBy(ld)) == 0 })
	f.observe("%s held the lock and %d leases; %s took the lock after %s, its leases were re-assigned after %s",
		ld, len(held), next, took.Round(100*time.Millisecond), time.Since(killed).Round(100*time.Millisecond))
	f.waitShardsProgress(fleetShards, 90*time.Second)
	f.finish(p, 120*time.Second, noOverlap(5*time.Second))
}

// KCL 3.x: the Leader-lock holder is frozen (SIGSTOP) until another worker
// holds the lock and every lease it held has moved, then resumed. Fencing:
// its children of those leases deliver nothing after SIGCONT, and it stops
// leading: it assigns no lease after SIGCONT and the lock stays with the
// new holder.
func TestKCL3StopLeaderPastLockThenContinue(t *testing.T) {
	f, p := startKCL3Fleet(t)
	ld := f.leader()
	d := f.running(ld)
	held := f.heldBy(ld)
	var frozenAt, resumedAt time.Time
	var logAtResume int64
	var next string
	f.fault("SIGSTOP the Leader-lock holder until another worker holds the lock and its leases, then SIGCONT", func() {
		frozenAt = time.Now()
		_ = d.cmd.Process.Signal(syscall.SIGSTOP)
		next = f.waitLeader(120*time.Second, ld)
		f.observe("%s took the lock after %s", next, time.Since(frozenAt).Round(100*time.Millisecond))
		f.waitFor(120*time.Second, "the frozen leader's leases moved", func() bool {
			for k := range f.heldBy(ld) {
				if held[k] {
					return false
				}
			}
			return true
		})
		f.observe("%d leases moved after %s", len(held), time.Since(frozenAt).Round(100*time.Millisecond))
	}, func() {
		if fi, err := os.Stat(d.log); err == nil {
			logAtResume = fi.Size()
		}
		_ = d.cmd.Process.Signal(syscall.SIGCONT)
		resumedAt = time.Now()
	})
	f.waitShardsProgress(fleetShards, 90*time.Second)
	// Two lock heartbeat periods and two assignment runs after resuming.
	time.Sleep(5 * time.Second)
	if now := f.leader(); now != next {
		t.Errorf("the Leader lock is %q after %s resumed, want %s still", now, ld, next)
	}
	stillLeading := func(Result, []Event) []string {
		lines := logLinesFrom(t, d.log, logAtResume, "lam/write.go", "leading: this worker assigns")
		if len(lines) > 0 {
			return []string{fmt.Sprintf("%s led after SIGCONT although %s held the lock: %s", ld, next, strings.Join(lines, " | "))}
		}
		return nil
	}
	f.finish(p, 120*time.Second, fencing(d.pid(), held, frozenAt, resumedAt), stillLeading)
}

// logLinesFrom returns the lines of the log at path from byte offset on
// that hold one of needles (at most 5).
func logLinesFrom(t *testing.T, path string, offset int64, needles ...string) []string {
	fh, err := os.Open(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return nil
	}
	defer fh.Close()
	if _, err := fh.Seek(offset, io.SeekStart); err != nil {
		t.Errorf("%s: %v", path, err)
		return nil
	}
	var out []string
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	for sc.Scan() && len(out) < 5 {
		for _, n := range needles {
			if strings.Contains(sc.Text(), n) {
				out = append(out, sc.Text())
				break
			}
		}
	}
	return out
}

// KCL 3.x under DynamoDB faults: three workers on 8 shards, every
// connection to DynamoDB reset for 30 s (the lock, the leases and the
// worker metrics all stop landing: the lock and every lease expire), or
// 1.5 s latency on 30% of requests. The fleet elects a leader again,
// re-assigns the leases and loses nothing.
func TestKCL3AWSFaults(t *testing.T) {
	for _, af := range awsFaults {
		if af.name != "DynamoDBOutage" && af.name != "DynamoDBLatency" {
			continue
		}
		t.Run(af.name, func(t *testing.T) {
			f, p := startKCL3Fleet(t)
			before := f.leader()
			f.fault(af.what, func() {
				f.dp.Set(*af.dynamodb)
				time.Sleep(af.lasts)
			}, func() { f.dp.Set(faultproxy.Fault{}) })
			healed := time.Now()
			_, staleRVN := f.lock()
			t.Logf("injected into %d DynamoDB requests", f.dp.Injected())
			f.waitShardsProgress(fleetShards, 120*time.Second)
			delivering := time.Since(healed)
			// A lock heartbeat or acquisition landed after the fault: a
			// worker leads again.
			var after string
			f.waitFor(120*time.Second, "a Leader lock heartbeat or acquisition after the fault", func() bool {
				owner, rvn := f.lock()
				after = owner
				return owner != "" && rvn != staleRVN
			})
			f.observe("lock held by %s before; every shard delivering %s after the fault ended, the first lock heartbeat or acquisition (by %s) landed %s after it",
				before, delivering.Round(100*time.Millisecond), after, time.Since(healed).Round(100*time.Millisecond))
			for _, d := range f.daemons {
				if d.exited() {
					t.Errorf("%s exited during the fault: %v", d.log, d.err)
				}
			}
			f.finish(p, 120*time.Second, noOverlap(5*time.Second))
		})
	}
}

// KCL 3.x balancing by graceful hand-off: one worker takes all 8 leases,
// then two more start; the leader moves leases to them with W9 (the old
// owner's child gets shutdownRequested and checkpoints, the new owner
// starts at that checkpoint). A planned move re-delivers nothing: the
// scenario must see hand-offs and 0 duplicates.
func TestKCL3BalancingHandoff(t *testing.T) {
	f := newKCL3Fleet(t, fleetShards)
	f.start("w1", nil)
	p := f.startProducer(40, 500*time.Millisecond)
	f.waitShardsProgress(fleetShards, 180*time.Second)
	f.waitFor(120*time.Second, "w1 holding all 8 leases", func() bool { return len(f.heldBy("w1")) == fleetShards })
	f.fault("w1 holds all 8 leases; start w2 and w3: the leader balances by graceful hand-off (W9)", func() {
		f.start("w2", nil)
		f.start("w3", nil)
		f.waitBalanced(180 * time.Second)
	}, nil)
	f.waitShardsProgress(fleetShards, 90*time.Second)
	var handedOff, timedOut, started int
	for _, d := range f.daemons {
		handedOff += len(logLinesAll(t, d.log, "lease handed off"))
		timedOut += len(logLinesAll(t, d.log, "not completed within gracefulLeaseHandoffTimeoutMillis"))
		started += len(logLinesAll(t, d.log, "lease hand-off started"))
	}
	f.observe("%d hand-offs started by the leader, %d transferred by the old owner, %d by timeout", started, handedOff, timedOut)
	planned := func(r Result, _ []Event) []string {
		var v []string
		if handedOff == 0 {
			v = append(v, "no graceful hand-off happened: the scenario proves nothing")
		}
		if r.Duplicates > 0 {
			v = append(v, fmt.Sprintf("%d records re-delivered although every lease move was a graceful hand-off", r.Duplicates))
		}
		return v
	}
	f.finish(p, 120*time.Second, planned)
}

// logLinesAll is logLinesFrom for the whole log, without the limit.
func logLinesAll(t *testing.T, path string, needle string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, needle) {
			out = append(out, l)
		}
	}
	return out
}
