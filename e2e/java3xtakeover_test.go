package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// TestMultilangdLeadsAfterJava3xLeader: a scripted Java KCL 3.x leader
// holds the Leader lock, a lease of its own and assigns the other to
// multilangd; then it stops — cleanly (the lock is released: deleted) or
// crashing (the lock stops heart-beating and goes stale after its
// leaseDuration) — and one of two multilangd workers takes the lock and
// leads: the Java worker's expired lease is assigned to a multilangd
// worker and every record is processed.
func TestMultilangdLeadsAfterJava3xLeader(t *testing.T) {
	for _, stop := range []string{"release", "crash"} {
		t.Run(stop, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, testenv.Kinesalite, testenv.DynamoDBLocal, 2)
			f := newFleet3x(e, map[string]string{"leaseAssignmentIntervalMillis": "2000"})
			j := newJavaLeader(t, e.ddb.DynamoDB(), e.app, "java-leader")
			j.createTable(ctx)
			j.createMigration(ctx, "CLIENT_VERSION_3X")
			keys := j.createLeases(ctx, e.kc, e.stream)
			j.acquireLock(ctx)
			m1, m2 := f.start("m1", nil), f.start("m2", nil)
			waitFor(t, 60*time.Second, "WorkerMetricStats of m1 and m2", func() bool { return f.metricsPublished("m1", "m2") }, m1, m2)
			if !j.assign(ctx, keys[0], "java-leader") || !j.assign(ctx, keys[1], "m1") {
				t.Fatal("W8 failed its condition")
			}
			ids := e.put(putOptions{n: 40})
			// only keys[1] is processed while the Java worker holds keys[0]
			waitFor(t, 60*time.Second, "m1 processing "+keys[1], func() bool { return len(f.eventsOf("rec", "m1", keys[1])) > 0 }, m1, m2)
			if owner, _ := lockOwner(ctx, t, e.ddb.DynamoDB(), e.app); owner != "java-leader" {
				t.Fatalf("Leader lock owned by %q while the Java leader heart-beats", owner)
			}
			_, rvn := lockOwner(ctx, t, e.ddb.DynamoDB(), e.app)
			if stop == "release" {
				j.release(ctx)
			} else {
				j.crash()
			}
			leader := f.waitOneLeader(120*time.Second, "m1", "m2")
			if _, now := lockOwner(ctx, t, e.ddb.DynamoDB(), e.app); now == rvn {
				t.Errorf("the new leader's lock kept the Java leader's recordVersionNumber %s", rvn)
			}
			waitFor(t, 120*time.Second, "the Java worker's lease "+keys[0]+" assigned to a multilangd worker", func() bool {
				o := attrStr(f.item(keys[0]), "leaseOwner")
				return o == "m1" || o == "m2"
			}, m1, m2)
			tl := f.waitRecords(len(ids), 90*time.Second)
			t.Logf("leader %s after the Java leader's %s; %s → %s; records %d, deliveries %d, re-delivered %d",
				leader, stop, keys[0], attrStr(f.item(keys[0]), "leaseOwner"), tl.distinct, tl.deliveries, tl.redelivered())
			if n := tl.redelivered(); n != 0 {
				t.Errorf("%d records re-delivered, want 0 (the Java worker processed none)", n)
			}
			checkShape(t, "Leader lock (multilangd)", f.item("Leader"), javaLeaderLock)
		})
	}
}
