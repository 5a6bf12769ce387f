//go:build reliability

package reliability

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"hash/crc32"
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
	"github.com/multilangd/multilangd/reliability/faultproxy"
	"github.com/multilangd/multilangd/retrieval/kpl"
)

// The secrets every daemon of the suite runs with; TestMain greps every log
// for them (docs/reliability.md "Security").
const (
	secretAccessKeyID = "AKIARELIABILITY7Q2X"
	secretAccessKey   = "relSecretAccessKey/9f8e7d6c5b4a"
	secretSession     = "relSessionToken+Zm9vYmFyYmF6cXV4"
	secretExternalID  = "relExternalId-4c1d2e"
)

var secrets = []string{secretAccessKeyID, secretAccessKey, secretSession, secretExternalID}

var (
	binDaemon, binChild string
	suiteDir            string
	reportPath          = flag.String("report", "", "write docs/reliability.md here")
	raceDaemon          = flag.Bool("race-daemon", false, "build multilangd with -race; a DATA RACE in any daemon log fails the suite")

	rowsMu  sync.Mutex
	rows    []Row
	samples []Sample
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	suiteDir, err = os.MkdirTemp("", "multilangd-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDaemon = filepath.Join(suiteDir, "bin", "multilangd")
	binChild = filepath.Join(suiteDir, "bin", "checkchild")
	for _, b := range []struct{ out, pkg string }{{binDaemon, "./cmd/multilangd"}, {binChild, "./reliability/testdata/checkchild"}} {
		if err := testenv.BuildBinary(b.out, b.pkg, *raceDaemon && b.out == binDaemon); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := m.Run()
	if races := grepLogs(suiteDir, "WARNING: DATA RACE"); len(races) > 0 {
		fmt.Fprintf(os.Stderr, "DATA RACE in daemon logs:\n%s\n", strings.Join(races, "\n"))
		code = 1
	}
	if leaks := grepLogs(suiteDir, secrets...); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "SECRET LEAKED into logs:\n%s\n", strings.Join(leaks, "\n"))
		code = 1
	} else {
		fmt.Fprintf(os.Stderr, "secrets: no access key, secret key, session token or external id in %d log files\n", countLogs(suiteDir))
	}
	if *reportPath != "" && len(rows) > 0 {
		if err := writeReport(*reportPath); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	if code == 0 && os.Getenv("REL_KEEP") == "" {
		os.RemoveAll(suiteDir)
	} else {
		fmt.Fprintf(os.Stderr, "reliability: logs and events kept in %s\n", suiteDir)
	}
	return code
}

// grepLogs returns "file: needle" for every log under dir holding a needle.
func grepLogs(dir string, needles ...string) []string {
	var leaks []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || !strings.HasSuffix(p, ".log") {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, s := range needles {
			if bytes.Contains(b, []byte(s)) {
				leaks = append(leaks, p+": "+s)
			}
		}
		return nil
	})
	return leaks
}

func countLogs(dir string) int {
	n := 0
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, ".log") {
			n++
		}
		return nil
	})
	return n
}

func writeReport(path string) error {
	old, _ := os.ReadFile(path)
	kept := KeptRows(string(old), rows)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var ls []string
	_ = filepath.Walk(suiteDir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, ".log") {
			ls = append(ls, p)
		}
		return nil
	})
	header := fmt.Sprintf(reportHeader, time.Now().UTC().Format("2006-01-02 15:04 MST"), len(ls))
	if len(samples) > 0 {
		header = strings.Replace(strings.Replace(header, "# Reliability", "# Reliability: soak", 1), "`make test-reliability`", "`make soak`", 1)
	}
	return WriteReport(f, header, rows, kept, samples)
}

func addRow(r Row) {
	rowsMu.Lock()
	rows = append(rows, r)
	rowsMu.Unlock()
}

