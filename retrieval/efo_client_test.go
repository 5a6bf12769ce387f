package retrieval

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

type cannedHTTP struct{ body []byte }

func (c cannedHTTP) Do(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(c.body))}, nil
}

func encodeEvent(t *testing.T, eventType string) []byte {
	t.Helper()
	var b bytes.Buffer
	var m eventstream.Message
	m.Headers.Set(":message-type", eventstream.StringValue("event"))
	m.Headers.Set(":event-type", eventstream.StringValue(eventType))
	m.Payload = []byte(`{}`)
	if err := eventstream.NewEncoder().Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// eventTypes decodes every message of an event-stream body.
func eventTypes(t *testing.T, body io.Reader) []string {
	t.Helper()
	var out []string
	dec := eventstream.NewDecoder()
	for {
		m, err := dec.Decode(body, nil)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		out = append(out, m.Headers.Get(":event-type").String())
	}
}

func TestInitialResponseClient(t *testing.T) {
	initial, event := encodeEvent(t, "initial-response"), encodeEvent(t, "SubscribeToShardEvent")
	cases := []struct {
		name   string
		target string
		body   []byte
		want   []string
	}{
		{"AWS response passes unchanged", "Kinesis_20131202.SubscribeToShard", append(append([]byte{}, initial...), event...), []string{"initial-response", "SubscribeToShardEvent"}},
		{"emulator response gets an initial-response", "Kinesis_20131202.SubscribeToShard", event, []string{"initial-response", "SubscribeToShardEvent"}},
		{"other operations untouched", "Kinesis_20131202.GetRecords", event, []string{"SubscribeToShardEvent"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/", nil)
			req.Header.Set("X-Amz-Target", tc.target)
			resp, err := initialResponseClient{next: cannedHTTP{body: tc.body}}.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got := eventTypes(t, resp.Body)
			if !slices.Equal(got, tc.want) {
				t.Errorf("events %v, want %v", got, tc.want)
			}
		})
	}
}
