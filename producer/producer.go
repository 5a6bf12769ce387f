// Package producer owns a small Kinesis producer for demos, tests and
// benchmarks: it puts numbered word records (or caller-generated payloads) at
// a steady rate with PutRecords, optionally packed into KPL aggregates, and
// retries what Kinesis rejects so every record lands exactly once per call.
package producer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/multilangd/multilangd/internal/ctxutil"
	"github.com/multilangd/multilangd/retrieval/kpl"
)

// PutRecordsAPI is the part of *kinesis.Client the producer uses.
type PutRecordsAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// Limits of the Kinesis API.
const (
	MaxBatch       = 500     // PutRecords entries per call
	maxRecordBytes = 1 << 20 // data + partition key per record
	maxBatchBytes  = 5 << 20 // per PutRecords call
)

// Options configure a run.
type Options struct {
	// Stream and/or StreamARN address the stream (the name wins when both
	// are set: kinesalite has no ARN support).
	Stream    string
	StreamARN string
	// Count is the number of user records to put; 0 puts until ctx is done.
	Count int
	// Rate is user records per second; 0 means as fast as possible.
	Rate float64
	// PartitionKeys is the number of distinct partition keys, used round
	// robin as "pk-<i mod PartitionKeys>" (default 16).
	PartitionKeys int
	// Aggregate packs RecordsPerAggregate user records into each Kinesis
	// record in the KPL aggregated format.
	Aggregate bool
	// AggregateEvery, when Aggregate is false, makes every n-th Kinesis
	// record an aggregate and the others plain records (0 = none).
	AggregateEvery int
	// RecordsPerAggregate defaults to 10.
	RecordsPerAggregate int
	// Payload returns the data of user record i (0-based). Nil gives
	// Words(i): "<i, zero-padded> <word>".
	Payload func(i int) []byte
	// Progress receives a line about once a second and a summary at the end;
	// nil means silent.
	Progress io.Writer
	// BatchSize is the number of Kinesis records per PutRecords call
	// (default and maximum 500).
	BatchSize int
	// MaxRetries bounds the retries of one batch (whole-call failures and
	// rejected entries; default 20) before Run gives up.
	MaxRetries int
}

// Stats summarises a run.
type Stats struct {
	UserRecords    int // user records put
	KinesisRecords int // Kinesis records put (aggregates count once)
	Bytes          int // Kinesis record data bytes put
	Retried        int // entries re-sent after a rejection or failed call
	Elapsed        time.Duration
}

var words = strings.Fields(`alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima
mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu`)

// Words is the default payload: the record index, zero-padded so payloads
// sort in put order, and a word.
func Words(i int) []byte {
	return fmt.Appendf(nil, "%08d %s", i, words[i%len(words)])
}

// PartitionKey returns the partition key of user record i.
func (o *Options) PartitionKey(i int) string { return fmt.Sprintf("pk-%d", i%o.PartitionKeys) }

func (o *Options) setDefaults() error {
	if o.Stream == "" && o.StreamARN == "" {
		return errors.New("producer: no stream name or ARN")
	}
	if o.Count < 0 || o.Rate < 0 || o.AggregateEvery < 0 {
		return errors.New("producer: negative count or rate")
	}
	if o.PartitionKeys <= 0 {
		o.PartitionKeys = 16
	}
	if o.RecordsPerAggregate <= 0 {
		o.RecordsPerAggregate = 10
	}
	if o.Payload == nil {
		o.Payload = Words
	}
	if o.BatchSize <= 0 || o.BatchSize > MaxBatch {
		o.BatchSize = MaxBatch
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 20
	}
	return nil
}

// Run puts records as configured. It returns nil when Count records were put,
// or when ctx ends a run without Count; otherwise the first unrecoverable error.
func Run(ctx context.Context, client PutRecordsAPI, opts Options) error {
	_, err := Produce(ctx, client, opts)
	return err
}

// Produce is Run that also returns the run's statistics.
func Produce(ctx context.Context, client PutRecordsAPI, opts Options) (Stats, error) {
	if err := opts.setDefaults(); err != nil {
		return Stats{}, err
	}
	p := &run{client: client, o: opts, start: time.Now()}
	err := p.loop(ctx)
	p.st.Elapsed = time.Since(p.start)
	if p.o.Progress != nil {
		fmt.Fprintf(p.o.Progress, "put %d records (%d Kinesis records, %d bytes) in %s, %.0f records/s\n",
			p.st.UserRecords, p.st.KinesisRecords, p.st.Bytes, p.st.Elapsed.Round(time.Millisecond),
			float64(p.st.UserRecords)/max(p.st.Elapsed.Seconds(), 1e-9))
	}
	if err != nil && opts.Count == 0 && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		err = nil // an open-ended run stops with its context
	}
	return p.st, err
}

type run struct {
	client       PutRecordsAPI
	o            Options
	st           Stats
	start        time.Time
	next         int // index of the next user record
	entries      int // Kinesis records built so far
	lastProgress time.Time
}

