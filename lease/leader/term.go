package leader

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Run owns the heartbeat (AmazonDynamoDBLockClient's background thread:
// every heartbeat period while the lock is held) and the expiry watch that
// ends leadership when no heartbeat has landed for the lease duration.
// When ctx ends it releases the lock if held (Java
// DynamoDBLockBasedLeaderDecider.shutdown) and returns nil; IsLeader then
// answers false for good.
func (d *Decider) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.phase != phaseNew {
		d.mu.Unlock()
		return ErrAlreadyRunning
	}
	d.phase = phaseRunning
	d.mu.Unlock()
	close(d.running)
	defer d.stop(ctx)

	tick := time.NewTicker(d.cfg.HeartbeatPeriod)
	defer tick.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	for {
		d.watchExpiry(expiry)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			d.heartbeatOnce(ctx)
			d.followTarget(ctx)
		case <-expiry.C:
			if t := d.current(); t != nil {
				d.expireIfDue(t)
			}
		case <-d.armed:
		}
	}
}

// Running is closed once Run has started: IsLeader asked before that
// answers false, so a caller that elects at once waits for it.
func (d *Decider) Running() <-chan struct{} { return d.running }

// stop is Java shutdown: no more leadership, and the held lock released
// (with a budget of its own: ctx has ended).
func (d *Decider) stop(ctx context.Context) {
	d.decideMu.Lock()
	defer d.decideMu.Unlock()
	d.mu.Lock()
	d.phase = phaseStopped
	d.mu.Unlock()
	d.releaseHeld(ctx, ErrStopped)
}

// followTarget releases a lock held in the legacy CoordinatorState table
// once the lock's place has become the lease table (the 3.5 table
// migration reached COMPLETE), so that the next IsLeader takes it there:
// what Java TableMigrationStateMachine.handleLeaderLockResult forces when
// a leader's table no longer matches the migration state.
func (d *Decider) followTarget(ctx context.Context) {
	t := d.current()
	if t == nil {
		return
	}
	// Not past the local expiry: Run's expiry watch waits for this call.
	tctx, cancel := context.WithTimeout(ctx, min(d.localExpiry(t).Sub(d.clock.Now()), requestTimeout))
	defer cancel()
	name, pk, err := d.target.LeaderLockTarget(tctx)
	if err != nil || (Table{Name: name, PartitionKey: pk}) == t.table {
		return
	}
	d.log.Info("the Leader lock's place moved; releasing it to take it there", zap.String("from", t.table.Name), zap.String("to", name))
	d.releaseHeld(ctx, ErrLockMoved)
}

// watchExpiry sets the timer to fire just after the held lock's local
// expiry; it is stopped while nothing is held.
func (d *Decider) watchExpiry(timer *time.Timer) {
	t := d.current()
	if t == nil {
		timer.Stop()
		return
	}
	left := d.localExpiry(t).Sub(d.clock.Now())
	timer.Reset(max(left, 0) + time.Millisecond)
}

// heartbeatOnce is AmazonDynamoDBLockClient.sendHeartbeat for the held
// lock. The request may take until the lock's local expiry; a failed
// condition ends leadership at once (ErrLockLost). When the outcome is
// unknown, resolveHeartbeat tells whether it landed.
func (d *Decider) heartbeatOnce(ctx context.Context) {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	t := d.current()
	if t == nil || d.expireIfDue(t) {
		return
	}
	rvn := d.rvnOf(t)
	// Not cut short by the end of Run: a heartbeat that landed unseen would
	// make the release that follows fail its condition.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(d.localExpiry(t).Sub(d.clock.Now()), requestTimeout))
	defer cancel()
	next, start := newRVN(), d.clock.Now()
	err := heartbeat(hctx, d.api, t.table, d.cfg.WorkerID, rvn, next, d.cfg.LeaseDuration)
	if err == nil {
		d.renewed(t, next, start)
		return
	}
	if conditionFailed(err) {
		d.endTerm(t, ErrLockLost, err)
		return
	}
	d.resolveHeartbeat(ctx, t, rvn, next, start, err)
}

