package awscount

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// backend answers like DynamoDB: ConsumedCapacity when asked for it, a
// ConditionalCheckFailedException for UpdateItem.
func backend(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".UpdateItem") {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}`)
			return
		}
		if req["ReturnConsumedCapacity"] == "TOTAL" {
			_, _ = io.WriteString(w, `{"ConsumedCapacity":{"CapacityUnits":0.5}}`)
			return
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, url, target, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", target)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func TestCounts(t *testing.T) {
	p, err := Start(backend(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	send(t, p.URL, "DynamoDB_20120810.Scan", `{"TableName":"app"}`)
	send(t, p.URL, "DynamoDB_20120810.Scan", `{"TableName":"app","ConsistentRead":true}`)
	send(t, p.URL, "DynamoDB_20120810.Scan", `{"TableName":"app","Segment":0,"TotalSegments":2}`)
	send(t, p.URL, "DynamoDB_20120810.UpdateItem", `{"TableName":"app"}`)
	send(t, p.URL, "Kinesis_20131202.DescribeStreamConsumer", `{"StreamARN":"arn:s","ConsumerName":"c"}`)
	send(t, p.URL, "Kinesis_20131202.GetRecords", `{"ShardIterator":"x"}`)
	snap := p.Snapshot()
	for _, c := range []struct {
		k        Key
		requests int
		units    float64
		errType  string
	}{
		{Key{Service: "dynamodb", Action: "Scan", Resource: "app"}, 1, 0.5, ""},
		{Key{Service: "dynamodb", Action: "Scan", Resource: "app", Consistent: true}, 1, 0.5, ""},
		{Key{Service: "dynamodb", Action: "Scan", Resource: "app", Segmented: true}, 1, 0.5, ""},
		{Key{Service: "dynamodb", Action: "UpdateItem", Resource: "app"}, 1, 0, "ConditionalCheckFailedException"},
		{Key{Service: "kinesis", Action: "DescribeStreamConsumer", Resource: "arn:s", ConsumerName: "c"}, 1, 0, ""},
		{Key{Service: "kinesis", Action: "GetRecords"}, 1, 0, ""},
	} {
		s, ok := snap[c.k]
		if !ok || s.Requests != c.requests || s.CapacityUnits != c.units || (c.errType != "" && s.ErrorTypes[c.errType] != 1) {
			t.Errorf("%+v: got %+v (present %t)", c.k, s, ok)
		}
	}
	if _, wcu := Estimate(Key{Action: "UpdateItem"}, snap[Key{Service: "dynamodb", Action: "UpdateItem", Resource: "app"}]); wcu != 1 {
		t.Errorf("a failed conditional write is 1 WCU, got %v", wcu)
	}
	p.Reset()
	if n := len(p.Snapshot()); n != 0 {
		t.Errorf("%d keys after Reset", n)
	}
}
