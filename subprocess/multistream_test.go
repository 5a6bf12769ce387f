package subprocess

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/record"
)

// TestNodeSampleIgnoresStreamName: the real aws-kcl sample, unchanged,
// accepts initialize with the multi-stream "streamName" field and processes
// and checkpoints as usual (docs/multistream.md, the child).
func TestNodeSampleIgnoresStreamName(t *testing.T) {
	nodePath := testenv.NodeModulesT(t)
	tr := &transcript{}
	c, err := Start(context.Background(), Config{
		Command:            "node sample_kcl_app.js",
		ShardID:            "shardId-000000000002",
		StreamName:         "orders",
		StreamIdentifier:   "000000000000:orders:1700000000",
		Dir:                filepath.Join(testenv.RepoRoot(), "samples", "node"),
		Env:                []string{"NODE_PATH=" + nodePath},
		Timeout:            20 * time.Second,
		ChildShutdownGrace: 5 * time.Second,
		Logger:             zap.NewNop(),
		trace:              tr.hook,
	})
	if err != nil {
		t.Fatalf("Start node sample (node must be installed): %v", err)
	}
	t.Cleanup(func() {
		_ = c.Close(context.Background())
		assertGone(t, c.PID())
	})
	ctx := context.Background()
	if err := c.Initialize(ctx, "shardId-000000000002", ptr("LATEST"), ptr(int64(0))); err != nil {
		t.Fatalf("Initialize with streamName: %v", err)
	}
	cp := &fakeCheckpointer{}
	recs := []record.Record{{Data: []byte("x"), PartitionKey: "p", SequenceNumber: "11", ApproximateArrivalTimestamp: time.UnixMilli(1)}}
	if err := c.ProcessRecords(ctx, recs, ptr(int64(0)), cp); err != nil {
		t.Fatalf("ProcessRecords: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sent, received := tr.get()
	if len(sent) == 0 || sent[0] != `{"action":"initialize","shardId":"shardId-000000000002","streamName":"orders","sequenceNumber":"LATEST","subSequenceNumber":0}`+"\n" {
		t.Errorf("initialize sent: %q", sent)
	}
	if len(received) == 0 || received[0] != `{"action":"status","responseFor":"initialize"}` {
		t.Errorf("child's answer to initialize: %q", received)
	}
	if len(cp.calls) != 1 || *cp.calls[0].seq != "11" {
		t.Errorf("checkpoints after a multi-stream initialize: %+v", cp.calls)
	}
}

func TestConfigEnvNamesTheStream(t *testing.T) {
	base := []string{"A=1"}
	single := Config{Env: base}
	if got := single.env(); !slices.Equal(got, base) {
		t.Errorf("single-stream env = %q, want %q", got, base)
	}
	if got := (Config{}).env(); got != nil {
		t.Errorf("single-stream env without Env = %q, want nil (inherit)", got)
	}
	multi := Config{Env: base, StreamName: "orders", StreamIdentifier: "1:orders:2"}
	want := []string{"A=1", StreamNameEnv + "=orders", StreamIdentifierEnv + "=1:orders:2"}
	if got := multi.env(); !slices.Equal(got, want) {
		t.Errorf("multi-stream env = %q, want %q", got, want)
	}
	if len(base) != 1 {
		t.Errorf("env() modified Config.Env: %q", base)
	}
}
