package subprocess

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/record"
)

// startNodeSample runs samples/node/sample_kcl_app.js with the real aws-kcl
// client, exactly as the sample.properties executableName does.
func startNodeSample(t *testing.T, output string) (*Child, *transcript, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	tr := &transcript{}
	env := []string{"NODE_PATH=" + testenv.NodeModulesT(t)}
	if output != "" {
		env = append(env, "KCL_SAMPLE_OUTPUT="+output)
	}
	c, err := Start(context.Background(), Config{
		Command:            "node sample_kcl_app.js",
		ShardID:            "shardId-000000000001",
		Dir:                filepath.Join(testenv.RepoRoot(), "samples", "node"),
		Env:                env,
		Timeout:            20 * time.Second,
		ChildShutdownGrace: 5 * time.Second,
		Logger:             zap.New(core),
		trace:              tr.hook,
	})
	if err != nil {
		t.Fatalf("Start node sample (node must be installed): %v", err)
	}
	t.Cleanup(func() {
		_ = c.Close(context.Background())
		assertGone(t, c.PID())
	})
	return c, tr, logs
}

func TestNodeSampleProcessAndShardEnd(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.jsonl")
	c, tr, logs := startNodeSample(t, out)
	ctx := context.Background()
	seq1 := "49590338271490256608559692538361571095921575989136588898"
	seq2 := "49590338271490256608559692538361571095921575989136588899"
	at := time.UnixMilli(1700000000123)
	batch1 := []record.Record{
		{Data: []byte("hello"), PartitionKey: "pk1", SequenceNumber: seq1, ApproximateArrivalTimestamp: at},
		{Data: []byte("kpl sub-record\nwith newline"), PartitionKey: "pk\"2", SequenceNumber: seq2, SubSequenceNumber: 1, ApproximateArrivalTimestamp: at, Aggregated: true},
	}
	batch2 := []record.Record{{Data: []byte("third"), PartitionKey: "pk3", SequenceNumber: "7", ApproximateArrivalTimestamp: at}}

	if err := c.Initialize(ctx, "shardId-000000000001", ptr("TRIM_HORIZON"), ptr(int64(0))); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	cp1, cp2 := &fakeCheckpointer{}, &fakeCheckpointer{}
	if err := c.ProcessRecords(ctx, batch1, ptr(int64(1000)), cp1); err != nil {
		t.Fatalf("ProcessRecords 1: %v", err)
	}
	if err := c.ProcessRecords(ctx, batch2, ptr(int64(0)), cp2); err != nil {
		t.Fatalf("ProcessRecords 2: %v", err)
	}
	endCP := &fakeCheckpointer{}
	if err := c.ShardEnded(ctx, endCP); err != nil {
		t.Fatalf("ShardEnded: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	sent, received := tr.get()
	assertLines(t, "sent", sent, []string{
		`{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}` + "\n",
		`{"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk1","sequenceNumber":"` + seq1 + `","approximateArrivalTimestamp":1700000000123,"subSequenceNumber":0,"action":"record"},` +
			`{"data":"a3BsIHN1Yi1yZWNvcmQKd2l0aCBuZXdsaW5l","partitionKey":"pk\"2","sequenceNumber":"` + seq2 + `","approximateArrivalTimestamp":1700000000123,"subSequenceNumber":1,"action":"record"}],"millisBehindLatest":1000}` + "\n",
		`{"action":"checkpoint","sequenceNumber":"` + seq2 + `","subSequenceNumber":null,"error":null}` + "\n",
		`{"action":"processRecords","records":[{"data":"dGhpcmQ=","partitionKey":"pk3","sequenceNumber":"7","approximateArrivalTimestamp":1700000000123,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}` + "\n",
		`{"action":"checkpoint","sequenceNumber":"7","subSequenceNumber":null,"error":null}` + "\n",
		`{"action":"shardEnded"}` + "\n",
		`{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}` + "\n",
	})
	assertLines(t, "received", received, []string{
		`{"action":"status","responseFor":"initialize"}`,
		`{"action":"checkpoint","sequenceNumber":"` + seq2 + `"}`,
		`{"action":"status","responseFor":"processRecords"}`,
		`{"action":"checkpoint","sequenceNumber":"7"}`,
		`{"action":"status","responseFor":"processRecords"}`,
		`{"action":"checkpoint","sequenceNumber":null}`,
		`{"action":"status","responseFor":"shardEnded"}`,
	})
	// Node sends no subSequenceNumber: the Checkpointer sees nil (= 0).
	if len(cp1.calls) != 1 || *cp1.calls[0].seq != seq2 || cp1.calls[0].sub != nil {
		t.Errorf("batch 1 checkpoints: %+v", cp1.calls)
	}
	if len(endCP.calls) != 1 || endCP.calls[0].seq != nil {
		t.Errorf("shardEnded checkpoints: %+v", endCP.calls)
	}

	// One stderr line per record, logged with the shard id.
	var stderr []string
	for _, e := range logs.FilterMessage("child stderr").All() {
		if e.ContextMap()["shardId"] != "shardId-000000000001" {
			t.Errorf("stderr entry without shardId: %v", e.ContextMap())
		}
		stderr = append(stderr, e.ContextMap()["line"].(string))
	}
	joined := strings.Join(stderr, "\n")
	for _, want := range []string{
		"shard=shardId-000000000001 seq=" + seq1 + " sub=0 pk=pk1 data=hello",
		"shard=shardId-000000000001 seq=" + seq2 + ` sub=1 pk=pk"2 data=kpl sub-record with newline`,
		"shard=shardId-000000000001 seq=7 sub=0 pk=pk3 data=third",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("stderr lacks %q:\n%s", want, joined)
		}
	}
	ended := logs.FilterMessage("child process ended").All()
	if len(ended) != 1 || ended[0].ContextMap()["exitCode"] != int64(0) {
		t.Errorf("child did not exit 0 on stdin EOF: %v", ended)
	}

	// KCL_SAMPLE_OUTPUT: one JSON line per record.
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("output has %d lines:\n%s", len(lines), b)
	}
	var got struct {
		ShardID           string `json:"shardId"`
		SequenceNumber    string `json:"sequenceNumber"`
		SubSequenceNumber int64  `json:"subSequenceNumber"`
		PartitionKey      string `json:"partitionKey"`
		Data              []byte `json:"data"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &got); err != nil {
		t.Fatal(err)
	}
	if got.ShardID != "shardId-000000000001" || got.SequenceNumber != seq2 || got.SubSequenceNumber != 1 ||
		got.PartitionKey != `pk"2` || string(got.Data) != "kpl sub-record\nwith newline" {
		t.Errorf("output line 2 = %+v", got)
	}
}

