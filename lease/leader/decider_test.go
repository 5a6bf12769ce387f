package leader

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/multilangd/multilangd/lease/leasetest"
	"github.com/multilangd/multilangd/properties"
)

// Pure-logic tests on the in-memory leasetest.Fake with a fake clock. Every
// behaviour here also has a test against DynamoDB Local (integration_test.go).

func TestConfigDefaultsAndValidate(t *testing.T) {
	c := Config{WorkerID: "w"}.WithDefaults()
	if c.LeaseDuration != 120*time.Second || c.HeartbeatPeriod != 30*time.Second {
		t.Fatalf("defaults %+v, want Java's 120 s / 30 s", c)
	}
	for _, bad := range []Config{
		{LeaseDuration: time.Minute, HeartbeatPeriod: time.Second},
		{WorkerID: "w", LeaseDuration: time.Minute, HeartbeatPeriod: 31 * time.Second},
		{WorkerID: "w", LeaseDuration: -time.Second, HeartbeatPeriod: time.Second},
	} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	if err := (Config{WorkerID: "w", LeaseDuration: time.Minute, HeartbeatPeriod: 30 * time.Second}).Validate(); err != nil {
		t.Errorf("exactly half refused: %v", err)
	}
}

// TestAcquireAbsentJavaItem: the first worker creates the lock with the
// lock client's item (golden shape), and a second reading it answers no.
func TestAcquireAbsentJavaItem(t *testing.T) {
	f, tab := fakeTable(t)
	c := newFakeClock()
	a := newTestDecider(t, f, tab, "a", c)
	if !a.IsLeader(ctxT(t, 10*time.Second)) {
		t.Fatal("a does not lead an absent lock")
	}
	checkJavaLockItem(t, f.Item(tab.Name, LockKey), tab, "a", "120000")
	b := newTestDecider(t, f, tab, "b", c)
	if b.IsLeader(ctxT(t, 10*time.Second)) {
		t.Fatal("b leads too")
	}
	if owner, held, _ := b.Observed(); owner != "a" || held {
		t.Fatalf("b observed %q held=%v", owner, held)
	}
	if owner, held, _ := a.Observed(); owner != "a" || !held {
		t.Fatalf("a observed %q held=%v", owner, held)
	}
}

// checkJavaLockItem compares a Leader item field by field with the shape
// Java's lock client writes: exactly these attributes, every one a string.
func checkJavaLockItem(t *testing.T, item map[string]types.AttributeValue, tab Table, owner, leaseMillis string) {
	t.Helper()
	want := map[string]string{tab.PartitionKey: "Leader", "entityType": "LEADER", "ownerName": owner, "leaseDuration": leaseMillis}
	if len(item) != len(want)+1 {
		t.Errorf("item has %d attributes, want %d: %v", len(item), len(want)+1, item)
	}
	for k, v := range want {
		got, ok := item[k].(*types.AttributeValueMemberS)
		if !ok || got.Value != v {
			t.Errorf("%s = %#v, want S %q", k, item[k], v)
		}
	}
	rvn, ok := item["recordVersionNumber"].(*types.AttributeValueMemberS)
	if !ok {
		t.Fatalf("recordVersionNumber = %#v, want S", item["recordVersionNumber"])
	}
	if _, err := uuid.Parse(rvn.Value); err != nil {
		t.Errorf("recordVersionNumber %q is not a UUID: %v", rvn.Value, err)
	}
}

// TestNoIsCachedForOneHeartbeatPeriod: a "no" is reused for one heartbeat
// period without a request; a "yes" never costs one.
func TestNoIsCachedForOneHeartbeatPeriod(t *testing.T) {
	f, tab := fakeTable(t)
	c := newFakeClock()
	a, b := newTestDecider(t, f, tab, "a", c), newTestDecider(t, f, tab, "b", c)
	ctx := ctxT(t, 10*time.Second)
	a.IsLeader(ctx)
	gets := func() int { return f.Count(leasetest.Match{Op: leasetest.GetItem, Key: LockKey}) }
	n := gets()
	for range 3 {
		if !a.IsLeader(ctx) {
			t.Fatal("a stopped leading")
		}
	}
	if gets() != n {
		t.Fatalf("a's yes cost %d reads", gets()-n)
	}
	b.IsLeader(ctx)
	n = gets()
	c.Advance(29 * time.Second)
	if b.IsLeader(ctx) || gets() != n {
		t.Fatalf("b's cached no was not reused (%d reads)", gets()-n)
	}
	c.Advance(time.Second)
	if b.IsLeader(ctx) || gets() != n+1 {
		t.Fatalf("b did not read the lock again after one heartbeat period (%d reads)", gets()-n)
	}
}

