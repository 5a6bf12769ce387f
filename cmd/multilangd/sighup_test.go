package main

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// buildBinary builds multilangd into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := t.TempDir() + "/multilangd"
	if err := testenv.BuildBinary(bin, "./cmd/multilangd", false); err != nil {
		t.Fatal(err)
	}
	return bin
}

// A SIGHUP while the start-up checks wait for AWS is a reload request, not
// the end of the process: a SIGTERM afterwards still stops it with exit 0.
func TestSIGHUPDuringStartup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	// An endpoint that accepts connections and never answers: the start-up
	// stream check waits on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() { // ends when ln is closed
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		for len(accepted) > 0 {
			(<-accepted).Close()
		}
	}()
	url := "http://" + ln.Addr().String()
	props := writeFile(t, "app.properties", "executableName = /bin/cat\napplicationName = app\nstreamName = s\n"+
		"AwsCredentialsProvider = DefaultCredentialsProvider\nregionName = us-east-1\nmetricsLevel = NONE\n"+
		"kinesisEndpoint = "+url+"\ndynamoDBEndpoint = "+url+"\n")
	cmd := exec.Command(bin, "-p", props)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_EC2_METADATA_DISABLED=true")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	lines := make(chan string, 100)
	go func() { // ends at the process's EOF
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	select {
	case c := <-accepted: // the stream check is in flight
		accepted <- c
	case <-time.After(60 * time.Second):
		t.Fatal("the start-up check never connected")
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var out []string
	for l := range lines {
		out = append(out, l)
		if strings.Contains(l, "SIGHUP: re-reading the properties file") {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v (process gone after SIGHUP?)\n%s", err, strings.Join(out, "\n"))
	}
	for l := range lines {
		out = append(out, l)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d (%v) after SIGHUP then SIGTERM during start-up, want 0\n%s", code, cmd.ProcessState, strings.Join(out, "\n"))
	}
}
