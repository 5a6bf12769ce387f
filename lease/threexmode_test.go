package lease

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestAwaitMode: with AwaitMode the taker takes nothing until the daemon
// has set the mode (a 2.x table: SetThreeXMode(false)), then takes at once;
// a mode that never comes holds it back for failover only.
func TestAwaitMode(t *testing.T) {
	b := fakeBackend()
	st := newTable(t, b)
	createLeases(t, st, 2)
	var runs atomic.Int32
	c := newCoord(t, st, "w1", func(c *CoordinatorConfig) {
		c.AwaitMode, c.FailoverTime, c.TakerPeriod = true, time.Hour, 50*time.Millisecond
		c.OnTake = func(TakeResult) { runs.Add(1) }
	})
	runCoord(t, c)
	time.Sleep(300 * time.Millisecond)
	if runs.Load() != 0 || len(c.Held()) != 0 {
		t.Fatalf("taker ran %d times before the mode was set", runs.Load())
	}
	c.SetThreeXMode(false)
	waitFor(t, 10*time.Second, "leases taken in 2.x mode", func() bool { return len(c.Held()) == 2 })

	st2 := newTable(t, b)
	createLeases(t, st2, 1)
	c2 := newCoord(t, st2, "w2", func(c *CoordinatorConfig) {
		c.AwaitMode, c.FailoverTime, c.TakerPeriod = true, 500*time.Millisecond, 50*time.Millisecond
	})
	runCoord(t, c2)
	waitFor(t, 10*time.Second, "a lease taken after the mode wait gave up", func() bool { return len(c2.Held()) == 1 })
}
