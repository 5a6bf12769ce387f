package iac

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
)

// Statement is one IAM policy statement.
type Statement struct {
	Sid       string
	Effect    string
	Action    []string
	Resource  []string
	Condition map[string]map[string]string `json:",omitempty"`
}

// Policy is an IAM policy document.
type Policy struct {
	Version   string
	Statement []Statement
}

// PolicyOptions say what the printed policy is for.
type PolicyOptions struct {
	// Account is the AWS account id in the ARNs; "" means "*".
	Account string
	// CreateTable grants dynamodb:CreateTable on the lease table (off when
	// leaseTableCreate = never).
	CreateTable bool
}

// IAMPolicy returns the least-privilege policy for a multilangd worker with
// cfg: exactly the calls the daemon makes (e2e TestFleetRequests checks every
// request of a fleet run against it).
//
//   - Kinesis: DescribeStreamSummary (the start-up check), ListShards,
//     GetShardIterator and GetRecords on the stream, or on every stream of a
//     multi-stream application (fan-out too: it polls a
//     shard end SubscribeToShard did not signal); fan-out (retrievalMode
//     FANOUT) adds RegisterStreamConsumer on the stream and
//     DescribeStreamConsumer and SubscribeToShard on the consumer.
//   - DynamoDB: DescribeTable, Scan, GetItem, PutItem, UpdateItem and
//     DeleteItem on the lease table, CreateTable unless leaseTableCreate =
//     never; GetItem on the KCL 3.0–3.4 CoordinatorState table, read to stay
//     out of a live Java 3.x leader's way and to follow the client version,
//     and UpdateItem, with which the KCL 2.x leader flips an upgraded fleet
//     to 3.x (PutItem too with clientVersionConfig =
//     CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X, which may create Migration3.0
//     there); UpdateItem and Scan on the KCL 3.0–3.4 WorkerMetricStats table,
//     where the worker metrics go during an upgrade from 2.x until a 3.5
//     table migration completes (docs/compatibility.md "KCL 3.x"); Query on
//     the lease table's LeaseOwnerToLeaseKeyIndex GSI, with which a follower
//     of a Java 3.x leader discovers its leases.
//   - CloudWatch: PutMetricData (which takes no resource) limited to the
//     applicationName namespace by the cloudwatch:namespace condition, unless
//     metricsLevel = NONE turns CloudWatch metrics off.
//
// The KCL generation does not change it.
func IAMPolicy(cfg *properties.Config, o PolicyOptions) Policy {
	account := o.Account
	if account == "" {
		account = "*"
	}
	kRegion := firstNonEmpty(cfg.KinesisRegion, cfg.RegionName, "*")
	dRegion := firstNonEmpty(cfg.DynamoDBRegion, cfg.RegionName, "*")
	streams := streamARNs(cfg, kRegion, account)
	table := func(name string) string {
		return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", dRegion, account, name)
	}
	streamActions := []string{"kinesis:DescribeStreamSummary", "kinesis:ListShards", "kinesis:GetShardIterator", "kinesis:GetRecords"}
	fanout := cfg.RetrievalMode == properties.RetrievalFanout
	if fanout {
		streamActions = append(streamActions, "kinesis:RegisterStreamConsumer")
	}
	p := Policy{Version: "2012-10-17"}
	p.Statement = append(p.Statement, Statement{Sid: "KinesisStream", Effect: "Allow", Action: streamActions, Resource: streams})
	if fanout {
		var consumers []string
		if cfg.Fanout.ConsumerARN != "" && !cfg.MultiStream() {
			consumers = []string{cfg.Fanout.ConsumerARN}
		} else {
			name := firstNonEmpty(cfg.Fanout.ConsumerName, cfg.ApplicationName)
			for _, stream := range streams {
				consumers = append(consumers, stream+"/consumer/"+name+":*")
			}
		}
		p.Statement = append(p.Statement, Statement{Sid: "KinesisFanOutConsumer", Effect: "Allow",
			Action: []string{"kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"}, Resource: consumers})
	}
	leaseActions := []string{"dynamodb:DescribeTable", "dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
	if o.CreateTable {
		leaseActions = append([]string{"dynamodb:CreateTable"}, leaseActions...)
	}
	p.Statement = append(p.Statement,
		Statement{Sid: "LeaseTable", Effect: "Allow", Action: leaseActions, Resource: []string{table(cfg.TableName)}},
		Statement{Sid: "KCL3CoordinatorStateRead", Effect: "Allow", Action: coordinatorStateActions(cfg), Resource: []string{table(cfg.CoordinatorStateTable.TableName)}},
		Statement{Sid: "KCL3LeaseOwnerIndex", Effect: "Allow", Action: []string{"dynamodb:Query"}, Resource: []string{table(cfg.TableName) + "/index/" + lease.LeaseOwnerIndex}},
		Statement{Sid: "KCL3WorkerMetrics", Effect: "Allow", Action: []string{"dynamodb:Scan", "dynamodb:UpdateItem"}, Resource: []string{table(cfg.WorkerMetricsTable.TableName)}})
	if CloudWatchMetrics(cfg) {
		p.Statement = append(p.Statement, Statement{Sid: "CloudWatchMetrics", Effect: "Allow", Action: []string{"cloudwatch:PutMetricData"},
			Resource: []string{"*"}, Condition: map[string]map[string]string{"StringEquals": {"cloudwatch:namespace": cfg.ApplicationName}}})
	}
	return p
}

// coordinatorStateActions are the actions on the legacy CoordinatorState
// table (lease.DynamoStore.CreateMigrationState writes there only for
// CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X).
func coordinatorStateActions(cfg *properties.Config) []string {
	if cfg.ClientVersionConfig == properties.ClientVersionCompatible2X {
		return []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
	}
	return []string{"dynamodb:GetItem", "dynamodb:UpdateItem"}
}

// streamARNs are the ARNs of the stream, or of every stream of a
// multi-stream application (docs/multistream.md): as written, or built
// from the name, the stream's account when its identifier names one, else
// account.
func streamARNs(cfg *properties.Config, region, account string) []string {
	if !cfg.MultiStream() {
		if cfg.StreamARN != "" {
			return []string{cfg.StreamARN}
		}
		return []string{fmt.Sprintf("arn:aws:kinesis:%s:%s:stream/%s", region, account, cfg.StreamName)}
	}
	var out []string
	for _, sc := range cfg.Streams {
		if sc.ARN != "" {
			out = append(out, sc.ARN)
			continue
		}
		out = append(out, fmt.Sprintf("arn:aws:kinesis:%s:%s:stream/%s", region, firstNonEmpty(sc.AccountID, account), sc.Name))
	}
	return out
}

// CloudWatchMetrics reports whether a worker with cfg publishes CloudWatch
// metrics (every metricsLevel but NONE).
func CloudWatchMetrics(cfg *properties.Config) bool { return cfg.MetricsLevel != "NONE" }

// Allows reports whether p allows action ("dynamodb:Scan") on resource (an
// ARN); "*" in a policy resource matches any run of characters. Conditions
// are not evaluated (see AllowsPutMetricData).
func (p Policy) Allows(action, resource string) bool {
	for _, s := range p.Statement {
		if s.Effect != "Allow" {
			continue
		}
		actOK := false
		for _, a := range s.Action {
			if strings.EqualFold(a, action) {
				actOK = true
			}
		}
		if !actOK {
			continue
		}
		for _, r := range s.Resource {
			if globMatch(r, resource) {
				return true
			}
		}
	}
	return false
}

// AllowsPutMetricData reports whether p allows cloudwatch:PutMetricData in
// namespace.
func (p Policy) AllowsPutMetricData(namespace string) bool {
	for _, s := range p.Statement {
		if s.Effect != "Allow" || !slices.Contains(s.Action, "cloudwatch:PutMetricData") {
			continue
		}
		if ns, ok := s.Condition["StringEquals"]["cloudwatch:namespace"]; !ok || ns == namespace {
			return true
		}
	}
	return false
}

func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// WritePolicy writes p as indented JSON.
func WritePolicy(w io.Writer, p Policy) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
