package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// javaLeader is a scripted Java KCL 3.x worker that holds the Leader lock:
// it writes exactly the items and conditions of the Java KCL 3.x
// (DynamoDBLeaseRefresher, DynamoDBLeaseSerializer, CoordinatorStateDAO,
// MigrationState, WorkerMetricStatsReporter) and of the
// amazon-dynamodb-lock-client (AmazonDynamoDBLockClient acquire, heartbeat
// and release), in the 3.5 single-table layout (everything in the lease
// table). Assignments are made by the test (assign = W8, handoff = W9), not
// by an assignment algorithm.
type javaLeader struct {
	t     *testing.T
	ddb   *dynamodb.Client
	table string
	id    string
	// lockDuration is the lease duration written into the lock item
	// (AmazonDynamoDBLockClient leaseDuration, as text in ms).
	lockDuration time.Duration
	// heartbeat is the lock client's heartbeatPeriod; the scripted worker
	// also renews its own leases and publishes its metrics on it.
	heartbeat time.Duration

	mu   sync.Mutex
	rvn  string
	held map[string]int64 // leases this worker renews -> counter
	stop context.CancelFunc
	done chan struct{}
}

func newJavaLeader(t *testing.T, ddb *dynamodb.Client, table, id string) *javaLeader {
	return &javaLeader{t: t, ddb: ddb, table: table, id: id, lockDuration: 6 * time.Second,
		heartbeat: time.Second, held: map[string]int64{}}
}

func sAttr(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func nAttr(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// newRVN is AmazonDynamoDBLockClient.generateRecordVersionNumber (a random
// UUID).
func newRVN() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// createTable is DynamoDBLeaseRefresher.createLeaseTableIfNotExists
// (PAY_PER_REQUEST, key leaseKey S) followed by
// createLeaseOwnerToLeaseKeyIndexIfNotExists (UpdateTable adding the
// KEYS_ONLY GSI LeaseOwnerToLeaseKeyIndex on leaseOwner/leaseKey, no
// throughput on an on-demand table), waiting until both are ACTIVE.
func (j *javaLeader) createTable(ctx context.Context) {
	j.t.Helper()
	_, err := j.ddb.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(j.table),
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		j.t.Fatalf("java leader: create lease table: %v", err)
	}
	j.waitTable(ctx, false)
	_, err = j.ddb.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName: aws.String(j.table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("leaseOwner"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS},
		},
		GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
			IndexName: aws.String("LeaseOwnerToLeaseKeyIndex"),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("leaseOwner"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}}},
	})
	if err != nil {
		j.t.Fatalf("java leader: create LeaseOwnerToLeaseKeyIndex: %v", err)
	}
	j.waitTable(ctx, true)
}

func (j *javaLeader) waitTable(ctx context.Context, index bool) {
	j.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, err := j.ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(j.table)})
		if err == nil && out.Table.TableStatus == types.TableStatusActive {
			if !index {
				return
			}
			for _, g := range out.Table.GlobalSecondaryIndexes {
				if aws.ToString(g.IndexName) == "LeaseOwnerToLeaseKeyIndex" && g.IndexStatus == types.IndexStatusActive {
					return
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	j.t.Fatalf("java leader: lease table %s (index %v) not ACTIVE", j.table, index)
}

// createMigration3X is MigrationClientVersionStateInitializer on a new
// application (clientVersionConfig CLIENT_VERSION_CONFIG_3X, no
// Migration3.0): CoordinatorStateDAO.createCoordinatorStateIfNotExists of
// MigrationState{cv = CLIENT_VERSION_3X} — PutItem {leaseKey, entityType,
// cv, mb, mts} with attribute_not_exists(leaseKey).
func (j *javaLeader) createMigration(ctx context.Context, cv string) {
	j.t.Helper()
	_, err := j.ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(j.table),
		Item: map[string]types.AttributeValue{
			"leaseKey":   sAttr("Migration3.0"),
			"entityType": sAttr("CLIENT_VERSION_MIGRATION"),
			"cv":         sAttr(cv),
			"mb":         sAttr(j.id),
			"mts":        nAttr(time.Now().UnixMilli()),
		},
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": "leaseKey"},
	})
	if err != nil {
		j.t.Fatalf("java leader: create Migration3.0: %v", err)
	}
}

