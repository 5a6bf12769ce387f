package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// SIGHUP with a changed executableName: every shard gets the new child, one
// at a time, without any lease changing owner and without losing a record;
// a changed key that cannot apply at runtime is named in a warning; under
// systemd the daemon says RELOADING=1, then READY=1.
func TestReloadOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon against the emulators")
	}
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 2)
	ids := e.put(putOptions{n: 200})

	// The new processor: the same program, writing to another file.
	out2 := filepath.Join(e.dir, "new-child.jsonl")
	v2 := filepath.Join(e.dir, "processor-v2.sh")
	script := fmt.Sprintf("#!/bin/sh\nKCL_SAMPLE_OUTPUT=%s exec %s\n", out2, binAggChild)
	if err := os.WriteFile(v2, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(e.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var notes []string
	go func() { // ends when conn is closed
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			notes = append(notes, string(buf[:n]))
			mu.Unlock()
		}
	}()

	base := map[string]string{"executableName": binAggChild}
	props := e.props("app", base)
	out1 := filepath.Join(e.dir, "old-child.jsonl")
	d := e.startDaemon("daemon", props, out1, "AGGCHILD_MODE=normal", "NOTIFY_SOCKET="+sock)
	waitDeliveredOnce(t, d, out1, ids, 2, 90*time.Second)
	owner := "worker-app"
	before := e.leases()
	for _, l := range before {
		if l.Owner != owner {
			t.Fatalf("lease %s owned by %q before the reload", l.Key, l.Owner)
		}
	}

	// Rewrite the file (same path) and send SIGHUP.
	e.props("app", map[string]string{"executableName": v2, "maxLeasesForWorker": "7"})
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the reload to finish", func() bool {
		return strings.Contains(logOf(d), "reload done: every shard runs the new child")
	}, d)
	log := logOf(d)
	if !strings.Contains(log, "changed keys cannot take effect at runtime") || !strings.Contains(log, "maxLeasesForWorker") {
		t.Fatalf("no warning naming maxLeasesForWorker:\n%s", grepLines(log, "reload"))
	}
	if n := strings.Count(log, "child restarted for the reload"); n != 2 {
		t.Fatalf("%d shards restarted, want 2", n)
	}

	more := e.put(putOptions{start: 200, n: 200})
	waitFor(t, 90*time.Second, "the new records from the new child", func() bool {
		return len(missing(more, readOutput(t, out2))) == 0
	}, d)
	newer := readOutput(t, out2)
	if n := len(byShard(newer)); n != 2 {
		t.Fatalf("the new child served %d shards, want 2", n)
	}
	if m := missing(append(ids, more...), readOutput(t, out1), newer); len(m) > 0 {
		t.Fatalf("%d records lost, e.g. %v", len(m), m[:min(5, len(m))])
	}
	for _, r := range readOutput(t, out1) {
		for _, id := range more {
			if r.payload() == id {
				t.Fatalf("the old child delivered %s after the reload", id)
			}
		}
	}
	for _, l := range e.leases() {
		if l.Owner != owner {
			t.Fatalf("lease %s changed owner to %q", l.Key, l.Owner)
		}
	}
	if strings.Contains(logOf(d), "lease lost") || strings.Contains(logOf(d), "releasing lease") {
		t.Fatalf("a lease was lost or released during the reload:\n%s", grepLines(logOf(d), "lease"))
	}
	mu.Lock()
	all := strings.Join(notes, "|")
	mu.Unlock()
	if i, j := strings.Index(all, "RELOADING=1"), strings.LastIndex(all, "READY=1"); i < 0 || j < i {
		t.Fatalf("notifications %q: want RELOADING=1 then READY=1", all)
	}
	t.Logf("reload log:\n%s", grepLines(logOf(d), "reload"))
	if code := d.stop(40 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
