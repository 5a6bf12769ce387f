package assemble

import (
	"context"

	"github.com/multilangd/multilangd/daemon"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/subprocess"
)

// coordinator adapts *lease.Coordinator to daemon.Coordinator.
type coordinator struct{ c *lease.Coordinator }

func (a coordinator) Run(ctx context.Context) error { return a.c.Run(ctx) }

func (a coordinator) Held() []daemon.Held {
	hs := a.c.Held()
	out := make([]daemon.Held, len(hs))
	for i, h := range hs {
		out[i] = daemon.Held{Lease: h.Lease, Token: h.Token, Ctx: h.Ctx, Ref: h}
	}
	return out
}

func (a coordinator) Checkpointer(h daemon.Held) daemon.Checkpointer {
	// The consumer passes the lease as just read: start from its checkpoint,
	// keeping the coordinator's token.
	ref := *h.Ref.(*lease.Held)
	ref.Lease = h.Lease
	return a.c.Checkpointer(&ref)
}

func (a coordinator) Release(ctx context.Context, key string) error { return a.c.Release(ctx, key) }
func (a coordinator) StopTaking()                                   { a.c.StopTaking() }
func (a coordinator) IsLeader(ctx context.Context) bool             { return a.c.IsLeader(ctx) }

// child adapts *subprocess.Child to daemon.Child.
type child struct{ c *subprocess.Child }

func (a child) Initialize(ctx context.Context, shardID string, seq *string, sub *int64) error {
	return a.c.Initialize(ctx, shardID, seq, sub)
}

func (a child) ProcessRecords(ctx context.Context, recs []record.Record, mbl *int64, cp daemon.ChildCheckpointer) error {
	return a.c.ProcessRecords(ctx, recs, mbl, cp)
}

func (a child) ShutdownRequested(ctx context.Context, cp daemon.ChildCheckpointer) error {
	return a.c.ShutdownRequested(ctx, cp)
}

func (a child) LeaseLost(ctx context.Context) error { return a.c.LeaseLost(ctx) }

func (a child) ShardEnded(ctx context.Context, cp daemon.ChildCheckpointer) error {
	return a.c.ShardEnded(ctx, cp)
}

func (a child) Close(ctx context.Context) error { return a.c.Close(ctx) }
func (a child) PID() int                        { return a.c.PID() }
