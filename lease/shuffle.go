package lease

import (
	"slices"
	"unicode/utf16"
)

// javaRandom is a port of java.util.Random (48-bit LCG), enough for
// Collections.shuffle.
type javaRandom struct{ seed int64 }

const (
	jrMultiplier = 0x5DEECE66D
	jrAddend     = 0xB
	jrMask       = (int64(1) << 48) - 1
)

func newJavaRandom(seed int64) *javaRandom {
	return &javaRandom{seed: (seed ^ jrMultiplier) & jrMask}
}

func (r *javaRandom) next(bits uint) int32 {
	r.seed = (r.seed*jrMultiplier + jrAddend) & jrMask
	return int32(r.seed >> (48 - bits))
}

// nextInt is Random.nextInt(bound) for bound > 0.
func (r *javaRandom) nextInt(bound int32) int32 {
	rv := r.next(31)
	m := bound - 1
	if bound&m == 0 {
		return int32((int64(bound) * int64(rv)) >> 31)
	}
	u := rv
	for rv = u % bound; u-rv+m < 0; rv = u % bound { // int32 overflow is the rejection test
		u = r.next(31)
	}
	return rv
}

// javaShuffle is Collections.shuffle(list, rnd) for a random-access list.
func javaShuffle[T any](list []T, rnd *javaRandom) {
	for i := len(list); i > 1; i-- {
		j := rnd.nextInt(int32(i))
		list[i-1], list[j] = list[j], list[i-1]
	}
}

// javaStringCompare is String.compareTo: UTF-16 code-unit order.
func javaStringCompare(a, b string) int {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

// LeaderShuffleSeed is the seed of the KCL 2.x DeterministicShuffleShardSyncLeaderDecider.
const LeaderShuffleSeed = 1947

// ShuffleLeaders returns the distinct non-empty worker ids sorted in Java
// String order and shuffled with Collections.shuffle(list, new
// Random(1947)), exactly as the Java KCL 2.x leader decider does. The first
// element is the shard-sync leader.
func ShuffleLeaders(workers []string) []string {
	seen := map[string]bool{}
	var list []string
	for _, w := range workers {
		if w != "" && !seen[w] {
			seen[w] = true
			list = append(list, w)
		}
	}
	slices.SortFunc(list, javaStringCompare)
	javaShuffle(list, newJavaRandom(LeaderShuffleSeed))
	return list
}