// TestStaleOnlyAfterSameRVNForLeaseDuration: the lock is taken only after
// this worker has seen the same recordVersionNumber for longer than the
// lease duration the item claims; a heartbeat (new rvn) restarts the count;
// the taker's conditional put makes the old holder's next heartbeat fail.
func TestStaleOnlyAfterSameRVNForLeaseDuration(t *testing.T) {
	f, tab := fakeTable(t)
	c := newFakeClock()
	a, b := newTestDecider(t, f, tab, "a", c), newTestDecider(t, f, tab, "b", c)
	ctx := ctxT(t, 10*time.Second)
	a.IsLeader(ctx)
	lctx, cancel := a.LeadershipContext(context.Background())
	defer cancel()

	b.IsLeader(ctx) // first sight of a's rvn
	c.Advance(100 * time.Second)
	a.heartbeatOnce(ctx) // a new rvn: b's count restarts
	c.Advance(30 * time.Second)
	if b.IsLeader(ctx) {
		t.Fatal("b took a lock that heart-beats")
	}
	c.Advance(120 * time.Second) // exactly the lease duration since b saw the new rvn: not yet
	if b.IsLeader(ctx) {
		t.Fatal("b took the lock at exactly the lease duration")
	}
	c.Advance(30 * time.Second) // b's cached no runs out
	// a is past its own local expiry too: it stops leading by itself.
	if a.IsLeader(ctx) {
		t.Fatal("a still leads past its lease duration without a heartbeat")
	}
	if context.Cause(lctx) != ErrLockExpired {
		t.Fatalf("a's leadership context cause %v, want ErrLockExpired", context.Cause(lctx))
	}
	if !b.IsLeader(ctx) {
		t.Fatal("b did not take the stale lock")
	}
	if got := strAttr(f.Item(tab.Name, LockKey), "ownerName"); got != "b" {
		t.Fatalf("owner %q", got)
	}
}

// TestHeartbeatConditionFailureLosesAtOnce: when another worker took the
// lock, the holder's next heartbeat fails its condition and leadership
// ends at once with ErrLockLost.
func TestHeartbeatConditionFailureLosesAtOnce(t *testing.T) {
	f, tab := fakeTable(t)
	c := newFakeClock()
	a := newTestDecider(t, f, tab, "a", c)
	ctx := ctxT(t, 10*time.Second)
	a.IsLeader(ctx)
	lctx, cancel := a.LeadershipContext(context.Background())
	defer cancel()
	putJavaLock(t, f, tab, "java", uuid.NewString(), "120000") // overwritten behind a's back
	a.heartbeatOnce(ctx)
	if context.Cause(lctx) != ErrLockLost {
		t.Fatalf("cause %v, want ErrLockLost", context.Cause(lctx))
	}
	if owner, held, _ := a.Observed(); held || owner != "" {
		t.Fatalf("after loss: owner %q held %v", owner, held)
	}
	if got := strAttr(f.Item(tab.Name, LockKey), "ownerName"); got != "java" {
		t.Fatalf("a's failed heartbeat changed the lock: owner %q", got)
	}
}

// TestHeartbeatThatNeverLandsExpires: throttled heartbeats keep the lock
// until its local expiry, then leadership ends (ErrLockExpired).
func TestHeartbeatThatNeverLandsExpires(t *testing.T) {
	f, tab := fakeTable(t)
	c := newFakeClock()
	a := newTestDecider(t, f, tab, "a", c)
	ctx := ctxT(t, 10*time.Second)
	a.IsLeader(ctx)
	lctx, cancel := a.LeadershipContext(context.Background())
	defer cancel()
	f.FailAll(leasetest.Match{Op: leasetest.UpdateItem}, leasetest.Throttled())
	for range 4 {
		c.Advance(30 * time.Second)
		a.heartbeatOnce(ctx)
		if lctx.Err() != nil {
			t.Fatalf("lost before the lease duration: %v", context.Cause(lctx))
		}
	}
	c.Advance(time.Millisecond)
	a.heartbeatOnce(ctx)
	if context.Cause(lctx) != ErrLockExpired {
		t.Fatalf("cause %v, want ErrLockExpired", context.Cause(lctx))
	}
}

// TestLostResponses: an acquire or heartbeat whose response is lost but
// which landed is recognised by one consistent read.
func TestLostResponses(t *testing.T) {
	f, tab := fakeTable(t)
	c := newFakeClock()
	a := newTestDecider(t, f, tab, "a", c)
	ctx := ctxT(t, 10*time.Second)
	f.DropNextResponse(leasetest.Match{Op: leasetest.PutItem})
	if !a.IsLeader(ctx) {
		t.Fatal("a's landed acquire was not recognised")
	}
	lctx, cancel := a.LeadershipContext(context.Background())
	defer cancel()
	rvn := strAttr(f.Item(tab.Name, LockKey), "recordVersionNumber")
	f.DropNextResponse(leasetest.Match{Op: leasetest.UpdateItem})
	a.heartbeatOnce(ctx)
	a.heartbeatOnce(ctx)
	if lctx.Err() != nil {
		t.Fatalf("a lost the lock over a lost heartbeat response: %v", context.Cause(lctx))
	}
	if strAttr(f.Item(tab.Name, LockKey), "recordVersionNumber") == rvn {
		t.Fatal("heartbeats did not change the rvn")
	}
}

