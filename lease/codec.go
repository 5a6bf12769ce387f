package lease

import (
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/seqnum"
)

// Attribute names exactly as the Java KCL writes them (DynamoDBLeaseSerializer).
const (
	AttrLeaseKey                     = "leaseKey"
	AttrLeaseOwner                   = "leaseOwner"
	AttrLeaseCounter                 = "leaseCounter"
	AttrOwnerSwitchesSinceCheckpoint = "ownerSwitchesSinceCheckpoint"
	AttrCheckpoint                   = "checkpoint"
	AttrCheckpointSubSequenceNumber  = "checkpointSubSequenceNumber"
	AttrPendingCheckpoint            = "pendingCheckpoint"
	AttrPendingCheckpointSubSequence = "pendingCheckpointSubSequenceNumber"
	AttrPendingCheckpointState       = "pendingCheckpointState"
	AttrParentShardID                = "parentShardId"
	AttrChildShardIDs                = "childShardIds"
	AttrStartingHashKey              = "startingHashKey"
	AttrEndingHashKey                = "endingHashKey"
	AttrThroughputKBps               = "throughputKBps"
	AttrCheckpointOwner              = "checkpointOwner"
	AttrEntityType                   = "entityType"
	AttrStreamName                   = "streamName"
	AttrShardID                      = "shardId"
)

// EntityTypeLease is the entityType value of a lease item (3.5+).
const EntityTypeLease = "LEASE"

// maxHash is 2^128-1, the largest Kinesis hash key.
var maxHash = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

var multiStreamKeyRE = regexp.MustCompile(`^([0-9]+:[^:]+:[0-9]+):([^:]+)$`)

// ParseMultiStreamKey splits a multi-stream lease key
// account:stream:epoch:shardId into the serialised stream identifier and the
// shard id. ok is false for single-stream keys.
func ParseMultiStreamKey(key string) (streamID, shardID string, ok bool) {
	m := multiStreamKeyRE.FindStringSubmatch(key)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// MultiStreamKey builds the lease key of shardID in the stream identified by
// streamID (account:stream:epoch).
func MultiStreamKey(streamID, shardID string) string { return streamID + ":" + shardID }

func attrS(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func attrN(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}
func attrSS(v []string) types.AttributeValue {
	c := append([]string(nil), v...)
	sort.Strings(c)
	return &types.AttributeValueMemberSS{Value: c}
}

// MarshalItem encodes l as the full item written by W1 (create). Empty sets
// and empty optional strings are omitted; entityType is always "LEASE".
func MarshalItem(l Lease) (map[string]types.AttributeValue, error) {
	if l.Key == "" {
		return nil, fmt.Errorf("%w: empty leaseKey", ErrMalformed)
	}
	if err := l.Checkpoint.Validate(); err != nil {
		return nil, fmt.Errorf("%w: lease %s checkpoint: %w", ErrMalformed, l.Key, err)
	}
	item := map[string]types.AttributeValue{
		AttrLeaseKey:                     attrS(l.Key),
		AttrLeaseCounter:                 attrN(l.Counter),
		AttrOwnerSwitchesSinceCheckpoint: attrN(l.OwnerSwitchesSinceCheckpoint),
		AttrCheckpoint:                   attrS(l.Checkpoint.Sequence),
		AttrCheckpointSubSequenceNumber:  attrN(l.Checkpoint.SubSequence),
		AttrEntityType:                   attrS(EntityTypeLease),
	}
	if l.Owner != "" {
		item[AttrLeaseOwner] = attrS(l.Owner)
	}
	if l.PendingCheckpoint != nil {
		item[AttrPendingCheckpoint] = attrS(l.PendingCheckpoint.Sequence)
		item[AttrPendingCheckpointSubSequence] = attrN(l.PendingCheckpoint.SubSequence)
	}
	if len(l.PendingCheckpointState) > 0 {
		item[AttrPendingCheckpointState] = &types.AttributeValueMemberB{Value: l.PendingCheckpointState}
	}
	if len(l.ParentShardIDs) > 0 {
		item[AttrParentShardID] = attrSS(l.ParentShardIDs)
	}
	if len(l.ChildShardIDs) > 0 {
		item[AttrChildShardIDs] = attrSS(l.ChildShardIDs)
	}
	if l.StartingHashKey != "" || l.EndingHashKey != "" {
		if err := validateHashRange(l.StartingHashKey, l.EndingHashKey); err != nil {
			return nil, fmt.Errorf("%w: lease %s: %w", ErrMalformed, l.Key, err)
		}
		item[AttrStartingHashKey] = attrS(l.StartingHashKey)
		item[AttrEndingHashKey] = attrS(l.EndingHashKey)
	}
	if l.ThroughputKBps != nil {
		item[AttrThroughputKBps] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(*l.ThroughputKBps, 'f', -1, 64)}
	}
	if l.CheckpointOwner != "" {
		item[AttrCheckpointOwner] = attrS(l.CheckpointOwner)
	}
	if l.StreamName != "" {
		item[AttrStreamName] = attrS(l.StreamName)
	}
	if l.ShardID != "" {
		item[AttrShardID] = attrS(l.ShardID)
	}
	return item, nil
}

func validateHashRange(start, end string) error {
	s, ok1 := new(big.Int).SetString(start, 10)
	e, ok2 := new(big.Int).SetString(end, 10)
	if !ok1 || !ok2 || !seqnum.IsDigits(start) || !seqnum.IsDigits(end) {
		return fmt.Errorf("hash range %q..%q is not decimal", start, end)
	}
	if s.Cmp(e) >= 0 || e.Cmp(maxHash) > 0 {
		return fmt.Errorf("hash range %s..%s: need 0 <= start < end <= 2^128-1", start, end)
	}
	return nil
}

// UnmarshalItem decodes a lease item following the reader rules in
// docs/architecture.md "The lease table".
// It returns an error wrapping ErrNotLease for 3.5 non-lease items and
// ErrMalformed for lease items it cannot decode; callers skip both.
func UnmarshalItem(item map[string]types.AttributeValue) (Lease, error) {
	var l Lease
	key, ok := getS(item, AttrLeaseKey)
	if !ok {
		return l, fmt.Errorf("%w: no leaseKey (S)", ErrMalformed)
	}
	l.Key = key
	if et, ok := getS(item, AttrEntityType); ok {
		if et != EntityTypeLease {
			return l, fmt.Errorf("%w: %s has entityType %q", ErrNotLease, key, et)
		}
		l.EntityType = et
	} else if _, present := item[AttrEntityType]; present {
		return l, fmt.Errorf("%w: %s has a non-string entityType", ErrNotLease, key)
	}
	if err := decodeProgress(item, &l); err != nil {
		return l, err
	}
	if err := decodeShard(item, &l); err != nil {
		return l, err
	}
	if n, ok := item[AttrThroughputKBps].(*types.AttributeValueMemberN); ok {
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			return l, fmt.Errorf("%w: %s: throughputKBps %q: %w", ErrMalformed, key, n.Value, err)
		}
		l.ThroughputKBps = &f
	}
	l.Owner, _ = getS(item, AttrLeaseOwner)
	l.CheckpointOwner, _ = getS(item, AttrCheckpointOwner)
	return l, nil
}

