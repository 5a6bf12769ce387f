// Command aggchild is a scripted record processor for the e2e tests. It
// speaks the MultiLangDaemon protocol directly so that it can checkpoint
// with an explicit subSequenceNumber (the aws-kcl client cannot).
//
// Every record is appended to $KCL_SAMPLE_OUTPUT as one JSON line (when
// set). With
// AGGCHILD_MODE=normal it checkpoints (sequenceNumber, subSequenceNumber) of
// the last record of each batch. With AGGCHILD_MODE=partial it stops at the
// first record whose subSequenceNumber is $AGGCHILD_STOP_SUB, checkpoints
// exactly that record and then hangs (the test kills the daemon). With
// AGGCHILD_CRASH_SHARD=<shardId> it exits 3 on the first processRecords of
// that shard. With AGGCHILD_SKIP_SHARD_END_ONCE=<marker file> the first
// shardEnded (across processes) is answered without a checkpoint. With
// AGGCHILD_HANG_ONCE=<marker file> the first processRecords (across
// processes) is never answered: the child hangs without exiting.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

type rec struct {
	Data              string `json:"data"`
	PartitionKey      string `json:"partitionKey"`
	SequenceNumber    string `json:"sequenceNumber"`
	SubSequenceNumber int64  `json:"subSequenceNumber"`
}

type msg struct {
	Action  string `json:"action"`
	ShardID string `json:"shardId"`
	Records []rec  `json:"records"`
}

type out struct {
	ShardID           string `json:"shardId"`
	SequenceNumber    string `json:"sequenceNumber"`
	SubSequenceNumber int64  `json:"subSequenceNumber"`
	PartitionKey      string `json:"partitionKey"`
	Data              string `json:"data"`
}

var (
	in    = bufio.NewReaderSize(os.Stdin, 1<<20)
	shard string
)

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
		if err == io.EOF {
			return msg{}, false
		}
		if err != nil {
			return msg{}, false
		}
	}
}

// skipOnce reports true the first time it is called with a marker path
// (creating the marker), false afterwards and when path is empty.
func skipOnce(path string) bool {
	if path == "" {
		return false
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

func checkpoint(seq *string, sub *int64) {
	send(map[string]any{"action": "checkpoint", "sequenceNumber": seq, "subSequenceNumber": sub})
	m, ok := next()
	if !ok || m.Action != "checkpoint" {
		fmt.Fprintln(os.Stderr, "aggchild: no checkpoint reply")
		os.Exit(2)
	}
}

func main() {
	var f io.Writer = io.Discard // no output file: count-only (benchmarks)
	if path := os.Getenv("KCL_SAMPLE_OUTPUT"); path != "" {
		of, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		f = of
	}
	mode := os.Getenv("AGGCHILD_MODE")
	crash := os.Getenv("AGGCHILD_CRASH_SHARD")
	stopSub, _ := strconv.ParseInt(os.Getenv("AGGCHILD_STOP_SUB"), 10, 64)
	for {
		m, ok := next()
		if !ok {
			return
		}
		switch m.Action {
		case "initialize":
			shard = m.ShardID
		case "processRecords":
			if crash != "" && crash == shard {
				fmt.Fprintf(os.Stderr, "aggchild: crashing on purpose on %s\n", shard)
				os.Exit(3)
			}
			if skipOnce(os.Getenv("AGGCHILD_HANG_ONCE")) {
				fmt.Fprintf(os.Stderr, "aggchild: hanging on purpose on %s\n", shard)
				for {
					time.Sleep(time.Hour)
				}
			}
			for _, r := range m.Records {
				b, _ := json.Marshal(out{shard, r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey, r.Data})
				f.Write(append(b, '\n'))
				if mode == "partial" && r.SubSequenceNumber == stopSub {
					seq, sub := r.SequenceNumber, r.SubSequenceNumber
					checkpoint(&seq, &sub)
					fmt.Fprintf(os.Stderr, "aggchild: checkpointed %s/%d, now hanging\n", seq, sub)
					for {
						time.Sleep(time.Hour)
					}
				}
			}
			if n := len(m.Records); n > 0 {
				seq, sub := m.Records[n-1].SequenceNumber, m.Records[n-1].SubSequenceNumber
				checkpoint(&seq, &sub)
			}
		case "shardEnded":
			if skipOnce(os.Getenv("AGGCHILD_SKIP_SHARD_END_ONCE")) {
				fmt.Fprintf(os.Stderr, "aggchild: not checkpointing at shard end on %s (once)\n", shard)
				break
			}
			checkpoint(nil, nil)
		case "shutdownRequested":
			checkpoint(nil, nil)
		case "leaseLost":
		default:
			continue
		}
		send(map[string]string{"action": "status", "responseFor": m.Action})
	}
}
