// Package e2e runs the real multilangd binary as a process against the
// emulators, configured only through KCL properties, with the aws-kcl Node
// sample (or a scripted child) as the record processor.
package e2e

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/retrieval/kpl"
	"github.com/multilangd/multilangd/seqnum"
)

// Show: 4-shard stream, 20,000 records incl. KPL aggregates, one daemon and
// the aws-kcl sample: every record delivered, per-shard order kept,
// checkpoints at the last record of every shard; a graceful stop exits 0 and
// releases the leases.
func TestFourShardsAllRecordsDelivered(t *testing.T) {
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 4)
	ids := e.put(putOptions{n: 20000, aggEvery: 10, aggSize: 10})
	out := filepath.Join(e.dir, "out.jsonl")
	d := e.startDaemon("daemon", e.props("app", nil), out)

	got := waitDeliveredOnce(t, d, out, ids, 4, 150*time.Second)
	shards := byShard(got)
	aggregated := 0
	for _, r := range got {
		if r.SubSequenceNumber > 0 {
			aggregated++
		}
	}
	if aggregated == 0 {
		t.Fatal("no de-aggregated sub-records delivered")
	}

	// The sample checkpoints at the end of every batch: each lease ends at
	// its shard's last record.
	waitFor(t, 30*time.Second, "checkpoints at each shard's last record", func() bool { return e.checkpointedAtLastDelivered(shards) }, d)

	// The operator's view.
	cmd := exec.Command(binDaemon, "leases", "-p", filepath.Join(e.dir, "app.properties"))
	cmd.Env = append(cmd.Environ(), "AWS_ACCESS_KEY_ID="+testenv.AccessKey, "AWS_SECRET_ACCESS_KEY="+testenv.SecretKey)
	tab, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("multilangd leases: %v\n%s", err, tab)
	}
	t.Logf("multilangd leases:\n%s", tab)
	if n := strings.Count(string(tab), "OWNED"); n != 4 {
		t.Errorf("leases table shows %d OWNED rows, want 4", n)
	}

	if code := d.stop(40 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	for _, l := range e.leases() {
		if l.Owner != "" {
			t.Errorf("lease %s still owned by %q after a graceful stop", l.Key, l.Owner)
		}
	}
}

// Show: restart mid-stream (SIGKILL the daemon): after restart nothing is
// lost and nothing at or before the last checkpoint is delivered again.
func TestRestartAfterSIGKILL(t *testing.T) {
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 2)
	ids := e.put(putOptions{n: 6000, aggEvery: 5, aggSize: 4})
	props := e.props("app", map[string]string{"maxRecords": "100"})
	out1 := filepath.Join(e.dir, "out1.jsonl")
	d1 := e.startDaemon("daemon1", props, out1)
	waitFor(t, 60*time.Second, "progress and a numeric checkpoint", func() bool {
		if len(readOutput(t, out1)) < 800 {
			return false
		}
		for _, l := range e.leases() {
			if seqnum.IsDigits(l.Checkpoint.Sequence) {
				return true
			}
		}
		return false
	}, d1)
	d1.kill()
	run1 := readOutput(t, out1)
	if len(run1) >= len(ids) {
		t.Fatalf("the first run finished before the kill (%d deliveries); the test needs a slower stream", len(run1))
	}
	atKill := map[string]seqnum.ESN{}
	for _, l := range e.leases() {
		atKill[l.Key] = l.Checkpoint
	}
	t.Logf("killed after %d deliveries; checkpoints %v", len(run1), atKill)

	out2 := filepath.Join(e.dir, "out2.jsonl")
	d2 := e.startDaemon("daemon2", props, out2)
	var run2 []delivered
	waitFor(t, 120*time.Second, "all records after the restart", func() bool {
		run2 = readOutput(t, out2)
		return countDistinct(run1, run2) == len(ids)
	}, d2)
	if m := missing(ids, run1, run2); len(m) > 0 {
		t.Fatalf("%d records lost, e.g. %v", len(m), m[:min(5, len(m))])
	}
	checkOrdered(t, run2)
	for _, r := range run2 {
		cp := atKill[r.ShardID]
		if seqnum.IsDigits(cp.Sequence) && seqnum.MustCompare(r.ESN(), cp) <= 0 {
			t.Fatalf("shard %s: %s delivered again although checkpoint was %s", r.ShardID, r.ESN(), cp)
		}
	}
	// Everything after the checkpoint of run 1 comes again, from the next record on.
	for sh, list := range byShard(run2) {
		cp := atKill[sh]
		var first *delivered
		for i := range run1 {
			if run1[i].ShardID == sh && seqnum.IsDigits(cp.Sequence) && seqnum.MustCompare(run1[i].ESN(), cp) > 0 {
				first = &run1[i]
				break
			}
		}
		if first != nil && list[0].ESN() != first.ESN() {
			t.Errorf("shard %s: restart began at %s, want %s (first record after checkpoint %s)", sh, list[0].ESN(), first.ESN(), cp)
		}
	}
}

