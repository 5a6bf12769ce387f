package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// Under systemd (Type=notify) the daemon says READY=1 once it runs, pings the
// watchdog, and says STOPPING=1 when SIGTERM starts the graceful stop.
func TestSystemdNotify(t *testing.T) {
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 1)
	sock := filepath.Join(e.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() { // ends when conn is closed
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	props := e.props("app", nil)
	d := e.startDaemon("daemon", props, filepath.Join(e.dir, "out.jsonl"),
		"NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=1000000")

	expect := func(prefix string) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.HasPrefix(m, prefix) {
					return
				}
			case <-deadline:
				d.dumpLog()
				t.Fatalf("no %q from the daemon", prefix)
			}
		}
	}
	expect("READY=1")
	expect("WATCHDOG=1")
	if code := d.stop(40 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	expect("STOPPING=1")
}
