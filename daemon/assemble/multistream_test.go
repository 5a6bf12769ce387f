package assemble

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/multilangd/multilangd/awsclient"
	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
)

// otherAccountC names ms-c by a stream identifier with another account id.
const otherAccountC = "222233334444:ms-c:1700000000"

// putStream writes n records "<stream>-<i>" to stream.
func putStream(t *testing.T, k *kinesis.Client, stream string, from, n int) {
	t.Helper()
	var entries []ktypes.PutRecordsRequestEntry
	for i := from; i < from+n; i++ {
		entries = append(entries, ktypes.PutRecordsRequestEntry{
			PartitionKey: aws.String(fmt.Sprintf("pk-%d", i)), Data: []byte(fmt.Sprintf("%s-%d", stream, i))})
	}
	if _, err := k.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries}); err != nil {
		t.Fatal(err)
	}
}

// deliveries counts each record data in the sample's output file.
func deliveries(t *testing.T, path string) map[string]int {
	t.Helper()
	got := map[string]int{}
	f, err := os.Open(path)
	if err != nil {
		return got
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct{ Data string }
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue // a line being appended
		}
		b, _ := base64.StdEncoding.DecodeString(line.Data)
		got[string(b)]++
	}
	return got
}

// multiDaemon is one in-process multi-stream worker with its reload channel.
type multiDaemon struct {
	reloads chan *properties.Config
	done    chan error
}

// TestMultiStreamAgainstEmulators: two workers consume three streams with
// the real Node sample child; every record is delivered once per stream,
// lease items are Java's multi-stream items; a reload adds a stream and
// removes another, whose leases are then deleted (docs/multistream.md).
func TestMultiStreamAgainstEmulators(t *testing.T) {
	kin := testenv.StartT(t, testenv.Kinesalite)
	ddb := testenv.StartT(t, testenv.Dynalite)
	for _, s := range []string{"ms-a", "ms-b", "ms-c"} {
		testenv.CreateStreamT(t, kin.Kinesis(), s, 2)
	}
	const n = 60
	putStream(t, kin.Kinesis(), "ms-a", 0, n)
	// ms-b starts AT_TIMESTAMP after its first records: those are never
	// delivered (its own position, not initialPositionInStream).
	putStream(t, kin.Kinesis(), "ms-b", -5, 5)
	at := time.Now().Add(time.Second).Truncate(time.Second)
	time.Sleep(time.Until(at) + 500*time.Millisecond)
	putStream(t, kin.Kinesis(), "ms-b", 0, n)

	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.SecretKey)
	t.Setenv("NODE_PATH", testenv.NodeModules())
	t.Setenv("KCL_SAMPLE_OUTPUT", out)
	load := func(worker, streams string) *properties.Config {
		t.Helper()
		props := filepath.Join(dir, worker+".properties")
		content := strings.Join([]string{
			"executableName = node " + filepath.Join(testenv.RepoRoot(), "samples", "node", "sample_kcl_app.js"),
			"streams = " + streams,
			"applicationName = multi-app",
			"initialPositionInStream = TRIM_HORIZON",
			"regionName = us-east-1",
			"AwsCredentialsProvider = EnvironmentVariableCredentialsProvider",
			"kinesisEndpoint = " + kin.Endpoint,
			"dynamoDBEndpoint = " + ddb.Endpoint,
			"retrievalMode = POLLING",
			"idleTimeBetweenReadsInMillis = 200",
			"failoverTimeMillis = 3000",
			"streamsCheckIntervalMillis = 500",
			"waitPeriodToDeleteFormerStreamsMillis = 1000",
			"workerId = " + worker,
		}, "\n") + "\n"
		if err := os.WriteFile(props, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := properties.Load(props)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	obs, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), obs))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var daemons []*multiDaemon
	var wg sync.WaitGroup
	for _, w := range []string{"w1", "w2"} {
		cfg := load(w, fmt.Sprintf("ms-a, ms-b=AT_TIMESTAMP:%d", at.Unix()))
		clients, err := awsclient.New(ctx, cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		d := &multiDaemon{reloads: make(chan *properties.Config, 1), done: make(chan error, 1)}
		daemons = append(daemons, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.done <- RunReloadable(ctx, cfg, Clients{Kinesis: clients.Kinesis, DynamoDB: clients.DynamoDB}, d.reloads, log.Named(w))
		}()
	}
	stopAll := func() {
		cancel()
		wg.Wait()
		for _, d := range daemons {
			if err := <-d.done; err != nil {
				t.Errorf("Run after cancel: %v", err)
			}
		}
	}
	defer func() {
		if ctx.Err() == nil {
			stopAll()
		}
	}()
	waitAll := func(what string, streams ...string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			got := deliveries(t, out)
			missing := 0
			for _, s := range streams {
				for i := 0; i < n; i++ {
					if got[fmt.Sprintf("%s-%d", s, i)] == 0 {
						missing++
					}
				}
			}
			if missing == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d records of %v never delivered", what, missing, streams)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	waitAll("start", "ms-a", "ms-b")

	// Add ms-c, remove ms-a: both workers re-read their files.
	putStream(t, kin.Kinesis(), "ms-c", 0, n)
	for i, d := range daemons {
		// ms-c as a Java stream identifier of another account: used as
		// written (no DescribeStreamSummary), stream calls by name.
		d.reloads <- load(fmt.Sprintf("w%d", i+1), "ms-b, "+otherAccountC)
	}
	waitAll("after adding ms-c", "ms-b", "ms-c")

	store := lease.NewDynamoStore(ddb.DynamoDB(), "multi-app", log)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ls, err := store.ListLeases(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var streamsLeft []string
		for _, l := range ls {
			if strings.Contains(l.Key, ":ms-a:") {
				streamsLeft = append(streamsLeft, l.Key)
			}
		}
		if len(streamsLeft) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leases of the removed stream ms-a still present: %v", streamsLeft)
		}
		time.Sleep(300 * time.Millisecond)
	}
	stopAll()

	for data := range deliveries(t, out) {
		if strings.HasPrefix(data, "ms-b--") {
			t.Errorf("record %s from before ms-b's AT_TIMESTAMP was delivered", data)
		}
	}
	// Once per stream, except after a balancing steal: records of the
	// stolen shard above the last checkpoint may be delivered again by the
	// new owner (Java does the same).
	stolen := map[string]bool{}
	for _, e := range logs.FilterMessage("took lease").All() {
		if e.ContextMap()["steal"] == true {
			id, _, _ := lease.ParseMultiStreamKey(e.ContextMap()["leaseKey"].(string))
			stolen[strings.Split(id, ":")[1]] = true
		}
	}
	dups := map[string]int{}
	for data, c := range deliveries(t, out) {
		if c > 1 {
			dups[data[:strings.LastIndex(data, "-")]]++
		}
	}
	for stream, d := range dups {
		if !stolen[stream] {
			t.Errorf("%d records of %s delivered more than once without a lease steal", d, stream)
		}
	}
	t.Logf("records delivered twice per stream: %v; streams with a stolen lease: %v", dups, stolen)
	assertMultiStreamItems(t, ddb.DynamoDB(), kin.Kinesis())
}

