// Command fleetchild is the checking record processor of the KCL 3.x fleet
// tests (e2e/fleet3x_test.go). It speaks the MultiLangDaemon protocol
// (docs/protocol.md) and appends one JSON line per event to the shared file
// $FLEET_EVENTS, so that a test can count how often each (shard, sequence
// number, sub-sequence number) was handed to any child of any worker.
//
// Events ("ev"): init (the initialize message, with its sequence number),
// rec (one per record, written with one write(2) per batch before the batch
// is checkpointed, so a logged record that is not covered by a later "cp" of
// the same child is in the un-checkpointed window), cp (a checkpoint the
// daemon acknowledged without error, with the sequence number it covers),
// shutdownRequested, leaseLost, shardEnded. Every event carries the worker
// id ($FLEET_WORKER, inherited from the daemon) and the child's pid.
//
// $FLEET_CHECKPOINT_EVERY=n (default 1) checkpoints only every n-th batch,
// which widens the un-checkpointed window a crash re-delivers; a
// shutdownRequested always checkpoints the last record given.
//
// $FLEET_HANG_SHUTDOWN=<shardId> makes the child of that shard never answer
// shutdownRequested (nor checkpoint in it).
//
// $FLEET_SHUTDOWN_DELAY_MS delays the answer to shutdownRequested (a slow
// final checkpoint: the hand-off stays pending that long).
//
// Load: every child burns $FLEET_BURN_BASE (a fraction of one CPU, default
// 0) all the time, so that a worker's CPU utilisation grows with the number
// of shards it processes; while the file named by $FLEET_BURN_WHEN exists it
// burns $FLEET_BURN (default 0.9) instead, so that one worker's measured
// utilisation rises. Burning happens in 100 ms windows.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"
)

type rec struct {
	SequenceNumber    string `json:"sequenceNumber"`
	SubSequenceNumber *int64 `json:"subSequenceNumber"`
}

type msg struct {
	Action         string `json:"action"`
	ShardID        string `json:"shardId"`
	SequenceNumber string `json:"sequenceNumber"`
	Records        []rec  `json:"records"`
	Error          string `json:"error"`
}

// event is one line of $FLEET_EVENTS (read by e2e/fleet3x_test.go).
type event struct {
	Ev     string `json:"ev"`
	Worker string `json:"w"`
	Pid    int    `json:"pid"`
	Shard  string `json:"shard"`
	Seq    string `json:"seq,omitempty"`
	Sub    int64  `json:"sub"`
	T      int64  `json:"t"`
}

var (
	in     = bufio.NewReaderSize(os.Stdin, 1<<20)
	events *os.File
	worker = os.Getenv("FLEET_WORKER")
	pid    = os.Getpid()
	shard  string
	// last is the last record handed to this child (what a checkpoint
	// without a sequence number covers).
	last    rec
	hasLast bool
	// every and batches: checkpoint every n-th batch
	every, batches = 1, 0
)

func emit(evs ...event) {
	var b []byte
	now := time.Now().UnixNano()
	for _, e := range evs {
		e.Worker, e.Pid, e.Shard, e.T = worker, pid, shard, now
		j, _ := json.Marshal(e)
		b = append(append(b, j...), '\n')
	}
	if _, err := events.Write(b); err != nil {
		fmt.Fprintln(os.Stderr, "fleetchild: events:", err)
		os.Exit(9)
	}
}

func send(v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(os.Stdout, "\n%s\n", b)
}

func next() (msg, bool) {
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 1 {
			var m msg
			if json.Unmarshal(line, &m) == nil && m.Action != "" {
				return m, true
			}
		}
		if err != nil {
			return msg{}, false
		}
	}
}

