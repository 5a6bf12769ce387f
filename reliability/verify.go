// Package reliability holds the pure parts of the reliability suite
// (docs/reliability.md): the verifier that checks what the checking child
// recorded against what the producer wrote, and the report writer. The
// scenarios themselves run real multilangd processes against the emulators
// and are built with the `reliability` tag (`make test-reliability`).
package reliability

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/multilangd/multilangd/seqnum"
)

// Key identifies one user record: shard, sequence number and sub-sequence
// number (0 for a record that was not aggregated).
type Key struct {
	Shard string
	Seq   string
	Sub   int64
}

func (k Key) esn() seqnum.ESN { return seqnum.New(k.Seq, k.Sub) }

func (k Key) String() string { return fmt.Sprintf("%s/%s/%d", k.Shard, k.Seq, k.Sub) }

// Produced is one user record the producer wrote, with the length and
// CRC-32 (IEEE) of its data.
type Produced struct {
	Key
	Len int
	CRC uint32
}

// Event is one line the checking child wrote (reliability/testdata/checkchild).
type Event struct {
	T     int64  `json:"t"` // Unix nanoseconds
	Ev    string `json:"ev"`
	Pid   int    `json:"pid"`
	PPid  int    `json:"ppid"`
	Shard string `json:"shard"`
	Seq   string `json:"seq"`
	Sub   int64  `json:"sub"`
	Len   int    `json:"len"`
	CRC   uint32 `json:"crc"`
	Err   string `json:"err"`
}

func (e Event) key() Key { return Key{e.Shard, e.Seq, e.Sub} }

// Fault is one injected fault, from Start until End (End = Start for an
// instant fault such as a SIGKILL).
type Fault struct {
	What       string
	Start, End time.Time
}

// ReadEvents reads every child-*.jsonl file in dir, ordered by time. A line
// torn by a SIGKILL is skipped.
func ReadEvents(dir string) ([]Event, error) {
	files, err := filepath.Glob(filepath.Join(dir, "child-*.jsonl"))
	if err != nil {
		return nil, err
	}
	var evs []Event
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<16), 1<<22)
		for sc.Scan() {
			var e Event
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Ev != "" {
				evs = append(evs, e)
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].T < evs[j].T })
	return evs, nil
}

// Result is what Verify found.
type Result struct {
	Produced   int
	Delivered  int // distinct produced records delivered
	Deliveries int // all rec events
	Duplicates int // deliveries beyond the first of a record
	Missing    []Key
	// Violations break the contract: corrupted data, out-of-order or
	// repeated delivery within one child, a duplicate without a fault
	// before it or at or below the checkpoint its child started from, a
	// checkpoint accepted for a sequence number never delivered.
	Violations []string
	// Recover is, over all faults, the longest a shard went without a new
	// record across a fault (see recoverTime).
	Recover  time.Duration
	Children int // child processes seen
}

// OK reports whether nothing is missing and nothing broke the contract.
func (r Result) OK() bool { return len(r.Missing) == 0 && len(r.Violations) == 0 }

func (r *Result) violate(format string, a ...any) {
	if len(r.Violations) < 50 {
		r.Violations = append(r.Violations, fmt.Sprintf(format, a...))
	}
}

