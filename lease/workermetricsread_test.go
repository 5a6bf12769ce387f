package lease

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/internal/testenv"
)

func numList(vals ...string) types.AttributeValue {
	l := &types.AttributeValueMemberL{}
	for _, v := range vals {
		l.Value = append(l.Value, n(v))
	}
	return l
}

// TestIntegrationLoadAssignmentView: the leases and the worker metrics of
// both tables (in-table entries, and the legacy <app>-WorkerMetricStats
// while the 3.5 table migration is not COMPLETE) are read with their lut,
// sts (-1 kept) and opr; the legacy table is not read once the migration
// is COMPLETE; DeleteWorkerMetrics deletes only on the lut seen, in the
// table the entry came from.
func TestIntegrationLoadAssignmentView(t *testing.T) {
	b := emulatorBackend(t, testenv.DynamoDBLocal)
	st := newTable(t, b)
	legacyTable := st.table + "-WorkerMetricStats"
	st = st.WithCoordinatorStateTable(st.table + "-CoordinatorState")
	ctx := ctxT(t, 60*time.Second)
	createLeases(t, st, 2)
	putRaw(t, st, map[string]types.AttributeValue{"leaseKey": s("w-in"), "entityType": s("WORKER_METRIC_STATS"), "lut": n("1700000000"),
		"sts": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": numList("10", "-1")}},
		"opr": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": numList("100")}}})
	putRaw(t, st, map[string]types.AttributeValue{"leaseKey": s("w-default"), "entityType": s("WORKER_METRIC_STATS"), "lut": n("1700000001")})
	for _, tbl := range []struct{ name, pk string }{{legacyTable, "wid"}, {st.table + "-CoordinatorState", "key"}} {
		if _, err := st.client.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String(tbl.name), BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(tbl.pk), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(tbl.pk), KeyType: types.KeyTypeHash}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(legacyTable), Item: map[string]types.AttributeValue{
		"wid": s("w-legacy"), "lut": n("1600000000"),
		"sts": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": numList("50")}},
		"opr": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": numList("80")}}}}); err != nil {
		t.Fatal(err)
	}
	av, err := st.LoadAssignmentView(ctx, legacyTable)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]WorkerMetricsEntry{}
	for _, w := range av.Workers {
		byID[w.WorkerID] = w
	}
	if len(av.Leases) != 2 || len(av.Workers) != 3 {
		t.Fatalf("%d leases, workers %+v", len(av.Leases), av.Workers)
	}
	if w := byID["w-in"]; w.Legacy || w.LastUpdate != 1700000000 || !slices.Equal(w.Stats["C"], []float64{10, -1}) || !slices.Equal(w.OperatingRange["C"], []int64{100}) {
		t.Fatalf("in-table entry %+v", w)
	}
	if w := byID["w-default"]; w.Stats != nil || w.OperatingRange != nil || !w.HasLastUpdate {
		t.Fatalf("throughput-only entry %+v", w)
	}
	if w := byID["w-legacy"]; !w.Legacy || w.LastUpdate != 1600000000 || w.OperatingRange["C"][0] != 80 {
		t.Fatalf("legacy entry %+v", w)
	}
	// A condition on a lut the worker has since replaced fails.
	stale := byID["w-legacy"]
	stale.LastUpdate--
	if ok, err := st.DeleteWorkerMetrics(ctx, legacyTable, stale); ok || err != nil {
		t.Fatalf("delete on an old lut: %v %v", ok, err)
	}
	for _, id := range []string{"w-legacy", "w-in"} {
		if ok, err := st.DeleteWorkerMetrics(ctx, legacyTable, byID[id]); !ok || err != nil {
			t.Fatalf("delete %s: %v %v", id, ok, err)
		}
	}
	if getRaw(t, st, "w-in") != nil || getRaw(t, st, "w-default") == nil {
		t.Fatal("in-table deletes wrong")
	}
	// Table migration COMPLETE: the legacy table is no longer read.
	if _, err := st.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(legacyTable), Item: map[string]types.AttributeValue{
		"wid": s("w-legacy2"), "lut": n("1600000000")}}); err != nil {
		t.Fatal(err)
	}
	putRaw(t, st, map[string]types.AttributeValue{"leaseKey": s(TableMigrationKey), "entityType": s("TABLE_MIGRATION"), "tm": s("TABLE_MIGRATION_STATUS_COMPLETE")})
	if av, err = st.LoadAssignmentView(ctx, legacyTable); err != nil || len(av.Workers) != 1 || av.Workers[0].WorkerID != "w-default" {
		t.Fatalf("after COMPLETE: %+v %v", av.Workers, err)
	}
}

// TestIntegrationCreateLeaseOwnerIndex: the index Java creates
// (createLeaseOwnerToLeaseKeyIndexIfNotExists) is created once, becomes
// ACTIVE, and answers ListLeaseKeysForWorker.
func TestIntegrationCreateLeaseOwnerIndex(t *testing.T) {
	b := emulatorBackend(t, testenv.DynamoDBLocal)
	st := newTable(t, b)
	ctx := ctxT(t, 60*time.Second)
	keys := createLeases(t, st, 2)
	if err := st.TakeLease(ctx, Lease{Key: keys[1]}, "w1"); err != nil {
		t.Fatal(err)
	}
	status, err := st.CreateLeaseOwnerIndexIfNotExists(ctx)
	if err != nil || status == "" {
		t.Fatalf("create: %q %v", status, err)
	}
	if err := st.WaitLeaseOwnerIndexActive(ctx, 50*time.Millisecond, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if status, err = st.CreateLeaseOwnerIndexIfNotExists(ctx); err != nil || status != types.IndexStatusActive {
		t.Fatalf("second create: %q %v", status, err)
	}
	got, err := st.ListLeaseKeysForWorker(ctx, "w1")
	if err != nil || !slices.Equal(got, []string{keys[1]}) {
		t.Fatalf("index query %v %v", got, err)
	}
}
