package lease

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/multilangd/multilangd/internal/testenv"
)

// java35Table fills st with what a Java 3.5 single-table fleet leaves
// behind: Leader, Migration3.0, TableMigration3.5, worker metrics and three
// leases of java3-w1.
func java35Table(t *testing.T, st *DynamoStore, leaderDuration string) []string {
	t.Helper()
	putRaw(t, st, map[string]types.AttributeValue{"leaseKey": s(LeaderKey), "entityType": s("LEADER"), "ownerName": s("java3-w1"),
		"leaseDuration": s(leaderDuration), "recordVersionNumber": s(uuid.NewString())})
	putRaw(t, st, map[string]types.AttributeValue{"leaseKey": s(MigrationKey), "entityType": s("CLIENT_VERSION_MIGRATION"),
		"cv": s(ClientVersion3X), "mb": s("java3-w1"), "mts": n("1700000000000"),
		"h": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"cv": s(ClientVersionUpgr), "mb": s("java3-w1"), "mts": n("1600000000000")}}}}})
	putRaw(t, st, map[string]types.AttributeValue{"leaseKey": s(TableMigrationKey), "entityType": s("TABLE_MIGRATION"),
		"tm": s("TABLE_MIGRATION_STATUS_COMPLETE"), "mb": s("java3-w1"), "mts": n("1700000000000")})
	putRaw(t, st, map[string]types.AttributeValue{"leaseKey": s("java3-w1"), "entityType": s("WORKER_METRIC_STATS"),
		"lut": n("1700000000"), "sup": n("1"), "slu": n("1700000000"),
		"sts": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": &types.AttributeValueMemberL{Value: []types.AttributeValue{n("10"), n("20")}}}},
		"opr": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": &types.AttributeValueMemberL{Value: []types.AttributeValue{n("100")}}}}})
	var keys []string
	for _, k := range []string{"shardId-000000000000", "shardId-000000000001", "shardId-000000000002"} {
		putRaw(t, st, map[string]types.AttributeValue{"leaseKey": s(k), "leaseOwner": s("java3-w1"), "leaseCounter": n("17"),
			"ownerSwitchesSinceCheckpoint": n("0"), "checkpoint": s("TRIM_HORIZON"), "checkpointSubSequenceNumber": n("0"),
			"entityType": s("LEASE"), "throughputKBps": n("0.25"), "startingHashKey": s(hk0), "endingHashKey": s(hkX)})
		keys = append(keys, k)
	}
	return keys
}

var nonLeaseKeys = []string{LeaderKey, MigrationKey, TableMigrationKey, "java3-w1"}

// TestIntegrationJava35Table: a 3.5 single-table lease table is scanned
// without error; a coordinator never takes on it (3x-table before the
// daemon switches it to 3.x mode, 3x-mode after: the lock leader's
// LeaseAssignmentManager assigns, lease/lam); leases assigned to it are
// re-acquired at start-up and renewed with the 3.x checkpointOwner clause;
// non-lease items are never modified. (That a multilangd worker takes the
// stale lock and assigns the expired leases is tested in lease/lam.)
func TestIntegrationJava35Table(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := newTable(t, b)
		keys := java35Table(t, st, "2000")
		ls, err := st.ListLeases(ctxT(t, 10*time.Second))
		if err != nil || len(ls) != 3 {
			t.Fatalf("ListLeases = %d leases, %v", len(ls), err)
		}
		cs, err := st.CoordinatorState(ctxT(t, 10*time.Second))
		if err != nil || !cs.ThreeX() || !cs.LeaderElected() || cs.Leader == nil || cs.Leader.LeaseDuration != 2*time.Second {
			t.Fatalf("coordinator state %+v %v", cs, err)
		}
		before := map[string]map[string]string{}
		for _, k := range nonLeaseKeys {
			before[k] = itemString(getRaw(t, st, k))
		}

		var mu sync.Mutex
		skipped := map[string]int{}
		var told atomic.Int32
		mod := func(c *CoordinatorConfig) {
			c.TakerPeriod, c.RenewerPeriod = 300*time.Millisecond, 200*time.Millisecond
			c.OnThreeXTable = func() { told.Add(1) }
			c.OnTake = func(r TakeResult) {
				mu.Lock()
				skipped[r.Skipped]++
				mu.Unlock()
			}
		}
		c := newCoord(t, st, "go-a", mod)
		stop := runCoord(t, c)
		// Well past failover and the lock duration: still nothing taken.
		waitFor(t, 30*time.Second, "refusals", func() bool { mu.Lock(); defer mu.Unlock(); return skipped["3x-table"] >= 15 })
		if n := told.Load(); n != 1 {
			t.Fatalf("OnThreeXTable called %d times while refusing, want once (on the change)", n)
		}
		c.SetThreeXMode(true)
		waitFor(t, 30*time.Second, "3.x mode", func() bool { mu.Lock(); defer mu.Unlock(); return skipped["3x-mode"] >= 3 })
		if len(c.Held()) != 0 || ownerCounts(t, st)["java3-w1"] != 3 {
			t.Fatal("took leases on a 3.x table")
		}
		if c.IsLeader(ctxT(t, 10*time.Second)) {
			t.Fatal("leader in 3.x mode without the lock")
		}
		c.SetLockLeader(func(context.Context) bool { return true })
		if !c.IsLeader(ctxT(t, 10*time.Second)) {
			t.Fatal("IsLeader in 3.x mode does not answer from the lock")
		}
		stop()

		// The leader assigns the leases to go-a (W8); a restarted go-a in
		// 3.x mode re-acquires them at start-up and renews them.
		for _, k := range keys {
			_, err = st.client.UpdateItem(ctxT(t, 10*time.Second), &dynamodb.UpdateItemInput{TableName: aws.String(st.table), Key: keyOf(k),
				UpdateExpression:          aws.String("SET leaseOwner = :n ADD leaseCounter :one"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":n": s("go-a"), ":one": n("1")}})
			if err != nil {
				t.Fatal(err)
			}
		}
		c = newCoord(t, st, "go-a", mod)
		c.SetThreeXMode(true)
		runCoord(t, c)
		waitFor(t, 20*time.Second, "assigned leases re-acquired", func() bool { return len(c.Held()) == 3 })
		for _, k := range nonLeaseKeys {
			if after := itemString(getRaw(t, st, k)); fmtMap(after) != fmtMap(before[k]) {
				t.Fatalf("non-lease item %s modified:\n%v\n%v", k, before[k], after)
			}
		}
		// W9 by a (new) Java leader: leaseOwner := next, checkpointOwner := us,
		// counter unchanged. The 3.x renew condition fails, the hand-off
		// starts (lease/handoff.go) and the lease is renewed on until the
		// transfer.
		h := heldKeys(c)[keys[0]]
		_, err = st.client.UpdateItem(ctxT(t, 10*time.Second), &dynamodb.UpdateItemInput{TableName: aws.String(st.table), Key: keyOf(keys[0]),
			UpdateExpression:          aws.String("SET leaseOwner = :n, checkpointOwner = :me"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": s("java3-w2"), ":me": s("go-a")}})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-h.Handoff:
		case <-time.After(10 * time.Second):
			t.Fatal("3.x hand-off not noticed by the renewer")
		}
		if h.Ctx.Err() != nil {
			t.Fatalf("lease dropped on a hand-off request: %v", context.Cause(h.Ctx))
		}
	})
}

func fmtMap(m map[string]string) string { return fmt.Sprint(m) } // fmt sorts map keys

// TestIntegrationLegacyCoordinatorStateTable: KCL 3.0–3.4 keep Leader and
// Migration3.0 in <app>-CoordinatorState (key attribute "key"); a missing
// legacy table is ignored.
func TestIntegrationLegacyCoordinatorStateTable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		st := newTable(t, be)
		if cs, err := st.WithCoordinatorStateTable(st.table + "-CoordinatorState").CoordinatorState(ctxT(t, 10*time.Second)); err != nil || cs.ThreeX() || cs.Leader != nil {
			t.Fatalf("missing legacy table: %+v %v", cs, err)
		}
		legacy := st.table + "-CS"
		_, err := st.client.CreateTable(ctxT(t, 10*time.Second), &dynamodb.CreateTableInput{
			TableName: aws.String(legacy), BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("key"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("key"), KeyType: types.KeyTypeHash}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ls := NewDynamoStore(be.client, legacy, testLogger(t))
		if err := ls.CreateTableIfNotExists(ctxT(t, 30*time.Second), TableOptions{PollInterval: 50 * time.Millisecond}); err != nil {
			t.Fatal(err) // waits for ACTIVE; the key schema differs but is accepted as is
		}
		for _, item := range []map[string]types.AttributeValue{
			{"key": s(MigrationKey), "cv": s(ClientVersion3XRoll)},
			{"key": s(LeaderKey), "ownerName": s("j"), "leaseDuration": s("120000"), "recordVersionNumber": s("r1"), "isReleased": s("1")},
		} {
			if _, err := st.client.PutItem(ctxT(t, 10*time.Second), &dynamodb.PutItemInput{TableName: aws.String(legacy), Item: item}); err != nil {
				t.Fatal(err)
			}
		}
		cs, err := st.WithCoordinatorStateTable(legacy).CoordinatorState(ctxT(t, 10*time.Second))
		if err != nil || cs.ClientVersion != ClientVersion3XRoll || cs.Leader == nil || !cs.Leader.Released || cs.Leader.LeaseDuration != 2*time.Minute {
			t.Fatalf("legacy state %+v (leader %+v) %v", cs, cs.Leader, err)
		}
	})
}

