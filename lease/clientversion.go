package lease

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/properties"
)

// ClientVersionInit is Java ClientVersion.CLIENT_VERSION_INIT: no
// Migration3.0 item (a 2.x table, or a 3.5 fleet in its 2.x-compatible
// phase 1).
const ClientVersionInit = "CLIENT_VERSION_INIT"

// Attributes and entity type of the Migration3.0 item (Java MigrationState,
// EntityType.CLIENT_VERSION_MIGRATION).
const (
	attrClientVersion         = "cv"
	attrModifiedBy            = "mb"
	attrModifiedTimestamp     = "mts"
	EntityTypeClientVersion   = "CLIENT_VERSION_MIGRATION"
	attrTableMigrationStatus  = "tm"
	tableMigrationStatusDone  = "TABLE_MIGRATION_STATUS_COMPLETE"
	legacyCoordinatorStateKey = "key"
)

// InitialClientVersion is Java
// MigrationClientVersionStateInitializer.getClientVersionForInitialization:
// the client version a worker starts in, from the Migration3.0 item's cv
// (stored; "" when absent) and clientVersionConfig (configured).
func InitialClientVersion(stored, configured string) (string, error) {
	switch stored {
	case "", ClientVersionInit:
		switch configured {
		case properties.ClientVersionCompatible2XPhase1:
			return ClientVersionInit, nil
		case properties.ClientVersionCompatible2X:
			return ClientVersionUpgr, nil
		case properties.ClientVersion3X, "":
			return ClientVersion3X, nil
		}
		return "", fmt.Errorf("unknown clientVersionConfig %q", configured)
	case ClientVersion3XRoll:
		if configured == properties.ClientVersion3X || configured == "" {
			return ClientVersion3X, nil
		}
		return stored, nil
	case ClientVersion2X, ClientVersionUpgr, ClientVersion3X:
		return stored, nil
	}
	return "", fmt.Errorf("unknown client version %q in %s", stored, MigrationKey)
}

// NextClientVersion is the transition a running worker in version cur makes
// when the Migration3.0 item says stored (Java ClientVersionChangeMonitor and
// the onClientVersionChange of MigrationClientVersion2xState,
// …UpgradeFrom2xState and …3xWithRollbackState): 2X → UPGRADE_FROM_2X,
// UPGRADE_FROM_2X → 2X or 3X_WITH_ROLLBACK, 3X_WITH_ROLLBACK → 2X or 3X.
// INIT and 3X are terminal (no monitor). Any other change is refused (ok
// false) and cur stays in force, as Java keeps monitoring.
func NextClientVersion(cur, stored string) (next string, ok bool) {
	if stored == "" || stored == cur {
		return cur, true
	}
	allowed := map[string][]string{
		ClientVersion2X:     {ClientVersionUpgr},
		ClientVersionUpgr:   {ClientVersion2X, ClientVersion3XRoll},
		ClientVersion3XRoll: {ClientVersion2X, ClientVersion3X},
	}
	for _, v := range allowed[cur] {
		if v == stored {
			return stored, true
		}
	}
	return cur, false
}

// PublishesWorkerMetrics reports whether multilangd publishes its
// WorkerMetricStats item in client version v. Java does in UPGRADE_FROM_2X,
// 3X_WITH_ROLLBACK and 3X; multilangd only in UPGRADE_FROM_2X until it can
// follow a 3.x leader's assignments: a worker that publishes is given leases
// by the leader, and one that cannot discover them would stall them until
// they expire (docs/compatibility.md "KCL 3.x").
func PublishesWorkerMetrics(v string) bool { return v == ClientVersionUpgr }

// CreateMigrationState is Java CoordinatorStateDAO.createCoordinatorStateIfNotExists
// for a first MigrationState (AbstractMigrationClientVersionState.enter from
// CLIENT_VERSION_INIT): PutItem of Migration3.0 {cv, mb, mts, entityType}
// with attribute_not_exists on the partition key, in the lease table — or in
// the legacy CoordinatorState table when that exists and its
// TableMigration3.5 is not COMPLETE (CoordinatorStateDAO.getWriteDelegate).
// It reports false when the item exists already.
func (s *DynamoStore) CreateMigrationState(ctx context.Context, cv, workerID string, now time.Time) (bool, error) {
	table, pk, err := s.coordinatorWriteTarget(ctx)
	if err != nil {
		return false, err
	}
	item := map[string]types.AttributeValue{
		pk:                    attrS(MigrationKey),
		AttrEntityType:        attrS(EntityTypeClientVersion),
		attrClientVersion:     attrS(cv),
		attrModifiedBy:        attrS(workerID),
		attrModifiedTimestamp: &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
	}
	err = s.do(ctx, "create "+MigrationKey+" in "+table, func(ctx context.Context) error {
		_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item,
			ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
			ExpressionAttributeNames: map[string]string{"#pk": pk}})
		return err
	})
	if errors.Is(err, ErrConditionFailed) {
		return false, nil
	}
	return err == nil, err
}

// coordinatorWriteTarget is where KCL 3.x metadata is written: the lease
// table (partition key leaseKey) unless a legacy CoordinatorState table
// exists whose table migration is not COMPLETE (Java
// TableMigrationStateMachineImpl.determineStatusForInitialization with
// migrateAllEntitiesToLeaseTable = false).
func (s *DynamoStore) coordinatorWriteTarget(ctx context.Context) (table, pk string, err error) {
	done, err := s.TableMigrationComplete(ctx)
	if err != nil {
		return "", "", err
	}
	if done {
		return s.table, AttrLeaseKey, nil
	}
	return s.coordTable, legacyCoordinatorStateKey, nil
}

// TableMigrationComplete reports whether KCL 3.x metadata lives in the lease
// table: no legacy CoordinatorState table (configured and existing), or a
// TableMigration3.5 item with tm = TABLE_MIGRATION_STATUS_COMPLETE in the
// lease table or the legacy table.
func (s *DynamoStore) TableMigrationComplete(ctx context.Context) (bool, error) {
	if s.coordTable == "" {
		return true, nil
	}
	legacy, err := s.getStateItem(ctx, s.coordTable, legacyCoordinatorStateKey, TableMigrationKey)
	if errors.Is(err, ErrTableNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if tm, _ := getS(legacy, attrTableMigrationStatus); tm == tableMigrationStatusDone {
		return true, nil
	}
	inLease, err := s.getStateItem(ctx, s.table, AttrLeaseKey, TableMigrationKey)
	if err != nil {
		return false, err
	}
	tm, _ := getS(inLease, attrTableMigrationStatus)
	return tm == tableMigrationStatusDone, nil
}
