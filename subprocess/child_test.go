package subprocess

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/record"
)

// cpCall is one Checkpointer invocation.
type cpCall struct {
	seq *string
	sub *int64
}

// fakeCheckpointer records calls and returns err.
type fakeCheckpointer struct {
	mu    sync.Mutex
	calls []cpCall
	err   error
}

func (f *fakeCheckpointer) Checkpoint(_ context.Context, seq *string, sub *int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, cpCall{seq, sub})
	return f.err
}

func (f *fakeCheckpointer) n() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// namedErr is a checkpoint error carrying a Java exception name.
type namedErr string

func (e namedErr) Error() string         { return "checkpoint failed: " + string(e) }
func (e namedErr) ExceptionName() string { return string(e) }

// transcript collects the trace lines of one child.
type transcript struct {
	mu       sync.Mutex
	sent     []string
	received []string
}

func (tr *transcript) hook(out bool, line []byte) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if out {
		tr.sent = append(tr.sent, string(line))
	} else if len(bytes.TrimSpace(line)) > 0 {
		tr.received = append(tr.received, string(line))
	}
}

func (tr *transcript) get() (sent, received []string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.sent...), append([]string(nil), tr.received...)
}

type fakeOpts struct {
	env     []string
	timeout time.Duration
	grace   time.Duration
	level   zapcore.Level
	stderr  *countingWriter
}

// startFake starts the scripted child scenario and registers a clean-up
// that closes it and checks that no process of its group is left.
func startFake(t *testing.T, scenario string, o fakeOpts) (*Child, *transcript, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	tr := &transcript{}
	cfg := Config{
		Command:            fakeCommand(t),
		ShardID:            "shardId-000000000007",
		Timeout:            o.timeout,
		ChildShutdownGrace: o.grace,
		StderrLevel:        o.level,
		Logger:             zap.New(core),
		// GORACE: a race-built child otherwise sleeps 1s at exit.
		Env:   append([]string{fakeChildEnv + "=" + scenario, "GORACE=atexit_sleep_ms=0"}, o.env...),
		trace: tr.hook,
	}
	if cfg.ChildShutdownGrace == 0 {
		cfg.ChildShutdownGrace = 2 * time.Second
	}
	if o.stderr != nil {
		cfg.StderrPassthrough = o.stderr
	}
	c, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		_ = c.Close(context.Background())
		assertGone(t, c.PID())
	})
	return c, tr, logs
}

// initThenLeaseLost runs a child's whole session: initialize, then leaseLost.
func initThenLeaseLost(t *testing.T, c *Child) {
	t.Helper()
	ctx := context.Background()
	if err := c.Initialize(ctx, "s", ptr("TRIM_HORIZON"), ptr(int64(0))); err != nil {
		t.Fatal(err)
	}
	if err := c.LeaseLost(ctx); err != nil {
		t.Fatal(err)
	}
}

// assertGone checks /proc: the child is reaped and no live process remains
// in its process group.
func assertGone(t *testing.T, pid int) {
	t.Helper()
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("child %d still in /proc (not reaped)", pid)
	}
	if groupAlive(pid) {
		t.Errorf("a live process is left in process group %d", pid)
	}
}

type countingWriter struct{ n atomic.Int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}

func ptr[T any](v T) *T { return &v }

func testRecords(n, size int) []record.Record {
	recs := make([]record.Record, n)
	data := bytes.Repeat([]byte("abcdefghij"), size/10+1)[:size]
	for i := range recs {
		recs[i] = record.Record{
			Data:                        data,
			PartitionKey:                "pk-" + strconv.Itoa(i),
			SequenceNumber:              fmt.Sprintf("4959033827149025660855969253836157109592157598913658%04d", i),
			ApproximateArrivalTimestamp: time.UnixMilli(1700000000123 + int64(i)),
		}
	}
	return recs
}

