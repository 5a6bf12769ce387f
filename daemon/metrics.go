package daemon

import "time"

// Metrics receives the scheduler's per-shard events (Prometheus, CloudWatch,
// tests). Implementations must be safe for concurrent use and must not block.
// Each event names the shard by its lease key: the shard id in a
// single-stream application, account:stream:epoch:shardId in a multi-stream
// one (docs/multistream.md), so shards of two streams never share a series.
type Metrics interface {
	// RecordsProcessed is called for every batch the record source handed
	// over (Java ProcessTask), after the child's processRecords when it was
	// called (Delivered).
	RecordsProcessed(leaseKey string, b BatchStats)
	// TaskFailed is called for every failed task (child or dependency).
	TaskFailed(leaseKey string)
	// LeaseReleased is called when a lease is released after repeated failures.
	LeaseReleased(leaseKey string)
	// ConsumerStopped is called when a shard's consumer has ended (lease
	// lost, shard end, stop, release): per-shard gauges such as
	// MillisBehindLatest no longer describe this worker.
	ConsumerStopped(leaseKey string)
	// ChildInitialized is called after the child answered initialize (Java
	// InitializeTask RecordProcessor.initialize.Time).
	ChildInitialized(leaseKey string, took time.Duration)
	// ShardStuck is called when the stuck-shard watchdog starts or stops
	// reporting the shard (docs/operations.md "Stuck-shard watchdog").
	ShardStuck(leaseKey string, stuck bool)
}

// BatchStats describes one batch and its processRecords call.
type BatchStats struct {
	// Delivered is set when processRecords was called (non-empty batch, or
	// callProcessRecordsEvenForEmptyRecordList).
	Delivered bool
	// Records and Bytes are the user records delivered and their data
	// bytes; Min/MaxRecordBytes the smallest and largest record.
	Records, Bytes                 int
	MinRecordBytes, MaxRecordBytes int
	// MillisBehindLatest is the batch's value (nil when Kinesis gave none).
	MillisBehindLatest *int64
	// ProcessRecords is how long the child took to answer processRecords.
	ProcessRecords time.Duration
	// Task is the whole task: drop, checkpointer update and processRecords.
	Task time.Duration
}

type nopMetrics struct{}

func (nopMetrics) RecordsProcessed(string, BatchStats)    {}
func (nopMetrics) TaskFailed(string)                      {}
func (nopMetrics) LeaseReleased(string)                   {}
func (nopMetrics) ConsumerStopped(string)                 {}
func (nopMetrics) ChildInitialized(string, time.Duration) {}
func (nopMetrics) ShardStuck(string, bool)                {}