// fleet is one scenario: kinesalite and dynalite behind fault proxies, a
// stream, the daemons, the producer and the faults injected.
type fleet struct {
	t        *testing.T
	name     string
	dir      string
	events   string
	markers  string
	kin, ddb *testenv.Emulator
	kp, dp   *faultproxy.Proxy
	kc       *kinesis.Client
	stream   string
	app      string
	// base are the properties every daemon gets; childEnv the checking
	// child's fault switches.
	base     map[string]string
	childEnv []string

	mu       sync.Mutex
	daemons  []*daemon
	faults   []Fault
	produced []Produced
	nextID   int
	injected []string
}

func newFleet(t *testing.T, shards int32) *fleet {
	t.Helper()
	return newFleetOn(t, shards, testenv.Dynalite)
}

// newFleetOn is newFleet with the lease table on the DynamoDB emulator
// ddbKind (DynamoDB Local for the KCL 3.x scenarios: dynalite cannot add
// the LeaseOwnerToLeaseKeyIndex GSI with UpdateTable).
func newFleetOn(t *testing.T, shards int32, ddbKind testenv.Kind) *fleet {
	t.Helper()
	name := strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
	f := &fleet{t: t, name: name, dir: filepath.Join(suiteDir, name)}
	f.events = filepath.Join(f.dir, "events")
	f.markers = filepath.Join(f.dir, "markers")
	for _, d := range []string{f.events, f.markers} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var errs [2]error
	for i, k := range []testenv.Kind{testenv.Kinesalite, ddbKind} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := testenv.Start(context.Background(), k, testenv.StartOptions{})
			errs[i] = err
			if i == 0 {
				f.kin = e
			} else {
				f.ddb = e
			}
		}()
	}
	wg.Wait()
	for _, e := range []*testenv.Emulator{f.kin, f.ddb} {
		if e != nil {
			t.Cleanup(func() { _ = e.Stop() })
		}
	}
	for _, err := range errs {
		if err != nil {
			t.Fatalf("emulator: %v", err)
		}
	}
	var err error
	if f.kp, err = faultproxy.Start(f.kin.Endpoint); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.kp.Close() })
	if f.dp, err = faultproxy.Start(f.ddb.Endpoint); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.dp.Close() })
	f.kc = f.kin.Kinesis()
	f.stream, f.app = "s-"+name, "app-"+name
	testenv.CreateStreamT(t, f.kc, f.stream, shards)
	f.base = map[string]string{
		"executableName":                      binChild,
		"streamName":                          f.stream,
		"applicationName":                     f.app,
		"initialPositionInStream":             "TRIM_HORIZON",
		"regionName":                          testenv.Region,
		"AwsCredentialsProvider":              "EnvironmentVariableCredentialsProvider",
		"kinesisEndpoint":                     f.kp.URL,
		"dynamoDBEndpoint":                    f.dp.URL,
		"idleTimeBetweenReadsInMillis":        "250",
		"maxRecords":                          "100",
		"failoverTimeMillis":                  "5000",
		"parentShardPollIntervalMillis":       "500",
		"taskBackoffTimeMillis":               "250",
		"shardSyncIntervalMillis":             "3000",
		"shutdownGraceMillis":                 "5000",
		"timeoutInSeconds":                    "60",
		"metricsLevel":                        "NONE",
		"leaseCleanupIntervalMillis":          "1000",
		"completedLeaseCleanupIntervalMillis": "1000",
		"garbageLeaseCleanupIntervalMillis":   "1000",
	}
	t.Cleanup(func() {
		for _, d := range f.daemons {
			d.kill()
			if t.Failed() {
				d.dumpLog(t)
			}
		}
		f.killChildren()
	})
	return f
}

