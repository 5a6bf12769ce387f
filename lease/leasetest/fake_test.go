package leasetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/multilangd/multilangd/internal/testenv"
)

// api is the request set the conformance scripts use (the lease store's).
type api interface {
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

var _ api = (*Fake)(nil)

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
func key(k string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"leaseKey": s(k)}
}

// outcome classifies an error the way the lease store does.
func outcome(err error) string {
	var ccf *types.ConditionalCheckFailedException
	var nf *types.ResourceNotFoundException
	var inUse *types.ResourceInUseException
	var ae smithy.APIError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ccf):
		return "ConditionalCheckFailed"
	case errors.As(err, &nf):
		return "ResourceNotFound"
	case errors.As(err, &inUse):
		return "ResourceInUse"
	case errors.As(err, &ae) && ae.ErrorCode() == "ValidationException":
		return "Validation"
	default:
		return "other: " + err.Error()
	}
}

// render prints an item deterministically (numbers as written by DynamoDB).
func render(item map[string]types.AttributeValue) string {
	if item == nil {
		return "<none>"
	}
	var parts []string
	for k, v := range item {
		var t string
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			t = "S:" + v.Value
		case *types.AttributeValueMemberN:
			t = "N:" + v.Value
		case *types.AttributeValueMemberSS:
			ss := append([]string(nil), v.Value...)
			sort.Strings(ss)
			t = "SS:" + strings.Join(ss, ",")
		default:
			t = fmt.Sprintf("%T", v)
		}
		parts = append(parts, k+"="+t)
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, " ") + "}"
}

// step is one request of a conformance script; it returns the outcome.
type step struct {
	name string
	do   func(ctx context.Context, c api, table string) error
}

func put(k string, cond string, vals map[string]types.AttributeValue, extra map[string]types.AttributeValue) func(context.Context, api, string) error {
	return func(ctx context.Context, c api, table string) error {
		item := key(k)
		for a, v := range extra {
			item[a] = v
		}
		in := &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}
		if cond != "" {
			in.ConditionExpression = aws.String(cond)
			in.ExpressionAttributeNames = map[string]string{"#k": "leaseKey"}
		}
		if len(vals) > 0 {
			in.ExpressionAttributeValues = vals
		}
		_, err := c.PutItem(ctx, in)
		return err
	}
}

func upd(k, expr, cond string, names map[string]string, vals map[string]types.AttributeValue) func(context.Context, api, string) error {
	return func(ctx context.Context, c api, table string) error {
		in := &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: key(k), UpdateExpression: aws.String(expr), ExpressionAttributeNames: names}
		if cond != "" {
			in.ConditionExpression = aws.String(cond)
		}
		if len(vals) > 0 {
			in.ExpressionAttributeValues = vals
		}
		_, err := c.UpdateItem(ctx, in)
		return err
	}
}

func del(k string) func(context.Context, api, string) error {
	return func(ctx context.Context, c api, table string) error {
		_, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key(k)})
		return err
	}
}

var cnt = map[string]string{"#c": "leaseCounter"}

