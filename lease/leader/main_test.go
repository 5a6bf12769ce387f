package leader

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/leasetest"
)

var emus testenv.Shared

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	code := m.Run()
	emus.StopAll()
	os.Exit(testenv.CheckLeaks(code))
}

// fakeClock is a settable clock for the pure-logic tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t *testing.T) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
}

var tableSeq atomic.Int64

// newLeaseTable creates a fresh lease table and returns its store.
func newLeaseTable(t *testing.T, api lease.DynamoAPI) *lease.DynamoStore {
	t.Helper()
	name := fmt.Sprintf("ld-%d-%d", time.Now().UnixNano()%1e9, tableSeq.Add(1))
	st := lease.NewDynamoStore(api, name, testLogger(t))
	if err := st.CreateTableIfNotExists(ctxT(t, 30*time.Second), lease.TableOptions{PollInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	return st
}

// newLegacyTable creates a KCL 3.0–3.4 <app>-CoordinatorState table (hash key "key").
func newLegacyTable(t *testing.T, api lease.DynamoAPI, name string) {
	t.Helper()
	_, err := api.CreateTable(ctxT(t, 10*time.Second), &dynamodb.CreateTableInput{
		TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("key"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("key"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Wait for ACTIVE (DynamoDB Local is at once; keep it honest).
	for i := 0; i < 100; i++ {
		out, err := api.DescribeTable(ctxT(t, 10*time.Second), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err == nil && out.Table.TableStatus == types.TableStatusActive {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("table %s not ACTIVE", name)
}

// newTestDecider returns a decider marked running without its Run loop
// (the pure-logic tests drive heartbeats and expiry by hand), on clock c.
func newTestDecider(t *testing.T, api DynamoAPI, tab Table, worker string, c *fakeClock) *Decider {
	t.Helper()
	d, err := New(api, StaticTarget(tab), Config{WorkerID: worker}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	d.clock = c
	d.phase = phaseRunning
	return d
}

// fakeTable is an in-memory lease table on a fresh leasetest.Fake.
func fakeTable(t *testing.T) (*leasetest.Fake, Table) {
	t.Helper()
	f := leasetest.New()
	st := newLeaseTable(t, f)
	name, pk, err := st.LeaderLockTarget(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return f, Table{Name: name, PartitionKey: pk}
}

// rawLock reads the Leader item as stored; nil when absent.
func rawLock(t *testing.T, api DynamoAPI, tab Table) map[string]types.AttributeValue {
	t.Helper()
	out, err := api.GetItem(ctxT(t, 10*time.Second), &dynamodb.GetItemInput{TableName: aws.String(tab.Name),
		Key: tab.key(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func strAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// runDecider starts d.Run; the returned stop cancels it and waits.
func runDecider(t *testing.T, d *Decider) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	waitFor(t, 10*time.Second, "Run to start", func() bool { return d.currentPhase() == phaseRunning })
	return stop
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
