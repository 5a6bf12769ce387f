// Package leasetest is an in-memory DynamoDB for lease-table tests, in the
// spirit of franz-go's kfake: a *Fake answers the DynamoDB requests the lease
// store makes (CreateTable, DescribeTable, GetItem, PutItem, UpdateItem,
// DeleteItem, Scan) with DynamoDB's semantics — hash-key tables, conditional
// writes that fail with ConditionalCheckFailedException, update expressions,
// paginated scans, ValidationException for unused expression names or values
// — so the real lease.DynamoStore runs over it unchanged:
//
//	f := leasetest.New()
//	store := lease.NewDynamoStore(f, "app", log)
//
// Fault hooks make the next matching request fail, wait, or be applied with
// its response lost:
//
//	f.FailNext(leasetest.Match{Op: leasetest.UpdateItem, Key: "shardId-1"}, leasetest.Throttled())
//	f.DropNextResponse(leasetest.Match{Op: leasetest.UpdateItem})
//
// It is for fast unit tests of pure logic; every behaviour also keeps a test
// against the real emulators (dynalite, DynamoDB Local).
package leasetest

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// Operation names, as in the DynamoDB API.
const (
	CreateTable   = "CreateTable"
	DescribeTable = "DescribeTable"
	GetItem       = "GetItem"
	PutItem       = "PutItem"
	UpdateItem    = "UpdateItem"
	DeleteItem    = "DeleteItem"
	Scan          = "Scan"
)

// DefaultScanPageSize is how many items one Scan page holds at most unless
// the request's Limit is smaller (DynamoDB pages by 1 MB instead).
const DefaultScanPageSize = 100

// Match selects requests. Empty fields match anything.
type Match struct {
	Op    string // an operation name (UpdateItem, …)
	Table string
	Key   string // the item's hash-key value (item operations only)
}

func (m Match) matches(r request) bool {
	return (m.Op == "" || m.Op == r.op) && (m.Table == "" || m.Table == r.table) && (m.Key == "" || m.Key == r.key)
}

type request struct{ op, table, key string }

// fault is one armed hook; it fires for the next times matching requests.
type fault struct {
	match        Match
	times        int
	err          error
	delay        time.Duration
	dropResponse bool
}

type table struct {
	name    string
	key     string // hash-key attribute name
	keyType types.ScalarAttributeType
	desc    types.TableDescription
	items   map[string]map[string]types.AttributeValue
}

// Fake is an in-memory DynamoDB. The zero value is not usable; call New.
// It is safe for concurrent use.
type Fake struct {
	// ScanPageSize bounds a Scan page (default DefaultScanPageSize); set it
	// before use.
	ScanPageSize int

	mu     sync.Mutex
	tables map[string]*table
	faults []*fault
	counts map[request]int
}

// New returns an empty Fake.
func New() *Fake {
	return &Fake{ScanPageSize: DefaultScanPageSize, tables: map[string]*table{}, counts: map[request]int{}}
}

// FailNext makes the next request matching m fail with err without being
// applied.
func (f *Fake) FailNext(m Match, err error) { f.arm(&fault{match: m, times: 1, err: err}) }

// FailAll makes every request matching m fail with err until ClearFaults.
func (f *Fake) FailAll(m Match, err error) { f.arm(&fault{match: m, times: -1, err: err}) }

// DelayNext makes the next request matching m wait d (or until its context
// ends, which fails it) before being applied.
func (f *Fake) DelayNext(m Match, d time.Duration) { f.arm(&fault{match: m, times: 1, delay: d}) }

// DropNextResponse applies the next request matching m but returns
// ErrResponseLost instead of its answer, as when the connection drops after
// DynamoDB wrote the item. The lease store retries such an error.
func (f *Fake) DropNextResponse(m Match) { f.arm(&fault{match: m, times: 1, dropResponse: true}) }

// ClearFaults disarms every hook.
func (f *Fake) ClearFaults() {
	f.mu.Lock()
	f.faults = nil
	f.mu.Unlock()
}

func (f *Fake) arm(ft *fault) {
	f.mu.Lock()
	f.faults = append(f.faults, ft)
	f.mu.Unlock()
}

// Count returns how many requests matching m arrived (faulted ones included).
func (f *Fake) Count(m Match) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for r, c := range f.counts {
		if m.matches(r) {
			n += c
		}
	}
	return n
}

// Item returns a copy of the item with hash key key, or nil.
func (f *Fake) Item(tableName, key string) map[string]types.AttributeValue {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[tableName]
	if t == nil {
		return nil
	}
	return copyItem(t.items[key])
}

