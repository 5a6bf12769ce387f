package retrieval

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/retrieval/kpl"
	"github.com/multilangd/multilangd/shard"
)

// goldenGetRecords are GetRecords bodies as Kinesis, kinesalite and
// kinesis-local write them, plus the odd cases the decoder must agree with
// the SDK on.
func goldenGetRecords(t testing.TB) map[string]string {
	agg, err := kpl.Aggregate([]kpl.UserRecord{{PartitionKey: "a", Data: []byte("one")}, {PartitionKey: "b", Data: []byte("two")}})
	if err != nil {
		t.Fatal(err)
	}
	agg64 := base64.StdEncoding.EncodeToString(agg)
	return map[string]string{
		"kinesalite": `{"MillisBehindLatest":0,"NextShardIterator":"AAAAAAAAAAG+it/er==","Records":[` +
			`{"PartitionKey":"pk-1","Data":"aGVsbG8=","SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ApproximateArrivalTimestamp":1764500000.123},` +
			`{"PartitionKey":"pk-2","Data":"","SequenceNumber":"49590338271490256608559692538361571095921575989136588899","ApproximateArrivalTimestamp":1764500000.9999}]}`,
		"kinesis": `{"NextShardIterator":"AAAAAAAAAAF","MillisBehindLatest":86400000,"Records":[` +
			`{"SequenceNumber":"1","ApproximateArrivalTimestamp":1.764500000123E9,"Data":"/+7dzA==","PartitionKey":"ü \"quoted\" \u00e9\\n","EncryptionType":"NONE"},` +
			`{"SequenceNumber":"2","ApproximateArrivalTimestamp":1764500000,"Data":"QUJD","PartitionKey":"p","EncryptionType":"KMS","Extra":{"a":[1,{"b":null}]}}]}`,
		"kpl aggregate":        `{"Records":[{"Data":"` + agg64 + `","PartitionKey":"a","SequenceNumber":"7","ApproximateArrivalTimestamp":5.5}],"NextShardIterator":"x","MillisBehindLatest":1}`,
		"not canonical base64": `{"Records":[{"Data":"QR==","PartitionKey":"a","SequenceNumber":"8"},{"Data":"QUJ\r\nD","PartitionKey":"a","SequenceNumber":"9"},{"Data":"QUJ\/","PartitionKey":"a","SequenceNumber":"10"}],"NextShardIterator":"x"}`,
		"shard end":            `{"Records":[],"ChildShards":[{"ShardId":"shardId-2","ParentShards":["shardId-1"],"HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"9"}}],"MillisBehindLatest":0}`,
		"nulls":                `{"Records":[{"Data":"QQ==","PartitionKey":null,"SequenceNumber":"3","ApproximateArrivalTimestamp":null}],"NextShardIterator":null,"MillisBehindLatest":null}`,
		"spaces":               " { \"Records\" : [ { \"Data\" : \"QQ==\" , \"SequenceNumber\" : \"4\" } ] , \"NextShardIterator\" : \"i\" } \n",
		"empty object":         `{}`,
	}
}

// sdkGetRecords decodes body with the SDK's own GetRecords deserializer.
func sdkGetRecords(body []byte) (out *kinesis.GetRecordsOutput, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("SDK panicked: %v", r)
		}
	}()
	out = &kinesis.GetRecordsOutput{}
	resp := &smithyhttp.Response{Response: &http.Response{StatusCode: 200, Body: io.NopCloser(bytes.NewReader(body))}}
	err = awsjson.New11(schemas.Kinesis_20131202).DeserializeResponse(context.Background(),
		smithy.NewOperationSchema(schemas.GetRecords, schemas.GetRecordsInput, schemas.GetRecordsOutput),
		kinesis.TypeRegistry, resp, out)
	return out, err
}

