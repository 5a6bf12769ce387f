package record

import (
	"encoding/base64"
	"reflect"
	"testing"

	"github.com/multilangd/multilangd/shard"
)

func TestChildrenFromListing(t *testing.T) {
	shards := []shard.Info{
		{ID: "s0", EndingSequenceNumber: "9"},
		{ID: "s1", EndingSequenceNumber: "9"},
		{ID: "s2", ParentShardID: "s0", StartingHashKey: "0", EndingHashKey: "5"},
		{ID: "s3", ParentShardID: "s0", StartingHashKey: "6", EndingHashKey: "9"},
		{ID: "s4", ParentShardID: "s1", AdjacentParentShardID: "s5"},
	}
	tests := []struct {
		parent string
		want   []ChildShard
	}{
		{"s0", []ChildShard{
			{ShardID: "s2", ParentShardIDs: []string{"s0"}, StartingHashKey: "0", EndingHashKey: "5"},
			{ShardID: "s3", ParentShardIDs: []string{"s0"}, StartingHashKey: "6", EndingHashKey: "9"},
		}},
		{"s5", []ChildShard{{ShardID: "s4", ParentShardIDs: []string{"s1", "s5"}}}},
		{"s2", nil},
	}
	for _, tt := range tests {
		if got := ChildrenFromListing(shards, tt.parent); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("children of %s = %+v, want %+v", tt.parent, got, tt.want)
		}
	}
}

func TestDataLenAndPayload(t *testing.T) {
	for _, p := range []string{"", "a", "ab", "abc", "abcd"} {
		b64 := base64.StdEncoding.EncodeToString([]byte(p))
		for _, r := range []Record{{Data: []byte(p)}, {Data64: b64}} {
			if r.DataLen() != len(p) || string(r.Payload()) != p {
				t.Errorf("%+v: DataLen %d Payload %q, want %d %q", r, r.DataLen(), r.Payload(), len(p), p)
			}
		}
	}
}
