package assemble

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/daemon"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/workermetrics"
)

// newMigration builds the KCL 3.x client-version follower and worker-metrics
// publisher (docs/compatibility.md "KCL 3.x") from clientVersionConfig and
// the workerMetrics* keys; coord's KCL 2.x leader decision picks the worker
// that flips an upgraded fleet to 3.x.
func newMigration(cfg *properties.Config, store *lease.DynamoStore, coord *lease.Coordinator, client *dynamodb.Client, log *zap.Logger) *workermetrics.Migration {
	return workermetrics.NewMigration(store, client, workermetrics.MigrationConfig{
		WorkerID:    cfg.WorkerID,
		Configured:  cfg.ClientVersionConfig,
		LeaseTable:  cfg.TableName,
		LegacyTable: cfg.WorkerMetricsTable.TableName,
		Reporter: workermetrics.Config{
			CaptureFrequency:  cfg.InMemoryWorkerMetricsCaptureFrequency,
			ReporterFrequency: cfg.WorkerMetricsReporterFreq,
			PersistedValues:   cfg.NoOfPersistedMetricsPerWorkerMetrics,
			DisableCPU:        cfg.DisableWorkerMetrics,
		},
		OnVersion: func(v string) { log.Info("KCL client version in force", zap.String("clientVersion", v)) },
		IsLeader:  coord.IsLeader,
	}, log)
}

// startMigration runs m until ctx is done or the returned stop is called;
// stop waits for it.
func startMigration(ctx context.Context, m *workermetrics.Migration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { // owned by stop, which waits for it
		defer close(done)
		m.Run(ctx)
	}()
	return func() { cancel(); <-done }
}

// throughputMetrics feeds the data bytes of every delivered batch to the
// coordinator, which writes each lease's throughputKBps with its renew on a
// KCL 3.x table (Java ProcessTask.publishLeaseStats).
type throughputMetrics struct{ coord *lease.Coordinator }

func (t throughputMetrics) RecordsProcessed(leaseKey string, b daemon.BatchStats) {
	if b.Delivered {
		t.coord.RecordDelivered(leaseKey, b.Bytes)
	}
}
func (throughputMetrics) TaskFailed(string)                      {}
func (throughputMetrics) LeaseReleased(string)                   {}
func (throughputMetrics) ConsumerStopped(string)                 {}
func (throughputMetrics) ChildInitialized(string, time.Duration) {}
func (throughputMetrics) ShardStuck(string, bool)                {}
