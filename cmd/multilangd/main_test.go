package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/properties"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const validProps = "executableName = sh app.py\napplicationName = app\nstreamName = s\nAwsCredentialsProvider = DefaultCredentialsProvider\n"

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// harness runs the CLI in-process with a fake daemon.
type harness struct {
	env     map[string]string
	daemon  func(ctx context.Context, cfg *properties.Config, log *zap.Logger) error
	signals chan os.Signal
	setenv  func(key, value string) error // nil: honoured -D properties are not applied

	mu      sync.Mutex
	gotCfg  *properties.Config
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	runCode int
}

func (h *harness) run(args ...string) int {
	c := &cli{stdin: strings.NewReader(""), stdout: &h.stdout, stderr: &h.stderr,
		getenv: func(k string) string { return h.env[k] }, signals: h.signals, setenv: h.setenv}
	c.daemon = func(ctx context.Context, cfg *properties.Config, log *zap.Logger) error {
		h.mu.Lock()
		h.gotCfg = cfg
		h.mu.Unlock()
		if h.daemon != nil {
			return h.daemon(ctx, cfg, log)
		}
		log.Info("fake daemon ran")
		return nil
	}
	if h.signals == nil {
		c.signals = make(chan os.Signal, 2)
	}
	h.runCode = c.execute(args)
	return h.runCode
}

// The keys the removed environment variable's warning names exist.
func TestRemovedCleanupEnvWarningNamesKeys(t *testing.T) {
	for _, k := range []string{"leaseCleanupIntervalMillis", "completedLeaseCleanupIntervalMillis", "garbageLeaseCleanupIntervalMillis"} {
		if !slices.Contains(properties.KnownKeys(), k) || !strings.Contains(removedCleanupEnvWarning, k) {
			t.Errorf("%s: not a known key or not named in %q", k, removedCleanupEnvWarning)
		}
	}
}

func TestRootCommandLine(t *testing.T) {
	good := writeFile(t, "good.properties", validProps)
	other := writeFile(t, "other.properties", strings.Replace(validProps, "applicationName = app", "applicationName = other", 1))
	bad := writeFile(t, "bad.properties", validProps+"maxRecords = lots\n")
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		daemonErr  error
		wantCode   int
		wantApp    string // "" = daemon must not run
		wantStderr []string
	}{
		{"positional", []string{good}, nil, nil, 0, "app", []string{"fake daemon ran"}},
		{"-p", []string{"-p", good}, nil, nil, 0, "app", nil},
		{"--properties-file", []string{"--properties-file", good}, nil, nil, 0, "app", nil},
		{"--properties-file=x accepted", []string{"--properties-file=" + good}, nil, nil, 0, "app", nil},
		{"-p beats positional with a warning", []string{"-p", other, good}, nil, nil, 0, "other", []string{"using --properties-file"}},
		{"two positionals", []string{good, other}, nil, nil, 1, "", []string{"expected a single argument"}},
		{"no file", nil, nil, nil, 1, "", []string{"no properties file given"}},
		{"missing file", []string{"/nonexistent/x.properties"}, nil, nil, 1, "", []string{"cannot read properties file"}},
		{"invalid file lists errors", []string{bad}, nil, nil, 1, "", []string{"invalid configuration (1 error(s))", `maxRecords = "lots"`}},
		{"-l warns once", []string{"-l", "logback.xml", good}, nil, nil, 0, "app", []string{"cannot apply to multilangd"}},
		{"daemon error exits 1", []string{good}, nil, errors.New("boom"), 1, "app", []string{"boom"}},
		{"unknown flag", []string{"--frobnicate", good}, nil, nil, 1, "", []string{"unknown flag"}},
		{"repeated -p without value", []string{good, "-p"}, nil, nil, 1, "", []string{"needs an argument"}},
		{"bad --log-level", []string{"--log-level", "loud", good}, nil, nil, 1, "", []string{"unknown log level"}},
		{"removed cleanup env var warns", []string{good}, map[string]string{"MULTILANGD_LEASE_CLEANUP_INTERVAL": "1s"}, nil, 0, "app",
			[]string{"MULTILANGD_LEASE_CLEANUP_INTERVAL is no longer read", "leaseCleanupIntervalMillis, completedLeaseCleanupIntervalMillis and garbageLeaseCleanupIntervalMillis"}},
		{"bad env log format", []string{good}, map[string]string{"MULTILANGD_LOG_FORMAT": "xml"}, nil, 1, "", []string{"unknown log format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &harness{env: tt.env}
			if tt.daemonErr != nil {
				h.daemon = func(context.Context, *properties.Config, *zap.Logger) error { return tt.daemonErr }
			}
			code := h.run(tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, h.stderr.String())
			}
			switch {
			case tt.wantApp == "" && h.gotCfg != nil:
				t.Fatalf("daemon ran")
			case tt.wantApp != "" && (h.gotCfg == nil || h.gotCfg.ApplicationName != tt.wantApp):
				t.Fatalf("daemon got %+v, want app %s", h.gotCfg, tt.wantApp)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(h.stderr.String(), w) {
					t.Fatalf("stderr lacks %q:\n%s", w, h.stderr.String())
				}
			}
			if strings.Count(h.stderr.String(), "cannot apply to multilangd") > 1 {
				t.Fatalf("-l warning repeated:\n%s", h.stderr.String())
			}
		})
	}
}

