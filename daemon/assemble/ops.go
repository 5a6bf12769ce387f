package assemble

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/multilangd/multilangd/cwmetrics"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/retrieval"
	"github.com/multilangd/multilangd/seqnum"
)

// reachability tracks whether a dependency answers: the time of the first
// failure since the last answer (any HTTP response below 500 is an answer,
// a refusal included).
type reachability struct {
	name         string
	failingSince atomic.Int64 // unix nanos; 0 while it answers
}

func (r *reachability) observe(err error) {
	if answered(err) {
		r.failingSince.Store(0)
		return
	}
	if errors.Is(err, context.Canceled) {
		return // our own stop, not the dependency
	}
	r.failingSince.CompareAndSwap(0, time.Now().UnixNano())
}

// check fails once the dependency has not answered for longer than after.
func (r *reachability) check(after time.Duration) error {
	since := r.failingSince.Load()
	if since == 0 {
		return nil
	}
	if d := time.Since(time.Unix(0, since)); d > after {
		return fmt.Errorf("%s has not answered for %s", r.name, d.Round(time.Second))
	}
	return nil
}

// answered reports whether err is nil or an answer of the service.
func answered(err error) bool {
	if err == nil || errors.Is(err, lease.ErrConditionFailed) || errors.Is(err, lease.ErrThrottled) {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() < 500
}

// ops holds the operational instruments of one daemon: the CloudWatch
// publisher, the reachability of the lease table and the stream, and what
// the lease renewer did since the last RenewAllLeases datum.
type ops struct {
	cw     *cwmetrics.Publisher
	worker string
	table  reachability
	stream reachability

	renewActivity atomic.Int64 // unix nanos of the last renewal or take attempt (liveness)
	renewFailed   atomic.Bool  // a renewal failed since the last RenewAllLeases datum
	renewMax      atomic.Int64 // the slowest renewal since then (ns)
	lost          atomic.Int64 // leases lost since then
	listStart     atomic.Int64 // unix nanos the taker's last ListLeases started
	listFailed    atomic.Bool  // that ListLeases failed
}

func newOps(cw *cwmetrics.Publisher, worker string) *ops {
	o := &ops{cw: cw, worker: worker, table: reachability{name: "lease table"}, stream: reachability{name: "stream"}}
	o.renewActivity.Store(time.Now().UnixNano())
	return o
}

// workerScope is a scope with the WorkerIdentifier dimension (Java
// DynamoDBLeaseRenewer / DynamoDBLeaseTaker).
func (o *ops) workerScope(operation string) *cwmetrics.Scope {
	return o.cw.Scope(operation).AddDimension(cwmetrics.DimWorker, o.worker)
}

// shardScope is a scope with the ShardId dimension (Java ProcessTask).
// leaseKey names the shard (daemon.Metrics); a multi-stream lease adds
// Java's StreamId dimension (MetricsUtil.addStreamId), published only when
// metricsEnabledDimensions enables it, as in Java.
func (o *ops) shardScope(operation, leaseKey string) *cwmetrics.Scope {
	if stream, shardID, ok := lease.ParseMultiStreamKey(leaseKey); ok {
		return o.cw.Scope(operation).AddDimension(cwmetrics.DimShardID, shardID).AddDimension(cwmetrics.DimStreamID, stream)
	}
	return o.cw.Scope(operation).AddDimension(cwmetrics.DimShardID, leaseKey)
}

// renewersAlive is the lease half of liveness: while leases are held, a
// renewal (or take) was attempted within within.
func (o *ops) renewersAlive(held int, within time.Duration) error {
	if held == 0 {
		return nil
	}
	if d := time.Since(time.Unix(0, o.renewActivity.Load())); d > within {
		return fmt.Errorf("no lease renewal attempted for %s while holding %d leases", d.Round(time.Second), held)
	}
	return nil
}

// renewAllLeases publishes Java's per-pass RenewAllLeases datums
// (DynamoDBLeaseRenewer.renewLeases) once per renewer period: the renewer
// here renews each lease on its own, so Success is 0 when any renewal of the
// period failed and Time is the slowest renewal.
func (o *ops) renewAllLeases(held int) {
	o.workerScope("RenewAllLeases").
		Add("LostLeases", float64(o.lost.Swap(0)), count, cwmetrics.Summary).
		Add("CurrentLeases", float64(held), count, cwmetrics.Summary).
		AddSuccessAndLatency("", !o.renewFailed.Swap(false), time.Duration(o.renewMax.Swap(0)), cwmetrics.Summary).
		End()
}

// takeLeases publishes a taker run's TakeLeases datums (Java
// DynamoDBLeaseTaker.takeLeases and computeLeasesToTake).
func (o *ops) takeLeases(r lease.TakeResult) {
	if r.Skipped != "" {
		return
	}
	var took time.Duration
	if s := o.listStart.Load(); s != 0 {
		took = time.Since(time.Unix(0, s))
	}
	o.workerScope("TakeLeases").
		Add("ExpiredLeases", float64(r.Expired), count, cwmetrics.Summary).
		Add("LeaseSpillover", float64(r.Spillover), count, cwmetrics.Summary).
		Add("LeasesToTake", float64(r.LeasesToTake), count, cwmetrics.Detailed).
		Add("NeededLeases", float64(max(r.Needed, 0)), count, cwmetrics.Detailed).
		Add("NumWorkers", float64(r.NumWorkers), count, cwmetrics.Summary).
		Add("TotalLeases", float64(r.TotalLeases), count, cwmetrics.Detailed).
		Add("VeryOldLeases", float64(r.VeryOld), count, cwmetrics.Summary).
		Add("TakenLeases", float64(r.Taken), count, cwmetrics.Summary).
		Add("UntakenLeases", float64(r.Untaken), count, cwmetrics.Summary).
		AddSuccessAndLatency("", !o.listFailed.Load(), took, cwmetrics.Summary).
		End()
}

// observedStore is the lease store as the coordinator and the consumers use
// it, with every call observed for reachability and the lease calls for
// Java's DETAILED RenewLease / ListLeases / TakeLease datums.
type observedStore struct {
	lease.Store
	o *ops
}

// leaseCallOK is Java's success of a lease call: no exception; a failed
// condition is an answer (the lease is lost or taken), not a failure.
func leaseCallOK(err error) bool { return err == nil || errors.Is(err, lease.ErrConditionFailed) }

func (s observedStore) RenewLease(ctx context.Context, l lease.Lease, threeX bool) error {
	start := time.Now()
	s.o.renewActivity.Store(start.UnixNano())
	err := s.Store.RenewLease(ctx, l, threeX)
	took := time.Since(start)
	s.o.table.observe(err)
	if !leaseCallOK(err) && ctx.Err() == nil {
		s.o.renewFailed.Store(true)
	}
	for prev := s.o.renewMax.Load(); int64(took) > prev && !s.o.renewMax.CompareAndSwap(prev, int64(took)); prev = s.o.renewMax.Load() {
	}
	s.o.workerScope("RenewAllLeases").AddSuccessAndLatency("RenewLease", leaseCallOK(err), took, cwmetrics.Detailed).End()
	return err
}

// ScanTable is the taker's scan (Java DynamoDBLeaseTaker.updateAllLeases →
// listLeases), published as TakeLeases ListLeases.
func (s observedStore) ScanTable(ctx context.Context) (lease.TableScan, error) {
	start := time.Now()
	s.o.listStart.Store(start.UnixNano())
	ts, err := s.Store.ScanTable(ctx)
	s.o.table.observe(err)
	s.o.listFailed.Store(err != nil)
	s.o.workerScope("TakeLeases").AddSuccessAndLatency("ListLeases", err == nil, time.Since(start), cwmetrics.Detailed).End()
	return ts, err
}

func (s observedStore) TakeLease(ctx context.Context, l lease.Lease, owner string) error {
	start := time.Now()
	s.o.renewActivity.Store(start.UnixNano())
	err := s.Store.TakeLease(ctx, l, owner)
	s.o.table.observe(err)
	s.o.workerScope("TakeLeases").AddSuccessAndLatency("TakeLease", leaseCallOK(err), time.Since(start), cwmetrics.Detailed).End()
	return err
}

func (s observedStore) GetLease(ctx context.Context, key string) (*lease.Lease, error) {
	l, err := s.Store.GetLease(ctx, key)
	s.o.table.observe(err)
	return l, err
}

func (s observedStore) UpdateCheckpoint(ctx context.Context, l lease.Lease, cp seqnum.ESN) error {
	err := s.Store.UpdateCheckpoint(ctx, l, cp)
	s.o.table.observe(err)
	return err
}

func (s observedStore) ReleaseLease(ctx context.Context, l lease.Lease, owner string) error {
	err := s.Store.ReleaseLease(ctx, l, owner)
	s.o.table.observe(err)
	return err
}

func (s observedStore) LegacyCoordinatorState(ctx context.Context) (lease.CoordinatorState, error) {
	cs, err := s.Store.LegacyCoordinatorState(ctx)
	s.o.table.observe(err)
	return cs, err
}

// observedKinesis is one shard's Kinesis client for its record source, with
// every call observed for reachability and Java's KinesisDataFetcher
// datums (DETAILED) and ExpiredIterator (PrefetchRecordsPublisher, SUMMARY).
type observedKinesis struct {
	retrieval.KinesisAPI
	o        *ops
	leaseKey string // names the shard (daemon.Metrics)
}

func (k observedKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	start := time.Now()
	out, err := k.KinesisAPI.GetRecords(ctx, in, optFns...)
	k.observe(ctx, "KinesisDataFetcher.getRecords", start, err)
	var expired *ktypes.ExpiredIteratorException
	if errors.As(err, &expired) {
		k.o.cw.Scope("ProcessTask").Add("ExpiredIterator", 1, count, cwmetrics.Summary).End()
	}
	return out, err
}

func (k observedKinesis) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	start := time.Now()
	out, err := k.KinesisAPI.GetShardIterator(ctx, in, optFns...)
	k.observe(ctx, "KinesisDataFetcher.getShardIterator", start, err)
	return out, err
}

func (k observedKinesis) observe(ctx context.Context, name string, start time.Time, err error) {
	if ctx.Err() != nil {
		return // cancelled by us: says nothing about Kinesis
	}
	k.o.stream.observe(err)
	k.o.shardScope("ProcessTask", k.leaseKey).AddSuccessAndLatency(name, err == nil, time.Since(start), cwmetrics.Detailed).End()
}

// observedSubscribe is the enhanced fan-out SubscribeToShard call, observed
// for the stream's reachability.
type observedSubscribe struct {
	retrieval.SubscribeAPI
	o *ops
}

func (s observedSubscribe) Subscribe(ctx context.Context, in *kinesis.SubscribeToShardInput) (retrieval.EventStream, error) {
	es, err := s.SubscribeAPI.Subscribe(ctx, in)
	if ctx.Err() == nil {
		s.o.stream.observe(err)
	}
	return es, err
}
