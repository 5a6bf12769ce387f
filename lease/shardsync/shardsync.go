// Package shardsync owns the shard lifecycle side of the KCL lease table
// (Java HierarchicalShardSyncer, ShutdownTask, BlockOnParentShardTask and
// LeaseCleanupManager): creating leases from a shard listing (empty-
// and non-empty-table synchronisation, the leader-only periodic hash-range
// auditor), creating child leases when a shard ends, the parent-completion
// gate, and deleting finished or garbage leases. It reads and writes leases
// only through the narrow Store interface and lists shards only through
// ShardLister, so every rule is unit-testable with fakes.
package shardsync

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/smithy-go"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/ctxutil"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

// Store is the subset of the lease table (lease.DynamoStore) shard sync uses.
type Store interface {
	// ListLeases scans the table; non-lease items are skipped.
	ListLeases(ctx context.Context) ([]lease.Lease, error)
	// GetLease reads one lease (eventually consistent is enough: see
	// lease.DynamoStore.EventuallyConsistentGets); nil, nil when absent.
	GetLease(ctx context.Context, key string) (*lease.Lease, error)
	// CreateLeaseIfNotExists is W1; false, nil when the lease already exists.
	CreateLeaseIfNotExists(ctx context.Context, l lease.Lease) (bool, error)
	// UpdateChildShardIDs is W5 (childShardIds).
	UpdateChildShardIDs(ctx context.Context, key string, children []string) error
	// UpdateHashRange is W5 (startingHashKey, endingHashKey).
	UpdateHashRange(ctx context.Context, key, start, end string) error
	// DeleteLease is W6 (unconditional).
	DeleteLease(ctx context.Context, key string) error
}

// ShardLister lists a stream's shards (ListShards, paginated). A stream that
// no longer exists must be reported with an error for which IsNotFound is
// true.
type ShardLister interface {
	ListShards(ctx context.Context, f shard.Filter) ([]shard.Info, error)
}

// Errors callers branch on.
var (
	// ErrInconsistentShards: the listing has an open child whose parent is
	// still open (or missing) and IgnoreUnexpectedChildShards is off. The
	// sync created nothing; retry later.
	ErrInconsistentShards = errors.New("shardsync: inconsistent shard listing (open child of an open parent)")
	// ErrIncompleteHashRange: the listing at the initial position did not
	// cover the whole hash-key space after the configured attempts.
	ErrIncompleteHashRange = errors.New("shardsync: shard listing does not cover the hash range")
	// ErrMergeParentPending: a merged child's two parent leases are not both
	// present or both absent; retry later (retryable, Java InvalidStateException).
	ErrMergeParentPending = errors.New("shardsync: merge child deferred until both parent leases agree")
	// ErrMissingMergeParent: a shard's only child does not name two parents
	// (Java InvalidStateException "does not contain other parent information").
	ErrMissingMergeParent = errors.New("shardsync: only child shard does not list two parents")
	// ErrNoChildShards: a shard reported as ended without ChildShards is
	// still listed but none of its children is (an open shard, or a listing
	// not yet current). Nothing was created; retry later.
	ErrNoChildShards = errors.New("shardsync: ended shard is still listed but no child shard is; not ending it without child leases")
	// ErrStreamNotFound may be wrapped by a ShardLister to report a deleted
	// stream; IsNotFound also recognises the service's ResourceNotFoundException.
	ErrStreamNotFound = errors.New("shardsync: stream not found")
)

// IsNotFound reports whether a ShardLister error means the stream (or shard)
// no longer exists: it wraps ErrStreamNotFound or a Kinesis
// ResourceNotFoundException.
func IsNotFound(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrStreamNotFound) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundException"
}

