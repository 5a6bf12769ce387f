package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/multilangd/multilangd/iac"
	"github.com/multilangd/multilangd/internal/awscount"
	"github.com/multilangd/multilangd/internal/testenv"
)

// fleet is a run of several multilangd workers whose DynamoDB and Kinesis
// requests go through counting proxies.
type fleet struct {
	e        *env
	ddb, kin *awscount.Proxy
	props    string
	workers  []*daemon
	leases   int
}

// startFleet starts n workers on a stream of shards shards (the Go child,
// no records) with the given properties over the test defaults.
func startFleet(t *testing.T, n int, shards int32, extra map[string]string) *fleet {
	t.Helper()
	return startFleetOn(t, testenv.Kinesalite, n, shards, extra)
}

// startFleetOn is startFleet on the given Kinesis emulator.
func startFleetOn(t *testing.T, kinesisKind testenv.Kind, n int, shards int32, extra map[string]string) *fleet {
	t.Helper()
	e := newEnv(t, kinesisKind, testenv.Dynalite, shards)
	ddb, err := awscount.Start(e.ddb.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ddb.Close() })
	kin, err := awscount.Start(e.kin.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kin.Close() })
	kv := map[string]string{
		"executableName":   binAggChild,
		"dynamoDBEndpoint": ddb.URL,
		"kinesisEndpoint":  kin.URL,
		"workerId":         "",
	}
	for k, v := range extra {
		kv[k] = v
	}
	f := &fleet{e: e, ddb: ddb, kin: kin, props: e.props("app", kv), leases: int(shards)}
	e.logLevel = "info"
	for i := range n {
		f.workers = append(f.workers, e.startDaemon(fmt.Sprintf("worker%d", i+1), f.props, "", "AGGCHILD_MODE=normal"))
	}
	return f
}

// waitBalanced waits until every lease is owned and the workers own equal
// shares (the taker steals one lease per run until then).
func (f *fleet) waitBalanced(t *testing.T) {
	t.Helper()
	waitFor(t, 5*time.Minute, "every lease owned, in equal shares", func() bool {
		ls := f.e.leases()
		owners := map[string]int{}
		for _, l := range ls {
			if l.Owner == "" {
				return false
			}
			owners[l.Owner]++
		}
		if len(ls) != f.leases || len(owners) != len(f.workers) {
			return false
		}
		for _, n := range owners {
			if n != f.leases/len(f.workers) {
				return false
			}
		}
		return true
	}, f.workers...)
}

func (f *fleet) stop(t *testing.T) {
	t.Helper()
	for _, d := range f.workers {
		_ = d.cmd.Process.Signal(os.Interrupt)
	}
	for _, d := range f.workers {
		d.stop(40 * time.Second)
	}
}

