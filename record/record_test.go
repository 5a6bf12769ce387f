package record

import (
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
