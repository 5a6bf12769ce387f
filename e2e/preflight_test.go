package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// What can be known at start-up fails the start: exit 1 with one error that
// names the culprit, instead of per-shard retries.
func TestPreflightFailsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon against the emulators")
	}
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 1)
	missingExe := filepath.Join(e.dir, "no-such-processor")
	tests := []struct {
		name  string
		extra map[string]string
		env   []string
		want  string
	}{
		{"missing executable", map[string]string{"executableName": missingExe + " --flag"},
			nil, `executableName: "` + missingExe + ` --flag" does not resolve to an executable file`},
		{"missing stream", map[string]string{"streamName": "no-such-stream"},
			nil, `stream: stream "no-such-stream" does not exist`},
		{"credentials that cannot sign", nil,
			[]string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="}, "credentials: Kinesis client: failed to refresh cached credentials, no provider in the credentials chain EnvironmentVariableCredentialsProvider yielded credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			props := e.props(strings.ReplaceAll(tt.name, " ", "-"), tt.extra)
			d := e.startDaemon(tt.name, props, filepath.Join(e.dir, "out.jsonl"), tt.env...)
			select {
			case <-d.done:
			case <-time.After(60 * time.Second):
				d.dumpLog()
				t.Fatal("daemon still running")
			}
			if code := d.cmd.ProcessState.ExitCode(); code != 1 {
				d.dumpLog()
				t.Fatalf("exit code %d, want 1", code)
			}
			b, _ := os.ReadFile(d.log)
			if !strings.Contains(string(b), tt.want) {
				t.Fatalf("log lacks %q:\n%s", tt.want, b)
			}
			if strings.Contains(string(b), "scheduler started") {
				t.Fatalf("the scheduler started:\n%s", b)
			}
		})
	}
}
