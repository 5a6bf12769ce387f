package lease

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/seqnum"
)

// holdOne creates one lease (after prep) and returns a running coordinator
// holding it plus its checkpointer.
func holdOne(t *testing.T, st Store, ds *DynamoStore, start seqnum.ESN) (*Coordinator, *Held, *Checkpointer) {
	t.Helper()
	ok, err := ds.CreateLeaseIfNotExists(ctxT(t, 10*time.Second), Lease{Key: "shardId-000000000000", Checkpoint: start})
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	c := newCoord(t, st, "go-a", func(c *CoordinatorConfig) {
		c.FailoverTime, c.RenewerPeriod, c.TakerPeriod = 30*time.Second, time.Hour, time.Hour
	})
	runCoord(t, c)
	waitFor(t, 10*time.Second, "held", func() bool { return len(c.Held()) == 1 })
	h := c.Held()[0]
	return c, h, c.Checkpointer(h)
}

func sp(v string) *string { return &v }
func ip(v int64) *int64   { return &v }

// TestIntegrationCheckpointer covers the validation of Java
// ShardRecordProcessorCheckpointer.checkpoint and the stored values (W4).
func TestIntegrationCheckpointer(t *testing.T) {
	type call struct {
		seq       *string
		sub       *int64
		exception string     // "" = success
		stored    seqnum.ESN // expected item after the call (when exception == "")
		noWrite   bool       // counter must not move
	}
	tests := []struct {
		name     string
		start    seqnum.ESN
		largest  seqnum.ESN
		shardEnd bool
		calls    []call
	}{
		{"nil writes largest permitted", seqnum.Sentinel(seqnum.TrimHorizon), seqnum.New("200", 3), false,
			[]call{{stored: seqnum.New("200", 3)}}},
		{"seq without sub is sub 0", seqnum.Sentinel(seqnum.TrimHorizon), seqnum.New("200", 0), false,
			[]call{{seq: sp("150"), stored: seqnum.New("150", 0)}}},
		{"seq with sub", seqnum.New("100", 0), seqnum.New("200", 5), false,
			[]call{{seq: sp("200"), sub: ip(2), stored: seqnum.New("200", 2)}}},
		{"negative sub", seqnum.Sentinel(seqnum.TrimHorizon), seqnum.New("200", 0), false,
			[]call{{seq: sp("150"), sub: ip(-1), exception: "IllegalArgumentException"}}},
		{"non-digit", seqnum.Sentinel(seqnum.TrimHorizon), seqnum.New("200", 0), false,
			[]call{{seq: sp("15a0"), exception: "IllegalArgumentException"}}},
		{"above largest", seqnum.Sentinel(seqnum.TrimHorizon), seqnum.New("200", 0), false,
			[]call{{seq: sp("201"), exception: "IllegalArgumentException"}}},
		{"below last", seqnum.New("100", 0), seqnum.New("200", 0), false,
			[]call{{seq: sp("150"), stored: seqnum.New("150", 0)}, {seq: sp("149"), exception: "IllegalArgumentException"}}},
		{"same value is a no-op", seqnum.New("100", 0), seqnum.New("200", 0), false,
			[]call{{seq: sp("150"), stored: seqnum.New("150", 0)}, {seq: sp("150"), sub: ip(0), stored: seqnum.New("150", 0), noWrite: true}}},
		{"big sequence numbers", seqnum.New("49590338271490256608559692538361571095921575989136588898", 0),
			seqnum.New("49590338271490256608559692540925702759324208523137515618", 0), false,
			[]call{{seq: sp("49590338271490256608559692540925702759324208523137515618"), stored: seqnum.New("49590338271490256608559692540925702759324208523137515618", 0)}}},
		{"shard end: nil stores SHARD_END", seqnum.New("100", 0), seqnum.New("200", 0), true,
			[]call{{stored: seqnum.Sentinel(seqnum.ShardEnd)}}},
		{"shard end: last delivered stores SHARD_END", seqnum.New("100", 0), seqnum.New("200", 0), true,
			[]call{{seq: sp("200"), stored: seqnum.Sentinel(seqnum.ShardEnd)}}},
		{"shard end: earlier value stored as is", seqnum.New("100", 0), seqnum.New("200", 0), true,
			[]call{{seq: sp("150"), stored: seqnum.New("150", 0)}, {stored: seqnum.Sentinel(seqnum.ShardEnd)}}},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st := newTable(t, b)
				_, h, cp := holdOne(t, st, st, tt.start)
				cp.SetLargestPermitted(tt.largest)
				if tt.shardEnd {
					cp.SetShardEnd()
				}
				for i, c := range tt.calls {
					before, _ := st.GetLease(ctxT(t, 10*time.Second), h.Lease.Key)
					err := cp.Checkpoint(ctxT(t, 10*time.Second), c.seq, c.sub)
					after, _ := st.GetLease(ctxT(t, 10*time.Second), h.Lease.Key)
					if c.exception != "" {
						assertException(t, err, c.exception)
						if after.Counter != before.Counter {
							t.Fatalf("call %d: rejected checkpoint wrote", i)
						}
						continue
					}
					if err != nil {
						t.Fatalf("call %d: %v", i, err)
					}
					if after.Checkpoint != c.stored || cp.LastCheckpoint() != c.stored {
						t.Fatalf("call %d: stored %v (last %v), want %v", i, after.Checkpoint, cp.LastCheckpoint(), c.stored)
					}
					if c.noWrite != (after.Counter == before.Counter) {
						t.Fatalf("call %d: counter %d -> %d (noWrite=%v)", i, before.Counter, after.Counter, c.noWrite)
					}
				}
			})
		}
	})
}

