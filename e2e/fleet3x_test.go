package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/internal/testenv"
)

// The checking child of the KCL 3.x fleet tests (e2e/testdata/fleetchild),
// built once on first use.
var (
	fleetChildOnce sync.Once
	fleetChildPath string
	fleetChildErr  error
)

func fleetChild(t *testing.T) string {
	t.Helper()
	fleetChildOnce.Do(func() {
		fleetChildPath = filepath.Join(filepath.Dir(binDaemon), "fleetchild")
		fleetChildErr = testenv.BuildBinary(fleetChildPath, "./e2e/testdata/fleetchild", false)
	})
	if fleetChildErr != nil {
		t.Fatalf("build fleetchild: %v", fleetChildErr)
	}
	return fleetChildPath
}

// fleet3x is several multilangd daemon processes of one application, each
// with the checking child, all recording into one events file.
type fleet3x struct {
	*env
	events string
	base   map[string]string
	// cgroups puts each worker in a CPU cgroup of its own, so that its
	// published CPU utilisation is its own (testenv.CPUCgroup).
	cgroups bool
	// childEnv is added to every worker's environment (the checking
	// child's switches).
	childEnv []string
	mu       sync.Mutex
	workers  map[string]*daemon
}

// newFleet3x prepares a fleet on e; base are the properties every worker
// gets on top of env.props' defaults (short failover, the checking child).
func newFleet3x(e *env, base map[string]string) *fleet3x {
	kv := map[string]string{
		"executableName":     fleetChild(e.t),
		"failoverTimeMillis": "3000",
		// short worker-metrics schedule: a worker is "active" for a 3.x
		// leader within seconds
		"workerMetricsReporterFreqInMillis":           "1000",
		"inMemoryWorkerMetricsCaptureFrequencyMillis": "200",
		// a short Leader lock (extension keys): a stale lock is taken over
		// within seconds
		"dynamoDbLockBasedLeaderLeaseDurationInMillis":   "6000",
		"dynamoDbLockBasedLeaderHeartbeatPeriodInMillis": "1000",
	}
	for k, v := range base {
		kv[k] = v
	}
	e.logLevel = "info"
	return &fleet3x{env: e, events: filepath.Join(e.dir, "events.jsonl"), base: kv, workers: map[string]*daemon{}}
}

// fleet3xProps are the properties of a pure multilangd KCL 3.x fleet:
// clientVersionConfig explicit (creates Migration3.0 = CLIENT_VERSION_3X),
// a short failover and assignment interval.
func fleet3xProps() map[string]string {
	return map[string]string{
		"clientVersionConfig":           "CLIENT_VERSION_CONFIG_3X",
		"failoverTimeMillis":            "5000",
		"leaseAssignmentIntervalMillis": "2000",
	}
}

// start runs worker id (its own properties file: workerId = id, plus
// extra) with the checking child.
func (f *fleet3x) start(id string, extra map[string]string) *daemon {
	f.t.Helper()
	kv := map[string]string{"workerId": id}
	for k, v := range f.base {
		kv[k] = v
	}
	for k, v := range extra {
		kv[k] = v
	}
	props := f.props(id, kv)
	argv := []string{binDaemon, "-p", props, "--log-level", f.logLevel}
	if f.cgroups {
		argv = testenv.NewCPUCgroup(f.t, id).Wrap(argv)
	}
	env := append([]string{"FLEET_EVENTS=" + f.events, "FLEET_WORKER=" + id, "FLEET_BURN_WHEN=" + f.burnMarker(id)}, f.childEnv...)
	d := f.startCommand(id, "", argv, env...)
	f.mu.Lock()
	f.workers[id] = d
	f.mu.Unlock()
	return d
}

// burnMarker is the file whose existence makes worker id's children burn
// CPU.
func (f *fleet3x) burnMarker(id string) string { return filepath.Join(f.dir, "burn-"+id) }

func (f *fleet3x) running() []*daemon {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ds []*daemon
	for _, d := range f.workers {
		if !d.exited() {
			ds = append(ds, d)
		}
	}
	return ds
}

// fleetEvent is one line of the checking child's events file.
type fleetEvent struct {
	Ev     string `json:"ev"`
	Worker string `json:"w"`
	Pid    int    `json:"pid"`
	Shard  string `json:"shard"`
	Seq    string `json:"seq"`
	Sub    int64  `json:"sub"`
	T      int64  `json:"t"`
}

func (ev fleetEvent) rec() string { return fmt.Sprintf("%s/%s/%d", ev.Shard, ev.Seq, ev.Sub) }

// readEvents parses the events file (a line torn by a SIGKILL is skipped).
func (f *fleet3x) readEvents() []fleetEvent {
	f.t.Helper()
	b, err := os.ReadFile(f.events)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var out []fleetEvent
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev fleetEvent
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Ev != "" {
			out = append(out, ev)
		}
	}
	return out
}

// tally counts the records the children were given.
type tally struct {
	deliveries int            // rec events
	distinct   int            // distinct (shard, seq, sub)
	times      map[string]int // record -> deliveries
}

func (f *fleet3x) tally() tally {
	tl := tally{times: map[string]int{}}
	for _, ev := range f.readEvents() {
		if ev.Ev == "rec" {
			tl.deliveries++
			tl.times[ev.rec()]++
		}
	}
	tl.distinct = len(tl.times)
	return tl
}

// redelivered is how many deliveries repeated an earlier one.
func (t tally) redelivered() int { return t.deliveries - t.distinct }

// waitRecords waits until n distinct records were given to the children.
func (f *fleet3x) waitRecords(n int, limit time.Duration) tally {
	f.t.Helper()
	var tl tally
	waitFor(f.t, limit, fmt.Sprintf("%d distinct records processed", n), func() bool {
		tl = f.tally()
		return tl.distinct >= n
	}, f.running()...)
	return tl
}

// events of kind ev, optionally of one worker and shard ("" = any).
func (f *fleet3x) eventsOf(ev, worker, shard string) []fleetEvent {
	var out []fleetEvent
	for _, e := range f.readEvents() {
		if e.Ev == ev && (worker == "" || e.Worker == worker) && (shard == "" || e.Shard == shard) {
			out = append(out, e)
		}
	}
	return out
}

// item reads one item of the lease table (consistent; nil when absent).
func (f *fleet3x) item(key string) map[string]types.AttributeValue {
	out, err := f.ddb.DynamoDB().GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(f.app),
		Key: map[string]types.AttributeValue{"leaseKey": sAttr(key)}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil
	}
	return out.Item
}

// metricsPublished reports whether every worker in ids has a
// WorkerMetricStats item in the lease table.
func (f *fleet3x) metricsPublished(ids ...string) bool {
	for _, id := range ids {
		if attrStr(f.item(id), "entityType") != "WORKER_METRIC_STATS" {
			return false
		}
	}
	return true
}
