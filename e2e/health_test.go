package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// httpAddr returns a free 127.0.0.1 address for metricsListenAddress.
func httpAddr(t *testing.T) string {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// get returns the status code and body of http://addr/path (0 when the
// server does not answer yet).
func get(addr, path string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func logOf(d *daemon) string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

// Every shard failing (a processor that exits at once) makes /readyz answer
// 503 naming the shards, while /healthz stays 200: the process is alive,
// restarting it would not help.
func TestReadyzFailsWhileEveryShardFails(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon against the emulators")
	}
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 2)
	e.put(putOptions{n: 20})
	addr := httpAddr(t)
	props := e.props("app", map[string]string{
		"executableName":       "/bin/false", // exists, exits 1 at once
		"metricsListenAddress": addr,
		"maxChildFailures":     "1000", // keep the leases: every held shard fails
	})
	d := e.startDaemon("daemon", props, filepath.Join(e.dir, "out.jsonl"))
	var body string
	waitFor(t, 60*time.Second, "/readyz 503 with every shard failing", func() bool {
		var code int
		code, body = get(addr, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "every held shard is failing (shardId-000000000000, shardId-000000000001)")
	}, d)
	if code, b := get(addr, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d %q while only the shards fail", code, b)
	}
	t.Logf("/readyz: %s", strings.TrimSpace(body))
	if code := d.stop(40 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// A child that hangs in processRecords without exiting is reported by the
// watchdog within the configured time: a WARN naming the shard, its state
// and the child's pid, multilangd_shard_stuck = 1 and /readyz 503
// (stuckShardFailsReadiness). With stuckShardRestartChild the child is then
// replaced and every record is still delivered.
func TestStuckShardWatchdog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon against the emulators")
	}
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprint("restart=", restart), func(t *testing.T) {
			e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 1)
			ids := e.put(putOptions{n: 50})
			addr := httpAddr(t)
			props := e.props("app", map[string]string{
				"executableName":            binAggChild,
				"metricsListenAddress":      addr,
				"timeoutInSeconds":          "", // no per-message timeout: only the watchdog notices
				"stuckShardThresholdMillis": "3000",
				"stuckShardFailsReadiness":  "true",
				"stuckShardRestartChild":    fmt.Sprint(restart),
			})
			out := filepath.Join(e.dir, "out.jsonl")
			d := e.startDaemon("daemon", props, out, "AGGCHILD_MODE=normal", "AGGCHILD_HANG_ONCE="+filepath.Join(e.dir, "hang.marker"))
			warn := regexp.MustCompile(`WARN.*shard is stuck: no progress while it has data.*"shardId": "shardId-000000000000".*"reason": "child has not answered", "state": "PROCESSING", "childPid": [1-9][0-9]*`)
			waitFor(t, 60*time.Second, "the watchdog WARN", func() bool { return warn.MatchString(logOf(d)) }, d)
			if restart {
				waitDeliveredOnceOrMore(t, d, out, ids)
				return
			}
			if code, body := get(addr, "/metrics"); code != http.StatusOK || !strings.Contains(body, `multilangd_shard_stuck{shard_id="shardId-000000000000"} 1`) {
				t.Fatalf("/metrics %d lacks the stuck gauge:\n%s", code, grepLines(body, "multilangd_shard"))
			}
			if code, body := get(addr, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "stuck shards (shardId-000000000000)") {
				t.Fatalf("/readyz = %d %q, want 503 naming the stuck shard", code, body)
			}
			if code, _ := get(addr, "/healthz"); code != http.StatusOK {
				t.Fatalf("/healthz = %d while a shard is stuck; want 200 (alive)", code)
			}
			d.kill()
		})
	}
}

// waitDeliveredOnceOrMore waits until every id was delivered (a restarted
// child may re-deliver the hung batch: at least once).
func waitDeliveredOnceOrMore(t *testing.T, d *daemon, out string, ids []string) {
	t.Helper()
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d records", len(ids)), func() bool {
		return len(missing(ids, readOutput(t, out))) == 0
	}, d)
	if !strings.Contains(logOf(d), "stuck-shard watchdog restarted the child") {
		t.Fatalf("no restart by the watchdog in the log")
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The lease table going away makes /readyz fail after
// readinessUnreachableThresholdMillis, naming it, while /healthz stays 200.
func TestReadyzFailsWhileLeaseTableUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon against the emulators")
	}
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 1)
	addr := httpAddr(t)
	props := e.props("app", map[string]string{
		"executableName":                      binAggChild,
		"metricsListenAddress":                addr,
		"readinessUnreachableThresholdMillis": "2000",
	})
	d := e.startDaemon("daemon", props, filepath.Join(e.dir, "out.jsonl"), "AGGCHILD_MODE=normal")
	waitFor(t, 60*time.Second, "/readyz 200", func() bool { code, _ := get(addr, "/readyz"); return code == http.StatusOK }, d)
	if err := e.ddb.Stop(); err != nil {
		t.Fatal(err)
	}
	var body string
	waitFor(t, 60*time.Second, "/readyz 503 naming the lease table", func() bool {
		var code int
		code, body = get(addr, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "lease table has not answered for")
	}, d)
	t.Logf("/readyz: %s", strings.TrimSpace(body))
	if code, b := get(addr, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d %q: an unreachable table is not a hang", code, b)
	}
	d.kill()
}
