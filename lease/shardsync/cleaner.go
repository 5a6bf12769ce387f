package shardsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

// Cleaner deletes leases of shards that ended on this worker once they are
// no longer needed (Java LeaseCleanupManager.cleanupLeaseForCompletedShard). Only queued keys
// are examined. A completed lease (checkpoint SHARD_END) is deleted when
// every child lease exists with a checkpoint other than TRIM_HORIZON /
// AT_TIMESTAMP and no parent lease of it remains (honouring
// CleanupLeasesUponShardCompletion); a garbage lease (stream deleted or shard
// gone from a full listing) is deleted regardless. Methods are safe for
// concurrent use.
type Cleaner struct {
	store  Store
	lister ShardLister
	cfg    Config
	keys   keys
	log    *zap.Logger

	mu     sync.Mutex
	queue  []string
	queued map[string]bool
	// times of the last deletion of each kind (Java stopwatches, started at
	// construction and reset only when a lease of that kind was deleted).
	lastCompleted, lastGarbage time.Time
}

// NewCleaner returns a Cleaner; call Run to start its loop.
func NewCleaner(store Store, lister ShardLister, cfg Config, log *zap.Logger) *Cleaner {
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	now := time.Now()
	return &Cleaner{store: store, lister: lister, cfg: cfg, keys: keys{cfg.StreamIdentifier},
		log: log.Named("leasecleanup"), queued: map[string]bool{}, lastCompleted: now, lastGarbage: now}
}

// Enqueue queues the lease key of a shard that reached SHARD_END (or ended
// because its stream is gone) on this worker. Queuing twice is a no-op.
func (c *Cleaner) Enqueue(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.queued[key] {
		return
	}
	c.queued[key] = true
	c.queue = append(c.queue, key)
}

// Enqueued reports whether key is waiting for deletion.
func (c *Cleaner) Enqueued(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued[key]
}

// Pending returns the queued keys in queue order.
func (c *Cleaner) Pending() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.queue...)
}

// Run examines the queue every CleanupInterval until ctx is done, looking at
// completed leases when CompletedCleanupInterval and at garbage when
// GarbageCleanupInterval passed since the last deletion of that kind.
// Errors are logged; Run returns nil when ctx is done.
func (c *Cleaner) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		c.mu.Lock()
		completed := time.Since(c.lastCompleted) >= c.cfg.CompletedCleanupInterval
		garbage := time.Since(c.lastGarbage) >= c.cfg.GarbageCleanupInterval
		c.mu.Unlock()
		if !completed && !garbage {
			continue
		}
		if _, err := c.cleanup(ctx, completed, garbage); err != nil && ctx.Err() == nil {
			c.log.Warn("lease cleanup pass had errors", zap.Error(err))
		}
	}
}

// CleanupNow examines every queued lease at once for both completion and
// garbage and returns the keys it deleted (shutdown paths, tests, tools).
func (c *Cleaner) CleanupNow(ctx context.Context) ([]string, error) {
	return c.cleanup(ctx, true, true)
}

type outcome int

const (
	kept             outcome = iota
	gone                     // already absent
	deletedCompleted         // finished and no longer needed
	deletedGarbage           // shard or stream no longer exists
)

// listing caches one full ListShards per cleanup pass.
type listing struct {
	done   bool
	shards []shard.Info
	ids    map[string]bool
	err    error
}

func (ls *listing) get(ctx context.Context, l ShardLister) ([]shard.Info, map[string]bool, error) {
	if !ls.done {
		ls.done = true
		ls.shards, ls.err = l.ListShards(ctx, shard.Filter{})
		ls.ids = map[string]bool{}
		for i := range ls.shards {
			ls.ids[ls.shards[i].ID] = true
		}
	}
	return ls.shards, ls.ids, ls.err
}

// cleanup examines each queued lease once; kept leases are re-queued.
func (c *Cleaner) cleanup(ctx context.Context, completed, garbage bool) ([]string, error) {
	c.mu.Lock()
	batch := c.queue
	c.queue = nil
	c.mu.Unlock()
	var (
		deleted    []string
		errs       []error
		ls         listing
		anyDone    bool
		anyGarbage bool
	)
	for i, key := range batch {
		if ctx.Err() != nil {
			c.requeue(batch[i:])
			return deleted, ctx.Err()
		}
		out, err := c.cleanupLease(ctx, key, completed, garbage, &ls)
		if err != nil {
			errs = append(errs, err)
		}
		switch out {
		case kept:
			c.requeue([]string{key})
			continue
		case deletedCompleted:
			anyDone = true
			deleted = append(deleted, key)
		case deletedGarbage:
			anyGarbage = true
			deleted = append(deleted, key)
		}
		c.mu.Lock()
		delete(c.queued, key)
		c.mu.Unlock()
	}
	c.mu.Lock()
	if anyDone {
		c.lastCompleted = time.Now()
	}
	if anyGarbage {
		c.lastGarbage = time.Now()
	}
	c.mu.Unlock()
	if len(errs) > 0 {
		return deleted, fmt.Errorf("shardsync: cleanup: %w", errors.Join(errs...))
	}
	return deleted, nil
}

