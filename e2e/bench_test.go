package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/multilangd/multilangd/internal/kinesisstub"
	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/retrieval/kpl"
	"github.com/multilangd/multilangd/seqnum"
)

// TestBench is `make bench`'s referee (scripts/bench.sh writes
// docs/performance.md from its output). In the same run, on the same
// pre-loaded stream, it times the plain aws-sdk-go-v2 GetRecords loop
// (e2e/testdata/plainloop: every shard in parallel, the daemon's idle time
// after every call, no daemon) and the real multilangd binary (from exec
// until every lease is checkpointed at its shard's last record), and
// reports throughput, CPU µs per user record (from the process's own
// user+system time: the daemon only, never its children) and peak RSS, as
// medians of MULTILANGD_BENCH_RUNS runs (default 3). Two servers: the
// in-memory stand-in (internal/kinesisstub), which costs almost nothing and
// so measures the clients, and kinesalite. Opt-in with MULTILANGD_BENCH=1;
// prints one "BENCHROW" table row per case.
func TestBench(t *testing.T) {
	if os.Getenv("MULTILANGD_BENCH") == "" {
		t.Skip("set MULTILANGD_BENCH=1 (make bench) to run the throughput benchmark")
	}
	runs := 3
	if v, err := strconv.Atoi(os.Getenv("MULTILANGD_BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	var cases []benchCase
	for _, shards := range []int{1, 4, 16} {
		for _, size := range []int{100, 1024} {
			for _, agg := range []int{0, 100} {
				cases = append(cases, benchCase{server: "stand-in", shards: shards, size: size, agg: agg, child: "go"})
			}
		}
	}
	cases = append(cases,
		benchCase{server: "stand-in", shards: 4, size: 1024, child: "node"},
		benchCase{server: "kinesalite", shards: 1, size: 1024, child: "go"},
		benchCase{server: "kinesalite", shards: 4, size: 1024, child: "go"},
		benchCase{server: "kinesalite", shards: 4, size: 1024, agg: 100, child: "go"},
		benchCase{server: "kinesalite", shards: 16, size: 1024, child: "go"},
		benchCase{server: "kinesalite", shards: 4, size: 1024, child: "node"},
	)
	if f := os.Getenv("MULTILANGD_BENCH_FILTER"); f != "" {
		var keep []benchCase
		for _, c := range cases {
			if strings.Contains(c.name(), f) {
				keep = append(keep, c)
			}
		}
		cases = keep
	}
	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) { runBenchCase(t, c, runs) })
	}
}

// benchCase is one row of the bench table.
type benchCase struct {
	server string // "stand-in" or "kinesalite"
	shards int
	size   int    // payload bytes per user record
	agg    int    // user records per KPL aggregate; 0 = plain records
	child  string // "go" (e2e/testdata/minchild) or "node" (aws-kcl sample)
}

func (c benchCase) name() string {
	kind := "plain"
	if c.agg > 0 {
		kind = fmt.Sprintf("KPL %d/aggregate", c.agg)
	}
	return fmt.Sprintf("%s, %d shards, %d B, %s, %s child", c.server, c.shards, c.size, kind, c.child)
}

// records is the number of user records of the case's stream: enough
// that every shard needs several calls, so start-up (which the daemon's
// time includes) does not decide the ratio.
func (c benchCase) records() int {
	n := 100000
	if c.size <= 100 {
		n = 200000
	}
	if c.shards >= 16 {
		n *= 2
		if c.size <= 100 {
			n *= 2
		}
	}
	if c.server == "kinesalite" {
		n = 60000 // kinesalite stores slowly
	}
	if c.child == "node" {
		n = 20000 // the sample logs a line per record
	}
	return n
}

// benchRun is one timed process.
type benchRun struct {
	seconds, cpuMicrosPerRecord, peakMiB float64
}

func (r benchRun) recordsPerSecond(n int) float64 { return float64(n) / r.seconds }

