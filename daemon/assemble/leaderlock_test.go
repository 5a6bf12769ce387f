package assemble

import (
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/leader"
	"github.com/multilangd/multilangd/lease/leasetest"
	"github.com/multilangd/multilangd/properties"
)

// TestNewLockDecider: the assembly builds the lease/leader decider from the
// configuration (and refuses durations the lock client refuses).
func TestNewLockDecider(t *testing.T) {
	cfg := properties.Defaults()
	cfg.WorkerID = "w1"
	st := lease.NewDynamoStore(leasetest.New(), "app", zap.NewNop())
	mk := newLockDecider(cfg, st, zap.NewNop())
	if mk == nil {
		t.Fatal("no lock decider in this build")
	}
	d, err := mk()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*leader.Decider); !ok {
		t.Fatalf("decider %T", d)
	}
	cfg.LeaderLockHeartbeatPeriod = 2 * time.Minute
	if _, err := newLockDecider(cfg, st, zap.NewNop())(); err == nil {
		t.Fatal("a heartbeat period over half the lease duration was accepted")
	}
}
