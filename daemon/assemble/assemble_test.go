package assemble

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/awsclient"
	"github.com/multilangd/multilangd/cwmetrics"
	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of the SDK's shared HTTP transport.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// TestRunAgainstEmulators runs the assembled daemon in-process against
// kinesalite + dynalite with the real Node sample child: every record is
// delivered and checkpointed, and a cancelled context stops it gracefully
// (leases released, nil error, no goroutine left).
func TestRunAgainstEmulators(t *testing.T) {
	kin := testenv.StartT(t, testenv.Kinesalite)
	ddb := testenv.StartT(t, testenv.Dynalite)
	testenv.CreateStreamT(t, kin.Kinesis(), "assemble", 2)

	const n = 300
	var entries []ktypes.PutRecordsRequestEntry
	for i := 0; i < n; i++ {
		entries = append(entries, ktypes.PutRecordsRequestEntry{
			PartitionKey: aws.String(fmt.Sprintf("pk-%d", i)), Data: []byte(fmt.Sprintf("rec-%d", i))})
	}
	if _, err := kin.Kinesis().PutRecords(context.Background(), &kinesis.PutRecordsInput{
		StreamName: aws.String("assemble"), Records: entries}); err != nil {
		t.Fatal(err)
	}

	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", port)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.SecretKey)
	t.Setenv("NODE_PATH", testenv.NodeModules())
	t.Setenv("KCL_SAMPLE_OUTPUT", out)
	props := filepath.Join(dir, "app.properties")
	content := strings.Join([]string{
		"executableName = node " + filepath.Join(testenv.RepoRoot(), "samples", "node", "sample_kcl_app.js"),
		"streamName = assemble",
		"applicationName = assemble-app",
		"initialPositionInStream = TRIM_HORIZON",
		"regionName = us-east-1",
		"AwsCredentialsProvider = EnvironmentVariableCredentialsProvider",
		"kinesisEndpoint = " + kin.Endpoint,
		"dynamoDBEndpoint = " + ddb.Endpoint,
		"retrievalMode = POLLING",
		"idleTimeBetweenReadsInMillis = 200",
		"failoverTimeMillis = 3000",
		"workerId = w1",
		"metricsListenAddress = " + metricsAddr,
	}, "\n") + "\n"
	if err := os.WriteFile(props, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := properties.Load(props)
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clients, err := awsclient.New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Clients{Kinesis: clients.Kinesis, DynamoDB: clients.DynamoDB}, log)
	}()

	deadline := time.Now().Add(60 * time.Second)
	for countLines(t, out) < n {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records delivered", countLines(t, out), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The operator endpoints while running.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if body, code := get(t, hc, "http://"+metricsAddr+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d %q while running", code, body)
	}
	body, _ := get(t, hc, "http://"+metricsAddr+"/metrics")
	for _, want := range []string{"multilangd_records_processed_total", "multilangd_leases_held 2", `multilangd_shard_consumers{state="PROCESSING"} 2`,
		`multilangd_kcl_client_version{version="CLIENT_VERSION_INIT"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	ls, err := lease.NewDynamoStore(ddb.DynamoDB(), "assemble-app", log).ListLeases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 {
		t.Fatalf("%d leases, want 2", len(ls))
	}
	for _, l := range ls {
		if l.Owner != "" {
			t.Errorf("lease %s still owned by %q after the graceful stop", l.Key, l.Owner)
		}
		if l.Checkpoint.IsSentinel() {
			t.Errorf("lease %s never checkpointed", l.Key)
		}
	}
	for _, hc := range []any{clients.Kinesis.Options().HTTPClient, clients.DynamoDB.Options().HTTPClient} {
		if c, ok := hc.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

func get(t *testing.T, c *http.Client, url string) (string, int) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	return n
}

// TestThreeXGaugesAgainstEmulators scrapes an assembled daemon that starts
// a 2.x→3.x upgrade (clientVersionConfig =
// CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X on a new table): the client
// version gauge says UPGRADE_FROM_2X and the worker-metric gauge shows the
// CPU value of the WorkerMetricStats item it wrote.
func TestThreeXGaugesAgainstEmulators(t *testing.T) {
	kin := testenv.StartT(t, testenv.Kinesalite)
	ddb := testenv.StartT(t, testenv.Dynalite)
	testenv.CreateStreamT(t, kin.Kinesis(), "ops3x", 1)
	d := startAssembled(t, kin, ddb, "ops3x",
		"clientVersionConfig = CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X",
		"workerMetricsReporterFreqInMillis = 1000")
	body := d.scrapeUntil(t, `multilangd_kcl_client_version{version="CLIENT_VERSION_UPGRADE_FROM_2X"} 1`, `multilangd_worker_metric{metric="C"}`)
	t.Logf("\n%s", grepLines(body, "multilangd_kcl", "multilangd_worker"))
	d.stop(t)
}

// TestThreeXLeaderGaugesAgainstEmulators scrapes the only worker of a pure
// multilangd 3.x fleet (clientVersionConfig = CLIENT_VERSION_CONFIG_3X set
// in the file on a new table, DynamoDB Local for the lease-owner index): it
// holds the Leader lock, runs the LeaseAssignmentManager over the stream's
// two leases with itself as the one active worker, and hands nothing off.
func TestThreeXLeaderGaugesAgainstEmulators(t *testing.T) {
	kin := testenv.StartT(t, testenv.Kinesalite)
	ddb := testenv.StartT(t, testenv.DynamoDBLocal)
	testenv.CreateStreamT(t, kin.Kinesis(), "ops3xlead", 2)
	d := startAssembled(t, kin, ddb, "ops3xlead",
		"clientVersionConfig = CLIENT_VERSION_CONFIG_3X",
		"workerMetricsReporterFreqInMillis = 1000")
	body := d.scrapeUntil(t, `multilangd_kcl_client_version{version="CLIENT_VERSION_3X"} 1`,
		"multilangd_kcl_leader_lock_held 1", "multilangd_lam_total_leases 2", "multilangd_lam_active_workers 1",
		"multilangd_lam_failed_assignments 0", "multilangd_lam_assignments_total 2", "multilangd_leases_held 2", "multilangd_handoffs_in_progress 0")
	t.Logf("\n%s", grepLines(body, "multilangd_kcl", "multilangd_worker", "multilangd_lam", "multilangd_handoffs"))
	d.stop(t)
}

// slowShutdownChild speaks the multilang protocol and answers
// shutdownRequested only after 8 s, so that a graceful hand-off stays in
// progress for that long.
const slowShutdownChild = `
const rl = require('readline').createInterface({input: process.stdin});
rl.on('line', (line) => {
  const m = JSON.parse(line);
  const answer = () => process.stdout.write(JSON.stringify({action: 'status', responseFor: m.action}) + '\n');
  if (m.action === 'shutdownRequested') { setTimeout(answer, 8000); } else { answer(); }
});
`

// TestHandoffGaugeAgainstEmulators: a graceful hand-off (W9) of a lease
// the daemon holds shows in multilangd_handoffs_in_progress while its child
// finishes, and leaves it once the lease is transferred.
func TestHandoffGaugeAgainstEmulators(t *testing.T) {
	kin := testenv.StartT(t, testenv.Kinesalite)
	ddb := testenv.StartT(t, testenv.DynamoDBLocal)
	testenv.CreateStreamT(t, kin.Kinesis(), "ops3xhand", 1)
	script := filepath.Join(t.TempDir(), "child.js")
	if err := os.WriteFile(script, []byte(slowShutdownChild), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startAssembled(t, kin, ddb, "ops3xhand", "executableName = node "+script,
		"clientVersionConfig = CLIENT_VERSION_CONFIG_3X", "gracefulLeaseHandoffTimeoutMillis = 600000")
	d.scrapeUntil(t, "multilangd_leases_held 1", `multilangd_shard_consumers{state="PROCESSING"} 1`, "multilangd_handoffs_in_progress 0")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := lease.NewDynamoStore(ddb.DynamoDB(), "ops3xhand-app", zaptest.NewLogger(t))
	l, err := store.GetLease(ctx, "shardId-000000000000")
	if err != nil || l == nil {
		t.Fatalf("lease: %v %v", l, err)
	}
	if _, err := store.InitiateHandoff(ctx, *l, "w2"); err != nil {
		t.Fatal(err)
	}
	d.scrapeUntil(t, "multilangd_handoffs_in_progress 1")
	d.scrapeUntil(t, "multilangd_handoffs_in_progress 0")
	l, err = store.GetLease(ctx, "shardId-000000000000")
	if err != nil || l == nil || l.CheckpointOwner != "" {
		t.Fatalf("lease after the hand-off: %+v %v", l, err)
	}
	d.stop(t)
}

// assembledDaemon is a daemon Run in-process for a test, with its
// /metrics address.
type assembledDaemon struct {
	metricsAddr string
	cancel      context.CancelFunc
	done        chan error
	clients     *awsclient.Clients
}

// startAssembled runs the daemon of application <stream>-app on the
// emulators with the Node sample child (unless extra sets executableName),
// a 3 s failover, polling, and the extra properties lines.
func startAssembled(t *testing.T, kin, ddb *testenv.Emulator, stream string, extra ...string) *assembledDaemon {
	t.Helper()
	return startAssembledCW(t, kin, ddb, nil, stream, extra...)
}

// startAssembledCW is startAssembled publishing CloudWatch datums to cw
// (none when nil).
func startAssembledCW(t *testing.T, kin, ddb *testenv.Emulator, cw cwmetrics.PutAPI, stream string, extra ...string) *assembledDaemon {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	d := &assembledDaemon{metricsAddr: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan error, 1)}
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.SecretKey)
	t.Setenv("NODE_PATH", testenv.NodeModules())
	t.Setenv("KCL_SAMPLE_OUTPUT", filepath.Join(dir, "out.jsonl"))
	props := filepath.Join(dir, "app.properties")
	child := "executableName = node " + filepath.Join(testenv.RepoRoot(), "samples", "node", "sample_kcl_app.js")
	for _, l := range extra {
		if strings.HasPrefix(l, "executableName") {
			child = l
		}
	}
	extra = slices.DeleteFunc(slices.Clone(extra), func(l string) bool { return strings.HasPrefix(l, "executableName") })
	content := strings.Join(append([]string{
		child,
		"streamName = " + stream,
		"applicationName = " + stream + "-app",
		"regionName = us-east-1",
		"AwsCredentialsProvider = EnvironmentVariableCredentialsProvider",
		"kinesisEndpoint = " + kin.Endpoint,
		"dynamoDBEndpoint = " + ddb.Endpoint,
		"retrievalMode = POLLING",
		"failoverTimeMillis = 3000",
		"workerId = w1",
		"metricsListenAddress = " + d.metricsAddr,
	}, extra...), "\n") + "\n"
	if err := os.WriteFile(props, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := properties.Load(props)
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t)
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	t.Cleanup(cancel)
	if d.clients, err = awsclient.New(ctx, cfg, log); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.done <- Run(ctx, cfg, Clients{Kinesis: d.clients.Kinesis, DynamoDB: d.clients.DynamoDB, CloudWatch: cw}, log)
	}()
	return d
}

// scrapeUntil scrapes /metrics until the body holds every want (60 s).
func (d *assembledDaemon) scrapeUntil(t *testing.T, want ...string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var body string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		select {
		case err := <-d.done:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		if resp, err := hc.Get("http://" + d.metricsAddr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q after 60 s:\n%s", missing, grepLines(body, "multilangd_kcl", "multilangd_worker", "multilangd_lam", "multilangd_handoffs"))
		}
	}
}

// stop cancels the daemon and checks it stopped gracefully.
func (d *assembledDaemon) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	if err := <-d.done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	for _, hc := range []any{d.clients.Kinesis.Options().HTTPClient, d.clients.DynamoDB.Options().HTTPClient} {
		if c, ok := hc.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

// grepLines returns the lines of s that start with one of the prefixes.
func grepLines(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
