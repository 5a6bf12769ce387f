package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/seqnum"
)

// TestLeaseTableAgainstDynalite writes leases in every state plus a KCL 3.x
// Migration3.0 item to a real table and checks the printed table.
func TestLeaseTableAgainstDynalite(t *testing.T) {
	ddb := testenv.StartT(t, testenv.Dynalite)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := dynamodb.NewFromConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(ddb.Endpoint)
		o.HTTPClient = &http.Client{Transport: tr}
	})
	ctx := context.Background()
	store := lease.NewDynamoStore(client, "app", zap.NewNop())
	if err := store.CreateTableIfNotExists(ctx, lease.TableOptions{PollInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []lease.Lease{
		{Key: "shardId-000000000002", Owner: "worker-a", Counter: 7, Checkpoint: seqnum.New("4968", 3),
			ParentShardIDs: []string{"shardId-000000000000"}},
		{Key: "shardId-000000000000", Counter: 41, Checkpoint: seqnum.Sentinel(seqnum.ShardEnd),
			ChildShardIDs: []string{"shardId-000000000002", "shardId-000000000003"}},
		{Key: "shardId-000000000003", Counter: 1, Checkpoint: seqnum.Sentinel(seqnum.TrimHorizon),
			ParentShardIDs: []string{"shardId-000000000000"}},
	} {
		if _, err := store.CreateLeaseIfNotExists(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("app"), Item: map[string]types.AttributeValue{
		"leaseKey":   &types.AttributeValueMemberS{Value: "Migration3.0"},
		"entityType": &types.AttributeValueMemberS{Value: "CLIENT_VERSION_MIGRATION"},
		"cv":         &types.AttributeValueMemberS{Value: "CLIENT_VERSION_3X"},
	}}); err != nil {
		t.Fatal(err)
	}
	// A lease item workers cannot read (no checkpoint) is listed, not hidden.
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("app"), Item: map[string]types.AttributeValue{
		"leaseKey":     &types.AttributeValueMemberS{Value: "shardId-000000000009"},
		"leaseCounter": &types.AttributeValueMemberN{Value: "3"},
	}}); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	cfg := &properties.Config{TableName: "app", ApplicationName: "app", StreamName: "s"}
	if err := writeLeaseTable(ctx, &buf, cfg, store, leasesOptions{Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Logf("\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []struct{ prefix, state string }{
		{"LEASE KEY", "STATE"},
		{"shardId-000000000000", "SHARD_END"},
		{"shardId-000000000002", "OWNED"},
		{"shardId-000000000003", "UNOWNED"},
	}
	if len(lines) < 1+len(want)+2 {
		t.Fatalf("got %d lines:\n%s", len(lines), out)
	}
	for i, w := range want {
		l := lines[1+i]
		if !strings.HasPrefix(l, w.prefix) || !strings.HasSuffix(l, w.state) {
			t.Errorf("line %d = %q, want %s … %s", i+1, l, w.prefix, w.state)
		}
	}
	for _, s := range []string{"4968/3", "worker-a", "shardId-000000000002,shardId-000000000003", "client version:  CLIENT_VERSION_3X",
		"1 malformed lease item(s)", "shardId-000000000009: checkpoint (S) missing"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q", s)
		}
	}
}
