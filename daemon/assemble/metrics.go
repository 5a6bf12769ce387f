package assemble

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/daemon"
)

// promMetrics implements daemon.Metrics with Prometheus collectors named
// after the KCL metrics (RecordsProcessed, MillisBehindLatest, …).
type promMetrics struct {
	records  *prometheus.CounterVec
	behind   *prometheus.GaugeVec
	failures *prometheus.CounterVec
	released *prometheus.CounterVec
	stuck    *prometheus.GaugeVec
}

func newPromMetrics(reg prometheus.Registerer, status func() []daemon.ShardStatus, held func() int) *promMetrics {
	m := &promMetrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multilangd_records_processed_total",
			Help: "User records delivered to record processors (KCL RecordsProcessed).",
		}, []string{"shard_id"}),
		behind: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "multilangd_millis_behind_latest",
			Help: "MillisBehindLatest of the last batch delivered (KCL MillisBehindLatest).",
		}, []string{"shard_id"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multilangd_task_failures_total",
			Help: "Failed shard tasks (child start/exit/protocol/timeout, Kinesis or DynamoDB errors).",
		}, []string{"shard_id"}),
		released: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multilangd_leases_released_after_failures_total",
			Help: "Leases released after maxChildFailures consecutive failures.",
		}, []string{"shard_id"}),
		stuck: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "multilangd_shard_stuck",
			Help: "1 while the stuck-shard watchdog reports the shard (data waiting, no progress for stuckShardThresholdMillis).",
		}, []string{"shard_id"}),
	}
	reg.MustRegister(m.records, m.behind, m.failures, m.released, m.stuck,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "multilangd_leases_held",
			Help: "Leases this worker holds (KCL CurrentLeases).",
		}, func() float64 { return float64(held()) }),
		&consumerCollector{status: status, desc: prometheus.NewDesc("multilangd_shard_consumers",
			"Running shard consumers by state.", []string{"state"}, nil)},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *promMetrics) RecordsProcessed(leaseKey string, b daemon.BatchStats) {
	if b.Records > 0 {
		m.records.WithLabelValues(leaseKey).Add(float64(b.Records))
	}
	if b.MillisBehindLatest != nil {
		m.behind.WithLabelValues(leaseKey).Set(float64(*b.MillisBehindLatest))
	}
}

// ConsumerStopped drops the shard's lag and stuck gauges: once the shard is
// no longer consumed here their last values would stay frozen (and their
// labels forever).
func (m *promMetrics) ConsumerStopped(leaseKey string) {
	m.behind.DeleteLabelValues(leaseKey)
	m.stuck.DeleteLabelValues(leaseKey)
}

func (m *promMetrics) ShardStuck(leaseKey string, stuck bool) {
	if stuck {
		m.stuck.WithLabelValues(leaseKey).Set(1)
		return
	}
	m.stuck.DeleteLabelValues(leaseKey)
}

func (m *promMetrics) ChildInitialized(string, time.Duration) {}

func (m *promMetrics) TaskFailed(leaseKey string)    { m.failures.WithLabelValues(leaseKey).Inc() }
func (m *promMetrics) LeaseReleased(leaseKey string) { m.released.WithLabelValues(leaseKey).Inc() }

// consumerCollector reports the consumers per state at scrape time.
type consumerCollector struct {
	status func() []daemon.ShardStatus
	desc   *prometheus.Desc
}

func (c *consumerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *consumerCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{}
	for _, st := range []daemon.State{daemon.WaitingOnParentShards, daemon.Initializing, daemon.Processing, daemon.ShuttingDown} {
		counts[st.String()] = 0
	}
	for _, s := range c.status() {
		counts[s.State.String()]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), state)
	}
}

// probes are the health checks served over HTTP.
type probes struct {
	// live is /healthz (liveness), ready is /readyz (readiness).
	live, ready func() error
}

// httpServer serves /metrics, /healthz and /readyz until stopped.
type httpServer struct {
	srv  *http.Server
	ln   net.Listener
	wg   sync.WaitGroup
	log  *zap.Logger
	addr string
}

// startHTTP listens on addr and serves the registry and the health check.
func startHTTP(addr string, reg *prometheus.Registry, pr probes, log *zap.Logger) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metricsListenAddress %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", probeHandler(pr.live))
	mux.HandleFunc("/readyz", probeHandler(pr.ready))
	h := &httpServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln: ln, log: log, addr: ln.Addr().String()}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", zap.Error(err))
		}
	}()
	log.Info("serving /metrics, /healthz and /readyz", zap.String("address", h.addr))
	return h, nil
}

// stop shuts the server down and waits for it.
func (h *httpServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.srv.Shutdown(ctx)
	h.wg.Wait()
}

// probeHandler answers 200 "ok" while check passes, 503 with the reason otherwise.
func probeHandler(check func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if err := check(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}
}