// TestIntegrationFollowJava3xLeader: with a live (scripted) Java 3.x leader
// on DynamoDB Local, multilangd in 3.x mode takes nothing itself; it discovers the
// leases the leader assigns to it through the LeaseOwnerToLeaseKeyIndex GSI
// (Java DynamoDBLeaseDiscoverer), skips one whose hand-off is still pending
// (checkpointOwner set) until the leader's final transfer, and renews what
// it holds with the 3.x condition.
func TestIntegrationFollowJava3xLeader(t *testing.T) {
	st := java3xLeaderTable(t)
	lease := func(k, owner, cpOwner string) map[string]types.AttributeValue {
		item := map[string]types.AttributeValue{"leaseKey": s(k), "leaseCounter": n("5"), "ownerSwitchesSinceCheckpoint": n("0"),
			"checkpoint": s("TRIM_HORIZON"), "checkpointSubSequenceNumber": n("0"), "entityType": s("LEASE")}
		if owner != "" {
			item["leaseOwner"] = s(owner)
		}
		if cpOwner != "" {
			item["checkpointOwner"] = s(cpOwner)
		}
		return item
	}
	putRaw(t, st, lease("shardId-000000000000", "mld", ""))         // assigned (W8)
	putRaw(t, st, lease("shardId-000000000001", "mld", "java3-w2")) // graceful hand-off pending (W9)
	putRaw(t, st, lease("shardId-000000000002", "", ""))            // unassigned: the leader's job
	putRaw(t, st, lease("shardId-000000000003", "java3-w2", ""))    // another worker's
	c := newCoord(t, st, "mld", func(cfg *CoordinatorConfig) { cfg.TakerPeriod = 300 * time.Millisecond })
	c.SetThreeXMode(true) // as the daemon does for cv = CLIENT_VERSION_3X
	runCoord(t, c)
	waitFor(t, 30*time.Second, "the assigned lease discovered", func() bool { return heldKeys(c)["shardId-000000000000"] != nil })
	time.Sleep(2 * testFailover)
	if got := len(c.Held()); got != 1 {
		t.Fatalf("holding %d leases, want only the assigned one (no taking under a live 3.x leader, no pending hand-off)", got)
	}
	if cnt := counterOf(t, st, "shardId-000000000000"); cnt <= 5 {
		t.Fatalf("counter %d: the discovered lease is not renewed", cnt)
	}
	// The old owner's final transfer (W8): checkpointOwner removed, counter +1.
	putRaw(t, st, lease("shardId-000000000001", "mld", ""))
	waitFor(t, 30*time.Second, "the handed-over lease discovered", func() bool { return heldKeys(c)["shardId-000000000001"] != nil })
	if owner := ownerCounts(t, st); owner["mld"] != 2 || owner[""] != 1 || owner["java3-w2"] != 1 {
		t.Fatalf("owners = %v", owner)
	}
}

