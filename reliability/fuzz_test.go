//go:build reliability

package reliability

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// Bad input, fuzzed: the properties, protocol-line and de-aggregation
// fuzzers (the targets `make fuzz` runs) for a bounded time each; a crash
// fails the scenario and leaves its input under the package's testdata/fuzz.
func TestFuzzers(t *testing.T) {
	for _, fz := range []struct{ pkg, target string }{
		{"./properties", "FuzzLoad"},
		{"./subprocess", "FuzzDecodeLine"},
		{"./retrieval/kpl", "FuzzDeaggregate"},
	} {
		t.Run(fz.target, func(t *testing.T) {
			const fuzzTime = 15 * time.Second
			cmd := exec.Command("go", "test", fz.pkg, "-run", "^$", "-fuzz", "^"+fz.target+"$", "-fuzztime", fuzzTime.String(), "-parallel", "1")
			cmd.Dir = testenv.RepoRoot()
			out, err := cmd.CombinedOutput()
			execs := lastExecs(string(out))
			addRow(Row{
				Scenario: t.Name(), Injected: fz.target + " for " + fuzzTime.String() + " (" + execs + " inputs)",
				Passed: err == nil, Command: "go test " + fz.pkg + " -run '^$' -fuzz '^" + fz.target + "$' -fuzztime " + fuzzTime.String(),
			})
			if err != nil {
				t.Fatalf("%s: %v\n%s", fz.target, err, out)
			}
			t.Logf("%s: %s inputs", fz.target, execs)
		})
	}
}

var execsRE = regexp.MustCompile(`execs: (\d+)`)

func lastExecs(out string) string {
	m := execsRE.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return "?"
	}
	return strings.TrimSpace(m[len(m)-1][1])
}
