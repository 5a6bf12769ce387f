// Package workermetrics publishes this worker's KCL 3.x WorkerMetricStats
// item (Java WorkerMetricStatsManager, WorkerMetricStatsReporter,
// WorkerMetricStatsDAO): the CPU utilisation of the whole worker — the
// daemon and the record processors it spawned — averaged per reporting
// period, so that a Java KCL 3.x fleet sees this worker as a 3.x-compliant
// member (docs/compatibility.md "KCL 3.x").
package workermetrics

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// cpuSource reads the cumulative CPU time the worker has used and the
// number of CPUs it may use.
type cpuSource interface {
	// used is the cumulative CPU time consumed so far.
	used() (time.Duration, error)
	// limit is the number of CPUs available (a fraction for a quota).
	limit() (float64, error)
	// name says where the figures come from (logs, tests).
	name() string
}

// cpuMeter turns cumulative CPU time into a utilisation percentage between
// two captures, as Java Cgroupv2CpuWorkerMetric.calculateCpuUsage: the first
// capture has no previous value and reports 0; the value is capped at 100.
type cpuMeter struct {
	src       cpuSource
	lim       float64
	lastUsed  time.Duration
	lastWall  time.Time
	hasSample bool
}

func newCPUMeter(src cpuSource) *cpuMeter { return &cpuMeter{src: src} }

// capture returns the utilisation in percent since the previous capture.
func (m *cpuMeter) capture(now time.Time) (float64, error) {
	if m.lim <= 0 {
		l, err := m.src.limit()
		if err != nil {
			return 0, err
		}
		if l <= 0 {
			return 0, fmt.Errorf("cpu limit from %s is %v", m.src.name(), l)
		}
		m.lim = l
	}
	used, err := m.src.used()
	if err != nil {
		return 0, err
	}
	prevUsed, prevWall, had := m.lastUsed, m.lastWall, m.hasSample
	m.lastUsed, m.lastWall, m.hasSample = used, now, true
	if !had {
		return 0, nil
	}
	wall := now.Sub(prevWall)
	if wall <= 0 {
		return 0, nil
	}
	// A child reaped between two captures can move its time around
	// (procfs fallback): never report a negative figure.
	delta := max(used-prevUsed, 0)
	cores := float64(delta) / float64(wall)
	return min(100, cores/m.lim*100), nil
}

// detectCPUSource picks the worker's cgroup v2, then cgroup v1, then procfs
// (the daemon's process tree), mirroring the order of Java
// WorkerMetricsSelector (Cgroupv2CpuWorkerMetric, Cgroupv1CpuWorkerMetric,
// LinuxCpuWorkerMetric) but measuring the worker's own cgroup, which holds the
// daemon and every child it spawned.
func detectCPUSource(root string, pid int) (cpuSource, error) {
	cg, err := os.ReadFile(filepath.Join(root, "proc", strconv.Itoa(pid), "cgroup"))
	if err == nil {
		if s := cgroupV2Source(root, string(cg)); s != nil {
			return s, nil
		}
		if s := cgroupV1Source(root, string(cg)); s != nil {
			return s, nil
		}
	}
	if _, err := os.Stat(filepath.Join(root, "proc", strconv.Itoa(pid), "stat")); err != nil {
		return nil, fmt.Errorf("no cgroup CPU accounting and no procfs: %w", err)
	}
	return &procTree{root: root, pid: pid}, nil
}

// cgroupV2 reads cpu.stat usage_usec and cpu.max of the worker's cgroup.
type cgroupV2 struct{ dir string }

func cgroupV2Source(root, procCgroup string) cpuSource {
	for _, line := range strings.Split(procCgroup, "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			dir := filepath.Join(root, "sys/fs/cgroup", rest)
			if _, err := os.Stat(filepath.Join(dir, "cpu.stat")); err == nil {
				return cgroupV2{dir: dir}
			}
		}
	}
	return nil
}

func (c cgroupV2) name() string { return "cgroup v2 " + c.dir }

func (c cgroupV2) used() (time.Duration, error) {
	f, err := os.Open(filepath.Join(c.dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "usage_usec "); ok {
			us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: usage_usec %q: %w", f.Name(), v, err)
			}
			return time.Duration(us) * time.Microsecond, nil
		}
	}
	return 0, fmt.Errorf("%s: no usage_usec line", f.Name())
}

// limit is cpu.max's quota/period, or the effective cpuset ("max").
func (c cgroupV2) limit() (float64, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "cpu.max"))
	if err != nil {
		// The root cgroup has no cpu.max: all CPUs.
		return cpusetOrNumCPU(filepath.Join(c.dir, "cpuset.cpus.effective")), nil
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, fmt.Errorf("%s: unexpected %q", filepath.Join(c.dir, "cpu.max"), b)
	}
	if f[0] == "max" {
		return cpusetOrNumCPU(filepath.Join(c.dir, "cpuset.cpus.effective")), nil
	}
	return quota(f[0], f[1])
}

