package subprocess

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/kinesisstub"
	"github.com/multilangd/multilangd/retrieval"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

// BenchmarkRelay is the daemon's per-record hot path in one process: one
// GetRecords of 10,000 records (SDK client with signing and retries, against
// the in-memory Kinesis stand-in), the Poller's conversion, and one
// processRecords to a real child that answers at once. allocs/record and
// ns/record are per user record; the child's CPU is not counted.
func BenchmarkRelay(b *testing.B) {
	for _, c := range []struct {
		size, agg int
	}{{100, 0}, {1024, 0}, {100, 100}, {1024, 100}} {
		name := fmt.Sprintf("%dB", c.size)
		if c.agg > 0 {
			name += fmt.Sprintf("-kpl%d", c.agg)
		}
		b.Run(name, func(b *testing.B) { benchRelay(b, c.size, c.agg) })
	}
}

func benchRelay(b *testing.B, size, agg int) {
	const n = 10000
	srv, err := kinesisstub.Start(kinesisstub.Config{Stream: "bench", Shards: 1, Records: n, RecordSize: size, AggSize: agg})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	client := kinesis.New(kinesis.Options{
		BaseEndpoint: aws.String(srv.URL),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
	ctx := context.Background()
	child, err := Start(ctx, Config{Command: fakeCommand(b), ShardID: "shardId-000000000000", Env: []string{fakeChildEnv + "=relay"}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = child.Close(ctx) }()
	if err := child.Initialize(ctx, "shardId-000000000000", aws.String("TRIM_HORIZON"), nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	got := 0
	for i := 0; i < b.N; i++ {
		p := retrieval.NewPoller(client, retrieval.PollerConfig{
			StreamName: "bench", Shard: shard.Info{ID: "shardId-000000000000"},
			Start: seqnum.Sentinel(seqnum.TrimHorizon), IdleTimeBetweenReads: time.Hour,
		}, zap.NewNop())
		p.Start(ctx)
		batch, err := p.Next(ctx)
		_ = p.Close()
		if err != nil {
			b.Fatal(err)
		}
		got += len(batch.Records)
		if err := child.ProcessRecords(ctx, batch.Records, batch.MillisBehindLatest, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got != b.N*n {
		b.Fatalf("relayed %d records, want %d", got, b.N*n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(got), "ns/record")
}
