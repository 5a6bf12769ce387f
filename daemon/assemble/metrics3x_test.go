package assemble

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multilangd/multilangd/lease"
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
	}
	want := []string{
		"multilangd_handoffs_in_progress 2",
		`multilangd_kcl_client_version{version="CLIENT_VERSION_3X_WITH_ROLLBACK"} 1`,
		"multilangd_kcl_leader_lock_held 1",
		"multilangd_lam_active_workers 3",
		"multilangd_lam_assignments 2",
		"multilangd_lam_expired_leases 1",
		"multilangd_lam_failed_assignments 1",
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
			out = append(out, fmt.Sprintf("%s%s %v", mf.GetName(), labels, m.GetGauge().GetValue()))
		}
	}
	slices.Sort(out)
	return out
}
