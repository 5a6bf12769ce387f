package lease

import (
	"context"

	"go.uber.org/zap"
)

// KCL 3.x mode (docs/architecture.md "KCL 3.x mode"): while on, the 2.x
// taker never runs, every worker discovers the leases assigned to it
// through the LeaseOwnerToLeaseKeyIndex every DiscoveryPeriod (Java
// DynamoDBLeaseDiscoverer), renewals carry the 3.x condition, and IsLeader
// answers from the Leader lock (Java DynamoDBLockBasedLeaderDecider), whose
// holder runs the LeaseAssignmentManager (lease/lam). Off (2.x mode), the
// coordinator is the KCL 2.x taker and deterministic-shuffle leader.
// The daemon switches it from the client version in force (Java
// DynamicMigrationComponentsInitializer.initializeClientVersionFor3x…).

// SetThreeXMode switches the coordinator into (on) or out of KCL 3.x mode.
// It may be called at any time, from any goroutine.
func (c *Coordinator) SetThreeXMode(on bool) {
	defer c.modeOnce.Do(func() { close(c.modeKnown) })
	if c.threeXMode.Swap(on) == on {
		return
	}
	if on {
		c.threeX.Store(true)
		c.log.Info("KCL 3.x mode: leases come from the lease assignment manager (no taking); discovery through " + LeaseOwnerIndex)
	} else {
		c.log.Info("KCL 2.x mode: the lease taker runs again")
	}
}

// ThreeXMode reports whether the coordinator is in KCL 3.x mode.
func (c *Coordinator) ThreeXMode() bool { return c.threeXMode.Load() }

// SetLockLeader sets the KCL 3.x leader decision IsLeader answers with in
// 3.x mode (lease/leader Decider.IsLeader); nil removes it (IsLeader then
// answers false in 3.x mode).
func (c *Coordinator) SetLockLeader(isLeader func(context.Context) bool) {
	if isLeader == nil {
		c.lockLeader.Store(nil)
		return
	}
	c.lockLeader.Store(&isLeader)
}

// lockLeaderAnswer is IsLeader in 3.x mode.
func (c *Coordinator) lockLeaderAnswer(ctx context.Context) bool {
	f := c.lockLeader.Load()
	return f != nil && (*f)(ctx)
}

// refuseTaking reports why the taker does nothing this round ("" to take):
// in 3.x mode, and on a table whose Migration3.0 elects a lock leader
// while the mode switch has not arrived yet (the daemon turns 3.x mode on
// for such a table; taking meanwhile would fight the leader's
// assignments). Each change of the answer is logged.
func (c *Coordinator) refuseTaking(cs CoordinatorState) string {
	why := ""
	switch {
	case c.threeXMode.Load():
		why = "3x-mode"
	case cs.LeaderElected():
		why = "3x-table"
	}
	if why != c.refusing {
		c.refusing = why
		if why == "3x-table" {
			c.log.Warn("the lease table is in KCL 3.x client version; not taking leases until 3.x mode starts",
				zap.String("clientVersion", cs.ClientVersion))
			if c.cfg.OnThreeXTable != nil {
				c.cfg.OnThreeXTable()
			}
		}
	}
	return why
}
