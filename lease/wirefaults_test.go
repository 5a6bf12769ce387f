package lease

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/multilangd/multilangd/lease/leasetest"
	"github.com/multilangd/multilangd/seqnum"
)

// These tests inject faults at the DynamoDB request level with the
// leasetest hooks, so the real DynamoStore (its retries and error
// classification) and the Coordinator react to them together. The same
// behaviours are covered against the emulators by the faultStore tests in
// integration_test.go.

// holdOneOnFake returns a coordinator (renewer and taker idle after the
// first taker run) holding the only lease of a fresh fake table.
func holdOneOnFake(t *testing.T, prepare func(f *leasetest.Fake)) (*leasetest.Fake, *DynamoStore, *Coordinator, *Held, TakeResult) {
	t.Helper()
	b := fakeBackend()
	st := newTable(t, b)
	createLeases(t, st, 1)
	if prepare != nil {
		prepare(b.fake)
	}
	var mu sync.Mutex
	var res []TakeResult
	c := newCoord(t, st, "go-a", func(c *CoordinatorConfig) {
		c.FailoverTime, c.RenewerPeriod, c.TakerPeriod = 30*time.Second, time.Hour, time.Hour
		c.OnTake = func(r TakeResult) { mu.Lock(); res = append(res, r); mu.Unlock() }
	})
	runCoord(t, c)
	waitFor(t, 10*time.Second, "first taker run", func() bool { mu.Lock(); defer mu.Unlock(); return len(res) == 1 })
	if len(c.Held()) != 1 {
		t.Fatalf("held %d leases after the first taker run %+v", len(c.Held()), res[0])
	}
	return b.fake, st, c, c.Held()[0], res[0]
}

// A take, a checkpoint and a release whose UpdateItem landed but whose
// response was lost: the store retries, the retry's CCF is followed by a read
// that shows our own write, and each counts as a success.
func TestWireLostResponses(t *testing.T) {
	update := leasetest.Match{Op: leasetest.UpdateItem}
	f, st, c, h, res := holdOneOnFake(t, func(f *leasetest.Fake) { f.DropNextResponse(update) })
	if res.Taken != 1 || res.Untaken != 0 {
		t.Fatalf("take with a lost response: %+v", res)
	}
	cp := c.Checkpointer(h)
	cp.SetLargestPermitted(seqnum.New("42", 0))
	f.DropNextResponse(update)
	if err := cp.Checkpoint(ctxT(t, 10*time.Second), nil, nil); err != nil {
		t.Fatalf("checkpoint with a lost response: %v", err)
	}
	if h.Ctx.Err() != nil {
		t.Fatal("lease dropped after a lost checkpoint response")
	}
	f.DropNextResponse(update)
	if err := c.Release(ctxT(t, 10*time.Second), h.Lease.Key); err != nil {
		t.Fatalf("release with a lost response: %v", err)
	}
	l, err := st.GetLease(ctxT(t, 10*time.Second), h.Lease.Key)
	if err != nil || l == nil || l.Owner != "" || l.Checkpoint != seqnum.New("42", 0) {
		t.Fatalf("lease after release %+v (%v)", l, err)
	}
}

// A throttled checkpoint is retried by the store, then reported to the child
// as ThrottlingException; the lease stays held and the next checkpoint
// succeeds.
func TestWireThrottledCheckpoint(t *testing.T) {
	f, _, c, h, _ := holdOneOnFake(t, nil)
	cp := c.Checkpointer(h)
	cp.SetLargestPermitted(seqnum.New("7", 0))
	update := leasetest.Match{Op: leasetest.UpdateItem, Key: h.Lease.Key}
	before := f.Count(update)
	f.FailAll(update, leasetest.Throttled())
	err := cp.Checkpoint(ctxT(t, 10*time.Second), nil, nil)
	var ce *CheckpointError
	if !errors.As(err, &ce) || ce.ExceptionName() != "ThrottlingException" || !errors.Is(err, ErrThrottled) {
		t.Fatalf("throttled checkpoint: %v", err)
	}
	if n := f.Count(update) - before; n < 2 {
		t.Fatalf("%d UpdateItem attempts, want the store's retries", n)
	}
	if h.Ctx.Err() != nil {
		t.Fatal("lease dropped after throttling")
	}
	f.ClearFaults()
	if err := cp.Checkpoint(ctxT(t, 10*time.Second), nil, nil); err != nil {
		t.Fatalf("checkpoint after throttling ended: %v", err)
	}
}

// A renew that fails transiently (throttled to exhaustion) keeps the lease
// until local expiry; one that loses its response is recognised as our own
// write by the next renew (Java DynamoDBLeaseRenewer.renewLease).
func TestWireRenewFaults(t *testing.T) {
	f, st, c, h, _ := holdOneOnFake(t, nil)
	renew := leasetest.Match{Op: leasetest.UpdateItem, Key: h.Lease.Key}
	f.FailAll(renew, leasetest.Throttled())
	c.renewAll(ctxT(t, 10*time.Second))
	if h.Ctx.Err() != nil {
		t.Fatal("lease dropped after a throttled renew")
	}
	f.ClearFaults()
	f.DropNextResponse(renew)
	c.renewAll(ctxT(t, 10*time.Second))
	c.renewAll(ctxT(t, 10*time.Second))
	if h.Ctx.Err() != nil {
		t.Fatalf("lease dropped after a lost renew response: %v", h.Ctx.Err())
	}
	l, err := st.GetLease(ctxT(t, 10*time.Second), h.Lease.Key)
	if err != nil || l.Owner != "go-a" {
		t.Fatalf("lease %+v (%v)", l, err)
	}
	cp := c.Checkpointer(c.Held()[0])
	cp.SetLargestPermitted(seqnum.New("9", 0))
	if err := cp.Checkpoint(ctxT(t, 10*time.Second), nil, nil); err != nil {
		t.Fatalf("checkpoint with the counter in sync: %v", err)
	}
}

// A taker round whose scan is throttled to exhaustion takes nothing; the
// next round takes the lease.
func TestWireThrottledScan(t *testing.T) {
	b := fakeBackend()
	st := newTable(t, b)
	createLeases(t, st, 1)
	c := newCoord(t, st, "go-a", nil)
	b.fake.FailAll(leasetest.Match{Op: leasetest.Scan}, leasetest.Throttled())
	if _, err := c.takeOnce(ctxT(t, 10*time.Second)); !errors.Is(err, ErrThrottled) {
		t.Fatalf("taker round with a throttled scan: %v", err)
	}
	if len(c.Held()) != 0 {
		t.Fatal("took a lease without a scan")
	}
	b.fake.ClearFaults()
	res, err := c.takeOnce(ctxT(t, 10*time.Second))
	if err != nil || res.Taken != 1 {
		t.Fatalf("next round: %+v, %v", res, err)
	}
}