// script is the request sequence of the lease store's conditional writes
// and the edges of the expression language the fake implements.
var script = []step{
	{"create if not exists", put("a", "attribute_not_exists(#k)", nil, map[string]types.AttributeValue{"leaseCounter": n("0")})},
	{"create again: condition fails", put("a", "attribute_not_exists(#k)", nil, nil)},
	{"renew at counter 0", upd("a", "SET #c = :n1", "#c = :n", cnt, map[string]types.AttributeValue{":n": n("0"), ":n1": n("1")})},
	{"stale renew at counter 0", upd("a", "SET #c = :n1", "#c = :n", cnt, map[string]types.AttributeValue{":n": n("0"), ":n1": n("1")})},
	{"take: set owner, add switches", upd("a", "SET #c = :n1, #o = :me REMOVE #co ADD #sw :one", "#c = :n",
		map[string]string{"#c": "leaseCounter", "#o": "leaseOwner", "#co": "checkpointOwner", "#sw": "ownerSwitchesSinceCheckpoint"},
		map[string]types.AttributeValue{":n": n("1"), ":n1": n("2"), ":me": s("w1"), ":one": n("1")})},
	{"release: owner and counter", upd("a", "SET #c = :n1 REMOVE #o", "#c = :n AND #o = :me",
		map[string]string{"#c": "leaseCounter", "#o": "leaseOwner"},
		map[string]types.AttributeValue{":n": n("2"), ":n1": n("3"), ":me": s("w1")})},
	{"release by a non-owner", upd("a", "SET #c = :n1 REMOVE #o", "#c = :n AND #o = :me",
		map[string]string{"#c": "leaseCounter", "#o": "leaseOwner"},
		map[string]types.AttributeValue{":n": n("3"), ":n1": n("4"), ":me": s("w1")})},
	{"3.x renew clause on an item without checkpointOwner", upd("a", "SET #c = :n1", "#c = :n AND attribute_not_exists(#co)",
		map[string]string{"#c": "leaseCounter", "#co": "checkpointOwner"}, map[string]types.AttributeValue{":n": n("3"), ":n1": n("4")})},
	{"meta-info on a missing lease", upd("zz", "SET #ch = :ch", "#k = :k", map[string]string{"#ch": "childShardIds", "#k": "leaseKey"},
		map[string]types.AttributeValue{":ch": &types.AttributeValueMemberSS{Value: []string{"c1"}}, ":k": s("zz")})},
	{"meta-info on an existing lease", upd("a", "SET #ch = :ch", "#k = :k", map[string]string{"#ch": "childShardIds", "#k": "leaseKey"},
		map[string]types.AttributeValue{":ch": &types.AttributeValueMemberSS{Value: []string{"c2", "c1"}}, ":k": s("a")})},
	{"unconditional update creates the item", upd("b", "SET #c = :z", "", cnt, map[string]types.AttributeValue{":z": n("0")})},
	{"ADD to a missing number, if_not_exists", upd("b", "ADD #x :one SET #y = if_not_exists(#y, :one)", "",
		map[string]string{"#x": "x", "#y": "y"}, map[string]types.AttributeValue{":one": n("1")})},
	{"arithmetic SET", upd("b", "SET #x = #x + :one", "", map[string]string{"#x": "x"}, map[string]types.AttributeValue{":one": n("1")})},
	{"unused value: ValidationException", upd("b", "SET #c = :z", "", cnt, map[string]types.AttributeValue{":z": n("0"), ":unused": n("1")})},
	{"stale condition and an unused value: ValidationException first", upd("a", "SET #c = :n1", "#c = :n", cnt,
		map[string]types.AttributeValue{":n": n("0"), ":n1": n("1"), ":x": n("9")})},
	{"updating the key: ValidationException", upd("b", "SET #k = :v", "", map[string]string{"#k": "leaseKey"}, map[string]types.AttributeValue{":v": s("x")})},
	{"numbers compare by value", upd("b", "SET #c = :one", "#c = :zero", cnt, map[string]types.AttributeValue{":zero": n("0.0"), ":one": n("1")})},
	{"delete a missing item", del("nope")},
	{"delete", del("b")},
}

