package lease

import (
	"math"
	"sync"
	"time"
)

// bytesPerKB is Java LeaseStatsRecorder.BYTES_PER_KB.
const bytesPerKB = 1024

// throughputAlpha is Java LeaseStatsRecorder.DEFAULT_ALPHA.
const throughputAlpha = 0.5

// ThroughputRecorder is Java LeaseStatsRecorder: the bytes handed to the
// record processor per lease, turned at each renewal into the lease's
// throughputKBps (written with the renew on a KCL 3.x table). Safe for
// concurrent use.
type ThroughputRecorder struct {
	period time.Duration // the renewer period
	mu     sync.Mutex
	stats  map[string][]leaseStat
	ema    map[string]*float64
}

type leaseStat struct {
	bytes int64
	at    time.Time
}

// NewThroughputRecorder returns a recorder for a renewer running every
// renewerPeriod.
func NewThroughputRecorder(renewerPeriod time.Duration) *ThroughputRecorder {
	return &ThroughputRecorder{period: renewerPeriod, stats: map[string][]leaseStat{}, ema: map[string]*float64{}}
}

// Record notes bytes handed to the processor of lease key at now (Java
// ProcessTask.publishLeaseStats: the data bytes of the delivered records).
func (r *ThroughputRecorder) Record(key string, bytes int64, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats[key] = append(r.stats[key], leaseStat{bytes: bytes, at: now})
}

// ThroughputKBps is Java LeaseStatsRecorder.getThroughputKBps plus the
// rounding of DynamoDBLeaseRenewer.renewLease: entries older than one
// renewer period are dropped, the rest summed, ÷1024 ÷ period in seconds,
// fed to an EMA (α 0.5, first value taken as is) and rounded to 6 decimals
// half up. nil when nothing was ever recorded for key.
func (r *ThroughputRecorder) ThroughputKBps(key string, now time.Time) *float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	q, ok := r.stats[key]
	if !ok {
		return nil
	}
	i := 0
	for i < len(q) && now.Sub(q[i].at) >= r.period {
		i++
	}
	q = q[i:]
	r.stats[key] = q
	var sum int64
	for _, s := range q {
		if s.at.After(now) {
			break
		}
		sum += s.bytes
	}
	v := float64(sum) / bytesPerKB / (float64(r.period.Milliseconds()) / 1000)
	if e := r.ema[key]; e != nil {
		v = throughputAlpha*v + (1-throughputAlpha)*(*e)
	}
	r.ema[key] = &v
	out := math.Floor(v*1e6+0.5) / 1e6
	return &out
}

// Seed records a newly held lease's stored throughput as bytes (Java
// DynamoDBLeaseRenewer.addLeasesToRenew).
func (r *ThroughputRecorder) Seed(l Lease, now time.Time) {
	if l.ThroughputKBps != nil {
		r.Record(l.Key, int64(math.Round(*l.ThroughputKBps*bytesPerKB)), now)
	}
}

// Drop forgets lease key (Java LeaseStatsRecorder.dropLeaseStats).
func (r *ThroughputRecorder) Drop(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.stats, key)
	delete(r.ema, key)
}
