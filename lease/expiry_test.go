package lease

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/multilangd/multilangd/seqnum"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestIntegrationLocalExpiry (Java DynamoDBLeaseRenewer.getCopyOfHeldLease): a
// held lease not
// renewed within failover (by the injectable monotonic clock) is dropped and
// reported lost even though DynamoDB still names this worker; a checkpoint
// on it fails with ShutdownException.
func TestIntegrationLocalExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, via := range []string{"renewer", "checkpoint"} {
			t.Run(via, func(t *testing.T) {
				st := newTable(t, b)
				createLeases(t, st, 1)
				fs := &faultStore{Store: st}
				clk := &fakeClock{t: time.Unix(1_000_000, 0)}
				c := newCoord(t, fs, "go-a", func(c *CoordinatorConfig) {
					c.FailoverTime, c.TakerPeriod, c.Clock = 10*time.Second, time.Hour, clk
					c.RenewerPeriod = 50 * time.Millisecond
					if via == "checkpoint" {
						c.RenewerPeriod = time.Hour
					}
				})
				runCoord(t, c)
				waitFor(t, 10*time.Second, "held", func() bool { return len(c.Held()) == 1 })
				h := c.Held()[0]
				fs.failRenew.Store(true)
				time.Sleep(200 * time.Millisecond) // let an in-flight successful renew finish
				clk.Advance(9 * time.Second)
				time.Sleep(200 * time.Millisecond)
				if h.Ctx.Err() != nil {
					t.Fatal("dropped before failover")
				}
				clk.Advance(2 * time.Second)
				if via == "checkpoint" {
					cp := c.Checkpointer(h)
					cp.SetLargestPermitted(seqnum.New("9", 0))
					assertException(t, cp.Checkpoint(ctxT(t, 10*time.Second), nil, nil), "ShutdownException")
				}
				select {
				case <-h.Ctx.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("lease not dropped after local expiry")
				}
				if !errors.Is(context.Cause(h.Ctx), ErrLeaseLost) {
					t.Fatalf("cause %v", context.Cause(h.Ctx))
				}
				if got := ownerCounts(t, st)["go-a"]; got != 1 {
					t.Fatalf("table owner count %d: local expiry must not write", got)
				}
			})
		}
	})
}
