package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// A Ctrl-C in a terminal running the npm package's launcher
// (dist/npm/bin/multilangd.js) reaches the launcher and the daemon (one
// foreground process group), and the launcher forwards it: the daemon takes
// that as one graceful stop (exit 0, leases released), not as the second
// signal that exits at once.
func TestNpmLauncherCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon against the emulators")
	}
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 2)
	ids := e.put(putOptions{n: 100})
	launcher := npmPackage(t)
	out := filepath.Join(e.dir, "out.jsonl")
	d := e.startCommand("npm-launcher", out, []string{"node", launcher, "-p", e.props("app", nil), "--log-level", "debug"})
	waitDeliveredOnce(t, d, out, ids, 2, 120*time.Second)
	if err := syscall.Kill(-d.cmd.Process.Pid, syscall.SIGINT); err != nil { // Ctrl-C to the group
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(40 * time.Second):
		t.Fatal("no exit within 40s of Ctrl-C")
	}
	logText, _ := os.ReadFile(d.log)
	if code := d.cmd.ProcessState.ExitCode(); code != 0 || strings.Contains(string(logText), "second signal received") {
		t.Fatalf("exit %d after one Ctrl-C through the launcher, want 0 (one graceful stop)", code)
	}
	for _, l := range e.leases() {
		if l.Owner != "" {
			t.Errorf("lease %s still owned by %q after a graceful stop", l.Key, l.Owner)
		}
	}
}

// npmPackage lays out dist/npm with this build's binary for this platform
// (as dist/build.sh does) and returns the launcher's path.
func npmPackage(t *testing.T) string {
	t.Helper()
	pkg := t.TempDir()
	for _, f := range []string{"package.json", "index.js", filepath.Join("bin", "multilangd.js")} {
		b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "dist", "npm", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(pkg, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkg, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	arch := map[string]string{"amd64": "x64", "arm64": "arm64"}[runtime.GOARCH]
	vendor := filepath.Join(pkg, "vendor", runtime.GOOS+"-"+arch)
	if err := os.MkdirAll(vendor, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binDaemon, filepath.Join(vendor, "multilangd")); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(pkg, "bin", "multilangd.js")
}