func TestLifecycleTranscript(t *testing.T) {
	c, tr, logs := startFake(t, "good", fakeOpts{env: []string{"FAKE_CHECKPOINTS=2"}})
	ctx := context.Background()
	if err := c.Initialize(ctx, "shardId-000000000007", ptr("TRIM_HORIZON"), ptr(int64(0))); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	cp := &fakeCheckpointer{}
	recs := []record.Record{{Data: []byte("hello"), PartitionKey: "pk1", SequenceNumber: "49590338271490256608559692538361571095921575989136588898", ApproximateArrivalTimestamp: time.UnixMilli(1700000000123)}}
	if err := c.ProcessRecords(ctx, recs, ptr(int64(1234)), cp); err != nil {
		t.Fatalf("ProcessRecords: %v", err)
	}
	endCP := &fakeCheckpointer{err: namedErr("ShutdownException")}
	if err := c.ShardEnded(ctx, endCP); err != nil {
		t.Fatalf("ShardEnded: %v", err)
	}
	if err := c.LeaseLost(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("LeaseLost after ShardEnded = %v, want ErrClosed", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sent, received := tr.get()
	wantSent := []string{
		`{"action":"initialize","shardId":"shardId-000000000007","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}` + "\n",
		`{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"InvalidStateException"}` + "\n",
		`{"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000123,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":1234}` + "\n",
		`{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":null,"error":null}` + "\n",
		`{"action":"checkpoint","sequenceNumber":"2","subSequenceNumber":null,"error":null}` + "\n",
		`{"action":"shardEnded"}` + "\n",
		`{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ShutdownException"}` + "\n",
	}
	wantReceived := []string{
		`{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}`,
		`{"action":"status","responseFor":"initialize"}`,
		`{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":null}`,
		`{"action":"checkpoint","sequenceNumber":"2","subSequenceNumber":null}`,
		`{"action":"status","responseFor":"processRecords"}`,
		`{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}`,
		`{"action":"status","responseFor":"shardEnded"}`,
	}
	assertLines(t, "sent", sent, wantSent)
	assertLines(t, "received", received, wantReceived)
	if len(cp.calls) != 2 || *cp.calls[1].seq != "2" || cp.calls[1].sub != nil {
		t.Errorf("processRecords checkpoints = %+v", cp.calls)
	}
	if len(endCP.calls) != 1 || endCP.calls[0].seq != nil {
		t.Errorf("shardEnded checkpoints = %+v", endCP.calls)
	}
	// stderr is logged at info with the shard id.
	found := false
	for _, e := range logs.FilterMessage("child stderr").All() {
		if e.Level == zapcore.InfoLevel && e.ContextMap()["shardId"] == "shardId-000000000007" &&
			e.ContextMap()["line"] == "processed 1 records" {
			found = true
		}
	}
	if !found {
		t.Errorf("stderr line not logged at info with shardId; logs: %v", logs.All())
	}
}

func assertLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d lines, want %d:\n%s", what, len(got), len(want), strings.Join(got, "\n"))
		return
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s line %d:\n got %q\nwant %q", what, i, got[i], want[i])
		}
	}
}

func TestShutdownRequestedThenLeaseLost(t *testing.T) {
	c, tr, _ := startFake(t, "good", fakeOpts{})
	ctx := context.Background()
	if err := c.Initialize(ctx, "s", nil, nil); err != nil {
		t.Fatal(err)
	}
	cp := &fakeCheckpointer{err: errors.New("dynamo unavailable")}
	if err := c.ShutdownRequested(ctx, cp); err != nil {
		t.Fatal(err)
	}
	if err := c.LeaseLost(ctx); err != nil {
		t.Fatal(err)
	}
	sent, _ := tr.get()
	want := []string{
		`{"action":"initialize","shardId":"s","sequenceNumber":null,"subSequenceNumber":null}` + "\n",
		`{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"InvalidStateException"}` + "\n",
		`{"action":"shutdownRequested"}` + "\n",
		`{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"KinesisClientLibDependencyException"}` + "\n",
		`{"action":"leaseLost"}` + "\n",
		`{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"InvalidStateException"}` + "\n",
	}
	assertLines(t, "sent", sent, want)
}

