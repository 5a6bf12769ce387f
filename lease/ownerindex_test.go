package lease

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// racedIndexAPI is a lease table on which another worker creates the
// lease-owner index between this worker's DescribeTable and UpdateTable.
type racedIndexAPI struct {
	DynamoAPI
	describes int
}

func (a *racedIndexAPI) DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	a.describes++
	t := &types.TableDescription{TableName: aws.String("t")}
	if a.describes > 1 {
		t.GlobalSecondaryIndexes = []types.GlobalSecondaryIndexDescription{{IndexName: aws.String(LeaseOwnerIndex), IndexStatus: types.IndexStatusCreating}}
	}
	return &dynamodb.DescribeTableOutput{Table: t}, nil
}

func (a *racedIndexAPI) UpdateTable(context.Context, *dynamodb.UpdateTableInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error) {
	return nil, &types.ResourceInUseException{Message: aws.String("Attempt to change a resource which is still in use: Table is being updated")}
}

// TestCreateLeaseOwnerIndexRaced: the worker that loses the race to create
// the index gets the index's status, not an error, and so waits for it to
// become ACTIVE like the winner.
func TestCreateLeaseOwnerIndexRaced(t *testing.T) {
	st := NewDynamoStore(&racedIndexAPI{}, "t", nil)
	status, err := st.CreateLeaseOwnerIndexIfNotExists(context.Background())
	if err != nil || status != types.IndexStatusCreating {
		t.Fatalf("CreateLeaseOwnerIndexIfNotExists = %q, %v; want CREATING, nil", status, err)
	}
}
