package assemble

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/lam"
)

type fakeVersion struct {
	v    string
	last map[string]float64
}

func (f fakeVersion) Version() string                  { return f.v }
func (f fakeVersion) LastReported() map[string]float64 { return f.last }

type fakeLock struct{ held bool }

func (f fakeLock) Observed() (string, bool, time.Time) { return "w1", f.held, time.Time{} }

// Each KCL 3.x gauge reads its source at scrape time; a source that is not
// wired leaves its gauges out, and worker metrics appear only in a client
// version that publishes them.
func TestThreeXCollector(t *testing.T) {
	src := threeXSources{
		version:  fakeVersion{v: lease.ClientVersion3XRoll, last: map[string]float64{"C": 37.5}},
		lock:     fakeLock{held: true},
		handoffs: func() int { return 2 },
		lam: func() (lamFigures, bool) {
			return lamFigures{LastRun: time.Unix(1764514800, 0), TotalLeases: 8, ActiveWorkers: 3, ExpiredLeases: 1, Assignments: 2, FailedAssignments: 1}, true
		},
		lamTotals: func() (lamTotals, bool) { return lamTotals{Assignments: 9, FailedAssignments: 4}, true },
	}
	want := []string{
		"multilangd_handoffs_in_progress 2",
		`multilangd_kcl_client_version{version="CLIENT_VERSION_3X_WITH_ROLLBACK"} 1`,
		"multilangd_kcl_leader_lock_held 1",
		"multilangd_lam_active_workers 3",
		"multilangd_lam_assignments 2",
		"multilangd_lam_assignments_total 9",
		"multilangd_lam_expired_leases 1",
		"multilangd_lam_failed_assignments 1",
		"multilangd_lam_failed_assignments_total 4",
		"multilangd_lam_last_run_timestamp_seconds 1.7645148e+09",
		"multilangd_lam_total_leases 8",
		`multilangd_worker_metric{metric="C"} 37.5`,
	}
	if got := scrape(t, src); !slices.Equal(got, want) {
		t.Fatalf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A 2.x table: the version only; no worker metrics, no leader figures.
	got := scrape(t, threeXSources{version: fakeVersion{v: lease.ClientVersionInit, last: map[string]float64{"C": 1}},
		lam: func() (lamFigures, bool) { return lamFigures{}, false }})
	if !slices.Equal(got, []string{`multilangd_kcl_client_version{version="CLIENT_VERSION_INIT"} 1`}) {
		t.Fatalf("2.x table: %v", got)
	}
	// Before the client version is known: nothing.
	if got := scrape(t, threeXSources{version: fakeVersion{}}); len(got) != 0 {
		t.Fatalf("before initialisation: %v", got)
	}
}

// scrape registers a collector over src and returns its series as
// "name{labels} value" lines, sorted.
func scrape(t *testing.T, src threeXSources) []string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(newThreeXCollector(src))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := ""
			for _, lp := range m.GetLabel() {
				labels += fmt.Sprintf(`%s=%q`, lp.GetName(), lp.GetValue())
			}
			if labels != "" {
				labels = "{" + labels + "}"
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			out = append(out, fmt.Sprintf("%s%s %v", mf.GetName(), labels, v))
		}
	}
	slices.Sort(out)
	return out
}

// The LAM figures are shown only while this worker leads and has run the
// manager; assignments are the W8 and W9 writes that landed.
func TestLAMFiguresOf(t *testing.T) {
	at := time.Unix(1764514800, 0)
	st := lam.Status{Leading: true, LastRun: lam.RunStats{At: at, TotalLeases: 10, NumWorkers: 3, ExpiredLeases: 2,
		Assigned: 2, HandoffsStarted: 3, FailedAssignmentCount: 1}}
	f, ok := lamFiguresOf(st, true)
	if want := (lamFigures{LastRun: at, TotalLeases: 10, ActiveWorkers: 3, ExpiredLeases: 2, Assignments: 5, FailedAssignments: 1}); !ok || f != want {
		t.Fatalf("figures = %+v %v, want %+v", f, ok, want)
	}
	for name, c := range map[string]struct {
		st      lam.Status
		running bool
	}{
		"2.x mode (no manager)": {st, false},
		"follower":              {lam.Status{Leading: false, LastRun: st.LastRun}, true},
		"never ran":             {lam.Status{Leading: true}, true},
	} {
		if _, ok := lamFiguresOf(c.st, c.running); ok {
			t.Errorf("%s: figures shown", name)
		}
	}
}

type fakeDecider struct {
	fakeLock
	lam.Leader
}

func (fakeDecider) Run(context.Context) error { return nil }
func (fakeDecider) Running() <-chan struct{}  { return nil }

// The totals are shown while the manager runs (leader or follower) and are
// the landed W8 + W9 and the failed writes.
func TestLAMTotalsOf(t *testing.T) {
	st := lam.Status{TotalAssigned: 3, TotalHandoffsStarted: 4, TotalFailedAssignments: 2}
	if got, ok := lamTotalsOf(st, true); !ok || got != (lamTotals{Assignments: 7, FailedAssignments: 2}) {
		t.Fatalf("totals = %+v %v", got, ok)
	}
	if _, ok := lamTotalsOf(st, false); ok {
		t.Fatal("totals in 2.x mode")
	}
}

// The lock gauge follows the decider threeX started last; before any, the
// lock is not held.
func TestLockObserverFollowsLatestDecider(t *testing.T) {
	x := &threeX{newDecider: func() (lockDecider, error) { return fakeDecider{fakeLock: fakeLock{held: true}}, nil }}
	src := threeXGaugeSources(fakeVersion{v: lease.ClientVersion3X}, noHandoffs{}, x)
	if _, held, _ := src.lock.Observed(); held {
		t.Fatal("held before a decider ran")
	}
	if _, err := x.newDecider(); err != nil {
		t.Fatal(err)
	}
	if _, held, _ := src.lock.Observed(); !held {
		t.Fatal("not held after the decider said so")
	}
	if src := threeXGaugeSources(fakeVersion{}, noHandoffs{}, &threeX{}); src.lock != nil {
		t.Fatal("a lock gauge without a decider in this build")
	}
}

type noHandoffs struct{}

func (noHandoffs) Handoffs() []lease.HandoffStatus { return nil }