// Config tunes shard sync, the auditor and the cleaner. Zero durations and
// counts take the Java defaults noted on each field.
type Config struct {
	// InitialPosition is seqnum.Latest (default), seqnum.TrimHorizon or
	// seqnum.AtTimestamp: the checkpoint of leases created by a sync.
	InitialPosition string
	// InitialTimestamp is used with AT_TIMESTAMP (ListShards filter).
	InitialTimestamp time.Time
	// IgnoreUnexpectedChildShards skips inconsistent open children instead
	// of aborting the sync.
	IgnoreUnexpectedChildShards bool
	// StreamIdentifier is "" for a single-stream application; for
	// multi-stream it is "account:stream:epoch" and lease keys are
	// "<StreamIdentifier>:<shardId>".
	StreamIdentifier string

	// ShardSyncInterval is the minimum time between two syncs started by
	// the auditor (shardSyncIntervalMillis).
	ShardSyncInterval time.Duration
	// AuditorInitialDelay (default 60 s) and AuditorPeriod (default 120 s)
	// schedule RunPeriodic (leasesRecoveryAuditorExecutionFrequencyMillis).
	AuditorInitialDelay, AuditorPeriod time.Duration
	// AuditorConfidenceThreshold is how many consecutive audits must see
	// the same hash-range hole before a sync (default 3).
	AuditorConfidenceThreshold int

	// InitialSyncMinWait (default 1 s), InitialSyncMaxWait (default 30 s)
	// and InitialSyncCheckInterval (default 3 s) shape InitialSync's random
	// wait for another worker to fill an empty table.
	InitialSyncMinWait, InitialSyncMaxWait, InitialSyncCheckInterval time.Duration

	// ListAttempts (default 3) and ListRetryDelay (default 1 s) bound the
	// empty-table listing retries until the hash range is complete.
	ListAttempts   int
	ListRetryDelay time.Duration

	// CleanupLeasesUponShardCompletion deletes finished leases (Java: always
	// true; false keeps them, a documented divergence).
	CleanupLeasesUponShardCompletion bool
	// CleanupInterval (leaseCleanupIntervalMillis) is how often the cleaner
	// looks at its queue; completed leases are examined when
	// CompletedCleanupInterval (completedLeaseCleanupIntervalMillis) passed
	// since the last completed-lease deletion, and garbage when
	// GarbageCleanupInterval (garbageLeaseCleanupIntervalMillis) passed since
	// the last garbage deletion.
	CleanupInterval, CompletedCleanupInterval, GarbageCleanupInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.InitialPosition == "" {
		c.InitialPosition = seqnum.Latest
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	java := properties.Defaults()
	def(&c.ShardSyncInterval, java.ShardSyncInterval)
	def(&c.AuditorInitialDelay, 60*time.Second)
	def(&c.AuditorPeriod, 120*time.Second)
	def(&c.ListRetryDelay, time.Second)
	def(&c.InitialSyncMinWait, time.Second)
	def(&c.InitialSyncMaxWait, 30*time.Second)
	def(&c.InitialSyncCheckInterval, 3*time.Second)
	if c.InitialSyncMaxWait < c.InitialSyncMinWait {
		c.InitialSyncMaxWait = c.InitialSyncMinWait
	}
	def(&c.CleanupInterval, java.LeaseCleanupInterval)
	def(&c.CompletedCleanupInterval, java.CompletedLeaseCleanupInterval)
	def(&c.GarbageCleanupInterval, java.GarbageLeaseCleanupInterval)
	if c.AuditorConfidenceThreshold <= 0 {
		c.AuditorConfidenceThreshold = 3
	}
	if c.ListAttempts <= 0 {
		c.ListAttempts = 3
	}
	return c
}

// validate rejects an initial position that is not one of the three sentinels.
func (c Config) validate() error {
	switch c.InitialPosition {
	case seqnum.Latest, seqnum.TrimHorizon, seqnum.AtTimestamp:
		return nil
	}
	return fmt.Errorf("shardsync: invalid initial position %q", c.InitialPosition)
}

// keys derives lease keys and lease identity for one stream.
type keys struct{ stream string }

func (k keys) key(shardID string) string {
	if k.stream == "" {
		return shardID
	}
	return k.stream + ":" + shardID
}

// owns reports whether l belongs to this stream.
func (k keys) owns(l *lease.Lease) bool {
	if k.stream == "" {
		return l.StreamName == ""
	}
	return l.StreamName == k.stream
}

// newLease builds the lease W1 writes for sh (Java HierarchicalShardSyncer.newKCLLease): counter 0, no
// owner, parents as listed (even if they no longer exist), hash range.
func (k keys) newLease(sh shard.Info, checkpoint string) lease.Lease {
	l := lease.Lease{
		Key:             k.key(sh.ID),
		Checkpoint:      seqnum.Sentinel(checkpoint),
		ParentShardIDs:  sh.Parents(),
		StartingHashKey: sh.StartingHashKey,
		EndingHashKey:   sh.EndingHashKey,
		EntityType:      lease.EntityTypeLease,
	}
	if k.stream != "" {
		l.StreamName, l.ShardID = k.stream, sh.ID
	}
	return l
}

// Syncer creates leases from shard listings. Its methods are safe for
// concurrent use; syncs are serialised.
type Syncer struct {
	store  Store
	lister ShardLister
	cfg    Config
	keys   keys
	log    *zap.Logger
	cfgErr error

	mu sync.Mutex // serialises Sync
}

// New returns a Syncer. An invalid Config.InitialPosition makes every Sync
// fail (the properties parser validates it first).
func New(store Store, lister ShardLister, cfg Config, log *zap.Logger) *Syncer {
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	return &Syncer{store: store, lister: lister, cfg: cfg, keys: keys{cfg.StreamIdentifier}, log: log.Named("shardsync"), cfgErr: cfg.validate()}
}

// streamLeases lists the leases of this Syncer's stream.
func (s *Syncer) streamLeases(ctx context.Context) ([]lease.Lease, error) {
	all, err := s.store.ListLeases(ctx)
	if err != nil {
		return nil, fmt.Errorf("shardsync: list leases: %w", err)
	}
	out := all[:0:0]
	for i := range all {
		if s.keys.owns(&all[i]) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// Sync runs one shard sync (Java
// HierarchicalShardSyncer.checkAndCreateLeaseForNewShards): when the stream has no leases it
// creates one for every shard of the listing at the initial position;
// otherwise it runs the hierarchical non-empty-table synchroniser. Leases
// are created in ascending order of starting sequence number.
func (s *Syncer) Sync(ctx context.Context) error {
	_, err := s.sync(ctx)
	return err
}

// InitialSync is the worker start-up step of Java Scheduler.initialize
// (shouldInitiateLeaseSync): when the stream has no leases it waits a random
// time in [InitialSyncMinWait, InitialSyncMaxWait), re-checking every
// InitialSyncCheckInterval, so that workers started together do not all
// list the stream; if the table is still empty then, it runs Sync. A table
// that has leases is left to the periodic auditor. synced reports whether
// a sync ran.
func (s *Syncer) InitialSync(ctx context.Context) (synced bool, err error) {
	wait := s.cfg.InitialSyncMinWait
	if span := s.cfg.InitialSyncMaxWait - s.cfg.InitialSyncMinWait; span > 0 {
		wait += rand.N(span)
	}
	deadline := time.Now().Add(wait)
	for {
		ls, err := s.streamLeases(ctx)
		if err != nil {
			return false, err
		}
		if len(ls) > 0 {
			return false, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		s.log.Info("lease table is still empty; checking again", zap.Duration("in", min(left, s.cfg.InitialSyncCheckInterval)))
		if err := ctxutil.Sleep(ctx, min(left, s.cfg.InitialSyncCheckInterval)); err != nil {
			return false, err
		}
	}
	return true, s.Sync(ctx)
}

// sync is Sync returning the keys it created.
func (s *Syncer) sync(ctx context.Context) ([]string, error) {
	if s.cfgErr != nil {
		return nil, s.cfgErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	current, err := s.streamLeases(ctx)
	if err != nil {
		return nil, err
	}
	var shards []shard.Info
	empty := len(current) == 0
	if empty {
		shards, err = s.listAtInitialPosition(ctx)
	} else {
		shards, err = s.lister.ListShards(ctx, shard.Filter{})
		if err != nil {
			err = fmt.Errorf("shardsync: list shards: %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	inconsistent := inconsistentShards(shards)
	if len(inconsistent) > 0 && !s.cfg.IgnoreUnexpectedChildShards {
		return nil, fmt.Errorf("%w: %v", ErrInconsistentShards, sortedKeys(inconsistent))
	}
	var toCreate []lease.Lease
	if empty {
		toCreate = emptyTableLeases(s.keys, shards, s.cfg.InitialPosition)
	} else {
		toCreate = nonEmptyTableLeases(s.keys, shards, current, s.cfg.InitialPosition, inconsistent)
	}
	var created []string
	for _, l := range toCreate {
		ok, err := s.store.CreateLeaseIfNotExists(ctx, l)
		if err != nil {
			return created, fmt.Errorf("shardsync: create lease %s: %w", l.Key, err)
		}
		if ok {
			created = append(created, l.Key)
			s.log.Info("created lease", zap.String("leaseKey", l.Key), zap.String("checkpoint", l.Checkpoint.String()), zap.Strings("parentShardIds", l.ParentShardIDs))
			continue
		}
		if empty {
			// Another worker created this lease since our scan: it is
			// running the same empty-table sync, in the same order. As Java
			// Scheduler.shouldInitiateLeaseSync leaves a table being filled
			// to the worker filling it, stop rather than send one more
			// failing conditional put per shard; leases it never creates
			// (it died half-way) are the periodic auditor's.
			s.log.Info("another worker is creating the leases of the empty table; leaving the rest to it", zap.String("leaseKey", l.Key))
			break
		}
	}
	s.log.Info("shard sync done", zap.Bool("emptyTable", empty), zap.Int("shards", len(shards)), zap.Int("created", len(created)))
	return created, nil
}

// listAtInitialPosition lists with the ShardFilter of the initial position,
// retrying until the hash ranges are complete (Java: 3 attempts, 1 s apart).
func (s *Syncer) listAtInitialPosition(ctx context.Context) ([]shard.Info, error) {
	f := shard.Filter{}
	switch s.cfg.InitialPosition {
	case seqnum.Latest:
		f.Type = "AT_LATEST"
	case seqnum.TrimHorizon:
		f.Type = "AT_TRIM_HORIZON"
	case seqnum.AtTimestamp:
		f.Type, f.TimestampMillis = "AT_TIMESTAMP", s.cfg.InitialTimestamp.UnixMilli()
	}
	for attempt := 1; ; attempt++ {
		shards, err := s.lister.ListShards(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("shardsync: list shards (%s): %w", f.Type, err)
		}
		shards = reduceToInitialPosition(shards, s.cfg.InitialPosition)
		if hashRangeComplete(shards) {
			return shards, nil
		}
		if attempt >= s.cfg.ListAttempts {
			return nil, fmt.Errorf("%w after %d attempts (%d shards at %s)", ErrIncompleteHashRange, attempt, len(shards), f.Type)
		}
		s.log.Warn("shard listing at the initial position has an incomplete hash range; retrying", zap.Int("attempt", attempt))
		if err := ctxutil.Sleep(ctx, s.cfg.ListRetryDelay); err != nil {
			return nil, err
		}
	}
}
