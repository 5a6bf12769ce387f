package lease

import (
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestThroughputRecorder is Java LeaseStatsRecorder.getThroughputKBps with
// the renewer's rounding: bytes of the last renewer period ÷1024 ÷ period,
// EMA α 0.5 seeded with the first value, 6 decimals half up.
func TestThroughputRecorder(t *testing.T) {
	r := NewThroughputRecorder(time.Second)
	t0 := time.Unix(1000, 0)
	if r.ThroughputKBps("k", t0) != nil {
		t.Fatal("no stats must give nil (the renew then writes the lease's own value)")
	}
	r.Record("k", 2048, t0)
	if v := r.ThroughputKBps("k", t0.Add(500*time.Millisecond)); v == nil || *v != 2 {
		t.Fatalf("first = %v, want 2", v)
	}
	r.Record("k", 1024, t0.Add(600*time.Millisecond))
	if v := r.ThroughputKBps("k", t0.Add(1200*time.Millisecond)); v == nil || *v != 1.5 {
		t.Fatalf("second = %v, want EMA(1, 2) = 1.5 (the first entry expired)", v)
	}
	if v := r.ThroughputKBps("k", t0.Add(3*time.Second)); v == nil || *v != 0.75 {
		t.Fatalf("idle = %v, want 0.75", v)
	}
	r.Drop("k")
	if r.ThroughputKBps("k", t0.Add(3*time.Second)) != nil {
		t.Fatal("dropped lease still has stats")
	}
	r.Record("b", 1, t0)
	if v := r.ThroughputKBps("b", t0); v == nil || *v != 0.000977 {
		t.Fatalf("rounding = %v, want 0.000977", v)
	}
	stored := 0.25
	r.Seed(Lease{Key: "s", ThroughputKBps: &stored}, t0)
	if v := r.ThroughputKBps("s", t0.Add(10*time.Millisecond)); v == nil || *v != 0.25 {
		t.Fatalf("seeded = %v, want the stored 0.25", v)
	}
}

// TestIntegrationThroughputOnRenew: on a table whose Migration3.0 is a 3.x
// client version the renew writes the lease's throughputKBps from the bytes
// delivered (Java DynamoDBLeaseRenewer.renewLease); on a 2.x table the renew
// is unchanged and writes none.
func TestIntegrationThroughputOnRenew(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, threeX := range []bool{true, false} {
			st := newTable(t, b)
			if threeX {
				putRaw(t, st, map[string]types.AttributeValue{"leaseKey": s(MigrationKey), "entityType": s("CLIENT_VERSION_MIGRATION"),
					"cv": s(ClientVersionUpgr), "mb": s("java-w1"), "mts": n("1700000000000")})
			}
			keys := createLeases(t, st, 1)
			c := newCoord(t, st, "w1", nil)
			stop := runCoord(t, c)
			waitFor(t, 20*time.Second, "lease taken", func() bool { return len(c.Held()) == 1 })
			start := c.Held()[0].Lease.Counter
			deadline := time.Now().Add(20 * time.Second)
			for {
				c.RecordDelivered(keys[0], 100*1024)
				item := getRaw(t, st, keys[0])
				counter, _ := strconv.ParseInt(item["leaseCounter"].(*types.AttributeValueMemberN).Value, 10, 64)
				tp, has := item["throughputKBps"].(*types.AttributeValueMemberN)
				if threeX && has {
					if v, err := strconv.ParseFloat(tp.Value, 64); err != nil || v <= 0 {
						t.Fatalf("throughputKBps = %q", tp.Value)
					}
					break
				}
				if !threeX && has {
					t.Fatalf("a 2.x table got throughputKBps %s", tp.Value)
				}
				if !threeX && counter >= start+3 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("threeX=%t: no throughputKBps after counter %d → %d", threeX, start, counter)
				}
				time.Sleep(100 * time.Millisecond)
			}
			stop()
		}
	})
}
