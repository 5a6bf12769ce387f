package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/properties"
)

// TableOptions configure lease-table creation (Java
// DynamoDBLeaseRefresher.createLeaseTableIfNotExists).
type TableOptions struct {
	// Provisioned selects PROVISIONED billing; default PAY_PER_REQUEST.
	Provisioned                 bool
	ReadCapacity, WriteCapacity int64 // default 10 each when Provisioned
	DeletionProtection          bool
	Tags                        map[string]string
	// NeverCreate makes a missing table an error (leaseTableCreate = never)
	// instead of a CreateTable call.
	NeverCreate bool
	// PollInterval is the longest wait between DescribeTable calls while
	// waiting for ACTIVE (default 10 s, Java's fixed interval): the first poll
	// comes after FirstPoll (default 25 ms) and the wait doubles from there,
	// so a table that turns ACTIVE quickly costs no fixed second on the
	// start-up path (docs/compatibility.md). Timeout defaults to 600 s.
	PollInterval, FirstPoll, Timeout time.Duration
}

// CreateInput is the CreateTable request for a lease table named table:
// leaseKey (S) as the only key, as Java DynamoDBLeaseRefresher
// createTableRequestBuilder. It is the one description of the lease table;
// `multilangd table schema` renders the same input.
func CreateInput(table string, o TableOptions) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:                 aws.String(table),
		AttributeDefinitions:      []types.AttributeDefinition{{AttributeName: aws.String(AttrLeaseKey), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:                 []types.KeySchemaElement{{AttributeName: aws.String(AttrLeaseKey), KeyType: types.KeyTypeHash}},
		BillingMode:               types.BillingModePayPerRequest,
		DeletionProtectionEnabled: aws.Bool(o.DeletionProtection),
	}
	if o.Provisioned {
		r, w := o.ReadCapacity, o.WriteCapacity
		if r <= 0 {
			r = int64(properties.Defaults().InitialLeaseTableReadCapacity)
		}
		if w <= 0 {
			w = int64(properties.Defaults().InitialLeaseTableWriteCapacity)
		}
		in.BillingMode = types.BillingModeProvisioned
		in.ProvisionedThroughput = &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(r), WriteCapacityUnits: aws.Int64(w)}
	}
	keys := make([]string, 0, len(o.Tags))
	for k := range o.Tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(o.Tags[k])})
	}
	return in
}

// TableMissingError is returned by CreateTableIfNotExists when the table
// does not exist and TableOptions.NeverCreate is set.
type TableMissingError struct{ Table string }

func (e *TableMissingError) Error() string {
	return fmt.Sprintf("lease table %s does not exist and leaseTableCreate = never", e.Table)
}

// Unwrap makes errors.Is(err, ErrTableNotFound) hold.
func (e *TableMissingError) Unwrap() error { return ErrTableNotFound }

// CreateTableIfNotExists is Java DynamoDBLeaseRefresher
// createLeaseTableIfNotExists followed by waitUntilLeaseTableExists:
// DescribeTable first; only when the table is absent, CreateTable
// (CreateInput); a ResourceInUseException means another worker created it
// meanwhile; then wait until it is ACTIVE or UPDATING. So when several
// workers start on a missing table, DynamoDB lets exactly one CreateTable
// succeed and the others wait for that table. Existing tables (with Java
// 3.x GSIs and non-lease items) are accepted as is. With NeverCreate a
// missing table is a *TableMissingError instead.
func (s *DynamoStore) CreateTableIfNotExists(ctx context.Context, o TableOptions) error {
	if o.PollInterval <= 0 {
		o.PollInterval = 10 * time.Second
	}
	if o.FirstPoll <= 0 || o.FirstPoll > o.PollInterval {
		o.FirstPoll = min(25*time.Millisecond, o.PollInterval)
	}
	if o.Timeout <= 0 {
		o.Timeout = 600 * time.Second
	}
	status, err := s.tableStatus(ctx)
	if errors.Is(err, ErrTableNotFound) && o.NeverCreate {
		return &TableMissingError{Table: s.table}
	}
	if errors.Is(err, ErrTableNotFound) {
		in := CreateInput(s.table, o)
		err = s.do(ctx, "create table "+s.table, func(ctx context.Context) error {
			_, err := s.client.CreateTable(ctx, in)
			return err
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("lease table %s: %w", s.table, err)
		}
		if err == nil {
			s.log.Info("created lease table", zap.String("billingMode", string(in.BillingMode)))
		} else {
			s.log.Info("lease table is being created by another worker; waiting for it")
		}
		status = ""
	} else if err != nil {
		return fmt.Errorf("lease table %s: %w", s.table, err)
	}
	deadline := time.Now().Add(o.Timeout)
	wait := o.FirstPoll
	for status != types.TableStatusActive && status != types.TableStatusUpdating {
		if time.Now().After(deadline) {
			return fmt.Errorf("lease table %s not ACTIVE after %s (status %q)", s.table, o.Timeout, status)
		}
		t := time.NewTimer(wait)
		wait = min(2*wait, o.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("lease table %s: %w", s.table, ctx.Err())
		case <-t.C:
		}
		status, err = s.tableStatus(ctx)
		if err != nil && !errors.Is(err, ErrTableNotFound) {
			return fmt.Errorf("lease table %s: %w", s.table, err)
		}
	}
	return nil
}

func (s *DynamoStore) tableStatus(ctx context.Context) (types.TableStatus, error) {
	var out *dynamodb.DescribeTableOutput
	err := s.do(ctx, "describe table "+s.table, func(ctx context.Context) error {
		var err error
		out, err = s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
		return err
	})
	if err != nil {
		return "", err
	}
	return out.Table.TableStatus, nil
}
