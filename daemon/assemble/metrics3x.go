package assemble

import (
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/lam"
)

// clientVersionSource is the KCL 3.x client version in force and the
// worker metrics last published (workermetrics.Migration).
type clientVersionSource interface {
	Version() string
	LastReported() map[string]float64
}

// leaderLockSource is the 3.x Leader lock as this worker sees it
// (lease/leader Decider).
type leaderLockSource interface {
	Observed() (owner string, held bool, since time.Time)
}

// lamFigures are the figures of the LeaseAssignmentManager's last run on
// this worker (Java LeaseAssignmentManager's TotalLeases, NumWorkers,
// ExpiredLeases datums and the assignments it made).
type lamFigures struct {
	LastRun           time.Time
	TotalLeases       int
	ActiveWorkers     int
	ExpiredLeases     int
	Assignments       int
	FailedAssignments int
}

// lamTotals are the writes of every run the current manager led (since
// this worker last entered 3.x mode).
type lamTotals struct {
	Assignments, FailedAssignments int
}

// threeXSources are what the KCL 3.x gauges read at scrape time; a nil
// source leaves its gauges out.
type threeXSources struct {
	version clientVersionSource
	lock    leaderLockSource
	// handoffs is the number of graceful hand-offs in progress of leases
	// this worker holds (it is the old owner).
	handoffs func() int
	// lam is the last run's figures; ok false while this worker has not
	// run the LeaseAssignmentManager as the leader.
	lam func() (f lamFigures, ok bool)
	// lamTotals is the running manager's totals; ok false in 2.x mode.
	lamTotals func() (t lamTotals, ok bool)
}

// threeXCollector reports the KCL 3.x state of this worker
// (docs/operations.md "KCL 3.x gauges").
type threeXCollector struct {
	src                                                      threeXSources
	version, lockHeld, workerMetric, handoffs                *prometheus.Desc
	lamLastRun, lamLeases, lamWorkers, lamExpired, lamAssign *prometheus.Desc
	lamFailed, lamAssignTotal, lamFailedTotal                *prometheus.Desc
}

func newThreeXCollector(src threeXSources) *threeXCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &threeXCollector{src: src,
		version: d("multilangd_kcl_client_version",
			"1 for the KCL client version in force (Migration3.0 cv as this worker follows it; CLIENT_VERSION_INIT on a 2.x table).", "version"),
		lockHeld: d("multilangd_kcl_leader_lock_held",
			"1 while this worker holds the KCL 3.x Leader lock."),
		workerMetric: d("multilangd_worker_metric",
			"Latest value of each metric in the last WorkerMetricStats item this worker wrote, by short name (C = CPU %); -1: no capture in that period.", "metric"),
		handoffs: d("multilangd_handoffs_in_progress",
			"Graceful hand-offs in progress of leases this worker holds (checkpointOwner = this worker)."),
		lamLastRun: d("multilangd_lam_last_run_timestamp_seconds",
			"Time of the last LeaseAssignmentManager run on this worker (as the 3.x leader)."),
		lamLeases: d("multilangd_lam_total_leases",
			"Leases the last LeaseAssignmentManager run saw."),
		lamWorkers: d("multilangd_lam_active_workers",
			"Active workers (valid, unexpired, not failing worker metrics) the last LeaseAssignmentManager run saw."),
		lamExpired: d("multilangd_lam_expired_leases",
			"Expired or unassigned leases the last LeaseAssignmentManager run found."),
		lamAssign: d("multilangd_lam_assignments",
			"Lease assignments (W8 and W9) the last LeaseAssignmentManager run made."),
		lamFailed: d("multilangd_lam_failed_assignments",
			"Lease assignments that failed in the last LeaseAssignmentManager run."),
		lamAssignTotal: d("multilangd_lam_assignments_total",
			"Lease assignments (W8 and W9) of every LeaseAssignmentManager run this worker led since it entered KCL 3.x mode."),
		lamFailedTotal: d("multilangd_lam_failed_assignments_total",
			"Failed lease assignments of every LeaseAssignmentManager run this worker led since it entered KCL 3.x mode."),
	}
}

func (c *threeXCollector) Describe(ch chan<- *prometheus.Desc) {
	if c.src.version != nil {
		ch <- c.version
		ch <- c.workerMetric
	}
	if c.src.lock != nil {
		ch <- c.lockHeld
	}
	if c.src.handoffs != nil {
		ch <- c.handoffs
	}
	if c.src.lam != nil {
		for _, d := range []*prometheus.Desc{c.lamLastRun, c.lamLeases, c.lamWorkers, c.lamExpired, c.lamAssign, c.lamFailed} {
			ch <- d
		}
	}
	if c.src.lamTotals != nil {
		ch <- c.lamAssignTotal
		ch <- c.lamFailedTotal
	}
}