// Verify checks the child's events against the produced records: every
// record delivered at least once with its data intact, each child's
// deliveries per shard strictly increasing, and every duplicate delivered
// by a later child than the first delivery, either of another worker (the
// lease moved) or after a fault, and always above the
// highest checkpoint acknowledged for its shard before that child started
// (that is, within the un-checkpointed window).
func Verify(produced []Produced, evs []Event, faults []Fault) Result {
	r := Result{Produced: len(produced)}
	want := make(map[Key]Produced, len(produced))
	for _, p := range produced {
		want[p.Key] = p
	}
	first := map[Key]Event{}
	lastInChild := map[[2]string]seqnum.ESN{} // (pid, shard) -> last delivered
	initAt := map[[2]string]int64{}           // (pid, shard) -> init time
	acked := map[string][]Event{}             // shard -> successful checkpoints in time order
	given := map[string]map[Key]bool{}        // shard -> delivered keys (for checkpoint checks)
	pids := map[int]bool{}
	var firstFault int64 = -1
	for _, f := range faults {
		if t := f.Start.UnixNano(); firstFault < 0 || t < firstFault {
			firstFault = t
		}
	}
	for _, e := range evs {
		pids[e.Pid] = true
		ck := [2]string{fmt.Sprint(e.Pid), e.Shard}
		switch e.Ev {
		case "init":
			initAt[ck] = e.T
		case "cp":
			if e.Err != "" || e.Seq == "SHARD_END" {
				continue
			}
			if !given[e.Shard][e.key()] {
				r.violate("shard %s: checkpoint at %s/%d accepted but that record was never delivered", e.Shard, e.Seq, e.Sub)
			}
			acked[e.Shard] = append(acked[e.Shard], e)
		case "rec":
			r.Deliveries++
			k := e.key()
			if given[e.Shard] == nil {
				given[e.Shard] = map[Key]bool{}
			}
			given[e.Shard][k] = true
			if p, ok := want[k]; ok && (p.Len != e.Len || p.CRC != e.CRC) {
				r.violate("%s: data len/crc %d/%08x, produced %d/%08x", k, e.Len, e.CRC, p.Len, p.CRC)
			}
			if prev, ok := lastInChild[ck]; ok && seqnum.MustCompare(prev, k.esn()) >= 0 {
				r.violate("%s: child %d delivered it after %s", k, e.Pid, prev)
			}
			lastInChild[ck] = k.esn()
			f, seen := first[k]
			if !seen {
				first[k] = e
				continue
			}
			r.Duplicates++
			switch {
			case f.Pid == e.Pid:
				r.violate("%s: delivered twice by child %d", k, e.Pid)
			case f.PPid == e.PPid && (firstFault < 0 || e.T < firstFault):
				// Another worker redelivering is a lease move (fail-over or
				// balancing steal, Java LeaseTaker); the same worker needs a fault.
				r.violate("%s: delivered again by the same worker (child %d) with no fault before it", k, e.Pid)
			default:
				if cp, ok := lastAckBefore(acked[e.Shard], initAt[ck]); ok && seqnum.MustCompare(k.esn(), cp) <= 0 {
					r.violate("%s: delivered again by child %d although checkpoint %s was acknowledged before it started", k, e.Pid, cp)
				}
			}
		}
	}
	for _, p := range produced {
		if _, ok := first[p.Key]; ok {
			r.Delivered++
		} else {
			r.Missing = append(r.Missing, p.Key)
		}
	}
	r.Children = len(pids)
	r.Recover = recoverTime(evs, faults)
	return r
}

// lastAckBefore returns the highest checkpoint acknowledged before t.
func lastAckBefore(cps []Event, t int64) (seqnum.ESN, bool) {
	var best seqnum.ESN
	ok := false
	for _, c := range cps {
		if c.T >= t {
			break
		}
		if !ok || seqnum.MustCompare(c.key().esn(), best) > 0 {
			best, ok = c.key().esn(), true
		}
	}
	return best, ok
}

// recoverTime returns the longest gap between two consecutive
// deliveries on one shard that overlaps a fault (from the last record
// delivered before or during the fault to the next one): how long the fault
// stalled a shard. With a steady producer an unaffected shard's gaps are
// the polling interval.
func recoverTime(evs []Event, faults []Fault) time.Duration {
	times := map[string][]int64{}
	for _, e := range evs {
		if e.Ev == "rec" {
			times[e.Shard] = append(times[e.Shard], e.T)
		}
	}
	var worst time.Duration
	for _, f := range faults {
		start, end := f.Start.UnixNano(), f.End.UnixNano()
		for _, ts := range times {
			for i := 1; i < len(ts); i++ {
				if ts[i-1] <= end && ts[i] >= start {
					if d := time.Duration(ts[i] - ts[i-1]); d > worst {
						worst = d
					}
				}
			}
		}
	}
	return worst
}