// TestReleasedLockIsTakenAtOnce: a lock item with isReleased (written by a
// lock client without deleteLockOnRelease) is taken at once, with the
// released condition.
func TestReleasedLockIsTakenAtOnce(t *testing.T) {
	f, tab := fakeTable(t)
	c := newFakeClock()
	item := javaLockItem(tab, "java", uuid.NewString(), "120000")
	item["isReleased"] = &types.AttributeValueMemberS{Value: "1"}
	putItem(t, f, tab, item)
	a := newTestDecider(t, f, tab, "a", c)
	if !a.IsLeader(ctxT(t, 10*time.Second)) {
		t.Fatal("a did not take a released lock")
	}
	got := f.Item(tab.Name, LockKey)
	if _, ok := got["isReleased"]; ok {
		t.Fatal("isReleased survived the acquire")
	}
	checkJavaLockItem(t, got, tab, "a", "120000")
}

// TestReleaseLeadershipIfHeld: the lock is deleted on the owner+rvn
// condition, leadership ends at once (ErrReleased), and, as in Java, the
// worker may lead again at its next (uncached) IsLeader.
func TestReleaseLeadershipIfHeld(t *testing.T) {
	f, tab := fakeTable(t)
	c := newFakeClock()
	a := newTestDecider(t, f, tab, "a", c)
	ctx := ctxT(t, 10*time.Second)
	a.ReleaseLeadershipIfHeld(ctx) // not held: no request
	if n := f.Count(leasetest.Match{Op: leasetest.DeleteItem}); n != 0 {
		t.Fatalf("%d deletes while not leading", n)
	}
	a.IsLeader(ctx)
	lctx, cancel := a.LeadershipContext(ctx)
	defer cancel()
	a.ReleaseLeadershipIfHeld(ctx)
	if context.Cause(lctx) != ErrReleased || f.Item(tab.Name, LockKey) != nil {
		t.Fatalf("cause %v, item %v", context.Cause(lctx), f.Item(tab.Name, LockKey))
	}
	if !a.IsLeader(ctx) {
		t.Fatal("a could not lead again after releasing (Java re-elects)")
	}
	nctx, ncancel := a.LeadershipContext(ctx)
	defer ncancel()
	if nctx.Err() != nil {
		t.Fatal("the new term's context is already done")
	}
}

// TestReleaseDoesNotDeleteAnotherOwnersLock: when the lock was taken
// meanwhile, the delete's condition fails and the item stays.
func TestReleaseDoesNotDeleteAnotherOwnersLock(t *testing.T) {
	f, tab := fakeTable(t)
	c := newFakeClock()
	a := newTestDecider(t, f, tab, "a", c)
	ctx := ctxT(t, 10*time.Second)
	a.IsLeader(ctx)
	putJavaLock(t, f, tab, "java", "r-java", "120000")
	a.ReleaseLeadershipIfHeld(ctx)
	if got := strAttr(f.Item(tab.Name, LockKey), "ownerName"); got != "java" {
		t.Fatalf("another owner's lock was deleted (owner now %q)", got)
	}
}

