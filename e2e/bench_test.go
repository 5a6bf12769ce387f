package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/retrieval/kpl"
	"github.com/multilangd/multilangd/seqnum"
)

// TestBench measures end-to-end throughput of the real binary: records are
// put first, then the daemon starts and the clock runs until every lease is
// checkpointed at its shard's last record. It only runs with
// MULTILANGD_BENCH=1 (scripts/bench.sh, `make bench`) and prints one
// "BENCH ..." line per scenario.
func TestBench(t *testing.T) {
	if os.Getenv("MULTILANGD_BENCH") == "" {
		t.Skip("set MULTILANGD_BENCH=1 (make bench) to run the throughput benchmark")
	}
	records := 100000
	if v, err := strconv.Atoi(os.Getenv("MULTILANGD_BENCH_RECORDS")); err == nil && v > 0 {
		records = v
	}
	for _, sc := range []struct {
		name    string
		shards  int32
		child   string // "go" (minimal Go child) or "node" (aws-kcl sample)
		aggSize int    // user records per KPL aggregate; 0 = plain records
		records int
	}{
		{"1 shard, Go child, 1 KiB records", 1, "go", 0, records},
		{"4 shards, Go child, 1 KiB records", 4, "go", 0, records},
		{"4 shards, Go child, KPL aggregates of 100 x 1 KiB", 4, "go", 100, records},
		{"4 shards, aws-kcl Node sample, 1 KiB records", 4, "node", 0, records / 5},
	} {
		t.Run(sc.name, func(t *testing.T) {
			e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, sc.shards)
			last, bytes := e.putBench(sc.records, sc.aggSize)
			extra := map[string]string{"failoverTimeMillis": "10000", "timeoutInSeconds": ""}
			if sc.child == "go" {
				extra["executableName"] = binAggChild
			}
			e.logLevel = "warn"
			d := e.startDaemon("daemon", e.props("app", extra), "", "AGGCHILD_MODE=normal")
			start := time.Now()
			waitFor(t, 10*time.Minute, "every shard checkpointed at its last record", func() bool { return e.checkpointedAt(last) }, d)
			el := time.Since(start)
			rss := maxRSS(d.cmd.Process.Pid)
			d.stop(40 * time.Second)
			fmt.Printf("BENCH %s | records=%d | seconds=%.2f | records/s=%.0f | MB/s=%.1f | daemon max RSS MiB=%.0f\n",
				sc.name, sc.records, el.Seconds(), float64(sc.records)/el.Seconds(), float64(bytes)/el.Seconds()/1e6, rss)
		})
	}
}

// putBench writes n user records of 1 KiB (optionally KPL-aggregated) with
// 4 concurrent writers and returns each shard's last sequence number and the
// payload bytes.
func (e *env) putBench(n, aggSize int) (map[string]string, int) {
	e.t.Helper()
	payload := strings.Repeat("x", 1024)
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
	const shards = 4
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, shards)
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
		peak := maxRSS(d.cmd.Process.Pid)
		d.stop(40 * time.Second)
		fmt.Printf("STARTUP %d shards, %s | first processRecords after=%.3fs | every shard after=%.3fs | idle RSS MiB=%.0f | peak RSS MiB=%.0f\n",
			shards, run, first.Seconds(), all.Seconds(), idle, peak)
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
