package subprocess_test

import (
	"context"
	"errors"
	"log"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/subprocess"
)

// noCheckpoint stands in for the lease checkpointer.
type noCheckpoint struct{}

func (noCheckpoint) Checkpoint(context.Context, *string, *int64) error { return nil }

// The life of one child, as a shard consumer drives it.
func Example() {
	ctx := context.Background()
	child, err := subprocess.Start(ctx, subprocess.Config{
		Command:            "node sample_kcl_app.js", // executableName
		ShardID:            "shardId-000000000000",
		Timeout:            60 * time.Second, // timeoutInSeconds
		ChildShutdownGrace: 5 * time.Second,
		Logger:             zap.NewExample(),
	})
	if err != nil {
		log.Print(err) // *subprocess.StartError: retry the shard later
		return
	}
	defer child.Close(ctx) // close stdin, wait, SIGTERM/SIGKILL the group, reap

	seq, sub := "TRIM_HORIZON", int64(0)
	err = child.Initialize(ctx, "shardId-000000000000", &seq, &sub)
	if err == nil {
		recs := []record.Record{{Data: []byte("hello"), PartitionKey: "pk", SequenceNumber: "1", ApproximateArrivalTimestamp: time.Now()}}
		err = child.ProcessRecords(ctx, recs, nil, noCheckpoint{})
	}
	if err == nil {
		err = child.ShardEnded(ctx, noCheckpoint{})
	}
	switch {
	case errors.Is(err, subprocess.ErrTimeout), errors.Is(err, subprocess.ErrExited), errors.Is(err, subprocess.ErrProtocol):
		log.Print(err) // the child is already killed and reaped; only this shard is affected
	case err != nil:
		log.Print(err)
	}
}