// props writes worker's properties file (base plus extra; "" removes a key).
func (f *fleet) props(worker string, extra map[string]string) string {
	kv := map[string]string{"workerId": worker}
	for k, v := range f.base {
		kv[k] = v
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
		if kv[k] != "" {
			fmt.Fprintf(&b, "%s = %s\n", k, kv[k])
		}
	}
	p := filepath.Join(f.dir, worker+".properties")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// daemon is one multilangd process (one run of a worker).
type daemon struct {
	worker string
	props  string
	cmd    *exec.Cmd
	log    string
	done   chan struct{}
	err    error
}

// start runs a daemon for worker (a restart of a worker gets a new log).
func (f *fleet) start(worker string, extra map[string]string) *daemon {
	f.t.Helper()
	f.mu.Lock()
	n := len(f.daemons)
	f.mu.Unlock()
	d := &daemon{worker: worker, props: f.props(worker, extra), log: filepath.Join(f.dir, fmt.Sprintf("%s-%d.log", worker, n)), done: make(chan struct{})}
	lf, err := os.Create(d.log)
	if err != nil {
		f.t.Fatal(err)
	}
	d.cmd = exec.Command(binDaemon, "-p", d.props, "--log-level", "debug")
	d.cmd.Dir = f.dir
	d.cmd.Stdout, d.cmd.Stderr = lf, lf
	d.cmd.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+secretAccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+secretAccessKey,
		"AWS_SESSION_TOKEN="+secretSession,
		"AWS_REGION="+testenv.Region,
		"REL_EVENTS_DIR="+f.events,
		"REL_MARKERS="+f.markers,
	)
	d.cmd.Env = append(d.cmd.Env, f.childEnv...)
	// Pdeathsig: a test binary killed by its timeout leaves no daemon.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		lf.Close()
		close(d.done)
	}()
	f.mu.Lock()
	f.daemons = append(f.daemons, d)
	f.mu.Unlock()
	return d
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the daemon (and SIGCONTs it first, in case it is stopped).
func (d *daemon) kill() {
	if !d.exited() {
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		_ = d.cmd.Process.Signal(syscall.SIGCONT)
		<-d.done
	}
}

// term sends SIGTERM and waits up to limit; it returns the exit code (-1
// when it had to be killed).
func (d *daemon) term(limit time.Duration) int {
	if d.exited() {
		return d.cmd.ProcessState.ExitCode()
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		d.kill()
		return -1
	}
}

func (d *daemon) dumpLog(t *testing.T) {
	b, _ := os.ReadFile(d.log)
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	t.Logf("---- %s (tail) ----\n%s", d.log, b)
}

// fault runs inject and records it as a fault from now until heal returns
// (heal may be nil for an instant fault).
func (f *fleet) fault(what string, inject func(), heal func()) {
	f.t.Logf("fault: %s", what)
	start := time.Now()
	f.mu.Lock()
	f.injected = append(f.injected, what)
	f.mu.Unlock()
	inject()
	if heal != nil {
		heal()
	}
	f.mu.Lock()
	f.faults = append(f.faults, Fault{What: what, Start: start, End: time.Now()})
	f.mu.Unlock()
}

// entry is one PutRecords entry and the user records it carries.
type entry struct {
	pk   string
	data []byte
	// subs are the user records' data when data is a KPL aggregate.
	subs [][]byte
}

// plainEntry is a record with data "rel-<n>".
func (f *fleet) plainEntry() entry {
	f.mu.Lock()
	n := f.nextID
	f.nextID++
	f.mu.Unlock()
	return entry{pk: fmt.Sprintf("pk-%d", n), data: []byte(fmt.Sprintf("rel-%07d", n))}
}

// aggEntry is a KPL aggregate of size user records.
func (f *fleet) aggEntry(size int) entry {
	f.t.Helper()
	var urs []kpl.UserRecord
	var subs [][]byte
	e := entry{}
	for i := 0; i < size; i++ {
		p := f.plainEntry()
		if i == 0 {
			e.pk = "agg-" + p.pk
		}
		urs = append(urs, kpl.UserRecord{PartitionKey: e.pk, Data: p.data})
		subs = append(subs, p.data)
	}
	blob, err := kpl.Aggregate(urs)
	if err != nil {
		f.t.Fatal(err)
	}
	e.data, e.subs = blob, subs
	return e
}

