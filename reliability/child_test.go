//go:build reliability

package reliability

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/multilangd/multilangd/internal/testenv"
)

const childShards = 4

// childFleet starts one worker on a 4-shard stream with the checking
// child's fault switches env and a steady producer, and waits until every
// shard delivers.
func childFleet(t *testing.T, env []string, extra map[string]string) (*fleet, *daemon, *producer) {
	f := newFleet(t, childShards)
	f.childEnv = env
	d := f.start("w1", extra)
	p := f.startProducer(20, 500*time.Millisecond)
	f.waitShardsProgress(childShards, 120*time.Second)
	return f, d, p
}

// putMarked writes one record whose data starts with prefix (the child
// reacts to "poison" and "hang").
func (f *fleet) putMarked(prefix string) {
	f.t.Helper()
	e := f.plainEntry()
	e.data = append([]byte(prefix+"-"), e.data...)
	if err := f.put(context.Background(), []entry{e}); err != nil {
		f.t.Fatal(err)
	}
}

// logCount counts lines holding s in every daemon log of the scenario.
func (f *fleet) logCount(s string) int {
	n := 0
	for _, d := range f.daemons {
		b, _ := os.ReadFile(d.log)
		n += strings.Count(string(b), s)
	}
	return n
}

// Child: crashes (exit 3) on a poison record twice, then processes it: the
// shard recovers, the others keep delivering.
func TestChildPoisonRecord(t *testing.T) {
	f, _, p := childFleet(t, []string{"REL_POISON=2"}, nil)
	f.fault("poison record: child exits 3 on it twice", func() {
		f.putMarked("poison")
		f.waitFor(90*time.Second, "two poison crashes", func() bool { return countMarkers(f, "poison") == 2 })
	}, nil)
	f.waitShardsProgress(childShards, 90*time.Second)
	time.Sleep(5 * time.Second)
	f.finish(p, 120*time.Second, f.othersKeptGoing(childShards))
}

// othersKeptGoing checks that during every fault lasting 2 s or more all
// shards but one delivered records.
func (f *fleet) othersKeptGoing(shards int) func(Result, []Event) []string {
	return func(_ Result, evs []Event) []string {
		var v []string
		for _, ft := range f.faults {
			if ft.End.Sub(ft.Start) < 2*time.Second {
				continue
			}
			during := map[string]bool{}
			for _, e := range evs {
				if e.Ev == "rec" && e.T >= ft.Start.UnixNano() && e.T <= ft.End.UnixNano() {
					during[e.Shard] = true
				}
			}
			if len(during) < shards-1 {
				v = append(v, fmt.Sprintf("during %q only %d of %d shards delivered", ft.What, len(during), shards))
			}
		}
		return v
	}
}

func countMarkers(f *fleet, name string) int {
	m, _ := os.ReadDir(f.markers)
	n := 0
	for _, e := range m {
		if strings.HasPrefix(e.Name(), name+"-") {
			n++
		}
	}
	return n
}

// Child: exits 4 at random (2% of batches) after logging a batch and before
// checkpointing it.
func TestChildRandomCrash(t *testing.T) {
	start := time.Now()
	f, _, p := childFleet(t, []string{"REL_CRASH_PERMILLE=20"}, nil)
	time.Sleep(20 * time.Second)
	f.waitShardsProgress(childShards, 60*time.Second)
	f.mu.Lock()
	f.faults = append(f.faults, Fault{What: "random child crashes", Start: start, End: time.Now()})
	f.injected = append(f.injected, "child exits 4 before checkpointing 2% of batches")
	f.mu.Unlock()
	f.finish(p, 120*time.Second)
}

// Child: hangs in processRecords once; timeoutInSeconds kills it and the
// shard resumes with a new child.
func TestChildHang(t *testing.T) {
	f, _, p := childFleet(t, []string{"REL_HANG_ONCE=1"}, map[string]string{"timeoutInSeconds": "10"})
	f.fault("child hangs in processRecords (timeoutInSeconds = 10)", func() {
		f.putMarked("hang")
		f.waitFor(60*time.Second, "the hang", func() bool { return countMarkers(f, "hang") == 1 })
		f.waitFor(90*time.Second, "the hung child replaced", func() bool { return f.logCount("no message from child within") > 0 })
	}, nil)
	f.waitShardsProgress(childShards, 90*time.Second)
	f.finish(p, 120*time.Second, f.othersKeptGoing(childShards))
}

// Child: never answers shutdownRequested. SIGTERM must still end the
// daemon (shutdownGraceMillis = 5000) with exit 0 and no child left; the
// records after the last checkpoint come again on the next start.
func TestChildHangOnShutdown(t *testing.T) {
	f, d, p := childFleet(t, []string{"REL_HANG_SHUTDOWN=1"}, nil)
	f.fault("SIGTERM while every child hangs in shutdownRequested, restart", func() {
		if c := d.term(60 * time.Second); c != 0 {
			t.Errorf("exit code %d after SIGTERM with hanging children", c)
		}
		if n := f.processesLeft(); n != 0 {
			t.Errorf("%d processes left after the daemon exited", n)
		}
	}, nil)
	f.childEnv = nil
	f.start("w1", nil)
	f.waitShardsProgress(childShards, 90*time.Second)
	f.finish(p, 120*time.Second)
}