// TestNotRunningAnswersNo: before Run and after it, IsLeader is false and
// makes no request; LeadershipContext is done with ErrNotLeader.
func TestNotRunningAnswersNo(t *testing.T) {
	f, tab := fakeTable(t)
	d, err := New(f, StaticTarget(tab), Config{WorkerID: "a"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if d.IsLeader(ctxT(t, 10*time.Second)) || f.Count(leasetest.Match{Op: leasetest.GetItem, Key: LockKey}) != 0 {
		t.Fatal("IsLeader before Run")
	}
	lctx, cancel := d.LeadershipContext(context.Background())
	defer cancel()
	if context.Cause(lctx) != ErrNotLeader {
		t.Fatalf("cause %v", context.Cause(lctx))
	}
}

// TestMalformedLockIsAnError: a Leader item without a numeric
// leaseDuration is reported (naming the attribute) and never taken.
func TestMalformedLockIsAnError(t *testing.T) {
	f, tab := fakeTable(t)
	putJavaLock(t, f, tab, "java", "r1", "soon")
	_, err := getLock(ctxT(t, 10*time.Second), f, tab)
	var le *LockError
	if !errors.Is(err, ErrMalformedLock) || !errors.As(err, &le) || le.Table != tab.Name {
		t.Fatalf("err %v", err)
	}
	a := newTestDecider(t, f, tab, "a", newFakeClock())
	if a.IsLeader(ctxT(t, 10*time.Second)) {
		t.Fatal("a took a malformed lock")
	}
}

// javaLockItem is the item Java's lock client writes for owner.
func javaLockItem(tab Table, owner, rvn, leaseMillis string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		tab.PartitionKey:      &types.AttributeValueMemberS{Value: LockKey},
		"entityType":          &types.AttributeValueMemberS{Value: "LEADER"},
		"ownerName":           &types.AttributeValueMemberS{Value: owner},
		"leaseDuration":       &types.AttributeValueMemberS{Value: leaseMillis},
		"recordVersionNumber": &types.AttributeValueMemberS{Value: rvn},
	}
}

func putJavaLock(t *testing.T, api DynamoAPI, tab Table, owner, rvn, leaseMillis string) {
	t.Helper()
	putItem(t, api, tab, javaLockItem(tab, owner, rvn, leaseMillis))
}

func putItem(t *testing.T, api DynamoAPI, tab Table, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := api.PutItem(ctxT(t, 10*time.Second), &dynamodb.PutItemInput{TableName: aws.String(tab.Name), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func TestFromProperties(t *testing.T) {
	p := properties.Defaults()
	p.WorkerID = "w"
	c := FromProperties(p)
	if c != (Config{WorkerID: "w", LeaseDuration: 2 * time.Minute, HeartbeatPeriod: 30 * time.Second}) || c.Validate() != nil {
		t.Fatalf("%+v", c)
	}
}

// TestExpiryEndsLeadershipWithoutAnyCall: with heartbeats that never land,
// Run's expiry watch ends leadership by itself once the lease duration has
// passed since the last landed write (real clock: only the lower bound is
// checked).
func TestExpiryEndsLeadershipWithoutAnyCall(t *testing.T) {
	f, tab := fakeTable(t)
	d, err := New(f, StaticTarget(tab), Config{WorkerID: "a", LeaseDuration: 400 * time.Millisecond, HeartbeatPeriod: 100 * time.Millisecond}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runDecider(t, d)
	f.FailAll(leasetest.Match{Op: leasetest.UpdateItem}, leasetest.Throttled())
	start := time.Now()
	if !d.IsLeader(ctxT(t, 10*time.Second)) {
		t.Fatal("no lead")
	}
	lctx, cancel := d.LeadershipContext(context.Background())
	defer cancel()
	select {
	case <-lctx.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("leadership did not end")
	}
	if context.Cause(lctx) != ErrLockExpired || time.Since(start) < 400*time.Millisecond {
		t.Fatalf("cause %v after %s", context.Cause(lctx), time.Since(start))
	}
	if f.Count(leasetest.Match{Op: leasetest.UpdateItem}) == 0 {
		t.Fatal("no heartbeat was tried")
	}
}

// TestLockFollowsTableMigration: a lock held in the legacy CoordinatorState
// table is released (ErrLockMoved) once TableMigration3.5 is COMPLETE, and
// the next IsLeader takes it in the lease table.
func TestLockFollowsTableMigration(t *testing.T) {
	f := leasetest.New()
	st := newLeaseTable(t, f)
	legacy := st.Table() + "-CoordinatorState"
	newLegacyTable(t, f, legacy)
	st = st.WithCoordinatorStateTable(legacy)
	c := newFakeClock()
	d, err := New(f, st, Config{WorkerID: "a"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	d.clock, d.phase = c, phaseRunning
	ctx := ctxT(t, 10*time.Second)
	if !d.IsLeader(ctx) || f.Item(legacy, LockKey) == nil {
		t.Fatal("a does not lead in the legacy table")
	}
	lctx, cancel := d.LeadershipContext(ctx)
	defer cancel()
	d.followTarget(ctx)
	if lctx.Err() != nil {
		t.Fatal("released while the migration is not complete")
	}
	putItem(t, f, Table{Name: legacy, PartitionKey: "key"}, map[string]types.AttributeValue{
		"key": &types.AttributeValueMemberS{Value: "TableMigration3.5"}, "tm": &types.AttributeValueMemberS{Value: "TABLE_MIGRATION_STATUS_COMPLETE"}})
	d.followTarget(ctx)
	if context.Cause(lctx) != ErrLockMoved || f.Item(legacy, LockKey) != nil {
		t.Fatalf("cause %v, legacy lock %v", context.Cause(lctx), f.Item(legacy, LockKey))
	}
	if !d.IsLeader(ctx) || f.Item(st.Table(), LockKey) == nil {
		t.Fatal("a did not take the lock in the lease table")
	}
}