// createLeases is the leader's shard sync creating one lease per shard of
// stream (DynamoDBLeaseRefresher.createLeaseIfNotExists, W1): PutItem of
// the full lease (DynamoDBLeaseSerializer.toDynamoRecord, 3.5 with
// entityType LEASE) expecting leaseKey not to exist.
func (j *javaLeader) createLeases(ctx context.Context, kc *kinesis.Client, stream string) []string {
	j.t.Helper()
	out, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		j.t.Fatalf("java leader: ListShards: %v", err)
	}
	var keys []string
	for _, sh := range out.Shards {
		item := map[string]types.AttributeValue{
			"leaseKey":                     sAttr(aws.ToString(sh.ShardId)),
			"leaseCounter":                 nAttr(0),
			"ownerSwitchesSinceCheckpoint": nAttr(0),
			"checkpoint":                   sAttr("TRIM_HORIZON"),
			"checkpointSubSequenceNumber":  nAttr(0),
			"startingHashKey":              sAttr(aws.ToString(sh.HashKeyRange.StartingHashKey)),
			"endingHashKey":                sAttr(aws.ToString(sh.HashKeyRange.EndingHashKey)),
			"entityType":                   sAttr("LEASE"),
		}
		_, err := j.ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(j.table), Item: item,
			Expected: map[string]types.ExpectedAttributeValue{"leaseKey": {Exists: aws.Bool(false)}}})
		if err != nil {
			j.t.Fatalf("java leader: create lease %s: %v", aws.ToString(sh.ShardId), err)
		}
		keys = append(keys, aws.ToString(sh.ShardId))
	}
	return keys
}

// lockCondition is the lock client's owner-and-version condition
// (PK_EXISTS_AND_OWNER_NAME_SAME_AND_RVN_SAME_CONDITION).
const lockCondition = "attribute_exists(#pk) AND #rvn = :rvn AND #on = :on"

// acquireLock is AmazonDynamoDBLockClient.acquireLock of the absent
// "Leader" lock with DynamoDBLockBasedLeaderDecider's additional attributes
// (LeaderLock.serialize: entityType LEADER): PutItem {entityType, leaseKey,
// ownerName, leaseDuration, recordVersionNumber} with
// attribute_not_exists(#pk). It then heart-beats (sendHeartbeat: a new
// recordVersionNumber each time), renews this worker's leases and
// publishes its WorkerMetricStats until crash or release.
func (j *javaLeader) acquireLock(ctx context.Context) {
	j.t.Helper()
	rvn := newRVN()
	_, err := j.ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(j.table),
		Item: map[string]types.AttributeValue{
			"entityType":          sAttr("LEADER"),
			"leaseKey":            sAttr("Leader"),
			"ownerName":           sAttr(j.id),
			"leaseDuration":       sAttr(strconv.FormatInt(j.lockDuration.Milliseconds(), 10)),
			"recordVersionNumber": sAttr(rvn),
		},
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": "leaseKey"},
	})
	if err != nil {
		j.t.Fatalf("java leader: acquire Leader lock: %v", err)
	}
	j.mu.Lock()
	j.rvn = rvn
	j.mu.Unlock()
	j.publishMetrics(ctx)
	loopCtx, cancel := context.WithCancel(context.Background())
	j.stop, j.done = cancel, make(chan struct{})
	go j.run(loopCtx) // owned by crash/release, which cancel and wait for it
	j.t.Cleanup(func() { j.crash() })
}

