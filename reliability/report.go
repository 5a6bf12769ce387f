package reliability

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Row is one scenario's line of docs/reliability.md.
type Row struct {
	Scenario   string
	Injected   string
	Produced   int
	Delivered  int
	Duplicated int
	Recover    time.Duration
	Left       int // processes left after the daemons stopped
	Passed     bool
	Command    string
}

// Sample is one soak measurement of a daemon.
type Sample struct {
	At         time.Duration // since the soak started
	Daemon     string
	RSSKiB     int64
	Goroutines int // -1 when unknown
	FDs        int
	Threads    int
}

// KeptRows returns the table lines of a previous report (old) for the
// scenarios not in rows, so that running a subset (RUN=...) updates only
// its own rows.
func KeptRows(old string, rows []Row) []string {
	ran := map[string]bool{}
	for _, r := range rows {
		ran[r.Scenario] = true
	}
	var kept []string
	for _, l := range strings.Split(old, "\n") {
		if !strings.HasPrefix(l, "| Test") {
			continue
		}
		name := strings.TrimSpace(strings.Split(l, "|")[1])
		if !ran[name] {
			kept = append(kept, l)
		}
	}
	return kept
}

// WriteReport renders docs/reliability.md: the scenario table (rows, plus
// kept lines from a previous report) and, when there are samples, the soak
// series.
func WriteReport(w io.Writer, header string, rows []Row, kept []string, samples []Sample) error {
	lines := append([]string(nil), kept...)
	for _, r := range rows {
		res := "pass"
		if !r.Passed {
			res = "**FAIL**"
		}
		rec := "–"
		if r.Recover > 0 {
			rec = r.Recover.Round(100 * time.Millisecond).String()
		}
		lines = append(lines, fmt.Sprintf("| %s | %s | %d | %d | %d | %s | %d | %s | `%s` |",
			r.Scenario, r.Injected, r.Produced, r.Delivered, r.Duplicated, rec, r.Left, res, r.Command))
	}
	sort.Strings(lines)
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("\n| scenario | injected | produced | delivered | duplicated | max recovery | processes left | result | reproduce |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---|---|\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if len(samples) > 0 {
		b.WriteString("\n## Soak series\n\n| t | daemon | RSS KiB | goroutines | fds | threads |\n|---:|---|---:|---:|---:|---:|\n")
		for _, s := range samples {
			g := "–"
			if s.Goroutines >= 0 {
				g = fmt.Sprint(s.Goroutines)
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %d | %d |\n", s.At.Round(time.Second), s.Daemon, s.RSSKiB, g, s.FDs, s.Threads)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
