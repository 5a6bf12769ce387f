package lam

import (
	"time"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/assign"
)

// observed is what the leader remembers of a lease between runs (Java
// LeaseAssignmentManager.prevRunLeasesState): the counter and owners last
// seen, when the counter last moved (local monotonic time; zero = never,
// an unassigned lease on first sight) and, while a hand-off is pending, the
// deadline after which it is no longer waited for (Java
// checkpointOwnerTimeoutTimestampMillis).
type observed struct {
	counter         int64
	owner, cpOwner  string
	lastIncrement   time.Time
	handoffDeadline time.Time
}

// observe is Java
// LeaseAssignmentManager.updateLeasesLastCounterIncrementNanosAndLeaseShutdownTimeout:
// a lease seen for the first time counts as incremented at scanTime
// (never, when unassigned); later, only a higher counter moves
// lastIncrement. A pending hand-off keeps its deadline while the same
// leaseOwner/checkpointOwner pair persists, else gets now + hand-off
// timeout + failover. Leases gone from the table are forgotten.
func (m *Manager) observe(leases []lease.Lease, scanTime time.Time) {
	next := make(map[string]observed, len(leases))
	for _, l := range leases {
		prev, ok := m.seen[l.Key]
		o := observed{counter: l.Counter, owner: l.Owner, cpOwner: l.CheckpointOwner}
		if l.CheckpointOwner != "" {
			if ok && prev.cpOwner != "" && prev.owner == l.Owner && prev.cpOwner == l.CheckpointOwner {
				o.handoffDeadline = prev.handoffDeadline
			} else {
				o.handoffDeadline = m.handoffDeadline()
			}
		}
		switch {
		case !ok && l.ActualOwner() == "":
		case !ok || l.Counter > prev.counter:
			o.lastIncrement = scanTime
		default:
			o.lastIncrement = prev.lastIncrement
		}
		next[l.Key] = o
	}
	m.seen = next
}

// handoffDeadline is Java getCheckpointOwnerTimeoutTimestampMillis: the
// hand-off timeout plus failover (time for the owner to notice) from now.
func (m *Manager) handoffDeadline() time.Time {
	return m.cfg.Clock.Now().Add(m.cfg.HandoffTimeout + m.cfg.FailoverTime)
}

// expiredOrUnassigned is Java Lease.isExpired(leaseDuration, scanTime) ||
// actualOwner == null, from this leader's observations.
func (m *Manager) expiredOrUnassigned(l lease.Lease, scanTime time.Time) bool {
	o := m.seen[l.Key]
	return l.ActualOwner() == "" || o.lastIncrement.IsZero() || scanTime.Sub(o.lastIncrement) > m.cfg.FailoverTime
}

// decisionLease is l as the decider sees it at time at: expiry as of the
// scan, and whether a pending hand-off has passed its deadline (Java
// Lease.blockedOnPendingCheckpoint reads the clock when asked; the
// LEASE_COUNT_BASED balancer and the write filter both ask it).
func (m *Manager) decisionLease(l lease.Lease, scanTime, at time.Time) assign.Lease {
	return assign.Lease{Key: l.Key, LeaseOwner: l.Owner, CheckpointOwner: l.CheckpointOwner, ThroughputKBps: l.ThroughputKBps,
		ShardEnd: isShardEnd(l), Expired: m.expiredOrUnassigned(l, scanTime), LastCounterIncrement: m.seen[l.Key].lastIncrement,
		PendingCheckpointTimedOut: l.CheckpointOwner != "" && !at.Before(m.seen[l.Key].handoffDeadline)}
}
