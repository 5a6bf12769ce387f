package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// Java's datums for a run that processes records, takes and renews leases
// (ProcessTask, KinesisDataFetcher, ApplicationTracker, InitializeTask,
// DynamoDBLeaseRenewer, DynamoDBLeaseTaker): name -> unit, by operation and
// the dimensions besides Operation, and whether they are DETAILED.
var javaDatums = []struct {
	op, dim, name, unit string
	detailed            bool
}{
	{"ProcessTask", "ShardId", "RecordsProcessed", "Count", false},
	{"ProcessTask", "ShardId", "DataBytesProcessed", "Bytes", false},
	{"ProcessTask", "ShardId", "MillisBehindLatest", "Milliseconds", false},
	{"ProcessTask", "ShardId", "RecordProcessor.processRecords.Time", "Milliseconds", false},
	{"ProcessTask", "ShardId", "Success", "Count", false},
	{"ProcessTask", "ShardId", "Time", "Milliseconds", false},
	{"ProcessTask", "ShardId", "KinesisDataFetcher.getRecords.Success", "Count", true},
	{"ProcessTask", "ShardId", "KinesisDataFetcher.getRecords.Time", "Milliseconds", true},
	{"ProcessTask", "ShardId", "KinesisDataFetcher.getShardIterator.Success", "Count", true},
	{"ProcessTask", "ShardId", "KinesisDataFetcher.getShardIterator.Time", "Milliseconds", true},
	{"ApplicationTracker", "", "MillisBehindLatest", "Milliseconds", false},
	{"InitializeTask", "", "RecordProcessor.initialize.Time", "Milliseconds", false},
	{"RenewAllLeases", "WorkerIdentifier", "CurrentLeases", "Count", false},
	{"RenewAllLeases", "WorkerIdentifier", "LostLeases", "Count", false},
	{"RenewAllLeases", "WorkerIdentifier", "Success", "Count", false},
	{"RenewAllLeases", "WorkerIdentifier", "Time", "Milliseconds", false},
	{"RenewAllLeases", "WorkerIdentifier", "RenewLease.Success", "Count", true},
	{"RenewAllLeases", "WorkerIdentifier", "RenewLease.Time", "Milliseconds", true},
	{"TakeLeases", "WorkerIdentifier", "TakenLeases", "Count", false},
	{"TakeLeases", "WorkerIdentifier", "UntakenLeases", "Count", false},
	{"TakeLeases", "WorkerIdentifier", "ExpiredLeases", "Count", false},
	{"TakeLeases", "WorkerIdentifier", "LeaseSpillover", "Count", false},
	{"TakeLeases", "WorkerIdentifier", "NumWorkers", "Count", false},
	{"TakeLeases", "WorkerIdentifier", "VeryOldLeases", "Count", false},
	{"TakeLeases", "WorkerIdentifier", "Success", "Count", false},
	{"TakeLeases", "WorkerIdentifier", "Time", "Milliseconds", false},
	{"TakeLeases", "WorkerIdentifier", "NeededLeases", "Count", true},
	{"TakeLeases", "WorkerIdentifier", "LeasesToTake", "Count", true},
	{"TakeLeases", "WorkerIdentifier", "TotalLeases", "Count", true},
	{"TakeLeases", "WorkerIdentifier", "ListLeases.Success", "Count", true},
	{"TakeLeases", "WorkerIdentifier", "ListLeases.Time", "Milliseconds", true},
	{"TakeLeases", "WorkerIdentifier", "TakeLease.Success", "Count", true},
	{"TakeLeases", "WorkerIdentifier", "TakeLease.Time", "Milliseconds", true},
}

// seen is what a namespace received: datum key -> unit.
func seen(cw *testenv.CloudWatch, namespace string) map[string]string {
	out := map[string]string{}
	for _, r := range cw.Requests() {
		if r.Namespace != namespace {
			continue
		}
		for _, d := range r.Datums {
			out[d.Key()] = d.Unit
		}
	}
	return out
}

func datumKey(op, dim, dimValue, name string) string {
	if dim == "" {
		return fmt.Sprintf("%s{Operation=%s}", name, op)
	}
	return fmt.Sprintf("%s{Operation=%s,%s=%s}", name, op, dim, dimValue)
}

