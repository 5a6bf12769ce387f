//go:build reliability && soak

package reliability

import (
	"bufio"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

var soakFor = flag.Duration("soak", 10*time.Minute, "how long TestSoak runs")

// Soak: three workers on a 4-shard stream under steady load for -soak;
// every 60 s one of w2/w3 is SIGKILLed and restarted, every 90 s a shard is
// split or two are merged. w1 runs throughout; every 10 s its RSS,
// goroutines (go_goroutines from its metrics listener), open fds and
// threads are sampled. Nothing is lost, and w1 does not grow: the last
// third of the series stays within twice the first third's maximum (plus a
// margin for goroutines and fds, which follow the leases held).
func TestSoak(t *testing.T) {
	f := newFleet(t, 4)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	w1 := f.start("w1", map[string]string{"metricsListenAddress": addr})
	others := []*daemon{f.start("w2", nil), f.start("w3", nil)}
	p := f.startProducer(20, 500*time.Millisecond)
	f.waitShardsProgress(4, 120*time.Second)

	start := time.Now()
	sample := time.NewTicker(10 * time.Second)
	defer sample.Stop()
	kill := time.NewTicker(60 * time.Second)
	defer kill.Stop()
	reshard := time.NewTicker(90 * time.Second)
	defer reshard.Stop()
	var series []Sample
	kills, reshards := 0, 0
	for time.Since(start) < *soakFor {
		select {
		case <-sample.C:
			s := sampleDaemon(w1.pid(), addr)
			s.At, s.Daemon = time.Since(start), "w1"
			series = append(series, s)
			t.Logf("sample %s: rss %d KiB, goroutines %d, fds %d, threads %d", s.At.Round(time.Second), s.RSSKiB, s.Goroutines, s.FDs, s.Threads)
		case <-kill.C:
			i := kills % 2
			w := fmt.Sprintf("w%d", i+2)
			f.fault("SIGKILL "+w+" and restart", others[i].kill, nil)
			others[i] = f.start(w, nil)
			kills++
		case <-reshard.C:
			if reshards%2 == 0 {
				f.fault("split a shard", func() { f.split(0) }, nil)
			} else {
				f.fault("merge two shards", func() { f.merge(0) }, nil)
			}
			reshards++
		}
		if w1.exited() {
			t.Fatalf("w1 exited: %v", w1.err)
		}
	}
	rowsMu.Lock()
	samples = append(samples, series...)
	rowsMu.Unlock()
	f.mu.Lock()
	f.injected = []string{fmt.Sprintf("%s of steady load: %d SIGKILL+restart of w2/w3, %d reshards; w1 sampled every 10 s", *soakFor, kills, reshards)}
	f.mu.Unlock()
	f.finish(p, 180*time.Second, noGrowth(series))
}

// noGrowth compares the last third of the series with the first third.
func noGrowth(series []Sample) func(Result, []Event) []string {
	return func(Result, []Event) []string {
		n := len(series) / 3
		if n == 0 {
			return []string{fmt.Sprintf("only %d samples", len(series))}
		}
		var maxFirst, maxLast Sample
		for i, s := range series {
			m := &maxFirst
			if i >= len(series)-n {
				m = &maxLast
			} else if i >= n {
				continue
			}
			m.RSSKiB = max(m.RSSKiB, s.RSSKiB)
			m.Goroutines = max(m.Goroutines, s.Goroutines)
			m.FDs = max(m.FDs, s.FDs)
		}
		var v []string
		if maxLast.RSSKiB > 2*maxFirst.RSSKiB {
			v = append(v, fmt.Sprintf("RSS grew from %d KiB to %d KiB", maxFirst.RSSKiB, maxLast.RSSKiB))
		}
		if maxLast.Goroutines > 2*maxFirst.Goroutines+50 {
			v = append(v, fmt.Sprintf("goroutines grew from %d to %d", maxFirst.Goroutines, maxLast.Goroutines))
		}
		if maxLast.FDs > 2*maxFirst.FDs+20 {
			v = append(v, fmt.Sprintf("open fds grew from %d to %d", maxFirst.FDs, maxLast.FDs))
		}
		return v
	}
}

// sampleDaemon reads pid's RSS and threads from /proc, its open fds, and
// go_goroutines from the metrics listener (-1 when unavailable).
func sampleDaemon(pid int, metricsAddr string) Sample {
	s := Sample{Goroutines: -1}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			fs := strings.Fields(l)
			if len(fs) < 2 {
				continue
			}
			switch fs[0] {
			case "VmRSS:":
				s.RSSKiB, _ = strconv.ParseInt(fs[1], 10, 64)
			case "Threads:":
				s.Threads, _ = strconv.Atoi(fs[1])
			}
		}
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.FDs = len(fds)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return s
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			s.Goroutines = int(f)
		}
	}
	return s
}