// checkpoint checkpoints r (or, with r nil, the last record given) and logs
// a cp event when the daemon acknowledges it without error.
func checkpoint(r *rec) {
	var seq *string
	var sub *int64
	if r != nil {
		seq, sub = &r.SequenceNumber, r.SubSequenceNumber
	}
	send(map[string]any{"action": "checkpoint", "sequenceNumber": seq, "subSequenceNumber": sub})
	m, ok := next()
	if !ok || m.Action != "checkpoint" {
		fmt.Fprintln(os.Stderr, "fleetchild: no checkpoint reply")
		os.Exit(2)
	}
	if m.Error != "" {
		fmt.Fprintf(os.Stderr, "fleetchild: checkpoint on %s: %s\n", shard, m.Error)
		return
	}
	covered := last
	if r != nil {
		covered = *r
	} else if !hasLast {
		return
	}
	e := event{Ev: "cp", Seq: covered.SequenceNumber}
	if covered.SubSequenceNumber != nil {
		e.Sub = *covered.SubSequenceNumber
	}
	emit(e)
}

func process(m msg) {
	evs := make([]event, 0, len(m.Records))
	for _, r := range m.Records {
		e := event{Ev: "rec", Seq: r.SequenceNumber}
		if r.SubSequenceNumber != nil {
			e.Sub = *r.SubSequenceNumber
		}
		evs = append(evs, e)
	}
	if len(evs) == 0 {
		return
	}
	emit(evs...)
	last, hasLast = m.Records[len(m.Records)-1], true
	if batches++; batches%every == 0 {
		checkpoint(&last)
	}
}

// burn spins for the configured fraction of every 100 ms window (base,
// or loaded while the marker file exists); it runs for the life of the
// process.
func burn(marker string, base, loaded float64) {
	const window = 100 * time.Millisecond
	for {
		frac := base
		if marker != "" {
			if _, err := os.Stat(marker); err == nil {
				frac = loaded
			}
		}
		start := time.Now()
		for time.Since(start) < time.Duration(frac*float64(window)) {
			for i := 0; i < 10000; i++ {
				_ = i * i
			}
		}
		time.Sleep(window - time.Since(start))
	}
}

// fraction parses a CPU fraction in (0, 1] from the environment.
func fraction(key string, def float64) float64 {
	if f, err := strconv.ParseFloat(os.Getenv(key), 64); err == nil && f >= 0 && f <= 1 {
		return f
	}
	return def
}

func main() {
	path := os.Getenv("FLEET_EVENTS")
	if path == "" {
		fmt.Fprintln(os.Stderr, "fleetchild: FLEET_EVENTS not set")
		os.Exit(1)
	}
	var err error
	events, err = os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if n, err := strconv.Atoi(os.Getenv("FLEET_CHECKPOINT_EVERY")); err == nil && n > 0 {
		every = n
	}
	marker, base := os.Getenv("FLEET_BURN_WHEN"), fraction("FLEET_BURN_BASE", 0)
	if marker != "" || base > 0 {
		go burn(marker, base, fraction("FLEET_BURN", 0.9)) // lives as long as the process
	}
	for {
		m, ok := next()
		if !ok {
			return
		}
		switch m.Action {
		case "initialize":
			shard = m.ShardID
			emit(event{Ev: "init", Seq: m.SequenceNumber})
		case "processRecords":
			process(m)
		case "shardEnded":
			emit(event{Ev: "shardEnded"})
			hasLast = false // the checkpoint below is SHARD_END, not a record
			checkpoint(nil)
		case "shutdownRequested":
			emit(event{Ev: "shutdownRequested"})
			if hang := os.Getenv("FLEET_HANG_SHUTDOWN"); hang != "" && hang == shard {
				for { // never answers: the daemon's hand-off timeout ends it
					time.Sleep(time.Hour)
				}
			}
			if ms, err := strconv.Atoi(os.Getenv("FLEET_SHUTDOWN_DELAY_MS")); err == nil {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
			checkpoint(nil)
		case "leaseLost":
			emit(event{Ev: "leaseLost"})
		default:
			continue
		}
		send(map[string]string{"action": "status", "responseFor": m.Action})
	}
}
