// Command checkchild is the reliability suite's record processor. It speaks
// the MultiLangDaemon protocol (docs/protocol.md) and appends one JSON line
// per event to its own file in $REL_EVENTS_DIR (child-<pid>.jsonl), written
// with one write(2) per batch before the batch is checkpointed, so that a
// record it logged but did not checkpoint is inside the un-checkpointed
// window. Events: init, rec, cp (a checkpoint the daemon acknowledged, or
// its error), end.
//
// Faults (environment, inherited from the daemon):
//
//	REL_POISON=<n>        exit 3 on a record whose data starts with "poison", at most n times in all (marker files in REL_MARKERS)
//	REL_CRASH_PERMILLE=<n> exit 4 after logging a batch, before its checkpoint, with probability n/1000
//	REL_HANG_ONCE=1       never answer the first processRecords (across processes) of a batch holding a "hang" record
//	REL_STDERR_FLOOD=<n>  write n KiB to stderr for every batch
//	REL_GARBAGE=1         print non-protocol lines to stdout around every reply
//	REL_EXIT_SHARD_END_ONCE=1 exit 5 on the first shardEnded (across processes)
//	REL_HANG_SHUTDOWN=1   never answer shutdownRequested
//	REL_BAD_CHECKPOINT=1  once per child, checkpoint one past the last sequence number it was given (logged as badcp)
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/big"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type rec struct {
	Data              string `json:"data"`
	PartitionKey      string `json:"partitionKey"`
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

// event mirrors reliability.Event.
type event struct {
	T     int64  `json:"t"`
	Ev    string `json:"ev"`
	Pid   int    `json:"pid"`
	PPid  int    `json:"ppid"`
	Shard string `json:"shard,omitempty"`
	Seq   string `json:"seq,omitempty"`
	Sub   int64  `json:"sub"`
	Len   int    `json:"len"`
	CRC   uint32 `json:"crc"`
	Err   string `json:"err,omitempty"`
}

var (
	in      = bufio.NewReaderSize(os.Stdin, 1<<20)
	shard   string
	events  *os.File
	pid     = os.Getpid()
	ppid    = os.Getppid()
	garbage = os.Getenv("REL_GARBAGE") != ""
)

func emit(evs ...event) {
	var b []byte
	for _, e := range evs {
		e.Pid, e.PPid = pid, ppid
		if e.T == 0 {
			e.T = time.Now().UnixNano()
		}
		j, _ := json.Marshal(e)
		b = append(append(b, j...), '\n')
	}
	if _, err := events.Write(b); err != nil {
		fmt.Fprintln(os.Stderr, "checkchild: events:", err)
		os.Exit(9)
	}
}

func send(v any) {
	b, _ := json.Marshal(v)
	if garbage {
		fmt.Fprintf(os.Stdout, "garbage before %s {not json\n", shard)
	}
	fmt.Fprintf(os.Stdout, "\n%s\n", b)
	if garbage {
		fmt.Fprintln(os.Stdout, `{"no":"action"}`)
	}
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

// once reports true for the first n calls with name across all processes
// (marker files in $REL_MARKERS).
func once(name string, n int) bool {
	dir := os.Getenv("REL_MARKERS")
	if dir == "" {
		return false
	}
	for i := 0; i < n; i++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%s-%d", name, i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			return true
		}
	}
	return false
}

func checkpoint(seq *string, sub *int64) { checkpointAs("cp", seq, sub) }

// checkpointAs sends a checkpoint and logs the reply as event ev.
func checkpointAs(ev string, seq *string, sub *int64) {
	send(map[string]any{"action": "checkpoint", "sequenceNumber": seq, "subSequenceNumber": sub})
	m, ok := next()
	if !ok || m.Action != "checkpoint" {
		fmt.Fprintln(os.Stderr, "checkchild: no checkpoint reply")
		os.Exit(2)
	}
	e := event{Ev: ev, Shard: shard, Err: m.Error}
	if seq != nil {
		e.Seq = *seq
	} else {
		e.Seq = "SHARD_END"
	}
	if sub != nil {
		e.Sub = *sub
	}
	emit(e)
}

