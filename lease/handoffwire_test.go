package lease

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/multilangd/multilangd/lease/leasetest"
)

// Graceful hand-off with faults injected at the DynamoDB request level
// (leasetest hooks), as in wirefaults_test.go.

// handingOffOnFake returns a coordinator (renewer and taker idle after the
// first taker run) holding the only lease of a fresh fake table, whose
// graceful hand-off to "go-b" has started (W9, adopted by a renew).
func handingOffOnFake(t *testing.T, failover time.Duration) (*leasetest.Fake, *DynamoStore, *Coordinator, *Held) {
	t.Helper()
	b := fakeBackend()
	st := newTable(t, b)
	key := createLeases(t, st, 1)[0]
	var mu sync.Mutex
	taken := 0
	c := newCoord(t, st, "go-a", func(c *CoordinatorConfig) {
		c.FailoverTime, c.RenewerPeriod, c.TakerPeriod = failover, time.Hour, time.Hour
		c.GracefulLeaseHandoffTimeout, c.HandoffCheckPeriod = time.Hour, time.Hour
		c.OnTake = func(TakeResult) { mu.Lock(); taken++; mu.Unlock() }
	})
	runCoord(t, c)
	waitFor(t, 10*time.Second, "first taker run", func() bool { mu.Lock(); defer mu.Unlock(); return taken == 1 })
	handoffTo(t, st, key, "go-b")
	c.threeX.Store(true)
	c.renewAll(ctxT(t, 10*time.Second))
	h := heldKeys(c)[key]
	if h == nil {
		t.Fatal("lease not held after the renew that adopts the hand-off")
	}
	waitClosed(t, h.Handoff, time.Second, "the hand-off started")
	return b.fake, st, c, h
}

// TestWireHandoffTransferHung: a transfer (W8) whose request hangs (a
// black-holed connection; the SDK sets no response timeout) gives up after
// the failover time, as a renew does at the lease's local expiry, instead
// of holding the lease's io lock (its renewals, checkpoints, and the
// hand-off loop that serves every other lease) until the caller's context
// ends.
func TestWireHandoffTransferHung(t *testing.T) {
	const failover = 2 * time.Second
	f, _, c, h := handingOffOnFake(t, failover)
	f.DelayNext(leasetest.Match{Op: leasetest.UpdateItem, Key: h.Lease.Key}, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	start := time.Now()
	err := c.CompleteHandoff(ctx, h.Lease.Key)
	if took := time.Since(start); err == nil || took > 20*time.Second {
		t.Fatalf("hung transfer returned %v after %s; want an error well before the caller's 40 s", err, took)
	}
	if errors.Is(err, ErrConditionFailed) {
		t.Fatalf("a hung transfer is not a condition failure: %v", err)
	}
}

// TestWireHandoffTransferLandedNewOwnerRenewed: a transfer whose W8 landed
// but whose response was lost, and whose retries failed, is retried after
// the new owner has already renewed the lease: the retry's CCF shows the
// lease with its new owner (no checkpointOwner, counter beyond ours), so
// the hand-off is complete (ErrHandedOff), not a lost lease.
func TestWireHandoffTransferLandedNewOwnerRenewed(t *testing.T) {
	f, st, c, h := handingOffOnFake(t, 30*time.Second)
	key := h.Lease.Key
	update := leasetest.Match{Op: leasetest.UpdateItem, Key: key}
	f.DropNextResponse(update)
	f.FailAll(update, leasetest.Throttled())
	if err := c.CompleteHandoff(ctxT(t, 10*time.Second), key); err == nil || errors.Is(err, ErrConditionFailed) {
		t.Fatalf("transfer with a lost response and throttled retries: %v, want a transient error", err)
	}
	if h.Ctx.Err() != nil {
		t.Fatalf("lease dropped after a transient transfer failure: %v", context.Cause(h.Ctx))
	}
	f.ClearFaults()
	cur, err := st.GetLease(ctxT(t, 10*time.Second), key)
	if err != nil || cur.Owner != "go-b" || cur.CheckpointOwner != "" {
		t.Fatalf("item after the landed W8: %+v %v", cur, err)
	}
	if err := st.RenewLease(ctxT(t, 10*time.Second), *cur, true); err != nil { // the new owner
		t.Fatal(err)
	}
	if err := c.CompleteHandoff(ctxT(t, 10*time.Second), key); err != nil {
		t.Fatalf("retried transfer after it landed: %v", err)
	}
	if cause := context.Cause(h.Ctx); !errors.Is(cause, ErrHandedOff) {
		t.Fatalf("cause %v, want ErrHandedOff", cause)
	}
}

// TestWireReleaseOfUnnoticedHandoff: a lease released (graceful stop, its
// child already closed) after the leader's W9 landed but before a renew
// noticed it: the release's CCF shows the hand-off, so the lease is
// transferred to its next owner (W8) at once instead of being left
// pending until the leader's deadline.
func TestWireReleaseOfUnnoticedHandoff(t *testing.T) {
	_, st, c, h, _ := holdOneOnFake(t, nil)
	key := h.Lease.Key
	before := handoffTo(t, st, key, "go-b")
	if err := c.Release(ctxT(t, 10*time.Second), key); err != nil {
		t.Fatalf("release of a lease with an unnoticed hand-off: %v", err)
	}
	if cause := context.Cause(h.Ctx); !errors.Is(cause, ErrHandedOff) {
		t.Fatalf("cause %v, want ErrHandedOff", cause)
	}
	cur, err := st.GetLease(ctxT(t, 10*time.Second), key)
	if err != nil || cur.Owner != "go-b" || cur.CheckpointOwner != "" || cur.Counter != before.Counter+1 {
		t.Fatalf("item after the release: %+v %v (W9 left %+v)", cur, err, before)
	}
}
