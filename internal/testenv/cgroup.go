package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CPUCgroup is a CPU-accounting cgroup of its own for one worker process
// and its children, so that the worker's measured CPU utilisation
// (workermetrics reads the cgroup of the daemon) is its own and not the
// whole machine's — as when each worker runs in its own container.
type CPUCgroup struct {
	// Dir is the cgroup directory.
	Dir string
}

// NewCPUCgroup creates the cgroup name (made unique per test process) under
// the cgroup v2 unified hierarchy when it carries cpu.stat, else under the
// cgroup v1 cpuacct hierarchy, and removes it at the end of the test. The
// test fails when neither can be created (the fleet tests need it to load
// one worker only).
func NewCPUCgroup(t testing.TB, name string) *CPUCgroup {
	t.Helper()
	leaf := fmt.Sprintf("multilangd-test-%d-%s", os.Getpid(), name)
	var parents []string
	if own, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, line := range strings.Split(string(own), "\n") {
			if rest, ok := strings.CutPrefix(line, "0::"); ok {
				dir := filepath.Join("/sys/fs/cgroup", rest)
				if _, err := os.Stat(filepath.Join(dir, "cpu.stat")); err == nil {
					parents = append(parents, dir)
				}
			}
			if parts := strings.SplitN(line, ":", 3); len(parts) == 3 {
				for _, c := range strings.Split(parts[1], ",") {
					if c == "cpuacct" {
						parents = append(parents, filepath.Join("/sys/fs/cgroup", parts[1], parts[2]))
					}
				}
			}
		}
	}
	var errs []string
	for _, p := range parents {
		dir := filepath.Join(p, leaf)
		if err := os.Mkdir(dir, 0o755); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		cg := &CPUCgroup{Dir: dir}
		t.Cleanup(cg.remove)
		return cg
	}
	t.Fatalf("cannot create a CPU cgroup for worker %s (needs a writable cgroup v2 or v1 cpuacct hierarchy, e.g. root): tried %v: %v",
		name, parents, errs)
	return nil
}

// Wrap returns argv run through a shell that first moves itself into the
// cgroup and then execs argv, so the process and all its children are
// accounted there from their first instruction.
func (c *CPUCgroup) Wrap(argv []string) []string {
	return append([]string{"/bin/sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, c.Dir}, argv...)
}

// remove deletes the cgroup once its processes are gone (the test's
// cleanups kill them).
func (c *CPUCgroup) remove() {
	for i := 0; i < 50; i++ {
		if err := os.Remove(c.Dir); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
