// Package kpl owns the Kinesis Producer Library aggregated record format:
// de-aggregation exactly as the Java KCL's AggregatorUtil does it (magic, MD5
// trailer, protobuf body, sub-sequence numbers, shard hash-range filter,
// corrupt aggregates passed through as plain records) and an encoder that
// builds aggregates for producers and tests.
//
// The protobuf messages (AggregatedRecord, Record, Tag; proto2) are encoded and
// decoded by hand with google.golang.org/protobuf/encoding/protowire, so no
// generated code is needed.
package kpl

import (
	"bytes"
	"crypto/md5" //nolint:gosec // the KPL format's integrity trailer is MD5
	"errors"
	"fmt"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/multilangd/multilangd/record"
)

// Magic is the 4-byte prefix of a KPL aggregated record.
var Magic = []byte{0xF3, 0x89, 0x9A, 0xC2}

// digestSize is the MD5 trailer length.
const digestSize = md5.Size

// Status says what Deaggregate did with one Kinesis record.
type Status int

// Deaggregation outcomes.
const (
	// Plain: not an aggregate (no magic); delivered unchanged.
	Plain Status = iota
	// Aggregated: every sub-record was emitted.
	Aggregated
	// Corrupt: magic present but too short, bad MD5 or unparsable protobuf;
	// delivered unchanged as one plain record (Java parity, no error).
	Corrupt
	// OutOfRange: a sub-record's effective hash key lies outside the shard's
	// range, so the whole aggregate was dropped (Java parity).
	OutOfRange
	// Truncated: an unexpected error (index out of range, bad explicit hash
	// key) stopped the loop; the sub-records before it were kept, the rest of
	// the aggregate is lost (Java parity). The error says why.
	Truncated
)

func (s Status) String() string {
	switch s {
	case Plain:
		return "plain"
	case Aggregated:
		return "aggregated"
	case Corrupt:
		return "corrupt"
	case OutOfRange:
		return "out-of-range"
	case Truncated:
		return "truncated"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// ErrProtobuf is wrapped by protobuf decoding errors.
var ErrProtobuf = errors.New("kpl: invalid protobuf")

// Deaggregate returns the user records contained in r, filtered to the shard
// hash range [startHash, endHash] (decimal; empty or unparsable bounds mean
// the full range). A record that is not a valid aggregate is returned as is.
func Deaggregate(r record.Record, startHash, endHash string) []record.Record {
	rng, err := ParseRange(startHash, endHash)
	if err != nil {
		rng = FullRange
	}
	out, _, _ := rng.Deaggregate(nil, r)
	return out
}

// Deaggregate appends the user records contained in r to dst, keeping only
// aggregates whose every sub-record hashes into rng, and reports what it did.
// The error is non-nil only with status Truncated. Emitted records share r's
// Data backing array (no copy).
func (rng HashRange) Deaggregate(dst []record.Record, r record.Record) ([]record.Record, Status, error) {
	data := r.Data
	if len(data) < len(Magic) || !bytes.Equal(data[:len(Magic)], Magic) {
		return append(dst, r), Plain, nil
	}
	if len(data)-len(Magic) <= digestSize {
		return append(dst, r), Corrupt, nil
	}
	body := data[len(Magic) : len(data)-digestSize]
	sum := md5.Sum(body) //nolint:gosec // format checksum
	if !bytes.Equal(sum[:], data[len(data)-digestSize:]) {
		return append(dst, r), Corrupt, nil
	}
	var agg aggregate
	if err := agg.decode(body); err != nil {
		return append(dst, r), Corrupt, nil
	}
	base := len(dst)
	for i, sr := range agg.records {
		pkIdx, ok := javaIndex(sr.pkIndex, len(agg.pks))
		if !ok {
			return dst, Truncated, fmt.Errorf("sub-record %d: partition key index %d out of range (table size %d)", i, sr.pkIndex, len(agg.pks))
		}
		pk := agg.pks[pkIdx]
		ehk := ""
		var h HashKey
		if sr.hasEHK {
			ehkIdx, ok := javaIndex(sr.ehkIndex, len(agg.ehks))
			if !ok {
				return dst, Truncated, fmt.Errorf("sub-record %d: explicit hash key index %d out of range (table size %d)", i, sr.ehkIndex, len(agg.ehks))
			}
			ehk = agg.ehks[ehkIdx]
			var sign int
			var err error
			h, sign, err = parseDecimal(ehk)
			if err != nil {
				return dst, Truncated, fmt.Errorf("sub-record %d: %w", i, err)
			}
			if sign != 0 {
				return dst[:base], OutOfRange, nil
			}
		} else {
			h = PartitionKeyHash(pk)
		}
		if !rng.Contains(h) {
			return dst[:base], OutOfRange, nil
		}
		dst = append(dst, record.Record{
			Data:                        sr.data,
			PartitionKey:                pk,
			ExplicitHashKey:             ehk,
			SequenceNumber:              r.SequenceNumber,
			SubSequenceNumber:           int64(i),
			ApproximateArrivalTimestamp: r.ApproximateArrivalTimestamp,
			Aggregated:                  true,
		})
	}
	return dst, Aggregated, nil
}

// sharedString returns b as a string without a copy. The keys point into
// the aggregate's data, which nobody modifies once received (the emitted
// records share it already), so they stay valid as long as they are used.
func sharedString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// javaIndex mimics Java's `list.get((int) uint64Index)`: the index is
// truncated to a signed 32-bit int before the bounds check.
func javaIndex(v uint64, n int) (int, bool) {
	i := int(int32(uint32(v))) //nolint:gosec // deliberate Java (int) cast
	return i, i >= 0 && i < n
}

// aggregate is a decoded AggregatedRecord.
type aggregate struct {
	pks, ehks []string
	records   []subRecord
}

// subRecord is a decoded Record message (tags are validated, not kept).
type subRecord struct {
	pkIndex  uint64
	ehkIndex uint64
	hasEHK   bool
	data     []byte
}

// Field numbers of the KPL messages.
const (
	fieldPKTable  = 1 // AggregatedRecord.partition_key_table
	fieldEHKTable = 2 // AggregatedRecord.explicit_hash_key_table
	fieldRecords  = 3 // AggregatedRecord.records

	fieldPKIndex  = 1 // Record.partition_key_index (required)
	fieldEHKIndex = 2 // Record.explicit_hash_key_index
	fieldData     = 3 // Record.data (required)
	fieldTags     = 4 // Record.tags

	fieldTagKey   = 1 // Tag.key (required)
	fieldTagValue = 2 // Tag.value
)

// walk calls fn for every field of a message. Like Java's generated parser it
// treats a known field number with an unexpected wire type as an unknown field
// (skipped); fn returns handled=false for those.
func walk(b []byte, fn func(num protowire.Number, typ protowire.Type, b []byte) (n int, handled bool)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrProtobuf, protowire.ParseError(n))
		}
		b = b[n:]
		m, handled := fn(num, typ, b)
		if !handled {
			m = protowire.ConsumeFieldValue(num, typ, b)
		}
		if m < 0 {
			return fmt.Errorf("%w: field %d: %v", ErrProtobuf, num, protowire.ParseError(m))
		}
		b = b[m:]
	}
	return nil
}

