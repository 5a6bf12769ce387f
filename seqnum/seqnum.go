// Package seqnum owns KCL extended sequence numbers: a Kinesis sequence number
// (or a sentinel) plus a KPL sub-sequence number, with the Java KCL's ordering
// (ExtendedSequenceNumber). It is a leaf package shared by lease, retrieval,
// subprocess and daemon.
package seqnum

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
)

// Sentinel checkpoint values, exactly as the Java KCL stores them.
const (
	TrimHorizon = "TRIM_HORIZON"
	Latest      = "LATEST"
	AtTimestamp = "AT_TIMESTAMP"
	ShardEnd    = "SHARD_END"
)

// ErrInvalid is wrapped by every parse error: the value is neither all digits
// nor a sentinel.
var ErrInvalid = errors.New("invalid sequence number")

// ESN is an extended sequence number. The zero value is not valid.
type ESN struct {
	// Sequence is a decimal Kinesis sequence number or one of the sentinels.
	Sequence string
	// SubSequence is the KPL sub-record index; 0 for plain records and sentinels.
	SubSequence int64
}

// New returns the ESN (seq, sub).
func New(seq string, sub int64) ESN { return ESN{Sequence: seq, SubSequence: sub} }

// Sentinel returns the ESN for a sentinel with sub-sequence 0.
func Sentinel(name string) ESN { return ESN{Sequence: name} }

// String renders "seq" or "seq/sub" when sub is non-zero (for logs only).
func (e ESN) String() string {
	if e.SubSequence == 0 {
		return e.Sequence
	}
	return e.Sequence + "/" + strconv.FormatInt(e.SubSequence, 10)
}

// IsSentinel reports whether the sequence is one of the four sentinels.
func (e ESN) IsSentinel() bool { return IsSentinel(e.Sequence) }

// IsShardEnd reports whether e is (SHARD_END, any sub).
func (e ESN) IsShardEnd() bool { return e.Sequence == ShardEnd }

// IsSentinel reports whether s is one of TRIM_HORIZON, LATEST, AT_TIMESTAMP, SHARD_END.
func IsSentinel(s string) bool {
	switch s {
	case TrimHorizon, Latest, AtTimestamp, ShardEnd:
		return true
	}
	return false
}

// IsDigits reports whether s is a non-empty string of ASCII digits.
func IsDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Validate returns an error wrapping ErrInvalid unless e's sequence is digits
// or a sentinel and its sub-sequence is non-negative.
func (e ESN) Validate() error {
	if !IsDigits(e.Sequence) && !IsSentinel(e.Sequence) {
		return fmt.Errorf("%w: %q is neither digits nor a sentinel", ErrInvalid, e.Sequence)
	}
	if e.SubSequence < 0 {
		return fmt.Errorf("%w: negative sub-sequence %d", ErrInvalid, e.SubSequence)
	}
	return nil
}

// value maps the sequence to its big-integer rank: AT_TIMESTAMP=-3,
// TRIM_HORIZON=-2, LATEST=-1, digits=their value. SHARD_END is handled by Compare.
func value(s string) (*big.Int, error) {
	switch s {
	case AtTimestamp:
		return big.NewInt(-3), nil
	case TrimHorizon:
		return big.NewInt(-2), nil
	case Latest:
		return big.NewInt(-1), nil
	}
	if !IsDigits(s) {
		return nil, fmt.Errorf("%w: %q", ErrInvalid, s)
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrInvalid, s)
	}
	return v, nil
}

// Compare orders a and b as the Java KCL does: SHARD_END is greater than
// everything, otherwise big-integer order with sentinels below all digits,
// ties broken by sub-sequence. It returns -1, 0 or +1, or an error wrapping
// ErrInvalid if either sequence is neither digits nor a sentinel.
func Compare(a, b ESN) (int, error) {
	aEnd, bEnd := a.Sequence == ShardEnd, b.Sequence == ShardEnd
	switch {
	case aEnd && bEnd:
		return cmpInt(a.SubSequence, b.SubSequence), nil
	case aEnd:
		if _, err := value(b.Sequence); err != nil {
			return 0, err
		}
		return 1, nil
	case bEnd:
		if _, err := value(a.Sequence); err != nil {
			return 0, err
		}
		return -1, nil
	}
	// Fast path for equal-length digit strings (the common case): byte order
	// equals numeric order without allocating big.Ints.
	if IsDigits(a.Sequence) && IsDigits(b.Sequence) && len(a.Sequence) == len(b.Sequence) && a.Sequence[0] != '0' && b.Sequence[0] != '0' {
		switch {
		case a.Sequence < b.Sequence:
			return -1, nil
		case a.Sequence > b.Sequence:
			return 1, nil
		}
		return cmpInt(a.SubSequence, b.SubSequence), nil
	}
	av, err := value(a.Sequence)
	if err != nil {
		return 0, err
	}
	bv, err := value(b.Sequence)
	if err != nil {
		return 0, err
	}
	if c := av.Cmp(bv); c != 0 {
		return c, nil
	}
	return cmpInt(a.SubSequence, b.SubSequence), nil
}

// MustCompare is Compare for values already validated; it panics on error.
func MustCompare(a, b ESN) int {
	c, err := Compare(a, b)
	if err != nil {
		panic(err)
	}
	return c
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
