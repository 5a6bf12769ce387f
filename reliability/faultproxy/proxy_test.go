package faultproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFaults(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "upstream") }))
	defer up.Close()
	p, err := Start(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	do := func(op string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodPost, p.URL, strings.NewReader("{}"))
		req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	if code, body, err := do("GetRecords"); err != nil || code != 200 || body != "upstream" {
		t.Fatalf("healthy: %d %q %v", code, body, err)
	}
	p.Set(Fault{Ops: []string{"GetRecords"}, Status: 400, ErrorType: "ExpiredIteratorException"})
	if code, body, _ := do("GetRecords"); code != 400 || !strings.Contains(body, "ExpiredIteratorException") {
		t.Fatalf("error fault: %d %q", code, body)
	}
	if code, _, _ := do("ListShards"); code != 200 {
		t.Fatalf("other operation affected: %d", code)
	}
	p.Set(Fault{Reset: true})
	if _, _, err := do("ListShards"); err == nil {
		t.Fatal("reset fault answered")
	}
	p.Set(Fault{})
	if code, _, err := do("ListShards"); err != nil || code != 200 {
		t.Fatalf("healed: %d %v", code, err)
	}
	if n := p.Injected(); n != 2 {
		t.Fatalf("injected %d, want 2", n)
	}
}
