package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/multilangd/multilangd/internal/testenv"
)

// Show: with retrievalMode = FANOUT the daemon registers the stream consumer
// and reads both shards with SubscribeToShard (kinesis-local over h2c): every
// record, before and after start-up, reaches the Node sample child once, in
// shard order, and each lease ends checkpointed at its shard's last record.
func TestEnhancedFanOutTwoShards(t *testing.T) {
	e := newEnv(t, testenv.KinesisLocal, testenv.DynamoDBLocal, 2)
	ids := e.put(putOptions{n: 300, aggEvery: 10, aggSize: 5})
	out := filepath.Join(e.dir, "out.jsonl")
	d := e.startDaemon("daemon", e.props("app", map[string]string{
		"retrievalMode":                "FANOUT",
		"idleTimeBetweenReadsInMillis": "",
	}), out)

	// Live records while the subscriptions are open.
	waitFor(t, 60*time.Second, "the first records", func() bool { return len(readOutput(t, out)) > 0 }, d)
	ids = append(ids, e.put(putOptions{start: 300, n: 100})...)

	got := waitDeliveredOnce(t, d, out, ids, 2, 60*time.Second)
	shards := byShard(got)
	waitFor(t, 30*time.Second, "checkpoints at each shard's last record", func() bool { return e.checkpointedAtLastDelivered(shards) }, d)

	// The consumer was registered under the application name, and records
	// came through SubscribeToShard, not GetRecords.
	sum, err := e.kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := e.kc.ListStreamConsumers(context.Background(), &kinesis.ListStreamConsumersInput{StreamARN: sum.StreamDescriptionSummary.StreamARN})
	if err != nil || len(cs.Consumers) != 1 || aws.ToString(cs.Consumers[0].ConsumerName) != e.app {
		t.Fatalf("stream consumers %+v, %v; want one named %s", cs, err, e.app)
	}
	if code := d.stop(40 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	logText, err := os.ReadFile(d.log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logText), "subscribed") || strings.Contains(string(logText), "draining closed shard") {
		t.Errorf("daemon log does not show plain SubscribeToShard reading")
	}
	for _, l := range e.leases() {
		if l.Owner != "" {
			t.Errorf("lease %s still owned by %q after a graceful stop", l.Key, l.Owner)
		}
	}
}
