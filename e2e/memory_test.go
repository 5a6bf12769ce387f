package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// TestMemoryBudgetBoundsCatchUp: 8 shards with a backlog of 10,000 records
// of 1 KiB each are read by the real binary under memoryBudgetBytes = 96 MiB
// (records get 28 MiB of it; without the budget the per-shard prefetch
// lets each shard hold three 14 MB responses plus the one its child is
// processing: peak RSS measured 157 MiB here, 389 MB before the relay
// decoder). The daemon's peak RSS stays under the budget, and every record
// reaches a child exactly once, in order, with every lease checkpointed at
// its shard's last record.
func TestMemoryBudgetBoundsCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e")
	}
	const (
		shards  = 8
		records = 80000
		budget  = 96 << 20
	)
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, shards)
	last, _ := e.putBench(records, 0)
	e.logLevel = "info"
	out := filepath.Join(e.dir, "out.jsonl")
	props := e.props("app", map[string]string{"executableName": binAggChild, "failoverTimeMillis": "10000",
		"memoryBudgetBytes":            strconv.Itoa(budget),
		"idleTimeBetweenReadsInMillis": "50"})
	d := e.startDaemon("daemon", props, out, "AGGCHILD_MODE=normal")
	start := time.Now()
	waitFor(t, 5*time.Minute, "every shard checkpointed at its last record", func() bool { return e.checkpointedAt(last) }, d)
	el := time.Since(start)
	peak := maxRSS(d.cmd.Process.Pid)
	d.stop(40 * time.Second)
	got := readOutput(t, out)
	seen := map[string]bool{}
	for _, r := range got {
		seen[r.ShardID+"/"+r.SequenceNumber] = true
	}
	if len(seen) != records || len(got) != records {
		t.Fatalf("%d deliveries of %d distinct records, want %d once each", len(got), len(seen), records)
	}
	checkOrdered(t, got)
	fmt.Printf("MEMORY %d shards, %d x 1 KiB records, memoryBudgetBytes=%d MiB | seconds=%.1f | daemon peak RSS MiB=%.0f\n",
		shards, records, budget>>20, el.Seconds(), peak)
	if peak > budget>>20 {
		t.Fatalf("daemon peak RSS %.0f MiB above the %d MiB budget", peak, budget>>20)
	}
}
