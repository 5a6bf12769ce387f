package shardsync

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/retrieval"
	"github.com/multilangd/multilangd/shard"
)

// emus starts the emulators lazily, once per test binary; TestMain stops
// them.
var emus testenv.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	emus.StopAll()
	os.Exit(testenv.CheckLeaks(code))
}

// emulator returns the shared emulator of kind k, starting it on first use.
// A failure to start fails the test; under -short the test is skipped.
func emulator(t *testing.T, k testenv.Kind) *testenv.Emulator {
	t.Helper()
	return emus.Get(t, k)
}

// pair is one Kinesis + DynamoDB emulator combination.
type pair struct {
	name        string
	kin, ddb    testenv.Kind
	childShards bool // GetRecords returns ChildShards at SHARD_END
}

var pairs = []pair{
	{name: "kinesis-local+dynamodb-local", kin: testenv.KinesisLocal, ddb: testenv.DynamoDBLocal, childShards: true},
	{name: "kinesalite+dynalite", kin: testenv.Kinesalite, ddb: testenv.Dynalite},
}

// env is one test's stream and lease table.
type env struct {
	p      pair
	kin    *kinesis.Client
	ddb    *dynamodb.Client
	store  *lease.DynamoStore
	stream string
	lister ShardLister
}

var seq atomic.Int64

func forEachPair(t *testing.T, f func(t *testing.T, e *env)) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			f(t, newEnv(t, p))
		})
	}
}

func newEnv(t *testing.T, p pair) *env {
	t.Helper()
	ke, de := emulator(t, p.kin), emulator(t, p.ddb)
	n := seq.Add(1)
	e := &env{p: p, kin: ke.Kinesis(), ddb: de.DynamoDB(), stream: fmt.Sprintf("ss-%d-%d", time.Now().UnixNano()%1e9, n)}
	e.store = newTable(t, e.ddb)
	// The real lister (engineer E's retrieval.Lister), short LimitExceeded back-off.
	e.lister = retrieval.NewLister(e.kin, e.stream, "", retrieval.ListerConfig{Backoff: 100 * time.Millisecond}, testLogger(t))
	return e
}

func newTable(t *testing.T, c *dynamodb.Client) *lease.DynamoStore {
	t.Helper()
	name := fmt.Sprintf("ss-lt-%d-%d", time.Now().UnixNano()%1e9, seq.Add(1))
	s := lease.NewDynamoStore(c, name, testLogger(t))
	if err := s.CreateTableIfNotExists(ctxT(t, 30*time.Second), lease.TableOptions{PollInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	return s
}

func testLogger(t *testing.T) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// createStream creates the env's stream with n shards.
func (e *env) createStream(t *testing.T, n int32) {
	t.Helper()
	testenv.CreateStreamT(t, e.kin, e.stream, n)
}

// shardByID lists the stream and returns the shard with id.
func (e *env) shardByID(t *testing.T, id string) shard.Info {
	t.Helper()
	all, err := e.lister.ListShards(ctxT(t, 30*time.Second), shard.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("shard %s not listed in %+v", id, all)
	return shard.Info{}
}

// split splits shard id in the middle of its hash range.
func (e *env) split(t *testing.T, id string) {
	t.Helper()
	s := e.shardByID(t, id)
	lo, hi := mustBig(s.StartingHashKey), mustBig(s.EndingHashKey)
	mid := new(big.Int).Add(lo, new(big.Int).Rsh(new(big.Int).Sub(hi, lo), 1))
	mid.Add(mid, big.NewInt(1))
	ctx := ctxT(t, 30*time.Second)
	if _, err := e.kin.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(e.stream), ShardToSplit: aws.String(id), NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatalf("split %s: %v", id, err)
	}
	if err := testenv.WaitStreamActive(ctx, e.kin, e.stream); err != nil {
		t.Fatal(err)
	}
}

// merge merges shards a and b (adjacent hash ranges).
func (e *env) merge(t *testing.T, a, b string) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	if _, err := e.kin.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(e.stream), ShardToMerge: aws.String(a), AdjacentShardToMerge: aws.String(b)}); err != nil {
		t.Fatalf("merge %s+%s: %v", a, b, err)
	}
	if err := testenv.WaitStreamActive(ctx, e.kin, e.stream); err != nil {
		t.Fatal(err)
	}
}