// ErrResponseLost is what a dropped response looks like to the caller: a
// network error (net.Error), which the lease store treats as transient.
var ErrResponseLost error = responseLost{}

type responseLost struct{}

func (responseLost) Error() string   { return "leasetest: response lost (injected)" }
func (responseLost) Timeout() bool   { return true }
func (responseLost) Temporary() bool { return true }

// Throttled returns the error DynamoDB gives a throttled request.
func Throttled() error {
	return &types.ProvisionedThroughputExceededException{Message: aws.String("injected throttling")}
}

func validation(format string, args ...any) error {
	return &smithy.GenericAPIError{Code: "ValidationException", Message: fmt.Sprintf(format, args...), Fault: smithy.FaultClient}
}

func notFound(tableName string) error {
	return &types.ResourceNotFoundException{Message: aws.String("Requested resource not found: Table: " + tableName + " not found")}
}

func conditionFailed() error {
	return &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
}

// begin counts the request and runs the first hook that matches it. An
// error means the request is not applied and the caller gets that error;
// drop means it is applied but the caller gets ErrResponseLost.
func (f *Fake) begin(ctx context.Context, r request) (drop bool, err error) {
	f.mu.Lock()
	f.counts[r]++
	var hit *fault
	for i, ft := range f.faults {
		if !ft.match.matches(r) {
			continue
		}
		hit = ft
		if ft.times > 0 {
			ft.times--
			if ft.times == 0 {
				f.faults = append(f.faults[:i:i], f.faults[i+1:]...)
			}
		}
		break
	}
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("operation error DynamoDB: %s: %w", r.op, err)
	}
	if hit == nil {
		return false, nil
	}
	if hit.delay > 0 {
		t := time.NewTimer(hit.delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, fmt.Errorf("operation error DynamoDB: %s: %w", r.op, ctx.Err())
		case <-t.C:
		}
	}
	if hit.err != nil {
		return false, hit.err
	}
	return hit.dropResponse, nil
}

// table returns the named table or ResourceNotFoundException. f.mu is held.
func (f *Fake) table(name *string) (*table, error) {
	t := f.tables[aws.ToString(name)]
	if t == nil {
		return nil, notFound(aws.ToString(name))
	}
	return t, nil
}

// hashKey returns the string form of item's hash key for t.
func (t *table) hashKey(item map[string]types.AttributeValue) (string, error) {
	switch v := item[t.key].(type) {
	case *types.AttributeValueMemberS:
		if t.keyType == types.ScalarAttributeTypeS && v.Value != "" {
			return v.Value, nil
		}
	case *types.AttributeValueMemberN:
		if t.keyType == types.ScalarAttributeTypeN {
			return v.Value, nil
		}
	}
	return "", validation("The provided key element does not match the schema")
}

func keyOfInput(key map[string]types.AttributeValue) string {
	for _, v := range key {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			return v.Value
		case *types.AttributeValueMemberN:
			return v.Value
		}
	}
	return ""
}

// CreateTable creates a hash-key table; it is ACTIVE at once.
func (f *Fake) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	name := aws.ToString(in.TableName)
	drop, err := f.begin(ctx, request{op: CreateTable, table: name})
	if err != nil {
		return nil, err
	}
	if len(in.KeySchema) != 1 || in.KeySchema[0].KeyType != types.KeyTypeHash {
		return nil, validation("leasetest supports tables with one hash key only")
	}
	key := aws.ToString(in.KeySchema[0].AttributeName)
	var keyType types.ScalarAttributeType
	for _, d := range in.AttributeDefinitions {
		if aws.ToString(d.AttributeName) == key {
			keyType = d.AttributeType
		}
	}
	if keyType != types.ScalarAttributeTypeS && keyType != types.ScalarAttributeTypeN {
		return nil, validation("the hash key %s needs an S or N attribute definition", key)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tables[name] != nil {
		return nil, &types.ResourceInUseException{Message: aws.String("Table already exists: " + name)}
	}
	billing := in.BillingMode
	if billing == "" {
		billing = types.BillingModeProvisioned
	}
	t := &table{name: name, key: key, keyType: keyType, items: map[string]map[string]types.AttributeValue{}}
	t.desc = types.TableDescription{
		TableName:                 aws.String(name),
		TableStatus:               types.TableStatusActive,
		KeySchema:                 in.KeySchema,
		AttributeDefinitions:      in.AttributeDefinitions,
		BillingModeSummary:        &types.BillingModeSummary{BillingMode: billing},
		DeletionProtectionEnabled: in.DeletionProtectionEnabled,
		CreationDateTime:          aws.Time(time.Now()),
	}
	if in.ProvisionedThroughput != nil {
		t.desc.ProvisionedThroughput = &types.ProvisionedThroughputDescription{
			ReadCapacityUnits:  in.ProvisionedThroughput.ReadCapacityUnits,
			WriteCapacityUnits: in.ProvisionedThroughput.WriteCapacityUnits,
		}
	}
	f.tables[name] = t
	if drop {
		return nil, ErrResponseLost
	}
	d := t.desc
	d.TableStatus = types.TableStatusCreating
	return &dynamodb.CreateTableOutput{TableDescription: &d}, nil
}

