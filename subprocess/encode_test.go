package subprocess

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multilangd/multilangd/record"
)

// TestEncodeGolden pins every outgoing message to the Java/Jackson byte
// format of Java MessageWriter (the golden lines were produced by Jackson).
func TestEncodeGolden(t *testing.T) {
	seq := "49590338271490256608559692538361571095921575989136588898"
	rec := record.Record{Data: []byte("hello"), PartitionKey: "pk1", SequenceNumber: seq, ApproximateArrivalTimestamp: time.UnixMilli(1700000000123)}
	kpl := record.Record{Data: []byte{0xff, 0xfe, 0x00}, PartitionKey: "p", SequenceNumber: "1", SubSequenceNumber: 3, ApproximateArrivalTimestamp: time.UnixMilli(5), Aggregated: true, ExplicitHashKey: "77"}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"initialize", appendInitialize(nil, "shardId-000000000001", "", ptr("TRIM_HORIZON"), ptr(int64(0))),
			`{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}`},
		{"initialize digits", appendInitialize(nil, "shardId-000000000001", "", ptr(seq), ptr(int64(7))),
			`{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"` + seq + `","subSequenceNumber":7}`},
		{"initialize multi-stream", appendInitialize(nil, "shardId-000000000001", "orders", ptr("LATEST"), ptr(int64(0))),
			`{"action":"initialize","shardId":"shardId-000000000001","streamName":"orders","sequenceNumber":"LATEST","subSequenceNumber":0}`},
		{"initialize nulls", appendInitialize(nil, "s", "", nil, nil),
			`{"action":"initialize","shardId":"s","sequenceNumber":null,"subSequenceNumber":null}`},
		{"processRecords", appendProcessRecords(nil, []record.Record{rec}, ptr(int64(1234))),
			`{"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk1","sequenceNumber":"` + seq + `","approximateArrivalTimestamp":1700000000123,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":1234}`},
		{"processRecords two, KPL sub-record, null millis", appendProcessRecords(nil, []record.Record{rec, kpl}, nil),
			`{"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk1","sequenceNumber":"` + seq + `","approximateArrivalTimestamp":1700000000123,"subSequenceNumber":0,"action":"record"},` +
				`{"data":"//4A","partitionKey":"p","sequenceNumber":"1","approximateArrivalTimestamp":5,"subSequenceNumber":3,"action":"record"}],"millisBehindLatest":null}`},
		{"processRecords empty", appendProcessRecords(nil, nil, ptr(int64(0))),
			`{"action":"processRecords","records":[],"millisBehindLatest":0}`},
		{"record empty data, zero time", appendProcessRecords(nil, []record.Record{{PartitionKey: "", SequenceNumber: "2"}}, ptr(int64(0))),
			`{"action":"processRecords","records":[{"data":"","partitionKey":"","sequenceNumber":"2","approximateArrivalTimestamp":0,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}`},
		{"leaseLost", appendBare(nil, actionLeaseLost), `{"action":"leaseLost"}`},
		{"shardEnded", appendBare(nil, actionShardEnded), `{"action":"shardEnded"}`},
		{"shutdownRequested", appendBare(nil, actionShutdownRequested), `{"action":"shutdownRequested"}`},
		{"checkpoint ok", appendCheckpointReply(nil, ptr("123"), nil, ""),
			`{"action":"checkpoint","sequenceNumber":"123","subSequenceNumber":null,"error":null}`},
		{"checkpoint ok with sub", appendCheckpointReply(nil, ptr("123"), ptr(int64(4)), ""),
			`{"action":"checkpoint","sequenceNumber":"123","subSequenceNumber":4,"error":null}`},
		{"checkpoint error", appendCheckpointReply(nil, nil, nil, "ThrottlingException"),
			`{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ThrottlingException"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != tc.want+"\n" {
				t.Errorf("got  %s\nwant %s", tc.got, tc.want)
			}
			if strings.Count(string(tc.got), "\n") != 1 {
				t.Errorf("not exactly one line")
			}
			// Every object (nested ones included) carries an action, as
			// kclpy's object_hook requires.
			var v any
			if err := json.Unmarshal(tc.got, &v); err != nil {
				t.Fatalf("invalid JSON: %v", err)
			}
			checkActions(t, v)
		})
	}
}

func checkActions(t *testing.T, v any) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["action"].(string); !ok {
			t.Errorf("object without action: %v", x)
		}
		for _, e := range x {
			checkActions(t, e)
		}
	case []any:
		for _, e := range x {
			checkActions(t, e)
		}
	}
}

// TestAppendStringJackson checks escaping against Jackson's rules.
func TestAppendStringJackson(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`q"b\s/`, `"q\"b\\s/"`},
		{"\b\t\n\f\r", `"\b\t\n\f\r"`},
		{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001F` + "\x7f" + `"`},
		{"ünï€😀", `"ünï€😀"`},
		{"<>&\u2028", "\"<>&\u2028\""},
		{"bad\xffutf8\xc3", "\"bad\uFFFDutf8\uFFFD\""},
	}
	for _, tc := range tests {
		got := string(appendString(nil, tc.in))
		if got != tc.want {
			t.Errorf("appendString(%q) = %s, want %s", tc.in, got, tc.want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("appendString(%q) is not valid JSON: %v", tc.in, err)
		}
	}
}

