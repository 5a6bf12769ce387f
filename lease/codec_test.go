package lease

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/seqnum"
)

func s(v string) types.AttributeValue     { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue     { return &types.AttributeValueMemberN{Value: v} }
func ss(v ...string) types.AttributeValue { return &types.AttributeValueMemberSS{Value: v} }
func b(v []byte) types.AttributeValue     { return &types.AttributeValueMemberB{Value: v} }

func f64(v float64) *float64 { return &v }

const (
	seqA = "49590338271490256608559692538361571095921575989136588898"
	hk0  = "0"
	hkM  = "170141183460469231731687303715884105727"
	hkX  = "340282366920938463463374607431768211455"
)

// Java-written item shapes (DynamoDBLeaseSerializer,
// DynamoDBMultiStreamLeaseSerializer, 3.5 non-lease items) and what they
// decode to.
func goldenItems() []struct {
	name string
	item map[string]types.AttributeValue
	want Lease
	err  error
} {
	return []struct {
		name string
		item map[string]types.AttributeValue
		want Lease
		err  error
	}{
		{
			name: "java 2.0 minimal",
			item: map[string]types.AttributeValue{
				"leaseKey": s("shardId-000000000001"), "leaseOwner": s("host-1"), "leaseCounter": n("42"),
				"ownerSwitchesSinceCheckpoint": n("3"), "checkpoint": s(seqA), "checkpointSubSequenceNumber": n("0"),
				"parentShardId": ss("shardId-000000000000"),
			},
			want: Lease{Key: "shardId-000000000001", Owner: "host-1", Counter: 42, OwnerSwitchesSinceCheckpoint: 3,
				Checkpoint: seqnum.New(seqA, 0), ParentShardIDs: []string{"shardId-000000000000"}},
		},
		{
			name: "java 2.x sentinel, missing optional numbers",
			item: map[string]types.AttributeValue{
				"leaseKey": s("shardId-000000000002"), "leaseCounter": n("0"), "checkpoint": s("TRIM_HORIZON"),
			},
			want: Lease{Key: "shardId-000000000002", Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)},
		},
		{
			name: "java 2.3+ with hash range, children, pending checkpoint",
			item: map[string]types.AttributeValue{
				"leaseKey": s("shardId-000000000003"), "leaseOwner": s("w"), "leaseCounter": n("7"),
				"ownerSwitchesSinceCheckpoint": n("0"), "checkpoint": s("SHARD_END"), "checkpointSubSequenceNumber": n("0"),
				"pendingCheckpoint": s(seqA), "pendingCheckpointSubSequenceNumber": n("4"), "pendingCheckpointState": b([]byte{1, 2}),
				"parentShardId": ss("shardId-000000000001", "shardId-000000000000"), "childShardIds": ss("shardId-000000000009"),
				"startingHashKey": s(hk0), "endingHashKey": s(hkX),
			},
			want: Lease{Key: "shardId-000000000003", Owner: "w", Counter: 7, Checkpoint: seqnum.Sentinel(seqnum.ShardEnd),
				PendingCheckpoint: &seqnum.ESN{Sequence: seqA, SubSequence: 4}, PendingCheckpointState: []byte{1, 2},
				ParentShardIDs: []string{"shardId-000000000000", "shardId-000000000001"}, ChildShardIDs: []string{"shardId-000000000009"},
				StartingHashKey: hk0, EndingHashKey: hkX},
		},
		{
			name: "java 3.5 lease with throughput and hand-off",
			item: map[string]types.AttributeValue{
				"leaseKey": s("shardId-000000000004"), "leaseOwner": s("new"), "checkpointOwner": s("old"), "leaseCounter": n("9"),
				"ownerSwitchesSinceCheckpoint": n("1"), "checkpoint": s(seqA), "checkpointSubSequenceNumber": n("2"),
				"throughputKBps": n("1.0E-4"), "entityType": s("LEASE"), "startingHashKey": s(hkM), "endingHashKey": s(hkX),
			},
			want: Lease{Key: "shardId-000000000004", Owner: "new", CheckpointOwner: "old", Counter: 9, OwnerSwitchesSinceCheckpoint: 1,
				Checkpoint: seqnum.New(seqA, 2), ThroughputKBps: f64(0.0001), EntityType: "LEASE", StartingHashKey: hkM, EndingHashKey: hkX},
		},
		{
			name: "multi-stream lease",
			item: map[string]types.AttributeValue{
				"leaseKey": s("123456789012:orders:1700000000:shardId-000000000005"), "leaseCounter": n("1"),
				"checkpoint": s("LATEST"), "checkpointSubSequenceNumber": n("0"), "ownerSwitchesSinceCheckpoint": n("0"),
				"streamName": s("123456789012:orders:1700000000"), "shardId": s("shardId-000000000005"),
			},
			want: Lease{Key: "123456789012:orders:1700000000:shardId-000000000005", Counter: 1, Checkpoint: seqnum.Sentinel(seqnum.Latest),
				StreamName: "123456789012:orders:1700000000", ShardID: "shardId-000000000005"},
		},
		{
			name: "3.5 Leader lock", err: ErrNotLease,
			item: map[string]types.AttributeValue{"leaseKey": s("Leader"), "entityType": s("LEADER"), "ownerName": s("w1"),
				"leaseDuration": s("120000"), "recordVersionNumber": s("0c0e6d5c-4a8e-4b43-9f4c-3d1e1b1a0f11")},
		},
		{
			name: "3.5 Migration3.0", err: ErrNotLease,
			item: map[string]types.AttributeValue{"leaseKey": s("Migration3.0"), "entityType": s("CLIENT_VERSION_MIGRATION"),
				"cv": s("CLIENT_VERSION_3X"), "mb": s("w1"), "mts": n("1700000000000"),
				"h": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"cv": s("CLIENT_VERSION_2X")}}}}},
		},
		{
			name: "3.5 TableMigration3.5", err: ErrNotLease,
			item: map[string]types.AttributeValue{"leaseKey": s("TableMigration3.5"), "entityType": s("TABLE_MIGRATION"),
				"tm": s("TABLE_MIGRATION_STATUS_COMPLETE"), "mb": s("w1"), "mts": n("1700000000000")},
		},
		{
			name: "3.5 worker metrics", err: ErrNotLease,
			item: map[string]types.AttributeValue{"leaseKey": s("worker-1"), "entityType": s("WORKER_METRIC_STATS"),
				"lut": n("1700000000"), "sup": n("1"), "slu": n("1700000000"),
				"sts": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": &types.AttributeValueMemberL{Value: []types.AttributeValue{n("10"), n("12")}}}}},
		},
		{
			name: "no leaseCounter, no entityType", err: ErrMalformed,
			item: map[string]types.AttributeValue{"leaseKey": s("odd"), "checkpoint": s("LATEST")},
		},
		{
			name: "bad checkpoint", err: ErrMalformed,
			item: map[string]types.AttributeValue{"leaseKey": s("odd"), "leaseCounter": n("1"), "checkpoint": s("12abc")},
		},
		{
			name: "inverted hash range", err: ErrMalformed,
			item: map[string]types.AttributeValue{"leaseKey": s("odd"), "leaseCounter": n("1"), "checkpoint": s("LATEST"),
				"startingHashKey": s(hkX), "endingHashKey": s(hk0)},
		},
	}
}

