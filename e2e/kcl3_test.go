package e2e

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
)

// TestKCL3UpgradeFrom2X runs the daemon binary with clientVersionConfig =
// CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X on DynamoDB Local with a real
// child: it creates Migration3.0 = CLIENT_VERSION_UPGRADE_FROM_2X (Java's
// first step of a 2.x→3.x upgrade), publishes its WorkerMetricStats item in
// the lease table with a CPU history, and writes each lease's
// throughputKBps with the renew once records flow (docs/compatibility.md
// "KCL 3.x"). Records are still delivered.
func TestKCL3UpgradeFrom2X(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon against the emulators")
	}
	e := newEnv(t, testenv.Kinesalite, testenv.DynamoDBLocal, 2)
	props := e.props("app", map[string]string{
		"executableName":                              binAggChild,
		"clientVersionConfig":                         "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X",
		"workerMetricsReporterFreqInMillis":           "1000",
		"inMemoryWorkerMetricsCaptureFrequencyMillis": "100",
	})
	out := filepath.Join(e.dir, "out.jsonl")
	d := e.startDaemon("daemon", props, out, "AGGCHILD_MODE=normal")
	ddb := e.ddb.DynamoDB()
	get := func(key string) map[string]types.AttributeValue {
		o, err := ddb.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(e.app),
			Key: map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: key}}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil
		}
		return o.Item
	}
	str := func(item map[string]types.AttributeValue, k string) string {
		if v, ok := item[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	waitFor(t, 60*time.Second, "Migration3.0 created", func() bool { return get(lease.MigrationKey) != nil }, d)
	mig := get(lease.MigrationKey)
	if str(mig, "cv") != lease.ClientVersionUpgr || str(mig, "mb") != "worker-app" || str(mig, "entityType") != "CLIENT_VERSION_MIGRATION" {
		t.Fatalf("Migration3.0 = %v", mig)
	}
	var cpu []types.AttributeValue
	waitFor(t, 60*time.Second, "worker metrics with 3 CPU values", func() bool {
		wm := get("worker-app")
		sts, ok := wm["sts"].(*types.AttributeValueMemberM)
		if !ok || str(wm, "entityType") != "WORKER_METRIC_STATS" {
			return false
		}
		l, ok := sts.Value["C"].(*types.AttributeValueMemberL)
		if ok {
			cpu = l.Value
		}
		return ok && len(l.Value) >= 3
	}, d)
	for _, v := range cpu {
		f, err := strconv.ParseFloat(v.(*types.AttributeValueMemberN).Value, 64)
		if err != nil || f < 0 || f > 100 {
			t.Fatalf("CPU history %v", cpu)
		}
	}
	ids := e.put(putOptions{n: 400})
	waitFor(t, 60*time.Second, "a lease with throughputKBps > 0", func() bool {
		for _, l := range e.leases() {
			if l.ThroughputKBps != nil && *l.ThroughputKBps > 0 {
				return true
			}
		}
		return false
	}, d)
	waitFor(t, 60*time.Second, "every record delivered", func() bool { return len(missing(ids, readOutput(t, out))) == 0 }, d)
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
