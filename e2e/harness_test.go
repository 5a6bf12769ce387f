package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/retrieval/kpl"
	"github.com/multilangd/multilangd/seqnum"
)

// Paths of the binaries TestMain builds.
var (
	binDaemon    string
	binAggChild  string
	binMinChild  string // the bench's minimal child
	binPlainLoop string // the bench's plain GetRecords loop
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		// Every test here runs the built daemon against emulators.
		fmt.Fprintln(os.Stderr, "e2e: skipped under -short")
		return 0
	}
	dir, err := os.MkdirTemp("", "multilangd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDaemon = filepath.Join(dir, "multilangd")
	binAggChild = filepath.Join(dir, "aggchild")
	binMinChild = filepath.Join(dir, "minchild")
	binPlainLoop = filepath.Join(dir, "plainloop")
	for _, b := range []struct{ out, pkg string }{
		{binDaemon, "./cmd/multilangd"},
		{binAggChild, "./e2e/testdata/aggchild"},
		{binMinChild, "./e2e/testdata/minchild"},
		{binPlainLoop, "./e2e/testdata/plainloop"},
	} {
		if err := testenv.BuildBinary(b.out, b.pkg, false); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// env is one test's emulators and stream.
type env struct {
	t      *testing.T
	kin    *testenv.Emulator
	ddb    *testenv.Emulator
	kc     *kinesis.Client
	stream string
	app    string
	dir    string
	// logLevel is the daemon's --log-level (default debug).
	logLevel string
}

func newEnv(t *testing.T, kinKind, ddbKind testenv.Kind, shards int32) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	var wg sync.WaitGroup
	wg.Add(2)
	var errs [2]error
	start := func(i int, k testenv.Kind, dst **testenv.Emulator) {
		defer wg.Done()
		em, err := testenv.Start(context.Background(), k, testenv.StartOptions{})
		*dst, errs[i] = em, err
	}
	go start(0, kinKind, &e.kin)
	go start(1, ddbKind, &e.ddb)
	wg.Wait()
	for _, em := range []*testenv.Emulator{e.kin, e.ddb} {
		if em != nil {
			t.Cleanup(func() { _ = em.Stop() })
		}
	}
	for _, err := range errs {
		if err != nil {
			t.Fatalf("emulator: %v", err)
		}
	}
	e.kc = e.kin.Kinesis()
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 100 {
		name = name[:100]
	}
	e.stream = "s-" + name
	e.app = "app-" + name
	testenv.CreateStreamT(t, e.kc, e.stream, shards)
	return e
}

// props writes a properties file; extra keys override the defaults.
func (e *env) props(name string, extra map[string]string) string {
	e.t.Helper()
	kv := map[string]string{
		"executableName":                "node " + filepath.Join(testenv.RepoRoot(), "samples", "node", "sample_kcl_app.js"),
		"streamName":                    e.stream,
		"applicationName":               e.app,
		"processingLanguage":            "nodejs/20",
		"initialPositionInStream":       "TRIM_HORIZON",
		"regionName":                    testenv.Region,
		"AwsCredentialsProvider":        "EnvironmentVariableCredentialsProvider",
		"kinesisEndpoint":               e.kin.Endpoint,
		"dynamoDBEndpoint":              e.ddb.Endpoint,
		"retrievalMode":                 "POLLING",
		"idleTimeBetweenReadsInMillis":  "200",
		"failoverTimeMillis":            "3000",
		"parentShardPollIntervalMillis": "500",
		"taskBackoffTimeMillis":         "200",
		"shardSyncIntervalMillis":       "2000",
		"workerId":                      "worker-" + name,
		"shutdownGraceMillis":           "5000",
		"timeoutInSeconds":              "60",
		// No CloudWatch here; tests that check it point the client at
		// testenv.StartCloudWatch and set a level.
		"metricsLevel": "NONE",
		// lease cleanup within seconds (extension keys)
		"leaseCleanupIntervalMillis":          "1000",
		"completedLeaseCleanupIntervalMillis": "1000",
		"garbageLeaseCleanupIntervalMillis":   "1000",
	}
	for k, v := range extra {
		kv[k] = v
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if kv[k] == "" {
			continue
		}
		fmt.Fprintf(&b, "%s = %s\n", k, kv[k])
	}
	p := filepath.Join(e.dir, name+".properties")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// daemon is one running multilangd process.
type daemon struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	log    string
	output string // KCL_SAMPLE_OUTPUT
	done   chan struct{}
	err    error
}

// startDaemon runs the binary with the properties file. The child writes
// its records to output (one JSON line each).
func (e *env) startDaemon(name, props, output string, extraEnv ...string) *daemon {
	e.t.Helper()
	level := e.logLevel
	if level == "" {
		level = "debug"
	}
	return e.startCommand(name, output, []string{binDaemon, "-p", props, "--log-level", level}, extraEnv...)
}

// startCommand runs argv (the daemon, or a launcher that starts it) in its
// own process group with the test environment.
func (e *env) startCommand(name, output string, argv []string, extraEnv ...string) *daemon {
	e.t.Helper()
	d := &daemon{t: e.t, name: name, log: filepath.Join(e.dir, name+".log"), output: output, done: make(chan struct{})}
	lf, err := os.Create(d.log)
	if err != nil {
		e.t.Fatal(err)
	}
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Dir = e.dir
	d.cmd.Stdout, d.cmd.Stderr = lf, lf
	d.cmd.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+testenv.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+testenv.SecretKey,
		"AWS_REGION="+testenv.Region,
		"NODE_PATH="+testenv.NodeModules(),
		"KCL_SAMPLE_OUTPUT="+output,
	)
	d.cmd.Env = append(d.cmd.Env, extraEnv...)
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		lf.Close()
		close(d.done)
	}()
	e.t.Cleanup(func() {
		d.kill()
		if e.t.Failed() {
			d.dumpLog()
		}
	})
	return d
}

