// Package dist holds the packaging scripts (build.sh, wheel.py, npm/,
// Dockerfile); this test builds every artefact with build.sh and installs
// them the way users do, offline.
package dist

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

var platforms = []string{"linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64"}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// command runs name in dir and returns its combined output; env is added
// to the test's environment.
func command(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// artefacts reads SHA256SUMS, checks every checksum and returns file -> sum.
func artefacts(t *testing.T, out string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, file, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", sc.Text())
		}
		b, err := os.ReadFile(filepath.Join(out, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: sha256 %x, SHA256SUMS says %s", file, got, sum)
		}
		sums[file] = sum
	}
	return sums
}

// one returns the single artefact matching pattern.
func one(t *testing.T, sums map[string]string, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	var found []string
	for f := range sums {
		if re.MatchString(f) {
			found = append(found, f)
		}
	}
	if len(found) != 1 {
		t.Fatalf("artefacts matching %s: %q", pattern, found)
	}
	return found[0]
}

// Show: `make dist` builds static binaries for linux and darwin on amd64 and
// arm64 and wraps them as tarballs, wheels, an npm package and a container
// definition, with checksums; the wheel and the npm package install offline
// and run; a second build gives the same bytes.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds four binaries; run by make dist-check")
	}
	root := repoRoot(t)
	out := t.TempDir()
	listing := command(t, root, nil, "dist/build.sh", out)
	t.Logf("dist/build.sh:\n%s", listing)
	sums := artefacts(t, out)
	version := strings.TrimSpace(command(t, root, nil, "dist/version.sh", "go"))
	host := runtime.GOOS + "_" + runtime.GOARCH

	t.Run("binaries", func(t *testing.T) {
		for _, p := range platforms {
			checkStatic(t, filepath.Join(out, "bin", p, "multilangd"), p)
			one(t, sums, `^multilangd_.*_`+p+`\.tar\.gz$`)
		}
	})
	t.Run("tarball", func(t *testing.T) {
		name := one(t, sums, `_`+host+`\.tar\.gz$`)
		files := untar(t, filepath.Join(out, name))
		bin, err := os.ReadFile(filepath.Join(out, "bin", host, "multilangd"))
		if err != nil {
			t.Fatal(err)
		}
		prefix := strings.TrimSuffix(name, ".tar.gz") + "/"
		if got := files[prefix+"multilangd"]; !bytes.Equal(got.data, bin) || got.mode != 0o755 {
			t.Errorf("%s: multilangd differs from bin/%s or mode %o", name, host, got.mode)
		}
		if _, ok := files[prefix+"README.md"]; !ok {
			t.Errorf("%s has no README.md", name)
		}
	})
	t.Run("wheels", func(t *testing.T) {
		for _, tag := range []string{"manylinux_2_17_x86_64", "manylinux_2_17_aarch64", "macosx_12_0_x86_64", "macosx_12_0_arm64"} {
			checkWheel(t, filepath.Join(out, one(t, sums, `-py3-none-.*`+tag+`.*\.whl$`)))
		}
	})
	t.Run("pip install --no-index", func(t *testing.T) {
		if host != "linux_amd64" && host != "linux_arm64" {
			t.Skipf("no wheel install check on %s", host)
		}
		wheel := filepath.Join(out, one(t, sums, `manylinux_2_17_`+map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]+`.*\.whl$`))
		venv := filepath.Join(t.TempDir(), "venv")
		command(t, root, nil, "python3", "-m", "venv", venv)
		command(t, root, nil, filepath.Join(venv, "bin", "pip"), "install", "--no-index", "--disable-pip-version-check", wheel)
		// The console entry is on PATH: run it by name.
		path := "PATH=" + filepath.Join(venv, "bin") + ":" + filepath.Join(root, "samples", "python") + ":" + os.Getenv("PATH")
		checkRuns(t, root, []string{path}, version, "sh", "-c", `exec multilangd "$@"`, "multilangd")
		if got := command(t, root, nil, filepath.Join(venv, "bin", "python"), "-m", "multilangd", "version"); !strings.Contains(got, version) {
			t.Errorf("python -m multilangd version = %q", got)
		}
	})
	t.Run("npm install --offline", func(t *testing.T) {
		proj := t.TempDir()
		command(t, proj, nil, "npm", "init", "-y")
		command(t, proj, nil, "npm", "install", "--offline", "--no-audit", "--no-fund", filepath.Join(out, one(t, sums, `^multilangd-.*\.tgz$`)))
		launcher := filepath.Join(proj, "node_modules", ".bin", "multilangd")
		path := "PATH=" + filepath.Join(root, "samples", "python") + ":" + os.Getenv("PATH")
		checkRuns(t, root, []string{path}, version, launcher)
		// The launcher passes the exit status through.
		cmd := exec.Command(launcher, "validate", "-p", "/nonexistent.properties")
		if err := cmd.Run(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
			t.Errorf("launcher exit status for a bad file: %v, want 1", err)
		}
		bin := strings.TrimSpace(command(t, proj, nil, "node", "-p", "require('multilangd').binaryPath"))
		want := filepath.Join("vendor", runtime.GOOS+"-"+map[string]string{"amd64": "x64", "arm64": "arm64"}[runtime.GOARCH], "multilangd")
		if !strings.HasSuffix(bin, want) {
			t.Errorf("binaryPath %s, want …/%s", bin, want)
		}
	})
	t.Run("container", func(t *testing.T) { checkDockerfile(t, filepath.Join(root, "dist", "Dockerfile"), out) })
	t.Run("reproducible", func(t *testing.T) {
		again := t.TempDir() // another path: -trimpath keeps it out of the binary
		command(t, root, []string{"PLATFORMS=" + host}, "dist/build.sh", again)
		sums2 := artefacts(t, again)
		for file, sum := range sums2 {
			if strings.HasSuffix(file, ".tgz") {
				continue // the npm package of a one-platform build carries one binary
			}
			if sums[file] != sum {
				t.Errorf("%s: second build %s, first %s", file, sum, sums[file])
			}
		}
		if len(sums2) != 4 {
			t.Errorf("second build made %d artefacts, want 4 (binary, tarball, wheel, npm)", len(sums2))
		}
	})
}

