//go:build reliability

package reliability

import (
	"fmt"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/reliability/faultproxy"
)

// awsFault is one AWS fault scenario: a fault on the Kinesis proxy, the
// DynamoDB proxy or both, for a while.
type awsFault struct {
	name     string
	what     string
	kinesis  *faultproxy.Fault
	dynamodb *faultproxy.Fault
	lasts    time.Duration
	// restart SIGKILLs w2 when the fault starts and starts it again, so
	// that start-up calls (DescribeStreamSummary, ListShards,
	// GetShardIterator) meet the fault.
	restart bool
}

var (
	throughput = func(ops ...string) *faultproxy.Fault {
		return &faultproxy.Fault{Ops: ops, Status: 400, ErrorType: "ProvisionedThroughputExceededException", Permille: 700}
	}
	outage = &faultproxy.Fault{Reset: true}
)

var awsFaults = []awsFault{
	{name: "KinesisLatency", what: "Kinesis: 2 s latency on 30% of requests for 20 s",
		kinesis: &faultproxy.Fault{Latency: 2 * time.Second, Permille: 300}, lasts: 20 * time.Second},
	{name: "DynamoDBLatency", what: "DynamoDB: 1.5 s latency on 30% of requests for 20 s",
		dynamodb: &faultproxy.Fault{Latency: 1500 * time.Millisecond, Permille: 300}, lasts: 20 * time.Second},
	{name: "Resets", what: "Kinesis and DynamoDB: TCP reset of 20% of requests for 20 s",
		kinesis: &faultproxy.Fault{Reset: true, Permille: 200}, dynamodb: &faultproxy.Fault{Reset: true, Permille: 200}, lasts: 20 * time.Second},
	{name: "InternalErrors", what: "Kinesis and DynamoDB: HTTP 500 InternalFailure on 30% of requests for 20 s",
		kinesis:  &faultproxy.Fault{Status: 500, ErrorType: "InternalFailure", Permille: 300},
		dynamodb: &faultproxy.Fault{Status: 500, ErrorType: "InternalServerError", Permille: 300}, lasts: 20 * time.Second},
	{name: "KinesisThrottling", what: "Kinesis: ProvisionedThroughputExceededException on 70% of GetRecords for 20 s",
		kinesis: throughput("GetRecords"), lasts: 20 * time.Second},
	{name: "DynamoDBThrottling", what: "DynamoDB: ProvisionedThroughputExceededException on 70% of requests for 20 s",
		dynamodb: throughput(), lasts: 20 * time.Second},
	{name: "ThrottlingException", what: "Kinesis and DynamoDB: ThrottlingException on 50% of requests for 20 s",
		kinesis:  &faultproxy.Fault{Status: 400, ErrorType: "ThrottlingException", Permille: 500},
		dynamodb: &faultproxy.Fault{Status: 400, ErrorType: "ThrottlingException", Permille: 500}, lasts: 20 * time.Second},
	{name: "LimitExceeded", what: "Kinesis: LimitExceededException on every ListShards, GetShardIterator, DescribeStreamSummary for 20 s; w2 SIGKILLed and restarted into it",
		kinesis: &faultproxy.Fault{Ops: []string{"ListShards", "GetShardIterator", "DescribeStreamSummary"}, Status: 400, ErrorType: "LimitExceededException"},
		lasts:   20 * time.Second, restart: true},
	{name: "ExpiredIterator", what: "Kinesis: ExpiredIteratorException on 20% of GetRecords for 20 s",
		kinesis: &faultproxy.Fault{Ops: []string{"GetRecords"}, Status: 400, ErrorType: "ExpiredIteratorException", Permille: 200}, lasts: 20 * time.Second},
	{name: "KinesisOutage", what: "Kinesis: every connection reset for 30 s", kinesis: outage, lasts: 30 * time.Second},
	{name: "DynamoDBOutage", what: "DynamoDB: every connection reset for 30 s", dynamodb: outage, lasts: 30 * time.Second},
	{name: "BothOutage", what: "Kinesis and DynamoDB: every connection reset for 30 s", kinesis: outage, dynamodb: outage, lasts: 30 * time.Second},
}

