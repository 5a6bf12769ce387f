// Package daemon owns the scheduler and the per-shard consumer state machine
// that tie the lease coordinator, shard sync, record retrieval and the child
// record processor together (Java ShardConsumer and ConsumerStates;
// docs/protocol.md §5), plus the graceful stop and the per-shard failure
// isolation (docs/architecture.md, Decisions 3 and 5). It talks to its
// neighbours only through the small consumer-side interfaces declared in
// this file; package daemon/assemble wires the real implementations in.
package daemon

import (
	"context"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/seqnum"
)

// Coordinator is the lease coordinator view the scheduler needs.
type Coordinator interface {
	// Run renews and takes leases until ctx is done.
	Run(ctx context.Context) error
	// Held returns a snapshot of the leases currently held. A new Token
	// for the same key means the lease was lost and re-taken; Ctx is
	// cancelled when the lease is lost or released.
	Held() []*lease.Held
	// Checkpointer returns a fresh checkpointer for the held lease whose last
	// and largest permitted checkpoint are h.Lease.Checkpoint (the consumer
	// passes the lease as just read, which may be newer than the snapshot).
	Checkpointer(h *lease.Held) Checkpointer
	// Release gives the lease up in DynamoDB and drops it locally.
	Release(ctx context.Context, key string) error
	// CompleteHandoff transfers a lease whose graceful hand-off started
	// (Held.Handoff closed) to its new owner and drops it locally.
	CompleteHandoff(ctx context.Context, key string) error
	// StopTaking stops acquiring new leases (graceful stop).
	StopTaking()
	// IsLeader reports whether this worker runs the periodic shard sync.
	IsLeader(ctx context.Context) bool
}

// Checkpointer is the per-consumer checkpointer (implemented by
// *lease.Checkpointer). It also satisfies ChildCheckpointer.
type Checkpointer interface {
	ChildCheckpointer
	// SetLargestPermitted sets the largest ESN the child may checkpoint.
	SetLargestPermitted(seqnum.ESN)
	// SetShardEnd makes SHARD_END the largest permitted value; a checkpoint
	// of exactly the last delivered ESN is then stored as SHARD_END.
	SetShardEnd()
	// LastCheckpoint is the last checkpoint read or written.
	LastCheckpoint() seqnum.ESN
}

// ChildCheckpointer is what the child process may call while an action is
// outstanding. It is an alias of the interface literal, as is
// subprocess.Checkpointer, so the two are one type and *subprocess.Child
// implements Child without an adapter.
type ChildCheckpointer = interface {
	Checkpoint(ctx context.Context, sequenceNumber *string, subSequenceNumber *int64) error
}

// LeaseReader reads one lease with a consistent read; (nil, nil) when absent.
type LeaseReader interface {
	GetLease(ctx context.Context, key string) (*lease.Lease, error)
}

// ShardSyncer creates leases for shards (Java HierarchicalShardSyncer) and
// gates children on their parents (Java BlockOnParentShardTask).
type ShardSyncer interface {
	// Sync runs one full shard sync.
	Sync(ctx context.Context) error
	// RunPeriodic syncs every shardSyncInterval while isLeader says so,
	// until ctx is done.
	RunPeriodic(ctx context.Context, isLeader func(context.Context) bool) error
	// CreateChildLeases creates the leases of an ended shard's children.
	CreateChildLeases(ctx context.Context, parent lease.Lease, children []record.ChildShard) error
	// ParentsDone reports whether every parent of l reached SHARD_END.
	ParentsDone(ctx context.Context, l lease.Lease) (bool, error)
}

// Cleaner deletes the leases of finished shards in the background.
type Cleaner interface {
	Enqueue(key string)
	Run(ctx context.Context) error
}

// RecordSource yields the batches of one shard (implemented by the polling
// retrieval). Next blocks until a batch is ready or ctx is done.
type RecordSource interface {
	Next(ctx context.Context) (record.Batch, error)
	// Close stops the source and waits for its goroutines.
	Close() error
}

// SourceFactory starts a record source for the lease's shard at start (the
// lease checkpoint: a sequence number or a sentinel). The source lives until
// Close; ctx bounds its background work.
type SourceFactory func(ctx context.Context, l lease.Lease, start seqnum.ESN) (RecordSource, error)

// Child is one record-processor child process (implemented by
// *subprocess.Child).
type Child interface {
	Initialize(ctx context.Context, shardID string, seq *string, sub *int64) error
	ProcessRecords(ctx context.Context, recs []record.Record, millisBehindLatest *int64, cp ChildCheckpointer) error
	ShutdownRequested(ctx context.Context, cp ChildCheckpointer) error
	LeaseLost(ctx context.Context) error
	ShardEnded(ctx context.Context, cp ChildCheckpointer) error
	// Close ends the child (stdin EOF, grace, group kill, reap); idempotent.
	Close(ctx context.Context) error
	PID() int
}

// ChildFactory spawns a child for the shard of the lease leaseKey (both tag
// the child's log lines).
type ChildFactory func(ctx context.Context, shardID, leaseKey string) (Child, error)