// TestFleetRequests pins which DynamoDB requests a fleet makes and checks
// that `multilangd iam-policy` allows every request it makes: two polling
// workers on 8 leases, through counting proxies in front of dynalite and
// kinesalite, with CloudWatch metrics going to the test stand-in. Every
// Scan is eventually consistent (Java DynamoDBLeaseRefresher.listLeases),
// and in steady state the fleet only scans (taker, leader election,
// auditor), renews (UpdateItem) and reads a missing KCL 3.0–3.4
// CoordinatorState table at most once a minute per worker
// (docs/compatibility.md). A periodic GetItem on the lease table, a
// consistent scan or any other operation fails the test.
func TestFleetRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e")
	}
	cw := testenv.StartCloudWatch()
	t.Cleanup(cw.Close)
	f := startFleet(t, 2, 8, map[string]string{"failoverTimeMillis": "2000",
		"metricsLevel": "SUMMARY", "cloudWatchClient.endpointOverride": cw.Endpoint, "metricsBufferTimeMillis": "1000"})
	f.waitBalanced(t)
	f.e.put(putOptions{n: 40})
	time.Sleep(3 * time.Second)
	startup := f.ddb.Snapshot()
	f.ddb.Reset()
	time.Sleep(12 * time.Second)
	steady := f.ddb.Snapshot()
	f.stop(t)

	allowed := map[string]bool{"DescribeTable": true, "CreateTable": true, "Scan": true, "GetItem": true, "PutItem": true, "UpdateItem": true}
	for _, k := range awscount.Keys(startup) {
		if k.Service != "dynamodb" {
			continue
		}
		if !allowed[k.Action] {
			t.Errorf("start-up made an unexpected %s on %s (%d)", k.Action, k.Resource, startup[k].Requests)
		}
		if k.Action == "Scan" && k.Consistent {
			t.Errorf("start-up made %d consistent scans of %s: list scans are eventually consistent", startup[k].Requests, k.Resource)
		}
	}
	// Only one creator: one CreateTable succeeds; each lease is created
	// once, and the only other creation writes are conditional puts that
	// fail because another worker created the lease first (Java does the same).
	var creates, createFails, puts, putCCF int
	for k, s := range startup {
		switch k.Action {
		case "CreateTable":
			creates, createFails = creates+s.Requests, createFails+s.ErrorTypes["ResourceInUseException"]
		case "PutItem":
			puts, putCCF = puts+s.Requests, putCCF+s.ErrorTypes["ConditionalCheckFailedException"]
		}
	}
	t.Logf("start-up: %d CreateTable (%d ResourceInUse), %d PutItem (%d conditional failures)", creates, createFails, puts, putCCF)
	if creates-createFails != 1 {
		t.Errorf("%d CreateTable succeeded, want 1", creates-createFails)
	}
	if puts-putCCF != f.leases || puts > f.leases*len(f.workers) {
		t.Errorf("%d PutItem, %d failed their condition: want %d leases created once, at most one attempt per worker", puts, putCCF, f.leases)
	}
	legacy := f.e.app + "-CoordinatorState"
	var scans, renews, conditionFailures, rereads int
	for _, k := range awscount.Keys(steady) {
		s := steady[k]
		t.Logf("steady state: %s %s consistent=%t: %d requests, %d errors %v, %.1f units", k.Action, k.Resource, k.Consistent, s.Requests, s.Errors, s.ErrorTypes, s.CapacityUnits)
		switch {
		case k.Service != "dynamodb":
		case k.Action == "Scan" && !k.Consistent && k.Resource == f.e.app:
			scans += s.Requests
		case k.Action == "UpdateItem" && k.Resource == f.e.app:
			renews += s.Requests
			conditionFailures += s.ErrorTypes["ConditionalCheckFailedException"]
		case k.Action == "GetItem" && k.Resource == f.e.app && k.Consistent:
			// only the re-read after a failed conditional write
			rereads += s.Requests
		case k.Action == "GetItem" && k.Resource == legacy:
			// at most once a minute per worker, plus one each at start-up
			if s.Requests > 2*len(f.workers) {
				t.Errorf("%d GetItems on %s in 12 s: the legacy coordinator state is read at most once a minute", s.Requests, legacy)
			}
		default:
			t.Errorf("steady state made an unexpected %s on %s (consistent=%t, %d requests)", k.Action, k.Resource, k.Consistent, s.Requests)
		}
	}
	if rereads > conditionFailures {
		t.Errorf("%d consistent GetItems on the lease table but %d conditional failures: a lease is only re-read after its write failed", rereads, conditionFailures)
	}
	if scans == 0 || renews == 0 {
		t.Errorf("steady state: %d scans, %d renewals; want both > 0", scans, renews)
	}

	var pol iac.Policy
	if err := json.Unmarshal(cliOutput(t, "iam-policy", "-p", f.props), &pol); err != nil {
		t.Fatal(err)
	}
	checkPolicy(t, pol, f.e.stream, startup, steady, f.kin.Snapshot())
	cwPuts := cw.Requests()
	if len(cwPuts) == 0 {
		t.Error("no PutMetricData with metricsLevel = SUMMARY")
	}
	for _, p := range cwPuts {
		if !pol.AllowsPutMetricData(p.Namespace) {
			t.Errorf("the code made cloudwatch:PutMetricData in namespace %q but iam-policy does not allow it", p.Namespace)
			break
		}
	}
}