func counterOf(t *testing.T, st *DynamoStore, key string) int64 {
	t.Helper()
	l, err := st.GetLease(ctxT(t, 10*time.Second), key)
	if err != nil || l == nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return l.Counter
}

// java3xLeaderTable is a DynamoDB Local lease table as a live Java 3.x fleet
// leaves it: the LeaseOwnerToLeaseKeyIndex GSI, Migration3.0 =
// CLIENT_VERSION_3X and a Leader lock whose recordVersionNumber a scripted
// Java leader changes every 300 ms until the test ends.
func java3xLeaderTable(t *testing.T) *DynamoStore {
	t.Helper()
	b := emulatorBackend(t, testenv.DynamoDBLocal)
	st := newTable(t, b)
	ddb := b.client.(*dynamodb.Client)
	_, err := ddb.UpdateTable(ctxT(t, 30*time.Second), &dynamodb.UpdateTableInput{TableName: aws.String(st.table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(AttrLeaseOwner), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrLeaseKey), AttributeType: types.ScalarAttributeTypeS}},
		GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
			IndexName: aws.String(LeaseOwnerIndex),
			KeySchema: []types.KeySchemaElement{{AttributeName: aws.String(AttrLeaseOwner), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(AttrLeaseKey), KeyType: types.KeyTypeRange}},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly}}}}})
	if err != nil {
		t.Fatal(err)
	}
	putRaw(t, st, map[string]types.AttributeValue{"leaseKey": s(MigrationKey), "entityType": s("CLIENT_VERSION_MIGRATION"),
		"cv": s(ClientVersion3X), "mb": s("java3-w1"), "mts": n("1700000000000")})
	lock := map[string]types.AttributeValue{"leaseKey": s(LeaderKey), "entityType": s("LEADER"), "ownerName": s("java3-w1"),
		"leaseDuration": s("2000"), "recordVersionNumber": s(uuid.NewString())}
	putRaw(t, st, lock)
	hbCtx, stopHB := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() { // the scripted leader's heartbeat: a new RVN every 300 ms
		defer close(hbDone)
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-time.After(300 * time.Millisecond):
			}
			lock["recordVersionNumber"] = s(uuid.NewString())
			_, _ = ddb.PutItem(hbCtx, &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: lock})
		}
	}()
	t.Cleanup(func() { stopHB(); <-hbDone })
	return st
}
