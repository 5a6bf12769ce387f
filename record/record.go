// Package record owns the user record as multilangd hands it from retrieval
// (after KPL de-aggregation) to the child process. It is a leaf package so that
// retrieval and subprocess need not know each other.
package record

import (
	"encoding/base64"
	"time"

	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

// Record is one user record. For a de-aggregated KPL sub-record,
// SequenceNumber is the aggregate's and SubSequenceNumber its index.
type Record struct {
	// Data is the payload. When Data64 is set, Data is nil and Data64 is the
	// payload's canonical standard padded base64 text as Kinesis sent it,
	// which is what the child protocol carries: the relay passes it through
	// without decoding and re-encoding (docs/performance.md).
	Data                        []byte
	Data64                      string
	PartitionKey                string
	ExplicitHashKey             string // empty when none
	SequenceNumber              string
	SubSequenceNumber           int64
	ApproximateArrivalTimestamp time.Time
	Aggregated                  bool
}

// DataLen returns the payload size in bytes (decoded).
func (r *Record) DataLen() int {
	if r.Data64 != "" {
		n := len(r.Data64) / 4 * 3
		if r.Data64[len(r.Data64)-1] == '=' {
			n--
			if r.Data64[len(r.Data64)-2] == '=' {
				n--
			}
		}
		return n
	}
	return len(r.Data)
}

// Payload returns the payload bytes, decoding Data64 when set (a copy; for
// tests, logs and tools, not the relay path).
func (r *Record) Payload() []byte {
	if r.Data64 != "" {
		b, _ := base64.StdEncoding.DecodeString(r.Data64)
		return b
	}
	return r.Data
}

// ESN returns the record's extended sequence number.
func (r *Record) ESN() seqnum.ESN { return seqnum.New(r.SequenceNumber, r.SubSequenceNumber) }

// Batch is what one retrieval step hands to the shard consumer.
type Batch struct {
	Records []Record
	// MillisBehindLatest as reported by Kinesis; nil when unknown.
	MillisBehindLatest *int64
	// ShardEnd is true when this is the last batch of a closed shard.
	ShardEnd bool
	// ChildShards lists the children of a shard that ended (may be empty
	// when the shard is gone or the emulator does not report children).
	ChildShards []ChildShard
}

// ChildShard describes a child of an ended shard.
type ChildShard struct {
	ShardID         string
	ParentShardIDs  []string
	StartingHashKey string // decimal
	EndingHashKey   string // decimal
}

// ChildrenFromListing derives the children of parentID from a shard listing
// (shards naming it as parent or adjacent parent), for when Kinesis reports no
// ChildShards at shard end (kinesalite never does; EFO on kinesis-local neither).
func ChildrenFromListing(shards []shard.Info, parentID string) []ChildShard {
	var out []ChildShard
	for i := range shards {
		s := &shards[i]
		if s.ParentShardID == parentID || s.AdjacentParentShardID == parentID {
			out = append(out, ChildShard{ShardID: s.ID, ParentShardIDs: s.Parents(),
				StartingHashKey: s.StartingHashKey, EndingHashKey: s.EndingHashKey})
		}
	}
	return out
}