// The daemon publishes Java's CloudWatch datums, signed (the stand-in checks
// every SigV4 signature) and in requests of at most 20 datums: DETAILED (the
// default) sends them all with Java's names, units and dimensions, SUMMARY
// leaves out the DETAILED ones, NONE sends nothing. During a CloudWatch
// outage every record is still delivered and the local queue stays within
// metricsMaxQueueSize.
func TestCloudWatchMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon against the emulators")
	}
	cw := testenv.StartCloudWatch()
	defer cw.Close()
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 2)
	ids := e.put(putOptions{n: 200})
	start := func(name, level string, extra map[string]string) (*daemon, string) {
		kv := map[string]string{
			"executableName":                    binAggChild,
			"applicationName":                   e.app + "-" + name,
			"workerId":                          "worker-" + name,
			"metricsLevel":                      level,
			"metricsBufferTimeMillis":           "500",
			"cloudWatchClient.endpointOverride": cw.Endpoint,
		}
		for k, v := range extra {
			kv[k] = v
		}
		out := filepath.Join(e.dir, name+".jsonl")
		return e.startDaemon(name, e.props(name, kv), out, "AGGCHILD_MODE=normal"), out
	}

	t.Run("outage", func(t *testing.T) {
		cw.SetDown(true)
		defer cw.SetDown(false)
		addr := httpAddr(t)
		d, out := start("outage", "DETAILED", map[string]string{"metricsMaxQueueSize": "10", "metricsListenAddress": addr})
		waitDeliveredOnce(t, d, out, ids, 2, 90*time.Second)
		gauge := regexp.MustCompile(`(?m)^multilangd_cloudwatch_(queued_metrics|dropped_metrics_total|failed_datums_total) (\S+)$`)
		var vals map[string]float64
		waitFor(t, 30*time.Second, "failed requests and dropped metrics", func() bool {
			_, body := get(addr, "/metrics")
			vals = map[string]float64{}
			for _, m := range gauge.FindAllStringSubmatch(body, -1) {
				vals[m[1]], _ = strconv.ParseFloat(m[2], 64)
			}
			return vals["failed_datums_total"] > 0 && vals["dropped_metrics_total"] > 0
		}, d)
		if q := vals["queued_metrics"]; q > 10 {
			t.Fatalf("%v metrics queued during the outage, bound is metricsMaxQueueSize = 10", q)
		}
		t.Logf("during the outage: %v", vals)
		d.kill()
	})

	daemons := map[string]*daemon{}
	outs := map[string]string{}
	for _, level := range []string{"DETAILED", "SUMMARY", "NONE"} {
		daemons[level], outs[level] = start(strings.ToLower(level), level, nil)
	}
	for level, d := range daemons {
		waitDeliveredOnce(t, d, outs[level], ids, 2, 90*time.Second)
	}
	// Every datum of the run, shard 0 standing for both shards.
	want := func(level string) []string {
		var keys []string
		for _, j := range javaDatums {
			if level == "SUMMARY" && j.detailed {
				continue
			}
			v := "worker-" + strings.ToLower(level)
			if j.dim == "ShardId" {
				v = "shardId-000000000000"
			}
			keys = append(keys, datumKey(j.op, j.dim, v, j.name)+" "+j.unit)
		}
		return keys
	}
	got := func(level string) []string {
		var keys []string
		for k, unit := range seen(cw, e.app+"-"+strings.ToLower(level)) {
			keys = append(keys, k+" "+unit)
		}
		return keys
	}
	for _, level := range []string{"DETAILED", "SUMMARY"} {
		var missing []string
		deadline := time.Now().Add(60 * time.Second)
		for {
			g := got(level)
			missing = slices.DeleteFunc(want(level), func(w string) bool { return slices.Contains(g, w) })
			if len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) {
				slices.Sort(g)
				t.Fatalf("%s: missing %d datums %v; received:\n%s", level, len(missing), missing, strings.Join(g, "\n"))
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	for _, j := range javaDatums {
		if !j.detailed {
			continue
		}
		for _, g := range got("SUMMARY") {
			if strings.HasPrefix(g, j.name+"{") {
				t.Errorf("SUMMARY sent the DETAILED datum %s", g)
			}
		}
	}
	if g := got("NONE"); len(g) > 0 {
		t.Errorf("NONE sent %d datums, e.g. %s", len(g), g[0])
	}
	for _, r := range cw.Requests() {
		if len(r.Datums) > 20 {
			t.Errorf("a PutMetricData with %d datums", len(r.Datums))
		}
	}
	if r := cw.Rejected(); len(r) > 0 {
		t.Errorf("the stand-in rejected %d requests, e.g. %s", len(r), r[0])
	}
	checkProcessTaskSums(t, cw, e.app+"-detailed")
	t.Logf("DETAILED namespace received %d distinct metrics, SUMMARY %d", len(got("DETAILED")), len(got("SUMMARY")))
	for _, d := range daemons {
		if code := d.stop(40 * time.Second); code != 0 {
			t.Errorf("%s: exit code %d", d.name, code)
		}
	}
}

// checkProcessTaskSums checks the values of ProcessTask's record datums
// (Java ProcessTask.call): the records delivered are counted and their
// payload bytes summed, every record having a non-empty payload.
func checkProcessTaskSums(t *testing.T, cw *testenv.CloudWatch, namespace string) {
	t.Helper()
	sums := map[string]float64{}
	for _, r := range cw.Requests() {
		if r.Namespace != namespace {
			continue
		}
		for _, d := range r.Datums {
			if d.Dimensions["Operation"] == "ProcessTask" && d.Dimensions["ShardId"] != "" {
				sums[d.Name] += d.Sum
			}
		}
	}
	recs, bytes := sums["RecordsProcessed"], sums["DataBytesProcessed"]
	if recs < 200 || bytes < recs {
		t.Errorf("ProcessTask sums: RecordsProcessed %v (want ≥ 200 records delivered), DataBytesProcessed %v (want ≥ one byte a record)", recs, bytes)
	}
	t.Logf("ProcessTask sums: RecordsProcessed %v, DataBytesProcessed %v", recs, bytes)
}