// childShardsAtEnd reads a closed shard from TRIM_HORIZON to its end and
// returns the ChildShards of the final GetRecords (none on kinesalite).
func (e *env) childShardsAtEnd(t *testing.T, id string) []record.ChildShard {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	it, err := e.kin.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(e.stream), ShardId: aws.String(id), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	iter := it.ShardIterator
	for i := 0; i < 100 && iter != nil; i++ {
		out, err := e.kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatal(err)
		}
		if out.NextShardIterator == nil {
			var cs []record.ChildShard
			for _, c := range out.ChildShards {
				rc := record.ChildShard{ShardID: aws.ToString(c.ShardId), ParentShardIDs: c.ParentShards}
				if c.HashKeyRange != nil {
					rc.StartingHashKey, rc.EndingHashKey = aws.ToString(c.HashKeyRange.StartingHashKey), aws.ToString(c.HashKeyRange.EndingHashKey)
				}
				cs = append(cs, rc)
			}
			return cs
		}
		iter = out.NextShardIterator
	}
	t.Fatalf("shard %s did not end", id)
	return nil
}

// rawItem reads an item as stored, to check attribute names and types.
func (e *env) rawItem(t *testing.T, key string) map[string]ddbtypes.AttributeValue {
	t.Helper()
	out, err := e.ddb.GetItem(ctxT(t, 10*time.Second), &dynamodb.GetItemInput{TableName: aws.String(e.store.Table()),
		Key: map[string]ddbtypes.AttributeValue{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: key}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// setCheckpoint overwrites a lease's checkpoint as its owner's W4 would
// (only checkpoint and sub-sequence matter to the rules under test).
func (e *env) setCheckpoint(t *testing.T, key, cp string) {
	t.Helper()
	_, err := e.ddb.UpdateItem(ctxT(t, 10*time.Second), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(e.store.Table()),
		Key:                       map[string]ddbtypes.AttributeValue{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: key}},
		UpdateExpression:          aws.String("SET checkpoint = :c, checkpointSubSequenceNumber = :z ADD leaseCounter :one"),
		ConditionExpression:       aws.String("attribute_exists(leaseKey)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":c": &ddbtypes.AttributeValueMemberS{Value: cp}, ":z": &ddbtypes.AttributeValueMemberN{Value: "0"}, ":one": &ddbtypes.AttributeValueMemberN{Value: "1"}},
	})
	if err != nil {
		t.Fatalf("set checkpoint of %s: %v", key, err)
	}
}

// leaseSet lists the table as key → checkpoint.
func (e *env) leaseSet(t *testing.T) map[string]lease.Lease {
	t.Helper()
	ls, err := e.store.ListLeases(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]lease.Lease{}
	for _, l := range ls {
		m[l.Key] = l
	}
	return m
}

// setParents overwrites a lease's parentShardId set.
func (e *env) setParents(t *testing.T, key string, parents ...string) {
	t.Helper()
	_, err := e.ddb.UpdateItem(ctxT(t, 10*time.Second), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(e.store.Table()),
		Key:                       map[string]ddbtypes.AttributeValue{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: key}},
		UpdateExpression:          aws.String("SET parentShardId = :p"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": &ddbtypes.AttributeValueMemberSS{Value: parents}},
	})
	if err != nil {
		t.Fatalf("set parents of %s: %v", key, err)
	}
}

// waitStreamGone polls until the stream is reported missing.
func waitStreamGone(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := e.kin.DescribeStreamSummary(ctxT(t, 10*time.Second), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(e.stream)})
		if IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s still there: %v", e.stream, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
