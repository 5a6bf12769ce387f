package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/seqnum"
)

// initiateHandoff is the leader's W9, exactly Java
// DynamoDBLeaseRefresher.initiateGracefulLeaseHandoff: expected leaseOwner =
// the current owner, checkpointOwner absent, leaseKey existing; PUT
// leaseOwner = next, PUT checkpointOwner = the current owner; ALL_NEW; the
// counter is not touched.
func initiateHandoff(ctx context.Context, t *testing.T, ddb *dynamodb.Client, table, key, from, next string) {
	t.Helper()
	_, err := ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{"leaseKey": sAttr(key)},
		Expected: map[string]types.ExpectedAttributeValue{
			"leaseOwner":      {Value: sAttr(from)},
			"checkpointOwner": {Exists: aws.Bool(false)},
			"leaseKey":        {Exists: aws.Bool(true), Value: sAttr(key)},
		},
		AttributeUpdates: map[string]types.AttributeValueUpdate{
			"leaseOwner":      {Value: sAttr(next), Action: types.AttributeActionPut},
			"checkpointOwner": {Value: sAttr(from), Action: types.AttributeActionPut},
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		t.Fatalf("W9 of %s from %s to %s: %v", key, from, next, err)
	}
}

// lastRecordOf is the highest record of shard given to any child so far.
func (f *fleet3x) lastRecordOf(shard string) seqnum.ESN {
	var last seqnum.ESN
	for _, ev := range f.eventsOf("rec", "", shard) {
		e := seqnum.New(ev.Seq, ev.Sub)
		if c, err := seqnum.Compare(e, last); last.Sequence == "" || err == nil && c > 0 {
			last = e
		}
	}
	return last
}

