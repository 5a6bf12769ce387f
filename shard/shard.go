// Package shard owns the description of a Kinesis shard as ListShards returns
// it (ids, parents, hash range, sequence range). It is a leaf package so that
// lease (shard sync) and retrieval (listing) share it without importing each
// other.
package shard

// Info describes one shard.
type Info struct {
	ID                     string
	ParentShardID          string // "" when none
	AdjacentParentShardID  string // "" when none (merge)
	StartingHashKey        string // decimal 128-bit
	EndingHashKey          string // decimal 128-bit
	StartingSequenceNumber string
	EndingSequenceNumber   string // "" while the shard is open
}

// Open reports whether the shard is still open (no ending sequence number).
func (s *Info) Open() bool { return s.EndingSequenceNumber == "" }

// Parents returns the non-empty parent ids (parent first, then adjacent).
func (s *Info) Parents() []string {
	var p []string
	if s.ParentShardID != "" {
		p = append(p, s.ParentShardID)
	}
	if s.AdjacentParentShardID != "" {
		p = append(p, s.AdjacentParentShardID)
	}
	return p
}

// Filter selects the shards a listing returns (ListShards ShardFilter).
type Filter struct {
	// Type is one of "" (no filter), AT_LATEST, AT_TRIM_HORIZON, AT_TIMESTAMP.
	Type string
	// Timestamp is used with AT_TIMESTAMP (epoch milliseconds).
	TimestampMillis int64
}
