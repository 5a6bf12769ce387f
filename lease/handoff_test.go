package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/multilangd/multilangd/seqnum"
)

// followerTable is a lease table on DynamoDB Local as a Java KCL 3.x fleet
// leaves it: the LeaseOwnerToLeaseKeyIndex GSI, Migration3.0 =
// CLIENT_VERSION_3X and a Leader lock the scripted Java leader heart-beats
// until the test ends, so multilangd workers only follow (no taking, GSI
// discovery). It holds one unowned lease; the test assigns it (W8).
func followerTable(t *testing.T) (*DynamoStore, string) {
	t.Helper()
	st := java3xLeaderTable(t)
	const key = "shardId-000000000000"
	if ok, err := st.CreateLeaseIfNotExists(ctxT(t, 10*time.Second), Lease{Key: key, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	return st, key
}

// follower is a coordinator in KCL 3.x mode (as the daemon sets it for cv =
// CLIENT_VERSION_3X) that is not the leader: it discovers, never takes.
func follower(t *testing.T, st *DynamoStore, id string, mod func(*CoordinatorConfig)) *Coordinator {
	c := newCoord(t, st, id, func(c *CoordinatorConfig) {
		c.TakerPeriod, c.RenewerPeriod, c.DiscoveryPeriod = 300*time.Millisecond, 200*time.Millisecond, 300*time.Millisecond
		if mod != nil {
			mod(c)
		}
	})
	c.SetThreeXMode(true)
	return c
}

// assignTo is the scripted leader's W8 of an unowned lease.
func assignTo(t *testing.T, st *DynamoStore, key, worker string) {
	t.Helper()
	cur, err := st.GetLease(ctxT(t, 10*time.Second), key)
	if err != nil || cur == nil {
		t.Fatal(cur, err)
	}
	if _, err := st.AssignLease(ctxT(t, 10*time.Second), *cur, worker); err != nil {
		t.Fatal(err)
	}
}

// handoffTo is the scripted leader's W9 (exactly Java
// initiateGracefulLeaseHandoff) of the lease from its owner to next.
func handoffTo(t *testing.T, st *DynamoStore, key, next string) Lease {
	t.Helper()
	cur, err := st.GetLease(ctxT(t, 10*time.Second), key)
	if err != nil || cur == nil {
		t.Fatal(cur, err)
	}
	l, err := st.InitiateHandoff(ctxT(t, 10*time.Second), *cur, next)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func waitClosed(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// TestIntegrationGracefulHandoff: the leader's W9 on a lease multilangd
// holds is noticed by the renew (Java DynamoDBLeaseRefresher.renewLease →
// handleGracefulShutdown): the owners are adopted, renewals go on with the
// counter-only condition, Held.Handoff closes and a checkpoint still lands;
// CompleteHandoff writes W8 (leaseOwner stays the new owner, checkpointOwner
// removed, counter +1, no owner switch) and drops the lease with
// ErrHandedOff. The new owner, running all along, neither re-acquires it at
// start-up nor discovers it while checkpointOwner is set, and holds it
// right after the transfer, at the handed-over checkpoint.
func TestIntegrationGracefulHandoff(t *testing.T) {
	st, key := followerTable(t)
	a := follower(t, st, "mld-a", func(c *CoordinatorConfig) { c.GracefulLeaseHandoffTimeout = time.Hour })
	runCoord(t, a)
	assignTo(t, st, key, "mld-a")
	waitFor(t, 30*time.Second, "mld-a discovers its lease", func() bool { return heldKeys(a)[key] != nil })
	held := heldKeys(a)[key]

	w9 := handoffTo(t, st, key, "mld-b")
	if w9.Owner != "mld-b" || w9.CheckpointOwner != "mld-a" {
		t.Fatalf("W9 wrote %+v", w9)
	}
	// The new owner starts now: its start-up renew skips the pending
	// hand-off and so does its discovery.
	b := follower(t, st, "mld-b", nil)
	runCoord(t, b)
	waitClosed(t, held.Handoff, 10*time.Second, "the hand-off noticed by the renewer")
	hs := a.Handoffs()
	if len(hs) != 1 || hs[0].Key != key || hs[0].To != "mld-b" || hs[0].Deadline.Sub(hs[0].Started) != time.Hour {
		t.Fatalf("Handoffs() = %+v", hs)
	}
	if held.Ctx.Err() != nil {
		t.Fatalf("lease dropped on the hand-off request: %v", context.Cause(held.Ctx))
	}
	// Renewals go on (counter-only condition) for longer than failover.
	c0 := counterOf(t, st, key)
	time.Sleep(2 * testFailover)
	if c1 := counterOf(t, st, key); c1 <= c0 || held.Ctx.Err() != nil {
		t.Fatalf("not renewed during the hand-off: counter %d → %d, ctx %v", c0, c1, context.Cause(held.Ctx))
	}
	if heldKeys(b)[key] != nil {
		t.Fatal("the new owner holds the lease before the transfer")
	}
	// The shard consumer's final checkpoint (W4) lands.
	cur := heldKeys(a)[key]
	if cur.Lease.Owner != "mld-b" || cur.Lease.CheckpointOwner != "mld-a" {
		t.Fatalf("in-memory lease %+v", cur.Lease)
	}
	cp := a.Checkpointer(cur)
	final := seqnum.New("49590338271490256608559692538361571095921575989136588898", 0)
	cp.SetLargestPermitted(final)
	if err := cp.Checkpoint(ctxT(t, 10*time.Second), &final.Sequence, nil); err != nil {
		t.Fatalf("checkpoint during the hand-off: %v", err)
	}
	before, err := st.GetLease(ctxT(t, 10*time.Second), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CompleteHandoff(ctxT(t, 10*time.Second), key); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(context.Cause(held.Ctx), ErrHandedOff) || errors.Is(context.Cause(held.Ctx), ErrLeaseLost) {
		t.Fatalf("cause %v, want ErrHandedOff", context.Cause(held.Ctx))
	}
	item := getRaw(t, st, key)
	after, _ := UnmarshalItem(item)
	if _, ok := item[AttrCheckpointOwner]; ok || after.Owner != "mld-b" || after.Counter != before.Counter+1 ||
		after.Checkpoint != final || after.OwnerSwitchesSinceCheckpoint != before.OwnerSwitchesSinceCheckpoint {
		t.Fatalf("after W8: %v (before %+v)", itemString(item), before)
	}
	if len(a.Handoffs()) != 0 || heldKeys(a)[key] != nil {
		t.Fatal("the old owner still holds the lease")
	}
	waitFor(t, 30*time.Second, "the new owner discovers the lease", func() bool { return heldKeys(b)[key] != nil })
	if got := heldKeys(b)[key].Lease.Checkpoint; got != final {
		t.Fatalf("new owner starts at %v, want %v", got, final)
	}
	time.Sleep(2 * testFailover)
	if heldKeys(a)[key] != nil || heldKeys(b)[key] == nil {
		t.Fatal("ownership did not settle on the new owner")
	}
}

// TestIntegrationHandoffTimeout: a shard consumer that never finishes
// (CompleteHandoff is never called): after gracefulLeaseHandoffTimeoutMillis
// the coordinator transfers the lease itself (Java
// LeaseGracefulShutdownHandler.monitorGracefulShutdownLeases) and drops it
// with ErrHandedOff.
func TestIntegrationHandoffTimeout(t *testing.T) {
	st, key := followerTable(t)
	const timeout = 2 * time.Second
	a := follower(t, st, "mld-a", func(c *CoordinatorConfig) { c.GracefulLeaseHandoffTimeout = timeout })
	runCoord(t, a)
	assignTo(t, st, key, "mld-a")
	waitFor(t, 30*time.Second, "mld-a discovers its lease", func() bool { return heldKeys(a)[key] != nil })
	held := heldKeys(a)[key]
	handoffTo(t, st, key, "mld-b")
	waitClosed(t, held.Handoff, 10*time.Second, "the hand-off noticed")
	started := time.Now()
	waitClosed(t, held.Ctx.Done(), 30*time.Second, "the transfer after the timeout")
	if waited := time.Since(started); waited < timeout-300*time.Millisecond {
		t.Fatalf("transferred after %s, before the %s timeout", waited, timeout)
	}
	if !errors.Is(context.Cause(held.Ctx), ErrHandedOff) {
		t.Fatalf("cause %v", context.Cause(held.Ctx))
	}
	l, err := st.GetLease(ctxT(t, 10*time.Second), key)
	if err != nil || l.Owner != "mld-b" || l.CheckpointOwner != "" {
		t.Fatalf("after the timeout transfer: %+v %v", l, err)
	}
}

// TestIntegrationHandoffReassignedByLeader: while multilangd is still
// handing a lease off, the leader gives up waiting and assigns it (plain
// W8, counter +1): the next renew fails and the lease is lost, not renewed
// on (Java isCheckpointOwner / the spurious-failure check).
func TestIntegrationHandoffReassignedByLeader(t *testing.T) {
	st, key := followerTable(t)
	a := follower(t, st, "mld-a", func(c *CoordinatorConfig) { c.GracefulLeaseHandoffTimeout = time.Hour })
	runCoord(t, a)
	assignTo(t, st, key, "mld-a")
	waitFor(t, 30*time.Second, "mld-a discovers its lease", func() bool { return heldKeys(a)[key] != nil })
	held := heldKeys(a)[key]
	handoffTo(t, st, key, "mld-b")
	waitClosed(t, held.Handoff, 10*time.Second, "the hand-off noticed")
	cur, err := st.GetLease(ctxT(t, 10*time.Second), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AssignLease(ctxT(t, 10*time.Second), *cur, "java3-w3"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, held.Ctx.Done(), 10*time.Second, "the lease lost")
	if !errors.Is(context.Cause(held.Ctx), ErrLeaseLost) {
		t.Fatalf("cause %v", context.Cause(held.Ctx))
	}
	if l, _ := st.GetLease(ctxT(t, 10*time.Second), key); l.Owner != "java3-w3" || l.CheckpointOwner != "" {
		t.Fatalf("item %+v", l)
	}
}

// TestIntegrationRenewAdoptsHandoff: the renew's hand-off adoption on every
// backend, with the item sent back by the CCF (fake, DynamoDB Local) or
// re-read when the backend sends none (dynalite); a hand-off to a third
// worker that is not ours is a loss.
func TestIntegrationRenewAdoptsHandoff(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := newTable(t, b)
		ks := createLeases(t, st, 2)
		c := newCoord(t, st, "mld-a", nil)
		c.threeX.Store(true)
		ctx := ctxT(t, 30*time.Second)
		l, err := st.AssignLease(ctx, Lease{Key: ks[0]}, "mld-a")
		if err != nil {
			t.Fatal(err)
		}
		handoffTo(t, st, ks[0], "mld-b")
		nl, ok, err := c.renewStored(ctx, l)
		if !ok || err != nil || nl.Owner != "mld-b" || nl.CheckpointOwner != "mld-a" || nl.Counter != l.Counter+1 {
			t.Fatalf("renew after W9: %+v %v %v", nl, ok, err)
		}
		if cur, _ := st.GetLease(ctx, ks[0]); cur.Counter != nl.Counter || cur.CheckpointOwner != "mld-a" {
			t.Fatalf("item %+v", cur)
		}
		// Renewed on while the hand-off is pending.
		if nl2, ok, err := c.renewStored(ctx, nl); !ok || err != nil || nl2.Counter != nl.Counter+1 {
			t.Fatalf("second renew: %+v %v %v", nl2, ok, err)
		}

		// Another worker's hand-off of a lease we think we hold: lost.
		l2, err := st.AssignLease(ctx, Lease{Key: ks[1]}, "java3-w2")
		if err != nil {
			t.Fatal(err)
		}
		handoffTo(t, st, ks[1], "mld-b")
		mine := l2
		mine.Owner = "mld-a"
		if _, ok, err := c.renewStored(ctx, mine); ok || !errors.Is(err, ErrConditionFailed) {
			t.Fatalf("renew of a hand-off not ours: %v %v", ok, err)
		}
	})
}
