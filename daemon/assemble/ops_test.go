package assemble

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
)

// A dependency is unreachable once it has not answered for longer than the
// threshold; any answer (a failed condition included) resets it, our own
// cancellation says nothing.
func TestReachability(t *testing.T) {
	r := reachability{name: "lease table"}
	r.observe(nil)
	if err := r.check(0); err != nil {
		t.Fatalf("after an answer: %v", err)
	}
	r.observe(errors.New("dial tcp: connection refused"))
	time.Sleep(2 * time.Millisecond)
	if err := r.check(time.Millisecond); err == nil {
		t.Fatal("no error after the threshold without an answer")
	}
	if err := r.check(time.Hour); err != nil {
		t.Fatalf("error before the threshold: %v", err)
	}
	r.observe(lease.ErrConditionFailed)
	if err := r.check(0); err != nil {
		t.Fatalf("a failed condition is an answer: %v", err)
	}
}

func load(t *testing.T, body string) *properties.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.properties")
	if err := os.WriteFile(p, []byte("applicationName = app\nstreamName = s\nAwsCredentialsProvider = DefaultCredentialsProvider\n"+body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := properties.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A reload applies the child's command and settings; every other changed
// key is reported as fixed.
func TestDiffSettings(t *testing.T) {
	old := load(t, "executableName = a.py\nfailoverTimeMillis = 10000\n")
	new := load(t, "executableName = b.py\nfailoverTimeMillis = 20000\ntimeoutInSeconds = 5\n")
	applied, fixed := diffSettings(old, new)
	slices.Sort(applied)
	if !slices.Equal(applied, []string{"executableName", "timeoutInSeconds"}) {
		t.Fatalf("applied = %v", applied)
	}
	if !slices.Equal(fixed, []string{"failoverTimeMillis"}) {
		t.Fatalf("fixed = %v", fixed)
	}
	if a, f := diffSettings(old, old); len(a)+len(f) != 0 {
		t.Fatalf("no change reported as %v %v", a, f)
	}
}