func (p *run) loop(ctx context.Context) error {
	perEntry := 1
	if p.o.Aggregate {
		perEntry = p.o.RecordsPerAggregate
	}
	for p.o.Count == 0 || p.next < p.o.Count {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := p.o.BatchSize * perEntry // user records this batch
		if p.o.Count > 0 {
			n = min(n, p.o.Count-p.next)
		}
		if p.o.Rate > 0 {
			// Records due by now; wait for at least one, or for a whole
			// aggregate when the next Kinesis record is one.
			need := 1
			if p.aggregateEntry() {
				need = min(p.o.RecordsPerAggregate, n)
			}
			due := int(time.Since(p.start).Seconds()*p.o.Rate) - p.next
			if due < need {
				wait := time.Until(p.start.Add(time.Duration(float64(p.next+need) / p.o.Rate * float64(time.Second))))
				if err := ctxutil.Sleep(ctx, wait); err != nil {
					return err
				}
				continue
			}
			n = min(n, due)
		}
		entries, n, err := p.build(n)
		if err != nil {
			return err
		}
		if err := p.put(ctx, entries); err != nil {
			return err
		}
		p.next += n
		p.st.UserRecords += n
		p.progress()
	}
	return nil
}

func (p *run) progress() {
	if p.o.Progress == nil || time.Since(p.lastProgress) < time.Second {
		return
	}
	p.lastProgress = time.Now()
	fmt.Fprintf(p.o.Progress, "%s put %d records (%d Kinesis records)\n",
		time.Since(p.start).Round(time.Second), p.st.UserRecords, p.st.KinesisRecords)
}

// aggregateEntry reports whether the next Kinesis record is an aggregate.
func (p *run) aggregateEntry() bool {
	if p.o.Aggregate {
		return true
	}
	return p.o.AggregateEvery > 0 && p.entries%p.o.AggregateEvery == p.o.AggregateEvery-1
}

// build makes the PutRecords entries for up to n user records from p.next
// and returns how many it used: an aggregate is not started with fewer than
// RecordsPerAggregate records unless they are the run's last ones.
func (p *run) build(n int) ([]types.PutRecordsRequestEntry, int, error) {
	var entries []types.PutRecordsRequestEntry
	end := p.next + n
	i := p.next
	for ; i < end; p.entries++ {
		last := p.o.Count > 0 && end == p.o.Count
		if p.aggregateEntry() && len(entries) > 0 && end-i < p.o.RecordsPerAggregate && !last {
			break // the next call fills it
		}
		if !p.aggregateEntry() {
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(p.o.PartitionKey(i)), Data: p.o.Payload(i)})
			i++
			continue
		}
		// Every sub-record carries the container's explicit hash key, so the
		// aggregate lies wholly inside whatever shard it lands in, even
		// across a reshard (the KCL drops an aggregate with any sub-record
		// outside the shard's range).
		pk := p.o.PartitionKey(i)
		ehk := kpl.PartitionKeyHash(pk).String()
		group := []kpl.UserRecord{{PartitionKey: pk, ExplicitHashKey: ehk, Data: p.o.Payload(i)}}
		i++
		for ; i < end && len(group) < p.o.RecordsPerAggregate; i++ {
			u := kpl.UserRecord{PartitionKey: p.o.PartitionKey(i), ExplicitHashKey: ehk, Data: p.o.Payload(i)}
			if kpl.AggregatedSize(append(group, u)) > maxRecordBytes-len(pk) {
				break // the next aggregate takes it
			}
			group = append(group, u)
		}
		data, err := kpl.Aggregate(group)
		if err != nil {
			return nil, 0, fmt.Errorf("producer: aggregate: %w", err)
		}
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(pk), ExplicitHashKey: aws.String(ehk), Data: data})
	}
	return entries, i - p.next, nil
}

// put sends entries in PutRecords calls within the API limits, re-sending
// rejected entries with back-off.
func (p *run) put(ctx context.Context, entries []types.PutRecordsRequestEntry) error {
	for len(entries) > 0 {
		n, size := 0, 0
		for n < len(entries) && n < MaxBatch {
			s := len(entries[n].Data) + len(aws.ToString(entries[n].PartitionKey))
			if n > 0 && size+s > maxBatchBytes {
				break
			}
			size += s
			n++
		}
		if err := p.putBatch(ctx, entries[:n]); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}

func (p *run) putBatch(ctx context.Context, batch []types.PutRecordsRequestEntry) error {
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt > p.o.MaxRetries {
			return fmt.Errorf("producer: %d records still rejected after %d retries", len(batch), p.o.MaxRetries)
		}
		in := &kinesis.PutRecordsInput{Records: batch}
		if p.o.Stream != "" {
			in.StreamName = aws.String(p.o.Stream)
		} else {
			in.StreamARN = aws.String(p.o.StreamARN)
		}
		// Let an in-flight call finish briefly after ctx ends: kinesalite
		// crashes when a client aborts a request.
		cctx, cancel := ctxutil.GraceContext(ctx, 30*time.Second, 2*time.Second)
		out, err := p.client.PutRecords(cctx, in)
		cancel()
		if err != nil {
			var nf *types.ResourceNotFoundException
			var inv *types.InvalidArgumentException
			if ctx.Err() != nil || errors.As(err, &nf) || errors.As(err, &inv) {
				return fmt.Errorf("producer: PutRecords: %w", err)
			}
			p.st.Retried += len(batch)
		} else if len(out.Records) != len(batch) {
			return fmt.Errorf("producer: PutRecords answered %d results for %d records", len(out.Records), len(batch))
		} else {
			var failed []types.PutRecordsRequestEntry
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					failed = append(failed, batch[i])
					continue
				}
				p.st.KinesisRecords++
				p.st.Bytes += len(batch[i].Data)
			}
			if len(failed) == 0 {
				return nil
			}
			p.st.Retried += len(failed)
			batch = failed
		}
		if err := ctxutil.Sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
