package assemble

import (
	"testing"

	"github.com/multilangd/multilangd/daemon"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/seqnum"
)

// The checkpointer starts from the lease the consumer passes (just read), not
// from the coordinator's snapshot taken when the lease was acquired.
func TestCheckpointerStartsFromPassedLease(t *testing.T) {
	a := coordinator{lease.NewCoordinator(nil, lease.CoordinatorConfig{WorkerID: "w"}, nil)}
	ref := &lease.Held{Lease: lease.Lease{Key: "s1", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)}, Token: "t1"}
	h := daemon.Held{Lease: ref.Lease, Token: ref.Token, Ref: ref}
	h.Lease.Checkpoint = seqnum.New("101", 2)
	cp := a.Checkpointer(h)
	if got := cp.LastCheckpoint(); got != h.Lease.Checkpoint {
		t.Fatalf("LastCheckpoint = %s, want %s", got, h.Lease.Checkpoint)
	}
	if ref.Lease.Checkpoint != seqnum.Sentinel(seqnum.TrimHorizon) {
		t.Fatal("the coordinator's snapshot was modified")
	}
}
