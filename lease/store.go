package lease

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/seqnum"
)

// Store is the narrow lease-table interface the Coordinator and Checkpointer
// use. DynamoStore implements it; tests wrap it to inject faults.
type Store interface {
	// ListLeases scans the table (eventually consistent, as Java
	// DynamoDBLeaseRefresher.listLeases); non-lease and malformed items are
	// skipped.
	ListLeases(ctx context.Context) ([]Lease, error)
	// ScanTable is one eventually consistent scan of the whole table: the
	// leases and the KCL 3.5 coordinator-state items kept in the lease table.
	ScanTable(ctx context.Context) (TableScan, error)
	// GetLease reads one lease with a consistent read; nil, nil when absent.
	// The coordinator uses it only after a conditional write failed, to tell
	// its own landed write from another worker's (docs/compatibility.md).
	GetLease(ctx context.Context, key string) (*Lease, error)
	// RenewLease is W2: condition leaseCounter = l.Counter (plus
	// attribute_not_exists(checkpointOwner) when threeX and l knows no
	// hand-off); SET leaseCounter = l.Counter+1 (and throughputKBps when
	// threeX and l carries one).
	RenewLease(ctx context.Context, l Lease, threeX bool) error
	// TakeLease is W3: condition leaseCounter = l.Counter; SET leaseCounter,
	// leaseOwner = owner, REMOVE checkpointOwner, ADD ownerSwitchesSinceCheckpoint
	// when the owner changes.
	TakeLease(ctx context.Context, l Lease, owner string) error
	// UpdateCheckpoint is W4 for a plain checkpoint, fenced by l.Counter.
	UpdateCheckpoint(ctx context.Context, l Lease, cp seqnum.ESN) error
	// ReleaseLease: condition leaseCounter = l.Counter AND leaseOwner = owner;
	// REMOVE leaseOwner, SET leaseCounter = l.Counter+1.
	ReleaseLease(ctx context.Context, l Lease, owner string) error
	// LegacyCoordinatorState reads Migration3.0 (and Leader when it elects
	// one) from a KCL 3.0–3.4 <app>-CoordinatorState table; the zero value
	// when none is configured or it does not exist.
	LegacyCoordinatorState(ctx context.Context) (CoordinatorState, error)
	// ListLeaseKeysForWorker queries the KCL 3.x LeaseOwnerToLeaseKeyIndex
	// GSI for the keys of the leases assigned to worker (3.x follower).
	ListLeaseKeysForWorker(ctx context.Context, worker string) ([]string, error)
	// AssignLease is W8 (KCL 3.x assignment, and the end of a graceful
	// hand-off): condition leaseOwner and checkpointOwner as in l (each
	// attribute_not_exists when empty) and the lease exists; SET leaseOwner
	// = newOwner, REMOVE checkpointOwner, ADD leaseCounter 1 (and
	// ownerSwitchesSinceCheckpoint 1 on a real owner change). It returns the
	// item as written; a CCF wraps ErrConditionFailed.
	AssignLease(ctx context.Context, l Lease, newOwner string) (Lease, error)
	// InitiateHandoff is W9 (KCL 3.x leader): condition leaseOwner =
	// l.Owner, no checkpointOwner, the lease exists; SET leaseOwner =
	// newOwner, checkpointOwner = l.Owner; the counter is not touched. It
	// returns the item as written; a CCF wraps ErrConditionFailed.
	InitiateHandoff(ctx context.Context, l Lease, newOwner string) (Lease, error)
}

// TableScan is what one scan of the lease table holds.
type TableScan struct {
	Leases []Lease
	// State is the KCL 3.5 coordinator state found among the scanned items
	// (Migration3.0, Leader); the zero value on a 2.x table.
	State CoordinatorState
}

// DynamoAPI is the part of the DynamoDB API the lease store uses.
// *dynamodb.Client implements it, and so does the in-memory
// leasetest.Fake that the pure unit tests run the store over.
type DynamoAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

var _ DynamoAPI = (*dynamodb.Client)(nil)

// DynamoStore is the DynamoDB implementation of the lease table: every read
// and conditional write of Java DynamoDBLeaseRefresher (W1–W6, see
// docs/architecture.md "The lease table") plus release. Throttling and
// transient errors are retried with exponential back-off and jitter.
type DynamoStore struct {
	client     DynamoAPI
	table      string
	coordTable string
	log        *zap.Logger
	// scanSegments is the number of parallel scan segments (1 = serial).
	scanSegments int
	// consistentGets makes GetLease a consistent read (the default).
	consistentGets bool
	// MaxAttempts bounds attempts per request on throttling/transient errors.
	maxAttempts int
	baseBackoff time.Duration
}

