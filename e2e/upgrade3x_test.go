package e2e

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/internal/testenv"
)

// historyWith is MigrationState.addHistoryEntry: the item's current (cv, mb,
// mts) prepended to its history h, at most 10 entries.
func historyWith(cur map[string]types.AttributeValue) *types.AttributeValueMemberL {
	h := []types.AttributeValue{&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		"cv": cur["cv"], "mb": cur["mb"], "mts": cur["mts"]}}}
	if old, ok := cur["h"].(*types.AttributeValueMemberL); ok {
		h = append(h, old.Value...)
	}
	return &types.AttributeValueMemberL{Value: h[:min(len(h), 10)]}
}

// flipTo3xWithRollback is what the Java KCL 3.x leader writes when its
// MigrationReadyMonitor has seen the fleet ready for the bake time
// (MigrationClientVersionUpgradeFrom2xState → CoordinatorStateDAO
// .updateCoordinatorStateWithExpectation of MigrationState.update):
// UpdateItem of Migration3.0 expecting cv = CLIENT_VERSION_UPGRADE_FROM_2X,
// PUT cv = CLIENT_VERSION_3X_WITH_ROLLBACK, mb, mts and the history h.
func flipTo3xWithRollback(t *testing.T, ddb *dynamodb.Client, table, by string) {
	t.Helper()
	ctx := context.Background()
	cur := getItem(t, ddb, table, "Migration3.0")
	_, err := ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{"leaseKey": sAttr("Migration3.0")},
		Expected: map[string]types.ExpectedAttributeValue{
			"cv":       {Value: sAttr("CLIENT_VERSION_UPGRADE_FROM_2X")},
			"leaseKey": {Exists: aws.Bool(true), Value: sAttr("Migration3.0")},
		},
		AttributeUpdates: map[string]types.AttributeValueUpdate{
			"cv":  {Value: sAttr("CLIENT_VERSION_3X_WITH_ROLLBACK"), Action: types.AttributeActionPut},
			"mb":  {Value: sAttr(by), Action: types.AttributeActionPut},
			"mts": {Value: nAttr(time.Now().UnixMilli()), Action: types.AttributeActionPut},
			"h":   {Value: historyWith(cur), Action: types.AttributeActionPut},
		},
	})
	if err != nil {
		t.Fatalf("flip Migration3.0 to CLIENT_VERSION_3X_WITH_ROLLBACK: %v", err)
	}
}

// rollbackTo2x is KclMigrationTool.py --mode rollback
// (rollback_client_version): UpdateItem of Migration3.0 SET cv =
// CLIENT_VERSION_2X, mts, mb = "KclMigrationTool-rollback", h on condition
// cv IN (UPGRADE_FROM_2X, 3X_WITH_ROLLBACK), ReturnValues UPDATED_OLD. The
// tool then waits and deletes the GSI; the test leaves the GSI alone.
func rollbackTo2x(t *testing.T, ddb *dynamodb.Client, table string) {
	t.Helper()
	cur := getItem(t, ddb, table, "Migration3.0")
	_, err := ddb.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String(table),
		Key:                 map[string]types.AttributeValue{"leaseKey": sAttr("Migration3.0")},
		UpdateExpression:    aws.String("SET cv = :rollback_client_version, mts = :updated_at, mb = :modifier, h = :history"),
		ConditionExpression: aws.String("cv IN (:upgrade_from_2x_client_version, :3x_with_rollback_client_version)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":rollback_client_version":         sAttr("CLIENT_VERSION_2X"),
			":updated_at":                      &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().UnixMilli(), 10)},
			":modifier":                        sAttr("KclMigrationTool-rollback"),
			":history":                         historyWith(cur),
			":upgrade_from_2x_client_version":  sAttr("CLIENT_VERSION_UPGRADE_FROM_2X"),
			":3x_with_rollback_client_version": sAttr("CLIENT_VERSION_3X_WITH_ROLLBACK"),
		},
		ReturnValues: types.ReturnValueUpdatedOld,
	})
	if err != nil {
		t.Fatalf("KclMigrationTool rollback: %v", err)
	}
}

func getItem(t *testing.T, ddb *dynamodb.Client, table, key string) map[string]types.AttributeValue {
	t.Helper()
	out, err := ddb.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{"leaseKey": sAttr(key)}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return out.Item
}

// inVersion reports whether the daemon's log says it entered client
// version v (the "KCL client version in force" line).
func (d *daemon) inVersion(v string) bool {
	b, _ := os.ReadFile(d.log)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "client version in force") && strings.Contains(line, `"`+v+`"`) {
			return true
		}
	}
	return false
}