// TestGracefulHandoffBetweenDaemons: a scripted Java KCL 3.x leader moves
// two leases from one multilangd daemon (m1) to another (m2) with W9 while
// records flow; the checking children checkpoint only when asked to shut
// down. Shard A: m1's child gets shutdownRequested, checkpoints the last
// record it was given, gets leaseLost; m1 transfers the lease (W8:
// leaseOwner m2, no checkpointOwner) and m2 starts at that checkpoint, so
// no record of shard A is delivered twice. Shard B: m1's child never
// answers shutdownRequested; m1 transfers the lease once
// gracefulLeaseHandoffTimeoutMillis has passed and m2 resumes from the last
// checkpoint (at-least-once). Every record is delivered.
func TestGracefulHandoffBetweenDaemons(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon against the emulators")
	}
	ctx := context.Background()
	e := newEnv(t, testenv.Kinesalite, testenv.DynamoDBLocal, 2)
	const timeout = 6 * time.Second
	f := newFleet3x(e, map[string]string{"gracefulLeaseHandoffTimeoutMillis": "6000"})
	ddb := e.ddb.DynamoDB()
	j := newJavaLeader(t, ddb, e.app, "java-leader")
	j.createTable(ctx)
	j.createMigration(ctx, "CLIENT_VERSION_3X")
	keys := j.createLeases(ctx, e.kc, e.stream)
	j.acquireLock(ctx)
	shardA, shardB := keys[0], keys[1]
	f.childEnv = []string{"FLEET_CHECKPOINT_EVERY=1000000", "FLEET_HANG_SHUTDOWN=" + shardB}

	m1, m2 := f.start("m1", nil), f.start("m2", nil)
	waitFor(t, 60*time.Second, "WorkerMetricStats of m1 and m2", func() bool { return f.metricsPublished("m1", "m2") }, m1, m2)
	for _, k := range keys {
		if !j.assign(ctx, k, "m1") {
			t.Fatalf("W8 of %s to m1 failed its condition", k)
		}
	}
	ids := e.put(putOptions{n: 80})
	f.waitRecords(len(ids), 90*time.Second)
	if cp := attrStr(f.item(shardA), "checkpoint"); cp != "TRIM_HORIZON" {
		t.Fatalf("shard A checkpointed (%s) before the hand-off: the child must checkpoint only in shutdownRequested", cp)
	}

	// Shard A: graceful hand-off.
	lastA := f.lastRecordOf(shardA)
	initiateHandoff(ctx, t, ddb, e.app, shardA, "m1", "m2")
	waitFor(t, 60*time.Second, "shard A transferred to m2 (W8)", func() bool {
		it := f.item(shardA)
		_, pending := it["checkpointOwner"]
		return attrStr(it, "leaseOwner") == "m2" && !pending
	}, m1, m2)
	it := f.item(shardA)
	if got := seqnum.New(attrStr(it, "checkpoint"), attrNum(it, "checkpointSubSequenceNumber")); got != lastA {
		t.Fatalf("shard A checkpoint after the hand-off = %v, want the last record delivered %v", got, lastA)
	}
	var seq []string
	for _, ev := range f.readEvents() {
		if ev.Shard == shardA && ev.Worker == "m1" && ev.Ev != "rec" && ev.Ev != "init" {
			seq = append(seq, ev.Ev)
		}
	}
	if len(seq) != 3 || seq[0] != "shutdownRequested" || seq[1] != "cp" || seq[2] != "leaseLost" {
		t.Fatalf("m1's child of shard A saw %v, want shutdownRequested, cp, leaseLost", seq)
	}
	waitFor(t, 60*time.Second, "m2 starts shard A", func() bool { return len(f.eventsOf("init", "m2", shardA)) > 0 }, m1, m2)
	if init := f.eventsOf("init", "m2", shardA)[0]; init.Seq != lastA.Sequence {
		t.Fatalf("m2 initialized shard A at %q, want the handed-over checkpoint %q", init.Seq, lastA.Sequence)
	}

	// Shard B: the child hangs in shutdownRequested; the timeout transfers.
	started := time.Now()
	initiateHandoff(ctx, t, ddb, e.app, shardB, "m1", "m2")
	waitFor(t, 60*time.Second, "shard B transferred to m2 after the timeout", func() bool {
		it := f.item(shardB)
		_, pending := it["checkpointOwner"]
		return attrStr(it, "leaseOwner") == "m2" && !pending
	}, m1, m2)
	if waited := time.Since(started); waited < timeout {
		t.Fatalf("shard B transferred after %s, before gracefulLeaseHandoffTimeoutMillis (%s)", waited, timeout)
	}
	if len(f.eventsOf("shutdownRequested", "m1", shardB)) != 1 || len(f.eventsOf("cp", "m1", shardB)) != 0 {
		t.Fatal("shard B: the hanging child was not asked to shut down, or checkpointed")
	}

	more := e.put(putOptions{start: len(ids), n: 80})
	tl := f.waitRecords(len(ids)+len(more), 90*time.Second)
	redeliveredA := 0
	for r, n := range tl.times {
		if n > 1 && len(r) > len(shardA) && r[:len(shardA)] == shardA && r[len(shardA)] == '/' {
			redeliveredA += n - 1
		}
	}
	t.Logf("records %d, deliveries %d, re-delivered %d (shard A %d; shard B, timed out without a checkpoint, re-delivers its window)",
		tl.distinct, tl.deliveries, tl.redelivered(), redeliveredA)
	if redeliveredA != 0 {
		t.Fatalf("%d records of the gracefully handed-off shard re-delivered", redeliveredA)
	}
	// No record reaches m1's children after their shutdownRequested.
	asked := map[string]bool{}
	for _, ev := range f.readEvents() {
		switch {
		case ev.Worker != "m1":
		case ev.Ev == "shutdownRequested":
			asked[ev.Shard] = true
		case ev.Ev == "rec" && asked[ev.Shard]:
			t.Fatalf("m1's child of %s got record %s after shutdownRequested", ev.Shard, ev.Seq)
		}
	}
	for _, d := range []*daemon{m1, m2} {
		if code := d.stop(30 * time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
	}
}