func TestThousandCheckpointsInOneAction(t *testing.T) {
	c, _, _ := startFake(t, "good", fakeOpts{env: []string{"FAKE_CHECKPOINTS=1000"}})
	ctx := context.Background()
	if err := c.Initialize(ctx, "s", ptr("LATEST"), ptr(int64(0))); err != nil {
		t.Fatal(err)
	}
	cp := &fakeCheckpointer{}
	if err := c.ProcessRecords(ctx, testRecords(3, 10), nil, cp); err != nil {
		t.Fatal(err)
	}
	if cp.n() != 1000 {
		t.Fatalf("checkpoints = %d, want 1000", cp.n())
	}
	if err := c.LeaseLost(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNoiseIsSkipped(t *testing.T) {
	c, _, logs := startFake(t, "noise", fakeOpts{})
	ctx := context.Background()
	if err := c.Initialize(ctx, "s", ptr("TRIM_HORIZON"), ptr(int64(0))); err != nil {
		t.Fatal(err)
	}
	if err := c.ProcessRecords(ctx, testRecords(2, 5), nil, &fakeCheckpointer{}); err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterMessage("skipping unexpected line on child stdout").Len(); n < 9 {
		t.Errorf("logged %d skipped lines, want >= 9", n)
	}
	if n := logs.FilterMessage("ignoring daemon-to-child message echoed by child").Len(); n != 2 {
		t.Errorf("logged %d echoed messages, want 2", n)
	}
}

func TestCarriageReturnEndsALine(t *testing.T) {
	c, _, logs := startFake(t, "cr-terminated", fakeOpts{})
	// Without "\r" as a terminator the status is never seen: the deadline
	// only keeps a failing test from hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Initialize(ctx, "s", ptr("TRIM_HORIZON"), ptr(int64(0))); err != nil {
		t.Fatal(err)
	}
	if err := c.ProcessRecords(ctx, testRecords(2, 5), nil, &fakeCheckpointer{}); err != nil {
		t.Fatal(err)
	}
	if err := c.LeaseLost(ctx); err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterMessage("skipping unexpected line on child stdout").Len(); n != 3 {
		t.Errorf("logged %d skipped lines, want 3 (one \"noise\" per action)", n)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name     string
		scenario string
		opts     fakeOpts
		ctxLimit time.Duration
		want     error // sentinel
		exitCode *int  // for ExitError
	}{
		{name: "unknown key in status", scenario: "unknown-key", want: ErrProtocol},
		{name: "legacy checkpoint field", scenario: "legacy-checkpoint", want: ErrProtocol},
		{name: "wrong responseFor", scenario: "wrong-response", want: ErrProtocol},
		{name: "missing responseFor", scenario: "no-response-for", want: ErrProtocol},
		{name: "EOF mid-action", scenario: "eof-mid-action", want: ErrExited, exitCode: ptr(0)},
		{name: "non-zero exit mid-action", scenario: "exit3-mid-action", want: ErrExited, exitCode: ptr(3)},
		{name: "stdout closed, process alive", scenario: "close-stdout", want: ErrExited, exitCode: ptr(-1)},
		{name: "hang past timeout", scenario: "hang", opts: fakeOpts{timeout: time.Second}, want: ErrTimeout},
		{name: "hang ignoring SIGTERM", scenario: "ignoreterm", opts: fakeOpts{timeout: time.Second, grace: 300 * time.Millisecond}, want: ErrTimeout},
		{name: "hang cancelled by context", scenario: "hang", ctxLimit: 500 * time.Millisecond, want: context.DeadlineExceeded},
		{name: "grandchild holds the pipes", scenario: "grandchild-mid-action", opts: fakeOpts{grace: 500 * time.Millisecond}, want: ErrExited},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "gpid")
			tc.opts.env = append(tc.opts.env, "FAKE_PIDFILE="+pidfile)
			c, _, _ := startFake(t, tc.scenario, tc.opts)
			ctx := context.Background()
			if tc.ctxLimit > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxLimit)
				defer cancel()
			}
			err := c.Initialize(ctx, "s", ptr("TRIM_HORIZON"), ptr(int64(0)))
			if err == nil {
				err = c.ProcessRecords(ctx, testRecords(2, 10), nil, &fakeCheckpointer{})
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.exitCode != nil {
				var ee *ExitError
				if !errors.As(err, &ee) || ee.ExitCode != *tc.exitCode {
					t.Errorf("err = %#v, want exit code %d", err, *tc.exitCode)
				}
			}
			// The group is already gone when the action returns.
			assertGone(t, c.PID())
			if b, err := os.ReadFile(pidfile); err == nil {
				gpid, _ := strconv.Atoi(string(b))
				if testenv.ProcessAlive(gpid) {
					t.Errorf("grandchild %d still alive", gpid)
				}
			}
			if err := c.LeaseLost(context.Background()); !errors.Is(err, ErrClosed) {
				t.Errorf("action after failure = %v, want ErrClosed", err)
			}
		})
	}
}