// TestMultilangdFleetUpgradesTo3xAndRollsBack: two multilangd daemons with
// clientVersionConfig = CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X start a
// 2.x→3.x upgrade on a fresh table (Migration3.0 = UPGRADE_FROM_2X, the 2.x
// taker balances, worker metrics are published). Migration3.0 is flipped to
// 3X_WITH_ROLLBACK as the Java leader writes it after its bake time (there
// is no key to shorten the bake); both workers switch to 3.x mode when their
// client-version monitor (1 min, as Java) sees it: one takes the Leader lock,
// and when the other is SIGKILLed its leases are assigned (W8) by the
// leader's assignment manager; the killed worker restarts in 3.x mode. Then
// the KclMigrationTool rollback (cv = CLIENT_VERSION_2X) returns both to
// 2.x mode: the Leader lock is released and the 2.x taker balances the
// leases again. No record is lost.
func TestMultilangdFleetUpgradesTo3xAndRollsBack(t *testing.T) {
	e := newEnv(t, testenv.Kinesalite, testenv.DynamoDBLocal, 4)
	f := newFleet3x(e, map[string]string{
		"clientVersionConfig":           "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X",
		"leaseAssignmentIntervalMillis": "2000",
	})
	ddb := e.ddb.DynamoDB()
	ws := map[string]*daemon{"u1": f.start("u1", nil), "u2": f.start("u2", nil)}
	waitFor(t, 90*time.Second, "Migration3.0 = UPGRADE_FROM_2X and both workers' metrics", func() bool {
		return attrStr(f.item("Migration3.0"), "cv") == "CLIENT_VERSION_UPGRADE_FROM_2X" && f.metricsPublished("u1", "u2")
	}, f.running()...)
	f.waitBalanced(90*time.Second, "u1", "u2")
	p := e.startProducer(10, 500*time.Millisecond)
	f.waitRecords(p.count(), 90*time.Second)
	if owner, _ := lockOwner(context.Background(), t, ddb, e.app); owner != "" {
		t.Fatalf("Leader lock held by %s in UPGRADE_FROM_2X", owner)
	}

	// the flip to 3.x
	flipTo3xWithRollback(t, ddb, e.app, "java-leader")
	waitFor(t, 150*time.Second, "both workers in KCL 3.x mode", func() bool {
		return ws["u1"].inVersion("CLIENT_VERSION_3X_WITH_ROLLBACK") && ws["u2"].inVersion("CLIENT_VERSION_3X_WITH_ROLLBACK")
	}, f.running()...)
	leader := f.waitOneLeader(60*time.Second, "u1", "u2")
	follower := map[string]string{"u1": "u2", "u2": "u1"}[leader]
	counts := f.counts()
	ws[follower].kill()
	waitFor(t, 90*time.Second, "the killed "+follower+"'s leases assigned to the leader "+leader, func() bool {
		return f.counts()[leader] == 4
	}, f.running()...)
	mid := f.waitRecords(p.count(), 90*time.Second)
	t.Logf("3.x mode: leader %s; %s SIGKILLed holding %d leases, all 4 now the leader's; records %d", leader, follower, counts[follower], mid.distinct)
	ws[follower] = f.start(follower, nil)
	waitFor(t, 60*time.Second, follower+" restarted in KCL 3.x mode", func() bool {
		return ws[follower].inVersion("CLIENT_VERSION_3X_WITH_ROLLBACK")
	}, f.running()...)

	// the rollback
	rollbackTo2x(t, ddb, e.app)
	waitFor(t, 150*time.Second, "both workers back in 2.x mode", func() bool {
		return ws["u1"].inVersion("CLIENT_VERSION_2X") && ws["u2"].inVersion("CLIENT_VERSION_2X")
	}, f.running()...)
	waitFor(t, 30*time.Second, "the Leader lock released (deleted, as the lock client's releaseLock with deleteLockOnRelease)", func() bool {
		it := f.item("Leader")
		return it == nil || attrStr(it, "isReleased") == "1"
	}, f.running()...)
	f.waitBalanced(90*time.Second, "u1", "u2") // the 2.x taker balances again
	n := p.stop()
	tl := f.waitRecords(n, 120*time.Second)
	t.Logf("after the rollback: leases %s; records put %d, processed %d, deliveries %d, re-delivered %d",
		fmtCounts(f.counts()), n, tl.distinct, tl.deliveries, tl.redelivered())
}
