//go:build reliability

package reliability

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

const fleetShards = 8

// startFleet starts three workers on an 8-shard stream and a steady
// producer, and waits until every shard delivers.
func startFleet(t *testing.T) (*fleet, []*daemon, *producer) {
	f := newFleet(t, fleetShards)
	var ds []*daemon
	for i := 1; i <= 3; i++ {
		ds = append(ds, f.start(fmt.Sprintf("w%d", i), nil))
	}
	p := f.startProducer(40, 500*time.Millisecond)
	f.waitShardsProgress(fleetShards, 120*time.Second)
	return f, ds, p
}

// Fleet: SIGKILL one worker, then a second; the third takes every shard
// over; both come back and the fleet rebalances. Nothing is lost.
func TestFleetKillTwoThenRestart(t *testing.T) {
	f, ds, p := startFleet(t)
	f.fault("SIGKILL w1", ds[0].kill, nil)
	f.waitShardsProgress(fleetShards, 90*time.Second)
	f.fault("SIGKILL w2", ds[1].kill, nil)
	f.waitShardsProgress(fleetShards, 90*time.Second)
	f.start("w1", nil)
	f.start("w2", nil)
	f.waitOwns("w1", 90*time.Second)
	f.waitOwns("w2", 90*time.Second)
	f.waitShardsProgress(fleetShards, 60*time.Second)
	f.finish(p, 120*time.Second)
}

// Fleet: a rolling restart with SIGTERM (each worker exits 0, hands its
// shards over, comes back).
func TestFleetRollingRestart(t *testing.T) {
	f, ds, p := startFleet(t)
	for i, d := range ds {
		w := fmt.Sprintf("w%d", i+1)
		f.fault("SIGTERM "+w+" and restart", func() {
			if c := d.term(60 * time.Second); c != 0 {
				t.Errorf("%s exit code %d after SIGTERM", w, c)
			}
		}, nil)
		f.start(w, nil)
		f.waitOwns(w, 90*time.Second)
		f.waitShardsProgress(fleetShards, 90*time.Second)
	}
	f.finish(p, 120*time.Second)
}

// Fleet: a worker frozen with SIGSTOP past the failover time loses its
// leases to the others; resumed with SIGCONT it must not deliver another
// record of a lease it held when frozen to the child it had then (fencing:
// Java's lease expiry check before every task, LeaseRenewer.getCurrentlyHeldLease).
func TestFleetStopPastFailoverThenContinue(t *testing.T) {
	f, ds, p := startFleet(t)
	w1 := ds[0]
	held := map[string]bool{}
	for _, l := range f.leases() {
		if l.Owner == "w1" {
			held[l.Key] = true
		}
	}
	if len(held) == 0 {
		t.Fatal("w1 holds no lease before the freeze")
	}
	var frozenAt, resumedAt time.Time
	f.fault("SIGSTOP w1 until its leases are taken, then SIGCONT", func() {
		frozenAt = time.Now()
		_ = w1.cmd.Process.Signal(syscall.SIGSTOP)
		f.waitFor(120*time.Second, "w1's leases taken by other workers", func() bool {
			for _, l := range f.leases() {
				if held[l.Key] && l.Owner == "w1" {
					return false
				}
			}
			return true
		})
	}, func() {
		_ = w1.cmd.Process.Signal(syscall.SIGCONT)
		resumedAt = time.Now()
	})
	f.waitShardsProgress(fleetShards, 90*time.Second)
	f.finish(p, 120*time.Second, fencing(w1.pid(), held, frozenAt, resumedAt))
}

// fencing reports a record delivered after resumedAt by a child that the
// daemon pid started before frozenAt for one of the leases held (taken from
// it while it was frozen).
func fencing(pid int, held map[string]bool, frozenAt, resumedAt time.Time) func(Result, []Event) []string {
	return func(_ Result, evs []Event) []string {
		oldChild := map[int]bool{}
		for _, e := range evs {
			if e.Ev == "init" && e.PPid == pid && e.T < frozenAt.UnixNano() && held[e.Shard] {
				oldChild[e.Pid] = true
			}
		}
		var v []string
		for _, e := range evs {
			if e.Ev == "rec" && oldChild[e.Pid] && e.T > resumedAt.UnixNano() {
				v = append(v, fmt.Sprintf("fencing: %s/%s/%d delivered by the frozen worker's child %d after SIGCONT although the lease had moved",
					e.Shard, e.Seq, e.Sub, e.Pid))
			}
		}
		if len(v) > 5 {
			v = append(v[:5], fmt.Sprintf("... %d more", len(v)-5))
		}
		return v
	}
}

// waitOwns waits until worker holds a lease (balancing gave it one).
func (f *fleet) waitOwns(worker string, limit time.Duration) {
	f.t.Helper()
	f.waitFor(limit, worker+" holding a lease", func() bool {
		for _, l := range f.leases() {
			if l.Owner == worker {
				return true
			}
		}
		return false
	})
}
