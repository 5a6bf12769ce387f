// Package iac describes, for a configuration, the DynamoDB tables and the
// IAM permissions a multilangd fleet needs, and renders them as
// CloudFormation and Terraform for teams that provision tables themselves
// (`multilangd table schema`, `multilangd iam-policy`, leaseTableCreate =
// never). The lease table is created in one place, lease.CreateInput; this
// package describes that same input.
package iac

import (
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
)

// KCL selects which Java KCL generation's schema to describe.
type KCL int

// KCL generations.
const (
	// KCL2 is the 2.x-style lease table multilangd itself uses.
	KCL2 KCL = 2
	// KCL3 adds what Java KCL 3.x workers sharing the table create: the
	// LeaseOwnerToLeaseKeyIndex GSI and, unless
	// migrateAllEntitiesToLeaseTable, the CoordinatorState and
	// WorkerMetricStats tables.
	KCL3 KCL = 3
)

// ParseKCL parses "2" or "3".
func ParseKCL(s string) (KCL, error) {
	switch strings.TrimSpace(s) {
	case "", "2", "2.x":
		return KCL2, nil
	case "3", "3.x":
		return KCL3, nil
	}
	return 0, fmt.Errorf("--kcl %q: want 2 or 3", s)
}

// Table is one table to provision.
type Table struct {
	// LogicalID names the resource in CloudFormation and Terraform.
	LogicalID string
	// Purpose says what the table is for (a comment in the output).
	Purpose string
	// Input is the CreateTable request multilangd (or Java) would send.
	Input *dynamodb.CreateTableInput
	// PITR enables point-in-time recovery (Java leaseTablePitrEnabled).
	PITR bool
}

// LeaseOwnerToLeaseKeyIndex is the GSI Java KCL 3.x adds to the lease table
// (DynamoDBLeaseRefresher.createLeaseOwnerToLeaseKeyIndexIfNotExists).
const LeaseOwnerToLeaseKeyIndex = lease.LeaseOwnerIndex

// Tables returns the tables cfg needs for the given KCL generation, the
// lease table first.
func Tables(cfg *properties.Config, kcl KCL) []Table {
	lt := lease.CreateInput(cfg.TableName, LeaseTableOptions(cfg))
	out := []Table{{LogicalID: "LeaseTable", Purpose: "lease table (leases and checkpoints)", Input: lt, PITR: cfg.LeaseTablePitrEnabled}}
	if kcl < KCL3 {
		return out
	}
	// DynamoDBLeaseSerializer.getWorkerIdToLeaseKeyIndexKeySchema: leaseOwner
	// (HASH), leaseKey (RANGE), KEYS_ONLY, the table's capacity.
	lt.AttributeDefinitions = append(lt.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(lease.AttrLeaseOwner), AttributeType: types.ScalarAttributeTypeS})
	gsi := types.GlobalSecondaryIndex{
		IndexName: aws.String(LeaseOwnerToLeaseKeyIndex),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(lease.AttrLeaseOwner), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(lease.AttrLeaseKey), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
	}
	if lt.ProvisionedThroughput != nil {
		gsi.ProvisionedThroughput = lt.ProvisionedThroughput
	}
	lt.GlobalSecondaryIndexes = []types.GlobalSecondaryIndex{gsi}
	if cfg.MigrateAllEntitiesToLeaseTable {
		return out // KCL 3.5 keeps coordinator state and worker metrics in the lease table
	}
	// LegacyTableCoordinatorStateDAODelegate ("key") and WorkerMetricStatsDAO ("wid").
	out = append(out,
		companion("CoordinatorStateTable", "KCL 3.x coordinator state (leader lock, migration state)", cfg.CoordinatorStateTable, "key"),
		companion("WorkerMetricStatsTable", "KCL 3.x worker metrics", cfg.WorkerMetricsTable, "wid"))
	return out
}

// LeaseTableOptions maps the lease-table keys of cfg to lease.TableOptions.
func LeaseTableOptions(cfg *properties.Config) lease.TableOptions {
	return lease.TableOptions{
		Provisioned:        cfg.LeaseTableBillingProvisioned,
		ReadCapacity:       int64(cfg.InitialLeaseTableReadCapacity),
		WriteCapacity:      int64(cfg.InitialLeaseTableWriteCapacity),
		DeletionProtection: cfg.LeaseTableDeletionProtection,
	}
}

func companion(id, purpose string, tc properties.TableConfig, key string) Table {
	in := lease.CreateInput(tc.TableName, lease.TableOptions{
		Provisioned:        tc.BillingMode == properties.BillingProvisioned,
		ReadCapacity:       tc.ReadCapacity,
		WriteCapacity:      tc.WriteCapacity,
		DeletionProtection: tc.DeletionProtectionEnabled,
		Tags:               tc.Tags,
	})
	in.AttributeDefinitions = []types.AttributeDefinition{{AttributeName: aws.String(key), AttributeType: types.ScalarAttributeTypeS}}
	in.KeySchema = []types.KeySchemaElement{{AttributeName: aws.String(key), KeyType: types.KeyTypeHash}}
	return Table{LogicalID: id, Purpose: purpose, Input: in, PITR: tc.PointInTimeRecoveryEnabled}
}

func sortedTags(tags []types.Tag) []types.Tag {
	out := append([]types.Tag(nil), tags...)
	sort.Slice(out, func(i, j int) bool { return aws.ToString(out[i].Key) < aws.ToString(out[j].Key) })
	return out
}
