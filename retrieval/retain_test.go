package retrieval

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/internal/kinesisstub"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

// relayedOutput is what relayDeserializer returns for body.
func relayedOutput(t *testing.T, body string) *kinesis.GetRecordsOutput {
	p, err := decodeGetRecords(body)
	if err != nil {
		t.Fatal(err)
	}
	out := &kinesis.GetRecordsOutput{NextShardIterator: p.next, MillisBehindLatest: p.millisBehind, ChildShards: p.children}
	out.ResultMetadata.Set(relayPageKey{}, p)
	return out
}

// within reports whether s points into body's bytes.
func within(s, body string) bool {
	if len(s) == 0 || len(body) == 0 {
		return false
	}
	p, b := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(body)))
	return p >= b && p < b+uintptr(len(body))
}

// TestPollerIteratorDoesNotPinResponse: the next shard iterator the Poller
// keeps between calls is a copy, not a substring of the relayed response,
// which it would keep alive after the budget released it (for as long as
// the Poller waits for queue space or budget room).
func TestPollerIteratorDoesNotPinResponse(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	f := &fakeKinesis{script: func(n int, _ string) (*kinesis.GetRecordsOutput, error) {
		body := fmt.Sprintf(`{"MillisBehindLatest":0,"NextShardIterator":"iterator-after-%d","Records":[`+
			`{"Data":"QUJD","PartitionKey":"pk","SequenceNumber":"%d","ApproximateArrivalTimestamp":1.7e9}]}`, n, 100+n)
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
		return relayedOutput(t, body), nil
	}}
	p := startPoller(t, f, PollerConfig{Start: seqnum.Sentinel(seqnum.TrimHorizon)})
	for range 3 {
		next(t, p)
	}
	_, iters := f.snapshot()
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(iters) && i <= len(bodies); i++ {
		if within(iters[i], bodies[i-1]) {
			t.Fatalf("GetRecords call %d used iterator %q, a substring of response %d", i, iters[i], i-1)
		}
	}
}

// TestPollerBudgetFloorReachable: when 100 records' worth of the shard's
// guessed size is more than the whole budget, the Poller must not need the
// budget to be entirely free (another shard's batch held by its child, or
// idle shards' calls in flight, would keep it from ever reading): a quarter
// of the budget free is enough to make a call.
func TestPollerBudgetFloorReachable(t *testing.T) {
	budget := NewBudget(100 << 10) // less than 100 × firstPerRecordGuess
	other, err := budget.reserve(context.Background(), 1<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer budget.release(other) // another shard's batch, held throughout
	f := &fakeKinesis{script: func(n int, _ string) (*kinesis.GetRecordsOutput, error) {
		return open(kRecords(fmt.Sprint(100 + n))...), nil
	}}
	p := startPoller(t, f, PollerConfig{Start: seqnum.Sentinel(seqnum.TrimHorizon), Budget: budget})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Next(ctx); err != nil {
		t.Fatalf("no batch while %d of %d budget bytes were held by another shard: %v", other, budget.Limit(), err)
	}
}

// TestPollerRecordsLargerThanBudget: records each larger than the whole
// budget are still all read, in order, a call at a time, and the budget is
// empty after Close.
func TestPollerRecordsLargerThanBudget(t *testing.T) {
	const n = 12
	srv, err := kinesisstub.Start(kinesisstub.Config{Stream: "s", Shards: 1, Records: n, RecordSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := kinesis.New(kinesis.Options{BaseEndpoint: aws.String(srv.URL), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	budget := NewBudget(16 << 10)
	held, err := budget.reserve(context.Background(), 1<<10, 1) // another shard's batch
	if err != nil {
		t.Fatal(err)
	}
	p := NewPoller(c, PollerConfig{StreamName: "s", Shard: shard.Info{ID: "shardId-000000000000"},
		Start: seqnum.Sentinel(seqnum.TrimHorizon), IdleTimeBetweenReads: time.Millisecond, Budget: budget}, zaptest.NewLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p.Start(ctx)
	got, last := 0, ""
	for got < n {
		b, err := p.Next(ctx)
		if err != nil {
			t.Fatalf("after %d records (%d bytes of budget held): %v", got, budget.Used(), err)
		}
		for _, r := range b.Records {
			if r.SequenceNumber <= last || r.DataLen() != 64<<10 {
				t.Fatalf("record %s (%d bytes) after %s", r.SequenceNumber, r.DataLen(), last)
			}
			last = r.SequenceNumber
		}
		got += len(b.Records)
	}
	_ = p.Close()
	budget.release(held)
	if u := budget.Used(); u != 0 {
		t.Fatalf("%d bytes still held after Close", u)
	}
}