func (j *javaLeader) run(ctx context.Context) {
	defer close(j.done)
	t := time.NewTicker(j.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		j.sendHeartbeat(ctx)
		j.renewLeases(ctx)
		j.publishMetrics(ctx)
	}
}

// sendHeartbeat is AmazonDynamoDBLockClient.sendHeartbeat:
// UpdateItem SET #ld = :ld, #rvn = :newRvn on the owner-and-version
// condition.
func (j *javaLeader) sendHeartbeat(ctx context.Context) {
	j.mu.Lock()
	defer j.mu.Unlock()
	next := newRVN()
	_, err := j.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(j.table),
		Key:                      map[string]types.AttributeValue{"leaseKey": sAttr("Leader")},
		UpdateExpression:         aws.String("SET #ld = :ld, #rvn = :newRvn"),
		ConditionExpression:      aws.String(lockCondition),
		ExpressionAttributeNames: map[string]string{"#pk": "leaseKey", "#ld": "leaseDuration", "#rvn": "recordVersionNumber", "#on": "ownerName"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":ld": sAttr(strconv.FormatInt(j.lockDuration.Milliseconds(), 10)),
			":newRvn": sAttr(next), ":rvn": sAttr(j.rvn), ":on": sAttr(j.id)},
	})
	if err == nil {
		j.rvn = next
	} else if ctx.Err() == nil {
		j.t.Logf("java leader: heartbeat: %v", err)
	}
}

// renewLeases is the 3.x DynamoDBLeaseRefresher.renewLease (W2) of every
// lease this worker holds: leaseCounter = N AND checkpointOwner absent;
// SET leaseCounter = N+1. A failed renew drops the lease.
func (j *javaLeader) renewLeases(ctx context.Context) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for key, n := range j.held {
		_, err := j.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(j.table),
			Key: map[string]types.AttributeValue{"leaseKey": sAttr(key)},
			Expected: map[string]types.ExpectedAttributeValue{
				"leaseCounter":    {Value: nAttr(n)},
				"checkpointOwner": {Exists: aws.Bool(false)},
			},
			AttributeUpdates: map[string]types.AttributeValueUpdate{"leaseCounter": {Value: nAttr(n + 1), Action: types.AttributeActionPut}},
		})
		if err == nil {
			j.held[key] = n + 1
		} else if ctx.Err() == nil {
			j.t.Logf("java leader: lost lease %s: %v", key, err)
			delete(j.held, key)
		}
	}
}

// publishMetrics is WorkerMetricStatsReporter.run writing the
// LeaseTableWorkerMetricStats bean through the enhanced client
// (WorkerMetricStatsDAO.updateMetrics: an UpdateItem setting every non-null
// attribute, ignoreNulls): lut, sts {C: [..]}, opr {C: [100]}, sup, slu and
// entityType WORKER_METRIC_STATS, keyed by leaseKey = worker id.
func (j *javaLeader) publishMetrics(ctx context.Context) {
	now := time.Now().Unix()
	_, err := j.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(j.table),
		Key:              map[string]types.AttributeValue{"leaseKey": sAttr(j.id)},
		UpdateExpression: aws.String("SET #lut = :lut, #sts = :sts, #opr = :opr, #sup = :sup, #slu = :slu, #et = :et"),
		ExpressionAttributeNames: map[string]string{"#lut": "lut", "#sts": "sts", "#opr": "opr", "#sup": "sup",
			"#slu": "slu", "#et": "entityType"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":lut": nAttr(now),
			":sts": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": &types.AttributeValueMemberL{
				Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "10.0"}, &types.AttributeValueMemberN{Value: "10.0"}}}}},
			":opr": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": &types.AttributeValueMemberL{
				Value: []types.AttributeValue{nAttr(100)}}}},
			":sup": nAttr(1),
			":slu": nAttr(now),
			":et":  sAttr("WORKER_METRIC_STATS"),
		},
	})
	if err != nil && ctx.Err() == nil {
		j.t.Logf("java leader: worker metrics: %v", err)
	}
}