// Child: writes 64 KiB to stderr for every batch.
func TestChildStderrFlood(t *testing.T) {
	start := time.Now()
	f, _, p := childFleet(t, []string{"REL_STDERR_FLOOD=64"}, nil)
	time.Sleep(15 * time.Second)
	f.waitShardsProgress(childShards, 60*time.Second)
	f.mu.Lock()
	f.injected = append(f.injected, "child writes 64 KiB to stderr per batch")
	f.faults = append(f.faults, Fault{What: "stderr flood", Start: start, End: time.Now()})
	f.mu.Unlock()
	f.finish(p, 120*time.Second)
}

// Child: prints non-protocol lines to stdout around every message.
func TestChildGarbageStdout(t *testing.T) {
	start := time.Now()
	f, _, p := childFleet(t, []string{"REL_GARBAGE=1"}, nil)
	time.Sleep(15 * time.Second)
	f.waitShardsProgress(childShards, 60*time.Second)
	f.mu.Lock()
	f.injected = append(f.injected, "child prints non-JSON and action-less lines to stdout around every message")
	f.faults = append(f.faults, Fault{What: "garbage", Start: start, End: time.Now()})
	f.mu.Unlock()
	f.finish(p, 120*time.Second)
}

// Child: exits during shardEnded (once) after a split: the shard end is
// retried with a new child, the parent reaches SHARD_END and the children
// deliver.
func TestChildExitDuringShardEnded(t *testing.T) {
	f, _, p := childFleet(t, []string{"REL_EXIT_SHARD_END_ONCE=1"}, nil)
	f.fault("split a shard; the child exits 5 during shardEnded", func() {
		f.split(0)
		f.waitFor(90*time.Second, "the exit during shardEnded", func() bool { return countMarkers(f, "shard-end-exit") == 1 })
	}, nil)
	f.waitFor(90*time.Second, "a child shard delivering", func() bool {
		return len(f.deliveredSince(time.Now().Add(-time.Hour))) > childShards
	})
	f.finish(p, 120*time.Second, endedOnce)
}

// endedOnce checks that every shard that ended was checkpointed at
// SHARD_END (the child's "end" event).
func endedOnce(_ Result, evs []Event) []string {
	ended := map[string]bool{}
	for _, e := range evs {
		if e.Ev == "end" {
			ended[e.Shard] = true
		}
	}
	if len(ended) == 0 {
		return []string{"no shard reached SHARD_END"}
	}
	return nil
}

// split splits the i-th open shard in the middle of its hash range.
func (f *fleet) split(i int) {
	f.t.Helper()
	ctx := context.Background()
	ls, err := f.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(f.stream)})
	if err != nil {
		f.t.Fatal(err)
	}
	var open []string
	var ranges [][2]string
	for _, s := range ls.Shards {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, aws.ToString(s.ShardId))
			ranges = append(ranges, [2]string{aws.ToString(s.HashKeyRange.StartingHashKey), aws.ToString(s.HashKeyRange.EndingHashKey)})
		}
	}
	start, _ := new(big.Int).SetString(ranges[i][0], 10)
	end, _ := new(big.Int).SetString(ranges[i][1], 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(start, end), 1)
	if _, err := f.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(f.stream),
		ShardToSplit: aws.String(open[i]), NewStartingHashKey: aws.String(mid.String())}); err != nil {
		f.t.Fatalf("split %s: %v", open[i], err)
	}
	if err := testenv.WaitStreamActive(ctx, f.kc, f.stream); err != nil {
		f.t.Fatal(err)
	}
	f.t.Logf("split %s", open[i])
}

// merge merges the i-th and (i+1)-th open shards (adjacent in hash order).
func (f *fleet) merge(i int) {
	f.t.Helper()
	ctx := context.Background()
	ls, err := f.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(f.stream)})
	if err != nil {
		f.t.Fatal(err)
	}
	type sh struct {
		id    string
		start *big.Int
	}
	var open []sh
	for _, s := range ls.Shards {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			st, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
			open = append(open, sh{aws.ToString(s.ShardId), st})
		}
	}
	for a := range open {
		for b := a + 1; b < len(open); b++ {
			if open[b].start.Cmp(open[a].start) < 0 {
				open[a], open[b] = open[b], open[a]
			}
		}
	}
	if _, err := f.kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(f.stream),
		ShardToMerge: aws.String(open[i].id), AdjacentShardToMerge: aws.String(open[i+1].id)}); err != nil {
		f.t.Fatalf("merge %s+%s: %v", open[i].id, open[i+1].id, err)
	}
	if err := testenv.WaitStreamActive(ctx, f.kc, f.stream); err != nil {
		f.t.Fatal(err)
	}
	f.t.Logf("merge %s+%s", open[i].id, open[i+1].id)
}