func runBenchCase(t *testing.T, c benchCase, runs int) {
	e, last := newBenchEnv(t, c)
	n := c.records()
	var loops, daemons []benchRun
	for i := 0; i < runs; i++ {
		loops = append(loops, e.runPlainLoop(last, n))
		daemons = append(daemons, e.runBenchDaemon(c, last, n, i))
	}
	loop, dmn := medianRun(loops), medianRun(daemons)
	fmt.Printf("BENCHROW | %s | %d | %d B | %s | %s | %d | %.0f | %.0f | %.2f | %.1f | %.1f | %.2f | %.0f | %.0f |\n",
		c.server, c.shards, c.size, kindName(c.agg), c.child, n,
		loop.recordsPerSecond(n), dmn.recordsPerSecond(n), dmn.recordsPerSecond(n)/loop.recordsPerSecond(n),
		loop.cpuMicrosPerRecord, dmn.cpuMicrosPerRecord, dmn.cpuMicrosPerRecord/loop.cpuMicrosPerRecord,
		loop.peakMiB, dmn.peakMiB)
}

func kindName(agg int) string {
	if agg == 0 {
		return "plain"
	}
	return fmt.Sprintf("KPL×%d", agg)
}

// medianRun takes each figure's median separately.
func medianRun(rs []benchRun) benchRun {
	med := func(f func(benchRun) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	return benchRun{
		seconds:            med(func(r benchRun) float64 { return r.seconds }),
		cpuMicrosPerRecord: med(func(r benchRun) float64 { return r.cpuMicrosPerRecord }),
		peakMiB:            med(func(r benchRun) float64 { return r.peakMiB }),
	}
}

// newBenchEnv starts the case's servers (dynalite for the leases) and
// pre-loads the stream; last maps shard ids to their last sequence number.
func newBenchEnv(t *testing.T, c benchCase) (*env, map[string]string) {
	t.Helper()
	if c.server == "kinesalite" {
		e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, int32(c.shards))
		last, _ := e.putBenchSized(c.records(), c.agg, c.size)
		return e, last
	}
	e := &env{t: t, dir: t.TempDir(), stream: "bench", app: "bench"}
	srv, err := kinesisstub.Start(kinesisstub.Config{Stream: e.stream, Shards: c.shards,
		Records: c.records() / c.shards, RecordSize: c.size, AggSize: c.agg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ddb, err := testenv.Start(context.Background(), testenv.Dynalite, testenv.StartOptions{})
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	t.Cleanup(func() { _ = ddb.Stop() })
	e.ddb = ddb
	e.kin = &testenv.Emulator{Kind: "kinesis stand-in", Endpoint: srv.URL}
	return e, srv.Last
}

// runPlainLoop times the plain GetRecords loop over the whole stream.
func (e *env) runPlainLoop(last map[string]string, users int) benchRun {
	e.t.Helper()
	var targets []string
	for sh, seq := range last {
		targets = append(targets, sh+"="+seq)
	}
	cmd := exec.Command(binPlainLoop, "-endpoint", e.kin.Endpoint, "-stream", e.stream, "-idle", "200ms", "-targets", strings.Join(targets, ","))
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+testenv.AccessKey, "AWS_SECRET_ACCESS_KEY="+testenv.SecretKey, "AWS_REGION="+testenv.Region)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("plain loop: %v\n%s%s", err, out.String(), errOut.String())
	}
	el := time.Since(start)
	var recs, data, hwm int64
	if _, err := fmt.Sscanf(strings.TrimSpace(out.String()), "records=%d bytes=%d hwm_kb=%d", &recs, &data, &hwm); err != nil {
		e.t.Fatalf("plain loop output %q: %v", out.String(), err)
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return benchRun{seconds: el.Seconds(), cpuMicrosPerRecord: float64(cpu.Microseconds()) / float64(users), peakMiB: float64(hwm) / 1024}
}

// runBenchDaemon times the real binary until every lease is checkpointed
// at its shard's last record (fresh lease table per run).
func (e *env) runBenchDaemon(c benchCase, last map[string]string, users, run int) benchRun {
	e.t.Helper()
	e.app = fmt.Sprintf("bench-%d", run)
	extra := map[string]string{"failoverTimeMillis": "10000", "timeoutInSeconds": "", "workerId": "bench-worker"}
	if c.child == "go" {
		extra["executableName"] = binMinChild
	}
	e.logLevel = "warn"
	start := time.Now()
	d := e.startDaemon(fmt.Sprintf("daemon-%d", run), e.props(e.app, extra), "")
	waitFor(e.t, 10*time.Minute, "every shard checkpointed at its last record", func() bool { return e.checkpointedAt(last) }, d)
	el := time.Since(start)
	cpu := procCPU(d.cmd.Process.Pid)
	peak := maxRSS(d.cmd.Process.Pid)
	d.stop(40 * time.Second)
	return benchRun{seconds: el.Seconds(), cpuMicrosPerRecord: float64(cpu.Microseconds()) / float64(users), peakMiB: peak}
}

// procCPU returns a process's own user+system CPU time (/proc/PID/stat
// utime and stime; its children are not included).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// putBench writes n user records of 1 KiB (optionally KPL-aggregated) with
// 4 concurrent writers and returns each shard's last sequence number and the
// payload bytes.
func (e *env) putBench(n, aggSize int) (map[string]string, int) {
	e.t.Helper()
	return e.putBenchSized(n, aggSize, 1024)
}

// putBenchSized is putBench with size-byte payloads.
func (e *env) putBenchSized(n, aggSize, size int) (map[string]string, int) {
	e.t.Helper()
	payload := strings.Repeat("x", size)
	var (
		mu    sync.Mutex
		last  = map[string]string{}
		bytes int
		wg    sync.WaitGroup
		errs  = make(chan error, 4)
	)
	per := n / 4
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var entries []ktypes.PutRecordsRequestEntry
			entrySize := 0
			flush := func() error {
				for len(entries) > 0 {
					out, err := e.kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: entries})
					if err != nil {
						return err
					}
					var retry []ktypes.PutRecordsRequestEntry
					mu.Lock()
					for i, r := range out.Records {
						if r.ErrorCode != nil {
							retry = append(retry, entries[i])
							continue
						}
						sh, seq := aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber)
						if cur, ok := last[sh]; !ok || seqnum.MustCompare(seqnum.New(seq, 0), seqnum.New(cur, 0)) > 0 {
							last[sh] = seq
						}
					}
					mu.Unlock()
					entries = retry
				}
				entrySize = 0
				return nil
			}
			for i := 0; i < per; {
				id := w*per + i
				if aggSize > 0 {
					var urs []kpl.UserRecord
					pk := fmt.Sprintf("agg-%d", id)
					for j := 0; j < aggSize && i < per; j++ {
						urs = append(urs, kpl.UserRecord{PartitionKey: pk, Data: []byte(payload)})
						i++
					}
					blob, err := kpl.Aggregate(urs)
					if err != nil {
						errs <- err
						return
					}
					entries = append(entries, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String(pk), Data: blob})
					entrySize += len(blob)
				} else {
					entries = append(entries, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("pk-%d", id)), Data: []byte(payload)})
					entrySize += len(payload)
					i++
				}
				if len(entries) == 500 || entrySize > 4<<20 {
					if err := flush(); err != nil {
						errs <- err
						return
					}
				}
			}
			if err := flush(); err != nil {
				errs <- err
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatalf("put: %v", err)
	}
	bytes = 4 * per * len(payload)
	return last, bytes
}

