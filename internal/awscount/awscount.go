// Package awscount is a counting reverse proxy for the AWS JSON protocols
// (DynamoDB, Kinesis): put it in front of an emulator and point the daemon at
// it, and it records every request by operation (X-Amz-Target), table and
// read consistency, with the capacity units DynamoDB reports. The DynamoDB
// cost benchmark and the tests that pin which requests multilangd makes
// (and that its IAM policy allows them) use it.
//
// To learn the capacity of each request the proxy adds
// "ReturnConsumedCapacity": "TOTAL" to DynamoDB requests that accept it; this
// changes the signed body, which the emulators do not verify. It is for
// tests and benchmarks only.
package awscount

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Key identifies one kind of request.
type Key struct {
	// Service is the X-Amz-Target prefix's service, "dynamodb" or "kinesis".
	Service string
	// Action is the API operation, e.g. "Scan".
	Action string
	// Resource is the DynamoDB TableName or the Kinesis ConsumerARN,
	// StreamARN or StreamName (the first present); "" when the request names
	// none (GetRecords).
	Resource string
	// ConsumerName is the Kinesis ConsumerName of a request that names the
	// consumer by stream and name.
	ConsumerName string
	// Consistent is the request's ConsistentRead (DynamoDB reads only).
	Consistent bool
	// Segmented is set for a parallel scan (TotalSegments present).
	Segmented bool
}

// Stat is what was seen for one Key.
type Stat struct {
	Requests int
	// Errors counts responses with an HTTP status ≥ 400 (including
	// ConditionalCheckFailedException).
	Errors int
	// ErrorTypes counts the __type of error responses, e.g.
	// "ConditionalCheckFailedException".
	ErrorTypes map[string]int
	// CapacityUnits sums the ConsumedCapacity DynamoDB reported; failed
	// requests report none (see Estimate).
	CapacityUnits float64
}

// Proxy is a running counting proxy.
type Proxy struct {
	// URL is the proxy's base URL (http://127.0.0.1:port).
	URL string

	srv *http.Server
	ln  net.Listener
	rp  *httputil.ReverseProxy

	mu    sync.Mutex
	stats map[Key]*Stat
	epoch int // bumped by Reset: responses to older requests are not counted
	done  chan struct{}
}

// Start listens on a free loopback port and forwards to target (an
// emulator's base URL).
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("awscount: target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("awscount: listen: %w", err)
	}
	p := &Proxy{URL: "http://" + ln.Addr().String(), ln: ln, stats: map[Key]*Stat{}, done: make(chan struct{})}
	p.rp = httputil.NewSingleHostReverseProxy(u)
	p.rp.ModifyResponse = p.observeResponse
	p.rp.FlushInterval = -1 // stream SubscribeToShard events as they come
	p.rp.Transport = h2cForHTTP2{}
	// Enhanced fan-out clients speak HTTP/2 with prior knowledge (h2c) to
	// plain-HTTP endpoints; everything else is HTTP/1.1.
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), Protocols: &protos}
	go func() { // owned by Close, which waits for done
		defer close(p.done)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// h2cForHTTP2 forwards a request that came in over HTTP/2 with h2c and
// any other over HTTP/1.1.
type h2cForHTTP2 struct{}

var (
	http1Transport = http.DefaultTransport
	h2cTransport   = func() http.RoundTripper {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		return &http.Transport{Protocols: &p}
	}()
)

func (h2cForHTTP2) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.ProtoMajor == 2 {
		return h2cTransport.RoundTrip(r)
	}
	return http1Transport.RoundTrip(r)
}

// Close stops the proxy and waits for its server goroutine.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	<-p.done
	return err
}

type keyCtx struct{}

// tagged is what the request context carries to observeResponse.
type tagged struct {
	key   Key
	epoch int
}

