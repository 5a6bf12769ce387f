package retrieval

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/retrieval/kpl"
	"github.com/multilangd/multilangd/shard"
)

// recordConverter turns the Kinesis records of one shard into user records:
// KPL de-aggregation filtered to the shard's hash range (Java
// AggregatorUtil.deaggregate). The Poller and the Subscriber each have one.
type recordConverter struct {
	rng kpl.HashRange
	log *zap.Logger
}

// newRecordConverter filters to sh's hash range; an unusable range (none
// from the listing) means no filtering.
func newRecordConverter(sh shard.Info, log *zap.Logger) recordConverter {
	rng, err := kpl.ParseRange(sh.StartingHashKey, sh.EndingHashKey)
	if err != nil {
		log.Warn("shard hash range unusable; KPL de-aggregation will not filter", zap.Error(err))
		rng = kpl.FullRange
	}
	return recordConverter{rng: rng, log: log}
}

// convert turns Kinesis records into de-aggregated user records and returns
// the raw data size.
func (c recordConverter) convert(recs []types.Record) (record.Batch, int) {
	var b record.Batch
	if len(recs) == 0 {
		return b, 0
	}
	b.Records = make([]record.Record, 0, len(recs))
	bytes := 0
	for _, kr := range recs {
		bytes += len(kr.Data)
		r := record.Record{
			Data:           kr.Data,
			PartitionKey:   aws.ToString(kr.PartitionKey),
			SequenceNumber: aws.ToString(kr.SequenceNumber),
		}
		if kr.ApproximateArrivalTimestamp != nil {
			r.ApproximateArrivalTimestamp = *kr.ApproximateArrivalTimestamp
		}
		b.Records = c.add(b.Records, r)
	}
	return b, bytes
}

// add appends r's user records to dst: r itself, or its sub-records when it
// is a KPL aggregate whose every sub-record is in the shard's hash range.
func (c recordConverter) add(dst []record.Record, r record.Record) []record.Record {
	dst, status, err := c.rng.Deaggregate(dst, r)
	switch status {
	case kpl.OutOfRange:
		c.log.Warn("KPL aggregate has a sub-record outside the shard's hash range; whole aggregate dropped (as Java)",
			zap.String("sequenceNumber", r.SequenceNumber))
	case kpl.Truncated:
		c.log.Error("KPL aggregate partly unreadable; later sub-records lost (as Java)",
			zap.String("sequenceNumber", r.SequenceNumber), zap.Error(err))
	case kpl.Corrupt:
		c.log.Debug("record has the KPL magic but is not a valid aggregate; delivered as a plain record",
			zap.String("sequenceNumber", r.SequenceNumber))
	}
	return dst
}

// convertPage is convert for a page the relay decoder produced: records
// that kept their base64 text are plain and pass through as they are (the
// page's slice is the batch when there is no aggregate); the others go
// through the de-aggregator.
// capHint is the expected number of user records (the caller's guess from
// earlier pages), so the slice rarely grows.
func (c recordConverter) convertPage(p *relayPage, capHint int) record.Batch {
	if len(p.records) == 0 {
		return record.Batch{}
	}
	if p.aggregates == 0 {
		return record.Batch{Records: p.records}
	}
	out := make([]record.Record, 0, max(len(p.records), capHint))
	for _, r := range p.records {
		if r.Data64 != "" {
			out = append(out, r)
			continue
		}
		out = c.add(out, r)
	}
	return record.Batch{Records: out}
}
