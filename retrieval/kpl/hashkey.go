package kpl

import (
	"crypto/md5" //nolint:gosec // MD5 is the Kinesis hash function, not a security primitive
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
)

// HashKey is an unsigned 128-bit Kinesis hash key.
type HashKey struct {
	Hi, Lo uint64
}

// MaxHashKey is 2^128 − 1, the end of the Kinesis hash key space.
var MaxHashKey = HashKey{Hi: ^uint64(0), Lo: ^uint64(0)}

// ErrHashKey is wrapped by every hash-key parse error.
var ErrHashKey = errors.New("kpl: invalid hash key")

// Compare returns -1, 0 or +1 as h is less than, equal to or greater than o.
func (h HashKey) Compare(o HashKey) int {
	switch {
	case h.Hi < o.Hi:
		return -1
	case h.Hi > o.Hi:
		return 1
	case h.Lo < o.Lo:
		return -1
	case h.Lo > o.Lo:
		return 1
	}
	return 0
}

// String renders h in decimal, as Kinesis writes hash keys.
func (h HashKey) String() string {
	if h.Hi == 0 {
		return strconv.FormatUint(h.Lo, 10)
	}
	const e19 = 10_000_000_000_000_000_000
	qHi, r := h.Hi/e19, h.Hi%e19
	qLo, rem := bits.Div64(r, h.Lo, e19)
	low := strconv.FormatUint(rem, 10)
	return HashKey{Hi: qHi, Lo: qLo}.String() + zeros[:19-len(low)] + low
}

const zeros = "0000000000000000000"

// PartitionKeyHash returns MD5(UTF-8 partition key) read as an unsigned
// 128-bit big-endian integer: the shard-routing hash Kinesis uses.
func PartitionKeyHash(partitionKey string) HashKey {
	sum := md5.Sum([]byte(partitionKey)) //nolint:gosec // routing hash
	return HashKey{Hi: binary.BigEndian.Uint64(sum[:8]), Lo: binary.BigEndian.Uint64(sum[8:])}
}

// ParseHashKey parses a decimal hash key in [0, 2^128−1].
func ParseHashKey(s string) (HashKey, error) {
	h, sign, err := parseDecimal(s)
	if err != nil {
		return HashKey{}, err
	}
	if sign != 0 {
		return HashKey{}, fmt.Errorf("%w: %q is outside [0, 2^128-1]", ErrHashKey, s)
	}
	return h, nil
}

// parseDecimal parses s the way java.math.BigInteger(String) accepts it
// (optional sign, decimal digits). sign is -1 for a negative value (below
// every hash key), +1 for a value above 2^128−1, 0 when h holds the value.
func parseDecimal(s string) (h HashKey, sign int, err error) {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return HashKey{}, 0, fmt.Errorf("%w: empty", ErrHashKey)
	}
	overflow, nonZero := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return HashKey{}, 0, fmt.Errorf("%w: %q is not decimal", ErrHashKey, s)
		}
		if overflow {
			continue
		}
		d := uint64(c - '0')
		if d != 0 {
			nonZero = true
		}
		// h = h*10 + d with overflow detection.
		hiHi, hiLo := bits.Mul64(h.Hi, 10)
		loHi, loLo := bits.Mul64(h.Lo, 10)
		lo, carry := bits.Add64(loLo, d, 0)
		hi, carry2 := bits.Add64(hiLo, loHi, carry)
		if hiHi != 0 || carry2 != 0 {
			overflow = true
			continue
		}
		h = HashKey{Hi: hi, Lo: lo}
	}
	switch {
	case neg && nonZero:
		return HashKey{}, -1, nil
	case overflow:
		return HashKey{}, 1, nil
	}
	return h, 0, nil
}

// HashRange is an inclusive range of hash keys: a shard's
// [StartingHashKey, EndingHashKey].
type HashRange struct {
	Start, End HashKey
}

// FullRange is [0, 2^128−1], used when a shard's range is unknown.
var FullRange = HashRange{End: MaxHashKey}

// ParseRange parses a shard's decimal hash range. An empty start means 0 and
// an empty end means 2^128−1 (unknown range ⇒ no filtering, as Java).
func ParseRange(start, end string) (HashRange, error) {
	r := FullRange
	var err error
	if start != "" {
		if r.Start, err = ParseHashKey(start); err != nil {
			return FullRange, fmt.Errorf("starting hash key: %w", err)
		}
	}
	if end != "" {
		if r.End, err = ParseHashKey(end); err != nil {
			return FullRange, fmt.Errorf("ending hash key: %w", err)
		}
	}
	if r.Start.Compare(r.End) > 0 {
		return FullRange, fmt.Errorf("%w: start %s > end %s", ErrHashKey, start, end)
	}
	return r, nil
}

// Contains reports whether h lies in r (inclusive).
func (r HashRange) Contains(h HashKey) bool {
	return h.Compare(r.Start) >= 0 && h.Compare(r.End) <= 0
}
