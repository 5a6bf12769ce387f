package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
)

// CreateLeaseOwnerIndexIfNotExists is Java
// DynamoDBLeaseRefresher.createLeaseOwnerToLeaseKeyIndexIfNotExists: when
// the lease table has no LeaseOwnerToLeaseKeyIndex, UpdateTable creates it
// (hash leaseOwner, range leaseKey, KEYS_ONLY; on a PROVISIONED table with
// the table's own capacity, on PAY_PER_REQUEST without). It returns the
// index status (CREATING right after the call); it does not wait.
func (s *DynamoStore) CreateLeaseOwnerIndexIfNotExists(ctx context.Context) (types.IndexStatus, error) {
	desc, err := s.describe(ctx)
	if err != nil {
		return "", err
	}
	if status, ok := indexStatus(desc); ok {
		return status, nil
	}
	ut, ok := s.client.(interface {
		UpdateTable(ctx context.Context, in *dynamodb.UpdateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
	})
	if !ok {
		return "", errors.New("lease: this DynamoDB client cannot create the lease-owner index")
	}
	create := &types.CreateGlobalSecondaryIndexAction{
		IndexName: aws.String(LeaseOwnerIndex),
		KeySchema: []types.KeySchemaElement{{AttributeName: aws.String(AttrLeaseOwner), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrLeaseKey), KeyType: types.KeyTypeRange}},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
	}
	if pt := desc.ProvisionedThroughput; !payPerRequest(desc) && pt != nil {
		create.ProvisionedThroughput = &types.ProvisionedThroughput{ReadCapacityUnits: pt.ReadCapacityUnits, WriteCapacityUnits: pt.WriteCapacityUnits}
	}
	var out *dynamodb.UpdateTableOutput
	err = s.do(ctx, "create "+LeaseOwnerIndex+" on "+s.table, func(ctx context.Context) error {
		var err error
		out, err = ut.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(s.table),
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(AttrLeaseOwner), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String(AttrLeaseKey), AttributeType: types.ScalarAttributeTypeS}},
			GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: create}}})
		return err
	})
	if err != nil {
		// Another worker of a new fleet may have created it first (DynamoDB
		// then refuses the second UpdateTable): its status is ours.
		if status, ok := s.ownerIndexStatus(ctx); ok {
			return status, nil
		}
		return "", fmt.Errorf("lease table %s: %w", s.table, err)
	}
	s.log.Info("creating the lease-owner index", zap.String("index", LeaseOwnerIndex))
	if out.TableDescription != nil {
		if status, ok := indexStatus(out.TableDescription); ok {
			return status, nil
		}
	}
	return types.IndexStatusCreating, nil
}

// ownerIndexStatus is the lease-owner index's status as DescribeTable
// shows it now; false when the index is absent or the table unreadable.
func (s *DynamoStore) ownerIndexStatus(ctx context.Context) (types.IndexStatus, bool) {
	desc, err := s.describe(ctx)
	if err != nil {
		return "", false
	}
	return indexStatus(desc)
}

// indexStatus is the LeaseOwnerToLeaseKeyIndex's status in desc; false
// when desc has no such index.
func indexStatus(desc *types.TableDescription) (types.IndexStatus, bool) {
	for _, g := range desc.GlobalSecondaryIndexes {
		if aws.ToString(g.IndexName) == LeaseOwnerIndex {
			return g.IndexStatus, true
		}
	}
	return "", false
}

func payPerRequest(t *types.TableDescription) bool {
	return t.BillingModeSummary != nil && t.BillingModeSummary.BillingMode == types.BillingModePayPerRequest
}

func (s *DynamoStore) describe(ctx context.Context) (*types.TableDescription, error) {
	var out *dynamodb.DescribeTableOutput
	err := s.do(ctx, "describe "+s.table, func(ctx context.Context) error {
		var err error
		out, err = s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out.Table, nil
}

// WaitLeaseOwnerIndexActive is Java
// DynamoDBLeaseRefresher.waitUntilLeaseOwnerToLeaseKeyIndexExists: polls
// LeaseOwnerIndexActive until the index is ACTIVE, timeout passes (an
// error) or ctx ends. Java polls every maxPoll from the start; here the
// first poll comes after 1 s and the pause doubles up to maxPoll, so a
// worker whose index became ACTIVE at once (a new, empty table) joins its
// fleet without waiting a whole maxPoll.
func (s *DynamoStore) WaitLeaseOwnerIndexActive(ctx context.Context, maxPoll, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	poll := min(time.Second, maxPoll)
	for {
		active, err := s.LeaseOwnerIndexActive(ctx)
		if err == nil && active {
			return nil
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("checking the lease-owner index failed; retrying", zap.Error(err))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lease table %s: %s not ACTIVE after %s", s.table, LeaseOwnerIndex, timeout)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for %s: %w", LeaseOwnerIndex, ctx.Err())
		case <-t.C:
		}
		poll = min(2*poll, maxPoll)
	}
}