// assertMultiStreamItems checks every lease item against the shape of
// Java DynamoDBMultiStreamLeaseSerializer.toDynamoRecord: key
// account:stream:epoch:shardId, streamName the serialised identifier,
// shardId the shard.
func assertMultiStreamItems(t *testing.T, db *dynamodb.Client, k *kinesis.Client) {
	t.Helper()
	ids := map[string]string{}
	ids["ms-c"] = otherAccountC
	for _, s := range []string{"ms-b"} {
		out, err := k.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s)})
		if err != nil {
			t.Fatal(err)
		}
		d := out.StreamDescriptionSummary
		acct := strings.Split(aws.ToString(d.StreamARN), ":")[4]
		ids[s] = fmt.Sprintf("%s:%s:%d", acct, s, d.StreamCreationTimestamp.Unix())
	}
	scan, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String("multi-app")})
	if err != nil {
		t.Fatal(err)
	}
	perStream := map[string]int{}
	for _, item := range scan.Items {
		key := item["leaseKey"].(*dtypes.AttributeValueMemberS).Value
		sn, ok1 := item["streamName"].(*dtypes.AttributeValueMemberS)
		sh, ok2 := item["shardId"].(*dtypes.AttributeValueMemberS)
		if !ok1 || !ok2 {
			t.Errorf("lease %s lacks streamName/shardId (S): %v", key, item)
			continue
		}
		if key != sn.Value+":"+sh.Value {
			t.Errorf("lease key %s is not streamName:shardId (%s, %s)", key, sn.Value, sh.Value)
		}
		stream := strings.Split(sn.Value, ":")[1]
		if ids[stream] != sn.Value {
			t.Errorf("lease %s: streamName %s, want %s", key, sn.Value, ids[stream])
		}
		perStream[stream]++
		for _, a := range []string{"leaseCounter", "checkpoint", "checkpointSubSequenceNumber", "ownerSwitchesSinceCheckpoint"} {
			if _, ok := item[a]; !ok {
				t.Errorf("lease %s lacks %s", key, a)
			}
		}
	}
	if perStream["ms-b"] != 2 || perStream["ms-c"] != 2 || len(perStream) != 2 {
		t.Errorf("leases per stream = %v, want ms-b and ms-c with 2 each", perStream)
	}
}
