package iac

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
)

func load(t *testing.T, extra string) *properties.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.properties")
	body := "executableName = /bin/true\nstreamName = orders\napplicationName = orders-app\nregionName = eu-west-1\nAwsCredentialsProvider = DefaultCredentialsProvider\n" + extra
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := properties.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// ParseCloudFormation decodes a Resources fragment into CreateTable inputs
// by the DynamoDB API's own field names (CloudFormation uses the same), so
// the check does not go through this package's types.
func parseCloudFormation(t *testing.T, b []byte) map[string]*dynamodb.CreateTableInput {
	t.Helper()
	var doc struct {
		Resources map[string]struct {
			Type       string
			Properties json.RawMessage
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("CloudFormation output is not JSON: %v\n%s", err, b)
	}
	out := map[string]*dynamodb.CreateTableInput{}
	for id, r := range doc.Resources {
		if r.Type != "AWS::DynamoDB::Table" {
			t.Errorf("%s: type %s", id, r.Type)
		}
		in := &dynamodb.CreateTableInput{}
		if err := json.Unmarshal(r.Properties, in); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		out[id] = in
	}
	return out
}

// The CloudFormation lease table is exactly the CreateTable input the daemon
// sends (lease.CreateInput), for both billing modes.
func TestCloudFormationIsTheCreateInput(t *testing.T) {
	for _, extra := range []string{
		"",
		"leaseTableBillingMode = PROVISIONED\ninitialLeaseTableReadCapacity = 7\ninitialLeaseTableWriteCapacity = 3\nleaseTableDeletionProtectionEnabled = true\n",
	} {
		cfg := load(t, extra)
		var b bytes.Buffer
		if err := CloudFormation(&b, Tables(cfg, KCL2)); err != nil {
			t.Fatal(err)
		}
		got := parseCloudFormation(t, b.Bytes())
		want := lease.CreateInput(cfg.TableName, LeaseTableOptions(cfg))
		if len(got) != 1 || !reflect.DeepEqual(got["LeaseTable"], want) {
			t.Errorf("%q: CloudFormation decodes to %+v, want %+v", extra, got["LeaseTable"], want)
		}
	}
}

func TestKCL3SchemaHasIndexAndCompanionTables(t *testing.T) {
	cfg := load(t, "")
	var b bytes.Buffer
	if err := CloudFormation(&b, Tables(cfg, KCL3)); err != nil {
		t.Fatal(err)
	}
	got := parseCloudFormation(t, b.Bytes())
	lt := got["LeaseTable"]
	if lt == nil || len(lt.GlobalSecondaryIndexes) != 1 || aws.ToString(lt.GlobalSecondaryIndexes[0].IndexName) != LeaseOwnerToLeaseKeyIndex ||
		aws.ToString(lt.GlobalSecondaryIndexes[0].KeySchema[0].AttributeName) != "leaseOwner" {
		t.Errorf("lease table %+v: want the LeaseOwnerToLeaseKeyIndex GSI on leaseOwner", lt)
	}
	if cs := got["CoordinatorStateTable"]; cs == nil || aws.ToString(cs.TableName) != "orders-app-CoordinatorState" || aws.ToString(cs.KeySchema[0].AttributeName) != "key" {
		t.Errorf("coordinator state table %+v", cs)
	}
	if wm := got["WorkerMetricStatsTable"]; wm == nil || aws.ToString(wm.TableName) != "orders-app-WorkerMetricStats" || aws.ToString(wm.KeySchema[0].AttributeName) != "wid" {
		t.Errorf("worker metrics table %+v", wm)
	}
	if n := len(Tables(load(t, "migrateAllEntitiesToLeaseTable = true\n"), KCL3)); n != 1 {
		t.Errorf("migrateAllEntitiesToLeaseTable: %d tables, want the lease table only", n)
	}
}

func TestTerraform(t *testing.T) {
	cfg := load(t, "leaseTableBillingMode = PROVISIONED\nleaseTablePitrEnabled = true\n")
	var b bytes.Buffer
	if err := Terraform(&b, Tables(cfg, KCL3)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`resource "aws_dynamodb_table" "lease_table" {`,
		`name                        = "orders-app"`,
		`billing_mode                = "PROVISIONED"`,
		`hash_key                    = "leaseKey"`,
		"read_capacity               = 10",
		`name            = "LeaseOwnerToLeaseKeyIndex"`,
		`range_key       = "leaseKey"`,
		"point_in_time_recovery {",
		`resource "aws_dynamodb_table" "coordinator_state_table" {`,
		`resource "aws_dynamodb_table" "worker_metric_stats_table" {`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Terraform output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "{") != strings.Count(out, "}") {
		t.Errorf("unbalanced braces:\n%s", out)
	}
}

func TestIAMPolicy(t *testing.T) {
	polling := IAMPolicy(load(t, "retrievalMode = POLLING\n"), PolicyOptions{Account: "123456789012", CreateTable: true})
	fanout := IAMPolicy(load(t, "retrievalMode = FANOUT\nmetricsLevel = NONE\n"), PolicyOptions{Account: "123456789012"})
	stream := "arn:aws:kinesis:eu-west-1:123456789012:stream/orders"
	table := "arn:aws:dynamodb:eu-west-1:123456789012:table/orders-app"
	for _, c := range []struct {
		p              Policy
		action, target string
		want           bool
	}{
		{polling, "kinesis:GetRecords", stream, true},
		{polling, "kinesis:SubscribeToShard", stream + "/consumer/orders-app:1", false},
		{polling, "kinesis:RegisterStreamConsumer", stream, false},
		{polling, "dynamodb:CreateTable", table, true},
		{polling, "dynamodb:Scan", table + "-other", false},
		{polling, "dynamodb:GetItem", table + "-CoordinatorState", true},
		{polling, "dynamodb:PutItem", table + "-CoordinatorState", false},

		{fanout, "kinesis:SubscribeToShard", stream + "/consumer/orders-app:1700000000", true},
		{fanout, "kinesis:RegisterStreamConsumer", stream, true},
		{fanout, "dynamodb:CreateTable", table, false},
		{fanout, "dynamodb:UpdateItem", table, true},
	} {
		if got := c.p.Allows(c.action, c.target); got != c.want {
			t.Errorf("Allows(%s, %s) = %t, want %t", c.action, c.target, got, c.want)
		}
	}
	// CloudWatch metrics on: PutMetricData in the application's namespace only.
	on := IAMPolicy(load(t, "metricsLevel = DETAILED\n"), PolicyOptions{})
	if !on.AllowsPutMetricData("orders-app") || on.AllowsPutMetricData("other") {
		t.Errorf("metricsLevel DETAILED: PutMetricData must be allowed in orders-app only: %+v", on)
	}
	off := IAMPolicy(load(t, "metricsLevel = NONE\n"), PolicyOptions{})
	if off.AllowsPutMetricData("orders-app") || off.Allows("cloudwatch:PutMetricData", "*") {
		t.Errorf("metricsLevel NONE: no CloudWatch permission expected: %+v", off)
	}
}

// A multi-stream application's policy covers every listed stream (by ARN,
// by the identifier's account, or by the policy's account) and each
// stream's fan-out consumer; the ignored streamName is not granted.
func TestIAMPolicyMultiStream(t *testing.T) {
	cfg := load(t, "retrievalMode = FANOUT\nstreams = clicks, arn:aws:kinesis:us-east-1:111122223333:stream/audit, 444455556666:views:1700000000\n")
	p := IAMPolicy(cfg, PolicyOptions{Account: "123456789012"})
	for _, c := range []struct {
		action, target string
		want           bool
	}{
		{"kinesis:GetRecords", "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks", true},
		{"kinesis:GetRecords", "arn:aws:kinesis:us-east-1:111122223333:stream/audit", true},
		{"kinesis:GetRecords", "arn:aws:kinesis:eu-west-1:444455556666:stream/views", true},
		{"kinesis:GetRecords", "arn:aws:kinesis:eu-west-1:123456789012:stream/orders", false},
		{"kinesis:SubscribeToShard", "arn:aws:kinesis:us-east-1:111122223333:stream/audit/consumer/orders-app:1", true},
		{"kinesis:SubscribeToShard", "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks/consumer/orders-app:1", true},
	} {
		if got := p.Allows(c.action, c.target); got != c.want {
			t.Errorf("Allows(%s, %s) = %t, want %t", c.action, c.target, got, c.want)
		}
	}
}