// DescribeTable describes a table.
func (f *Fake) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	drop, err := f.begin(ctx, request{op: DescribeTable, table: aws.ToString(in.TableName)})
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(in.TableName)
	if err != nil {
		return nil, err
	}
	if drop {
		return nil, ErrResponseLost
	}
	d := t.desc
	d.ItemCount = aws.Int64(int64(len(t.items)))
	return &dynamodb.DescribeTableOutput{Table: &d}, nil
}

// GetItem reads one item (always consistent).
func (f *Fake) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	drop, err := f.begin(ctx, request{op: GetItem, table: aws.ToString(in.TableName), key: keyOfInput(in.Key)})
	if err != nil {
		return nil, err
	}
	if in.ProjectionExpression != nil {
		return nil, validation("leasetest does not support ProjectionExpression")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(in.TableName)
	if err != nil {
		return nil, err
	}
	if len(in.Key) != 1 {
		return nil, validation("The provided key element does not match the schema")
	}
	k, err := t.hashKey(in.Key)
	if err != nil {
		return nil, err
	}
	if drop {
		return nil, ErrResponseLost
	}
	return &dynamodb.GetItemOutput{Item: copyItem(t.items[k])}, nil
}

// PutItem writes a whole item if its condition holds.
func (f *Fake) PutItem(ctx context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	old, _, err := f.write(ctx, writeReq{
		op: PutItem, table: in.TableName, key: in.Item, names: in.ExpressionAttributeNames, values: in.ExpressionAttributeValues,
		cond: in.ConditionExpression, onFail: in.ReturnValuesOnConditionCheckFailure,
		apply: func(map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
			return copyItem(in.Item), nil
		},
	})
	if err != nil {
		return nil, err
	}
	out := &dynamodb.PutItemOutput{}
	if in.ReturnValues == types.ReturnValueAllOld {
		out.Attributes = old
	}
	return out, nil
}

// UpdateItem applies an update expression if the condition holds; a
// missing item is created (as in DynamoDB) when the condition allows it.
func (f *Fake) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if in.UpdateExpression == nil {
		return nil, validation("leasetest needs an UpdateExpression (AttributeUpdates is not supported)")
	}
	var acts []action
	old, next, err := f.write(ctx, writeReq{
		op: UpdateItem, table: in.TableName, key: in.Key, names: in.ExpressionAttributeNames, values: in.ExpressionAttributeValues,
		cond: in.ConditionExpression, onFail: in.ReturnValuesOnConditionCheckFailure,
		parse: func(x *exprCtx, t *table) (err error) {
			acts, err = parseUpdate(aws.ToString(in.UpdateExpression), x, t.key)
			if err != nil {
				return validation("Invalid UpdateExpression: %v", err)
			}
			return nil
		},
		apply: func(old map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
			next := copyItem(old)
			if next == nil {
				next = copyItem(in.Key)
			}
			for _, a := range acts {
				if err := a(next); err != nil {
					return nil, validation("%v", err)
				}
			}
			return next, nil
		},
	})
	if err != nil {
		return nil, err
	}
	out := &dynamodb.UpdateItemOutput{}
	switch in.ReturnValues {
	case types.ReturnValueAllOld:
		out.Attributes = old
	case types.ReturnValueAllNew:
		out.Attributes = next
	}
	return out, nil
}

// DeleteItem deletes an item if the condition holds (absent is fine).
func (f *Fake) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	old, _, err := f.write(ctx, writeReq{
		op: DeleteItem, table: in.TableName, key: in.Key, names: in.ExpressionAttributeNames, values: in.ExpressionAttributeValues,
		cond: in.ConditionExpression, onFail: in.ReturnValuesOnConditionCheckFailure,
		apply: func(map[string]types.AttributeValue) (map[string]types.AttributeValue, error) { return nil, nil },
	})
	if err != nil {
		return nil, err
	}
	out := &dynamodb.DeleteItemOutput{}
	if in.ReturnValues == types.ReturnValueAllOld {
		out.Attributes = old
	}
	return out, nil
}

