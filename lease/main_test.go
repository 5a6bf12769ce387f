package lease

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease/leasetest"
	"github.com/multilangd/multilangd/seqnum"
)

// backend is one DynamoDB the lease tests run against: the in-memory
// leasetest.Fake, or an emulator. Emulators start lazily, once per test
// binary (DynamoDB Local costs about a second and 100+ MB), only when a test
// needs one; under -short those tests are skipped, never otherwise (a
// missing emulator fails the test).
type backend struct {
	name   string
	client DynamoAPI
	emu    *testenv.Emulator // nil for the fake
	fake   *leasetest.Fake   // nil for an emulator
}

var emulatorKinds = []testenv.Kind{testenv.Dynalite, testenv.DynamoDBLocal}

var emus testenv.Shared

// emulatorBackend returns the shared emulator of kind k, starting it on
// first use; under -short it skips t.
func emulatorBackend(t *testing.T, k testenv.Kind) backend {
	t.Helper()
	e := emus.Get(t, k)
	return backend{name: string(k), client: e.DynamoDB(), emu: e}
}

func fakeBackend() backend {
	f := leasetest.New()
	f.ScanPageSize = 7 // exercise the store's pagination
	return backend{name: "fake", client: f, fake: f}
}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	code := m.Run()
	emus.StopAll()
	code = testenv.CheckLeaks(code)
	os.Exit(code)
}

var tableSeq atomic.Int64

// newTable creates a fresh lease table on b and returns a store for it.
func newTable(t *testing.T, b backend) *DynamoStore {
	t.Helper()
	name := fmt.Sprintf("lt-%d-%d", time.Now().UnixNano()%1e9, tableSeq.Add(1))
	s := NewDynamoStore(b.client, name, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.CreateTableIfNotExists(ctx, TableOptions{PollInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	return s
}

// forEachBackend runs f against a fresh in-memory fake and against each
// emulator (skipped under -short). Under -short, where only the fake runs,
// the tests run in parallel with each other: most of their time is failover
// waits, not work. With the emulators they stay sequential, because their
// short failover times must not compete for the CPU.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	if testing.Short() {
		t.Parallel()
	}
	t.Run("fake", func(t *testing.T) { f(t, fakeBackend()) })
	forEachEmulator(t, f)
}

// forEachEmulator runs f against each emulator only (skipped under -short).
func forEachEmulator(t *testing.T, f func(t *testing.T, b backend)) {
	for _, k := range emulatorKinds {
		t.Run(string(k), func(t *testing.T) { f(t, emulatorBackend(t, k)) })
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// createLeases creates n never-owned leases shardId-000000000000… with
// checkpoint TRIM_HORIZON.
func createLeases(t *testing.T, s *DynamoStore, n int) []string {
	t.Helper()
	var keys []string
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("shardId-%012d", i)
		ok, err := s.CreateLeaseIfNotExists(ctxT(t, 10*time.Second), Lease{Key: k, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon)})
		if err != nil || !ok {
			t.Fatalf("create %s: %v %v", k, ok, err)
		}
		keys = append(keys, k)
	}
	return keys
}

// putRaw writes an item as-is (to simulate items written by Java).
func putRaw(t *testing.T, s *DynamoStore, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := s.client.PutItem(ctxT(t, 10*time.Second), &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func getRaw(t *testing.T, s *DynamoStore, key string) map[string]types.AttributeValue {
	t.Helper()
	out, err := s.client.GetItem(ctxT(t, 10*time.Second), &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: keyOf(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// ownerCounts scans the table and counts leases per owner ("" = unowned).
func ownerCounts(t *testing.T, s *DynamoStore) map[string]int {
	t.Helper()
	ls, err := s.ListLeases(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, l := range ls {
		m[l.Owner]++
	}
	return m
}

// waitFor polls cond every 100 ms until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runCoord starts c.Run in a goroutine; the returned stop cancels it and
// waits for Run to return. stop is also registered with t.Cleanup.
func runCoord(t *testing.T, c *Coordinator) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var stopped atomic.Bool
	stop = func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func heldKeys(c *Coordinator) map[string]*Held {
	m := map[string]*Held{}
	for _, h := range c.Held() {
		m[h.Lease.Key] = h
	}
	return m
}

func testLogger(t *testing.T) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
}