func (c *threeXCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if c.src.version != nil {
		if v := c.src.version.Version(); v != "" {
			gauge(c.version, 1, v)
		}
		c.collectWorkerMetrics(gauge)
	}
	if c.src.lock != nil {
		_, held, _ := c.src.lock.Observed()
		gauge(c.lockHeld, boolGauge(held))
	}
	if c.src.handoffs != nil {
		gauge(c.handoffs, float64(c.src.handoffs()))
	}
	if c.src.lam != nil {
		if f, ok := c.src.lam(); ok {
			gauge(c.lamLastRun, float64(f.LastRun.UnixNano())/1e9)
			gauge(c.lamLeases, float64(f.TotalLeases))
			gauge(c.lamWorkers, float64(f.ActiveWorkers))
			gauge(c.lamExpired, float64(f.ExpiredLeases))
			gauge(c.lamAssign, float64(f.Assignments))
			gauge(c.lamFailed, float64(f.FailedAssignments))
		}
	}
	if c.src.lamTotals != nil {
		if t, ok := c.src.lamTotals(); ok {
			ch <- prometheus.MustNewConstMetric(c.lamAssignTotal, prometheus.CounterValue, float64(t.Assignments))
			ch <- prometheus.MustNewConstMetric(c.lamFailedTotal, prometheus.CounterValue, float64(t.FailedAssignments))
		}
	}
}

// collectWorkerMetrics reports the last published worker metrics, only
// while the client version publishes them (lease.PublishesWorkerMetrics).
func (c *threeXCollector) collectWorkerMetrics(gauge func(*prometheus.Desc, float64, ...string)) {
	if !lease.PublishesWorkerMetrics(c.src.version.Version()) {
		return
	}
	last := c.src.version.LastReported()
	names := make([]string, 0, len(last))
	for name := range last {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		gauge(c.workerMetric, last[name], name)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// handoffSource is the graceful hand-offs in progress of the leases this
// worker holds (lease.Coordinator).
type handoffSource interface {
	Handoffs() []lease.HandoffStatus
}

// threeXGaugeSources wires the KCL 3.x gauges to the daemon's parts: the
// client version and worker metrics from the Migration, the hand-offs from
// the coordinator, the lock from the decider x starts (when this build has
// one), the LAM figures from x's assignment manager.
func threeXGaugeSources(m clientVersionSource, h handoffSource, x *threeX) threeXSources {
	src := threeXSources{version: m, handoffs: func() int { return len(h.Handoffs()) },
		lam:       func() (lamFigures, bool) { return lamFiguresOf(x.Status()) },
		lamTotals: func() (lamTotals, bool) { return lamTotalsOf(x.Status()) }}
	if x.newDecider != nil {
		obs := &lockObserver{}
		x.newDecider = obs.wrap(x.newDecider)
		src.lock = obs
	}
	return src
}

// lamFiguresOf maps the assignment manager's status; ok only while this
// worker leads and has run it (a follower's or a former leader's figures
// are not shown).
func lamFiguresOf(st lam.Status, running bool) (lamFigures, bool) {
	r := st.LastRun
	if !running || !st.Leading || r.At.IsZero() {
		return lamFigures{}, false
	}
	return lamFigures{LastRun: r.At, TotalLeases: r.TotalLeases, ActiveWorkers: r.NumWorkers, ExpiredLeases: r.ExpiredLeases,
		Assignments: r.Assigned + r.HandoffsStarted, FailedAssignments: r.FailedAssignmentCount}, true
}

// lamTotalsOf maps the running manager's totals; ok false in 2.x mode (no
// manager).
func lamTotalsOf(st lam.Status, running bool) (lamTotals, bool) {
	if !running {
		return lamTotals{}, false
	}
	return lamTotals{Assignments: st.TotalAssigned + st.TotalHandoffsStarted, FailedAssignments: st.TotalFailedAssignments}, true
}

// lockObserver is the Leader lock as the current decider sees it: threeX
// starts a new decider each time 3.x mode is entered, and wrap keeps the
// latest one.
type lockObserver struct {
	mu  sync.Mutex
	cur leaderLockSource
}

func (o *lockObserver) wrap(newDecider func() (lockDecider, error)) func() (lockDecider, error) {
	return func() (lockDecider, error) {
		dec, err := newDecider()
		if src, ok := dec.(leaderLockSource); ok && err == nil {
			o.mu.Lock()
			o.cur = src
			o.mu.Unlock()
		}
		return dec, err
	}
}

// Observed is the current decider's view; nobody holds the lock for this
// worker before a decider ran.
func (o *lockObserver) Observed() (owner string, held bool, since time.Time) {
	o.mu.Lock()
	cur := o.cur
	o.mu.Unlock()
	if cur == nil {
		return "", false, time.Time{}
	}
	return cur.Observed()
}
