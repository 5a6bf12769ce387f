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

// PublishesWorkerMetrics reports whether a worker publishes its
// WorkerMetricStats item in client version v: in UPGRADE_FROM_2X,
// 3X_WITH_ROLLBACK and 3X, as Java (DynamicMigrationComponentsInitializer
// starts the reporter in those states). A 3.x leader assigns leases only to
// workers with metrics; multilangd follows those assignments through the
// lease-owner index (Coordinator.discover).
func PublishesWorkerMetrics(v string) bool {
	return v == ClientVersionUpgr || v == ClientVersion3XRoll || v == ClientVersion3X
}

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

// LeaderLockTarget is where the KCL 3.x Leader lock lives (Java
// CoordinatorStateDAO.getDDBLockClient, asked on every isLeader): the lease
// table once the 3.5 table migration is COMPLETE (or no legacy table
// exists), otherwise the legacy CoordinatorState table. It makes
// *DynamoStore a leader.Target.
func (s *DynamoStore) LeaderLockTarget(ctx context.Context) (table, partitionKey string, err error) {
	return s.coordinatorWriteTarget(ctx)
}

// Client is the DynamoDB client the store writes through; the KCL 3.x
// Leader lock (lease/leader) writes through the same one.
func (s *DynamoStore) Client() DynamoAPI { return s.client }

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

// LeaseOwnerIndex is the GSI KCL 3.x adds to the lease table (Java
// DynamoDBLeaseRefresher.LEASE_OWNER_TO_LEASE_KEY_INDEX_NAME).
const LeaseOwnerIndex = "LeaseOwnerToLeaseKeyIndex"

// LeaseOwnerIndexActive is Java
// DynamoDBLeaseRefresher.isLeaseOwnerToLeaseKeyIndexActive: the GSI exists
// and is ACTIVE.
func (s *DynamoStore) LeaseOwnerIndexActive(ctx context.Context) (bool, error) {
	desc, err := s.describe(ctx)
	if err != nil {
		return false, err
	}
	status, _ := indexStatus(desc)
	return status == types.IndexStatusActive, nil
}

// FleetView is what Java MigrationReadyMonitor loads: the leases and, per
// worker id, the lut (epoch seconds) of its WorkerMetricStats item.
type FleetView struct {
	Leases        []Lease
	MetricsUpdate map[string]int64
}

// LoadFleetView is LoadAssignmentView reduced to what the readiness check
// needs: the leases and the newest lut of each worker's metrics (Java
// WorkerMetricStatsDAO.getAllWorkerMetricStats over both tables).
func (s *DynamoStore) LoadFleetView(ctx context.Context, legacyMetricsTable string) (FleetView, error) {
	av, err := s.LoadAssignmentView(ctx, legacyMetricsTable)
	if err != nil {
		return FleetView{}, err
	}
	fv := FleetView{Leases: av.Leases, MetricsUpdate: map[string]int64{}}
	for _, w := range av.Workers {
		if w.HasLastUpdate && w.LastUpdate > fv.MetricsUpdate[w.WorkerID] {
			fv.MetricsUpdate[w.WorkerID] = w.LastUpdate
		}
	}
	return fv, nil
}

const entityTypeWorkerMetrics = "WORKER_METRIC_STATS"

// maxMigrationHistory is Java MigrationState.MAX_HISTORY_ENTRIES.
const maxMigrationHistory = 10

// UpdateClientVersion is Java CoordinatorStateDAO.updateCoordinatorStateWithExpectation
// for MigrationState.update(to, workerID): Migration3.0 moves from cv = from
// to cv = to, mb = workerID, mts = now (ms), with the previous (cv, mb, mts)
// prepended to the history h (at most 10 entries), on condition cv = from.
// It reports false when the item is absent or no longer at from.
func (s *DynamoStore) UpdateClientVersion(ctx context.Context, from, to, workerID string, now time.Time) (bool, error) {
	table, pk, err := s.coordinatorWriteTarget(ctx)
	if err != nil {
		return false, err
	}
	cur, err := s.getStateItem(ctx, table, pk, MigrationKey)
	if err != nil {
		return false, err
	}
	if cv, _ := getS(cur, attrClientVersion); cv != from {
		return false, nil
	}
	prev := map[string]types.AttributeValue{attrClientVersion: cur[attrClientVersion], attrModifiedBy: cur[attrModifiedBy], attrModifiedTimestamp: cur[attrModifiedTimestamp]}
	hist := []types.AttributeValue{&types.AttributeValueMemberM{Value: prev}}
	if h, ok := cur["h"].(*types.AttributeValueMemberL); ok {
		hist = append(hist, h.Value...)
	}
	hist = hist[:min(len(hist), maxMigrationHistory)]
	err = s.do(ctx, "update "+MigrationKey+" in "+table, func(ctx context.Context) error {
		_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
			Key:                 map[string]types.AttributeValue{pk: attrS(MigrationKey)},
			UpdateExpression:    aws.String("SET cv = :to, mb = :mb, mts = :mts, h = :h"),
			ConditionExpression: aws.String("cv = :from"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":to": attrS(to), ":from": attrS(from), ":mb": attrS(workerID),
				":mts": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)}, ":h": &types.AttributeValueMemberL{Value: hist}}})
		return err
	})
	if errors.Is(err, ErrConditionFailed) {
		return false, nil
	}
	return err == nil, err
}

// ListLeaseKeysForWorker is Java DynamoDBLeaseRefresher.listLeaseKeysForWorker:
// a Query of the LeaseOwnerToLeaseKeyIndex GSI for leaseOwner = worker (an
// eventually consistent view; the caller re-reads each key).
func (s *DynamoStore) ListLeaseKeysForWorker(ctx context.Context, worker string) ([]string, error) {
	q, ok := s.client.(interface {
		Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	})
	if !ok {
		return nil, errors.New("lease: this DynamoDB client cannot query the lease-owner index")
	}
	var keys []string
	var start map[string]types.AttributeValue
	for {
		var out *dynamodb.QueryOutput
		err := s.do(ctx, "query "+LeaseOwnerIndex, func(ctx context.Context) error {
			var err error
			out, err = q.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(s.table), IndexName: aws.String(LeaseOwnerIndex),
				KeyConditionExpression:    aws.String("#o = :o"),
				ExpressionAttributeNames:  map[string]string{"#o": AttrLeaseOwner},
				ExpressionAttributeValues: map[string]types.AttributeValue{":o": attrS(worker)},
				ExclusiveStartKey:         start})
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, item := range out.Items {
			if k, ok := getS(item, AttrLeaseKey); ok {
				keys = append(keys, k)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return keys, nil
		}
		start = out.LastEvaluatedKey
	}
}
