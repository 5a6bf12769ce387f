package retrieval

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/multilangd/multilangd/record"
)

type queueItem struct{ bytes, records int }

func TestBatchQueueBounds(t *testing.T) {
	tests := []struct {
		name                             string
		maxBatches, maxBytes, maxRecords int
		items                            []queueItem
		full                             bool
	}{
		{"empty", 1, 1, 1, nil, false},
		{"below every bound", 3, 100, 10, []queueItem{{10, 1}, {10, 1}}, false},
		{"batches reached", 2, 100, 10, []queueItem{{10, 1}, {10, 1}}, true},
		{"bytes reached", 3, 20, 10, []queueItem{{10, 1}, {10, 1}}, true},
		{"records reached", 3, 100, 2, []queueItem{{10, 1}, {10, 1}}, true},
		{"one batch overshoots every bound", 3, 5, 2, []queueItem{{50, 20}}, true},
		{"zero bytes and records count", 3, 1, 1, []queueItem{{0, 0}, {0, 0}}, false},
		{"records unbounded", 3, 100, int(^uint(0) >> 1), []queueItem{{1, 1000}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newBatchQueue("test", tc.maxBatches, tc.maxBytes, tc.maxRecords)
			for _, it := range tc.items {
				q.push(record.Batch{}, it.bytes, it.records)
			}
			// A done context: waitSpace answers at once, nil when there is room.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := q.waitSpace(ctx)
			if full := err != nil; full != tc.full {
				t.Fatalf("full = %v (err %v), want %v", full, err, tc.full)
			}
			if tc.full && !errors.Is(err, context.Canceled) {
				t.Fatalf("waitSpace error %v, want context.Canceled", err)
			}
			n := len(tc.items)
			err = q.enqueue(ctx, record.Batch{}, 1, 1)
			if tc.full {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("enqueue on a full queue: %v, want context.Canceled", err)
				}
			} else {
				if err != nil {
					t.Fatalf("enqueue with room: %v", err)
				}
				n++
			}
			if len(q.queue) != n {
				t.Fatalf("%d batches queued, want %d", len(q.queue), n)
			}
		})
	}
}

func TestBatchQueueNext(t *testing.T) {
	errBoom := errors.New("boom")
	batch := func(seq string) record.Batch {
		return record.Batch{Records: []record.Record{{SequenceNumber: seq}}}
	}
	tests := []struct {
		name    string
		start   bool
		closeQ  bool // close before calling next
		batches []record.Batch
		runErr  error
		want    []string // sequence numbers in order; "END" for a ShardEnd batch
		wantErr error
	}{
		{name: "not started", wantErr: ErrNotStarted},
		{name: "closed", start: true, closeQ: true, batches: []record.Batch{batch("1")}, wantErr: ErrClosed},
		{name: "order then closed on nil", start: true, batches: []record.Batch{batch("1"), batch("2"), batch("3")}, want: []string{"1", "2", "3"}, wantErr: ErrClosed},
		{name: "cancelled is closed", start: true, batches: []record.Batch{batch("1")}, runErr: context.Canceled, want: []string{"1"}, wantErr: ErrClosed},
		{name: "loop error after the batches", start: true, batches: []record.Batch{batch("1")}, runErr: errBoom, want: []string{"1"}, wantErr: errBoom},
		{name: "shard end wins over the loop error", start: true, batches: []record.Batch{batch("1"), {ShardEnd: true}}, runErr: errBoom, want: []string{"1", "END"}, wantErr: ErrShardEnded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newBatchQueue("test", 10, 1<<20, 1000)
			defer q.close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if tc.start {
				q.start(ctx, func(ctx context.Context) error {
					for _, b := range tc.batches {
						if err := q.enqueue(ctx, b, 1, len(b.Records)); err != nil {
							return err
						}
					}
					return tc.runErr
				})
			}
			if tc.closeQ {
				q.close()
			}
			var got []string
			for {
				b, err := q.next(ctx)
				if err != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("next error %v, want %v", err, tc.wantErr)
					}
					break
				}
				switch {
				case b.ShardEnd:
					got = append(got, "END")
				case len(b.Records) == 1:
					got = append(got, b.Records[0].SequenceNumber)
				default:
					t.Fatalf("unexpected batch %+v", b)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
			if !tc.closeQ && (q.bytes != 0 || q.records != 0) {
				t.Errorf("after draining: %d bytes, %d records counted", q.bytes, q.records)
			}
		})
	}
}

// TestBatchQueueBlocking: enqueue waits for next to make room, next waits for
// a batch or its context, and close stops the goroutine.
func TestBatchQueueBlocking(t *testing.T) {
	tests := []struct {
		name string
		test func(t *testing.T, q *batchQueue)
	}{
		{"enqueue waits for room", func(t *testing.T, q *batchQueue) {
			queued := make(chan int, 3)
			q.start(context.Background(), func(ctx context.Context) error {
				for i := range 3 {
					if err := q.enqueue(ctx, record.Batch{}, 0, 0); err != nil {
						return err
					}
					queued <- i
				}
				<-ctx.Done()
				return ctx.Err()
			})
			<-queued // the first batch fills the queue (maxBatches 1)
			select {
			case i := <-queued:
				t.Fatalf("batch %d queued into a full queue", i)
			case <-time.After(50 * time.Millisecond):
			}
			for range 3 {
				if _, err := q.next(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			<-queued
			<-queued
		}},
		{"next waits for its context", func(t *testing.T, q *batchQueue) {
			q.start(context.Background(), func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if _, err := q.next(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("next: %v, want context.DeadlineExceeded", err)
			}
		}},
		{"close cancels a blocked enqueue", func(t *testing.T, q *batchQueue) {
			stopped := make(chan error, 1)
			q.start(context.Background(), func(ctx context.Context) error {
				for {
					if err := q.enqueue(ctx, record.Batch{}, 0, 0); err != nil {
						stopped <- err
						return err
					}
				}
			})
			q.close()
			if err := <-stopped; !errors.Is(err, context.Canceled) {
				t.Fatalf("enqueue after close: %v, want context.Canceled", err)
			}
			if _, err := q.next(context.Background()); !errors.Is(err, ErrClosed) {
				t.Fatalf("next after close: %v, want ErrClosed", err)
			}
		}},
		{"start runs once and not after close", func(t *testing.T, q *batchQueue) {
			runs := 0
			run := func(context.Context) error { runs++; return nil }
			q.start(context.Background(), run)
			q.start(context.Background(), run)
			q.close()
			q.start(context.Background(), run)
			q.close()
			if runs != 1 {
				t.Fatalf("run called %d times, want 1", runs)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newBatchQueue("test", 1, 1<<20, 1000)
			defer q.close()
			tc.test(t, &q)
		})
	}
}