func TestCheckpointsRestartTimeout(t *testing.T) {
	c, _, _ := startFake(t, "slow-checkpoints", fakeOpts{timeout: time.Second})
	ctx := context.Background()
	if err := c.Initialize(ctx, "s", ptr("TRIM_HORIZON"), ptr(int64(0))); err != nil {
		t.Fatal(err)
	}
	cp := &fakeCheckpointer{}
	if err := c.ProcessRecords(ctx, testRecords(1, 10), nil, cp); err != nil {
		t.Fatalf("ProcessRecords (8 checkpoints 300ms apart, 1s timeout): %v", err)
	}
	if cp.n() != 8 {
		t.Errorf("checkpoints = %d, want 8", cp.n())
	}
}

func TestTwentyMegabyteLine(t *testing.T) {
	for _, scenario := range []string{"good", "stdout-flood"} {
		t.Run(scenario, func(t *testing.T) {
			c, tr, _ := startFake(t, scenario, fakeOpts{})
			ctx := context.Background()
			if err := c.Initialize(ctx, "s", ptr("TRIM_HORIZON"), ptr(int64(0))); err != nil {
				t.Fatal(err)
			}
			recs := testRecords(2000, 7500) // 2000 × 10,000 base64 bytes
			if err := c.ProcessRecords(ctx, recs, ptr(int64(0)), &fakeCheckpointer{}); err != nil {
				t.Fatal(err)
			}
			sent, _ := tr.get()
			longest := 0
			for _, l := range sent {
				longest = max(longest, len(l))
			}
			if n := longest; n < 20_000_000 {
				t.Errorf("processRecords line is %d bytes, want >= 20 MB", n)
			}
			if err := c.LeaseLost(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestStderrFlood(t *testing.T) {
	w := &countingWriter{}
	c, _, logs := startFake(t, "stderr-flood", fakeOpts{stderr: w, level: zapcore.DebugLevel})
	ctx := context.Background()
	if err := c.Initialize(ctx, "s", ptr("TRIM_HORIZON"), ptr(int64(0))); err != nil {
		t.Fatal(err)
	}
	if err := c.ProcessRecords(ctx, testRecords(1, 10), nil, &fakeCheckpointer{}); err != nil {
		t.Fatal(err)
	}
	if err := c.LeaseLost(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := int64(10<<20 + 200<<10 + 1)
	if w.n.Load() != want {
		t.Errorf("passthrough got %d bytes, want %d", w.n.Load(), want)
	}
	entries := logs.FilterMessage("child stderr").All()
	long := 0
	for _, e := range entries {
		if e.Level != zapcore.DebugLevel {
			t.Fatalf("stderr logged at %v, want debug", e.Level)
		}
		if l := e.ContextMap()["line"].(string); strings.HasPrefix(l, "L") {
			long++
			if len(l) > maxStderrChunk {
				t.Fatalf("stderr chunk of %d bytes", len(l))
			}
		}
	}
	if len(entries) < 10<<10 || long < 4 {
		t.Errorf("%d stderr entries (%d chunks of the long line)", len(entries), long)
	}
}

func TestGrandchildHoldingPipesAtClose(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "gpid")
	c, _, _ := startFake(t, "grandchild-at-close", fakeOpts{grace: 500 * time.Millisecond, env: []string{"FAKE_PIDFILE=" + pidfile}})
	ctx := context.Background()
	initThenLeaseLost(t, c)
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertGone(t, c.PID())
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatalf("grandchild pid: %v", err)
	}
	gpid, _ := strconv.Atoi(string(b))
	if testenv.ProcessAlive(gpid) {
		t.Errorf("grandchild %d still alive", gpid)
	}
}

func TestExitCodeAfterFinalActionOnlyLogged(t *testing.T) {
	c, _, logs := startFake(t, "exit3-at-close", fakeOpts{})
	ctx := context.Background()
	initThenLeaseLost(t, c)
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ended := logs.FilterMessage("child process ended").All()
	if len(ended) != 1 || ended[0].ContextMap()["exitCode"] != int64(3) {
		t.Errorf("end log = %v", ended)
	}
}

func TestCloseAndKillDuringAction(t *testing.T) {
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprintf("kill=%v", kill), func(t *testing.T) {
			c, _, _ := startFake(t, "hang", fakeOpts{grace: 300 * time.Millisecond})
			ctx := context.Background()
			if err := c.Initialize(ctx, "s", ptr("TRIM_HORIZON"), ptr(int64(0))); err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- c.ProcessRecords(ctx, testRecords(1, 10), nil, &fakeCheckpointer{}) }()
			time.Sleep(200 * time.Millisecond)
			if kill {
				c.Kill()
			} else if err := c.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; !errors.Is(err, ErrClosed) {
				t.Fatalf("in-flight action = %v, want ErrClosed", err)
			}
			assertGone(t, c.PID())
			c.Kill() // idempotent
		})
	}
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, command string }{
		{"empty", "   "},
		{"not on PATH", "multilangd-no-such-program-xyz"},
		{"relative missing", "./missing.sh"},
		{"not executable", "./noexec"},
		{"directory", "/tmp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(context.Background(), Config{Command: tc.command, ShardID: "s", Dir: dir})
			var se *StartError
			if !errors.Is(err, ErrStart) || !errors.As(err, &se) {
				t.Fatalf("err = %v, want *StartError", err)
			}
		})
	}
}

