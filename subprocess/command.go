package subprocess

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// javaDefaultPath is what the JDK's process launcher searches when PATH is
// unset (childproc.c): the current directory first, then /bin and /usr/bin.
const javaDefaultPath = ":/bin:/usr/bin"

// SplitCommand splits an executableName value the way the Java daemon does
// (String.split(" +")): on runs of the ASCII space only, no quoting, no
// escaping, no shell. Tabs are part of a token. Empty tokens are dropped
// (Java drops trailing ones; a leading one cannot come out of a properties
// file, whose values are left-trimmed).
func SplitCommand(s string) []string {
	parts := strings.Split(s, " ")
	out := parts[:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ResolveCommand splits command with SplitCommand and resolves its program as
// Java's ProcessBuilder does: a name containing '/' is a path relative to dir
// (the daemon's working directory when dir is ""); otherwise the daemon's
// PATH is searched, where an empty element means the current directory.
// Unlike os/exec.LookPath, a hit in a '.'-relative PATH element is accepted
// on purpose (Java parity). It returns the absolute program path and the full
// argv (argv[0] as written).
func ResolveCommand(command, dir string) (path string, argv []string, err error) {
	argv = SplitCommand(command)
	if len(argv) == 0 {
		return "", nil, errors.New("empty executableName")
	}
	base := dir
	if base == "" {
		if base, err = os.Getwd(); err != nil {
			return "", nil, fmt.Errorf("working directory: %w", err)
		}
	}
	// An absolute base keeps the result independent of the child's Dir.
	if base, err = filepath.Abs(base); err != nil {
		return "", nil, fmt.Errorf("working directory: %w", err)
	}
	prog := argv[0]
	if strings.Contains(prog, "/") {
		p := prog
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		if err := checkExecutable(p); err != nil {
			return "", nil, err
		}
		return p, argv, nil
	}
	pathEnv, ok := os.LookupEnv("PATH")
	if !ok {
		pathEnv = javaDefaultPath
	}
	var firstErr error
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(base, d)
		}
		p := filepath.Join(d, prog)
		err := checkExecutable(p)
		if err == nil {
			return p, argv, nil
		}
		// Like execvp: remember a permission problem, keep searching.
		if firstErr == nil && !errors.Is(err, os.ErrNotExist) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", nil, firstErr
	}
	return "", nil, fmt.Errorf("%q: %w", prog, exec.ErrNotFound)
}

// checkExecutable reports whether p is a regular file with an execute bit.
func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s: is a directory: %w", p, os.ErrPermission)
	}
	if fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s: not executable: %w", p, os.ErrPermission)
	}
	return nil
}