// decodeProgress reads the counter (required), the checkpoint (required),
// ownerSwitchesSinceCheckpoint and the pending checkpoint into l.
func decodeProgress(item map[string]types.AttributeValue, l *Lease) error {
	key := l.Key
	var ok bool
	var err error
	if l.Counter, ok, err = getN(item, AttrLeaseCounter); err != nil || !ok {
		return fmt.Errorf("%w: %s: leaseCounter (N) missing or invalid: %v", ErrMalformed, key, err)
	}
	cp, ok := getS(item, AttrCheckpoint)
	if !ok || cp == "" {
		return fmt.Errorf("%w: %s: checkpoint (S) missing", ErrMalformed, key)
	}
	sub, _, err := getN(item, AttrCheckpointSubSequenceNumber)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, key, err)
	}
	l.Checkpoint = seqnum.New(cp, sub)
	if err := l.Checkpoint.Validate(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, key, err)
	}
	if l.OwnerSwitchesSinceCheckpoint, _, err = getN(item, AttrOwnerSwitchesSinceCheckpoint); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, key, err)
	}
	if p, ok := getS(item, AttrPendingCheckpoint); ok {
		psub, _, err := getN(item, AttrPendingCheckpointSubSequence)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMalformed, key, err)
		}
		e := seqnum.New(p, psub)
		l.PendingCheckpoint = &e
	}
	if b, ok := item[AttrPendingCheckpointState].(*types.AttributeValueMemberB); ok {
		l.PendingCheckpointState = b.Value
	}
	return nil
}

// decodeShard reads the shard's place in the stream into l: parents,
// children, hash range and the multi-stream names.
func decodeShard(item map[string]types.AttributeValue, l *Lease) error {
	if ss, ok := item[AttrParentShardID].(*types.AttributeValueMemberSS); ok {
		l.ParentShardIDs = append([]string(nil), ss.Value...)
		sort.Strings(l.ParentShardIDs)
	}
	if ss, ok := item[AttrChildShardIDs].(*types.AttributeValueMemberSS); ok {
		l.ChildShardIDs = append([]string(nil), ss.Value...)
		sort.Strings(l.ChildShardIDs)
	}
	start, ok1 := getS(item, AttrStartingHashKey)
	end, ok2 := getS(item, AttrEndingHashKey)
	if ok1 || ok2 {
		if err := validateHashRange(start, end); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMalformed, l.Key, err)
		}
		l.StartingHashKey, l.EndingHashKey = start, end
	}
	l.StreamName, _ = getS(item, AttrStreamName)
	l.ShardID, _ = getS(item, AttrShardID)
	return nil
}

func getS(item map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := item[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}

// getN reads a long; a missing attribute is (0, false, nil) as in Java.
func getN(item map[string]types.AttributeValue, name string) (int64, bool, error) {
	raw, present := item[name]
	if !present {
		return 0, false, nil
	}
	if _, isNull := raw.(*types.AttributeValueMemberNULL); isNull {
		return 0, false, nil
	}
	v, ok := raw.(*types.AttributeValueMemberN)
	if !ok {
		return 0, false, fmt.Errorf("%s is not a number", name)
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		// DynamoDB may normalise a long into e.g. "1E+1"; accept exact integers.
		f, ok := new(big.Float).SetString(v.Value)
		if !ok {
			return 0, false, fmt.Errorf("%s %q: %w", name, v.Value, err)
		}
		i, acc := f.Int64()
		if acc != big.Exact {
			return 0, false, fmt.Errorf("%s %q is not an integer", name, v.Value)
		}
		n = i
	}
	return n, true, nil
}