// shScript is a minimal child in sh: answers initialize, then exits at EOF.
const shScript = `read line
printf '\n{"action":"status","responseFor":"initialize"}\n'
echo "args: $*" >&2
while read line; do :; done
`

func TestScriptWithoutShebangAndDotPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kclchild"), []byte(shScript), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", ":/usr/bin:/bin") // empty element = "." (Java parity)
	for _, command := range []string{"kclchild a  b", "./kclchild a b", filepath.Join(dir, "kclchild") + " a b"} {
		t.Run(command, func(t *testing.T) {
			core, logs := observer.New(zapcore.InfoLevel)
			c, err := Start(context.Background(), Config{Command: command, ShardID: "s", Dir: dir, Logger: zap.New(core)})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Initialize(context.Background(), "s", nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			assertGone(t, c.PID())
			if logs.FilterField(zap.String("line", "args: a b")).Len() != 1 {
				t.Errorf("stderr log missing: %v", logs.All())
			}
		})
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"sample_kclpy_app.py", []string{"sample_kclpy_app.py"}},
		{"node sample_kcl_app.js", []string{"node", "sample_kcl_app.js"}},
		{"python3  /opt/app/consumer.py --verbose  ", []string{"python3", "/opt/app/consumer.py", "--verbose"}},
		{"a\tb c", []string{"a\tb", "c"}},
		{`"quoted arg"`, []string{`"quoted`, `arg"`}},
		{"", []string{}},
	}
	for _, tc := range tests {
		got := SplitCommand(tc.in)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("SplitCommand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestResolveCommandPath(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "bin")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "here"), filepath.Join(sub, "tool"), filepath.Join(sub, "here")} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		path, command, want string
	}{
		{":" + sub, "here", filepath.Join(dir, "here")},          // empty element = dir first
		{sub + ":", "here", filepath.Join(sub, "here")},          // PATH order wins
		{"bin", "tool", filepath.Join(sub, "tool")},              // relative element
		{"/nonexistent", "bin/tool", filepath.Join(sub, "tool")}, // contains '/': relative to dir
	}
	for _, tc := range tests {
		t.Setenv("PATH", tc.path)
		got, _, err := ResolveCommand(tc.command, dir)
		if err != nil || got != tc.want {
			t.Errorf("PATH=%q ResolveCommand(%q) = %q, %v; want %q", tc.path, tc.command, got, err, tc.want)
		}
	}
}

