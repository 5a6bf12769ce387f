package e2e

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// producer puts batch records every period until stopped; it runs in its
// own goroutine, owned by stop.
type producer struct {
	mu     sync.Mutex
	put    int
	errs   []string
	cancel context.CancelFunc
	done   chan struct{}
}

// startProducer writes records "rec-%07d" with distinct partition keys (so
// they spread over the shards).
func (e *env) startProducer(batch int, period time.Duration) *producer {
	ctx, cancel := context.WithCancel(context.Background())
	p := &producer{cancel: cancel, done: make(chan struct{})}
	go func() { // owned by stop, which cancels ctx and waits
		defer close(p.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			p.putBatch(ctx, e.kc, e.stream, batch)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	e.t.Cleanup(func() { p.stop() })
	return p
}

func (p *producer) putBatch(ctx context.Context, kc *kinesis.Client, stream string, n int) {
	p.mu.Lock()
	start := p.put
	p.mu.Unlock()
	entries := make([]ktypes.PutRecordsRequestEntry, n)
	for i := range entries {
		id := start + i
		entries[i] = ktypes.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("pk-%d", id)), Data: []byte(fmt.Sprintf("rec-%07d", id))}
	}
	for len(entries) > 0 && ctx.Err() == nil {
		out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
		if err != nil {
			p.mu.Lock()
			p.errs = append(p.errs, err.Error())
			p.mu.Unlock()
			return
		}
		var retry []ktypes.PutRecordsRequestEntry
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				retry = append(retry, entries[i])
			}
		}
		p.mu.Lock()
		p.put += len(entries) - len(retry)
		p.mu.Unlock()
		entries = retry
	}
}

// count is how many records were put so far.
func (p *producer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.put
}

// stop ends the producer and returns how many records it put.
func (p *producer) stop() int {
	p.cancel()
	<-p.done
	return p.count()
}