// maxRSS returns the process's peak resident set size in MiB (VmHWM).
func maxRSS(pid int) float64 { return procStatusMiB(pid, "VmHWM:") }

// procStatusMiB reads one kB field of /proc/PID/status (VmHWM peak, VmRSS
// current) in MiB; 0 when unreadable.
func procStatusMiB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// TestBenchStartup measures what users of the Java daemon feel most: the time
// from starting the binary until a child receives its first processRecords
// and until every shard of a 4-shard stream has had one (lease table created
// or found, shard sync, leases taken, children spawned), first on a fresh
// lease table, then on a restart against the existing one; and the daemon's
// resident memory once idle. The first processRecords is seen as the first
// record line the child writes to KCL_SAMPLE_OUTPUT, polled every 2 ms.
// Opt-in like TestBench; prints "STARTUP ..." lines.
func TestBenchStartup(t *testing.T) {
	if os.Getenv("MULTILANGD_BENCH") == "" {
		t.Skip("set MULTILANGD_BENCH=1 (make bench) to run the start-up benchmark")
	}
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d shards", shards), func(t *testing.T) { benchStartup(t, shards) })
	}
}

func benchStartup(t *testing.T, shards int) {
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, int32(shards))
	e.putBench(40, 0)
	e.logLevel = "warn"
	props := e.props("app", map[string]string{"executableName": binAggChild, "failoverTimeMillis": "10000", "timeoutInSeconds": ""})
	for _, run := range []string{"fresh lease table", "existing lease table"} {
		out := filepath.Join(e.dir, strings.ReplaceAll(run, " ", "-")+".out")
		if run != "fresh lease table" {
			e.putBench(40, 0) // new records for the restarted daemon to deliver
		}
		start := time.Now()
		d := e.startDaemon("daemon-"+strings.Fields(run)[0], props, out, "AGGCHILD_MODE=normal")
		first, all := waitFirstDeliveries(t, d, out, shards, start)
		time.Sleep(10 * time.Second) // idle: renewals and empty polls only
		idle := procStatusMiB(d.cmd.Process.Pid, "VmRSS:")
		anon, file := procStatusMiB(d.cmd.Process.Pid, "RssAnon:"), procStatusMiB(d.cmd.Process.Pid, "RssFile:")
		peak := maxRSS(d.cmd.Process.Pid)
		d.stop(40 * time.Second)
		fmt.Printf("STARTUP %d shards, %s | first processRecords after=%.3fs | every shard after=%.3fs | idle RSS MiB=%.0f | peak RSS MiB=%.0f | idle anonymous MiB=%.1f | idle file-backed MiB=%.1f\n",
			shards, run, first.Seconds(), all.Seconds(), idle, peak, anon, file)
	}
}

