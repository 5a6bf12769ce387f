package lam

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/multilangd/multilangd/lease"
)

// memStore is an in-memory Store with the W8/W9 conditions of
// lease.DynamoStore (the DynamoDB behaviour itself is tested against
// DynamoDB Local in integration_test.go).
type memStore struct {
	mu      sync.Mutex
	leases  map[string]lease.Lease
	workers map[string]lease.WorkerMetricsEntry
	loadErr error
	writes  []string // "W8 key to", "W9 key to"
	deleted []string
}

func newMemStore() *memStore {
	return &memStore{leases: map[string]lease.Lease{}, workers: map[string]lease.WorkerMetricsEntry{}}
}

func (s *memStore) put(l lease.Lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leases[l.Key] = l
}

func (s *memStore) get(key string) lease.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leases[key]
}

func (s *memStore) LoadAssignmentView(context.Context, string) (lease.AssignmentView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loadErr != nil {
		return lease.AssignmentView{}, s.loadErr
	}
	var av lease.AssignmentView
	for _, l := range s.leases {
		av.Leases = append(av.Leases, l)
	}
	for _, w := range s.workers {
		av.Workers = append(av.Workers, w)
	}
	return av, nil
}

func (s *memStore) AssignLease(_ context.Context, l lease.Lease, to string) (lease.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.leases[l.Key]
	if !ok || cur.Owner != l.Owner || cur.CheckpointOwner != l.CheckpointOwner {
		return lease.Lease{}, fmt.Errorf("W8 %s: %w", l.Key, lease.ErrConditionFailed)
	}
	cur.Owner, cur.CheckpointOwner = to, ""
	cur.Counter++
	s.leases[l.Key] = cur
	s.writes = append(s.writes, "W8 "+l.Key+" "+to)
	return cur, nil
}

func (s *memStore) InitiateHandoff(_ context.Context, l lease.Lease, to string) (lease.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.leases[l.Key]
	if !ok || cur.Owner != l.Owner || cur.CheckpointOwner != "" {
		return lease.Lease{}, fmt.Errorf("W9 %s: %w", l.Key, lease.ErrConditionFailed)
	}
	cur.Owner, cur.CheckpointOwner = to, l.Owner
	s.leases[l.Key] = cur
	s.writes = append(s.writes, "W9 "+l.Key+" "+to)
	return cur, nil
}

func (s *memStore) DeleteWorkerMetrics(_ context.Context, _ string, w lease.WorkerMetricsEntry) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.workers[w.WorkerID]
	if !ok || cur.LastUpdate != w.LastUpdate {
		return false, nil
	}
	delete(s.workers, w.WorkerID)
	s.deleted = append(s.deleted, w.WorkerID)
	return true, nil
}

func (s *memStore) takeWrites() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.writes
	s.writes = nil
	return w
}

// fakeLeader is a Leader whose answer the test sets.
type fakeLeader struct {
	mu       sync.Mutex
	leader   bool
	released int
}

func (f *fakeLeader) IsLeader(context.Context) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

func (f *fakeLeader) ReleaseLeadershipIfHeld(context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader = false
	f.released++
}

// fakeClock is a settable monotonic clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var errLoad = errors.New("scan failed")

// termLeader is a fakeLeader whose leadership term can end mid-run (as
// lease/leader Decider.LeadershipContext).
type termLeader struct {
	*fakeLeader
	mu     sync.Mutex
	cancel context.CancelCauseFunc
}

func (l *termLeader) LeadershipContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	l.mu.Lock()
	l.cancel = cancel
	l.mu.Unlock()
	return ctx, func() { cancel(context.Canceled) }
}

func (l *termLeader) loseLock() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cancel(errors.New("lock lost"))
}
