package shardsync

import (
	"math/big"
	"sort"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/seqnum"
	"github.com/multilangd/multilangd/shard"
)

// maxHash is 2^128-1, the largest Kinesis hash key.
var maxHash = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// parseHash parses a decimal hash key; ok is false when it is not one.
func parseHash(s string) (*big.Int, bool) {
	if !seqnum.IsDigits(s) {
		return nil, false
	}
	return new(big.Int).SetString(s, 10)
}

func shardMap(shards []shard.Info) map[string]*shard.Info {
	m := make(map[string]*shard.Info, len(shards))
	for i := range shards {
		m[shards[i].ID] = &shards[i]
	}
	return m
}

// listedParents returns the parent ids of sh that are in the listing
// (Java getParentShardIds).
func listedParents(sh *shard.Info, m map[string]*shard.Info) []string {
	var out []string
	for _, p := range sh.Parents() {
		if _, ok := m[p]; ok {
			out = append(out, p)
		}
	}
	return out
}

// inconsistentShards returns the children of listed parents that are still
// open (Java findInconsistentShardIds: an open child of an open parent).
func inconsistentShards(shards []shard.Info) map[string]bool {
	m := shardMap(shards)
	out := map[string]bool{}
	for i := range shards {
		for _, p := range listedParents(&shards[i], m) {
			if m[p].Open() {
				out[shards[i].ID] = true
			}
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// reduceToInitialPosition makes a listing look like the service's filtered
// answer even when the emulator ignored the ShardFilter (kinesalite) or
// over-answered it (kinesis-local AT_TRIM_HORIZON): LATEST keeps the open
// shards; TRIM_HORIZON and AT_TIMESTAMP drop every shard one of whose
// parents is also listed (it is created later, at its parent's SHARD_END).
// A correctly filtered answer from Kinesis passes unchanged.
func reduceToInitialPosition(shards []shard.Info, position string) []shard.Info {
	m := shardMap(shards)
	out := make([]shard.Info, 0, len(shards))
	for i := range shards {
		sh := shards[i]
		switch position {
		case seqnum.Latest:
			if !sh.Open() {
				continue
			}
		default:
			if len(listedParents(&sh, m)) > 0 {
				continue
			}
		}
		out = append(out, sh)
	}
	return out
}

// hashRangeComplete is Java isHashRangeOfShardsComplete: sorted by starting
// hash key the shards must start at 0, end at 2^128-1 and abut exactly.
func hashRangeComplete(shards []shard.Info) bool {
	if len(shards) == 0 {
		return false
	}
	type rng struct{ start, end *big.Int }
	rs := make([]rng, 0, len(shards))
	for i := range shards {
		s, ok1 := parseHash(shards[i].StartingHashKey)
		e, ok2 := parseHash(shards[i].EndingHashKey)
		if !ok1 || !ok2 {
			return false
		}
		rs = append(rs, rng{s, e})
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].start.Cmp(rs[j].start) < 0 })
	if rs[0].start.Sign() != 0 || rs[len(rs)-1].end.Cmp(maxHash) != 0 {
		return false
	}
	one := big.NewInt(1)
	for i := 1; i < len(rs); i++ {
		if new(big.Int).Sub(rs[i].start, rs[i-1].end).Cmp(one) != 0 {
			return false
		}
	}
	return true
}

// emptyTableLeases is Java EmptyLeaseTableSynchronizer: one lease per listed
// shard (open or closed) with the initial-position checkpoint.
func emptyTableLeases(k keys, shards []shard.Info, position string) []lease.Lease {
	out := make([]lease.Lease, 0, len(shards))
	seen := map[string]bool{}
	for _, sh := range shards {
		if seen[sh.ID] {
			continue
		}
		seen[sh.ID] = true
		out = append(out, k.newLease(sh, position))
	}
	sortByStartingSequence(out, shardMap(shards))
	return out
}

// nonEmptyTableLeases is Java NonEmptyLeaseTableSynchronizer.determineNewLeasesToCreate:
// for each open shard without a lease that is not inconsistent, walk its
// listed ancestry; a descendant of a leased shard gets leases only for the
// missing first-level ancestors, a non-descendant gets its own lease.
func nonEmptyTableLeases(k keys, shards []shard.Info, current []lease.Lease, position string, inconsistent map[string]bool) []lease.Lease {
	m := shardMap(shards)
	leased := make(map[string]bool, len(current))
	for i := range current {
		leased[current[i].ShardIDOf()] = true
	}
	w := &walker{k: k, m: m, leased: leased, position: position,
		isDescendant: map[string]bool{}, shouldCreate: map[string]bool{}, newLeases: map[string]*lease.Lease{}}
	for i := range shards {
		sh := &shards[i]
		if !sh.Open() || leased[sh.ID] || inconsistent[sh.ID] {
			continue
		}
		if !w.descendant(sh.ID) {
			l := k.newLease(*sh, position)
			w.newLeases[sh.ID] = &l
		}
	}
	out := make([]lease.Lease, 0, len(w.newLeases))
	for _, l := range w.newLeases {
		out = append(out, *l)
	}
	sortByStartingSequence(out, m)
	return out
}

// walker holds the memoisation of one non-empty-table pass.
type walker struct {
	k            keys
	m            map[string]*shard.Info
	leased       map[string]bool
	position     string
	isDescendant map[string]bool // memo: shard id → is a descendant
	shouldCreate map[string]bool // ancestors to lease for TRIM_HORIZON / AT_TIMESTAMP
	newLeases    map[string]*lease.Lease
}

// descendant is Java checkIfDescendantAndAddNewLeasesForAncestors.
func (w *walker) descendant(id string) bool {
	if v, ok := w.isDescendant[id]; ok {
		return v
	}
	isDesc := false
	sh, listed := w.m[id]
	if listed {
		if w.leased[id] {
			isDesc = true
		} else {
			parents := listedParents(sh, w.m)
			descParents := map[string]bool{}
			for _, p := range parents {
				if w.descendant(p) || w.shouldCreate[p] {
					isDesc = true
					descParents[p] = true
				}
			}
			if isDesc {
				for _, p := range parents {
					if w.leased[p] {
						continue
					}
					l := w.newLeases[p]
					if l == nil && (w.shouldCreate[p] || !descParents[p]) {
						nl := w.k.newLease(*w.m[p], w.position)
						l = &nl
						w.newLeases[p] = l
					}
					if l != nil {
						if descParents[p] && w.position != seqnum.AtTimestamp {
							l.Checkpoint = seqnum.Sentinel(seqnum.TrimHorizon)
						} else {
							l.Checkpoint = seqnum.Sentinel(w.position)
						}
					}
				}
			} else if w.position == seqnum.TrimHorizon || w.position == seqnum.AtTimestamp {
				w.shouldCreate[id] = true
			}
		}
	}
	w.isDescendant[id] = isDesc
	return isDesc
}

// sortByStartingSequence orders leases by their shard's starting sequence
// number (big integers), ties and unknown shards by lease key (Java
// StartingSequenceNumberAndShardIdBasedComparator).
func sortByStartingSequence(ls []lease.Lease, m map[string]*shard.Info) {
	start := func(l *lease.Lease) *big.Int {
		id := l.ShardIDOf()
		if sh, ok := m[id]; ok {
			if v, ok := parseHash(sh.StartingSequenceNumber); ok {
				return v
			}
		}
		return nil
	}
	sort.SliceStable(ls, func(i, j int) bool {
		a, b := start(&ls[i]), start(&ls[j])
		if a != nil && b != nil {
			if c := a.Cmp(b); c != 0 {
				return c < 0
			}
		}
		return ls[i].Key < ls[j].Key
	})
}