// cgroupV1 reads cpuacct.usage (ns) and cpu.cfs_quota_us / cfs_period_us.
type cgroupV1 struct{ acct, cpu string }

func cgroupV1Source(root, procCgroup string) cpuSource {
	var acct, cpu string
	for _, line := range strings.Split(procCgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			switch ctl {
			case "cpuacct":
				acct = filepath.Join(root, "sys/fs/cgroup", parts[1], parts[2])
			case "cpu":
				cpu = filepath.Join(root, "sys/fs/cgroup", parts[1], parts[2])
			}
		}
	}
	if acct == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(acct, "cpuacct.usage")); err != nil {
		return nil
	}
	return cgroupV1{acct: acct, cpu: cpu}
}

func (c cgroupV1) name() string { return "cgroup v1 " + c.acct }

func (c cgroupV1) used() (time.Duration, error) {
	ns, err := readInt(filepath.Join(c.acct, "cpuacct.usage"))
	return time.Duration(ns), err
}

func (c cgroupV1) limit() (float64, error) {
	if c.cpu != "" {
		q, qerr := os.ReadFile(filepath.Join(c.cpu, "cpu.cfs_quota_us"))
		p, perr := os.ReadFile(filepath.Join(c.cpu, "cpu.cfs_period_us"))
		if qerr == nil && perr == nil && strings.TrimSpace(string(q)) != "-1" {
			return quota(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
		}
	}
	return float64(runtime.NumCPU()), nil
}

// procTree sums utime+stime (and the reaped children's cutime+cstime) of
// the daemon and every live descendant from procfs.
type procTree struct {
	root string
	pid  int
}

func (p *procTree) name() string { return "procfs process tree of pid " + strconv.Itoa(p.pid) }

func (p *procTree) limit() (float64, error) { return float64(runtime.NumCPU()), nil }

func (p *procTree) used() (time.Duration, error) {
	stats, err := p.readAll()
	if err != nil {
		return 0, err
	}
	children := map[int][]int{}
	for pid, st := range stats {
		children[st.ppid] = append(children[st.ppid], pid)
	}
	var ticks int64
	queue := []int{p.pid}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		st, ok := stats[pid]
		if !ok {
			continue
		}
		ticks += st.ticks
		queue = append(queue, children[pid]...)
	}
	if _, ok := stats[p.pid]; !ok {
		return 0, fmt.Errorf("pid %d not in %s/proc", p.pid, p.root)
	}
	// USER_HZ is 100 on every Linux ABI Go supports.
	return time.Duration(ticks) * (time.Second / 100), nil
}

type procStat struct {
	ppid  int
	ticks int64
}

func (p *procTree) readAll() (map[int]procStat, error) {
	ents, err := os.ReadDir(filepath.Join(p.root, "proc"))
	if err != nil {
		return nil, err
	}
	out := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(p.root, "proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		if st, err := parseProcStat(string(b)); err == nil {
			out[pid] = st
		}
	}
	return out, nil
}

// parseProcStat reads ppid (field 4) and utime, stime, cutime, cstime
// (fields 14–17) of /proc/<pid>/stat; the command (field 2) may hold spaces
// and parentheses, so fields are counted after its last ')'.
func parseProcStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, errors.New("no ')' in stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state).
	if len(f) < 15 {
		return procStat{}, errors.New("short stat")
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, err
	}
	var ticks int64
	for _, k := range f[11:15] {
		v, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return procStat{}, err
		}
		ticks += v
	}
	return procStat{ppid: ppid, ticks: ticks}, nil
}

func quota(q, p string) (float64, error) {
	qv, err := strconv.ParseFloat(q, 64)
	if err != nil {
		return 0, fmt.Errorf("cpu quota %q: %w", q, err)
	}
	pv, err := strconv.ParseFloat(p, 64)
	if err != nil || pv <= 0 {
		return 0, fmt.Errorf("cpu period %q: %v", p, err)
	}
	return qv / pv, nil
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// cpusetOrNumCPU counts the CPUs of a cpuset list ("0-3,6"), falling back to
// runtime.NumCPU (Java Cgroupv2CpuWorkerMetric uses the effective cpuset).
func cpusetOrNumCPU(path string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return float64(runtime.NumCPU())
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		if !isRange {
			if err1 == nil {
				n++
			}
			continue
		}
		z, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && z >= a {
			n += z - a + 1
		}
	}
	if n == 0 {
		return float64(runtime.NumCPU())
	}
	return float64(n)
}
