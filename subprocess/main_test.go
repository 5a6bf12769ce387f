package subprocess

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// fakeChildEnv selects a scripted child scenario: the test binary re-executes
// itself as the record processor and TestMain runs the scenario instead of
// the tests.
const fakeChildEnv = "MULTILANGD_FAKE_CHILD"

func TestMain(m *testing.M) {
	if sc := os.Getenv(fakeChildEnv); sc != "" {
		os.Exit(fakeChild(sc))
	}
	goleak.VerifyTestMain(m)
}

// fakeCommand is the executableName that runs this test binary as a child.
func fakeCommand(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(exe, " ") {
		t.Fatalf("test binary path %q contains a space", exe)
	}
	return exe + " -test.run=^$"
}

// fakeChild is the scripted record processor. It speaks the protocol like
// the official clients ("\n" + json + "\n" framing) and misbehaves as the
// scenario asks. Environment knobs: FAKE_CHECKPOINTS (checkpoints per
// processRecords), FAKE_PIDFILE (where a forked grandchild's pid goes).
func fakeChild(scenario string) int {
	if scenario == "sleeper" {
		time.Sleep(time.Hour)
		return 0
	}
	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	send := func(s string) {
		out.WriteString("\n" + s + "\n")
		out.Flush()
	}
	readLine := func() (string, bool) {
		l, err := in.ReadString('\n')
		if err != nil {
			return "", false
		}
		return strings.TrimSuffix(l, "\n"), true
	}
	status := func(a string) { send(`{"action":"status","responseFor":"` + a + `"}`) }
	checkpoint := func(seq string) (string, bool) {
		send(`{"action":"checkpoint","sequenceNumber":` + seq + `,"subSequenceNumber":null}`)
		return readLine()
	}
	forkGrandchild := func() {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), fakeChildEnv+"=sleeper")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr // holds the pipes open
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "fork:", err)
			os.Exit(9)
		}
		if f := os.Getenv("FAKE_PIDFILE"); f != "" {
			_ = os.WriteFile(f, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
		}
	}
	if scenario == "ignoreterm" {
		signal.Ignore(syscall.SIGTERM)
	}
	for {
		line, ok := readLine()
		if !ok {
			if scenario == "grandchild-at-close" {
				forkGrandchild()
			}
			if scenario == "exit3-at-close" {
				return 3
			}
			if scenario == "slow-exit-at-close" {
				time.Sleep(3 * time.Second)
				return 0
			}
			if scenario == "ignore-eof" {
				signal.Ignore(syscall.SIGTERM)
				time.Sleep(time.Hour)
			}
			return 0
		}
		if line == "" {
			fmt.Fprintln(os.Stderr, "fake child: blank line received")
			return 7 // the real clients crash on blank lines
		}
		if scenario == "relay" { // benchmarks: answer at once, parse nothing
			status(line[len(`{"action":"`) : strings.IndexByte(line[len(`{"action":"`):], '"')+len(`{"action":"`)])
			continue
		}
		// Cheap parse (lines can be 20 MB): the daemon always writes the
		// action first; count records by their trailing action key.
		const prefix = `{"action":"`
		end := strings.IndexByte(line[min(len(prefix), len(line)):], '"')
		if !strings.HasPrefix(line, prefix) || end < 0 || !json.Valid([]byte(line)) {
			fmt.Fprintln(os.Stderr, "fake child: bad line:", line)
			return 8
		}
		a := line[len(prefix) : len(prefix)+end]
		nrec := strings.Count(line, `"action":"record"}`)
		switch scenario {
		case "noise":
			// Everything Java skips, then a \r\n-terminated status.
			out.WriteString("hello from print()\n\n   \n\t\n[1,2]\n{\"no\":\"action\"}\n{\"action\":\"Status\",\"responseFor\":\"" + a + "\"}\n")
			out.WriteString("{'action':'status'}\nnot json {\n{\"action\":\"initialize\",\"shardId\":\"x\"}\n{\"action\":\"bogus\"}\n")
			out.WriteString("partial line without newline then\r")
			out.WriteString(`  {"action": "status", "responseFor": "` + a + `"}  trailing garbage` + "\r\n")
			out.Flush()
		case "cr-terminated":
			// Old-Mac line ends: Java's readLine ends a line at a lone "\r".
			// The status is the last thing written before the child waits.
			out.WriteString("noise\r\r{\"action\":\"status\",\"responseFor\":\"" + a + "\"}\r")
			out.Flush()
		case "unknown-key":
			send(`{"action":"status","responseFor":"` + a + `","extra":1}`)
		case "legacy-checkpoint":
			send(`{"action":"checkpoint","checkpoint":"123"}`)
			readLine()
		case "wrong-response":
			send(`{"action":"status","responseFor":"processRecords"}`)
		case "no-response-for":
			send(`{"action":"status"}`)
		case "eof-mid-action":
			return 0
		case "exit3-mid-action":
			fmt.Fprintln(os.Stderr, "fake child: giving up")
			return 3
		case "close-stdout":
			os.Stdout.Close()
			time.Sleep(time.Hour)
		case "hang", "ignoreterm":
			if a == "initialize" {
				status(a)
				continue
			}
			time.Sleep(time.Hour)
		case "late-checkpoint":
			// A checkpoint request after the status: Java handles it during
			// the next action, with that action's checkpointer.
			status(a)
			if a == "processRecords" {
				send(`{"action":"checkpoint","sequenceNumber":"5"}`)
				next, _ := readLine()  // the next action (leaseLost) ...
				reply, _ := readLine() // ... then the reply
				fmt.Fprintln(os.Stderr, "late reply:", reply)
				status(strings.TrimSuffix(strings.TrimPrefix(next, `{"action":"`), `"}`))
			}
		case "flood-after-status":
			// 10 MB on stdout between actions: must not block the child.
			status(a)
			if a == "processRecords" {
				chunk := strings.Repeat("y", 1023) + "\n"
				for i := 0; i < 10<<10; i++ {
					out.WriteString(chunk)
				}
				out.Flush()
				fmt.Fprintln(os.Stderr, "flood done")
			}
		case "slow-checkpoints":
			// Checkpoints every 300ms for 2.4s: each message restarts the timeout.
			if a == "processRecords" {
				for i := 0; i < 8; i++ {
					time.Sleep(300 * time.Millisecond)
					checkpoint("null")
				}
			}
			status(a)
		case "grandchild-mid-action":
			if a == "processRecords" {
				forkGrandchild()
				return 0
			}
			status(a)
		case "stdout-flood":
			// Write 10 MB to stdout before reading the rest of stdin: the
			// daemon must keep reading while it writes.
			if a == "processRecords" {
				chunk := strings.Repeat("x", 1023) + "\n"
				for i := 0; i < 10<<10; i++ {
					out.WriteString(chunk)
				}
				out.Flush()
			}
			status(a)
		case "stderr-flood":
			if a == "processRecords" {
				w := bufio.NewWriter(os.Stderr)
				chunk := strings.Repeat("e", 1023) + "\n"
				for i := 0; i < 10<<10; i++ {
					w.WriteString(chunk)
				}
				w.WriteString(strings.Repeat("L", 200<<10) + "\n") // one very long line
				w.Flush()
			}
			status(a)
		default: // "good", "grandchild-at-close", "exit3-at-close"
			switch a {
			case "processRecords":
				n, _ := strconv.Atoi(os.Getenv("FAKE_CHECKPOINTS"))
				if n == 0 && nrec > 0 {
					n = 1
				}
				for i := 0; i < n; i++ {
					reply, ok := checkpoint(`"` + strconv.Itoa(i+1) + `"`)
					if !ok || !strings.Contains(reply, `"sequenceNumber":"`+strconv.Itoa(i+1)+`"`) {
						fmt.Fprintln(os.Stderr, "fake child: bad checkpoint reply:", reply)
						return 10
					}
				}
				fmt.Fprintf(os.Stderr, "processed %d records\n", nrec)
			case "shardEnded", "shutdownRequested", "initialize", "leaseLost":
				reply, _ := checkpoint("null")
				fmt.Fprintln(os.Stderr, "checkpoint reply:", reply)
			}
			status(a)
		}
	}
}
