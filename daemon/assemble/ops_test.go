package assemble

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

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

// A reload asked for during start-up waits until the scheduler runs (no
// READY=1 before the daemon is ready), then is applied.
func TestReloadWaitsUntilRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.properties")
	body := "executableName = /bin/cat\nstreamName = s\napplicationName = a\nAwsCredentialsProvider = DefaultCredentialsProvider\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := properties.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	var running atomic.Bool
	d := &assembled{cfg: cfg}
	reloads := make(chan *properties.Config)
	stop := d.applyReloads(context.Background(), reloads, func() error {
		if running.Load() {
			return nil
		}
		return errors.New("starting")
	}, nil, zap.New(core))
	defer stop()
	select {
	case reloads <- cfg:
		t.Fatal("reload taken while the scheduler is not running")
	case <-time.After(300 * time.Millisecond):
	}
	running.Store(true)
	select {
	case reloads <- cfg:
	case <-time.After(30 * time.Second):
		t.Fatal("reload not taken once running")
	}
	stop()
	if logs.FilterMessage("configuration re-read; nothing to apply").Len() != 1 {
		t.Fatalf("reload not applied: %v", logs.All())
	}
}