// put writes entries (directly to the emulator, not through the proxy),
// retrying failed entries, and records the user records produced.
func (f *fleet) put(ctx context.Context, entries []entry) error {
	for len(entries) > 0 {
		in := &kinesis.PutRecordsInput{StreamName: aws.String(f.stream)}
		for _, e := range entries {
			in.Records = append(in.Records, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String(e.pk), Data: e.data})
		}
		out, err := f.kc.PutRecords(ctx, in)
		if err != nil {
			return fmt.Errorf("PutRecords: %w", err)
		}
		var retry []entry
		var ps []Produced
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				retry = append(retry, entries[i])
				continue
			}
			k := Key{Shard: aws.ToString(r.ShardId), Seq: aws.ToString(r.SequenceNumber)}
			if entries[i].subs == nil {
				ps = append(ps, Produced{Key: k, Len: len(entries[i].data), CRC: crc32.ChecksumIEEE(entries[i].data)})
				continue
			}
			for j, s := range entries[i].subs {
				k.Sub = int64(j)
				ps = append(ps, Produced{Key: k, Len: len(s), CRC: crc32.ChecksumIEEE(s)})
			}
		}
		f.mu.Lock()
		f.produced = append(f.produced, ps...)
		f.mu.Unlock()
		entries = retry
	}
	return nil
}

// putN writes n records: plain, and every 10th entry a 4-record aggregate.
func (f *fleet) putN(ctx context.Context, n int) error {
	var es []entry
	for i := 0; i < n; {
		if i%10 == 9 && n-i >= 4 {
			es = append(es, f.aggEntry(4))
			i += 4
			continue
		}
		es = append(es, f.plainEntry())
		i++
	}
	return f.put(ctx, es)
}

// producer writes per records every interval until stopped. A put in
// flight when it is stopped completes (a cancelled PutRecords may have
// written records it could not record as produced).
type producer struct {
	stopc   chan struct{}
	done    chan error
	stopped bool
}

func (f *fleet) startProducer(per int, interval time.Duration) *producer {
	p := &producer{stopc: make(chan struct{}), done: make(chan error, 1)}
	stopc := p.stopc
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := f.putN(ctx, per)
			cancel()
			if err != nil {
				p.done <- err
				return
			}
			select {
			case <-stopc:
				p.done <- nil
				return
			case <-tick.C:
			}
		}
	}()
	f.t.Cleanup(func() { _ = p.stop() })
	return p
}

// stop ends the producer and waits for it; it returns the put error that
// ended it early, if any.
func (p *producer) stop() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	close(p.stopc)
	return <-p.done
}

func (f *fleet) producedSoFar() []Produced {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Produced(nil), f.produced...)
}

