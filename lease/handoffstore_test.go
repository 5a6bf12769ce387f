package lease

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/seqnum"
)

// TestIntegrationAssignAndHandoffWrites: W9 and W8 write exactly Java
// DynamoDBLeaseRefresher.initiateGracefulLeaseHandoff / assignLease's
// conditions and updates.
func TestIntegrationAssignAndHandoffWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := newTable(t, b)
		ctx := ctxT(t, 30*time.Second)
		const key = "shardId-000000000000"
		putRaw(t, st, map[string]types.AttributeValue{"leaseKey": s(key), "leaseOwner": s("A"), "leaseCounter": n("5"),
			"ownerSwitchesSinceCheckpoint": n("2"), "checkpoint": s("49590338271490256608559692538361571095921575989136588898"),
			"checkpointSubSequenceNumber": n("0"), "entityType": s("LEASE")})
		at := Lease{Key: key, Owner: "A", Counter: 5}

		// W9: leaseOwner = next, checkpointOwner = cur, counter untouched.
		got, err := st.InitiateHandoff(ctx, at, "B")
		if err != nil {
			t.Fatal(err)
		}
		if got.Owner != "B" || got.CheckpointOwner != "A" || got.Counter != 5 || got.OwnerSwitchesSinceCheckpoint != 2 {
			t.Fatalf("after W9: %+v", got)
		}
		// W9 again: a hand-off is already pending.
		if _, err := st.InitiateHandoff(ctx, at, "C"); !errors.Is(err, ErrConditionFailed) {
			t.Fatalf("second W9: %v, want CCF", err)
		}
		// W8 with a stale view (no checkpointOwner) fails.
		if _, err := st.AssignLease(ctx, Lease{Key: key, Owner: "B"}, "B"); !errors.Is(err, ErrConditionFailed) {
			t.Fatalf("W8 ignoring checkpointOwner: %v, want CCF", err)
		}
		// W8 completing the hand-off: owner stays B, checkpointOwner gone,
		// counter +1, no owner switch (B was already leaseOwner).
		got, err = st.AssignLease(ctx, Lease{Key: key, Owner: "B", CheckpointOwner: "A", Counter: 5}, "B")
		if err != nil {
			t.Fatal(err)
		}
		item := getRaw(t, st, key)
		if got.Owner != "B" || got.CheckpointOwner != "" || got.Counter != 6 || got.OwnerSwitchesSinceCheckpoint != 2 {
			t.Fatalf("after W8: %+v", got)
		}
		if _, ok := item[AttrCheckpointOwner]; ok || itemString(item)[AttrLeaseCounter] != "N:6" {
			t.Fatalf("item after W8: %v", itemString(item))
		}
		if cp, _ := getS(item, AttrCheckpoint); cp != "49590338271490256608559692538361571095921575989136588898" {
			t.Fatalf("W8 touched the checkpoint: %v", itemString(item))
		}
		// W8 as a leader's plain assignment to another worker: owner switch.
		got, err = st.AssignLease(ctx, Lease{Key: key, Owner: "B"}, "C")
		if err != nil || got.Owner != "C" || got.Counter != 7 || got.OwnerSwitchesSinceCheckpoint != 3 {
			t.Fatalf("W8 B→C: %+v %v", got, err)
		}
		// W8 on an unowned lease needs attribute_not_exists(leaseOwner).
		const k2 = "shardId-000000000001"
		if ok, err := st.CreateLeaseIfNotExists(ctx, Lease{Key: k2, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if _, err := st.AssignLease(ctx, Lease{Key: k2, Owner: "X"}, "C"); !errors.Is(err, ErrConditionFailed) {
			t.Fatalf("W8 on unowned lease with an owner expectation: %v", err)
		}
		got, err = st.AssignLease(ctx, Lease{Key: k2}, "C")
		if err != nil || got.Owner != "C" || got.Counter != 1 || got.OwnerSwitchesSinceCheckpoint != 0 {
			t.Fatalf("W8 unowned→C: %+v %v", got, err)
		}
		// W8 and W9 never create a deleted lease (leaseKey = :key).
		if err := st.DeleteLease(ctx, k2); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AssignLease(ctx, Lease{Key: k2}, "C"); !errors.Is(err, ErrConditionFailed) {
			t.Fatalf("W8 on a deleted lease: %v", err)
		}
		if _, err := st.InitiateHandoff(ctx, Lease{Key: k2, Owner: "C"}, "D"); !errors.Is(err, ErrConditionFailed) {
			t.Fatalf("W9 on a deleted lease: %v", err)
		}
		if len(getRaw(t, st, k2)) != 0 {
			t.Fatal("a write re-created the deleted lease")
		}
	})
}

// TestIntegrationRenewCCFReturnsItem: the 3.x renew asks for the item on a
// CCF; where the backend sends it, ConditionItem decodes it.
func TestIntegrationRenewCCFReturnsItem(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := newTable(t, b)
		ctx := ctxT(t, 30*time.Second)
		key := createLeases(t, st, 1)[0]
		l, err := st.AssignLease(ctx, Lease{Key: key}, "A")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.InitiateHandoff(ctx, l, "B"); err != nil {
			t.Fatal(err)
		}
		err = st.RenewLease(ctx, l, true)
		if !errors.Is(err, ErrConditionFailed) {
			t.Fatalf("3.x renew with a pending hand-off: %v", err)
		}
		got := ConditionItem(err)
		t.Logf("%s returns the item with a CCF: %v", b.name, got != nil)
		if got != nil && (got.Owner != "B" || got.CheckpointOwner != "A") {
			t.Fatalf("CCF item %+v", got)
		}
		// Knowing the hand-off, the counter-only renew succeeds.
		l.Owner, l.CheckpointOwner = "B", "A"
		if err := st.RenewLease(ctx, l, true); err != nil {
			t.Fatal(err)
		}
		if cur, _ := st.GetLease(ctx, key); cur.Counter != l.Counter+1 || cur.Checkpoint != seqnum.Sentinel(seqnum.TrimHorizon) {
			t.Fatalf("after renew: %+v", cur)
		}
	})
}
