package assemble

import (
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/leader"
	"github.com/multilangd/multilangd/properties"
)

// newLockDecider returns the constructor of the KCL 3.x Leader-lock
// decider (lease/leader): the lock lives where store.LeaderLockTarget says
// (lease table, or the legacy CoordinatorState table), owned by workerId,
// with the dynamoDbLockBasedLeader* durations.
func newLockDecider(cfg *properties.Config, store *lease.DynamoStore, log *zap.Logger) func() (lockDecider, error) {
	return func() (lockDecider, error) {
		d, err := leader.New(store.Client(), store, leader.FromProperties(cfg), log.Named("leader"))
		if err != nil {
			return nil, err
		}
		return d, nil
	}
}
