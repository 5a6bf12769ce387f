package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// Shared starts emulators lazily, once per test binary, for the tests that
// need them (DynamoDB Local and kinesis-local cost about a second each);
// TestMain calls StopAll after m.Run. The zero value is ready to use.
type Shared struct {
	mu      sync.Mutex
	running map[Kind]*Emulator
}

// Get returns the shared emulator of kind k, starting it on first use. Under
// -short it skips t; otherwise a failure to start fails t.
func (s *Shared) Get(t testing.TB, k Kind) *Emulator {
	t.Helper()
	SkipIfShort(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.running[k]; e != nil {
		return e
	}
	e, err := Start(context.Background(), k, StartOptions{})
	if err != nil {
		t.Fatalf("emulator %s: %v", k, err)
	}
	if s.running == nil {
		s.running = map[Kind]*Emulator{}
	}
	s.running[k] = e
	return e
}

// StopAll stops every emulator Get started.
func (s *Shared) StopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.running {
		_ = e.Stop()
		delete(s.running, k)
	}
}

// CheckLeaks turns a passing test binary's exit code into 1 when goroutines
// leaked (idle HTTP keep-alive connections of the AWS clients excepted).
func CheckLeaks(code int) int {
	if code != 0 {
		return code
	}
	if err := goleak.Find(
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	); err != nil {
		fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
		return 1
	}
	return 0
}
