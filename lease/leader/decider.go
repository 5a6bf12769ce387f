// Package leader is the KCL 3.x leader decider: Java
// DynamoDBLockBasedLeaderDecider on the AmazonDynamoDBLockClient (1.4), so
// that multilangd and Java workers compete for one "Leader" lock item and
// follow each other (docs/compatibility.md "KCL 3.x: the Leader lock").
//
// The lock is absent, released (isReleased present), or held by an owner
// whose heartbeats change its recordVersionNumber every heartbeat period.
// A worker takes it when absent or released, or when it has itself seen the
// same recordVersionNumber for longer than the lock's leaseDuration on its
// local monotonic clock; it keeps it by heart-beating and loses it at once
// when a heartbeat's condition fails or no heartbeat has landed for the
// lease duration. Every write is the lock client's: same condition and
// update expressions, attribute names and string types.
package leader

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Target says where the Leader lock lives now (Java
// CoordinatorStateDAO.getDDBLockClient): the lease table, or the legacy
// CoordinatorState table while the 3.5 table migration is not COMPLETE.
// *lease.DynamoStore implements it.
type Target interface {
	LeaderLockTarget(ctx context.Context) (table, partitionKey string, err error)
}

// StaticTarget is a Target that never moves.
type StaticTarget Table

// LeaderLockTarget implements Target.
func (t StaticTarget) LeaderLockTarget(context.Context) (string, string, error) {
	return t.Name, t.PartitionKey, nil
}

// Why a leadership term ended: context.Cause of a LeadershipContext.
var (
	// ErrNotLeader: this worker did not hold the lock when asked.
	ErrNotLeader = errors.New("leader: this worker does not hold the Leader lock")
	// ErrLockLost: a heartbeat's condition failed (another worker took the lock, or it was deleted).
	ErrLockLost = errors.New("leader: the Leader lock was lost")
	// ErrLockExpired: no heartbeat landed within the lock's lease duration.
	ErrLockExpired = errors.New("leader: no heartbeat landed within the lock's lease duration")
	// ErrReleased: ReleaseLeadershipIfHeld released the lock.
	ErrReleased = errors.New("leader: the Leader lock was released")
	// ErrStopped: Run ended; the lock was released.
	ErrStopped = errors.New("leader: the leader decider stopped")
	// ErrLockMoved: the 3.5 table migration completed while the lock was
	// held in the legacy CoordinatorState table; it was released there and
	// is taken again in the lease table.
	ErrLockMoved = errors.New("leader: the Leader lock moved to the lease table")
	// ErrAlreadyRunning: Run was called a second time.
	ErrAlreadyRunning = errors.New("leader: Run called twice")
)

type clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// term is one holding of the lock (the lock client's LockItem in its locks map).
type term struct {
	table Table
	rvn   string
	// lastUpdate is the local time just before the write that set rvn
	// (LockItem.lookupTime): the lock is ours until lastUpdate + lease duration.
	lastUpdate time.Time
	since      time.Time
	// children are the LeadershipContexts of this term, cancelled
	// synchronously when it ends.
	children map[int]context.CancelCauseFunc
}

// pendingAcquire is an acquire that may have landed: the recordVersionNumber
// it wrote and the local time just before it was sent.
type pendingAcquire struct {
	table Table
	rvn   string
	start time.Time
}

// observation is the lock client's notMyLocks entry: the first time this
// worker read a recordVersionNumber, and the lease duration that lock claims.
type observation struct {
	table         string
	rvn           string
	at            time.Time
	leaseDuration time.Duration
}

type phase int

const (
	phaseNew phase = iota
	phaseRunning
	phaseStopped
)

// Decider is the KCL 3.x leader decider. IsLeader may be called from any
// goroutine; Run must be running for the lock to be taken and kept.
type Decider struct {
	api    DynamoAPI
	target Target
	cfg    Config
	log    *zap.Logger
	clock  clock
	// armed wakes Run when a term starts, to watch its expiry.
	armed chan struct{}
	// running is closed once Run has started (IsLeader answers false
	// before).
	running chan struct{}

	// decideMu serialises IsLeader, ReleaseLeadershipIfHeld and the stop
	// (Java: synchronized methods of DynamoDBLockBasedLeaderDecider).
	decideMu   sync.Mutex
	lastCheck  time.Time
	lastResult bool
	// unconfirmed is this worker's last acquire whose outcome stayed
	// unknown (answer and read both lost); zero when none.
	unconfirmed pendingAcquire

	// writeMu serialises the heartbeat and the release of a held lock
	// (AmazonDynamoDBLockClient: synchronized (lockItem)).
	writeMu sync.Mutex

	mu         sync.Mutex
	phase      phase
	held       *term
	seen       observation
	owner      string
	ownerSince time.Time
	nextChild  int
}

// New returns a decider for the lock at target; cfg's zero durations take
// Java's defaults.
func New(api DynamoAPI, target Target, cfg Config, log *zap.Logger) (*Decider, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Decider{api: api, target: target, cfg: cfg, log: log.With(zap.String("component", "leader")),
		clock: realClock{}, armed: make(chan struct{}, 1), running: make(chan struct{})}, nil
}

// IsLeader is Java DynamoDBLockBasedLeaderDecider.isLeader: true while this
// worker holds the lock (no request); otherwise it reads the lock and takes
// it when absent, released or observed stale. A "no" is reused for one
// heartbeat period without a request. After Run ended, or before it
// started, it answers false (then without caching).
func (d *Decider) IsLeader(ctx context.Context) bool {
	d.decideMu.Lock()
	defer d.decideMu.Unlock()
	if d.currentPhase() != phaseRunning {
		return false
	}
	if !d.lastResult && !d.lastCheck.IsZero() && d.clock.Now().Sub(d.lastCheck) < d.cfg.HeartbeatPeriod {
		return false
	}
	dctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	ok, err := d.decide(dctx)
	if err != nil {
		// Java: the exception leaves isLeader with the cached answer untouched.
		d.log.Warn("cannot tell whether this worker leads", zap.Error(err))
		return false
	}
	d.lastCheck, d.lastResult = d.clock.Now(), ok
	return ok
}

// decide is one uncached isLeader: getLock, then tryAcquireLock with
// shouldSkipBlockingWait.
func (d *Decider) decide(ctx context.Context) (bool, error) {
	if d.holds() {
		return true, nil
	}
	name, pk, err := d.target.LeaderLockTarget(ctx)
	if err != nil {
		return false, err
	}
	t := Table{Name: name, PartitionKey: pk}
	cur, err := getLock(ctx, d.api, t)
	if err != nil {
		return false, err
	}
	d.noteOwner(cur)
	if d.adoptUnconfirmed(t, cur) {
		return true, nil
	}
	if cur != nil && !cur.released && !d.observedStale(t, cur) {
		return false, nil // LockCurrentlyUnavailableException
	}
	return d.tryAcquire(ctx, t, cur)
}

// observedStale is the shouldSkipBlockingWait check of
// AmazonDynamoDBLockClient.acquireLock: the lock is stale once this worker
// has seen the same recordVersionNumber for longer than the lease duration
// the lock claims, counted from the first read that returned it.
func (d *Decider) observedStale(t Table, cur *lockItem) bool {
	now := d.clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen.table == t.Name && d.seen.rvn == cur.rvn {
		return now.Sub(d.seen.at) > d.seen.leaseDuration
	}
	d.seen = observation{table: t.Name, rvn: cur.rvn, at: now, leaseDuration: cur.leaseDuration}
	return false
}

// tryAcquire writes the lock (acquire) with a new recordVersionNumber. A
// failed condition means another worker was first. When the outcome is
// unknown (timeout, lost response) one consistent read tells whether the
// write landed.
func (d *Decider) tryAcquire(ctx context.Context, t Table, cur *lockItem) (bool, error) {
	rvn := newRVN()
	start := d.clock.Now()
	err := acquire(ctx, d.api, t, cur, lockItemFor(t, d.cfg.WorkerID, d.cfg.LeaseDuration, rvn))
	if err != nil && conditionFailed(err) {
		return false, nil
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
		defer cancel()
		l, gerr := getLock(cctx, d.api, t)
		if gerr != nil || l == nil {
			d.unconfirmed = pendingAcquire{table: t, rvn: rvn, start: start} // may land yet
		}
		if gerr != nil || l == nil || l.rvn != rvn {
			return false, err
		}
	}
	d.startTerm(t, rvn, start)
	return true, nil
}

// adoptUnconfirmed starts the term of an earlier acquire whose outcome
// stayed unknown when the lock read now carries its recordVersionNumber:
// it landed, and the term counts from before it was sent, so it ends no
// later than any other worker can see the lock stale. The acquire gets
// this one chance.
func (d *Decider) adoptUnconfirmed(t Table, cur *lockItem) bool {
	u := d.unconfirmed
	d.unconfirmed = pendingAcquire{}
	if u.rvn == "" || u.table != t || cur == nil || cur.released || cur.rvn != u.rvn || cur.owner != d.cfg.WorkerID {
		return false
	}
	if d.clock.Now().After(u.start.Add(d.cfg.LeaseDuration)) {
		return false // expired already: taken over as a stale lock
	}
	d.log.Info("an acquire of the Leader lock whose answer was lost had landed")
	d.startTerm(t, u.rvn, u.start)
	return true
}

// ReleaseLeadershipIfHeld is Java releaseLeadershipIfHeld (called by the
// LeaseAssignmentManager after consecutive failed runs): if this worker
// holds the lock, leadership ends at once (cause ErrReleased) and the lock
// item is deleted on condition that it still is ours (even when ctx is
// already cancelled: the delete has a budget of its own). As in Java, the
// worker may win a later election again.
func (d *Decider) ReleaseLeadershipIfHeld(ctx context.Context) {
	d.decideMu.Lock()
	defer d.decideMu.Unlock()
	d.releaseHeld(ctx, ErrReleased)
}

// Observed reports the lock's owner as this worker last saw it ("" when
// absent or released), whether this worker holds it, and since when that
// owner has been seen (for operators).
func (d *Decider) Observed() (owner string, held bool, since time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.held != nil {
		return d.cfg.WorkerID, true, d.held.since
	}
	return d.owner, false, d.ownerSince
}

// LeadershipContext returns a child of parent that is also cancelled when
// this worker's current leadership term ends; context.Cause says why
// (ErrLockLost, ErrLockExpired, ErrReleased, ErrStopped, ErrLockMoved). When this worker
// does not lead, it is already cancelled with cause ErrNotLeader (ErrLockExpired
// when the term expired before Run's expiry watch ended it). Call
// cancel when done, as with context.WithCancel.
func (d *Decider) LeadershipContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	if t := d.current(); t != nil && d.expireIfDue(t) {
		cancel(ErrLockExpired)
		return ctx, func() {}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.held
	if t == nil {
		cancel(ErrNotLeader)
		return ctx, func() {}
	}
	id := d.nextChild
	d.nextChild++
	t.children[id] = cancel
	return ctx, func() {
		d.mu.Lock()
		delete(t.children, id)
		d.mu.Unlock()
		cancel(context.Canceled)
	}
}