// checkRuns runs `multilangd version` and `multilangd validate -p
// samples/python/sample.properties` through argv (the sample's
// executableName must be on PATH in env).
func checkRuns(t *testing.T, root string, env []string, version string, argv ...string) {
	t.Helper()
	run := func(args ...string) string {
		return command(t, root, env, argv[0], append(argv[1:len(argv):len(argv)], args...)...)
	}
	if got := run("version"); !strings.Contains(got, "multilangd "+version+" (") {
		t.Errorf("%s version = %q, want %s", argv, got, version)
	}
	got := run("validate", "-p", "samples/python/sample.properties")
	if !strings.Contains(got, "OK: samples/python/sample.properties is valid") {
		t.Errorf("%s validate:\n%s", argv, got)
	}
}

// checkStatic checks the binary's format and architecture, and that a Linux
// binary has no dynamic loader.
func checkStatic(t *testing.T, path, platform string) {
	t.Helper()
	goos, goarch, _ := strings.Cut(platform, "_")
	switch goos {
	case "linux":
		f, err := elf.Open(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer f.Close()
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
		if f.Machine != want {
			t.Errorf("%s: machine %v, want %v", path, f.Machine, want)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked (%v)", path, p.Type)
			}
		}
	case "darwin":
		f, err := macho.Open(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer f.Close()
		want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
		if f.Cpu != want {
			t.Errorf("%s: cpu %v, want %v", path, f.Cpu, want)
		}
	}
}

// checkWheel checks the wheel's RECORD hashes, its tags against its name,
// and that the binary is an executable script.
func checkWheel(t *testing.T, path string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string][]byte{}
	modes := map[string]os.FileMode{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = b
		modes[f.Name] = f.Mode()
	}
	base := filepath.Base(path)
	parts := strings.Split(strings.TrimSuffix(base, ".whl"), "-")
	dist := parts[0] + "-" + parts[1]
	record, ok := files[dist+".dist-info/RECORD"]
	if !ok {
		t.Fatalf("%s: no RECORD", base)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(record)), "\n") {
		f := strings.Split(line, ",")
		listed[f[0]] = true
		if f[1] == "" {
			continue // RECORD itself
		}
		sum := sha256.Sum256(files[f[0]])
		if want := "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:]); f[1] != want || f[2] != fmt.Sprint(len(files[f[0]])) {
			t.Errorf("%s: RECORD %s, content %s %d", base, line, want, len(files[f[0]]))
		}
	}
	for name := range files {
		if !listed[name] {
			t.Errorf("%s: %s not in RECORD", base, name)
		}
	}
	var tags []string
	for _, line := range strings.Split(string(files[dist+".dist-info/WHEEL"]), "\n") {
		if tag, ok := strings.CutPrefix(line, "Tag: py3-none-"); ok {
			tags = append(tags, tag)
		}
	}
	if got := strings.Join(tags, "."); got != parts[4] {
		t.Errorf("%s: WHEEL tags %s, file name says %s", base, got, parts[4])
	}
	script := dist + ".data/scripts/multilangd"
	if len(files[script]) < 1<<20 || modes[script].Perm() != 0o755 {
		t.Errorf("%s: %s size %d mode %v", base, script, len(files[script]), modes[script])
	}
}

