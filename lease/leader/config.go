package leader

import (
	"errors"
	"fmt"
	"time"

	"github.com/multilangd/multilangd/properties"
)

// Java's defaults (LeaseManagementConfig.dynamoDbLockBasedLeaderLeaseDurationInMillis
// and dynamoDbLockBasedLeaderHeartbeatPeriodInMillis, which Scheduler hands
// to DynamoDBLockBasedLeaderDecider.create), from the key registry.
var (
	DefaultLeaseDuration   = properties.Defaults().LeaderLockLeaseDuration
	DefaultHeartbeatPeriod = properties.Defaults().LeaderLockHeartbeatPeriod
)

// requestTimeout bounds every request on the lock (Java leaves it to the
// SDK): a hung DynamoDB must neither block IsLeader's callers nor keep Run
// from stopping; a release has it even after its caller's context ended.
const requestTimeout = 10 * time.Second

// Config is the leader decider's settings.
type Config struct {
	// WorkerID is the lock's ownerName (Java workerIdentifier).
	WorkerID string
	// LeaseDuration is how long the lock stays ours without a heartbeat
	// landing, and how long another worker must see the same
	// recordVersionNumber before it takes the lock
	// (dynamoDbLockBasedLeaderLeaseDurationInMillis).
	LeaseDuration time.Duration
	// HeartbeatPeriod is how often the held lock is heart-beaten, and how
	// long a "no" from IsLeader is reused
	// (dynamoDbLockBasedLeaderHeartbeatPeriodInMillis).
	HeartbeatPeriod time.Duration
}

// FromProperties is the decider's configuration from the daemon's
// properties: workerId and the extension keys
// dynamoDbLockBasedLeaderLeaseDurationInMillis and
// dynamoDbLockBasedLeaderHeartbeatPeriodInMillis.
func FromProperties(p *properties.Config) Config {
	return Config{WorkerID: p.WorkerID, LeaseDuration: p.LeaderLockLeaseDuration, HeartbeatPeriod: p.LeaderLockHeartbeatPeriod}
}

// WithDefaults fills zero durations with Java's defaults.
func (c Config) WithDefaults() Config {
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.HeartbeatPeriod == 0 {
		c.HeartbeatPeriod = DefaultHeartbeatPeriod
	}
	return c
}

// Validate checks c as the AmazonDynamoDBLockClient constructor does: the
// heartbeat period must be at most half the lease duration.
func (c Config) Validate() error {
	switch {
	case c.WorkerID == "":
		return errors.New("leader: worker id is empty (the lock's ownerName)")
	case c.LeaseDuration <= 0 || c.HeartbeatPeriod <= 0:
		return fmt.Errorf("leader: lease duration %s and heartbeat period %s must be positive", c.LeaseDuration, c.HeartbeatPeriod)
	case c.LeaseDuration < 2*c.HeartbeatPeriod:
		return fmt.Errorf("leader: heartbeat period %s must be no more than half the lease duration %s (AmazonDynamoDBLockClient)", c.HeartbeatPeriod, c.LeaseDuration)
	}
	return nil
}