// AWS faults: two workers on a 4-shard stream under a steady producer; the
// fault is applied through the proxies, then healed. The daemons survive,
// back off, resume and lose nothing; no shard is processed by two workers'
// children at once beyond the failover time.
func TestAWSFaults(t *testing.T) {
	for _, af := range awsFaults {
		t.Run(af.name, func(t *testing.T) {
			f := newFleet(t, 4)
			f.start("w1", nil)
			f.start("w2", nil)
			p := f.startProducer(20, 500*time.Millisecond)
			f.waitShardsProgress(4, 120*time.Second)
			f.fault(af.what, func() {
				if af.kinesis != nil {
					f.kp.Set(*af.kinesis)
				}
				if af.dynamodb != nil {
					f.dp.Set(*af.dynamodb)
				}
				if af.restart {
					f.daemons[1].kill()
					f.start("w2", nil)
				}
				time.Sleep(af.lasts)
			}, func() {
				f.kp.Set(faultproxy.Fault{})
				f.dp.Set(faultproxy.Fault{})
			})
			t.Logf("injected into %d Kinesis and %d DynamoDB requests", f.kp.Injected(), f.dp.Injected())
			f.waitShardsProgress(4, 120*time.Second)
			for _, d := range f.daemons {
				if d.exited() && !(af.restart && d == f.daemons[1]) {
					t.Errorf("%s exited during the fault: %v", d.log, d.err)
				}
			}
			f.finish(p, 120*time.Second, noOverlap(5*time.Second))
		})
	}
}

// noOverlap reports a shard on which a child kept delivering more than
// grace after a later child (of any worker) delivered its first record for
// the same shard: two processors at once beyond the fencing rules.
func noOverlap(grace time.Duration) func(Result, []Event) []string {
	return func(_ Result, evs []Event) []string {
		type span struct{ first, last int64 }
		spans := map[string]map[int]*span{} // shard -> pid -> span
		for _, e := range evs {
			if e.Ev != "rec" {
				continue
			}
			if spans[e.Shard] == nil {
				spans[e.Shard] = map[int]*span{}
			}
			s := spans[e.Shard][e.Pid]
			if s == nil {
				s = &span{first: e.T}
				spans[e.Shard][e.Pid] = s
			}
			s.last = e.T
		}
		var v []string
		for shard, m := range spans {
			for pa, a := range m {
				for pb, b := range m {
					if pa != pb && b.first > a.first && a.last > b.first+grace.Nanoseconds() {
						v = append(v, fmt.Sprintf("shard %s: child %d delivered until %s after child %d began at %s",
							shard, pa, time.Unix(0, a.last).Format("15:04:05.000"), pb, time.Unix(0, b.first).Format("15:04:05.000")))
					}
				}
			}
		}
		return v
	}
}

// AWS fault at shutdown: SIGTERM a worker while DynamoDB is unreachable. It
// must still exit within a bounded time (its lease releases and checkpoints
// fail), leave no child, and lose nothing: the other worker takes its
// shards over once DynamoDB is back.
func TestSIGTERMDuringDynamoDBOutage(t *testing.T) {
	f := newFleet(t, 4)
	w1 := f.start("w1", nil)
	f.start("w2", nil)
	p := f.startProducer(20, 500*time.Millisecond)
	f.waitShardsProgress(4, 120*time.Second)
	f.fault("DynamoDB: every connection reset; SIGTERM w1 during the outage", func() {
		f.dp.Set(faultproxy.Fault{Reset: true})
		began := time.Now()
		code := w1.term(90 * time.Second)
		t.Logf("w1 exited with %d, %s after SIGTERM", code, time.Since(began).Round(100*time.Millisecond))
		if code == -1 {
			t.Errorf("w1 did not exit within 90 s of SIGTERM during a DynamoDB outage")
		}
		time.Sleep(2 * time.Second)
		for _, e := range f.readEvents() {
			if e.Ev == "init" && e.PPid == w1.pid() && testenv.ProcessAlive(e.Pid) {
				t.Errorf("child %d of w1 (%s) left after w1 exited", e.Pid, e.Shard)
			}
		}
	}, func() { f.dp.Set(faultproxy.Fault{}) })
	f.waitShardsProgress(4, 120*time.Second)
	f.finish(p, 120*time.Second)
}