func main() {
	dir := os.Getenv("REL_EVENTS_DIR")
	if dir == "" {
		fmt.Fprintln(os.Stderr, "checkchild: REL_EVENTS_DIR not set")
		os.Exit(1)
	}
	var err error
	events, err = os.OpenFile(filepath.Join(dir, fmt.Sprintf("child-%d-%d.jsonl", pid, time.Now().UnixNano())), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	poison, _ := strconv.Atoi(os.Getenv("REL_POISON"))
	crash, _ := strconv.Atoi(os.Getenv("REL_CRASH_PERMILLE"))
	flood, _ := strconv.Atoi(os.Getenv("REL_STDERR_FLOOD"))
	rng := rand.New(rand.NewSource(int64(pid)))
	badCheckpointLeft := os.Getenv("REL_BAD_CHECKPOINT") != ""
	for {
		m, ok := next()
		if !ok {
			return
		}
		switch m.Action {
		case "initialize":
			shard = m.ShardID
			emit(event{Ev: "init", Shard: shard, Seq: m.SequenceNumber})
		case "processRecords":
			process(m, poison, crash, flood, rng, &badCheckpointLeft)
		case "shardEnded":
			if os.Getenv("REL_EXIT_SHARD_END_ONCE") != "" && once("shard-end-exit", 1) {
				fmt.Fprintf(os.Stderr, "checkchild: exiting during shardEnded on %s (once)\n", shard)
				os.Exit(5)
			}
			checkpoint(nil, nil)
			emit(event{Ev: "end", Shard: shard})
		case "shutdownRequested":
			if os.Getenv("REL_HANG_SHUTDOWN") != "" {
				fmt.Fprintf(os.Stderr, "checkchild: hanging in shutdownRequested on %s\n", shard)
				emit(event{Ev: "hangshutdown", Shard: shard})
				for {
					time.Sleep(time.Hour)
				}
			}
			checkpoint(nil, nil)
		case "leaseLost":
			emit(event{Ev: "lost", Shard: shard})
		default:
			continue
		}
		send(map[string]string{"action": "status", "responseFor": m.Action})
	}
}

func process(m msg, poison, crash, flood int, rng *rand.Rand, badCheckpointLeft *bool) {
	evs := make([]event, 0, len(m.Records))
	hang := false
	for _, r := range m.Records {
		data, err := base64.StdEncoding.DecodeString(r.Data)
		if err != nil {
			fmt.Fprintf(os.Stderr, "checkchild: %s: data not base64: %v\n", shard, err)
			os.Exit(6)
		}
		if poison > 0 && strings.HasPrefix(string(data), "poison") && once("poison", poison) {
			emit(evs...)
			fmt.Fprintf(os.Stderr, "checkchild: poison record %s on %s\n", r.SequenceNumber, shard)
			os.Exit(3)
		}
		hang = hang || strings.HasPrefix(string(data), "hang")
		var sub int64
		if r.SubSequenceNumber != nil {
			sub = *r.SubSequenceNumber
		}
		evs = append(evs, event{Ev: "rec", Shard: shard, Seq: r.SequenceNumber, Sub: sub, Len: len(data), CRC: crc32.ChecksumIEEE(data)})
	}
	if hang && os.Getenv("REL_HANG_ONCE") != "" && once("hang", 1) {
		fmt.Fprintf(os.Stderr, "checkchild: hanging on %s\n", shard)
		for {
			time.Sleep(time.Hour)
		}
	}
	emit(evs...)
	if flood > 0 {
		line := strings.Repeat("x", 1023) + "\n"
		for i := 0; i < flood; i++ {
			io.WriteString(os.Stderr, line)
		}
	}
	if crash > 0 && rng.Intn(1000) < crash {
		fmt.Fprintf(os.Stderr, "checkchild: random crash on %s\n", shard)
		os.Exit(4)
	}
	if *badCheckpointLeft && len(m.Records) > 0 {
		// one past the last sequence number given: never delivered
		*badCheckpointLeft = false
		n, _ := new(big.Int).SetString(m.Records[len(m.Records)-1].SequenceNumber, 10)
		seq, sub := n.Add(n, big.NewInt(1)).String(), int64(0)
		checkpointAs("badcp", &seq, &sub)
	}
	if n := len(m.Records); n > 0 {
		last := m.Records[n-1]
		checkpoint(&last.SequenceNumber, last.SubSequenceNumber)
	}
}
