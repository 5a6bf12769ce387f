package assemble

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/multilangd/multilangd/daemon"
	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/retrieval"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
	"github.com/multilangd/multilangd/subprocess"
)

// The checkpointer starts from the lease the consumer passes (just read), not
// from the coordinator's snapshot taken when the lease was acquired.
func TestCheckpointerStartsFromPassedLease(t *testing.T) {
	var a daemon.Coordinator = coordinator{Coordinator: lease.NewCoordinator(nil, lease.CoordinatorConfig{WorkerID: "w"}, nil)}
	snapshot := &lease.Held{Lease: lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}, Token: "t1"}
	h := *snapshot
	h.Lease.Checkpoint = seqnum.New("101", 2)
	cp := a.Checkpointer(&h)
	if got := cp.LastCheckpoint(); got != h.Lease.Checkpoint {
		t.Fatalf("LastCheckpoint = %s, want %s", got, h.Lease.Checkpoint)
	}
}

// A Java KCL 3.0–3.4 fleet keeps Migration3.0 and Leader in
// <applicationName>-CoordinatorState; the assembled store must see them there.
func TestStoreSeesJava34CoordinatorStateTable(t *testing.T) {
	ddb := testenv.StartT(t, testenv.Dynalite)
	client := ddb.DynamoDB()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	props := filepath.Join(t.TempDir(), "app.properties")
	if err := os.WriteFile(props, []byte("executableName = x\nstreamName = s\napplicationName = app34\nregionName = us-east-1\nAwsCredentialsProvider = DefaultCredentialsProvider\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := properties.Load(props)
	if err != nil {
		t.Fatal(err)
	}
	table := "app34-CoordinatorState"
	if _, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []dtypes.AttributeDefinition{{AttributeName: aws.String("key"), AttributeType: dtypes.ScalarAttributeTypeS}},
		KeySchema:            []dtypes.KeySchemaElement{{AttributeName: aws.String("key"), KeyType: dtypes.KeyTypeHash}},
		BillingMode:          dtypes.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	waitTableActive(ctx, t, client, table)
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]dtypes.AttributeValue{
		"key": &dtypes.AttributeValueMemberS{Value: lease.MigrationKey},
		"cv":  &dtypes.AttributeValueMemberS{Value: lease.ClientVersion3X},
	}}); err != nil {
		t.Fatal(err)
	}
	st := newStore(cfg, client, zaptest.NewLogger(t))
	if err := st.CreateTableIfNotExists(ctx, lease.TableOptions{PollInterval: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	cs, err := st.CoordinatorState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !cs.ThreeX() {
		t.Fatalf("coordinator state %+v: the %s table was not read", cs, table)
	}
}

func waitTableActive(ctx context.Context, t *testing.T, c *dynamodb.Client, table string) {
	t.Helper()
	for {
		out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err == nil && out.Table.TableStatus == dtypes.TableStatusActive {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("table %s never active: %v", table, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Every polling property reaches the poller, and the lease's shard identity
// (hash range for KPL filtering, parents) is carried over.
func TestPollerConfigFromProperties(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := &properties.Config{
		StreamName: "s", StreamARN: "arn:aws:kinesis:us-east-1:1:stream/s",
		InitialTimestamp: ts, MaxRecords: 500, IdleTimeBetweenReads: 300 * time.Millisecond,
		MillisBehindLatestThresholdForReducedTps: 2 * time.Second,
	}
	l := lease.Lease{Key: "shardId-000000000002", StartingHashKey: "0", EndingHashKey: "99",
		ParentShardIDs: []string{"shardId-000000000000", "shardId-000000000001"}}
	start := seqnum.New("123", 4)
	got := pollerConfig(cfg, l, start)
	want := retrieval.PollerConfig{
		StreamName: "s", StreamARN: cfg.StreamARN,
		Shard: shard.Info{ID: "shardId-000000000002", StartingHashKey: "0", EndingHashKey: "99",
			ParentShardID: "shardId-000000000000", AdjacentParentShardID: "shardId-000000000001"},
		Start: start, InitialTimestamp: ts, MaxRecords: 500, IdleTimeBetweenReads: 300 * time.Millisecond,
		MillisBehindLatestThresholdForReducedTps: 2 * time.Second,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pollerConfig =\n%+v\nwant\n%+v", got, want)
	}
}

// SIGTERM while the lease table is still being created (or DynamoDB is
// unreachable) is a requested stop, not a failure: exit status 0.
func TestRunStoppedDuringStartupIsNotAnError(t *testing.T) {
	cfg := &properties.Config{ApplicationName: "a", TableName: "a", WorkerID: "w", StreamName: "s"}
	client := dynamodb.NewFromConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:1") // nothing listens
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, cfg, Clients{DynamoDB: client}, zaptest.NewLogger(t)); err != nil {
		t.Fatalf("Run after a stop during start-up = %v, want nil", err)
	}
}

// A shard's lag gauge disappears when its consumer stops here, so a shard
// that moved to another worker does not show a frozen MillisBehindLatest.
func TestLagGaugeDroppedWhenConsumerStops(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newPromMetrics(reg, func() []daemon.ShardStatus { return nil }, func() int { return 0 })
	behind := int64(1234)
	m.RecordsProcessed("shardId-1", daemon.BatchStats{Records: 3, MillisBehindLatest: &behind})
	m.RecordsProcessed("shardId-2", daemon.BatchStats{Records: 3, MillisBehindLatest: &behind})
	m.ConsumerStopped("shardId-1")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, mf := range mfs {
		series[mf.GetName()] = len(mf.GetMetric())
	}
	if n := series["multilangd_millis_behind_latest"]; n != 1 {
		t.Fatalf("%d lag series after one consumer stopped, want 1", n)
	}
	if n := series["multilangd_records_processed_total"]; n != 2 {
		t.Fatalf("%d record counters, want 2 (counters are kept)", n)
	}
}

// Poller and fan-out log lines carry the lease key as well as the shard id
// (docs/operations.md, Logs).
func TestShardLogFields(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	l := lease.Lease{Key: "acct:stream:1:shardId-000000000007", ShardID: "shardId-000000000007", StreamName: "stream"}
	shardLog(zap.New(core), l).Info("x")
	fields := logs.All()[0].ContextMap()
	if fields["shardId"] != "shardId-000000000007" || fields["leaseKey"] != l.Key {
		t.Fatalf("fields = %v", fields)
	}
}

// childShutdownGraceMillis reaches the child as written: 0 is no wait (not
// the 5 s default, which is what an unset key gives).
func TestChildConfigShutdownGrace(t *testing.T) {
	for _, tc := range []struct {
		line string
		want time.Duration
	}{
		{"", 5 * time.Second},
		{"childShutdownGraceMillis = 0", subprocess.NoShutdownGrace},
		{"childShutdownGraceMillis = 250", 250 * time.Millisecond},
	} {
		path := filepath.Join(t.TempDir(), "app.properties")
		body := "executableName = /bin/cat\nstreamName = s\napplicationName = a\nAwsCredentialsProvider = DefaultCredentialsProvider\n" + tc.line + "\n"
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := properties.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := childConfig(cfg).ChildShutdownGrace; got != tc.want {
			t.Errorf("%q: ChildShutdownGrace = %v, want %v", tc.line, got, tc.want)
		}
		if got := childConfig(cfg).StderrLevel; got != zapcore.InfoLevel {
			t.Errorf("%q: StderrLevel = %v, want the childStderrLogLevel default (info)", tc.line, got)
		}
	}
}

// The graceful-stop budget is max(shutdownGraceMillis, daemon.MinShutdownGrace).
func TestSchedulerConfigShutdownGrace(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		0:                daemon.MinShutdownGrace,
		time.Second:      daemon.MinShutdownGrace,
		60 * time.Second: 60 * time.Second,
	} {
		if got := schedulerConfig(&properties.Config{ShutdownGrace: in}, false, nil).ShutdownGrace; got != want {
			t.Errorf("shutdownGraceMillis %v: ShutdownGrace = %v, want %v", in, got, want)
		}
	}
}
