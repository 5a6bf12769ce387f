package leader

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/multilangd/multilangd/lease"
)

// The Leader lock item, as the AmazonDynamoDBLockClient (1.4, the version
// KCL 3.x ships) writes it with the options of Java
// DynamoDBLockBasedLeaderDecider: partition key "Leader", additional
// attribute entityType = "LEADER" (Java LeaderLock.serialize), no data,
// deleteLockOnRelease (AcquireLockOptions default).
const (
	// LockKey is Java LeaderLock.LEADER_HASH_KEY.
	LockKey = lease.LeaderKey
	// EntityTypeLeader is Java EntityType.LEADER_LOCK's value.
	EntityTypeLeader = "LEADER"

	// Attribute names (AmazonDynamoDBLockClient OWNER_NAME, LEASE_DURATION,
	// RECORD_VERSION_NUMBER, IS_RELEASED, DATA).
	AttrOwnerName           = "ownerName"
	AttrLeaseDuration       = "leaseDuration"
	AttrRecordVersionNumber = "recordVersionNumber"
	AttrIsReleased          = "isReleased"
	AttrData                = "data"
	isReleasedValue         = "1"
)

// The lock client's condition and update expressions
// (AmazonDynamoDBLockClient ACQUIRE_LOCK_THAT_DOESNT_EXIST_PK_CONDITION,
// PK_EXISTS_AND_IS_RELEASED_CONDITION, PK_EXISTS_AND_RVN_IS_THE_SAME_CONDITION,
// PK_EXISTS_AND_OWNER_NAME_SAME_AND_RVN_SAME_CONDITION,
// UPDATE_LEASE_DURATION_AND_RVN), byte for byte.
const (
	condNotExists      = "attribute_not_exists(#pk)"
	condReleased       = "attribute_exists(#pk) AND #ir = :ir"
	condSameRVN        = "attribute_exists(#pk) AND #rvn = :rvn"
	condOwnerAndRVN    = "attribute_exists(#pk) AND #rvn = :rvn AND #on = :on"
	updateHeartbeatExp = "SET #ld = :ld, #rvn = :newRvn"
)

// DynamoAPI is the part of the DynamoDB API the lock uses;
// lease.DynamoAPI and *dynamodb.Client implement it.
type DynamoAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Table says where the lock lives: the lease table (partition key
// leaseKey) or the legacy <app>-CoordinatorState table (partition key key).
type Table struct {
	Name         string
	PartitionKey string
}

// lockItem is one read of the Leader item (AmazonDynamoDBLockClient.createLockItem).
type lockItem struct {
	owner         string
	leaseDuration time.Duration
	rvn           string
	released      bool
}

// ErrMalformedLock: the Leader item lacks an attribute the lock client
// needs, or its leaseDuration is not a number of milliseconds.
var ErrMalformedLock = errors.New("malformed Leader lock item")

// LockError is a failed request on the Leader lock: Action is get,
// acquire, heartbeat or release.
type LockError struct {
	Action string
	Table  string
	Err    error
}

func (e *LockError) Error() string {
	return fmt.Sprintf("leader lock: %s %s in %s: %v", e.Action, LockKey, e.Table, e.Err)
}

func (e *LockError) Unwrap() error { return e.Err }

// conditionFailed reports whether err is DynamoDB's
// ConditionalCheckFailedException.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func (t Table) key() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{t.PartitionKey: s(LockKey)}
}

// millis is a lease duration as the lock client writes it: text milliseconds.
func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// newRVN is AmazonDynamoDBLockClient.generateRecordVersionNumber: a random UUID.
func newRVN() string { return uuid.NewString() }

// getLock is AmazonDynamoDBLockClient.readFromDynamoDB + createLockItem: a
// consistent GetItem; nil when absent. isReleased counts when present,
// whatever its value, as the lock client reads it.
func getLock(ctx context.Context, api DynamoAPI, t Table) (*lockItem, error) {
	out, err := api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.Name), Key: t.key(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, &LockError{Action: "get", Table: t.Name, Err: err}
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return parseLock(t.Name, out.Item)
}