// writeReq is one conditional write: apply computes the new item (nil
// deletes it) from the old one (nil when absent).
type writeReq struct {
	op     string
	table  *string
	key    map[string]types.AttributeValue // the Key, or the whole item for PutItem
	names  map[string]string
	values map[string]types.AttributeValue
	cond   *string
	onFail types.ReturnValuesOnConditionCheckFailure
	parse  func(x *exprCtx, t *table) error // parses further expressions (UpdateItem)
	apply  func(old map[string]types.AttributeValue) (map[string]types.AttributeValue, error)
}

// write runs a conditional write as DynamoDB does: resolve table and key,
// parse every expression, reject unused names and values, evaluate the
// condition against the current item, then apply. It returns copies of the
// old and new item.
func (f *Fake) write(ctx context.Context, w writeReq) (old, next map[string]types.AttributeValue, err error) {
	drop, err := f.begin(ctx, request{op: w.op, table: aws.ToString(w.table), key: f.itemKey(w.table, w.key)})
	if err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(w.table)
	if err != nil {
		return nil, nil, err
	}
	if w.op != PutItem && len(w.key) != 1 {
		return nil, nil, validation("The provided key element does not match the schema")
	}
	k, err := t.hashKey(w.key)
	if err != nil {
		return nil, nil, err
	}
	x := newExprCtx(w.names, w.values)
	if w.parse != nil {
		if err := w.parse(x, t); err != nil {
			return nil, nil, err
		}
	}
	var cond condition
	if w.cond != nil {
		if cond, err = parseCondition(*w.cond, x); err != nil {
			return nil, nil, validation("Invalid ConditionExpression: %v", err)
		}
	}
	if err := x.unused(); err != nil {
		return nil, nil, validation("%v", err)
	}
	cur := t.items[k]
	if cond != nil && !cond(cur) {
		e := conditionFailed().(*types.ConditionalCheckFailedException)
		if w.onFail == types.ReturnValuesOnConditionCheckFailureAllOld {
			e.Item = copyItem(cur)
		}
		return nil, nil, e
	}
	n, err := w.apply(cur)
	if err != nil {
		return nil, nil, err
	}
	if n == nil {
		delete(t.items, k)
	} else {
		t.items[k] = n
	}
	if drop {
		return nil, nil, ErrResponseLost
	}
	return copyItem(cur), copyItem(n), nil
}

// itemKey returns the hash-key value of item in the named table, for fault
// matching ("" when the table or the attribute is missing).
func (f *Fake) itemKey(tableName *string, item map[string]types.AttributeValue) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[aws.ToString(tableName)]
	if t == nil {
		return ""
	}
	k, _ := t.hashKey(item)
	return k
}