func (f *fleet) readEvents() []Event {
	evs, err := ReadEvents(f.events)
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

// waitFor polls cond every 500 ms; limit is a liveness bound only.
func (f *fleet) waitFor(limit time.Duration, what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("gave up waiting for %s after %s", what, limit)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// deliveredSince returns the shards with a delivery at or after t.
func (f *fleet) deliveredSince(t time.Time) map[string]int {
	m := map[string]int{}
	for _, e := range f.readEvents() {
		if e.Ev == "rec" && e.T >= t.UnixNano() {
			m[e.Shard]++
		}
	}
	return m
}

// waitShardsProgress waits until n shards delivered a record after now.
func (f *fleet) waitShardsProgress(n int, limit time.Duration) {
	f.t.Helper()
	since := time.Now()
	f.waitFor(limit, fmt.Sprintf("%d shards delivering", n), func() bool { return len(f.deliveredSince(since)) >= n })
}

// leases reads the lease table directly from the DynamoDB emulator.
func (f *fleet) leases() []lease.Lease {
	st := lease.NewDynamoStore(f.ddb.DynamoDB(), f.app, zap.NewNop())
	ls, err := st.ListLeases(context.Background())
	if err != nil {
		return nil
	}
	return ls
}

// childPids returns the pids of every checking child seen.
func (f *fleet) childPids() map[int]bool {
	m := map[int]bool{}
	for _, e := range f.readEvents() {
		m[e.Pid] = true
	}
	return m
}

// processesLeft counts daemons and children still alive, waiting up to
// 10 s for them to go (after every daemon has exited).
func (f *fleet) processesLeft() int {
	var alive int
	for end := time.Now().Add(10 * time.Second); ; {
		alive = 0
		for pid := range f.childPids() {
			if testenv.ProcessAlive(pid) {
				alive++
			}
		}
		for _, d := range f.daemons {
			if !d.exited() {
				alive++
			}
		}
		if alive == 0 || time.Now().After(end) {
			return alive
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (f *fleet) killChildren() {
	for pid := range f.childPids() {
		if testenv.ProcessAlive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// finish stops the producer, waits until every produced record was
// delivered, stops the daemons with SIGTERM, counts the processes left,
// verifies the events and adds the scenario's row to the report.
func (f *fleet) finish(p *producer, limit time.Duration, check ...func(Result, []Event) []string) Result {
	f.t.Helper()
	if p != nil {
		if err := p.stop(); err != nil {
			f.t.Errorf("producer: %v", err)
		}
	}
	produced := f.producedSoFar()
	want := map[Key]bool{}
	for _, pr := range produced {
		want[pr.Key] = true
	}
	deadline := time.Now().Add(limit)
	for {
		got := 0
		seen := map[Key]bool{}
		for _, e := range f.readEvents() {
			if e.Ev == "rec" && want[e.key()] && !seen[e.key()] {
				seen[e.key()] = true
				got++
			}
		}
		if got == len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	var codes []string
	for _, d := range f.daemons {
		if !d.exited() {
			if c := d.term(60 * time.Second); c != 0 {
				codes = append(codes, fmt.Sprintf("%s exit %d after SIGTERM", d.log, c))
			}
		}
	}
	left := f.processesLeft()
	evs := f.readEvents()
	res := Verify(produced, evs, f.faults)
	for _, c := range check {
		res.Violations = append(res.Violations, c(res, evs)...)
	}
	res.Violations = append(res.Violations, codes...)
	ok := res.OK() && left == 0
	addRow(Row{
		Scenario: f.t.Name(), Injected: strings.Join(f.injected, "; "),
		Produced: res.Produced, Delivered: res.Delivered, Duplicated: res.Duplicates,
		Recover: res.Recover, Left: left, Passed: ok,
		Command: reproduce(f.t.Name()),
	})
	f.t.Logf("%s: produced %d, delivered %d (%d deliveries, %d duplicates), children %d, recovery %s, processes left %d",
		f.t.Name(), res.Produced, res.Delivered, res.Deliveries, res.Duplicates, res.Children, res.Recover.Round(time.Millisecond), left)
	if len(res.Missing) > 0 {
		f.t.Errorf("%d records never delivered, e.g. %v", len(res.Missing), res.Missing[:min(5, len(res.Missing))])
	}
	for _, v := range res.Violations {
		f.t.Error(v)
	}
	if left > 0 {
		f.t.Errorf("%d processes left after the daemons stopped", left)
	}
	return res
}

const reportHeader = `# Reliability

Generated by ` + "`make test-reliability`" + ` on %s (do not edit; %d daemon logs grepped for secrets).

Every scenario runs real ` + "`multilangd`" + ` processes (built from the tree) against kinesalite
and dynalite (DynamoDB Local for the KCL 3.x scenarios: dynalite accepts an UpdateTable that adds
the ` + "`LeaseOwnerToLeaseKeyIndex`" + ` GSI but never creates it), each behind a fault-injecting HTTP proxy (` + "`reliability/faultproxy`" + `), with
` + "`reliability/testdata/checkchild`" + ` as the record processor. The child appends every
(shard, sequence number, sub-sequence number) it receives, with the data's length and CRC, to a
file before it checkpoints the batch. The verifier (` + "`reliability/verify.go`" + `) then proves:

* every record the producer wrote was delivered at least once, with its data intact;
* one child never delivers a record twice or out of order;
* a record delivered twice was delivered again by a later child, above the highest checkpoint
  acknowledged for its shard before that child started (the un-checkpointed window), and either
  after a fault or by another worker (the lease moved: fail-over, or a balancing steal whose old
  owner learns of it at its next renewal, as in Java; its checkpoint then fails with
  ShutdownException);
* in the fleet scenarios with a frozen worker: after SIGCONT, the children it had before the freeze
  deliver nothing more for the leases taken from it (fencing); in the AWS scenarios: no shard is
  delivered by two children for longer than the failover time after the second one started;
* in the KCL 3.x scenarios: after SIGCONT, the frozen ` + "`Leader`" + `-lock holder writes no lease assignment
  and the lock stays with the worker that took it over; in the balancing scenario every lease move
  is a graceful hand-off (W9) and no record is delivered twice (0 duplicates, and at least one
  hand-off seen);
* in the resharding scenarios: no child shard delivers before its parents' last record;
* no checkpoint was accepted for a sequence number the child was never given;
* every daemon exits 0 on SIGTERM at the end, and no daemon or child process is left.

Security: the suite's daemons run at debug level with an access key, secret key and session token
in their environment, and one assumes a role through an STS stand-in with an external id; every log
of the suite (and a /metrics scrape) is grepped for all of them and for the assumed credentials
(TestMain fails on a hit). TestSecurity also checks that the metrics listener is off unless
` + "`metricsListenAddress`" + ` is set and then binds exactly that address, and that
` + "`multilangd iam-policy`" + ` (the least-privilege policy per configuration, documented in
[operations.md](operations.md); e2e TestFleetRequests proves it covers every request a fleet makes)
grants no wildcard action or resource. The fuzz rows run the fuzzers of ` + "`make fuzz`" + ` for a bounded time.

The KCL 3.x scenarios (` + "`TestKCL3…`" + `) run three workers in KCL 3.x mode on a new 3.x table
(` + "`clientVersionConfig = CLIENT_VERSION_CONFIG_3X`" + ` written in the file creates ` + "`Migration3.0`" + ` =
` + "`CLIENT_VERSION_3X`" + `): every worker competes for the ` + "`Leader`" + ` lock (lease 10 s, heartbeat 2 s, the
extension keys ` + "`dynamoDbLockBasedLeaderLeaseDurationInMillis`" + `/` + "`…HeartbeatPeriodInMillis`" + `), the holder
runs lease assignment every 2 s (` + "`leaseAssignmentIntervalMillis`" + `) with
` + "`leaseAssignmentStrategy = LEASE_COUNT_BASED`" + ` (so that the balanced assignment does not depend on
the CPU figures of a shared machine), worker metrics every second, failover 5 s. Their "injected" text ends with what was measured (in
parentheses): who held the lock, when another worker took it over and when the leases moved.

"max recovery" is, over the scenario's faults, the longest a shard went without a new record across
a fault (from its last delivery before or during the fault to the next one; a steady producer makes
an unaffected shard's gap the polling interval). It is a figure, never asserted: the machine is shared.
Run a row's command from the repository root; ` + "`make test-reliability`" + ` runs them all. The soak
(` + "`make soak`" + `, 10 minutes by default, not in CI) writes [reliability-soak.md](reliability-soak.md).
`

// reproduce is the command that runs one scenario.
func reproduce(name string) string {
	if name == "TestSoak" {
		return "make soak"
	}
	return fmt.Sprintf("go test -tags reliability -run '^%s$' ./reliability/", strings.ReplaceAll(name, "/", "$/^"))
}