func TestCloseKillsChildIgnoringEOFAndSIGTERM(t *testing.T) {
	for _, cancelled := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancelled=%v", cancelled), func(t *testing.T) {
			c, _, logs := startFake(t, "ignore-eof", fakeOpts{grace: 300 * time.Millisecond})
			ctx := context.Background()
			initThenLeaseLost(t, c)
			closeCtx, cancel := context.WithCancel(ctx)
			if cancelled {
				cancel() // skip the grace periods: SIGKILL at once
			}
			defer cancel()
			if err := c.Close(closeCtx); err != nil {
				t.Fatal(err)
			}
			assertGone(t, c.PID())
			ended := logs.FilterMessage("child process ended").All()
			if len(ended) != 1 || ended[0].ContextMap()["exitCode"] != int64(-1) ||
				!strings.Contains(ended[0].ContextMap()["status"].(string), "killed") {
				t.Errorf("end log = %v", ended)
			}
		})
	}
}

// childShutdownGraceMillis = 0: SIGTERM and SIGKILL as soon as stdin is
// closed, not after the default grace (the child would exit 0 by itself 3 s
// after EOF).
func TestNoShutdownGraceTerminatesAtOnce(t *testing.T) {
	c, _, logs := startFake(t, "slow-exit-at-close", fakeOpts{grace: NoShutdownGrace})
	ctx := context.Background()
	initThenLeaseLost(t, c)
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertGone(t, c.PID())
	ended := logs.FilterMessage("child process ended").All()
	if len(ended) != 1 || ended[0].ContextMap()["exitCode"] != int64(-1) ||
		!strings.HasPrefix(fmt.Sprint(ended[0].ContextMap()["status"]), "signal:") {
		t.Errorf("want the child ended by a signal at once, not by its own exit: %v", ended)
	}
}

func TestConcurrentActionIsBusy(t *testing.T) {
	c, tr, _ := startFake(t, "hang", fakeOpts{grace: 300 * time.Millisecond})
	ctx := context.Background()
	if err := c.Initialize(ctx, "s", ptr("TRIM_HORIZON"), ptr(int64(0))); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.ProcessRecords(ctx, testRecords(1, 10), nil, &fakeCheckpointer{}) }()
	for { // until processRecords is on its way to the child
		if sent, _ := tr.get(); len(sent) == 2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.LeaseLost(ctx); !errors.Is(err, ErrBusy) {
		t.Errorf("concurrent action = %v, want ErrBusy", err)
	}
	c.Kill()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("in-flight action = %v, want ErrClosed", err)
	}
}

func TestLateCheckpointUsesNextActionsCheckpointer(t *testing.T) {
	c, tr, _ := startFake(t, "late-checkpoint", fakeOpts{})
	ctx := context.Background()
	if err := c.Initialize(ctx, "s", ptr("TRIM_HORIZON"), ptr(int64(0))); err != nil {
		t.Fatal(err)
	}
	first := &fakeCheckpointer{}
	if err := c.ProcessRecords(ctx, testRecords(1, 10), nil, first); err != nil {
		t.Fatal(err)
	}
	if err := c.LeaseLost(ctx); err != nil {
		t.Fatal(err)
	}
	if first.n() != 0 {
		t.Errorf("late checkpoint went to the earlier action's checkpointer")
	}
	sent, _ := tr.get()
	want := `{"action":"checkpoint","sequenceNumber":"5","subSequenceNumber":null,"error":"InvalidStateException"}` + "\n"
	if len(sent) != 4 || sent[2] != `{"action":"leaseLost"}`+"\n" || sent[3] != want {
		t.Errorf("sent = %q", sent)
	}
}

func TestStdoutFloodBetweenActionsNeverBlocksChild(t *testing.T) {
	c, _, logs := startFake(t, "flood-after-status", fakeOpts{})
	ctx := context.Background()
	if err := c.Initialize(ctx, "s", ptr("TRIM_HORIZON"), ptr(int64(0))); err != nil {
		t.Fatal(err)
	}
	if err := c.ProcessRecords(ctx, testRecords(1, 10), nil, &fakeCheckpointer{}); err != nil {
		t.Fatal(err)
	}
	// No action is in flight; the child can only finish if stdout is drained.
	for logs.FilterField(zap.String("line", "flood done")).Len() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.LeaseLost(ctx); err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterMessage("skipping unexpected line on child stdout").Len(); n != 10<<10 {
		t.Errorf("%d skipped lines logged, want %d", n, 10<<10)
	}
}