// Scan returns the items (of one segment, for a parallel scan) in hash-key
// order, a page at a time.
func (f *Fake) Scan(ctx context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	drop, err := f.begin(ctx, request{op: Scan, table: aws.ToString(in.TableName)})
	if err != nil {
		return nil, err
	}
	if in.FilterExpression != nil || in.ProjectionExpression != nil {
		return nil, validation("leasetest supports plain, paginated and parallel scans only")
	}
	seg, total := int(aws.ToInt32(in.Segment)), int(aws.ToInt32(in.TotalSegments))
	if (in.Segment == nil) != (in.TotalSegments == nil) || (total != 0 && (total < 1 || seg < 0 || seg >= total)) {
		return nil, validation("Segment must be in [0, TotalSegments)")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(in.TableName)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(t.items))
	for k := range t.items {
		if total == 0 || segmentOf(k, total) == seg {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	start := 0
	if len(in.ExclusiveStartKey) > 0 {
		after, err := t.hashKey(in.ExclusiveStartKey)
		if err != nil {
			return nil, err
		}
		start = sort.SearchStrings(keys, after)
		if start < len(keys) && keys[start] == after {
			start++
		}
	}
	page := f.ScanPageSize
	if page <= 0 {
		page = DefaultScanPageSize
	}
	if in.Limit != nil && int(*in.Limit) < page {
		page = int(*in.Limit)
	}
	end := min(start+page, len(keys))
	out := &dynamodb.ScanOutput{}
	for _, k := range keys[start:end] {
		out.Items = append(out.Items, copyItem(t.items[k]))
	}
	out.Count = int32(len(out.Items))
	out.ScannedCount = out.Count
	if end < len(keys) {
		out.LastEvaluatedKey = map[string]types.AttributeValue{t.key: copyValue(t.items[keys[end-1]][t.key])}
	}
	if drop {
		return nil, ErrResponseLost
	}
	return out, nil
}

// segmentOf places a key in one of total parallel-scan segments.
func segmentOf(key string, total int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(total))
}

func newExprCtx(names map[string]string, values map[string]types.AttributeValue) *exprCtx {
	return &exprCtx{names: names, values: values, usedNames: map[string]bool{}, usedVals: map[string]bool{}}
}

func copyItem(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	if item == nil {
		return nil
	}
	out := make(map[string]types.AttributeValue, len(item))
	for k, v := range item {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v types.AttributeValue) types.AttributeValue {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return &types.AttributeValueMemberS{Value: v.Value}
	case *types.AttributeValueMemberN:
		return &types.AttributeValueMemberN{Value: v.Value}
	case *types.AttributeValueMemberB:
		return &types.AttributeValueMemberB{Value: bytes.Clone(v.Value)}
	case *types.AttributeValueMemberBOOL:
		return &types.AttributeValueMemberBOOL{Value: v.Value}
	case *types.AttributeValueMemberNULL:
		return &types.AttributeValueMemberNULL{Value: v.Value}
	case *types.AttributeValueMemberSS:
		return &types.AttributeValueMemberSS{Value: append([]string(nil), v.Value...)}
	case *types.AttributeValueMemberNS:
		return &types.AttributeValueMemberNS{Value: append([]string(nil), v.Value...)}
	case *types.AttributeValueMemberBS:
		out := make([][]byte, len(v.Value))
		for i, b := range v.Value {
			out[i] = bytes.Clone(b)
		}
		return &types.AttributeValueMemberBS{Value: out}
	case *types.AttributeValueMemberL:
		out := make([]types.AttributeValue, len(v.Value))
		for i, e := range v.Value {
			out[i] = copyValue(e)
		}
		return &types.AttributeValueMemberL{Value: out}
	case *types.AttributeValueMemberM:
		return &types.AttributeValueMemberM{Value: copyItem(v.Value)}
	default:
		return v
	}
}

// equalValues compares two values of any type (sets as sets).
func equalValues(a, b types.AttributeValue) bool {
	switch x := a.(type) {
	case *types.AttributeValueMemberS, *types.AttributeValueMemberN:
		c, ok := compare(a, b)
		return ok && c == 0
	case *types.AttributeValueMemberB:
		y, ok := b.(*types.AttributeValueMemberB)
		return ok && bytes.Equal(x.Value, y.Value)
	case *types.AttributeValueMemberBOOL:
		y, ok := b.(*types.AttributeValueMemberBOOL)
		return ok && x.Value == y.Value
	case *types.AttributeValueMemberNULL:
		_, ok := b.(*types.AttributeValueMemberNULL)
		return ok
	case *types.AttributeValueMemberL:
		y, ok := b.(*types.AttributeValueMemberL)
		return ok && equalLists(x.Value, y.Value)
	case *types.AttributeValueMemberM:
		y, ok := b.(*types.AttributeValueMemberM)
		return ok && equalMaps(x.Value, y.Value)
	default:
		return equalSets(a, b)
	}
}

// equalSets compares SS, NS and BS values as sets.
func equalSets(a, b types.AttributeValue) bool {
	switch x := a.(type) {
	case *types.AttributeValueMemberSS:
		y, ok := b.(*types.AttributeValueMemberSS)
		return ok && sameSet(x.Value, y.Value)
	case *types.AttributeValueMemberNS:
		y, ok := b.(*types.AttributeValueMemberNS)
		return ok && sameSet(x.Value, y.Value)
	case *types.AttributeValueMemberBS:
		y, ok := b.(*types.AttributeValueMemberBS)
		if !ok {
			return false
		}
		xs, ys := make([]string, len(x.Value)), make([]string, len(y.Value))
		for i, v := range x.Value {
			xs[i] = string(v)
		}
		for i, v := range y.Value {
			ys[i] = string(v)
		}
		return sameSet(xs, ys)
	default:
		return false
	}
}

func equalLists(a, b []types.AttributeValue) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equalValues(a[i], b[i]) {
			return false
		}
	}
	return true
}

func equalMaps(a, b map[string]types.AttributeValue) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !equalValues(v, w) {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[string]bool{}
	for _, v := range a {
		in[v] = true
	}
	for _, v := range b {
		if !in[v] {
			return false
		}
	}
	return true
}
