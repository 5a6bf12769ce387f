package testenv

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/cbor"
)

// CloudWatch is a local stand-in for the CloudWatch PutMetricData API (the
// SDK's rpc-v2-cbor protocol). It accepts a request only when its SigV4
// signature, recomputed with AccessKey/SecretKey for service "monitoring",
// matches, and decodes every datum. Down makes it answer 500 (an outage).
type CloudWatch struct {
	Endpoint string
	srv      *httptest.Server

	mu       sync.Mutex
	requests []PutMetricData
	rejected []string
	down     bool
}

// PutMetricData is one decoded request.
type PutMetricData struct {
	Namespace string
	Datums    []Datum
}

// Datum is one decoded MetricDatum with its statistic set.
type Datum struct {
	Name                               string
	Unit                               string
	Dimensions                         map[string]string
	SampleCount, Sum, Minimum, Maximum float64
}

// Key is "Name{Dim=Value,...}" with dimensions sorted by name.
func (d Datum) Key() string {
	names := make([]string, 0, len(d.Dimensions))
	for n := range d.Dimensions {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + d.Dimensions[n]
	}
	return d.Name + "{" + strings.Join(parts, ",") + "}"
}

// StartCloudWatch starts the stand-in; Close stops it.
func StartCloudWatch() *CloudWatch {
	c := &CloudWatch{}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	c.Endpoint = c.srv.URL
	return c
}

// Close stops the server.
func (c *CloudWatch) Close() { c.srv.Close() }

// SetDown starts (true) or ends an outage.
func (c *CloudWatch) SetDown(down bool) {
	c.mu.Lock()
	c.down = down
	c.mu.Unlock()
}

// Requests returns the accepted requests so far.
func (c *CloudWatch) Requests() []PutMetricData {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]PutMetricData(nil), c.requests...)
}

// Rejected returns why requests were rejected (bad signature, undecodable).
func (c *CloudWatch) Rejected() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.rejected...)
}

func (c *CloudWatch) reject(w http.ResponseWriter, status int, why string) {
	c.mu.Lock()
	c.rejected = append(c.rejected, why)
	c.mu.Unlock()
	http.Error(w, why, status)
}

func (c *CloudWatch) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		c.reject(w, http.StatusBadRequest, err.Error())
		return
	}
	c.mu.Lock()
	down := c.down
	c.mu.Unlock()
	if down {
		http.Error(w, "outage", http.StatusInternalServerError)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/operation/PutMetricData") {
		c.reject(w, http.StatusBadRequest, "unexpected operation "+r.URL.Path)
		return
	}
	if err := verifySigV4(r, body, "monitoring"); err != nil {
		c.reject(w, http.StatusForbidden, "signature: "+err.Error())
		return
	}
	payload := body
	if r.Header.Get("Content-Encoding") == "gzip" { // the SDK compresses PutMetricData
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			payload, err = io.ReadAll(zr)
		}
		if err != nil {
			c.reject(w, http.StatusBadRequest, "gzip: "+err.Error())
			return
		}
	}
	req, err := decodePutMetricData(payload)
	if err != nil {
		c.reject(w, http.StatusBadRequest, "decode: "+err.Error())
		return
	}
	c.mu.Lock()
	c.requests = append(c.requests, req)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	_, _ = w.Write(cbor.Encode(cbor.Map{}))
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$`)

// verifySigV4 recomputes the request's signature with the test credentials
// over the headers it signed and compares.
func verifySigV4(r *http.Request, body []byte, service string) error {
	m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return fmt.Errorf("no SigV4 Authorization header: %q", r.Header.Get("Authorization"))
	}
	if m[1] != AccessKey || m[4] != service {
		return fmt.Errorf("credential scope %s/%s, want %s/%s", m[1], m[4], AccessKey, service)
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("X-Amz-Date: %w", err)
	}
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	re, err := http.NewRequest(r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	for _, h := range strings.Split(m[5], ";") {
		if h == "host" {
			continue
		}
		for _, v := range r.Header.Values(h) {
			re.Header.Add(h, v)
		}
	}
	re.Header.Del("Authorization")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: AccessKey, SecretAccessKey: SecretKey}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, re, hex.EncodeToString(sum[:]), service, m[3], at); err != nil {
		return err
	}
	want := authRE.FindStringSubmatch(re.Header.Get("Authorization"))
	if want == nil || want[6] != m[6] {
		return fmt.Errorf("signature mismatch (signed headers %s)", m[5])
	}
	return nil
}

func decodePutMetricData(body []byte) (PutMetricData, error) {
	v, err := cbor.Decode(body)
	if err != nil {
		return PutMetricData{}, err
	}
	top, ok := v.(cbor.Map)
	if !ok {
		return PutMetricData{}, fmt.Errorf("body is %T, want a map", v)
	}
	var out PutMetricData
	if ns, ok := top["Namespace"].(cbor.String); ok {
		out.Namespace = string(ns)
	}
	list, _ := top["MetricData"].(cbor.List)
	for _, e := range list {
		dm, ok := e.(cbor.Map)
		if !ok {
			return out, fmt.Errorf("datum is %T", e)
		}
		d := Datum{Dimensions: map[string]string{}}
		if s, ok := dm["MetricName"].(cbor.String); ok {
			d.Name = string(s)
		}
		if s, ok := dm["Unit"].(cbor.String); ok {
			d.Unit = string(s)
		}
		dims, _ := dm["Dimensions"].(cbor.List)
		for _, x := range dims {
			xm, _ := x.(cbor.Map)
			n, _ := xm["Name"].(cbor.String)
			val, _ := xm["Value"].(cbor.String)
			d.Dimensions[string(n)] = string(val)
		}
		if st, ok := dm["StatisticValues"].(cbor.Map); ok {
			d.SampleCount, _ = cbor.AsFloat64(st["SampleCount"])
			d.Sum, _ = cbor.AsFloat64(st["Sum"])
			d.Minimum, _ = cbor.AsFloat64(st["Minimum"])
			d.Maximum, _ = cbor.AsFloat64(st["Maximum"])
		}
		out.Datums = append(out.Datums, d)
	}
	return out, nil
}