// Show: resume inside a partly checkpointed aggregate delivers exactly the
// remaining sub-records (scripted child checkpointing (seq, 4)).
func TestResumeInsidePartlyCheckpointedAggregate(t *testing.T) {
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 1)
	var ids []string
	ids = append(ids, e.put(putOptions{start: 0, n: 5})...)
	ids = append(ids, e.put(putOptions{start: 5, n: 10, aggEvery: 1, aggSize: 10})...)
	ids = append(ids, e.put(putOptions{start: 15, n: 5})...)
	props := e.props("app", map[string]string{"executableName": binAggChild})

	out1 := filepath.Join(e.dir, "out1.jsonl")
	d1 := e.startDaemon("daemon1", props, out1, "AGGCHILD_MODE=partial", "AGGCHILD_STOP_SUB=4")
	var cp seqnum.ESN
	waitFor(t, 60*time.Second, "checkpoint inside the aggregate", func() bool {
		ls := e.leases()
		if len(ls) == 1 && ls[0].Checkpoint.SubSequence == 4 {
			cp = ls[0].Checkpoint
			return true
		}
		return false
	}, d1)
	d1.kill()
	run1 := readOutput(t, out1)
	if got := len(run1); got != 10 {
		t.Fatalf("first run delivered %d records, want 10 (5 plain + sub-records 0..4)", got)
	}

	out2 := filepath.Join(e.dir, "out2.jsonl")
	d2 := e.startDaemon("daemon2", props, out2, "AGGCHILD_MODE=normal")
	var run2 []delivered
	waitFor(t, 60*time.Second, "the rest of the stream", func() bool {
		run2 = readOutput(t, out2)
		return len(run2) >= 10
	}, d2)
	time.Sleep(time.Second) // let any extra delivery show up
	run2 = readOutput(t, out2)
	var got []string
	for _, r := range run2 {
		got = append(got, r.payload())
	}
	want := ids[10:]
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after resuming at %s delivered\n%v\nwant exactly\n%v", cp, got, want)
	}
	if run2[0].SequenceNumber != cp.Sequence || run2[0].SubSequenceNumber != 5 {
		t.Fatalf("first delivery after restart %s, want %s/5", run2[0].ESN(), cp.Sequence)
	}
}

