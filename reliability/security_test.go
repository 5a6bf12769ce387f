//go:build reliability

package reliability

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multilangd/multilangd/internal/testenv"
)

// Credentials the STS stand-in hands out; grepped for like the others.
const (
	assumedKeyID   = "ASIARELASSUMED5K3J"
	assumedSecret  = "relAssumedSecret/8d7c6b5a4f3e"
	assumedSession = "relAssumedSessionToken+cXV4Zm9vYmFy"
)

func init() { secrets = append(secrets, assumedKeyID, assumedSecret, assumedSession) }

// stsStandIn answers AssumeRole (query protocol) with the assumed
// credentials, and counts the calls that carried the expected external id.
func stsStandIn(t *testing.T, calls *atomic.Int32) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "AssumeRole" {
			http.Error(w, "not AssumeRole", http.StatusBadRequest)
			return
		}
		if r.Form.Get("ExternalId") != secretExternalID {
			http.Error(w, "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>external id</Message></Error></ErrorResponse>", http.StatusForbidden)
			return
		}
		calls.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/rel/rel-session</Arn><AssumedRoleId>AROAREL:rel-session</AssumedRoleId></AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>rel-1</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			assumedKeyID, assumedSecret, assumedSession, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	t.Cleanup(s.Close)
	return s
}

// Security: a worker that assumes a role with an external id (STS
// stand-in) and one with environment credentials and a session token, both
// at debug level, with the metrics listener on one of them: no secret in
// any log line (TestMain greps every log of the suite) nor in /metrics; the
// listener is off unless configured and binds exactly where it is told; the
// iam-policy command grants no wildcard action or resource.
func TestSecurity(t *testing.T) {
	f := newFleet(t, 2)
	var calls atomic.Int32
	sts := stsStandIn(t, &calls)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := "127.0.0.1:" + strconv.Itoa(port)
	plain := f.start("w1", nil)
	assumed := f.start("w2", map[string]string{
		"AwsCredentialsProvider": "StsAssumeRoleCredentialsProvider|arn:aws:iam::123456789012:role/rel|rel-session|externalId=" +
			secretExternalID + "|endpoint=" + sts.URL + "^us-east-1",
		"metricsListenAddress": metricsAddr,
	})
	p := f.startProducer(10, 500*time.Millisecond)
	f.waitShardsProgress(2, 120*time.Second)
	f.waitFor(60*time.Second, "both workers holding a lease", func() bool {
		owners := map[string]bool{}
		for _, l := range f.leases() {
			owners[l.Owner] = true
		}
		return owners["w1"] && owners["w2"]
	})
	time.Sleep(5 * time.Second) // some steady load for the logs
	if calls.Load() == 0 {
		t.Error("the STS stand-in saw no AssumeRole with the external id")
	}

	if l := listening(t, plain.pid()); len(l) != 0 {
		t.Errorf("w1 (no metricsListenAddress) listens on %v", l)
	}
	if l := listening(t, assumed.pid()); len(l) != 1 || l[0] != metricsAddr {
		t.Errorf("w2 listens on %v, want exactly [%s]", l, metricsAddr)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics: %d", resp.StatusCode)
	}
	if err := os.WriteFile(f.dir+"/metrics-scrape.log", body, 0o644); err != nil { // grepped with the logs
		t.Fatal(err)
	}

	cmd := exec.Command(binDaemon, "iam-policy", "-p", plain.props, "--account", "123456789012")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("iam-policy: %v", err)
	}
	if err := wildcardFree(out); err != nil {
		t.Errorf("iam-policy: %v\n%s", err, out)
	}
	f.mu.Lock()
	f.injected = append(f.injected, "debug logs of a worker with env credentials + session token and of one assuming a role with an external id; "+
		"metrics listener off on one, on 127.0.0.1 on the other; iam-policy wildcard check")
	f.mu.Unlock()
	f.finish(p, 120*time.Second)
}

// wildcardFree fails on a policy statement whose action or resource is a
// bare "*" or "service:*".
func wildcardFree(policy []byte) error {
	var doc struct {
		Statement []struct {
			Action   any `json:"Action"`
			Resource any `json:"Resource"`
		} `json:"Statement"`
	}
	if err := json.Unmarshal(policy, &doc); err != nil {
		return err
	}
	if len(doc.Statement) == 0 {
		return fmt.Errorf("no statement")
	}
	for _, s := range doc.Statement {
		for _, a := range strs(s.Action) {
			if a == "*" || strings.HasSuffix(a, ":*") {
				return fmt.Errorf("wildcard action %q", a)
			}
		}
		for _, r := range strs(s.Resource) {
			if r == "*" {
				return fmt.Errorf("wildcard resource for %v", s.Action)
			}
		}
	}
	return nil
}

func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

// listening returns the TCP addresses pid listens on (from its socket fds
// and /proc/net/tcp{,6}).
func listening(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" || !inodes[fs[9]] {
				continue
			}
			out = append(out, decodeAddr(fs[1]))
		}
		fh.Close()
	}
	return out
}

// decodeAddr turns /proc/net/tcp's "0100007F:1F90" into "127.0.0.1:8080"
// (IPv6 addresses are returned as hex).
func decodeAddr(s string) string {
	host, port, _ := strings.Cut(s, ":")
	p, _ := strconv.ParseUint(port, 16, 16)
	if len(host) != 8 {
		return fmt.Sprintf("[%s]:%d", host, p)
	}
	v, _ := strconv.ParseUint(host, 16, 32)
	return fmt.Sprintf("%d.%d.%d.%d:%d", v&0xff, v>>8&0xff, v>>16&0xff, v>>24, p)
}