func TestUnmarshalJavaItems(t *testing.T) {
	for _, tt := range goldenItems() {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UnmarshalItem(tt.item)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestMarshalJavaNamesAndTypes: items multilangd creates have exactly Java's
// attribute names and DynamoDB types (DynamoDBLeaseSerializer.toDynamoRecord).
func TestMarshalJavaNamesAndTypes(t *testing.T) {
	l := Lease{Key: "shardId-000000000007", Counter: 0, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon),
		ParentShardIDs: []string{"shardId-000000000002", "shardId-000000000001"}, StartingHashKey: hk0, EndingHashKey: hkM}
	item, err := MarshalItem(l)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]types.AttributeValue{
		"leaseKey": s("shardId-000000000007"), "leaseCounter": n("0"), "ownerSwitchesSinceCheckpoint": n("0"),
		"checkpoint": s("TRIM_HORIZON"), "checkpointSubSequenceNumber": n("0"),
		"parentShardId":   ss("shardId-000000000001", "shardId-000000000002"),
		"startingHashKey": s(hk0), "endingHashKey": s(hkM), "entityType": s("LEASE"),
	}
	if !reflect.DeepEqual(item, want) {
		t.Fatalf("item = %#v\nwant %#v", item, want)
	}
	back, err := UnmarshalItem(item)
	if err != nil {
		t.Fatal(err)
	}
	l.EntityType = EntityTypeLease
	l.ParentShardIDs = []string{"shardId-000000000001", "shardId-000000000002"}
	if !reflect.DeepEqual(back, l) {
		t.Fatalf("round trip %+v != %+v", back, l)
	}
	// Multi-stream, owner, throughput, pending state: B not N (Java quirk not copied).
	l2 := Lease{Key: "1:s:2:shardId-0", Owner: "me", Counter: 3, Checkpoint: seqnum.New("5", 1),
		PendingCheckpoint: &seqnum.ESN{Sequence: "6"}, PendingCheckpointState: []byte("x"), ThroughputKBps: f64(1.5),
		StreamName: "1:s:2", ShardID: "shardId-0", ChildShardIDs: []string{"c"}}
	item2, err := MarshalItem(l2)
	if err != nil {
		t.Fatal(err)
	}
	types2 := map[string]string{}
	for k, v := range item2 {
		types2[k] = reflect.TypeOf(v).Elem().Name()
	}
	wantTypes := map[string]string{
		"leaseKey": "AttributeValueMemberS", "leaseOwner": "AttributeValueMemberS", "leaseCounter": "AttributeValueMemberN",
		"ownerSwitchesSinceCheckpoint": "AttributeValueMemberN", "checkpoint": "AttributeValueMemberS",
		"checkpointSubSequenceNumber": "AttributeValueMemberN", "pendingCheckpoint": "AttributeValueMemberS",
		"pendingCheckpointSubSequenceNumber": "AttributeValueMemberN", "pendingCheckpointState": "AttributeValueMemberB",
		"throughputKBps": "AttributeValueMemberN", "streamName": "AttributeValueMemberS", "shardId": "AttributeValueMemberS",
		"childShardIds": "AttributeValueMemberSS", "entityType": "AttributeValueMemberS",
	}
	if !reflect.DeepEqual(types2, wantTypes) {
		t.Fatalf("types = %v\nwant %v", types2, wantTypes)
	}
}