// Show: TRIM_HORIZON, LATEST and AT_TIMESTAMP starts behave as in Java.
func TestInitialPositions(t *testing.T) {
	for _, pos := range []string{"TRIM_HORIZON", "AT_TIMESTAMP", "LATEST"} {
		t.Run(pos, func(t *testing.T) {
			e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 1)
			before := e.put(putOptions{start: 0, n: 10})
			ts := time.Now().Unix() + 1
			time.Sleep(time.Until(time.Unix(ts+1, 0)))
			after := e.put(putOptions{start: 10, n: 10})

			extra := map[string]string{"initialPositionInStream": pos}
			if pos == "AT_TIMESTAMP" {
				extra["initialPositionInStream"] = ""
				extra["initialPositionInStreamExtended"] = fmt.Sprint(ts)
			}
			out := filepath.Join(e.dir, "out.jsonl")
			d := e.startDaemon("daemon", e.props("app", extra), out)

			switch pos {
			case "TRIM_HORIZON", "AT_TIMESTAMP":
				want := append(append([]string(nil), before...), after...)
				if pos == "AT_TIMESTAMP" {
					want = after
				}
				var got []delivered
				waitFor(t, 60*time.Second, "records", func() bool {
					got = readOutput(t, out)
					return countDistinct(got) >= len(want)
				}, d)
				var ps []string
				for _, r := range got {
					ps = append(ps, r.payload())
				}
				if strings.Join(ps, ",") != strings.Join(want, ",") {
					t.Fatalf("delivered %v, want %v", ps, want)
				}
				if l := e.leases(); len(l) != 1 || l[0].Checkpoint.Sequence != got[len(got)-1].SequenceNumber {
					t.Fatalf("lease after processing: %s", fmtLeases(l))
				}
			case "LATEST":
				// Records put after the worker positioned itself arrive; keep
				// putting until one does, then nothing older may show up.
				var live []string
				var got []delivered
				next := 100
				waitFor(t, 60*time.Second, "a live record", func() bool {
					live = append(live, e.put(putOptions{start: next, n: 1})...)
					next++
					got = readOutput(t, out)
					return len(got) > 0
				}, d)
				time.Sleep(time.Second)
				got = readOutput(t, out)
				if m := missing(before, got); len(m) != len(before) {
					t.Fatalf("LATEST delivered records put before the start: %v", got)
				}
				if m := missing(after, got); len(m) != len(after) {
					t.Fatalf("LATEST delivered records put before the start: %v", got)
				}
				// What arrived is a contiguous tail of the live records.
				first := strings.Index(strings.Join(live, ","), got[0].payload())
				var ps []string
				for _, r := range got {
					ps = append(ps, r.payload())
				}
				if first < 0 || !strings.HasSuffix(strings.Join(live, ","), strings.Join(ps, ",")) {
					t.Fatalf("LATEST delivered %v; live records were %v", ps, live)
				}
			}
		})
	}
}

// Show: two daemons on one stream share its shards; when one is SIGKILLed
// the other finishes all records.
func TestTwoDaemonsShareAndTakeOver(t *testing.T) {
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 4)
	outA := filepath.Join(e.dir, "outA.jsonl")
	outB := filepath.Join(e.dir, "outB.jsonl")
	dA := e.startDaemon("daemonA", e.props("a", map[string]string{"workerId": "worker-A"}), outA)
	dB := e.startDaemon("daemonB", e.props("b", map[string]string{"workerId": "worker-B"}), outB)

	const rounds, per = 40, 200
	var (
		mu  sync.Mutex
		ids []string
		wg  sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < rounds && ctx.Err() == nil; i++ {
			got := e.put(putOptions{start: i * per, n: per, aggEvery: 7, aggSize: 3})
			mu.Lock()
			ids = append(ids, got...)
			mu.Unlock()
			time.Sleep(400 * time.Millisecond)
		}
	}()

	waitFor(t, 90*time.Second, "both workers holding leases and processing", func() bool {
		owners := map[string]int{}
		for _, l := range e.leases() {
			owners[l.Owner]++
		}
		return owners["worker-A"] > 0 && owners["worker-B"] > 0 &&
			len(readOutput(t, outA)) > 0 && len(readOutput(t, outB)) > 0
	}, dA, dB)
	t.Logf("shared:\n%s", fmtLeases(e.leases()))
	dB.kill()

	wg.Wait()
	mu.Lock()
	all := append([]string(nil), ids...)
	mu.Unlock()
	waitFor(t, 90*time.Second, "worker A to finish every record", func() bool {
		return len(missing(all, readOutput(t, outA), readOutput(t, outB))) == 0
	}, dA)
	for _, l := range e.leases() {
		if l.Owner != "worker-A" {
			t.Errorf("lease %s owned by %q after the take-over", l.Key, l.Owner)
		}
	}
	// A may have lost a shard to B by a steal and taken it back after B's
	// SIGKILL from B's checkpoint, below what A had delivered.
	checkOrderedAcrossRestarts(t, readOutput(t, outA))
}

// Show: split one shard and merge two others while records flow: no record
// lost, no child-shard record delivered before its parents' last record was
// checkpointed, old leases cleaned up.
// It runs on kinesis-local + DynamoDB Local (children from GetRecords
// ChildShards) and on kinesalite + dynalite (no ChildShards: children from
// ListShards).
func TestSplitAndMergeWhileRecordsFlow(t *testing.T) {
	for _, emu := range []struct {
		name     string
		kin, ddb testenv.Kind
	}{
		{"kinesis-local", testenv.KinesisLocal, testenv.DynamoDBLocal},
		{"kinesalite", testenv.Kinesalite, testenv.Dynalite},
	} {
		t.Run(emu.name, func(t *testing.T) { testSplitAndMerge(t, emu.kin, emu.ddb) })
	}
}