// resolveHeartbeat tells, by one consistent read, whether a heartbeat
// whose outcome is unknown (from rvn to next, sent at start) landed. The
// read has a budget of its own up to the lock's local expiry: the
// heartbeat's may be spent (a timeout is the usual unknown outcome).
func (d *Decider) resolveHeartbeat(ctx context.Context, t *term, rvn, next string, start time.Time, err error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(d.localExpiry(t).Sub(d.clock.Now()), requestTimeout))
	defer cancel()
	l, gerr := getLock(rctx, d.api, t.table)
	switch {
	case gerr != nil:
		d.log.Warn("heartbeat of the Leader lock failed; retrying next period", zap.Error(err), zap.NamedError("read", gerr))
		d.expireIfDue(t)
	case l != nil && l.owner == d.cfg.WorkerID && l.rvn == next:
		d.renewed(t, next, start)
	case l != nil && l.owner == d.cfg.WorkerID && l.rvn == rvn:
		d.log.Warn("heartbeat of the Leader lock did not land; retrying next period", zap.Error(err))
	default:
		d.endTerm(t, ErrLockLost, err)
	}
}

// releaseHeld ends the current term with cause and deletes the lock item
// on condition that it still is ours (AmazonDynamoDBLockClient.releaseLock:
// the heartbeat stops first, whatever the write's outcome). A lock already
// expired locally is left alone, as Java releaseLeadershipIfHeld does. The
// delete has its own budget: ctx may have ended (a stop).
func (d *Decider) releaseHeld(ctx context.Context, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	t := d.current()
	if t == nil || d.expireIfDue(t) {
		return
	}
	rvn := d.rvnOf(t)
	d.endTerm(t, cause, nil)
	err := release(ctx, d.api, t.table, d.cfg.WorkerID, rvn)
	switch {
	case err == nil:
		d.log.Info("released the Leader lock", zap.String("table", t.table.Name))
	case conditionFailed(err):
		d.log.Info("the Leader lock was no longer ours to release", zap.String("table", t.table.Name))
	default:
		d.log.Warn("cannot delete the Leader lock; other workers take it once it is stale", zap.Error(err))
	}
}

// startTerm records a lock just acquired at rvn, written at start.
func (d *Decider) startTerm(t Table, rvn string, start time.Time) {
	d.mu.Lock()
	d.held = &term{table: t, rvn: rvn, lastUpdate: start, since: d.clock.Now(), children: map[int]context.CancelCauseFunc{}}
	d.owner, d.ownerSince = d.cfg.WorkerID, d.held.since
	d.mu.Unlock()
	select {
	case d.armed <- struct{}{}:
	default:
	}
	d.log.Info("acquired the Leader lock; this worker leads", zap.String("table", t.Name), zap.String("recordVersionNumber", rvn))
}

// renewed records a landed heartbeat.
func (d *Decider) renewed(t *term, rvn string, start time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t.rvn, t.lastUpdate = rvn, start
}

// endTerm ends t with cause (err is what showed it, for the log).
func (d *Decider) endTerm(t *term, cause, err error) {
	d.mu.Lock()
	if d.held != t {
		d.mu.Unlock()
		return // ended already
	}
	d.held = nil
	d.owner, d.ownerSince = "", d.clock.Now() // unknown until the next read
	children := t.children
	t.children = map[int]context.CancelCauseFunc{}
	d.mu.Unlock()
	for _, cancel := range children {
		cancel(cause)
	}
	if cause == ErrLockLost || cause == ErrLockExpired {
		d.log.Warn("lost the Leader lock; this worker no longer leads", zap.String("table", t.table.Name), zap.NamedError("cause", cause), zap.Error(err))
	}
}

// expireIfDue ends t when no heartbeat has landed for the lease duration
// (LockItem.isExpired) and reports whether it did.
func (d *Decider) expireIfDue(t *term) bool {
	due := d.clock.Now().After(d.localExpiry(t))
	if due {
		d.endTerm(t, ErrLockExpired, nil)
	}
	return due
}

// localExpiry is when t stops being ours unless a heartbeat lands
// (LockItem.isExpired: lookupTime + leaseDuration).
func (d *Decider) localExpiry(t *term) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return t.lastUpdate.Add(d.cfg.LeaseDuration)
}

func (d *Decider) rvnOf(t *term) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return t.rvn
}

// holds reports whether this worker holds an unexpired lock.
func (d *Decider) holds() bool {
	t := d.current()
	return t != nil && !d.expireIfDue(t)
}

func (d *Decider) current() *term {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.held
}

func (d *Decider) currentPhase() phase {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.phase
}

// noteOwner records the owner a read found, for Observed.
func (d *Decider) noteOwner(cur *lockItem) {
	owner := ""
	if cur != nil && !cur.released {
		owner = cur.owner
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if owner != d.owner || d.ownerSince.IsZero() {
		d.owner, d.ownerSince = owner, d.clock.Now()
	}
}