// TestIntegrationCheckpointErrors maps store failures to Java exceptions.
func TestIntegrationCheckpointErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		tests := []struct {
			name      string
			inject    error
			deleteRow bool
			want      string
			stillHeld bool
		}{
			{"throttling", fmt.Errorf("x: %w", ErrThrottled), false, "ThrottlingException", true},
			{"other AWS error", errors.New("boom"), false, "KinesisClientLibDependencyException", true},
			{"missing lease row", nil, true, "InvalidStateException", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st := newTable(t, b)
				fs := &faultStore{Store: st}
				c, h, cp := holdOne(t, fs, st, seqnum.Sentinel(seqnum.TrimHorizon))
				cp.SetLargestPermitted(seqnum.New("5", 0))
				if tt.inject != nil {
					fs.checkpointErr.Store(tt.inject)
				}
				if tt.deleteRow {
					if err := st.DeleteLease(ctxT(t, 10*time.Second), h.Lease.Key); err != nil {
						t.Fatal(err)
					}
				}
				assertException(t, cp.Checkpoint(ctxT(t, 10*time.Second), nil, nil), tt.want)
				if got := len(c.Held()) == 1; got != tt.stillHeld {
					t.Fatalf("still held = %v, want %v", got, tt.stillHeld)
				}
			})
		}
	})
}

// TestIntegrationCheckpointItemFormat: after a Go checkpoint
// on a Java 3.5-written lease the item keeps Java's names and types,
// ownerSwitchesSinceCheckpoint = 0, pending* removed, leaseCounter + 1, and
// unknown attributes preserved.
func TestIntegrationCheckpointItemFormat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := newTable(t, b)
		key := "shardId-000000000000"
		putRaw(t, st, map[string]types.AttributeValue{
			"leaseKey": s(key), "leaseCounter": n("41"), "ownerSwitchesSinceCheckpoint": n("2"),
			"checkpoint": s("100"), "checkpointSubSequenceNumber": n("0"),
			"pendingCheckpoint": s("150"), "pendingCheckpointSubSequenceNumber": n("1"), "pendingCheckpointState": &types.AttributeValueMemberB{Value: []byte("st")},
			"throughputKBps": n("12.5"), "entityType": s("LEASE"), "startingHashKey": s(hk0), "endingHashKey": s(hkX),
			"childShardIds": ss("shardId-000000000001"), "parentShardId": ss("shardId-000000000009"),
			"someFutureAttribute": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"x": n("1")}},
		})
		c := newCoord(t, st, "go-a", func(c *CoordinatorConfig) {
			c.FailoverTime, c.RenewerPeriod, c.TakerPeriod = 30*time.Second, time.Hour, time.Hour
		})
		runCoord(t, c)
		waitFor(t, 10*time.Second, "held", func() bool { return len(c.Held()) == 1 })
		h := c.Held()[0]
		cp := c.Checkpointer(h)
		cp.SetLargestPermitted(seqnum.New("200", 4))
		if err := cp.Checkpoint(ctxT(t, 10*time.Second), sp("200"), ip(3)); err != nil {
			t.Fatal(err)
		}
		got := itemString(getRaw(t, st, key))
		want := map[string]string{
			"leaseKey": "S:" + key, "leaseOwner": "S:go-a", "leaseCounter": "N:43", // +1 take, +1 checkpoint
			"ownerSwitchesSinceCheckpoint": "N:0", "checkpoint": "S:200", "checkpointSubSequenceNumber": "N:3",
			"throughputKBps": "N:12.5", "entityType": "S:LEASE", "startingHashKey": "S:" + hk0, "endingHashKey": "S:" + hkX,
			"childShardIds": "SS:[shardId-000000000001]", "parentShardId": "SS:[shardId-000000000009]",
			"someFutureAttribute": itemString(map[string]types.AttributeValue{"a": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"x": n("1")}}})["a"],
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("item\n got %v\nwant %v", got, want)
		}
	})
}

