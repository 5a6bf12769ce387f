package leader

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

// netAPI is one worker's path to DynamoDB: fake time passes while a
// request travels and while its answer travels back (up to 0.3 s there, now and then up to 3 s back),
// and the path can be cut (every request throttled). landed is called when
// an acquire has been applied, before its answer travels back; meanwhile
// lets the other workers act while an answer travels.
type netAPI struct {
	*leasetest.Fake
	clock     *fakeClock
	r         *rand.Rand
	cut       bool
	landed    func()
	meanwhile func()
}

func (a *netAPI) travel() error {
	a.clock.Advance(time.Duration(a.r.IntN(300)) * time.Millisecond)
	if a.cut {
		return leasetest.Throttled()
	}
	return nil
}

// back is an answer's way back, now and then a slow one, while the other
// workers go on (meanwhile).
func (a *netAPI) back() {
	d := time.Duration(a.r.IntN(300)) * time.Millisecond
	if a.r.IntN(4) == 0 {
		d = time.Duration(a.r.IntN(3000)) * time.Millisecond
	}
	a.clock.Advance(d / 2)
	if a.meanwhile != nil {
		a.meanwhile()
	}
	a.clock.Advance(d - d/2)
}

func (a *netAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if err := a.travel(); err != nil {
		return nil, err
	}
	defer a.back()
	return a.Fake.GetItem(ctx, in, o...)
}

func (a *netAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := a.travel(); err != nil {
		return nil, err
	}
	defer a.back()
	out, err := a.Fake.PutItem(ctx, in, o...)
	if err == nil || errors.Is(err, leasetest.ErrResponseLost) {
		a.landed()
	}
	return out, err
}

func (a *netAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := a.travel(); err != nil {
		return nil, err
	}
	defer a.back()
	return a.Fake.UpdateItem(ctx, in, o...)
}

func (a *netAPI) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if err := a.travel(); err != nil {
		return nil, err
	}
	defer a.back()
	return a.Fake.DeleteItem(ctx, in, o...)
}

// TestNeverTwoLeaders drives three deciders on one table and one fake
// clock through random interleavings of IsLeader, heartbeats, releases,
// clock jumps, slow requests (other workers acting while an answer
// travels), cut-off workers, throttled requests and lost responses. When an acquire lands, no other worker may still believe it
// leads (hold a term not past its local expiry); after every step at most
// one believes it leads.
func TestNeverTwoLeaders(t *testing.T) {
	seeds := uint64(60)
	if testing.Short() {
		seeds = 20
	}
	takeovers := 0
	for seed := range seeds {
		f, tab := fakeTable(t)
		c := newFakeClock()
		r := rand.New(rand.NewPCG(seed, 99))
		var ds []*Decider
		var nets []*netAPI
		believers := func() (ids []string) {
			for _, x := range ds {
				if tm := x.current(); tm != nil && !c.Now().After(x.localExpiry(tm)) {
					ids = append(ids, x.cfg.WorkerID)
				}
			}
			return ids
		}
		step, inside := 0, false
		ctx := ctxT(t, time.Minute)
		for _, id := range []string{"a", "b", "c"} {
			n := &netAPI{Fake: f, clock: c, r: r}
			n.landed = func() {
				if b := believers(); len(b) > 0 {
					t.Fatalf("seed %d step %d: %s's acquire landed while %v believe they lead", seed, step, id, b)
				}
				takeovers++
			}
			self := len(nets)
			n.meanwhile = func() {
				if inside || r.IntN(3) != 0 {
					return
				}
				inside = true
				defer func() { inside = false }()
				other := ds[(self+1+r.IntN(len(ds)-1))%len(ds)]
				if r.IntN(2) == 0 {
					other.lastCheck = time.Time{}
					other.IsLeader(ctx)
				} else {
					other.heartbeatOnce(ctx)
				}
			}
			nets = append(nets, n)
			d, err := New(n, StaticTarget(tab), Config{WorkerID: id, LeaseDuration: 20 * time.Second, HeartbeatPeriod: 5 * time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			d.clock, d.phase = c, phaseRunning
			ds = append(ds, d)
		}
		ops := []string{leasetest.GetItem, leasetest.PutItem, leasetest.UpdateItem, leasetest.DeleteItem}
		for step = range 5000 {
			if step%50 == 0 {
				f.ClearFaults() // an armed fault waits for its operation: keep them few
			}
			i := r.IntN(len(ds))
			switch k := r.IntN(20); {
			case k < 5:
				c.Advance(time.Duration(r.IntN(500)) * time.Millisecond)
			case k < 13:
				if r.IntN(5) != 0 {
					ds[i].lastCheck = time.Time{} // probe at any time, not only once per heartbeat period
				}
				ds[i].IsLeader(ctx)
			case k < 15:
				ds[i].heartbeatOnce(ctx)
			case k < 16:
				nets[i].cut = !nets[i].cut
			case k < 19:
				if r.IntN(2) == 0 {
					f.FailNext(leasetest.Match{Op: ops[r.IntN(len(ops))]}, leasetest.Throttled())
				} else {
					f.DropNextResponse(leasetest.Match{Op: ops[r.IntN(len(ops))]})
				}
			default:
				if r.IntN(5) == 0 {
					ds[i].ReleaseLeadershipIfHeld(ctx)
				}
			}
			if b := believers(); len(b) > 1 {
				t.Fatalf("seed %d step %d: %v all believe they lead", seed, step, b)
			}
		}
		f.ClearFaults()
	}
	if takeovers < 5*int(seeds) {
		t.Fatalf("only %d acquires landed: the interleavings do not exercise take-overs", takeovers)
	}
}

// readFailsAfterPut fails the first GetItem that follows a PutItem.
type readFailsAfterPut struct {
	*leasetest.Fake
	armed bool
}

func (a *readFailsAfterPut) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	a.armed = true
	return a.Fake.PutItem(ctx, in, o...)
}

func (a *readFailsAfterPut) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if a.armed {
		a.armed = false
		return nil, leasetest.Throttled()
	}
	return a.Fake.GetItem(ctx, in, o...)
}

// TestAcquireWhoseOutcomeStayedUnknownIsAdopted: an acquire that landed
// while both its answer and the read that follows were lost is recognised
// at the next IsLeader (the item carries the recordVersionNumber it
// wrote), instead of being waited out as another holder's lock.
func TestAcquireWhoseOutcomeStayedUnknownIsAdopted(t *testing.T) {
	f, tab := fakeTable(t)
	api := &readFailsAfterPut{Fake: f}
	c := newFakeClock()
	a := newTestDecider(t, api, tab, "a", c)
	ctx := ctxT(t, 10*time.Second)
	f.DropNextResponse(leasetest.Match{Op: leasetest.PutItem})
	if a.IsLeader(ctx) {
		t.Fatal("a leads though it could not tell whether its acquire landed")
	}
	if f.Item(tab.Name, LockKey) == nil {
		t.Fatal("the acquire did not land")
	}
	c.Advance(time.Second)
	if !a.IsLeader(ctx) {
		t.Fatal("a's landed acquire was not adopted")
	}
	lctx, cancel := a.LeadershipContext(ctx)
	defer cancel()
	c.Advance(DefaultLeaseDuration) // the term counts from before the acquire was sent
	if a.IsLeader(ctx) || context.Cause(lctx) != ErrLockExpired {
		t.Fatalf("the adopted term outlived its acquire by the lease duration: cause %v", context.Cause(lctx))
	}
}