func TestLogLevelPrecedence(t *testing.T) {
	debugProps := writeFile(t, "d.properties", validProps+"logLevel = debug\n")
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantDebug bool
		wantJSON  bool
	}{
		{"property", []string{debugProps}, nil, true, false},
		{"env beats property", []string{debugProps}, map[string]string{"MULTILANGD_LOG_LEVEL": "error"}, false, false},
		{"flag beats env", []string{"--log-level", "debug", debugProps}, map[string]string{"MULTILANGD_LOG_LEVEL": "error"}, true, false},
		{"json from env", []string{debugProps}, map[string]string{"MULTILANGD_LOG_FORMAT": "json"}, true, true},
		{"console from flag beats env", []string{"--log-format", "console", debugProps}, map[string]string{"MULTILANGD_LOG_FORMAT": "json"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &harness{env: tt.env, daemon: func(_ context.Context, _ *properties.Config, log *zap.Logger) error {
				log.Debug("debug-line")
				log.Error("error-line")
				return nil
			}}
			if code := h.run(tt.args...); code != 0 {
				t.Fatalf("exit %d: %s", code, h.stderr.String())
			}
			out := h.stderr.String()
			if got := strings.Contains(out, "debug-line"); got != tt.wantDebug {
				t.Fatalf("debug logged = %v, want %v:\n%s", got, tt.wantDebug, out)
			}
			if got := strings.Contains(out, `"msg":"error-line"`); got != tt.wantJSON {
				t.Fatalf("json = %v, want %v:\n%s", got, tt.wantJSON, out)
			}
		})
	}
}

func TestSignalCancelsDaemon(t *testing.T) {
	good := writeFile(t, "good.properties", validProps)
	sigs := make(chan os.Signal, 2)
	started := make(chan struct{})
	h := &harness{signals: sigs, daemon: func(ctx context.Context, _ *properties.Config, _ *zap.Logger) error {
		close(started)
		<-ctx.Done()
		return nil
	}}
	done := make(chan int)
	go func() { done <- h.run(good) }()
	<-started
	sigs <- syscall.SIGTERM
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	if !strings.Contains(h.stderr.String(), "shutting down gracefully") {
		t.Fatalf("no shutdown log:\n%s", h.stderr.String())
	}
}