// capacityActions accept ReturnConsumedCapacity.
var capacityActions = map[string]bool{
	"GetItem": true, "PutItem": true, "UpdateItem": true, "DeleteItem": true,
	"Scan": true, "Query": true, "BatchGetItem": true, "BatchWriteItem": true,
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	svc, action, _ := strings.Cut(target, ".")
	k := Key{Action: action}
	switch {
	case strings.HasPrefix(svc, "DynamoDB"):
		k.Service = "dynamodb"
	case strings.HasPrefix(svc, "Kinesis"):
		k.Service = "kinesis"
	default:
		k.Service = strings.ToLower(svc)
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req map[string]any
	if json.Unmarshal(body, &req) == nil {
		for _, f := range []string{"TableName", "ConsumerARN", "StreamARN", "StreamName"} {
			if s, ok := req[f].(string); ok && k.Resource == "" {
				k.Resource = s
			}
		}
		if c, ok := req["ConsumerName"].(string); ok {
			k.ConsumerName = c
		}
		if b, ok := req["ConsistentRead"].(bool); ok {
			k.Consistent = b
		}
		if _, ok := req["TotalSegments"]; ok {
			k.Segmented = true
		}
		if k.Service == "dynamodb" && capacityActions[action] {
			if _, ok := req["ReturnConsumedCapacity"]; !ok {
				req["ReturnConsumedCapacity"] = "TOTAL"
				if nb, err := json.Marshal(req); err == nil {
					body = nb
				}
			}
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", fmt.Sprint(len(body)))
	// The body changed: its SDK checksum header no longer applies.
	r.Header.Del("X-Amz-Content-Sha256")
	p.mu.Lock()
	p.stat(k).Requests++
	epoch := p.epoch
	p.mu.Unlock()
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyCtx{}, tagged{k, epoch})))
}

// stat returns the entry for k. p.mu must be held.
func (p *Proxy) stat(k Key) *Stat {
	s := p.stats[k]
	if s == nil {
		s = &Stat{ErrorTypes: map[string]int{}}
		p.stats[k] = s
	}
	return s
}

func (p *Proxy) observeResponse(resp *http.Response) error {
	tag, ok := resp.Request.Context().Value(keyCtx{}).(tagged)
	if !ok {
		return nil
	}
	k := tag.key
	if !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		// An event stream (SubscribeToShard): count it, leave it streaming.
		p.mu.Lock()
		defer p.mu.Unlock()
		if tag.epoch == p.epoch && resp.StatusCode >= 400 {
			s := p.stat(k)
			s.Errors++
			s.ErrorTypes[fmt.Sprint(resp.StatusCode)]++
		}
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var out struct {
		Type             string `json:"__type"`
		ConsumedCapacity *struct {
			CapacityUnits float64
		}
	}
	_ = json.Unmarshal(body, &out)
	p.mu.Lock()
	defer p.mu.Unlock()
	if tag.epoch != p.epoch {
		return nil // sent before the last Reset
	}
	s := p.stat(k)
	if resp.StatusCode >= 400 {
		s.Errors++
		t := out.Type
		if i := strings.LastIndex(t, "#"); i >= 0 {
			t = t[i+1:]
		}
		s.ErrorTypes[t]++
	}
	if out.ConsumedCapacity != nil {
		s.CapacityUnits += out.ConsumedCapacity.CapacityUnits
	}
	return nil
}

// Snapshot returns a copy of the counts so far.
func (p *Proxy) Snapshot() map[Key]Stat {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Key]Stat, len(p.stats))
	for k, s := range p.stats {
		c := *s
		c.ErrorTypes = make(map[string]int, len(s.ErrorTypes))
		for t, n := range s.ErrorTypes {
			c.ErrorTypes[t] = n
		}
		out[k] = c
	}
	return out
}

// Reset forgets every count (for measuring a steady-state window).
func (p *Proxy) Reset() {
	p.mu.Lock()
	p.stats = map[Key]*Stat{}
	p.epoch++
	p.mu.Unlock()
}

// Keys returns the keys of a snapshot in a stable order.
func Keys(snap map[Key]Stat) []Key {
	keys := make([]Key, 0, len(snap))
	for k := range snap {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Action != b.Action {
			return a.Action < b.Action
		}
		if a.Resource != b.Resource {
			return a.Resource < b.Resource
		}
		return !a.Consistent && b.Consistent
	})
	return keys
}

// Estimate is the capacity a request kind costs on DynamoDB: the units the
// service reported plus, for failed conditional writes (which consume write
// capacity but report none), one write unit each (lease items are < 1 KB).
func Estimate(k Key, s Stat) (rcu, wcu float64) {
	switch k.Action {
	case "GetItem", "Scan", "Query", "BatchGetItem":
		return s.CapacityUnits, 0
	case "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem":
		return 0, s.CapacityUnits + float64(s.ErrorTypes["ConditionalCheckFailedException"])
	}
	return 0, 0
}