func (c *Cleaner) requeue(keys []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, keys...)
}

// cleanupLease examines one queued lease.
func (c *Cleaner) cleanupLease(ctx context.Context, key string, completed, garbage bool, ls *listing) (outcome, error) {
	l, err := c.store.GetLease(ctx, key)
	if err != nil {
		return kept, fmt.Errorf("get lease %s: %w", key, err)
	}
	if l == nil {
		return gone, nil
	}
	log := c.log.With(zap.String("leaseKey", key))
	shardID := l.ShardIDOf()
	if completed && c.cfg.CleanupLeasesUponShardCompletion {
		children := l.ChildShardIDs
		if len(children) == 0 {
			shards, ids, err := ls.get(ctx, c.lister)
			switch {
			case IsNotFound(err) || (err == nil && len(shards) > 0 && !ids[shardID]):
				return c.deleteGarbage(ctx, log, key)
			case err != nil:
				return kept, fmt.Errorf("list shards for children of %s: %w", key, err)
			}
			for _, ch := range record.ChildrenFromListing(shards, shardID) {
				children = append(children, ch.ShardID)
			}
			if len(children) > 0 {
				if err := c.store.UpdateChildShardIDs(ctx, key, children); err != nil {
					return kept, fmt.Errorf("update childShardIds of %s: %w", key, err)
				}
			}
		}
		// A completed lease without known children is kept (Java would
		// delete it once its parents are gone; a closed shard always has
		// children, so an empty list means the listing is not yet current).
		if len(children) > 0 && l.IsShardEnd() {
			ready, why, err := c.completedReady(ctx, l, children)
			if err != nil {
				return kept, err
			}
			if ready {
				if err := c.store.DeleteLease(ctx, key); err != nil {
					return kept, fmt.Errorf("delete completed lease %s: %w", key, err)
				}
				log.Info("deleted lease of completed shard", zap.Strings("childShardIds", children))
				return deletedCompleted, nil
			}
			log.Debug("completed lease kept", zap.String("reason", why))
		}
	}
	if garbage {
		shards, ids, err := ls.get(ctx, c.lister)
		if IsNotFound(err) || (err == nil && len(shards) > 0 && !ids[shardID]) {
			return c.deleteGarbage(ctx, log, key)
		}
		if err != nil {
			return kept, fmt.Errorf("list shards for garbage check of %s: %w", key, err)
		}
	}
	return kept, nil
}

func (c *Cleaner) deleteGarbage(ctx context.Context, log *zap.Logger, key string) (outcome, error) {
	if err := c.store.DeleteLease(ctx, key); err != nil {
		return kept, fmt.Errorf("delete garbage lease %s: %w", key, err)
	}
	log.Info("deleted lease of a shard that no longer exists")
	return deletedGarbage, nil
}

// completedReady is Java cleanupLeaseForCompletedShard's test: no parent
// lease remains and every child lease exists and has started.
func (c *Cleaner) completedReady(ctx context.Context, l *lease.Lease, children []string) (bool, string, error) {
	for _, p := range l.ParentShardIDs {
		pl, err := c.store.GetLease(ctx, c.keys.key(p))
		if err != nil {
			return false, "", fmt.Errorf("get parent lease of %s: %w", l.Key, err)
		}
		if pl != nil {
			return false, "parent lease " + pl.Key + " still exists", nil
		}
	}
	for _, ch := range children {
		cl, err := c.store.GetLease(ctx, c.keys.key(ch))
		if err != nil {
			return false, "", fmt.Errorf("get child lease of %s: %w", l.Key, err)
		}
		if cl == nil {
			return false, "child lease " + c.keys.key(ch) + " not found", nil
		}
		switch cl.Checkpoint.Sequence {
		case seqnum.TrimHorizon, seqnum.AtTimestamp:
			return false, "child lease " + cl.Key + " has not started", nil
		}
	}
	return true, "", nil
}