func parseLock(table string, item map[string]types.AttributeValue) (*lockItem, error) {
	str := func(name string) (string, error) {
		v, ok := item[name].(*types.AttributeValueMemberS)
		if !ok {
			return "", &LockError{Action: "get", Table: table, Err: fmt.Errorf("%w: %s is missing or not a string", ErrMalformedLock, name)}
		}
		return v.Value, nil
	}
	l := &lockItem{}
	var err error
	if l.owner, err = str(AttrOwnerName); err != nil {
		return nil, err
	}
	if l.rvn, err = str(AttrRecordVersionNumber); err != nil {
		return nil, err
	}
	ld, err := str(AttrLeaseDuration)
	if err != nil {
		return nil, err
	}
	ms, perr := strconv.ParseInt(ld, 10, 64)
	if perr != nil {
		return nil, &LockError{Action: "get", Table: table, Err: fmt.Errorf("%w: leaseDuration %q is not milliseconds", ErrMalformedLock, ld)}
	}
	l.leaseDuration = time.Duration(ms) * time.Millisecond
	_, l.released = item[AttrIsReleased]
	return l, nil
}

// lockItemFor is the item acquireLock puts (options.getAdditionalAttributes
// + partition key, ownerName, leaseDuration as text milliseconds, a new
// recordVersionNumber; no data: replaceData with no data given).
func lockItemFor(t Table, owner string, leaseDuration time.Duration, rvn string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		lease.AttrEntityType:    s(EntityTypeLeader),
		t.PartitionKey:          s(LockKey),
		AttrOwnerName:           s(owner),
		AttrLeaseDuration:       s(millis(leaseDuration)),
		AttrRecordVersionNumber: s(rvn),
	}
}

// acquire is the PutItem of AmazonDynamoDBLockClient.acquireLock for the
// lock as last read: upsertAndMonitorNewLock when absent,
// upsertAndMonitorReleasedLock when released (acquireReleasedLocksConsistently
// false), upsertAndMonitorExpiredLock when observed stale (cur.rvn).
func acquire(ctx context.Context, api DynamoAPI, t Table, cur *lockItem, item map[string]types.AttributeValue) error {
	in := &dynamodb.PutItemInput{TableName: aws.String(t.Name), Item: item,
		ExpressionAttributeNames: map[string]string{"#pk": t.PartitionKey}}
	switch {
	case cur == nil:
		in.ConditionExpression = aws.String(condNotExists)
	case cur.released:
		in.ConditionExpression = aws.String(condReleased)
		in.ExpressionAttributeNames["#ir"] = AttrIsReleased
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":ir": s(isReleasedValue)}
	default:
		in.ConditionExpression = aws.String(condSameRVN)
		in.ExpressionAttributeNames["#rvn"] = AttrRecordVersionNumber
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":rvn": s(cur.rvn)}
	}
	if _, err := api.PutItem(ctx, in); err != nil {
		return &LockError{Action: "acquire", Table: t.Name, Err: err}
	}
	return nil
}

// heartbeat is AmazonDynamoDBLockClient.sendHeartbeat: a new
// recordVersionNumber and the lease duration, on condition that the lock
// still is ours at rvn.
func heartbeat(ctx context.Context, api DynamoAPI, t Table, owner, rvn, next string, leaseDuration time.Duration) error {
	_, err := api.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(t.Name), Key: t.key(),
		ConditionExpression: aws.String(condOwnerAndRVN),
		UpdateExpression:    aws.String(updateHeartbeatExp),
		ExpressionAttributeNames: map[string]string{"#pk": t.PartitionKey, "#ld": AttrLeaseDuration,
			"#rvn": AttrRecordVersionNumber, "#on": AttrOwnerName},
		ExpressionAttributeValues: map[string]types.AttributeValue{":rvn": s(rvn), ":on": s(owner),
			":newRvn": s(next), ":ld": s(millis(leaseDuration))},
	})
	if err != nil {
		return &LockError{Action: "heartbeat", Table: t.Name, Err: err}
	}
	return nil
}

// release is AmazonDynamoDBLockClient.releaseLock with deleteLock (the
// acquire options' deleteLockOnRelease): DeleteItem on condition that the
// lock still is ours at rvn.
func release(ctx context.Context, api DynamoAPI, t Table, owner, rvn string) error {
	_, err := api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(t.Name), Key: t.key(),
		ConditionExpression:       aws.String(condOwnerAndRVN),
		ExpressionAttributeNames:  map[string]string{"#pk": t.PartitionKey, "#rvn": AttrRecordVersionNumber, "#on": AttrOwnerName},
		ExpressionAttributeValues: map[string]types.AttributeValue{":rvn": s(rvn), ":on": s(owner)},
	})
	if err != nil {
		return &LockError{Action: "release", Table: t.Name, Err: err}
	}
	return nil
}