// TestIntegrationCreateTable: leaseKey (S) hash key only, PAY_PER_REQUEST by
// default, PROVISIONED 10/10 when asked; an existing table (with a 3.x GSI)
// is accepted as is.
func TestIntegrationCreateTable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, prov := range []bool{false, true} {
			t.Run(fmt.Sprintf("provisioned=%v", prov), func(t *testing.T) {
				name := fmt.Sprintf("ct-%d-%d", time.Now().UnixNano()%1e9, tableSeq.Add(1))
				st := NewDynamoStore(b.client, name, testLogger(t))
				opts := TableOptions{Provisioned: prov, PollInterval: 50 * time.Millisecond}
				for i := 0; i < 2; i++ { // second call: already exists
					if err := st.CreateTableIfNotExists(ctxT(t, 30*time.Second), opts); err != nil {
						t.Fatal(err)
					}
				}
				out, err := b.client.DescribeTable(ctxT(t, 10*time.Second), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
				if err != nil {
					t.Fatal(err)
				}
				tb := out.Table
				if len(tb.KeySchema) != 1 || *tb.KeySchema[0].AttributeName != "leaseKey" || tb.KeySchema[0].KeyType != types.KeyTypeHash ||
					len(tb.AttributeDefinitions) != 1 || tb.AttributeDefinitions[0].AttributeType != types.ScalarAttributeTypeS {
					t.Fatalf("key schema %+v / %+v", tb.KeySchema, tb.AttributeDefinitions)
				}
				if prov {
					if *tb.ProvisionedThroughput.ReadCapacityUnits != 10 || *tb.ProvisionedThroughput.WriteCapacityUnits != 10 {
						t.Fatalf("throughput %+v", tb.ProvisionedThroughput)
					}
				} else if tb.BillingModeSummary == nil || tb.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
					t.Fatalf("billing %+v", tb.BillingModeSummary)
				}
			})
		}
		t.Run("existing 3.x table with GSI", func(t *testing.T) {
			name := fmt.Sprintf("gsi-%d-%d", time.Now().UnixNano()%1e9, tableSeq.Add(1))
			_, err := b.client.CreateTable(ctxT(t, 10*time.Second), &dynamodb.CreateTableInput{
				TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest,
				AttributeDefinitions: []types.AttributeDefinition{
					{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS},
					{AttributeName: aws.String("leaseOwner"), AttributeType: types.ScalarAttributeTypeS}},
				KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}},
				GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
					IndexName: aws.String("LeaseOwnerToLeaseKeyIndex"),
					KeySchema: []types.KeySchemaElement{
						{AttributeName: aws.String("leaseOwner"), KeyType: types.KeyTypeHash},
						{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeRange}},
					Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly}}},
			})
			if err != nil {
				t.Fatal(err)
			}
			st := NewDynamoStore(b.client, name, testLogger(t))
			if err := st.CreateTableIfNotExists(ctxT(t, 30*time.Second), TableOptions{PollInterval: 50 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			createLeases(t, st, 2)
			if ls, err := st.ListLeases(ctxT(t, 10*time.Second)); err != nil || len(ls) != 2 {
				t.Fatal(ls, err)
			}
		})
	})
}

// TestIntegrationIsLeader (Java DeterministicShuffleShardSyncLeaderDecider
// end to end): the leader is the
// first of the Java shuffle of the lease owners; with no owners everyone is
// leader.
func TestIntegrationIsLeader(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := newTable(t, b)
		keys := createLeases(t, st, 3)
		idle := func(c *CoordinatorConfig) { c.TakerPeriod, c.FailoverTime = time.Hour, time.Hour }
		ca := newCoord(t, st, "worker-a", idle)
		if !ca.IsLeader(context.Background()) {
			t.Fatal("with no owners every worker is leader")
		}
		for i, w := range []string{"worker-a", "worker-b", "worker-c"} {
			javaTake(t, st, keys[i], w)
		}
		for _, w := range []string{"worker-a", "worker-b", "worker-c"} {
			got := newCoord(t, st, w, idle).IsLeader(context.Background())
			if got != (w == "worker-c") {
				t.Fatalf("%s leader = %v; Java elects worker-c", w, got)
			}
		}
		// The first answer is reused (no re-scan) until the refresh interval passes.
		if !ca.IsLeader(context.Background()) {
			t.Fatal("cached answer changed before the refresh interval")
		}
	})
}
