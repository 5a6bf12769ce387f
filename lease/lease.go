// Package lease owns the KCL-compatible DynamoDB lease table: the item codec,
// every conditional write the Java KCL issues (create, renew, take/steal,
// checkpoint, meta-info update, delete) plus release, the renewer, the taker
// (Coordinator), the checkpointer, the KCL 2.x deterministic leader and the
// detection of a Java 3.x fleet. Shard sync, the parent gate and lease
// cleanup live in lease/shardsync. It knows nothing of child processes.
package lease

import (
	"github.com/multilangd/multilangd/seqnum"
)

// Lease is one lease item as read from or written to the lease table
// (Java Lease, as DynamoDBLeaseSerializer writes it). Attributes multilangd does not model are preserved by
// using partial updates only.
type Lease struct {
	Key   string // leaseKey: shard id, or account:stream:epoch:shardId (multi-stream)
	Owner string // leaseOwner; "" = unowned
	// Counter is leaseCounter, the optimistic-lock / heart-beat counter.
	Counter                      int64
	OwnerSwitchesSinceCheckpoint int64
	Checkpoint                   seqnum.ESN // checkpoint + checkpointSubSequenceNumber
	PendingCheckpoint            *seqnum.ESN
	PendingCheckpointState       []byte
	ParentShardIDs               []string // parentShardId (SS)
	ChildShardIDs                []string // childShardIds (SS)
	StartingHashKey              string   // decimal, "" when unknown
	EndingHashKey                string   // decimal, "" when unknown
	ThroughputKBps               *float64 // 3.x
	CheckpointOwner              string   // 3.x hand-off; "" = none
	EntityType                   string   // "LEASE" or "" (pre-3.5)
	StreamName                   string   // multi-stream only: account:stream:epoch
	ShardID                      string   // multi-stream only
}

// ShardIDOf returns the shard id the lease is for (the lease key for
// single-stream leases).
func (l *Lease) ShardIDOf() string {
	if l.ShardID != "" {
		return l.ShardID
	}
	return l.Key
}

// StreamOf returns the serialised stream identifier (account:stream:epoch)
// of a multi-stream lease: its streamName, else the stream part of its key;
// "" for a single-stream lease.
func (l *Lease) StreamOf() string {
	if l.StreamName != "" {
		return l.StreamName
	}
	id, _, _ := ParseMultiStreamKey(l.Key)
	return id
}

// IsShardEnd reports whether the lease's checkpoint is (SHARD_END, 0).
func (l *Lease) IsShardEnd() bool {
	return l.Checkpoint.Sequence == seqnum.ShardEnd && l.Checkpoint.SubSequence == 0
}
