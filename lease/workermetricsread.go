package lease

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
)

// WorkerMetricsEntry is one KCL 3.x WorkerMetricStats item as read (Java
// WorkerMetricStats): from the lease table (leaseKey = worker id, entityType
// WORKER_METRIC_STATS) or from the legacy <app>-WorkerMetricStats table
// (wid = worker id).
type WorkerMetricsEntry struct {
	WorkerID string
	// LastUpdate is lut in epoch seconds; HasLastUpdate is false when the
	// item has none (Java treats that entry as invalid and stale).
	LastUpdate    int64
	HasLastUpdate bool
	// Stats is sts (metric short name → history, -1 marks a failed
	// sample); OperatingRange is opr (metric short name → [max
	// utilisation, …]).
	Stats          map[string][]float64
	OperatingRange map[string][]int64
	// Legacy is set for an entry read from the legacy table: it is deleted
	// there (Java MigrationAwareLAMDataManager.deleteStaleWorkerMetricsAsync
	// routes each delete to the table the entry came from).
	Legacy bool
}

// AssignmentView is what one LeaseAssignmentManager run loads (Java
// MigrationAwareLAMDataManager.loadData): every lease and every
// WorkerMetricStats entry, unfiltered.
type AssignmentView struct {
	Leases  []Lease
	Workers []WorkerMetricsEntry
}

// LoadAssignmentView scans the lease table (leases and in-table worker
// metrics) and, unless the 3.5 table migration is COMPLETE, the legacy
// worker-metrics table legacyMetricsTable (a missing table counts as
// empty), as Java MigrationAwareLAMDataManager.loadData. Malformed worker
// metrics entries are skipped with a warning; malformed leases likewise.
func (s *DynamoStore) LoadAssignmentView(ctx context.Context, legacyMetricsTable string) (AssignmentView, error) {
	var (
		mu sync.Mutex
		av AssignmentView
	)
	err := s.scan(ctx, func(items []map[string]types.AttributeValue) {
		mu.Lock()
		defer mu.Unlock()
		for _, item := range items {
			if et, _ := getS(item, AttrEntityType); et == entityTypeWorkerMetrics {
				s.addWorkerMetrics(&av.Workers, item, AttrLeaseKey, false)
				continue
			}
			l, err := UnmarshalItem(item)
			if err != nil {
				if !errors.Is(err, ErrNotLease) {
					s.log.Warn("skipping malformed lease item", zap.Error(err))
				}
				continue
			}
			av.Leases = append(av.Leases, l)
		}
	})
	if err != nil {
		return AssignmentView{}, err
	}
	done, err := s.TableMigrationComplete(ctx)
	if err != nil {
		return AssignmentView{}, err
	}
	if done || legacyMetricsTable == "" {
		return av, nil
	}
	err = s.scanLegacyMetrics(ctx, legacyMetricsTable, func(item map[string]types.AttributeValue) {
		s.addWorkerMetrics(&av.Workers, item, legacyWorkerIDKey, true)
	})
	if err != nil {
		return AssignmentView{}, err
	}
	return av, nil
}

// legacyWorkerIDKey is the partition key of <app>-WorkerMetricStats.
const legacyWorkerIDKey = "wid"

// scanLegacyMetrics scans the legacy worker-metrics table; a missing table
// is empty (Java LegacyTableWorkerMetricStatsDAODelegate when disabled).
func (s *DynamoStore) scanLegacyMetrics(ctx context.Context, table string, each func(map[string]types.AttributeValue)) error {
	var start map[string]types.AttributeValue
	for {
		var out *dynamodb.ScanOutput
		err := s.do(ctx, "scan "+table, func(ctx context.Context) error {
			var err error
			out, err = s.client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), ExclusiveStartKey: start})
			return err
		})
		if errors.Is(err, ErrTableNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			each(item)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		start = out.LastEvaluatedKey
	}
}

