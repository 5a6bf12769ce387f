package shardsync

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/ctxutil"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/shard"
)

// RunPeriodic is the leader-only shard-sync auditor (Java
// PeriodicShardSyncManager): after AuditorInitialDelay and then every
// AuditorPeriod, if isLeader says so, it syncs when the stream has no leases
// or when the hash ranges of its unfinished leases show the same hole on
// AuditorConfidenceThreshold consecutive audits; leases without a hash range
// are back-filled from ListShards first. Syncs started here are at least
// ShardSyncInterval apart. Errors are logged, never returned; RunPeriodic
// returns nil when ctx is done.
func (s *Syncer) RunPeriodic(ctx context.Context, isLeader func(context.Context) bool) error {
	a := &auditor{s: s}
	wait := s.cfg.AuditorInitialDelay
	for {
		if err := ctxutil.Sleep(ctx, wait); err != nil {
			return nil
		}
		wait = s.cfg.AuditorPeriod
		if !isLeader(ctx) {
			s.log.Debug("not the shard-sync leader; skipping audit")
			continue
		}
		if _, err := a.run(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("shard-sync audit failed", zap.Error(err))
		}
	}
}

// auditor holds the state of consecutive audits.
type auditor struct {
	s        *Syncer
	hole     *hole // last hole seen
	holeRuns int   // consecutive audits that saw it
	lastSync time.Time
}

// hole identifies a gap by the ranges on either side of it (Java HashRangeHole).
type hole struct{ leftStart, leftEnd, rightStart, rightEnd string }

type hashRange struct {
	start, end *big.Int
}

// run performs one audit and reports whether it ran a sync.
func (a *auditor) run(ctx context.Context) (bool, error) {
	s := a.s
	leases, err := s.streamLeases(ctx)
	if err != nil {
		return false, err
	}
	need, reason := false, ""
	if len(leases) == 0 {
		need, reason = true, "stream has no leases"
	} else {
		h, err := a.findHole(ctx, leases)
		if err != nil {
			return false, err
		}
		if h == nil {
			a.hole, a.holeRuns = nil, 0
			return false, nil
		}
		if a.hole != nil && *a.hole == *h {
			a.holeRuns++
		} else {
			a.hole, a.holeRuns = h, 1
		}
		s.log.Info("hash-range hole in the lease table", zap.Int("consecutiveAudits", a.holeRuns),
			zap.Int("threshold", s.cfg.AuditorConfidenceThreshold), zap.String("between", fmt.Sprintf("%s..%s / %s..%s", h.leftStart, h.leftEnd, h.rightStart, h.rightEnd)))
		if a.holeRuns >= s.cfg.AuditorConfidenceThreshold {
			need, reason = true, "same hash-range hole seen on consecutive audits"
		}
	}
	if !need {
		return false, nil
	}
	if !a.lastSync.IsZero() && time.Since(a.lastSync) < s.cfg.ShardSyncInterval {
		s.log.Info("shard sync needed but deferred by shardSyncInterval", zap.String("reason", reason))
		return false, nil
	}
	s.log.Info("auditor starting shard sync", zap.String("reason", reason))
	a.lastSync = time.Now()
	if err := s.Sync(ctx); err != nil {
		return true, err
	}
	a.hole, a.holeRuns = nil, 0
	return true, nil
}

// findHole back-fills missing hash ranges (W5) and returns the first hole in
// the hash ranges of leases not at SHARD_END, or nil.
func (a *auditor) findHole(ctx context.Context, leases []lease.Lease) (*hole, error) {
	active := make([]lease.Lease, 0, len(leases))
	missing := false
	for _, l := range leases {
		if l.Checkpoint.IsShardEnd() {
			continue
		}
		if _, ok := leaseRange(&l); !ok {
			missing = true
		}
		active = append(active, l)
	}
	if missing {
		if err := a.backfill(ctx, active); err != nil {
			return nil, err
		}
	}
	return holeIn(active), nil
}

// backfill sets the hash range of leases created before KCL 2.3 from a
// full listing; failures are logged (the lease then stays out of the check).
func (a *auditor) backfill(ctx context.Context, active []lease.Lease) error {
	s := a.s
	shards, err := s.lister.ListShards(ctx, shard.Filter{})
	if err != nil {
		return fmt.Errorf("shardsync: list shards for hash-range back-fill: %w", err)
	}
	m := shardMap(shards)
	for i := range active {
		l := &active[i]
		if _, ok := leaseRange(l); ok {
			continue
		}
		sh, ok := m[l.ShardIDOf()]
		if !ok {
			s.log.Warn("cannot back-fill hash range: shard not listed", zap.String("leaseKey", l.Key))
			continue
		}
		if err := s.store.UpdateHashRange(ctx, l.Key, sh.StartingHashKey, sh.EndingHashKey); err != nil {
			s.log.Warn("hash-range back-fill failed", zap.String("leaseKey", l.Key), zap.Error(err))
			continue
		}
		l.StartingHashKey, l.EndingHashKey = sh.StartingHashKey, sh.EndingHashKey
		s.log.Info("back-filled lease hash range", zap.String("leaseKey", l.Key))
	}
	return nil
}

func leaseRange(l *lease.Lease) (hashRange, bool) {
	s, ok1 := parseHash(l.StartingHashKey)
	e, ok2 := parseHash(l.EndingHashKey)
	if !ok1 || !ok2 {
		return hashRange{}, false
	}
	return hashRange{s, e}, true
}

// holeIn is Java checkForHoleInHashKeyRanges over the leases that have a
// hash range: sorted by start, overlaps merged, a gap is next.start −
// prev.end > 1; the first range must start at 0 and the last end at 2^128−1.
func holeIn(leases []lease.Lease) *hole {
	rs := make([]hashRange, 0, len(leases))
	for i := range leases {
		if r, ok := leaseRange(&leases[i]); ok {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return &hole{}
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].start.Cmp(rs[j].start) < 0 })
	first, last := rs[0], rs[len(rs)-1]
	if first.start.Sign() != 0 || last.end.Cmp(maxHash) != 0 {
		return mkHole(first, last)
	}
	one := big.NewInt(1)
	leftMost := rs[0]
	left := rs[0]
	for _, r := range rs[1:] {
		diff := new(big.Int).Sub(r.start, left.end)
		if diff.Sign() <= 0 { // overlap: merge
			end := left.end
			if r.end.Cmp(end) > 0 {
				end = r.end
			}
			left = hashRange{left.start, end}
			continue
		}
		if diff.Cmp(one) != 0 {
			return mkHole(leftMost, r)
		}
		leftMost, left = r, r
	}
	return nil
}

func mkHole(l, r hashRange) *hole {
	return &hole{l.start.String(), l.end.String(), r.start.String(), r.end.String()}
}