// sameAsSDK reports how p differs from the SDK's decoding of the same body
// ("" when not at all): per record the data bytes, partition key, sequence
// number and arrival time, and for text kept as base64 that it is exactly
// what the child would have received from the SDK's bytes.
func sameAsSDK(p *relayPage, want *kinesis.GetRecordsOutput) string {
	if len(p.records) != len(want.Records) {
		return fmt.Sprintf("%d records, SDK %d", len(p.records), len(want.Records))
	}
	for i, w := range want.Records {
		r := p.records[i]
		data := r.Data
		if r.Data64 != "" {
			if got := base64.StdEncoding.EncodeToString(w.Data); got != r.Data64 {
				return fmt.Sprintf("record %d: passes %q through, the SDK path would send %q", i, r.Data64, got)
			}
			data, _ = base64.StdEncoding.DecodeString(r.Data64)
		}
		if !bytes.Equal(data, w.Data) || (w.Data == nil) != (data == nil && r.Data64 == "") && len(w.Data) > 0 {
			return fmt.Sprintf("record %d: data %x, SDK %x", i, data, w.Data)
		}
		if r.DataLen() != len(w.Data) {
			return fmt.Sprintf("record %d: DataLen %d, SDK %d", i, r.DataLen(), len(w.Data))
		}
		if r.PartitionKey != aws.ToString(w.PartitionKey) || r.SequenceNumber != aws.ToString(w.SequenceNumber) {
			return fmt.Sprintf("record %d: key %q seq %q, SDK %q %q", i, r.PartitionKey, r.SequenceNumber, aws.ToString(w.PartitionKey), aws.ToString(w.SequenceNumber))
		}
		if w.ApproximateArrivalTimestamp != nil && !r.ApproximateArrivalTimestamp.Equal(*w.ApproximateArrivalTimestamp) ||
			w.ApproximateArrivalTimestamp == nil && !r.ApproximateArrivalTimestamp.IsZero() {
			return fmt.Sprintf("record %d: arrival %v, SDK %v", i, r.ApproximateArrivalTimestamp, w.ApproximateArrivalTimestamp)
		}
	}
	if !reflect.DeepEqual(p.next, want.NextShardIterator) || !reflect.DeepEqual(p.millisBehind, want.MillisBehindLatest) {
		return fmt.Sprintf("next %v mbl %v, SDK %v %v", p.next, p.millisBehind, want.NextShardIterator, want.MillisBehindLatest)
	}
	if len(p.children) != len(want.ChildShards) || len(p.children) > 0 && !reflect.DeepEqual(p.children, want.ChildShards) {
		return fmt.Sprintf("children %+v, SDK %+v", p.children, want.ChildShards)
	}
	return ""
}

