// Package faultproxy is an HTTP reverse proxy put in front of an AWS
// emulator by the reliability suite (docs/reliability.md). A Fault set at
// run time makes it add latency, reset connections, answer 5xx or an AWS
// JSON error (ProvisionedThroughputExceededException, ThrottlingException,
// LimitExceededException, ExpiredIteratorException, ...) instead of
// forwarding, for every request or only for some operations.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault describes what the proxy does to a matching request. The zero Fault
// forwards everything.
type Fault struct {
	// Ops limits the fault to these operations (the part of X-Amz-Target
	// after the dot, e.g. "GetRecords"); empty means every operation.
	Ops []string
	// Permille is the share of matching requests affected (0 means all).
	Permille int
	// Latency delays the request before it is forwarded (or failed).
	Latency time.Duration
	// Reset closes the connection without an answer (TCP RST).
	Reset bool
	// Status, when set, answers with this HTTP status and, if ErrorType is
	// set, the AWS JSON error body {"__type": ErrorType}.
	Status    int
	ErrorType string
}

func (f Fault) matches(op string, rng func() int) bool {
	if len(f.Ops) > 0 {
		found := false
		for _, o := range f.Ops {
			found = found || o == op
		}
		if !found {
			return false
		}
	}
	return f.Permille == 0 || rng() < f.Permille
}

// Proxy forwards to one emulator endpoint.
type Proxy struct {
	// URL is the proxy's base URL (http://127.0.0.1:port).
	URL string

	rp       *httputil.ReverseProxy
	srv      *http.Server
	ln       net.Listener
	served   chan error
	mu       sync.Mutex
	fault    Fault
	rng      *rand.Rand
	injected atomic.Int64
}

// Start listens on a free loopback port and forwards to target.
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{URL: "http://" + ln.Addr().String(), ln: ln, served: make(chan error, 1), rng: rand.New(rand.NewSource(1))}
	p.rp = httputil.NewSingleHostReverseProxy(u)
	p.rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	p.rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, context.Canceled) {
			return
		}
		http.Error(w, "faultproxy: upstream: "+err.Error(), http.StatusBadGateway)
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { p.served <- p.srv.Serve(ln) }()
	return p, nil
}

// Set replaces the fault (Fault{} heals).
func (p *Proxy) Set(f Fault) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// Injected returns how many requests a fault was applied to.
func (p *Proxy) Injected() int64 { return p.injected.Load() }

// Close stops the proxy and waits for its server loop.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	<-p.served
	return err
}

// Operation returns the AWS operation of a JSON-protocol request
// (X-Amz-Target "Kinesis_20131202.GetRecords" -> "GetRecords").
func Operation(r *http.Request) string {
	t := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		return t[i+1:]
	}
	return t
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	f := p.fault
	hit := f.matches(Operation(r), func() int { return p.rng.Intn(1000) })
	p.mu.Unlock()
	if !hit || !f.active() {
		p.rp.ServeHTTP(w, r)
		return
	}
	p.injected.Add(1)
	if f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case f.Reset:
		reset(w)
	case f.Status != 0:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if f.ErrorType != "" {
			w.Header().Set("X-Amzn-ErrorType", f.ErrorType)
		}
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, `{"__type":%q,"message":"injected by faultproxy"}`, f.ErrorType)
	default:
		p.rp.ServeHTTP(w, r)
	}
}

// active reports whether the fault does anything.
func (f Fault) active() bool { return f.Latency > 0 || f.Reset || f.Status != 0 }

// reset hijacks the connection and closes it with SO_LINGER 0 (RST).
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
