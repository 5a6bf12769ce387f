package sdnotify

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listen opens a unixgram socket and points NOTIFY_SOCKET at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

func read(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 256)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	conn := listen(t)
	n := FromEnv()
	if !n.Enabled() {
		t.Fatal("not enabled with NOTIFY_SOCKET set")
	}
	for _, tc := range []struct {
		send func() error
		want string
	}{
		{n.Ready, "READY=1"},
		{n.Stopping, "STOPPING=1"},
		{func() error { return n.Notify("STATUS=4 leases") }, "STATUS=4 leases"},
	} {
		if err := tc.send(); err != nil {
			t.Fatal(err)
		}
		if got := read(t, conn); got != tc.want {
			t.Fatalf("got %q, want %q", got, tc.want)
		}
	}
}

func TestDisabledIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n.Enabled() || n.Ready() != nil || n.RunWatchdog(context.Background(), nil) != nil {
		t.Fatal("disabled notifier did something")
	}
}

func TestWatchdogInterval(t *testing.T) {
	tests := []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0},
		{"bad", "", 0},
		{"2000000", "", time.Second},
		{"2000000", strconv.Itoa(os.Getpid()), time.Second},
		{"2000000", "1", 0},
	}
	for _, tt := range tests {
		t.Setenv("WATCHDOG_USEC", tt.usec)
		t.Setenv("WATCHDOG_PID", tt.pid)
		if got := WatchdogInterval(); got != tt.want {
			t.Errorf("WATCHDOG_USEC=%q PID=%q: %v, want %v", tt.usec, tt.pid, got, tt.want)
		}
	}
}

func TestRunWatchdogPingsOnlyWhileHealthy(t *testing.T) {
	conn := listen(t)
	t.Setenv("WATCHDOG_USEC", "20000") // ping every 10 ms
	t.Setenv("WATCHDOG_PID", "")
	var mu sync.Mutex
	healthy := true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- FromEnv().RunWatchdog(ctx, func() error {
			mu.Lock()
			defer mu.Unlock()
			if !healthy {
				return errors.New("sick")
			}
			return nil
		})
	}()
	if got := read(t, conn); got != "WATCHDOG=1" {
		t.Fatalf("got %q", got)
	}
	mu.Lock()
	healthy = false
	mu.Unlock()
	// Drain pings already queued, then expect silence.
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 64)
	for {
		if _, err := conn.Read(buf); err != nil {
			break
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := conn.Read(buf); err == nil {
		t.Fatalf("pinged while unhealthy: %q", buf[:n])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