func testSplitAndMerge(t *testing.T, kin, ddb testenv.Kind) {
	e := newEnv(t, kin, ddb, 3)
	ctx := context.Background()
	out := filepath.Join(e.dir, "out.jsonl")
	d := e.startDaemon("daemon", e.props("app", map[string]string{"idleTimeBetweenReadsInMillis": "300"}), out)

	ids := e.put(putOptions{start: 0, n: 150})
	waitFor(t, 90*time.Second, "first records", func() bool { return len(readOutput(t, out)) > 0 }, d)

	ls, err := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	sh := ls.Shards
	start, _ := new(big.Int).SetString(aws.ToString(sh[0].HashKeyRange.StartingHashKey), 10)
	end, _ := new(big.Int).SetString(aws.ToString(sh[0].HashKeyRange.EndingHashKey), 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(start, end), 1)
	if _, err := e.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(e.stream),
		ShardToSplit: sh[0].ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatalf("split: %v", err)
	}
	if err := testenv.WaitStreamActive(ctx, e.kc, e.stream); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, e.put(putOptions{start: 150, n: 100})...)
	if _, err := e.kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(e.stream),
		ShardToMerge: sh[1].ShardId, AdjacentShardToMerge: sh[2].ShardId}); err != nil {
		t.Fatalf("merge: %v", err)
	}
	if err := testenv.WaitStreamActive(ctx, e.kc, e.stream); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, e.put(putOptions{start: 250, n: 150})...)

	var got []delivered
	waitFor(t, 150*time.Second, "all records", func() bool {
		got = readOutput(t, out)
		return countDistinct(got) == len(ids)
	}, d)
	checkOrdered(t, got)

	// Parent gate: every parent line precedes every child line.
	all, err := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	lastIdx := map[string]int{}
	firstIdx := map[string]int{}
	for i, r := range got {
		lastIdx[r.ShardID] = i
		if _, ok := firstIdx[r.ShardID]; !ok {
			firstIdx[r.ShardID] = i
		}
	}
	children := 0
	for _, s := range all.Shards {
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if p == nil {
				continue
			}
			ci, ok := firstIdx[aws.ToString(s.ShardId)]
			if !ok {
				continue
			}
			children++
			if pi, ok := lastIdx[aws.ToString(p)]; ok && pi > ci {
				t.Errorf("child %s record (line %d) delivered before parent %s's last record (line %d)", aws.ToString(s.ShardId), ci, aws.ToString(p), pi)
			}
		}
	}
	if children == 0 {
		t.Fatal("no child shard delivered anything")
	}
	// Stronger: no child process for a child shard started before each of
	// its parents was checkpointed at SHARD_END (the daemon's own log order).
	logb, err := os.ReadFile(d.log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(logb), "\n")
	lineOf := func(shardID, msg string) int {
		for i, l := range lines {
			if strings.Contains(l, msg) && strings.Contains(l, `"shardId": "`+shardID+`"`) {
				return i
			}
		}
		return -1
	}
	for _, s := range all.Shards {
		started := lineOf(aws.ToString(s.ShardId), "child process started")
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if p == nil || started < 0 {
				continue
			}
			ended := lineOf(aws.ToString(p), "shard ended; lease checkpointed at SHARD_END")
			if ended < 0 || ended > started {
				t.Errorf("child %s started (log line %d) before parent %s reached SHARD_END (log line %d)",
					aws.ToString(s.ShardId), started, aws.ToString(p), ended)
			}
		}
	}

	// Old leases are cleaned up once the children have checkpointed.
	parents := map[string]bool{aws.ToString(sh[0].ShardId): true, aws.ToString(sh[1].ShardId): true, aws.ToString(sh[2].ShardId): true}
	waitFor(t, 60*time.Second, "parent leases deleted", func() bool {
		for _, l := range e.leases() {
			if parents[l.Key] {
				return false
			}
		}
		return true
	}, d)
	var left []lease.Lease = e.leases()
	t.Logf("leases after resharding:\n%s", fmtLeases(left))
}