func TestMarshalRejects(t *testing.T) {
	for _, l := range []Lease{
		{Key: "", Checkpoint: seqnum.Sentinel(seqnum.Latest)},
		{Key: "k"},
		{Key: "k", Checkpoint: seqnum.New("x1", 0)},
		{Key: "k", Checkpoint: seqnum.Sentinel(seqnum.Latest), StartingHashKey: "5", EndingHashKey: "5"},
		{Key: "k", Checkpoint: seqnum.Sentinel(seqnum.Latest), StartingHashKey: "0", EndingHashKey: "340282366920938463463374607431768211456"},
	} {
		if _, err := MarshalItem(l); !errors.Is(err, ErrMalformed) {
			t.Errorf("MarshalItem(%+v) err = %v, want ErrMalformed", l, err)
		}
	}
}

func TestParseMultiStreamKey(t *testing.T) {
	tests := []struct {
		key, stream, shard string
		ok                 bool
	}{
		{"123456789012:orders:1700000000:shardId-000000000005", "123456789012:orders:1700000000", "shardId-000000000005", true},
		{"shardId-000000000005", "", "", false},
		{"abc:orders:1:shardId-1", "", "", false},
	}
	for _, tt := range tests {
		st, sh, ok := ParseMultiStreamKey(tt.key)
		if st != tt.stream || sh != tt.shard || ok != tt.ok {
			t.Errorf("ParseMultiStreamKey(%q) = %q %q %v", tt.key, st, sh, ok)
		}
		if ok && MultiStreamKey(st, sh) != tt.key {
			t.Errorf("MultiStreamKey round trip %q", tt.key)
		}
	}
}

// TestIntegrationGoldenItemsThroughDynamoDB writes the Java-shaped golden
// items into a real table (DynamoDB normalises numbers such as 1.0E-4) and
// reads them back with ListLeases and GetLease: leases decode as in
// TestUnmarshalJavaItems, non-lease and malformed items are skipped.
func TestIntegrationGoldenItemsThroughDynamoDB(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		st := newTable(t, be)
		want := map[string]Lease{}
		for i, g := range goldenItems() {
			item := map[string]types.AttributeValue{}
			for k, v := range g.item {
				item[k] = v
			}
			if g.err == ErrMalformed { // distinct keys for the malformed ones
				item["leaseKey"] = s(fmt.Sprintf("odd-%d", i))
			}
			putRaw(t, st, item)
			if g.err == nil {
				want[g.want.Key] = g.want
			}
		}
		ls, err := st.ListLeases(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != len(want) {
			t.Fatalf("ListLeases returned %d leases, want %d", len(ls), len(want))
		}
		for _, l := range ls {
			if !reflect.DeepEqual(l, want[l.Key]) {
				t.Fatalf("%s:\n got %+v\nwant %+v", l.Key, l, want[l.Key])
			}
			g, err := st.GetLease(ctxT(t, 10*time.Second), l.Key)
			if err != nil || !reflect.DeepEqual(*g, l) {
				t.Fatalf("GetLease(%s) = %+v, %v", l.Key, g, err)
			}
		}
		if _, err := st.GetLease(ctxT(t, 10*time.Second), LeaderKey); !errors.Is(err, ErrNotLease) {
			t.Fatalf("GetLease(Leader) err = %v, want ErrNotLease", err)
		}
		if l, err := st.GetLease(ctxT(t, 10*time.Second), "absent"); l != nil || err != nil {
			t.Fatalf("GetLease(absent) = %v, %v", l, err)
		}
	})
}
