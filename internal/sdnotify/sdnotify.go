// Package sdnotify owns multilangd's side of the systemd service protocol:
// READY=1 / STOPPING=1 / STATUS= messages and the watchdog keep-alive, sent
// as datagrams to $NOTIFY_SOCKET. Outside systemd (no NOTIFY_SOCKET) every
// call is a cheap no-op, so callers need not check.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Notifier sends state changes to systemd.
type Notifier struct {
	addr string // "" = not under systemd
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET. An abstract socket name
// ("@name") is supported.
func FromEnv() *Notifier {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr != "" && addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	return &Notifier{addr: addr}
}

// Enabled reports whether a notify socket is configured.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != "" }

// Notify sends one state string, e.g. "READY=1" or "STATUS=4 shards".
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: dial %q: %w", os.Getenv("NOTIFY_SOCKET"), err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: send %q: %w", state, err)
	}
	return nil
}

// Ready tells systemd start-up finished (Type=notify).
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Stopping tells systemd a graceful stop began.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// WatchdogInterval returns half of WatchdogSec (how often to ping), or 0
// when the watchdog is off or meant for another process.
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// RunWatchdog sends WATCHDOG=1 every interval while healthy() returns nil,
// until ctx ends. A daemon that stops being healthy stops pinging, so systemd
// restarts it after WatchdogSec. It returns nil when the watchdog is off.
func (n *Notifier) RunWatchdog(ctx context.Context, healthy func() error) error {
	interval := WatchdogInterval()
	if !n.Enabled() || interval == 0 {
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if healthy != nil && healthy() != nil {
				continue
			}
			if err := n.Notify("WATCHDOG=1"); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
		}
	}
}
