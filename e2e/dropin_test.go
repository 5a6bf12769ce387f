package e2e

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// Show: the real aws-kcl launcher, `kcl-bootstrap --java <multilangd> -p
// app.properties -e`, runs the Node sample against the emulators end to
// end: it builds the Java command line (-cp <jars> MainClass
// --properties-file …) and multilangd runs it unchanged. The jars of the
// launcher's pom.xml exist (empty) in --jar-path, so nothing is fetched.
func TestKclBootstrapLaunchesMultilangd(t *testing.T) {
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 2)
	ids := e.put(putOptions{n: 2000, aggEvery: 10, aggSize: 5})
	props := e.adaptSample(filepath.Join(testenv.RepoRoot(), "samples", "node", "sample.properties"))
	jars := emptyPomJars(t, filepath.Join(testenv.NodeModules(), "aws-kcl", "pom.xml"))
	bootstrap := filepath.Join(testenv.NodeModules(), "aws-kcl", "bin", "kcl-bootstrap")
	out := filepath.Join(e.dir, "out.jsonl")

	d := e.startCommand("kcl-bootstrap", out, []string{"node", bootstrap, "--java", binDaemon, "-p", props, "-c", jars, "-e"})
	got := waitDeliveredOnce(t, d, out, ids, 2, 120*time.Second)
	waitFor(t, 30*time.Second, "checkpoints at each shard's last record",
		func() bool { return e.checkpointedAtLastDelivered(byShard(got)) }, d)

	// kcl-bootstrap does not forward signals: stop multilangd, its child,
	// the way a process manager would, and the launcher exits with it.
	pid := childProcess(t, d.cmd.Process.Pid, binDaemon)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(40 * time.Second):
		t.Fatal("kcl-bootstrap did not exit within 40s after multilangd got SIGTERM")
	}
	for _, l := range e.leases() {
		if l.Owner != "" {
			t.Errorf("lease %s still owned by %q after a graceful stop", l.Key, l.Owner)
		}
	}

	logText, err := os.ReadFile(d.log)
	if err != nil {
		t.Fatal(err)
	}
	log := string(logText)
	for _, want := range []string{
		binDaemon + " -cp ", // the command line kcl-bootstrap printed
		"software.amazon.kinesis.multilang.MultiLangDaemon --properties-file " + props,
		"Java launcher arguments ignored",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, binDaemon+" -cp ") || strings.Contains(line, "Java launcher arguments ignored") {
			t.Logf("%.400s…", line)
		}
	}
	if strings.Contains(log, "duplicate key") {
		t.Errorf("the adapted sample.properties repeats a key")
	}
	if n := strings.Count(log, "Java launcher arguments ignored"); n != 1 {
		t.Errorf("launcher notice logged %d times, want 1", n)
	}
	entries, err := os.ReadDir(jars)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		if info, err := de.Info(); err != nil || info.Size() != 0 {
			t.Errorf("%s changed: kcl-bootstrap fetched a jar (size %d, %v)", de.Name(), info.Size(), err)
		}
	}
	if t.Failed() {
		d.dumpLog()
	}
}

// adaptSample writes sample.properties: the sample file with the keys the
// e2e tests set (stream, endpoints, credentials provider, short intervals,
// the sample's absolute path) replaced by theirs.
func (e *env) adaptSample(sample string) string {
	e.t.Helper()
	overrides, err := os.ReadFile(e.props("overrides", nil))
	if err != nil {
		e.t.Fatal(err)
	}
	set := map[string]bool{}
	for _, line := range strings.Split(string(overrides), "\n") {
		if k, _, ok := strings.Cut(line, " = "); ok {
			set[k] = true
		}
	}
	b, err := os.ReadFile(sample)
	if err != nil {
		e.t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(b), "\n") {
		key := strings.TrimSpace(line[:strings.IndexAny(line+"=", "=:")])
		if !set[key] {
			kept = append(kept, line)
		}
	}
	p := filepath.Join(e.dir, "sample.properties")
	if err := os.WriteFile(p, []byte(strings.Join(kept, "\n")+"\n"+string(overrides)), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// emptyPomJars creates, in a new directory, an empty file for every jar the
// pom lists (kcl-bootstrap names them <artifactId>-<version>.jar and fetches
// only the missing ones) and returns the directory.
func emptyPomJars(t *testing.T, pomPath string) string {
	t.Helper()
	b, err := os.ReadFile(pomPath)
	if err != nil {
		t.Fatal(err)
	}
	var pom struct {
		Properties struct {
			Items []struct {
				XMLName xml.Name
				Value   string `xml:",chardata"`
			} `xml:",any"`
		} `xml:"properties"`
		Dependencies []struct {
			ArtifactID string `xml:"artifactId"`
			Version    string `xml:"version"`
		} `xml:"dependencies>dependency"`
	}
	if err := xml.Unmarshal(b, &pom); err != nil {
		t.Fatalf("%s: %v", pomPath, err)
	}
	props := map[string]string{}
	for _, p := range pom.Properties.Items {
		props["${"+p.XMLName.Local+"}"] = strings.TrimSpace(p.Value)
	}
	dir := t.TempDir()
	for _, dep := range pom.Dependencies {
		v := strings.TrimSpace(dep.Version)
		if pv, ok := props[v]; ok {
			v = pv
		}
		name := fmt.Sprintf("%s-%s.jar", strings.TrimSpace(dep.ArtifactID), v)
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if len(pom.Dependencies) < 10 {
		t.Fatalf("%s lists %d dependencies; the pom format changed?", pomPath, len(pom.Dependencies))
	}
	return dir
}

// childProcess returns the pid of parent's child running exe (from /proc).
func childProcess(t *testing.T, parent int, exe string) int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid …; comm may contain spaces and parentheses.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[1] != strconv.Itoa(parent) {
			continue
		}
		if target, err := os.Readlink(filepath.Join(dir, "exe")); err == nil && target == exe {
			pid, _ := strconv.Atoi(filepath.Base(dir))
			return pid
		}
	}
	t.Fatalf("no child of pid %d runs %s", parent, exe)
	return 0
}