func (d *daemon) dumpLog() {
	b, _ := os.ReadFile(d.log)
	if len(b) > 60000 {
		b = b[len(b)-60000:]
	}
	d.t.Logf("---- %s log (tail) ----\n%s", d.name, b)
}

// kill SIGKILLs the daemon and waits for it; its children die through
// Pdeathsig, and anything left in the group is killed too.
func (d *daemon) kill() {
	select {
	case <-d.done:
	default:
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
}

// stop sends SIGTERM and returns the exit code.
func (d *daemon) stop(timeout time.Duration) int {
	d.t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(timeout):
		d.t.Errorf("%s did not stop within %s after SIGTERM", d.name, timeout)
		d.kill()
	}
	return d.cmd.ProcessState.ExitCode()
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// delivered is one record line written by the child.
type delivered struct {
	ShardID           string `json:"shardId"`
	SequenceNumber    string `json:"sequenceNumber"`
	SubSequenceNumber int64  `json:"subSequenceNumber"`
	PartitionKey      string `json:"partitionKey"`
	Data              string `json:"data"`
}

func (r delivered) ESN() seqnum.ESN { return seqnum.New(r.SequenceNumber, r.SubSequenceNumber) }

// payload returns the record's data, base64-decoded when it was encoded.
func (r delivered) payload() string {
	if strings.HasPrefix(r.Data, "rec-") {
		return r.Data
	}
	if b, err := base64.StdEncoding.DecodeString(r.Data); err == nil {
		return string(b)
	}
	return r.Data
}

// readOutput parses the child output file (missing file = nothing yet).
func readOutput(t *testing.T, path string) []delivered {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	var out []delivered
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r delivered
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			continue // a line torn by a SIGKILL
		}
		out = append(out, r)
	}
	return out
}

// waitFor polls cond until it holds; the bound is a liveness limit only.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool, ds ...*daemon) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		for _, d := range ds {
			if d.exited() {
				t.Fatalf("%s exited while waiting for %s: %v", d.name, what, d.err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// leases reads the lease table.
func (e *env) leases() []lease.Lease {
	e.t.Helper()
	st := lease.NewDynamoStore(e.ddb.DynamoDB(), e.app, zap.NewNop())
	ls, err := st.ListLeases(context.Background())
	if err != nil && strings.Contains(err.Error(), "ResourceNotFoundException") {
		return nil // the daemon has not created the table yet
	}
	if err != nil {
		e.t.Fatalf("list leases: %v", err)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Key < ls[j].Key })
	return ls
}

// putOptions shapes the generated records.
type putOptions struct {
	start, n int // record ids start..start+n-1
	aggEvery int // every aggEvery-th PutRecords entry is an aggregate (0 = never)
	aggSize  int // sub-records per aggregate
	batch    int // PutRecords entries per call (default 500)
}

// put writes records "rec-%07d" and returns the ids written, in order.
// Aggregated sub-records share one partition key so the whole aggregate
// routes to one shard.
func (e *env) put(o putOptions) []string {
	e.t.Helper()
	if o.batch == 0 {
		o.batch = 500
	}
	var ids []string
	var entries []ktypes.PutRecordsRequestEntry
	flush := func() {
		for len(entries) > 0 {
			out, err := e.kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: entries})
			if err != nil {
				e.t.Fatalf("PutRecords: %v", err)
			}
			var retry []ktypes.PutRecordsRequestEntry
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					retry = append(retry, entries[i])
				}
			}
			entries = retry
		}
	}
	id := o.start
	end := o.start + o.n
	for k := 0; id < end; k++ {
		if o.aggEvery > 0 && k%o.aggEvery == o.aggEvery-1 && end-id >= 2 {
			size := min(o.aggSize, end-id)
			pk := fmt.Sprintf("agg-%d", id)
			var urs []kpl.UserRecord
			for j := 0; j < size; j++ {
				d := fmt.Sprintf("rec-%07d", id)
				urs = append(urs, kpl.UserRecord{PartitionKey: pk, Data: []byte(d)})
				ids = append(ids, d)
				id++
			}
			blob, err := kpl.Aggregate(urs)
			if err != nil {
				e.t.Fatal(err)
			}
			entries = append(entries, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String(pk), Data: blob})
		} else {
			d := fmt.Sprintf("rec-%07d", id)
			entries = append(entries, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("pk-%d", id)), Data: []byte(d)})
			ids = append(ids, d)
			id++
		}
		if len(entries) == o.batch {
			flush()
		}
	}
	flush()
	return ids
}