func runScript(t *testing.T, c api) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	table := fmt.Sprintf("conf-%d", time.Now().UnixNano())
	var got []string
	_, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("a")})
	got = append(got, "get from a missing table: "+outcome(err))
	create := &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}
	if _, err := c.CreateTable(ctx, create); err != nil {
		t.Fatal(err)
	}
	for {
		out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err == nil && out.Table.TableStatus == types.TableStatusActive {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err = c.CreateTable(ctx, create)
	got = append(got, "create an existing table: "+outcome(err))
	for _, st := range script {
		err := st.do(ctx, c, table)
		line := st.name + ": " + outcome(err)
		for _, k := range []string{"a", "b"} {
			out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(k), ConsistentRead: aws.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			line += " " + k + "=" + render(out.Item)
		}
		got = append(got, line)
	}
	// Pagination: 5 more items, pages of 2; every item exactly once.
	for i := 0; i < 5; i++ {
		if err := put(fmt.Sprintf("p%d", i), "", nil, nil)(ctx, c, table); err != nil {
			t.Fatal(err)
		}
	}
	got = append(got, "scan with Limit 2: "+strings.Join(scanKeys(ctx, t, c, table, nil), ","))
	var keys []string
	for seg := int32(0); seg < 3; seg++ {
		keys = append(keys, scanKeys(ctx, t, c, table, aws.Int32(seg))...)
	}
	sort.Strings(keys)
	got = append(got, "parallel scan, 3 segments: "+strings.Join(keys, ","))
	return got
}

// scanKeys scans table (one of 3 segments when seg is set) in pages of at
// most 2 and returns the sorted keys.
func scanKeys(ctx context.Context, t *testing.T, c api, table string, seg *int32) []string {
	t.Helper()
	in := &dynamodb.ScanInput{TableName: aws.String(table), Limit: aws.Int32(2)}
	if seg != nil {
		in.Segment, in.TotalSegments = seg, aws.Int32(3)
	}
	var keys []string
	for pages := 0; ; pages++ {
		out, err := c.Scan(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Items) > 2 || pages > 10 {
			t.Fatalf("page of %d items (page %d)", len(out.Items), pages)
		}
		for _, it := range out.Items {
			keys = append(keys, it["leaseKey"].(*types.AttributeValueMemberS).Value)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	sort.Strings(keys)
	return keys
}

// TestConformance runs the same script against the fake and, unless
// -short, against dynalite and DynamoDB Local: every outcome and every
// resulting item must agree.
func TestConformance(t *testing.T) {
	want := runScript(t, New())
	for _, line := range want {
		t.Log(line)
	}
	for _, k := range []testenv.Kind{testenv.Dynalite, testenv.DynamoDBLocal} {
		t.Run(string(k), func(t *testing.T) {
			got := runScript(t, testenv.StartT(t, k).DynamoDB())
			for i := range want {
				if i >= len(got) || got[i] != want[i] {
					t.Errorf("step %d:\n fake     %s\n %-8s %s", i, want[i], k, at(got, i))
				}
			}
		})
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "<missing>"
}

// The fault hooks fire once per arming, only for matching requests.
func TestFaults(t *testing.T) {
	ctx := context.Background()
	f := New()
	const table = "t"
	if _, err := f.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	setX := func(k, v string) error {
		return upd(k, "SET #x = :v", "", map[string]string{"#x": "x"}, map[string]types.AttributeValue{":v": n(v)})(ctx, f, table)
	}
	x := func(k string) string { return render(f.Item(table, k)) }

	f.FailNext(Match{Op: UpdateItem, Key: "b"}, Throttled())
	if err := setX("a", "1"); err != nil {
		t.Fatalf("other key failed: %v", err)
	}
	var thr *types.ProvisionedThroughputExceededException
	if err := setX("b", "1"); !errors.As(err, &thr) {
		t.Fatalf("armed failure: %v", err)
	}
	if x("b") != "<none>" {
		t.Fatalf("failed request applied: %s", x("b"))
	}
	if err := setX("b", "2"); err != nil {
		t.Fatalf("fault fired twice: %v", err)
	}

	f.DropNextResponse(Match{Op: UpdateItem})
	if err := setX("a", "5"); !errors.Is(err, ErrResponseLost) {
		t.Fatalf("dropped response: %v", err)
	}
	if x("a") != "{leaseKey=S:a x=N:5}" {
		t.Fatalf("dropped response not applied: %s", x("a"))
	}

	f.DelayNext(Match{Op: GetItem}, time.Hour)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := f.GetItem(cctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("a")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("delayed request: %v", err)
	}

	f.FailAll(Match{Table: table}, Throttled())
	for i := 0; i < 3; i++ {
		if err := setX("a", "9"); !errors.As(err, &thr) {
			t.Fatalf("FailAll, request %d: %v", i, err)
		}
	}
	f.ClearFaults()
	if err := setX("a", "9"); err != nil {
		t.Fatal(err)
	}
	if got := f.Count(Match{Op: UpdateItem, Key: "a"}); got != 6 {
		t.Fatalf("Count = %d, want 6", got)
	}
}

// A failed condition can return the item as it was (ALL_OLD).
func TestConditionFailureReturnsOldItem(t *testing.T) {
	ctx := context.Background()
	f := New()
	if _, err := f.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("t"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := put("a", "", nil, map[string]types.AttributeValue{"leaseCounter": n("7")})(ctx, f, "t"); err != nil {
		t.Fatal(err)
	}
	_, err := f.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String("t"), Key: key("a"), UpdateExpression: aws.String("SET #c = :n1"),
		ConditionExpression:      aws.String("#c = :n"),
		ExpressionAttributeNames: cnt, ExpressionAttributeValues: map[string]types.AttributeValue{":n": n("1"), ":n1": n("2")},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) || render(ccf.Item) != "{leaseCounter=N:7 leaseKey=S:a}" {
		t.Fatalf("err = %v, item %s", err, render(ccf.Item))
	}
}
