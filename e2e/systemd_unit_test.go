package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/multilangd/multilangd/internal/testenv"
)

// maxExposure is the highest `systemd-analyze security` exposure score the
// shipped unit may have (docs/operations.md#systemd).
const maxExposure = 4.0

// The shipped unit verifies cleanly and its sandbox scores at most
// maxExposure. systemd-analyze comes from Debian's systemd package (make
// deps installs it); without it the test fails.
func TestSystemdUnitHardened(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze not found (apt-get install systemd; make deps does): %v", err)
	}
	unit, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "deploy", "systemd", "multilangd.service"))
	if err != nil {
		t.Fatal(err)
	}
	// The graceful stop asks each child (shutdownRequested) before it ends;
	// KillMode=control-group would SIGTERM the children at the same moment.
	if !regexp.MustCompile(`(?m)^KillMode=mixed$`).Match(unit) {
		t.Fatal("the unit must set KillMode=mixed: SIGTERM to multilangd only, SIGKILL to what is left")
	}
	// verify checks that ExecStart exists: point it at the binary under test.
	dir := t.TempDir()
	path := filepath.Join(dir, "multilangd@app.service")
	body := strings.ReplaceAll(string(unit), "/usr/local/bin/multilangd", binDaemon)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=true", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure level %.1f", score)
	if score > maxExposure {
		t.Fatalf("exposure level %.1f > %.1f:\n%s", score, maxExposure, out)
	}
}
