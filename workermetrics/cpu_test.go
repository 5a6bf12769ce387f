package workermetrics

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

type fakeCPU struct {
	usedV  time.Duration
	limitV float64
	err    error
}

func (f *fakeCPU) used() (time.Duration, error) { return f.usedV, f.err }
func (f *fakeCPU) limit() (float64, error)      { return f.limitV, nil }
func (f *fakeCPU) name() string                 { return "fake" }

// TestCPUMeter: the first capture is 0 (Java returns 0 with no previous
// sample), then CPU time / wall time / limit, capped at 100.
func TestCPUMeter(t *testing.T) {
	src := &fakeCPU{limitV: 2}
	m := newCPUMeter(src)
	t0 := time.Unix(1000, 0)
	if v, err := m.capture(t0); err != nil || v != 0 {
		t.Fatalf("first capture = %v, %v", v, err)
	}
	src.usedV = time.Second // 1 core for 1 s of 2 cores
	if v, _ := m.capture(t0.Add(time.Second)); v != 50 {
		t.Fatalf("capture = %v, want 50", v)
	}
	src.usedV += 10 * time.Second
	if v, _ := m.capture(t0.Add(2 * time.Second)); v != 100 {
		t.Fatalf("capture = %v, want capped 100", v)
	}
	src.usedV -= time.Second // a reaped child moved time around
	if v, _ := m.capture(t0.Add(3 * time.Second)); v != 0 {
		t.Fatalf("capture = %v, want 0 for a negative delta", v)
	}
	src.err = errors.New("gone")
	if _, err := m.capture(t0.Add(4 * time.Second)); err == nil {
		t.Fatal("read error not reported")
	}
}

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDetectCgroupV2: the worker's own cgroup (from /proc/<pid>/cgroup),
// cpu.stat usage_usec and cpu.max quota/period, or the cpuset for "max".
func TestDetectCgroupV2(t *testing.T) {
	root := t.TempDir()
	write(t, root, "proc/42/cgroup", "0::/system.slice/multilangd.service\n")
	write(t, root, "proc/42/stat", "42 (x) S 1 0 0 0 0 0 0 0 0 0 5 5 0 0")
	dir := "sys/fs/cgroup/system.slice/multilangd.service/"
	write(t, root, dir+"cpu.stat", "usage_usec 2500000\nuser_usec 2000000\n")
	write(t, root, dir+"cpu.max", "150000 100000\n")
	src, err := detectCPUSource(root, 42)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.(cgroupV2); !ok {
		t.Fatalf("source = %s", src.name())
	}
	if u, err := src.used(); err != nil || u != 2500*time.Millisecond {
		t.Fatalf("used = %v, %v", u, err)
	}
	if l, err := src.limit(); err != nil || l != 1.5 {
		t.Fatalf("limit = %v, %v", l, err)
	}
	write(t, root, dir+"cpu.max", "max 100000\n")
	write(t, root, dir+"cpuset.cpus.effective", "0-3,6\n")
	if l, err := src.limit(); err != nil || l != 5 {
		t.Fatalf("limit = %v, %v; want 5 from the cpuset", l, err)
	}
}

// TestDetectCgroupV1: cpuacct.usage (ns) and cfs quota/period.
func TestDetectCgroupV1(t *testing.T) {
	root := t.TempDir()
	write(t, root, "proc/7/cgroup", "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
	write(t, root, "proc/7/stat", "7 (x) S 1 0 0 0 0 0 0 0 0 0 5 5 0 0")
	write(t, root, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpuacct.usage", "3000000000\n")
	write(t, root, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "50000\n")
	write(t, root, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
	src, err := detectCPUSource(root, 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.(cgroupV1); !ok {
		t.Fatalf("source = %s", src.name())
	}
	if u, _ := src.used(); u != 3*time.Second {
		t.Fatalf("used = %v", u)
	}
	if l, _ := src.limit(); l != 0.5 {
		t.Fatalf("limit = %v", l)
	}
	write(t, root, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n")
	if l, _ := src.limit(); l != float64(runtime.NumCPU()) {
		t.Fatalf("unlimited = %v", l)
	}
}

// TestProcTreeFallback: with no cgroup accounting the daemon's process tree
// is summed: its own and its live descendants' utime+stime+cutime+cstime,
// not unrelated processes'. Command names with spaces and ')' parse.
func TestProcTreeFallback(t *testing.T) {
	root := t.TempDir()
	write(t, root, "proc/10/stat", "10 (multilangd) S 1 0 0 0 0 0 0 0 0 0 100 50 7 3 20")
	write(t, root, "proc/11/stat", "11 (my child) x) R 10 0 0 0 0 0 0 0 0 0 200 0 0 0 20")
	write(t, root, "proc/12/stat", "12 (grandchild) R 11 0 0 0 0 0 0 0 0 0 40 10 0 0 20")
	write(t, root, "proc/99/stat", "99 (other) R 1 0 0 0 0 0 0 0 0 0 9999 0 0 0 20")
	src, err := detectCPUSource(root, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.(*procTree); !ok {
		t.Fatalf("source = %s", src.name())
	}
	u, err := src.used()
	if want := 410 * 10 * time.Millisecond; err != nil || u != want {
		t.Fatalf("used = %v, %v; want %v", u, err, want)
	}
}

// TestProcTreeCountsRealChild: on the real procfs a busy child process of
// this test shows up in the tree's CPU time.
func TestProcTreeCountsRealChild(t *testing.T) {
	p := &procTree{root: "/", pid: os.Getpid()}
	before, err := p.used()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		after, err := p.used()
		if err != nil {
			t.Fatal(err)
		}
		if after-before >= 200*time.Millisecond {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child CPU not seen: tree used %v → %v", before, after)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStatsCompute is Java WorkerMetricStatsManager.computeMetrics: the
// average of the captures since the last report, 6 decimals half up; −1 when
// nothing was captured; at most maxCount values, oldest dropped.
func TestStatsCompute(t *testing.T) {
	src := &fakeCPU{limitV: 1}
	s := newStats(newCPUMeter(src), 3, nil)
	t0 := time.Unix(0, 0)
	s.capture(t0) // 0
	src.usedV = 333333 * time.Microsecond
	s.capture(t0.Add(time.Second)) // 33.3333
	got := s.compute()["C"]
	if len(got) != 1 || got[0] != 16.666650 {
		t.Fatalf("compute = %v, want [16.66665]", got)
	}
	got = s.compute()["C"]
	if len(got) != 2 || got[1] != -1 {
		t.Fatalf("compute without captures = %v, want a trailing -1", got)
	}
	s.capture(t0.Add(2 * time.Second))
	s.compute()
	s.capture(t0.Add(3 * time.Second))
	got = s.compute()["C"]
	if len(got) != 3 || got[0] != -1 {
		t.Fatalf("history = %v, want 3 values with the oldest dropped", got)
	}
	if opr := s.operatingRange(); len(opr["C"]) != 1 || opr["C"][0] != 100 {
		t.Fatalf("operating range = %v", opr)
	}
	none := newStats(nil, 3, nil)
	if len(none.compute()) != 0 || len(none.operatingRange()) != 0 {
		t.Fatal("with no CPU metric the entry must be throughput-only (empty sts and opr)")
	}
	if roundHalfUp6(0.0000005) != 0.000001 || roundHalfUp6(1.23456749) != 1.234567 {
		t.Fatal("rounding")
	}
}