var _ Store = (*DynamoStore)(nil)

// NewDynamoStore returns a store for the lease table named table.
func NewDynamoStore(client DynamoAPI, table string, log *zap.Logger) *DynamoStore {
	if log == nil {
		log = zap.NewNop()
	}
	return &DynamoStore{client: client, table: table, log: log.With(zap.String("leaseTable", table)), scanSegments: 1, consistentGets: true, maxAttempts: 4, baseBackoff: 50 * time.Millisecond}
}

// WithCoordinatorStateTable makes CoordinatorState also look at a KCL 3.0–3.4
// <app>-CoordinatorState table (partition key "key"). A missing table is
// ignored. It returns s for chaining.
func (s *DynamoStore) WithCoordinatorStateTable(name string) *DynamoStore {
	s.coordTable = name
	return s
}

// WithScanSegments makes every scan of the table a parallel scan of n
// segments (leaseTableScanTotalSegments; Java
// DynamoDBLeaseRefresher.listLeasesParallely). n < 2 scans serially, as the
// Java 2.x listLeases. It returns s for chaining.
func (s *DynamoStore) WithScanSegments(n int) *DynamoStore {
	s.scanSegments = max(n, 1)
	return s
}

// EventuallyConsistentGets returns a copy of s whose GetLease is an
// eventually consistent read, as Java DynamoDBLeaseRefresher.getLease with
// its default consistentReads = false. Shard sync, the parent gate and the
// cleaner use it: a stale answer there only delays them, and every write
// they make is conditional or deletes a lease no worker can still need
// (docs/compatibility.md).
func (s *DynamoStore) EventuallyConsistentGets() *DynamoStore {
	c := *s
	c.consistentGets = false
	return &c
}

// Table returns the lease table name.
func (s *DynamoStore) Table() string { return s.table }

func keyOf(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrLeaseKey: attrS(key)}
}

// classify maps an AWS error to the package sentinels and reports whether
// it is worth retrying.
func classify(err error) (wrapped error, retry bool) {
	if err == nil {
		return nil, false
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("%w: %w", ErrConditionFailed, err), false
	}
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return fmt.Errorf("%w: %w", ErrTableNotFound, err), false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ProvisionedThroughputExceededException", "RequestLimitExceeded", "ThrottlingException", "LimitExceededException", "Throttling":
			return fmt.Errorf("%w: %w", ErrThrottled, err), true
		case "InternalServerError", "ServiceUnavailable", "InternalFailure":
			return err, true
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return err, true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return err, true
	}
	return err, false
}

// do runs fn, retrying throttling and transient errors with exponential
// back-off and full jitter; the returned error is classified.
func (s *DynamoStore) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	var last error
	for attempt := 0; attempt < s.maxAttempts; attempt++ {
		if attempt > 0 {
			d := s.baseBackoff << (attempt - 1)
			d = d/2 + rand.N(d/2+1)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%s: %w (last error: %w)", op, ctx.Err(), last)
			case <-t.C:
			}
		}
		err := fn(ctx)
		if err == nil {
			return nil
		}
		w, retry := classify(err)
		last = w
		if !retry {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (last error: %w)", op, ctx.Err(), last)
		}
		s.log.Debug("retrying lease table request", zap.String("op", op), zap.Int("attempt", attempt+1), zap.Error(err))
	}
	return fmt.Errorf("%s: %w", op, last)
}