// getLease reads one lease item (consistent).
func (j *javaLeader) getLease(ctx context.Context, key string) map[string]types.AttributeValue {
	j.t.Helper()
	out, err := j.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(j.table),
		Key: map[string]types.AttributeValue{"leaseKey": sAttr(key)}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		j.t.Fatalf("java leader: get %s: %v", key, err)
	}
	return out.Item
}

func attrStr(item map[string]types.AttributeValue, k string) string {
	if v, ok := item[k].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func attrNum(item map[string]types.AttributeValue, k string) int64 {
	if v, ok := item[k].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

// ownerExpected is DynamoDBLeaseSerializer.buildExpectedAttributeValueIfExistsOrValue.
func ownerExpected(v string) types.ExpectedAttributeValue {
	if v == "" {
		return types.ExpectedAttributeValue{Exists: aws.Bool(false)}
	}
	return types.ExpectedAttributeValue{Value: sAttr(v)}
}

// assign is DynamoDBLeaseRefresher.assignLease (W8) as the
// LeaseAssignmentManager calls it with the lease it last read: expected
// leaseOwner and checkpointOwner as read (or absent) and leaseKey existing;
// PUT leaseOwner, DELETE checkpointOwner, ADD leaseCounter 1 and ADD
// ownerSwitchesSinceCheckpoint 1 when the owner changes
// (DynamoDBLeaseSerializer.getDynamoAssignLeaseUpdate). It reports whether
// the condition held. When newOwner is this worker, it starts renewing the
// lease.
func (j *javaLeader) assign(ctx context.Context, key, newOwner string) bool {
	j.t.Helper()
	cur := j.getLease(ctx, key)
	owner, ckpt := attrStr(cur, "leaseOwner"), attrStr(cur, "checkpointOwner")
	updates := map[string]types.AttributeValueUpdate{
		"leaseOwner":      {Value: sAttr(newOwner), Action: types.AttributeActionPut},
		"checkpointOwner": {Action: types.AttributeActionDelete},
		"leaseCounter":    {Value: nAttr(1), Action: types.AttributeActionAdd},
	}
	if owner != "" && owner != newOwner || ckpt != "" && ckpt == newOwner {
		updates["ownerSwitchesSinceCheckpoint"] = types.AttributeValueUpdate{Value: nAttr(1), Action: types.AttributeActionAdd}
	}
	out, err := j.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(j.table),
		Key: map[string]types.AttributeValue{"leaseKey": sAttr(key)},
		Expected: map[string]types.ExpectedAttributeValue{
			"leaseOwner":      ownerExpected(owner),
			"checkpointOwner": ownerExpected(ckpt),
			"leaseKey":        {Exists: aws.Bool(true), Value: sAttr(key)},
		},
		AttributeUpdates:                    updates,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false
	}
	if err != nil {
		j.t.Fatalf("java leader: assign %s to %s: %v", key, newOwner, err)
	}
	if newOwner == j.id {
		j.mu.Lock()
		j.held[key] = attrNum(out.Attributes, "leaseCounter")
		j.mu.Unlock()
	}
	return true
}

// crash stops heart-beating, renewing and publishing without touching the
// lock: the lock item stays with its last recordVersionNumber and goes stale
// after its leaseDuration (a JVM killed with SIGKILL).
func (j *javaLeader) crash() {
	if j.stop == nil {
		return
	}
	j.stop()
	<-j.done
	j.stop = nil
}

// lockOwner returns the Leader lock's ownerName and recordVersionNumber
// ("" when there is no lock item).
func lockOwner(ctx context.Context, t *testing.T, ddb *dynamodb.Client, table string) (owner, rvn string) {
	t.Helper()
	out, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{"leaseKey": sAttr("Leader")}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", ""
	}
	return attrStr(out.Item, "ownerName"), attrStr(out.Item, "recordVersionNumber")
}