// byShard groups deliveries by shard, in delivery order.
func byShard(rs []delivered) map[string][]delivered {
	m := map[string][]delivered{}
	for _, r := range rs {
		m[r.ShardID] = append(m[r.ShardID], r)
	}
	return m
}

// checkOrdered fails unless each shard's deliveries are strictly increasing.
func checkOrdered(t *testing.T, rs []delivered) {
	t.Helper()
	for sh, list := range byShard(rs) {
		for i := 1; i < len(list); i++ {
			if seqnum.MustCompare(list[i-1].ESN(), list[i].ESN()) >= 0 {
				t.Fatalf("shard %s: delivery %d (%s) not after %s", sh, i, list[i].ESN(), list[i-1].ESN())
			}
		}
	}
}

// checkOrderedAcrossRestarts is checkOrdered for a worker that may hold a
// shard more than once (lost by a steal, taken back after the other
// worker's crash): a delivery may step back, to resume from an earlier
// checkpoint (at-least-once), but only to a record this worker already
// delivered; a new record must come after every earlier one.
func checkOrderedAcrossRestarts(t *testing.T, rs []delivered) {
	t.Helper()
	for sh, list := range byShard(rs) {
		seen := map[seqnum.ESN]bool{}
		var highest seqnum.ESN
		for i, r := range list {
			esn := r.ESN()
			switch {
			case i == 0 || seqnum.MustCompare(esn, highest) > 0:
				highest = esn
			case !seen[esn]:
				t.Fatalf("shard %s: delivery %d (%s) is new but not after %s", sh, i, esn, highest)
			}
			seen[esn] = true
		}
	}
}

// missing returns the ids not delivered.
func missing(ids []string, rs ...[]delivered) []string {
	seen := map[string]bool{}
	for _, list := range rs {
		for _, r := range list {
			seen[r.payload()] = true
		}
	}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			out = append(out, id)
		}
	}
	return out
}

func countDistinct(rs ...[]delivered) int {
	seen := map[string]bool{}
	for _, list := range rs {
		for _, r := range list {
			seen[r.payload()] = true
		}
	}
	return len(seen)
}

func fmtLeases(ls []lease.Lease) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "%s owner=%s counter=%d cp=%s parents=%v children=%v\n", l.Key, l.Owner, l.Counter, l.Checkpoint, l.ParentShardIDs, l.ChildShardIDs)
	}
	return b.String()
}

// waitDeliveredOnce waits until every id was delivered, then checks that none
// is missing, none was delivered twice, per-shard order holds and the records
// came from the given number of shards. It returns the deliveries.
func waitDeliveredOnce(t *testing.T, d *daemon, out string, ids []string, shards int, limit time.Duration) []delivered {
	t.Helper()
	var got []delivered
	waitFor(t, limit, fmt.Sprintf("all %d records", len(ids)), func() bool {
		got = readOutput(t, out)
		return countDistinct(got) == len(ids)
	}, d)
	if m := missing(ids, got); len(m) > 0 {
		t.Fatalf("%d records missing, e.g. %v", len(m), m[:min(5, len(m))])
	}
	if len(got) != len(ids) {
		t.Errorf("%d deliveries for %d records (duplicates without any failure)", len(got), len(ids))
	}
	checkOrdered(t, got)
	if n := len(byShard(got)); n != shards {
		t.Fatalf("records came from %d shards, want %d", n, shards)
	}
	return got
}

// checkpointedAt reports whether every lease is checkpointed at or past its
// shard's last sequence number in last (lease key -> sequence number).
func (e *env) checkpointedAt(last map[string]string) bool {
	ls := e.leases()
	if len(ls) != len(last) {
		return false
	}
	for _, l := range ls {
		if seqnum.MustCompare(l.Checkpoint, seqnum.New(last[l.Key], 0)) < 0 {
			return false
		}
	}
	return true
}

// checkpointedAtLastDelivered reports whether there is one lease per shard in
// shards and each is checkpointed at its shard's last delivered record
// (sub-sequence 0 also counts: aws-kcl cannot send one).
func (e *env) checkpointedAtLastDelivered(shards map[string][]delivered) bool {
	ls := e.leases()
	if len(ls) != len(shards) {
		return false
	}
	for _, l := range ls {
		list := shards[l.Key]
		if len(list) == 0 {
			return false
		}
		last := list[len(list)-1]
		if l.Checkpoint.Sequence != last.SequenceNumber ||
			(l.Checkpoint.SubSequence != last.SubSequenceNumber && l.Checkpoint.SubSequence != 0) {
			return false
		}
	}
	return true
}
