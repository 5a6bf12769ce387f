package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/iac"
	"github.com/multilangd/multilangd/internal/awscount"
	"github.com/multilangd/multilangd/internal/testenv"
)

// cliOutput runs the binary with args and returns stdout.
func cliOutput(t *testing.T, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(binDaemon, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("multilangd %v: %v\n%s", args, err, errb.String())
	}
	return out.Bytes()
}

// TestTableFromPrintedSchema: with leaseTableCreate = never a missing lease
// table stops start-up with exit 1 and the schema to provision, without a
// CreateTable; the table created on DynamoDB Local from the CloudFormation
// that `multilangd table schema` prints (decoded by the DynamoDB API's own
// field names into a CreateTable input) is one the daemon then runs on.
func TestTableFromPrintedSchema(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e")
	}
	e := newEnv(t, testenv.Kinesalite, testenv.DynamoDBLocal, 2)
	proxy, err := awscount.Start(e.ddb.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	props := e.props("app", map[string]string{
		"executableName":                      binAggChild,
		"dynamoDBEndpoint":                    proxy.URL,
		"leaseTableCreate":                    "never",
		"leaseTableDeletionProtectionEnabled": "false",
	})

	d := e.startDaemon("missing", props, "")
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not stop on a missing table with leaseTableCreate = never")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d on a missing table, want 1", code)
	}
	logb, _ := os.ReadFile(d.log)
	for _, want := range []string{"leaseTableCreate = never", `"AWS::DynamoDB::Table"`, `resource "aws_dynamodb_table" "lease_table"`} {
		if !strings.Contains(string(logb), want) {
			t.Errorf("start-up error lacks %q:\n%s", want, logb)
		}
	}
	for k, s := range proxy.Snapshot() {
		if k.Action == "CreateTable" {
			t.Errorf("%d CreateTable calls with leaseTableCreate = never", s.Requests)
		}
	}

	cfn := cliOutput(t, "table", "schema", "-p", props, "--format", "cloudformation")
	var doc struct {
		Resources map[string]struct{ Properties json.RawMessage }
	}
	if err := json.Unmarshal(cfn, &doc); err != nil {
		t.Fatalf("table schema output: %v\n%s", err, cfn)
	}
	in := &dynamodb.CreateTableInput{}
	if err := json.Unmarshal(doc.Resources["LeaseTable"].Properties, in); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(in.TableName) != e.app {
		t.Fatalf("schema table %q, want %q", aws.ToString(in.TableName), e.app)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := e.ddb.DynamoDB()
	if _, err := client.CreateTable(ctx, in); err != nil {
		t.Fatalf("CreateTable from the printed schema: %v", err)
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 100 * time.Millisecond })
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName}, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	ids := e.put(putOptions{n: 50})
	out := filepath.Join(e.dir, "out.jsonl")
	d2 := e.startDaemon("daemon", props, out, "AGGCHILD_MODE=normal")
	waitFor(t, 2*time.Minute, "every record delivered", func() bool { return len(readOutput(t, out)) >= len(ids) }, d2)
	if code := d2.stop(40 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	for k, s := range proxy.Snapshot() {
		if k.Action == "CreateTable" {
			t.Errorf("%d CreateTable calls with leaseTableCreate = never", s.Requests)
		}
	}
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName})
	if err != nil || desc.Table.BillingModeSummary == nil || desc.Table.BillingModeSummary.BillingMode != dtypes.BillingModePayPerRequest {
		t.Errorf("provisioned table %+v %v", desc, err)
	}
}

// TestFanOutRequestsInPolicy: an enhanced fan-out worker on kinesis-local
// (SubscribeToShard over h2c through the counting proxy) makes only calls
// `multilangd iam-policy` allows for the same file, the consumer's among them.
func TestFanOutRequestsInPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e")
	}
	f := startFleetOn(t, testenv.KinesisLocal, 1, 2, map[string]string{"retrievalMode": "FANOUT", "idleTimeBetweenReadsInMillis": ""})
	f.waitBalanced(t)
	f.e.put(putOptions{n: 20})
	kinSnap := func() map[awscount.Key]awscount.Stat { return f.kin.Snapshot() }
	waitFor(t, 60*time.Second, "SubscribeToShard through the proxy", func() bool {
		for k := range kinSnap() {
			if k.Action == "SubscribeToShard" {
				return true
			}
		}
		return false
	}, f.workers...)
	f.stop(t)
	var pol iac.Policy
	if err := json.Unmarshal(cliOutput(t, "iam-policy", "-p", f.props), &pol); err != nil {
		t.Fatal(err)
	}
	snap := kinSnap()
	for _, want := range []string{"DescribeStreamConsumer", "SubscribeToShard"} {
		found := false
		for k := range snap {
			found = found || k.Action == want
		}
		if !found {
			t.Errorf("no %s recorded", want)
		}
	}
	checkPolicy(t, pol, f.e.stream, f.ddb.Snapshot(), snap)
}

// checkPolicy fails for every recorded request pol does not allow. Kinesis
// requests that name no stream (GetRecords carries only an iterator) are
// checked against stream.
func checkPolicy(t *testing.T, pol iac.Policy, stream string, snaps ...map[awscount.Key]awscount.Stat) {
	t.Helper()
	seen := 0
	for _, snap := range snaps {
		for _, k := range awscount.Keys(snap) {
			seen++
			arn := k.Resource
			if arn == "" && k.Service == "kinesis" {
				arn = stream
			}
			if k.ConsumerName != "" && k.Action != "RegisterStreamConsumer" {
				// a consumer named by stream and name: any creation time
				arn += "/consumer/" + k.ConsumerName + ":*"
			}
			if !strings.HasPrefix(arn, "arn:") {
				kind := "table"
				if k.Service == "kinesis" {
					kind = "stream"
				}
				arn = "arn:aws:" + k.Service + ":" + testenv.Region + ":000000000000:" + kind + "/" + arn
			}
			if !pol.Allows(k.Service+":"+k.Action, arn) {
				t.Errorf("the code made %s:%s on %s (%d times) but iam-policy does not allow it", k.Service, k.Action, arn, snap[k].Requests)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no requests recorded")
	}
}
