package retrieval

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/internal/kinesisstub"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

func TestBudgetReserve(t *testing.T) {
	ctx := context.Background()
	b := NewBudget(1000)
	if n, _ := b.reserve(ctx, 5000, 100); n != 1000 {
		t.Fatalf("first reservation got %d, want all 1000", n)
	}
	b.adjust(1000, 950) // the response was smaller
	if n, _ := b.reserve(ctx, 500, 20); n != 50 {
		t.Fatalf("reservation with 50 free got %d, want 50", n)
	}
	got := make(chan int64)
	go func() {
		n, _ := b.reserve(ctx, 500, 100) // waits: nothing free
		got <- n
	}()
	select {
	case n := <-got:
		t.Fatalf("reserved %d with nothing free", n)
	case <-time.After(20 * time.Millisecond):
	}
	b.release(300)
	if n := <-got; n != 300 {
		t.Fatalf("after a release of 300 got %d, want 300", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.reserve(cctx, 500, 100); err == nil {
		t.Fatal("reserve on a full budget ignored its context")
	}
	empty := NewBudget(10)
	if n, _ := empty.reserve(ctx, 500, 100); n != 100 {
		t.Fatalf("an empty budget smaller than the floor granted %d, want the floor 100", n)
	}
	var none *Budget
	if n, _ := none.reserve(ctx, 500, 100); n != 500 || none.Used() != 0 {
		t.Fatal("a nil budget bounds something")
	}
}

// TestPollerBudgetShapesLimit: under a budget far smaller than one full
// response, the Poller still reads every record in order, in calls whose
// Limit follows the room left, holds no more than the budget plus one
// response, and gives everything back when closed.
func TestPollerBudgetShapesLimit(t *testing.T) {
	const n = 3000
	srv, err := kinesisstub.Start(kinesisstub.Config{Stream: "s", Shards: 1, Records: n, RecordSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := kinesis.New(kinesis.Options{BaseEndpoint: aws.String(srv.URL), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	budget := NewBudget(600 << 10)
	p := NewPoller(c, PollerConfig{StreamName: "s", Shard: shard.Info{ID: "shardId-000000000000"},
		Start: seqnum.Sentinel(seqnum.TrimHorizon), IdleTimeBetweenReads: time.Millisecond, Budget: budget}, zaptest.NewLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	p.Start(ctx)
	got, calls, maxBatch := 0, 0, 0
	last := ""
	for got < n {
		b, err := p.Next(ctx)
		if err != nil {
			t.Fatalf("after %d records (%d bytes of budget held): %v", got, budget.Used(), err)
		}
		if len(b.Records) == 0 {
			continue
		}
		calls++
		maxBatch = max(maxBatch, len(b.Records))
		for _, r := range b.Records {
			if last != "" && r.SequenceNumber <= last {
				t.Fatalf("record %s after %s", r.SequenceNumber, last)
			}
			last = r.SequenceNumber
		}
		got += len(b.Records)
		if u := budget.Used(); u > budget.Limit()+(2<<20) {
			t.Fatalf("%d bytes held under a %d-byte budget", u, budget.Limit())
		}
	}
	if maxBatch > 600 {
		t.Fatalf("a batch of %d records (1.4 KB each) under a 600 KiB budget", maxBatch)
	}
	_ = p.Close()
	if u := budget.Used(); u != 0 {
		t.Fatalf("%d bytes still held after Close", u)
	}
	t.Logf("%d records in %d batches, largest %d", got, calls, maxBatch)
}