func TestRelayDecoderGolden(t *testing.T) {
	for name, body := range goldenGetRecords(t) {
		want, err := sdkGetRecords([]byte(body))
		if err != nil {
			t.Fatalf("%s: SDK: %v", name, err)
		}
		p, err := decodeGetRecords(body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := sameAsSDK(p, want); d != "" {
			t.Errorf("%s: %s", name, d)
		}
	}
}

// TestRelayDecoderKeepsBase64 pins which records pass their text through.
func TestRelayDecoderKeepsBase64(t *testing.T) {
	g := goldenGetRecords(t)
	for _, c := range []struct {
		name       string
		passed     []bool
		aggregates int
	}{
		{"kinesalite", []bool{true, false}, 0}, // "" is the empty payload either way
		{"kpl aggregate", []bool{false}, 1},
		{"not canonical base64", []bool{false, false, true}, 0}, // "QUJ\\/" unescapes to canonical "QUJ/"
	} {
		p, err := decodeGetRecords(g[c.name])
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range c.passed {
			if got := p.records[i].Data64 != ""; got != want {
				t.Errorf("%s record %d: passed through %v, want %v", c.name, i, got, want)
			}
		}
		if p.aggregates != c.aggregates {
			t.Errorf("%s: %d aggregates, want %d", c.name, p.aggregates, c.aggregates)
		}
	}
}

// TestRelayDecoderThroughSDK runs real GetRecords calls (signing, retries,
// the whole middleware stack) against a server answering with each golden
// body, with and without the relay decoder; error responses still come back
// as the SDK's typed errors.
func TestRelayDecoderThroughSDK(t *testing.T) {
	var body string
	status := http.StatusOK
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if r.Header.Get("Authorization") == "" {
			t.Error("request not signed")
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	c := kinesis.New(kinesis.Options{BaseEndpoint: aws.String(srv.URL), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	in := &kinesis.GetRecordsInput{ShardIterator: aws.String("it")}
	for name, b := range goldenGetRecords(t) {
		body = b
		want, err := c.GetRecords(context.Background(), in)
		if err != nil {
			t.Fatalf("%s: SDK: %v", name, err)
		}
		out, err := c.GetRecords(context.Background(), in, withRelayDecoder)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p, ok := relayedPage(out)
		if !ok {
			t.Fatalf("%s: no relayed page", name)
		}
		if d := sameAsSDK(p, want); d != "" {
			t.Errorf("%s: %s", name, d)
		}
		if !reflect.DeepEqual(out.NextShardIterator, want.NextShardIterator) || !reflect.DeepEqual(out.ChildShards, want.ChildShards) {
			t.Errorf("%s: output fields differ", name)
		}
	}
	status, body = http.StatusBadRequest, `{"__type":"ExpiredIteratorException","message":"Iterator expired"}`
	_, err := c.GetRecords(context.Background(), in, withRelayDecoder)
	var expired *types.ExpiredIteratorException
	if !errors.As(err, &expired) {
		t.Fatalf("error response decoded as %T %v, want ExpiredIteratorException", err, err)
	}
	status, body, calls = http.StatusOK, `{"Records":[{"Data":"Q`, 0
	if _, err := c.GetRecords(context.Background(), in, withRelayDecoder); err == nil || !strings.Contains(err.Error(), "deserialization failed") {
		t.Fatalf("truncated body: %v", err)
	}
}

// FuzzRelayDecoder: whenever the SDK decodes a body, the relay decoder
// decodes it to the same records and fields; it never panics.
func FuzzRelayDecoder(f *testing.F) {
	for _, b := range goldenGetRecords(f) {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeGetRecords(string(body))
		want, sdkErr := sdkGetRecords(body)
		if sdkErr != nil {
			return // invalid for the SDK: the decoder may reject or accept it
		}
		if err != nil {
			t.Fatalf("SDK decodes %q, relay decoder fails: %v", body, err)
		}
		if d := sameAsSDK(p, want); d != "" {
			t.Fatalf("%q: %s", body, d)
		}
	})
}

// TestRelayNoAllocsPerRecord: decoding a page and converting it to a batch
// allocates the same few times for 100 and for 5,000 records.
func TestRelayNoAllocsPerRecord(t *testing.T) {
	page := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"Records":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"Data":"%s","PartitionKey":"pk-%d","SequenceNumber":"4959%052d","ApproximateArrivalTimestamp":1764500000.123}`,
				base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'x'}, 1024)), i, i)
		}
		b.WriteString(`],"NextShardIterator":"it","MillisBehindLatest":0}`)
		return b.String()
	}
	conv := newRecordConverter(shard.Info{ID: "s"}, zap.NewNop())
	allocs := func(n int) float64 {
		body := page(n)
		return testing.AllocsPerRun(10, func() {
			p, err := decodeGetRecords(body)
			if err != nil {
				t.Fatal(err)
			}
			if b := conv.convertPage(p, 0); len(b.Records) != n {
				t.Fatalf("%d records", len(b.Records))
			}
		})
	}
	small, large := allocs(100), allocs(5000)
	if large-small > 16 {
		t.Fatalf("%.0f allocations for 100 records, %.0f for 5000: allocations grow with the records", small, large)
	}
	t.Logf("allocations per page: %.0f (100 records), %.0f (5000 records)", small, large)
}