// Issue item 1 (architecture decision 3): a child that keeps crashing only
// affects its own shard; after maxChildFailures consecutive failures its
// lease is released, and the daemon keeps running the other shards.
func TestCrashingChildIsIsolated(t *testing.T) {
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 2)
	ids := e.put(putOptions{n: 400})
	props := e.props("app", map[string]string{"executableName": binAggChild, "maxChildFailures": "3"})
	out := filepath.Join(e.dir, "out.jsonl")
	d := e.startDaemon("daemon", props, out, "AGGCHILD_MODE=normal", "AGGCHILD_CRASH_SHARD=shardId-000000000000")

	// The records the healthy shard owns, from the shard hash ranges.
	ls, err := e.kc.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	var healthyIDs []string
	for i, id := range ids {
		h := kpl.PartitionKeyHash(fmt.Sprintf("pk-%d", i))
		for _, s := range ls.Shards {
			if aws.ToString(s.ShardId) != "shardId-000000000001" {
				continue
			}
			rng, err := kpl.ParseRange(aws.ToString(s.HashKeyRange.StartingHashKey), aws.ToString(s.HashKeyRange.EndingHashKey))
			if err != nil {
				t.Fatal(err)
			}
			if rng.Contains(h) {
				healthyIDs = append(healthyIDs, id)
			}
		}
	}
	if len(healthyIDs) == 0 || len(healthyIDs) == len(ids) {
		t.Fatalf("unexpected hash distribution: %d of %d on shard 1", len(healthyIDs), len(ids))
	}

	waitFor(t, 60*time.Second, "the healthy shard done and the crashing shard released", func() bool {
		got := readOutput(t, out)
		for _, r := range got {
			if r.ShardID == "shardId-000000000000" {
				t.Fatalf("a record of the crashing shard was delivered: %+v", r)
			}
		}
		if len(missing(healthyIDs, got)) > 0 {
			return false
		}
		logb, _ := os.ReadFile(d.log)
		return strings.Contains(string(logb), "releasing lease after repeated failures")
	}, d)
	time.Sleep(2 * time.Second)
	if d.exited() {
		t.Fatalf("daemon exited because of one child: %v", d.err)
	}
	if code := d.stop(40 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
}

// Issue item 4: a processor that answers shardEnded without checkpointing
// does not leave the shard stuck (Java retries on the already shut-down
// processor forever): the step is retried with a new child, the parent
// reaches SHARD_END and its children are processed.
func TestShardEndWithoutCheckpointIsRetried(t *testing.T) {
	e := newEnv(t, testenv.Kinesalite, testenv.Dynalite, 1)
	ctx := context.Background()
	ids := e.put(putOptions{start: 0, n: 50})
	out := filepath.Join(e.dir, "out.jsonl")
	props := e.props("app", map[string]string{"executableName": binAggChild})
	d := e.startDaemon("daemon", props, out, "AGGCHILD_MODE=normal", "AGGCHILD_SKIP_SHARD_END_ONCE="+filepath.Join(e.dir, "skipped"))
	waitFor(t, 60*time.Second, "first records", func() bool { return countDistinct(readOutput(t, out)) == len(ids) }, d)

	ls, err := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	parent := ls.Shards[0]
	start, _ := new(big.Int).SetString(aws.ToString(parent.HashKeyRange.StartingHashKey), 10)
	end, _ := new(big.Int).SetString(aws.ToString(parent.HashKeyRange.EndingHashKey), 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(start, end), 1)
	if _, err := e.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(e.stream),
		ShardToSplit: parent.ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatalf("split: %v", err)
	}
	if err := testenv.WaitStreamActive(ctx, e.kc, e.stream); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, e.put(putOptions{start: 50, n: 50})...)
	waitFor(t, 90*time.Second, "all records, children included", func() bool {
		return countDistinct(readOutput(t, out)) == len(ids)
	}, d)
	logb, err := os.ReadFile(d.log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logb), "application didn't checkpoint at end of shard") {
		t.Fatal("the first shardEnded was not refused (marker not used?)")
	}
	if n := strings.Count(string(logb), "not checkpointing at shard end"); n != 1 {
		t.Fatalf("child skipped the shard-end checkpoint %d times, want 1", n)
	}
	got := readOutput(t, out)
	if len(got) != len(ids) {
		t.Errorf("%d deliveries for %d records: the retry re-read the parent", len(got), len(ids))
	}
}