// waitFirstDeliveries polls the child output file until a record appears
// (first) and until records from n shards appeared (all), both measured from
// start.
func waitFirstDeliveries(t *testing.T, d *daemon, out string, n int, start time.Time) (first, all time.Duration) {
	t.Helper()
	deadline := start.Add(2 * time.Minute)
	for all == 0 {
		if d.exited() {
			t.Fatalf("%s exited before delivering to every shard: %v", d.name, d.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery on every shard within 2m (first=%s)", first)
		}
		if st, err := os.Stat(out); err == nil && st.Size() > 0 {
			if first == 0 {
				first = time.Since(start)
			}
			if len(byShard(readOutput(t, out))) >= n {
				all = time.Since(start)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return first, all
}

// TestBenchIdleLeases measures the daemon's resident memory holding 256
// leases of idle shards (in-memory Kinesis stand-in with empty shards,
// minimal Go child per shard) once every lease is held and the daemon has
// idled for 15 s. Opt-in like TestBench; prints one "IDLE ..." line.
func TestBenchIdleLeases(t *testing.T) {
	if os.Getenv("MULTILANGD_BENCH") == "" {
		t.Skip("set MULTILANGD_BENCH=1 (make bench) to run the idle-leases benchmark")
	}
	const shards = 256
	e, _ := newBenchEnv(t, benchCase{server: "stand-in", shards: shards, size: 100, child: "go"})
	e.app = "idle"
	e.logLevel = "warn"
	props := e.props(e.app, map[string]string{"executableName": binMinChild, "failoverTimeMillis": "10000", "timeoutInSeconds": "",
		"workerId": "idle-worker", "maxLeasesForWorker": "1000"})
	start := time.Now()
	d := e.startDaemon("daemon", props, "")
	waitFor(t, 5*time.Minute, "every lease held", func() bool {
		ls := e.leases()
		if len(ls) != shards {
			return false
		}
		for _, l := range ls {
			if l.Owner != "idle-worker" {
				return false
			}
		}
		return true
	}, d)
	held := time.Since(start)
	time.Sleep(15 * time.Second)
	pid := d.cmd.Process.Pid
	fmt.Printf("IDLE %d leases held | held after=%.1fs | idle RSS MiB=%.0f | peak RSS MiB=%.0f | idle anonymous MiB=%.1f | idle file-backed MiB=%.1f\n",
		shards, held.Seconds(), procStatusMiB(pid, "VmRSS:"), maxRSS(pid), procStatusMiB(pid, "RssAnon:"), procStatusMiB(pid, "RssFile:"))
	d.stop(60 * time.Second)
}
