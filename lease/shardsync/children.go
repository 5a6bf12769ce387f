package shardsync

import (
	"context"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

// CreateChildLeases runs the SHARD_END lease work of Java
// ShutdownTask.createLeasesForChildShardsIfNotExist for the finished shard
// behind parent:
// for every child without a lease it writes (W1) a lease with checkpoint
// TRIM_HORIZON, the child's parents and hash range; then it writes the
// children's ids into the parent's childShardIds (W5).
//
// When children is empty (kinesalite never returns ChildShards; EFO on
// kinesis-local never signals shard end) the children are found in a full
// ListShards by their parent links. If the stream is gone, or neither the
// shard nor a child is listed (trimmed), nothing is created and nil is
// returned: the lease is later removed by the Cleaner. If the shard is still
// listed but no child is, ErrNoChildShards is returned: checkpointing SHARD_END then would
// leave the children without leases for good (no sync creates a lease
// under a leased parent), losing their data.
//
// Merge rule: when there is exactly one child it must list two parents
// (else ErrMissingMergeParent) and both parent leases must be present or
// both absent; otherwise ErrMergeParentPending is returned and the caller
// retries later (Java: with probability 1/30 per attempt it gives the parent
// lease up instead, so that another worker retries). Unlike Java the check is
// skipped when the child lease already exists, since nothing is created then
// (a re-run on a lease already at SHARD_END whose sibling parent was cleaned
// up would otherwise be deferred forever).
func (s *Syncer) CreateChildLeases(ctx context.Context, parent lease.Lease, children []record.ChildShard) error {
	parentShard := parent.ShardIDOf()
	log := s.log.With(zap.String("leaseKey", parent.Key))
	if len(children) == 0 {
		found, listed, err := s.childrenFromListing(ctx, parentShard)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			if listed {
				return fmt.Errorf("%w: shard %s", ErrNoChildShards, parentShard)
			}
			log.Info("shard ended without child shards (stream deleted or shard trimmed); no child lease created")
			return nil
		}
		children = found
	}
	if len(children) == 1 && !s.leaseExists(ctx, children[0].ShardID) {
		// The merge check only guards creation: when the child lease already
		// exists (the other parent got there first, or this is a re-run on a
		// lease already at SHARD_END) there is nothing to defer.
		if err := s.checkMergeParents(ctx, parentShard, children[0]); err != nil {
			return err
		}
	}
	ids := make([]string, 0, len(children))
	for _, c := range children {
		ids = append(ids, c.ShardID)
		if err := s.createChildLease(ctx, c, log); err != nil {
			return err
		}
	}
	if err := s.store.UpdateChildShardIDs(ctx, parent.Key, ids); err != nil {
		return fmt.Errorf("shardsync: update childShardIds of %s: %w", parent.Key, err)
	}
	return nil
}

// checkMergeParents is the merge check of Java
// ShutdownTask.createLeasesForChildShardsIfNotExist before creating the only
// child of a merge: the child lists two parents and both parent leases are
// present, or both are gone.
func (s *Syncer) checkMergeParents(ctx context.Context, parentShard string, child record.ChildShard) error {
	if len(child.ParentShardIDs) != 2 {
		return fmt.Errorf("%w: shard %s, child %s, parents %v", ErrMissingMergeParent, parentShard, child.ShardID, child.ParentShardIDs)
	}
	p0, err := s.store.GetLease(ctx, s.keys.key(child.ParentShardIDs[0]))
	if err != nil {
		return fmt.Errorf("shardsync: get merge parent lease: %w", err)
	}
	p1, err := s.store.GetLease(ctx, s.keys.key(child.ParentShardIDs[1]))
	if err != nil {
		return fmt.Errorf("shardsync: get merge parent lease: %w", err)
	}
	if (p0 == nil) != (p1 == nil) {
		return fmt.Errorf("%w: child %s of %v: parent0 present=%t, parent1 present=%t",
			ErrMergeParentPending, child.ShardID, child.ParentShardIDs, p0 != nil, p1 != nil)
	}
	return nil
}

// createChildLease writes (W1) the lease of child at TRIM_HORIZON unless it
// exists.
func (s *Syncer) createChildLease(ctx context.Context, c record.ChildShard, log *zap.Logger) error {
	key := s.keys.key(c.ShardID)
	existing, err := s.store.GetLease(ctx, key)
	if err != nil {
		return fmt.Errorf("shardsync: get child lease %s: %w", key, err)
	}
	if existing != nil {
		return nil
	}
	l := s.keys.newLease(shard.Info{
		ID:              c.ShardID,
		StartingHashKey: c.StartingHashKey,
		EndingHashKey:   c.EndingHashKey,
	}, seqnum.TrimHorizon)
	l.ParentShardIDs = append([]string(nil), c.ParentShardIDs...)
	created, err := s.store.CreateLeaseIfNotExists(ctx, l)
	if err != nil {
		return fmt.Errorf("shardsync: create child lease %s: %w", key, err)
	}
	if created {
		log.Info("created child shard lease", zap.String("child", key), zap.Strings("parentShardIds", l.ParentShardIDs))
	}
	return nil
}

// leaseExists reports whether the lease of shardID exists; a read error
// counts as "no" so that the caller's own reads surface it.
func (s *Syncer) leaseExists(ctx context.Context, shardID string) bool {
	l, err := s.store.GetLease(ctx, s.keys.key(shardID))
	return err == nil && l != nil
}

// childrenFromListing finds the children of shardID in a full listing by
// their ParentShardId / AdjacentParentShardId; listed reports whether
// shardID itself is still listed. A deleted stream yields none, unlisted.
func (s *Syncer) childrenFromListing(ctx context.Context, shardID string) (children []record.ChildShard, listed bool, err error) {
	shards, err := s.lister.ListShards(ctx, shard.Filter{})
	if IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("shardsync: list shards for children of %s: %w", shardID, err)
	}
	listed = slices.ContainsFunc(shards, func(sh shard.Info) bool { return sh.ID == shardID })
	return record.ChildrenFromListing(shards, shardID), listed, nil
}

// ParentsDone is the parent-completion gate (Java
// BlockOnParentShardTask.call): it is true when every parent lease of l is either
// absent (cleaned up or trimmed) or checkpointed at (SHARD_END, 0).
func (s *Syncer) ParentsDone(ctx context.Context, l lease.Lease) (bool, error) {
	for _, p := range l.ParentShardIDs {
		key := s.keys.key(p)
		pl, err := s.store.GetLease(ctx, key)
		if err != nil {
			return false, fmt.Errorf("shardsync: get parent lease %s: %w", key, err)
		}
		if pl != nil && !pl.IsShardEnd() {
			s.log.Debug("parent shard not finished", zap.String("leaseKey", l.Key), zap.String("parent", key), zap.String("checkpoint", pl.Checkpoint.String()))
			return false, nil
		}
	}
	return true, nil
}
