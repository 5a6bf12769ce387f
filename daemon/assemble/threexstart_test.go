package assemble

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/lease/lam"
)

// slowStartDecider is a lock decider whose Run takes a moment to start;
// like lease/leader.Decider it answers IsLeader false (uncached) until then.
type slowStartDecider struct {
	mu           sync.Mutex
	running      bool
	asked        chan struct{}
	askedEarly   bool
	started      chan struct{}
	onceAsked    sync.Once
	startupDelay time.Duration
}

func (d *slowStartDecider) Run(ctx context.Context) error {
	time.Sleep(d.startupDelay)
	d.mu.Lock()
	d.running = true
	d.mu.Unlock()
	close(d.started)
	<-ctx.Done()
	return nil
}

func (d *slowStartDecider) Running() <-chan struct{} { return d.started }

func (d *slowStartDecider) IsLeader(context.Context) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running {
		d.askedEarly = true
	}
	d.onceAsked.Do(func() { close(d.asked) })
	return false
}

func (d *slowStartDecider) ReleaseLeadershipIfHeld(context.Context) {}

// TestLeadingAsksIsLeaderOnlyOnceTheDeciderRuns: the assignment manager's
// first IsLeader comes after the decider's Run has started; asked before,
// it gets "no" and the first election waits a whole
// leaseAssignmentIntervalMillis.
func TestLeadingAsksIsLeaderOnlyOnceTheDeciderRuns(t *testing.T) {
	dec := &slowStartDecider{asked: make(chan struct{}), started: make(chan struct{}), startupDelay: 100 * time.Millisecond}
	l := &leading{manager: lam.New(nil, dec, lam.Config{Interval: time.Hour}, zap.NewNop()),
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() { // owned here: waited for below
		defer close(l.done)
		l.run(context.Background(), dec, zap.NewNop())
	}()
	select {
	case <-dec.asked:
	case <-time.After(30 * time.Second):
		t.Fatal("the manager never asked IsLeader")
	}
	close(l.stop)
	<-l.done
	dec.mu.Lock()
	defer dec.mu.Unlock()
	if dec.askedEarly {
		t.Fatal("the manager asked IsLeader before the decider ran (the first election then waits an interval)")
	}
}