type tarFile struct {
	data []byte
	mode int64
}

func untar(t *testing.T, path string) map[string]tarFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]tarFile{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = tarFile{data: b, mode: h.Mode}
	}
}

// checkDockerfile checks what can be checked without docker: every file
// COPYed from the build context exists in the dist output for amd64 and
// arm64, the image runs as a non-root user, and tini is PID 1.
func checkDockerfile(t *testing.T, path, out string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var user, entrypoint string
	copies := 0
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch fields[0] {
		case "USER":
			user = fields[1]
		case "ENTRYPOINT":
			entrypoint = strings.Join(fields[1:], " ")
		case "COPY":
			if strings.HasPrefix(fields[1], "--from=") {
				continue
			}
			for _, arch := range []string{"amd64", "arm64"} {
				src := strings.NewReplacer("${TARGETOS}", "linux", "${TARGETARCH}", arch).Replace(fields[1])
				if _, err := os.Stat(filepath.Join(out, src)); err != nil {
					t.Errorf("Dockerfile COPY %s: %v", src, err)
				}
				copies++
			}
		}
	}
	if copies == 0 {
		t.Error("Dockerfile copies nothing from the dist output")
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("Dockerfile USER %q: want a non-root user", user)
	}
	if !strings.HasPrefix(entrypoint, `["/usr/bin/tini", "--", `) {
		t.Errorf("ENTRYPOINT %s: want tini as PID 1", entrypoint)
	}
	if !strings.Contains(string(b), "COPY --from=tini /usr/bin/tini-static /usr/bin/tini") {
		t.Error("Dockerfile does not install tini-static")
	}
}

// Every file the npm package.json names (main, bin) is tracked by git: the
// packaging test builds from the working tree, so a launcher that exists
// only locally (an ignore rule matching bin/) would pass here and be missing
// from every fresh clone.
func TestNpmFilesTracked(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "dist", "npm", "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Main string            `json:"main"`
		Bin  map[string]string `json:"bin"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatal(err)
	}
	files := []string{pkg.Main}
	for _, f := range pkg.Bin {
		files = append(files, f)
	}
	for _, f := range files {
		command(t, root, nil, "git", "ls-files", "--error-unmatch", filepath.Join("dist", "npm", f))
	}
}
