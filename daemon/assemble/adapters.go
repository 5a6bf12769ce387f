package assemble

import (
	"github.com/multilangd/multilangd/daemon"
	"github.com/multilangd/multilangd/lease"
)

// coordinator is *lease.Coordinator as a daemon.Coordinator: only
// Checkpointer differs, returning the interface instead of the concrete type.
type coordinator struct{ *lease.Coordinator }

func (a coordinator) Checkpointer(h *lease.Held) daemon.Checkpointer {
	return a.Coordinator.Checkpointer(h)
}
