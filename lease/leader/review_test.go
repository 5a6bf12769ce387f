package leader

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/multilangd/multilangd/lease/leasetest"
)

// slowAnswerAPI applies an UpdateItem but never answers it: the caller's
// context runs out, as when DynamoDB applied a heartbeat whose response
// did not arrive before the request's budget.
type slowAnswerAPI struct {
	*leasetest.Fake
	hang bool
}

func (a *slowAnswerAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := a.Fake.UpdateItem(context.WithoutCancel(ctx), in, opts...)
	if err != nil || !a.hang {
		return out, err
	}
	<-ctx.Done()
	return nil, fmt.Errorf("operation error DynamoDB: UpdateItem: %w", ctx.Err())
}

// TestHeartbeatTimedOutButLandedIsRecognised: a heartbeat that landed but
// whose answer did not come back within its budget is recognised by the
// consistent read that follows (the read has a budget of its own), so the
// worker keeps leading with the new recordVersionNumber instead of
// failing its next heartbeat's condition.
func TestHeartbeatTimedOutButLandedIsRecognised(t *testing.T) {
	f, tab := fakeTable(t)
	api := &slowAnswerAPI{Fake: f}
	c := newFakeClock()
	a := newTestDecider(t, api, tab, "a", c)
	ctx := ctxT(t, 10*time.Second)
	if !a.IsLeader(ctx) {
		t.Fatal("a does not lead an absent lock")
	}
	lctx, cancel := a.LeadershipContext(context.Background())
	defer cancel()
	c.Advance(DefaultLeaseDuration - 200*time.Millisecond) // the heartbeat's budget: 200 ms
	api.hang = true
	a.heartbeatOnce(ctx)
	api.hang = false
	if lctx.Err() != nil {
		t.Fatalf("leadership ended: %v", context.Cause(lctx))
	}
	c.Advance(DefaultHeartbeatPeriod)
	a.heartbeatOnce(ctx)
	if lctx.Err() != nil {
		t.Fatalf("the heartbeat after a timed-out but landed one ended leadership: %v", context.Cause(lctx))
	}
}

// TestLeadershipContextOfAnExpiredTermIsDone: once the lease duration has
// passed without a landed heartbeat, a LeadershipContext asked before
// Run's expiry watch has fired is already done (ErrLockExpired), as
// IsLeader already answers no.
func TestLeadershipContextOfAnExpiredTermIsDone(t *testing.T) {
	f, tab := fakeTable(t)
	c := newFakeClock()
	a := newTestDecider(t, f, tab, "a", c)
	if !a.IsLeader(ctxT(t, 10*time.Second)) {
		t.Fatal("a does not lead an absent lock")
	}
	c.Advance(DefaultLeaseDuration + time.Millisecond)
	lctx, cancel := a.LeadershipContext(context.Background())
	defer cancel()
	if context.Cause(lctx) != ErrLockExpired {
		t.Fatalf("context of an expired term: err %v cause %v, want ErrLockExpired", lctx.Err(), context.Cause(lctx))
	}
}

// deadlineTarget is a Target that records how long its caller let it run.
type deadlineTarget struct {
	Table
	budget time.Duration
}

func (d *deadlineTarget) LeaderLockTarget(ctx context.Context) (string, string, error) {
	if dl, ok := ctx.Deadline(); ok {
		d.budget = time.Until(dl)
	}
	return d.Name, d.PartitionKey, nil
}

// TestFollowTargetEndsByTheLocalExpiry: the holder's check of the lock's
// place (which may read DynamoDB) never runs past the lock's local
// expiry, so Run's expiry watch is not held up by it.
func TestFollowTargetEndsByTheLocalExpiry(t *testing.T) {
	f, tab := fakeTable(t)
	c := newFakeClock()
	target := &deadlineTarget{Table: tab}
	d, err := New(f, target, Config{WorkerID: "a"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	d.clock, d.phase = c, phaseRunning
	ctx := ctxT(t, 10*time.Second)
	if !d.IsLeader(ctx) {
		t.Fatal("a does not lead an absent lock")
	}
	c.Advance(DefaultLeaseDuration - 50*time.Millisecond)
	d.followTarget(ctx)
	if target.budget <= 0 || target.budget > 50*time.Millisecond {
		t.Fatalf("the lock's place was asked with a budget of %s, want at most the 50ms left before the local expiry", target.budget)
	}
}
