package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/lease"
)

// counts is how many leases each worker owns (no pending hand-off).
func (f *fleet3x) counts() map[string]int {
	c := map[string]int{}
	for _, l := range f.leases() {
		if l.Owner != "" {
			c[l.Owner]++
		}
	}
	return c
}

func fmtCounts(c map[string]int) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, c[k])
	}
	return strings.TrimSpace(b.String())
}

// tryLeases lists the leases without failing the test (for goroutines).
func (f *fleet3x) tryLeases() ([]lease.Lease, error) {
	return lease.NewDynamoStore(f.ddb.DynamoDB(), f.app, zap.NewNop()).ListLeases(context.Background())
}

// handoff is DynamoDBLeaseRefresher.initiateGracefulLeaseHandoff (W9):
// expected leaseOwner = the current owner, checkpointOwner absent and
// leaseKey existing; PUT leaseOwner = next, PUT checkpointOwner = the
// current owner; the counter is not touched. It reports whether the
// condition held.
func (j *javaLeader) handoff(ctx context.Context, key, next string) bool {
	j.t.Helper()
	cur := j.getLease(ctx, key)
	owner := attrStr(cur, "leaseOwner")
	_, err := j.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(j.table),
		Key: map[string]types.AttributeValue{"leaseKey": sAttr(key)},
		Expected: map[string]types.ExpectedAttributeValue{
			"leaseOwner":      {Value: sAttr(owner)},
			"checkpointOwner": {Exists: aws.Bool(false)},
			"leaseKey":        {Exists: aws.Bool(true), Value: sAttr(key)},
		},
		AttributeUpdates: map[string]types.AttributeValueUpdate{
			"leaseOwner":      {Value: sAttr(next), Action: types.AttributeActionPut},
			"checkpointOwner": {Value: sAttr(owner), Action: types.AttributeActionPut},
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false
	}
	if err != nil {
		j.t.Fatalf("java leader: hand %s off to %s: %v", key, next, err)
	}
	return true
}

// release is a clean stop (DynamoDBLockBasedLeaderDecider.shutdown →
// AmazonDynamoDBLockClient.releaseLock with deleteLockOnRelease = true):
// stop heart-beating, then DeleteItem of the lock on the owner-and-version
// condition.
func (j *javaLeader) release(ctx context.Context) {
	j.t.Helper()
	j.crash()
	j.mu.Lock()
	defer j.mu.Unlock()
	_, err := j.ddb.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(j.table),
		Key:                       map[string]types.AttributeValue{"leaseKey": sAttr("Leader")},
		ConditionExpression:       aws.String(lockCondition),
		ExpressionAttributeNames:  map[string]string{"#pk": "leaseKey", "#rvn": "recordVersionNumber", "#on": "ownerName"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":rvn": sAttr(j.rvn), ":on": sAttr(j.id)},
	})
	if err != nil {
		j.t.Fatalf("java leader: release the Leader lock: %v", err)
	}
}

// checkpointedAfterShutdownRequested reports whether a child of worker on
// shard got shutdownRequested and then had a checkpoint acknowledged.
func (f *fleet3x) checkpointedAfterShutdownRequested(worker, shard string) bool {
	asked := map[int]bool{}
	for _, ev := range f.readEvents() {
		if ev.Worker != worker || ev.Shard != shard {
			continue
		}
		switch {
		case ev.Ev == "shutdownRequested":
			asked[ev.Pid] = true
		case ev.Ev == "cp" && asked[ev.Pid]:
			return true
		}
	}
	return false
}
