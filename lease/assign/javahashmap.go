package assign

import (
	"slices"
	"unicode/utf16"
)

// javaHashMap models the iteration order of a java.util.HashMap<String, ?>
// (JDK 8–18 sizing): buckets in index order; within a bucket, put appends
// and computeIfAbsent prepends. The deciders walk HashMaps, and where
// values tie (idle leases: every take is 0; equal lease counts) the order
// of that walk decides the moves.
type javaHashMap struct {
	capacity  int // 0: no table yet
	threshold int
	// keys in an order whose stable sort by bucket is the iteration
	// order: appended by put, prepended by computeIfAbsent.
	keys []string
}

const javaHashMapDefaultCapacity = 16

// computeIfAbsent is HashMap.computeIfAbsent: the table grows lazily (at
// the call after the one that crossed the threshold) and a new key goes to
// the head of its bucket.
func (m *javaHashMap) computeIfAbsent(key string) {
	if m.capacity == 0 || len(m.keys) > m.threshold {
		m.resize()
	}
	if !slices.Contains(m.keys, key) {
		m.keys = append([]string{key}, m.keys...)
	}
}

// put is HashMap.put (putVal): a new key goes to the tail of its bucket;
// an existing key keeps its place.
func (m *javaHashMap) put(key string) {
	if slices.Contains(m.keys, key) {
		return
	}
	if m.capacity == 0 {
		m.resize()
	}
	m.keys = append(m.keys, key)
	if len(m.keys) > m.threshold {
		m.resize()
	}
}

// putAll is HashMap.putAll (putMapEntries): a map without a table is
// pre-sized for the incoming entries.
func (m *javaHashMap) putAll(keys []string) {
	s := len(keys)
	if s == 0 {
		return
	}
	if m.capacity == 0 {
		ft := float32(s)/0.75 + 1
		if t := int(ft); t > m.threshold {
			m.threshold = tableSizeFor(t)
		}
	} else {
		for s > m.threshold {
			m.resize()
		}
	}
	for _, k := range keys {
		m.put(k)
	}
}

// clear is HashMap.clear: the table keeps its size.
func (m *javaHashMap) clear() { m.keys = nil }

// resize is HashMap.resize.
func (m *javaHashMap) resize() {
	switch {
	case m.capacity > 0:
		m.capacity *= 2
	case m.threshold > 0:
		m.capacity = m.threshold
	default:
		m.capacity = javaHashMapDefaultCapacity
	}
	m.threshold = int(float32(m.capacity) * 0.75)
}

// order is the iteration order.
func (m *javaHashMap) order() []string {
	out := slices.Clone(m.keys)
	slices.SortStableFunc(out, func(a, b string) int { return m.bucket(a) - m.bucket(b) })
	return out
}

func (m *javaHashMap) bucket(key string) int {
	h := uint32(javaStringHash(key))
	return int((h ^ h>>16) & uint32(m.capacity-1))
}

// tableSizeFor is HashMap.tableSizeFor: the power of two ≥ c.
func tableSizeFor(c int) int {
	n := 1
	for n < c {
		n <<= 1
	}
	return n
}

// javaStringHash is String.hashCode (UTF-16 code units).
func javaStringHash(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}