func (a *aggregate) decode(b []byte) error {
	var inner error
	err := walk(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool) {
		if typ != protowire.BytesType {
			return 0, false
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return n, true
		}
		switch num {
		case fieldPKTable:
			a.pks = append(a.pks, sharedString(v))
		case fieldEHKTable:
			a.ehks = append(a.ehks, sharedString(v))
		case fieldRecords:
			var r subRecord
			if err := r.decode(v); err != nil {
				inner = err
				return -1, true
			}
			a.records = append(a.records, r)
		default:
			return 0, false
		}
		return n, true
	})
	if inner != nil {
		return inner
	}
	return err
}

func (r *subRecord) decode(b []byte) error {
	var hasPK, hasData bool
	var inner error
	err := walk(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool) {
		switch {
		case (num == fieldPKIndex || num == fieldEHKIndex) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return n, true
			}
			if num == fieldPKIndex {
				r.pkIndex, hasPK = v, true
			} else {
				r.ehkIndex, r.hasEHK = v, true
			}
			return n, true
		case (num == fieldData || num == fieldTags) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return n, true
			}
			if num == fieldData {
				r.data, hasData = v, true
			} else if err := decodeTag(v); err != nil {
				inner = err
				return -1, true
			}
			return n, true
		}
		return 0, false
	})
	switch {
	case inner != nil:
		return inner
	case err != nil:
		return err
	case !hasPK:
		return fmt.Errorf("%w: record without required partition_key_index", ErrProtobuf)
	case !hasData:
		return fmt.Errorf("%w: record without required data", ErrProtobuf)
	}
	if r.data == nil {
		r.data = []byte{}
	}
	return nil
}

