package shardsync

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"sync"

	"github.com/aws/smithy-go"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/shard"
)

// fakeStore is an in-memory Store.
type fakeStore struct {
	mu       sync.Mutex
	leases   map[string]lease.Lease
	created  []string // keys in creation order
	deleted  []string
	children map[string][]string // UpdateChildShardIDs calls
	ranges   map[string][2]string
	listErr  error
}

func newFakeStore(ls ...lease.Lease) *fakeStore {
	f := &fakeStore{leases: map[string]lease.Lease{}, children: map[string][]string{}, ranges: map[string][2]string{}}
	for _, l := range ls {
		f.leases[l.Key] = l
	}
	return f
}

func (f *fakeStore) ListLeases(context.Context) ([]lease.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	out := make([]lease.Lease, 0, len(f.leases))
	for _, l := range f.leases {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (f *fakeStore) GetLease(_ context.Context, key string) (*lease.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.leases[key]
	if !ok {
		return nil, nil
	}
	return &l, nil
}

func (f *fakeStore) CreateLeaseIfNotExists(_ context.Context, l lease.Lease) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.leases[l.Key]; ok {
		return false, nil
	}
	f.leases[l.Key] = l
	f.created = append(f.created, l.Key)
	return true, nil
}

func (f *fakeStore) UpdateChildShardIDs(_ context.Context, key string, children []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.children[key] = append([]string(nil), children...)
	if l, ok := f.leases[key]; ok {
		l.ChildShardIDs = append([]string(nil), children...)
		f.leases[key] = l
	}
	return nil
}

func (f *fakeStore) UpdateHashRange(_ context.Context, key, start, end string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ranges[key] = [2]string{start, end}
	if l, ok := f.leases[key]; ok {
		l.StartingHashKey, l.EndingHashKey = start, end
		f.leases[key] = l
	}
	return nil
}

func (f *fakeStore) DeleteLease(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.leases, key)
	f.deleted = append(f.deleted, key)
	return nil
}

func (f *fakeStore) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.leases {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (f *fakeStore) createdKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.created...)
}

// fakeLister returns a fixed listing. With honourFilter it applies
// AT_LATEST like the service (open shards only); otherwise it ignores the
// filter as kinesalite does.
type fakeLister struct {
	mu           sync.Mutex
	shards       []shard.Info
	err          error
	honourFilter bool
	filters      []shard.Filter
}

func (l *fakeLister) ListShards(_ context.Context, f shard.Filter) ([]shard.Info, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.filters = append(l.filters, f)
	if l.err != nil {
		return nil, l.err
	}
	out := make([]shard.Info, 0, len(l.shards))
	for _, s := range l.shards {
		if l.honourFilter && f.Type == "AT_LATEST" && !s.Open() {
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

func (l *fakeLister) calls() []shard.Filter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]shard.Filter(nil), l.filters...)
}

// notFound mimics the Kinesis ResourceNotFoundException as the SDK returns it.
func notFound() error {
	return fmt.Errorf("list shards: %w", &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "stream gone"})
}

func sid(n int) string { return fmt.Sprintf("shardId-%012d", n) }

// ranges splits [0, 2^128-1] into n contiguous decimal ranges.
func ranges(n int) [][2]string {
	step := new(big.Int).Div(new(big.Int).Add(maxHash, big.NewInt(1)), big.NewInt(int64(n)))
	out := make([][2]string, n)
	for i := 0; i < n; i++ {
		s := new(big.Int).Mul(step, big.NewInt(int64(i)))
		e := new(big.Int).Sub(new(big.Int).Mul(step, big.NewInt(int64(i+1))), big.NewInt(1))
		if i == n-1 {
			e = maxHash
		}
		out[i] = [2]string{s.String(), e.String()}
	}
	return out
}

// mkShard builds a shard; end "" means open.
func mkShard(id int, parent, adjacent int, r [2]string, start, end string) shard.Info {
	s := shard.Info{ID: sid(id), StartingHashKey: r[0], EndingHashKey: r[1], StartingSequenceNumber: start, EndingSequenceNumber: end}
	if parent >= 0 {
		s.ParentShardID = sid(parent)
	}
	if adjacent >= 0 {
		s.AdjacentParentShardID = sid(adjacent)
	}
	return s
}

func hashUnion(a, b [2]string) [2]string { return [2]string{a[0], b[1]} }

// specExample is the 0–10 shard example of Java
// HierarchicalShardSyncer.NonEmptyLeaseTableSynchronizer.determineNewLeasesToCreate:
//
//	0 1 2 3 4   5   - shards till epoch 102
//	\ / \ / |   |
//	 6   7  4   5   - shards from epoch 103 - 205
//	  \ /   |  / \
//	   8    4 9  10 - shards from epoch 206 (open)
func specExample() []shard.Info {
	r := ranges(6)
	mid := new(big.Int).Add(mustBig(r[5][0]), big.NewInt(1000))
	r9 := [2]string{r[5][0], mid.String()}
	r10 := [2]string{new(big.Int).Add(mid, big.NewInt(1)).String(), r[5][1]}
	return []shard.Info{
		mkShard(0, -1, -1, r[0], "100", "102"),
		mkShard(1, -1, -1, r[1], "100", "102"),
		mkShard(2, -1, -1, r[2], "100", "102"),
		mkShard(3, -1, -1, r[3], "100", "102"),
		mkShard(4, -1, -1, r[4], "100", ""),
		mkShard(5, -1, -1, r[5], "100", "205"),
		mkShard(6, 0, 1, hashUnion(r[0], r[1]), "103", "205"),
		mkShard(7, 2, 3, hashUnion(r[2], r[3]), "103", "205"),
		mkShard(8, 6, 7, hashUnion(r[0], r[3]), "206", ""),
		mkShard(9, 5, -1, r9, "206", ""),
		mkShard(10, 5, -1, r10, "206", ""),
	}
}

func mustBig(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return v
}

// leaseFor builds an existing lease for a listed shard.
func leaseFor(sh shard.Info, cp string) lease.Lease {
	return keys{}.newLease(sh, cp)
}

func byID(shards []shard.Info, n int) shard.Info {
	i := slices.IndexFunc(shards, func(s shard.Info) bool { return s.ID == sid(n) })
	return shards[i]
}