// BenchmarkEncodeProcessRecords encodes a 10,000-record processRecords line
// (1 KiB payloads, 56-digit sequence numbers) into a reused buffer, as the
// child does for every batch.
func BenchmarkEncodeProcessRecords(b *testing.B) {
	const n = 10_000
	recs := testRecords(n, 1024)
	for i := range recs {
		recs[i].PartitionKey = "partition-key-" + strconv.Itoa(i)
	}
	mbl := int64(42)
	buf := appendProcessRecords(nil, recs, &mbl)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf = appendProcessRecords(buf[:0], recs, &mbl)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/record")
}

// chunkRecorder records the size of every Write.
type chunkRecorder struct {
	buf    []byte
	writes []int
}

func (c *chunkRecorder) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	c.writes = append(c.writes, len(p))
	return len(p), nil
}

// TestWriteProcessRecordsSameBytes: the streamed line is byte for byte the
// line appendProcessRecords builds whole, whether a payload arrives decoded
// (Data) or as the base64 text Kinesis sent (Data64), and no single write is
// larger than streamChunk plus one record.
func TestWriteProcessRecordsSameBytes(t *testing.T) {
	for _, n := range []int{0, 1, 3, 200, 5000} {
		recs := testRecords(n, 1000)
		passthrough := make([]record.Record, n)
		for i, r := range recs {
			r.Data64 = base64.StdEncoding.EncodeToString(r.Data)
			r.Data = nil
			passthrough[i] = r
		}
		mbl := int64(n)
		want := appendProcessRecords(nil, recs, &mbl)
		for _, in := range [][]record.Record{recs, passthrough} {
			var w chunkRecorder
			if _, err := writeProcessRecords(&w, nil, in, &mbl); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(w.buf, want) {
				t.Fatalf("%d records: streamed line differs from the whole line", n)
			}
			for _, sz := range w.writes {
				if sz > streamChunk+2000 {
					t.Fatalf("%d records: one write of %d bytes (chunk %d)", n, sz, streamChunk)
				}
			}
		}
	}
}

// TestWriteProcessRecordsNoAllocs: with a warm buffer, streaming a batch of
// pass-through records allocates nothing, whatever the batch size.
func TestWriteProcessRecordsNoAllocs(t *testing.T) {
	recs := testRecords(2000, 1024)
	for i := range recs {
		recs[i].Data64 = base64.StdEncoding.EncodeToString(recs[i].Data)
		recs[i].Data = nil
	}
	mbl := int64(1)
	buf, _ := writeProcessRecords(io.Discard, nil, recs, &mbl)
	if a := testing.AllocsPerRun(20, func() { buf, _ = writeProcessRecords(io.Discard, buf, recs, &mbl) }); a != 0 {
		t.Fatalf("%.1f allocations per 2000-record batch, want 0", a)
	}
}