func decodeTag(b []byte) error {
	hasKey := false
	err := walk(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool) {
		if (num == fieldTagKey || num == fieldTagValue) && typ == protowire.BytesType {
			_, n := protowire.ConsumeBytes(b)
			if num == fieldTagKey && n >= 0 {
				hasKey = true
			}
			return n, true
		}
		return 0, false
	})
	if err != nil {
		return err
	}
	if !hasKey {
		return fmt.Errorf("%w: tag without required key", ErrProtobuf)
	}
	return nil
}

// UserRecord is one record to aggregate.
type UserRecord struct {
	PartitionKey string
	// ExplicitHashKey is decimal; empty means none (the routing hash is then
	// MD5 of the partition key).
	ExplicitHashKey string
	Data            []byte
}

// ErrEmpty is returned by Aggregate for an empty input.
var ErrEmpty = errors.New("kpl: nothing to aggregate")

// Aggregate encodes recs as one KPL aggregated record (magic, protobuf
// AggregatedRecord, MD5 trailer). Partition and explicit hash keys are
// de-duplicated into the key tables; a record with an empty ExplicitHashKey
// gets no explicit_hash_key_index. The caller puts the result with the
// partition key (and explicit hash key) of a record whose hash key routes it
// to the intended shard, usually the first one.
func Aggregate(recs []UserRecord) ([]byte, error) {
	if len(recs) == 0 {
		return nil, ErrEmpty
	}
	pkIdx := make(map[string]uint64)
	ehkIdx := make(map[string]uint64)
	var pks, ehks []string
	var body []byte
	for _, r := range recs {
		if r.ExplicitHashKey != "" {
			if _, err := ParseHashKey(r.ExplicitHashKey); err != nil {
				return nil, err
			}
			if _, ok := ehkIdx[r.ExplicitHashKey]; !ok {
				ehkIdx[r.ExplicitHashKey] = uint64(len(ehks))
				ehks = append(ehks, r.ExplicitHashKey)
			}
		}
		if _, ok := pkIdx[r.PartitionKey]; !ok {
			pkIdx[r.PartitionKey] = uint64(len(pks))
			pks = append(pks, r.PartitionKey)
		}
	}
	for _, k := range pks {
		body = protowire.AppendTag(body, fieldPKTable, protowire.BytesType)
		body = protowire.AppendString(body, k)
	}
	for _, k := range ehks {
		body = protowire.AppendTag(body, fieldEHKTable, protowire.BytesType)
		body = protowire.AppendString(body, k)
	}
	var rec []byte
	for _, r := range recs {
		rec = rec[:0]
		rec = protowire.AppendTag(rec, fieldPKIndex, protowire.VarintType)
		rec = protowire.AppendVarint(rec, pkIdx[r.PartitionKey])
		if r.ExplicitHashKey != "" {
			rec = protowire.AppendTag(rec, fieldEHKIndex, protowire.VarintType)
			rec = protowire.AppendVarint(rec, ehkIdx[r.ExplicitHashKey])
		}
		rec = protowire.AppendTag(rec, fieldData, protowire.BytesType)
		rec = protowire.AppendBytes(rec, r.Data)
		body = protowire.AppendTag(body, fieldRecords, protowire.BytesType)
		body = protowire.AppendBytes(body, rec)
	}
	out := make([]byte, 0, len(Magic)+len(body)+digestSize)
	out = append(out, Magic...)
	out = append(out, body...)
	sum := md5.Sum(body) //nolint:gosec // format checksum
	return append(out, sum[:]...), nil
}

// AggregatedSize returns an upper bound of the size Aggregate produces for
// recs, so producers can stay under the 1 MiB Kinesis record limit.
func AggregatedSize(recs []UserRecord) int {
	seenPK := make(map[string]bool)
	seenEHK := make(map[string]bool)
	n := len(Magic) + digestSize
	for _, r := range recs {
		if !seenPK[r.PartitionKey] {
			seenPK[r.PartitionKey] = true
			n += 1 + protowire.SizeBytes(len(r.PartitionKey))
		}
		idx := uint64(len(seenPK)) // upper bound for the index varint
		rn := 1 + protowire.SizeVarint(idx) + 1 + protowire.SizeBytes(len(r.Data))
		if r.ExplicitHashKey != "" {
			if !seenEHK[r.ExplicitHashKey] {
				seenEHK[r.ExplicitHashKey] = true
				n += 1 + protowire.SizeBytes(len(r.ExplicitHashKey))
			}
			rn += 1 + protowire.SizeVarint(uint64(len(seenEHK)))
		}
		n += 1 + protowire.SizeBytes(rn)
	}
	return n
}