func (s *DynamoStore) addWorkerMetrics(into *[]WorkerMetricsEntry, item map[string]types.AttributeValue, pk string, legacy bool) {
	w, err := decodeWorkerMetrics(item, pk)
	if err != nil {
		s.log.Warn("skipping malformed worker metrics entry", zap.Error(err))
		return
	}
	w.Legacy = legacy
	*into = append(*into, w)
}

// decodeWorkerMetrics reads one WorkerMetricStats item (attributes as Java
// WorkerMetricStats is annotated: lut N, sts M of L of N, opr M of L of N).
func decodeWorkerMetrics(item map[string]types.AttributeValue, pk string) (WorkerMetricsEntry, error) {
	var w WorkerMetricsEntry
	id, ok := getS(item, pk)
	if !ok || id == "" {
		return w, fmt.Errorf("%w: worker metrics entry without %s (S)", ErrMalformed, pk)
	}
	w.WorkerID = id
	var err error
	if w.LastUpdate, w.HasLastUpdate, err = getN(item, "lut"); err != nil {
		return w, fmt.Errorf("%w: worker metrics of %s: lut: %v", ErrMalformed, id, err)
	}
	if w.Stats, err = numberLists(item["sts"], func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }); err != nil {
		return w, fmt.Errorf("%w: worker metrics of %s: sts: %v", ErrMalformed, id, err)
	}
	if w.OperatingRange, err = numberLists(item["opr"], func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }); err != nil {
		return w, fmt.Errorf("%w: worker metrics of %s: opr: %v", ErrMalformed, id, err)
	}
	return w, nil
}

// numberLists decodes an M of L of N (nil when absent).
func numberLists[T any](av types.AttributeValue, parse func(string) (T, error)) (map[string][]T, error) {
	if av == nil {
		return nil, nil
	}
	m, ok := av.(*types.AttributeValueMemberM)
	if !ok {
		return nil, errors.New("not a map")
	}
	out := make(map[string][]T, len(m.Value))
	for k, v := range m.Value {
		l, ok := v.(*types.AttributeValueMemberL)
		if !ok {
			return nil, fmt.Errorf("%s is not a list", k)
		}
		vals := make([]T, 0, len(l.Value))
		for _, e := range l.Value {
			n, ok := e.(*types.AttributeValueMemberN)
			if !ok {
				return nil, fmt.Errorf("%s holds a non-number", k)
			}
			x, err := parse(n.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			vals = append(vals, x)
		}
		out[k] = vals
	}
	return out, nil
}

// DeleteWorkerMetrics is Java WorkerMetricStatsDAODelegate.deleteMetrics for
// the stale-entry cleanup of the leader: DeleteItem of w's entry in the
// table it was read from (the lease table, or legacyMetricsTable when
// w.Legacy) with the condition lut = :seen AND attribute_exists(<pk>), so a
// worker that reported meanwhile keeps its entry. It reports false on a
// condition failure.
func (s *DynamoStore) DeleteWorkerMetrics(ctx context.Context, legacyMetricsTable string, w WorkerMetricsEntry) (bool, error) {
	if !w.HasLastUpdate {
		return false, fmt.Errorf("delete worker metrics of %s: no lut to condition on", w.WorkerID)
	}
	table, pk := s.table, AttrLeaseKey
	if w.Legacy {
		table, pk = legacyMetricsTable, legacyWorkerIDKey
	}
	err := s.do(ctx, "delete worker metrics "+w.WorkerID+" in "+table, func(ctx context.Context) error {
		_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
			Key:                       map[string]types.AttributeValue{pk: attrS(w.WorkerID)},
			ConditionExpression:       aws.String("#key = :value AND attribute_exists (#pk)"),
			ExpressionAttributeNames:  map[string]string{"#key": "lut", "#pk": pk},
			ExpressionAttributeValues: map[string]types.AttributeValue{":value": attrN(w.LastUpdate)}})
		return err
	})
	if errors.Is(err, ErrConditionFailed) {
		return false, nil
	}
	return err == nil, err
}
