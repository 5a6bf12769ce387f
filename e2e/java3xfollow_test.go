package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// TestJava3xLeaderAssignsToMultilangdFollowers: a scripted Java KCL 3.x
// leader (javaleader_test.go: Migration3.0 = CLIENT_VERSION_3X, the GSI, a
// heart-beating Leader lock, its own WorkerMetricStats) creates the leases
// and assigns them (W8) to two multilangd daemons, which discover them
// through the LeaseOwnerToLeaseKeyIndex and process every record once with
// the checking child (DynamoDB Local, kinesalite).
func TestJava3xLeaderAssignsToMultilangdFollowers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testenv.Kinesalite, testenv.DynamoDBLocal, 3)
	f := newFleet3x(e, nil)
	j := newJavaLeader(t, e.ddb.DynamoDB(), e.app, "java-leader")
	j.createTable(ctx)
	j.createMigration(ctx, "CLIENT_VERSION_3X")
	keys := j.createLeases(ctx, e.kc, e.stream)
	j.acquireLock(ctx)

	m1, m2 := f.start("m1", nil), f.start("m2", nil)
	// a Java leader assigns only to workers with live metrics
	waitFor(t, 60*time.Second, "WorkerMetricStats of m1 and m2", func() bool { return f.metricsPublished("m1", "m2") }, m1, m2)
	for key, to := range map[string]string{keys[0]: "m1", keys[1]: "m1", keys[2]: "m2"} {
		if !j.assign(ctx, key, to) {
			t.Fatalf("W8 of %s to %s failed its condition", key, to)
		}
	}
	ids := e.put(putOptions{n: 60})
	tl := f.waitRecords(len(ids), 90*time.Second)
	for _, key := range keys {
		want := map[string]string{keys[0]: "m1", keys[1]: "m1", keys[2]: "m2"}[key]
		for _, ev := range f.eventsOf("init", "", key) {
			if ev.Worker != want {
				t.Errorf("%s was processed by %s, assigned to %s", key, ev.Worker, want)
			}
		}
	}
	if n := tl.redelivered(); n != 0 {
		t.Errorf("%d records re-delivered without any move", n)
	}
	t.Logf("records %d, deliveries %d, re-delivered %d", tl.distinct, tl.deliveries, tl.redelivered())
	if owner, _ := lockOwner(ctx, t, e.ddb.DynamoDB(), e.app); owner != "java-leader" {
		t.Fatalf("Leader lock owned by %q while the Java leader heart-beats", owner)
	}
	// the scripted leader's own items have Java's shapes
	checkShape(t, "Migration3.0 (scripted Java leader)", f.item("Migration3.0"), javaMigration)
	checkShape(t, "Leader lock (scripted Java leader)", f.item("Leader"), javaLeaderLock)
	// golden items: what the followers wrote (worker metrics; the leases
	// after their renewals, throughputKBps, and checkpoints)
	checkShape(t, "WorkerMetricStats of m1", f.item("m1"), javaWorkerMetricStats)
	for _, key := range keys {
		checkShape(t, "lease "+key, f.item(key), javaLease)
	}

	// graceful hand-off (W9) of keys[1] from m1 to m2: m1's child gets
	// shutdownRequested and checkpoints, m1 completes the transfer (W8),
	// m2 starts at the handed-over checkpoint; nothing is re-delivered
	moved := keys[1]
	counter := attrNum(f.item(moved), "leaseCounter")
	if !j.handoff(ctx, moved, "m2") {
		t.Fatalf("W9 of %s to m2 failed its condition", moved)
	}
	waitFor(t, 60*time.Second, "the hand-off of "+moved+" completed by m1 (leaseOwner m2, no checkpointOwner)", func() bool {
		it := f.item(moved)
		return attrStr(it, "leaseOwner") == "m2" && attrStr(it, "checkpointOwner") == "" && attrNum(it, "leaseCounter") > counter
	}, m1, m2)
	checkShape(t, "lease after the hand-off transfer (W8) by m1", f.item(moved), javaLease)
	if !f.checkpointedAfterShutdownRequested("m1", moved) {
		t.Errorf("m1's child of %s got no shutdownRequested, or did not checkpoint in it", moved)
	}
	more := e.put(putOptions{start: len(ids), n: 60})
	tl = f.waitRecords(len(ids)+len(more), 90*time.Second)
	var lastByM1 string
	for _, ev := range f.eventsOf("rec", "m1", moved) {
		lastByM1 = ev.Seq
	}
	inits := f.eventsOf("init", "m2", moved)
	if len(inits) == 0 {
		t.Fatalf("m2 never started %s", moved)
	}
	if lastByM1 != "" && inits[0].Seq != lastByM1 {
		t.Errorf("m2 started %s at %s, m1's child had processed and checkpointed up to %s", moved, inits[0].Seq, lastByM1)
	}
	t.Logf("after the hand-off: records %d, deliveries %d, re-delivered %d", tl.distinct, tl.deliveries, tl.redelivered())
	if n := tl.redelivered(); n != 0 {
		t.Errorf("the graceful hand-off re-delivered %d records, want 0: %v", n, redeliveredExamples(tl))
	}
}
