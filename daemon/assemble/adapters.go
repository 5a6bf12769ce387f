package assemble

import (
	"context"

	"github.com/multilangd/multilangd/daemon"
	"github.com/multilangd/multilangd/lease"
)

// coordinator is *lease.Coordinator as a daemon.Coordinator: Checkpointer
// returns the interface instead of the concrete type, and IsLeader publishes
// its answer in KCL 2.x mode (o; nil publishes nothing).
type coordinator struct {
	*lease.Coordinator
	o *ops
}

// IsLeader is the shard-sync leader decision with Java's datums: the
// decider in use, as Java MigrationAdaptiveLeaderDecider.isLeader publishes
// it, and in KCL 2.x mode the answer, as
// DeterministicShuffleShardSyncLeaderDecider.isLeader does (in KCL 3.x mode
// the lock decider publishes it, publishingDecider).
func (a coordinator) IsLeader(ctx context.Context) bool {
	threeX := a.Coordinator.ThreeXMode()
	v := a.Coordinator.IsLeader(ctx)
	if a.o == nil || ctx.Err() != nil {
		return v
	}
	a.o.leaderDeciderInUse(threeX)
	if !threeX {
		a.o.isLeader(v)
	}
	return v
}

func (a coordinator) Checkpointer(h *lease.Held) daemon.Checkpointer {
	return a.Coordinator.Checkpointer(h)
}