func TestNodeSampleShutdownRequestedThenLeaseLost(t *testing.T) {
	c, tr, logs := startNodeSample(t, "")
	ctx := context.Background()
	if err := c.Initialize(ctx, "shardId-000000000002", ptr("12345"), ptr(int64(0))); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	cp := &fakeCheckpointer{err: namedErr("ShutdownException")}
	if err := c.ShutdownRequested(ctx, cp); err != nil {
		t.Fatalf("ShutdownRequested: %v", err)
	}
	if err := c.LeaseLost(ctx); err != nil {
		t.Fatalf("LeaseLost: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sent, received := tr.get()
	assertLines(t, "sent", sent, []string{
		`{"action":"initialize","shardId":"shardId-000000000002","sequenceNumber":"12345","subSequenceNumber":0}` + "\n",
		`{"action":"shutdownRequested"}` + "\n",
		`{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ShutdownException"}` + "\n",
		`{"action":"leaseLost"}` + "\n",
	})
	assertLines(t, "received", received, []string{
		`{"action":"status","responseFor":"initialize"}`,
		`{"action":"checkpoint","sequenceNumber":null}`,
		`{"action":"status","responseFor":"shutdownRequested"}`,
		`{"action":"status","responseFor":"leaseLost"}`,
	})
	if logs.FilterField(zap.String("line", "shard=shardId-000000000002 checkpoint null failed: ShutdownException")).Len() != 1 {
		t.Errorf("checkpoint error not reported by the sample: %v", logs.FilterMessage("child stderr").All())
	}
}