// scan runs an eventually consistent, paginated Scan of the whole table (as
// Java DynamoDBLeaseRefresher.listLeases; safety comes from the conditional
// writes, docs/compatibility.md) and calls page for every page of items. With
// more than one segment the segments are scanned in parallel and page may be
// called from several goroutines at once.
func (s *DynamoStore) scan(ctx context.Context, page func([]map[string]types.AttributeValue)) error {
	if s.scanSegments <= 1 {
		return s.scanSegment(ctx, nil, page)
	}
	errs := make([]error, s.scanSegments)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() { // owned here: scan waits for every segment
			defer wg.Done()
			seg := &dynamodb.ScanInput{Segment: aws.Int32(int32(i)), TotalSegments: aws.Int32(int32(s.scanSegments))}
			errs[i] = s.scanSegment(ctx, seg, page)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// scanSegment scans one segment (all of the table when seg is nil).
func (s *DynamoStore) scanSegment(ctx context.Context, seg *dynamodb.ScanInput, page func([]map[string]types.AttributeValue)) error {
	in := &dynamodb.ScanInput{TableName: aws.String(s.table)}
	if seg != nil {
		in.Segment, in.TotalSegments = seg.Segment, seg.TotalSegments
	}
	for {
		var out *dynamodb.ScanOutput
		err := s.do(ctx, "scan "+s.table, func(ctx context.Context) error {
			var err error
			out, err = s.client.Scan(ctx, in)
			return err
		})
		if err != nil {
			return err
		}
		page(out.Items)
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// ListLeases scans the whole table (paginated, eventually consistent).
// Non-lease items (3.5 entityType) are skipped silently, malformed lease
// items with a warning.
func (s *DynamoStore) ListLeases(ctx context.Context) ([]Lease, error) {
	ts, err := s.ScanTable(ctx)
	return ts.Leases, err
}

// ScanTable scans the whole table once (see Store).
func (s *DynamoStore) ScanTable(ctx context.Context) (TableScan, error) {
	var (
		mu sync.Mutex
		ts TableScan
	)
	err := s.scan(ctx, func(items []map[string]types.AttributeValue) {
		mu.Lock()
		defer mu.Unlock()
		for _, item := range items {
			if key, _ := getS(item, AttrLeaseKey); key == MigrationKey || key == LeaderKey {
				ts.State.merge(key, item)
				continue
			}
			l, err := UnmarshalItem(item)
			switch {
			case errors.Is(err, ErrNotLease):
				continue
			case err != nil:
				s.log.Warn("skipping malformed lease item", zap.Error(err))
				continue
			}
			ts.Leases = append(ts.Leases, l)
		}
	})
	if err != nil {
		return TableScan{}, err
	}
	return ts, nil
}

// RawItems scans the whole table and returns every item undecoded (leases
// and 3.x non-lease items alike). Used by tools and tests.
func (s *DynamoStore) RawItems(ctx context.Context) ([]map[string]types.AttributeValue, error) {
	var out []map[string]types.AttributeValue
	var mu sync.Mutex
	err := s.scan(ctx, func(items []map[string]types.AttributeValue) {
		mu.Lock()
		defer mu.Unlock()
		out = append(out, items...)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetLease reads one lease, with a consistent read unless s came from
// EventuallyConsistentGets. It returns nil, nil when the item is absent and
// an error wrapping ErrNotLease for non-lease items.
func (s *DynamoStore) GetLease(ctx context.Context, key string) (*Lease, error) {
	var out *dynamodb.GetItemOutput
	err := s.do(ctx, "get lease "+key, func(ctx context.Context) error {
		var err error
		out, err = s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: keyOf(key), ConsistentRead: aws.Bool(s.consistentGets)})
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	l, err := UnmarshalItem(out.Item)
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// CreateLeaseIfNotExists is W1: PutItem of the full lease with condition
// attribute_not_exists(leaseKey). It returns false, nil when the lease
// already exists.
func (s *DynamoStore) CreateLeaseIfNotExists(ctx context.Context, l Lease) (bool, error) {
	item, err := MarshalItem(l)
	if err != nil {
		return false, err
	}
	err = s.do(ctx, "create lease "+l.Key, func(ctx context.Context) error {
		_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                aws.String(s.table),
			Item:                     item,
			ConditionExpression:      aws.String("attribute_not_exists(#k)"),
			ExpressionAttributeNames: map[string]string{"#k": AttrLeaseKey},
		})
		return err
	})
	if errors.Is(err, ErrConditionFailed) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// update is one UpdateItem with a condition.
type update struct {
	set, remove, add []string
	cond             string
	names            map[string]string
	values           map[string]types.AttributeValue
	// returnOld asks DynamoDB for the item as it was when the condition
	// failed (ReturnValuesOnConditionCheckFailure ALL_OLD); ConditionItem
	// reads it from the error.
	returnOld bool
	// returnNew asks for the item as written (ReturnValues ALL_NEW).
	returnNew bool
}

func newUpdate() *update {
	return &update{names: map[string]string{}, values: map[string]types.AttributeValue{}}
}

func (u *update) name(attr string) string {
	n := "#" + attr
	u.names[n] = attr
	return n
}

func (u *update) val(name string, v types.AttributeValue) string {
	p := ":" + name
	u.values[p] = v
	return p
}

func (u *update) expr() string {
	var parts []string
	if len(u.set) > 0 {
		parts = append(parts, "SET "+strings.Join(u.set, ", "))
	}
	if len(u.remove) > 0 {
		parts = append(parts, "REMOVE "+strings.Join(u.remove, ", "))
	}
	if len(u.add) > 0 {
		parts = append(parts, "ADD "+strings.Join(u.add, ", "))
	}
	return strings.Join(parts, " ")
}

func (s *DynamoStore) runUpdate(ctx context.Context, op, key string, u *update) error {
	_, err := s.runUpdateItem(ctx, op, key, u)
	return err
}

// runUpdateItem runs u and returns the attributes DynamoDB sent back (the
// new item when u.returnNew).
func (s *DynamoStore) runUpdateItem(ctx context.Context, op, key string, u *update) (map[string]types.AttributeValue, error) {
	in := &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      keyOf(key),
		UpdateExpression:         aws.String(u.expr()),
		ExpressionAttributeNames: u.names,
	}
	if u.cond != "" {
		in.ConditionExpression = aws.String(u.cond)
	}
	if len(u.values) > 0 {
		in.ExpressionAttributeValues = u.values
	}
	if u.returnOld {
		in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	}
	if u.returnNew {
		in.ReturnValues = types.ReturnValueAllNew
	}
	var out *dynamodb.UpdateItemOutput
	err := s.do(ctx, op+" "+key, func(ctx context.Context) error {
		var err error
		out, err = s.client.UpdateItem(ctx, in)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out.Attributes, nil
}

// ConditionItem returns the lease DynamoDB sent back with a conditional
// write's CCF (ReturnValuesOnConditionCheckFailure ALL_OLD), or nil when the
// error carries none (DynamoDB Local and older emulators send none; Java
// DynamoDBLeaseRefresher.renewLease then re-reads the item).
func ConditionItem(err error) *Lease {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) || len(ccf.Item) == 0 {
		return nil
	}
	l, uerr := UnmarshalItem(ccf.Item)
	if uerr != nil {
		return nil
	}
	return &l
}

// counterCond adds "leaseCounter = :N" and "SET leaseCounter = :N1".
func (u *update) counterCond(n int64) {
	c := u.name(AttrLeaseCounter)
	u.cond = c + " = " + u.val("n", attrN(n))
	u.set = append(u.set, c+" = "+u.val("n1", attrN(n+1)))
}

// RenewLease is W2 (see Store).
func (s *DynamoStore) RenewLease(ctx context.Context, l Lease, threeX bool) error {
	u := newUpdate()
	u.counterCond(l.Counter)
	if threeX && l.CheckpointOwner == "" {
		u.cond += " AND attribute_not_exists(" + u.name(AttrCheckpointOwner) + ")"
		u.returnOld = true
	}
	// KCL 3.x writes the lease's throughput with the renew (Java
	// DynamoDBLeaseRefresher.renewLease); never on a 2.x table.
	if threeX && l.ThroughputKBps != nil {
		u.set = append(u.set, u.name(AttrThroughputKBps)+" = "+u.val("tp", &types.AttributeValueMemberN{Value: strconv.FormatFloat(*l.ThroughputKBps, 'f', -1, 64)}))
	}
	return s.runUpdate(ctx, "renew lease", l.Key, u)
}

// TakeLease is W3 (see Store).
func (s *DynamoStore) TakeLease(ctx context.Context, l Lease, owner string) error {
	u := newUpdate()
	u.counterCond(l.Counter)
	u.set = append(u.set, u.name(AttrLeaseOwner)+" = "+u.val("owner", attrS(owner)))
	u.remove = append(u.remove, u.name(AttrCheckpointOwner))
	if (l.Owner != "" && l.Owner != owner) || (l.CheckpointOwner != "" && l.CheckpointOwner == owner) {
		u.add = append(u.add, u.name(AttrOwnerSwitchesSinceCheckpoint)+" "+u.val("one", attrN(1)))
	}
	return s.runUpdate(ctx, "take lease", l.Key, u)
}

// UpdateCheckpoint is W4 (see Store): fenced by the counter only; resets
// ownerSwitchesSinceCheckpoint, clears the pending checkpoint fields and
// re-writes the meta-info Java's updateLease writes.
func (s *DynamoStore) UpdateCheckpoint(ctx context.Context, l Lease, cp seqnum.ESN) error {
	if err := cp.Validate(); err != nil {
		return err
	}
	u := newUpdate()
	u.counterCond(l.Counter)
	u.set = append(u.set,
		u.name(AttrCheckpoint)+" = "+u.val("cp", attrS(cp.Sequence)),
		u.name(AttrCheckpointSubSequenceNumber)+" = "+u.val("sub", attrN(cp.SubSequence)),
		u.name(AttrOwnerSwitchesSinceCheckpoint)+" = "+u.val("zero", attrN(0)),
	)
	u.remove = append(u.remove, u.name(AttrPendingCheckpoint), u.name(AttrPendingCheckpointSubSequence), u.name(AttrPendingCheckpointState))
	if len(l.ChildShardIDs) > 0 {
		u.set = append(u.set, u.name(AttrChildShardIDs)+" = "+u.val("children", attrSS(l.ChildShardIDs)))
	}
	if l.StartingHashKey != "" && l.EndingHashKey != "" {
		u.set = append(u.set,
			u.name(AttrStartingHashKey)+" = "+u.val("hs", attrS(l.StartingHashKey)),
			u.name(AttrEndingHashKey)+" = "+u.val("he", attrS(l.EndingHashKey)))
	}
	if l.StreamName != "" && l.ShardID != "" {
		u.set = append(u.set,
			u.name(AttrStreamName)+" = "+u.val("stream", attrS(l.StreamName)),
			u.name(AttrShardID)+" = "+u.val("shard", attrS(l.ShardID)))
	}
	return s.runUpdate(ctx, "checkpoint lease", l.Key, u)
}

// ReleaseLease gives a held lease up (beyond Java; see Store).
func (s *DynamoStore) ReleaseLease(ctx context.Context, l Lease, owner string) error {
	u := newUpdate()
	u.counterCond(l.Counter)
	u.cond += " AND " + u.name(AttrLeaseOwner) + " = " + u.val("owner", attrS(owner))
	u.remove = append(u.remove, u.name(AttrLeaseOwner))
	return s.runUpdate(ctx, "release lease", l.Key, u)
}

// ownerCond is "attr = :v", or attribute_not_exists(attr) when v is empty
// (Java DynamoDBLeaseSerializer.buildExpectedAttributeValueIfExistsOrValue).
func (u *update) ownerCond(attr, placeholder, v string) string {
	if v == "" {
		return "attribute_not_exists(" + u.name(attr) + ")"
	}
	return u.name(attr) + " = " + u.val(placeholder, attrS(v))
}

// existsCond is "leaseKey = :key": the lease still exists (Java
// DynamoDBLeaseSerializer.getDynamoExistentExpectation).
func (u *update) existsCond(key string) string {
	return u.name(AttrLeaseKey) + " = " + u.val("key", attrS(key))
}

// AssignLease is W8 (Java DynamoDBLeaseRefresher.assignLease; see Store).
func (s *DynamoStore) AssignLease(ctx context.Context, l Lease, newOwner string) (Lease, error) {
	u := newUpdate()
	u.cond = u.ownerCond(AttrLeaseOwner, "cur", l.Owner) + " AND " +
		u.ownerCond(AttrCheckpointOwner, "ckpt", l.CheckpointOwner) + " AND " + u.existsCond(l.Key)
	u.set = append(u.set, u.name(AttrLeaseOwner)+" = "+u.val("new", attrS(newOwner)))
	u.remove = append(u.remove, u.name(AttrCheckpointOwner))
	u.add = append(u.add, u.name(AttrLeaseCounter)+" "+u.val("one", attrN(1)))
	// Java DynamoDBLeaseSerializer.getDynamoTakeLeaseUpdate: a real owner
	// change, or the checkpoint owner getting the lease back.
	if (l.Owner != "" && l.Owner != newOwner) || (l.CheckpointOwner != "" && l.CheckpointOwner == newOwner) {
		u.add = append(u.add, u.name(AttrOwnerSwitchesSinceCheckpoint)+" :one")
	}
	u.returnOld, u.returnNew = true, true
	return s.leaseUpdate(ctx, "assign lease", l.Key, u)
}

// InitiateHandoff is W9 (Java DynamoDBLeaseRefresher.initiateGracefulLeaseHandoff;
// see Store).
func (s *DynamoStore) InitiateHandoff(ctx context.Context, l Lease, newOwner string) (Lease, error) {
	u := newUpdate()
	o := u.name(AttrLeaseOwner)
	u.cond = o + " = " + u.val("cur", attrS(l.Owner)) + " AND attribute_not_exists(" + u.name(AttrCheckpointOwner) +
		") AND " + u.existsCond(l.Key)
	u.set = append(u.set, o+" = "+u.val("new", attrS(newOwner)), u.name(AttrCheckpointOwner)+" = :cur")
	u.returnNew = true
	return s.leaseUpdate(ctx, "initiate lease hand-off", l.Key, u)
}

// leaseUpdate runs u (which asks for ALL_NEW) and decodes the written item.
func (s *DynamoStore) leaseUpdate(ctx context.Context, op, key string, u *update) (Lease, error) {
	item, err := s.runUpdateItem(ctx, op, key, u)
	if err != nil {
		return Lease{}, err
	}
	l, err := UnmarshalItem(item)
	if err != nil {
		return Lease{}, fmt.Errorf("%s %s: decoding the written item: %w", op, key, err)
	}
	return l, nil
}

// UpdateChildShardIDs is W5: SET childShardIds with condition that the lease
// exists (no counter check or bump). A missing lease is logged and ignored,
// as in Java.
func (s *DynamoStore) UpdateChildShardIDs(ctx context.Context, key string, children []string) error {
	if len(children) == 0 {
		return nil
	}
	u := newUpdate()
	k := u.name(AttrLeaseKey)
	u.cond = k + " = " + u.val("key", attrS(key))
	u.set = append(u.set, u.name(AttrChildShardIDs)+" = "+u.val("children", attrSS(children)))
	return s.metaUpdate(ctx, "update childShardIds", key, u)
}

// UpdateHashRange is W5: SET startingHashKey, endingHashKey (decimal strings)
// with condition that the lease exists. A missing lease is logged and ignored.
func (s *DynamoStore) UpdateHashRange(ctx context.Context, key, start, end string) error {
	if err := validateHashRange(start, end); err != nil {
		return fmt.Errorf("update hash range %s: %w", key, err)
	}
	u := newUpdate()
	k := u.name(AttrLeaseKey)
	u.cond = k + " = " + u.val("key", attrS(key))
	u.set = append(u.set,
		u.name(AttrStartingHashKey)+" = "+u.val("hs", attrS(start)),
		u.name(AttrEndingHashKey)+" = "+u.val("he", attrS(end)))
	return s.metaUpdate(ctx, "update hash range", key, u)
}

func (s *DynamoStore) metaUpdate(ctx context.Context, op, key string, u *update) error {
	err := s.runUpdate(ctx, op, key, u)
	if errors.Is(err, ErrConditionFailed) {
		s.log.Warn("meta-info update on a missing lease ignored", zap.String("op", op), zap.String("leaseKey", key))
		return nil
	}
	return err
}

// DeleteLease is W6: unconditional DeleteItem.
func (s *DynamoStore) DeleteLease(ctx context.Context, key string) error {
	return s.do(ctx, "delete lease "+key, func(ctx context.Context) error {
		_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: keyOf(key)})
		return err
	})
}

// KCL 3.x coordinator-state keys (Java LeaderLock.LEADER_HASH_KEY,
// MigrationState.MIGRATION_HASH_KEY) and client versions (Java ClientVersion).
const (
	LeaderKey           = "Leader"
	MigrationKey        = "Migration3.0"
	TableMigrationKey   = "TableMigration3.5"
	ClientVersion2X     = "CLIENT_VERSION_2X"
	ClientVersionUpgr   = "CLIENT_VERSION_UPGRADE_FROM_2X"
	ClientVersion3XRoll = "CLIENT_VERSION_3X_WITH_ROLLBACK"
	ClientVersion3X     = "CLIENT_VERSION_3X"
)

// LeaderLock is the KCL 3.x DynamoDB-lock-client "Leader" item.
type LeaderLock struct {
	Owner               string
	LeaseDuration       time.Duration
	RecordVersionNumber string
	Released            bool
}

// CoordinatorState is what multilangd reads of the KCL 3.x coordinator state.
type CoordinatorState struct {
	// ClientVersion is Migration3.0's cv; "" when absent (a 2.x table).
	ClientVersion string
	// Leader is the Leader lock item; nil when absent.
	Leader *LeaderLock
}

// ThreeX reports whether a Java 3.x fleet has put the table in a 3.x mode
// (renewals must then carry the checkpointOwner clause).
func (c CoordinatorState) ThreeX() bool {
	return c.ClientVersion == ClientVersion3X || c.ClientVersion == ClientVersion3XRoll || c.ClientVersion == ClientVersionUpgr
}

// LeaderElected reports whether 3.x lock-based leader election (and hence
// LAM assignment) is in force.
func (c CoordinatorState) LeaderElected() bool {
	return c.ClientVersion == ClientVersion3X || c.ClientVersion == ClientVersion3XRoll
}

// merge records the coordinator-state item stored under key (Migration3.0
// or Leader); values already known are kept, so the lease table's items win
// over the legacy table's.
func (c *CoordinatorState) merge(key string, item map[string]types.AttributeValue) {
	if len(item) == 0 {
		return
	}
	switch key {
	case MigrationKey:
		if cv, ok := getS(item, "cv"); ok && c.ClientVersion == "" {
			c.ClientVersion = cv
		}
	case LeaderKey:
		if c.Leader != nil {
			return
		}
		ll := &LeaderLock{}
		ll.Owner, _ = getS(item, "ownerName")
		ll.RecordVersionNumber, _ = getS(item, "recordVersionNumber")
		if d, ok := getS(item, "leaseDuration"); ok {
			if ms, err := strconv.ParseInt(d, 10, 64); err == nil {
				ll.LeaseDuration = time.Duration(ms) * time.Millisecond
			}
		}
		if r, ok := getS(item, "isReleased"); ok && r == "1" {
			ll.Released = true
		}
		c.Leader = ll
	}
}

// orElse fills what c lacks from other (c from the lease table, other from
// the legacy CoordinatorState table).
func (c CoordinatorState) orElse(other CoordinatorState) CoordinatorState {
	if c.ClientVersion == "" {
		c.ClientVersion = other.ClientVersion
	}
	if c.Leader == nil {
		c.Leader = other.Leader
	}
	return c
}

// CoordinatorState reads Migration3.0 and Leader from the lease table (3.5
// single-table) with consistent GetItems and, if configured, from the legacy
// CoordinatorState table. For tools and tests: the coordinator takes the
// lease-table items from its scans instead (ScanTable).
func (s *DynamoStore) CoordinatorState(ctx context.Context) (CoordinatorState, error) {
	var cs CoordinatorState
	for _, k := range []string{MigrationKey, LeaderKey} {
		item, err := s.getStateItem(ctx, s.table, AttrLeaseKey, k)
		if err != nil {
			return cs, err
		}
		cs.merge(k, item)
	}
	legacy, err := s.LegacyCoordinatorState(ctx)
	if err != nil {
		return cs, err
	}
	return cs.orElse(legacy), nil
}

// LegacyCoordinatorState reads the KCL 3.0–3.4 CoordinatorState table (see
// Store) with consistent reads, as Java CoordinatorStateDAO does; Leader is
// read only when Migration3.0 says a leader is elected.
func (s *DynamoStore) LegacyCoordinatorState(ctx context.Context) (CoordinatorState, error) {
	var cs CoordinatorState
	if s.coordTable == "" {
		return cs, nil
	}
	for _, k := range []string{MigrationKey, LeaderKey} {
		if k == LeaderKey && !cs.LeaderElected() {
			break
		}
		item, err := s.getStateItem(ctx, s.coordTable, "key", k)
		if errors.Is(err, ErrTableNotFound) {
			return CoordinatorState{}, nil
		}
		if err != nil {
			return cs, err
		}
		cs.merge(k, item)
	}
	return cs, nil
}

// getStateItem is one consistent GetItem of a coordinator-state item; nil
// when absent.
func (s *DynamoStore) getStateItem(ctx context.Context, table, pk, key string) (map[string]types.AttributeValue, error) {
	var out *dynamodb.GetItemOutput
	err := s.do(ctx, "get "+key+" from "+table, func(ctx context.Context) error {
		var err error
		out, err = s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table),
			Key: map[string]types.AttributeValue{pk: attrS(key)}, ConsistentRead: aws.Bool(true)})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}
