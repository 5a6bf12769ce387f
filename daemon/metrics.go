package daemon

// Metrics receives the scheduler's per-shard events (Prometheus, CloudWatch,
// tests). Implementations must be safe for concurrent use and must not block.
type Metrics interface {
	// RecordsProcessed is called after a successful processRecords with the
	// number of records delivered and the batch's MillisBehindLatest.
	RecordsProcessed(shardID string, records int, millisBehindLatest *int64)
	// TaskFailed is called for every failed task (child or dependency).
	TaskFailed(shardID string)
	// LeaseReleased is called when a lease is released after repeated failures.
	LeaseReleased(shardID string)
	// ConsumerStopped is called when a shard's consumer has ended (lease
	// lost, shard end, stop, release): per-shard gauges such as
	// MillisBehindLatest no longer describe this worker.
	ConsumerStopped(shardID string)
}

type nopMetrics struct{}

func (nopMetrics) RecordsProcessed(string, int, *int64) {}
func (nopMetrics) TaskFailed(string)                    {}
func (nopMetrics) LeaseReleased(string)                 {}
func (nopMetrics) ConsumerStopped(string)               {}