func TestValidate(t *testing.T) {
	good := writeFile(t, "good.properties", validProps+"colour = red\nAwsCredentialsProviderDynamoDB = StsAssumeRoleCredentialsProvider|arn:aws:iam::123456789012:role/r|s|externalId=topsecret\n")
	polling := writeFile(t, "p.properties", validProps+"retrievalMode = POLLING\n")
	consumerARN := writeFile(t, "c.properties", validProps+"fanoutConfig.consumerArn = arn:aws:kinesis:us-east-1:1:stream/s/consumer/c:1\n")
	bad := writeFile(t, "bad.properties", "applicationname = x\nmaxRecords = 0\n")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
		notWant  []string
	}{
		{"valid", []string{"validate", "-p", good}, 0, []string{
			"Resolved configuration from " + good, "[retrieval]", "retrievalMode", "FANOUT", "DEFAULT: no polling key set",
			`enhanced fan-out (SubscribeToShard): at start-up the daemon registers the stream consumer "app" if it does not exist`,
			"Warnings (1):", good + ":5: colour: unknown key, ignored", "externalId=<redacted>", "OK:",
			"failoverTimeMillis", "10000", "(default)", "(line 1)"}, []string{"topsecret"}},
		{"positional", []string{"validate", good}, 0, []string{"OK:"}, nil},
		{"configured consumer ARN", []string{"validate", consumerARN}, 0,
			[]string{"enhanced fan-out (SubscribeToShard) with the configured consumer arn:aws:kinesis:us-east-1:1:stream/s/consumer/c:1"}, []string{"registers"}},
		{"polling has no note", []string{"validate", polling}, 0, []string{"POLLING", "maxRecords"}, []string{"enhanced fan-out", "not implemented"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &harness{}
			if code := h.run(tt.args...); code != tt.wantCode {
				t.Fatalf("exit %d: %s %s", code, h.stdout.String(), h.stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(h.stdout.String(), w) {
					t.Fatalf("stdout lacks %q:\n%s", w, h.stdout.String())
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(h.stdout.String(), w) {
					t.Fatalf("stdout contains %q", w)
				}
			}
			if h.gotCfg != nil {
				t.Fatal("validate ran the daemon")
			}
		})
	}

	h := &harness{}
	if code := h.run("validate", "-p", bad); code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"did you mean applicationName?"} {
		if !strings.Contains(h.stdout.String(), w) {
			t.Fatalf("stdout lacks %q:\n%s", w, h.stdout.String())
		}
	}
	for _, w := range []string{"invalid configuration (5 error(s))", `maxRecords = "0"`, "executableName", "applicationName: Application name is required", "streamName", "AwsCredentialsProvider"} {
		if !strings.Contains(h.stderr.String(), w) {
			t.Fatalf("stderr lacks %q:\n%s", w, h.stderr.String())
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		h := &harness{}
		if code := h.run(args...); code != 0 || !strings.HasPrefix(h.stdout.String(), "multilangd ") {
			t.Fatalf("%v: exit %d, %q", args, code, h.stdout.String())
		}
	}
}

// TestBinary builds the real binary (CGO_ENABLED=0) and checks exit codes of a
// separate process.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	good := writeFile(t, "good.properties", validProps)
	missingExe := writeFile(t, "missing.properties", strings.Replace(validProps, "sh app.py", "./no-such-processor.py", 1))
	tests := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"validate", "-p", "../../samples/python/sample.properties"}, 1, `"sample_kclpy_app.py": executable file not found in $PATH`},
		{[]string{"validate", missingExe}, 1, `executableName: "./no-such-processor.py" does not resolve to an executable file`},
		{[]string{missingExe}, 1, "no-such-processor.py: no such file or directory"},
		{[]string{"validate", good}, 0, "OK:"},
		{[]string{"validate", "-p", "/nonexistent.properties"}, 1, "cannot read"},
		{[]string{good, good}, 1, "expected a single argument"},
		{[]string{}, 1, "no properties file"},
		{[]string{"version"}, 0, "multilangd"},
	}
	samplePath := "PATH=" + filepath.Join("..", "..", "samples", "python") + string(filepath.ListSeparator) + os.Getenv("PATH")
	for i, tt := range append(tests, struct {
		args     []string
		wantCode int
		want     string
	}{[]string{"validate", "-p", "../../samples/python/sample.properties"}, 0, "kclpysample"}) {
		cmd := exec.Command(bin, tt.args...)
		if i == len(tests) { // the sample's processor is found through PATH, as Java's ProcessBuilder does
			cmd.Env = append(os.Environ(), samplePath)
		}
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.wantCode || !strings.Contains(string(out), tt.want) {
			t.Errorf("%v: exit %d (want %d), output:\n%s", tt.args, code, tt.wantCode, out)
		}
	}
}

// The same stop signal delivered twice at once (process group plus a
// launcher forwarding it) is one graceful stop, not "exit at once".
func TestRepeatedSignalIsOneStop(t *testing.T) {
	good := writeFile(t, "good.properties", validProps)
	sigs := make(chan os.Signal, 2)
	started := make(chan struct{})
	h := &harness{signals: sigs, daemon: func(ctx context.Context, _ *properties.Config, _ *zap.Logger) error {
		close(started)
		<-ctx.Done()
		time.Sleep(200 * time.Millisecond) // a graceful stop in progress sees the repeat
		return nil
	}}
	done := make(chan int)
	go func() { done <- h.run(good) }()
	<-started
	sigs <- syscall.SIGINT
	sigs <- syscall.SIGINT
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	if !strings.Contains(h.stderr.String(), "repeated signal ignored") {
		t.Fatalf("repeat not logged:\n%s", h.stderr.String())
	}
}
