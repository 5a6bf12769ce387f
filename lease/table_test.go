package lease

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/multilangd/multilangd/internal/awscount"
	"github.com/multilangd/multilangd/internal/testenv"
)

// countingClient returns a DynamoDB client for b whose requests go through
// a counting proxy (emulators only: the proxy forwards HTTP).
func countingClient(t *testing.T, b backend) (*dynamodb.Client, *awscount.Proxy) {
	t.Helper()
	p, err := awscount.Start(b.emu.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	c := dynamodb.NewFromConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(p.URL)
		o.DisableValidateResponseChecksum = true
	})
	return c, p
}

// count sums the requests of one action in a snapshot.
func count(snap map[awscount.Key]awscount.Stat, action string) (requests, errs int) {
	for k, s := range snap {
		if k.Action == action {
			requests += s.Requests
			errs += s.Errors
		}
	}
	return requests, errs
}

// TestIntegrationOneCreator is Java DynamoDBLeaseRefresher
// createLeaseTableIfNotExists with several workers starting on a missing
// table: each describes first, at most one CreateTable succeeds, the others
// get ResourceInUseException (or find the table CREATING and do not call
// CreateTable) and wait until it is ACTIVE.
func TestIntegrationOneCreator(t *testing.T) {
	forEachEmulator(t, func(t *testing.T, b backend) {
		client, proxy := countingClient(t, b)
		name := fmt.Sprintf("one-creator-%d", time.Now().UnixNano()%1e9)
		const workers = 5
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := NewDynamoStore(client, name, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
				errs[i] = s.CreateTableIfNotExists(ctxT(t, 60*time.Second), TableOptions{PollInterval: 50 * time.Millisecond})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("worker %d: %v", i, err)
			}
		}
		snap := proxy.Snapshot()
		creates, failed := count(snap, "CreateTable")
		if creates-failed != 1 {
			t.Errorf("%d CreateTable calls, %d failed: want exactly one that succeeds", creates, failed)
		}
		for k, s := range snap {
			if k.Action == "CreateTable" && s.Errors != s.ErrorTypes["ResourceInUseException"] {
				t.Errorf("CreateTable errors %v: only ResourceInUseException is expected", s.ErrorTypes)
			}
		}
		out, err := client.DescribeTable(ctxT(t, 10*time.Second), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil || out.Table.TableStatus != "ACTIVE" {
			t.Fatalf("table after start-up: %v %v", out, err)
		}
		// A worker that starts once the table exists only describes it.
		proxy.Reset()
		s := NewDynamoStore(client, name, nil)
		if err := s.CreateTableIfNotExists(ctxT(t, 10*time.Second), TableOptions{}); err != nil {
			t.Fatal(err)
		}
		if n, _ := count(proxy.Snapshot(), "CreateTable"); n != 0 {
			t.Errorf("%d CreateTable calls on an existing table", n)
		}
	})
}

// TestIntegrationNeverCreate: leaseTableCreate = NEVER turns a missing table
// into a *TableMissingError without calling CreateTable.
func TestIntegrationNeverCreate(t *testing.T) {
	forEachEmulator(t, func(t *testing.T, b backend) {
		client, proxy := countingClient(t, b)
		s := NewDynamoStore(client, "never-created", nil)
		err := s.CreateTableIfNotExists(ctxT(t, 10*time.Second), TableOptions{NeverCreate: true})
		var missing *TableMissingError
		if !errors.As(err, &missing) || missing.Table != "never-created" || !errors.Is(err, ErrTableNotFound) {
			t.Fatalf("err = %v, want a *TableMissingError", err)
		}
		if n, _ := count(proxy.Snapshot(), "CreateTable"); n != 0 {
			t.Errorf("%d CreateTable calls with NeverCreate", n)
		}
	})
}

// TestIntegrationScanReads: list scans are eventually consistent (Java
// listLeases), WithScanSegments scans in parallel segments and sees every
// lease, and GetLease is consistent unless EventuallyConsistentGets.
func TestIntegrationScanReads(t *testing.T) {
	forEachEmulator(t, func(t *testing.T, b backend) {
		st := newTable(t, b)
		keys := createLeases(t, st, 25)
		client, proxy := countingClient(t, b)
		s := NewDynamoStore(client, st.Table(), nil)
		for _, segs := range []int{1, 4} {
			ls, err := s.WithScanSegments(segs).ListLeases(ctxT(t, 10*time.Second))
			if err != nil || len(ls) != len(keys) {
				t.Fatalf("%d segments: %d leases, %v; want %d", segs, len(ls), err, len(keys))
			}
		}
		if _, err := s.GetLease(ctxT(t, 10*time.Second), keys[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := s.EventuallyConsistentGets().GetLease(ctxT(t, 10*time.Second), keys[0]); err != nil {
			t.Fatal(err)
		}
		var segmented, consistentGets, eventualGets int
		for k, st := range proxy.Snapshot() {
			switch {
			case k.Action == "Scan" && k.Consistent:
				t.Errorf("%d consistent scans", st.Requests)
			case k.Action == "Scan" && k.Segmented:
				segmented += st.Requests
			case k.Action == "GetItem" && k.Consistent:
				consistentGets += st.Requests
			case k.Action == "GetItem":
				eventualGets += st.Requests
			}
		}
		if segmented < 4 || consistentGets != 1 || eventualGets != 1 {
			t.Errorf("segmented scans %d (want ≥ 4), consistent gets %d, eventual gets %d (want 1, 1)", segmented, consistentGets, eventualGets)
		}
	})
}
