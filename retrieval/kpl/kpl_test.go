package kpl

import (
	"bytes"
	"crypto/md5" //nolint:gosec // test fixtures
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/record"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHashKeyParseAndString(t *testing.T) {
	maxBig := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	cases := []struct {
		in      string
		want    string // canonical decimal; "" = error
		wantErr bool
	}{
		{in: "0", want: "0"},
		{in: "00042", want: "42"},
		{in: "+7", want: "7"},
		{in: "18446744073709551615", want: "18446744073709551615"},
		{in: "18446744073709551616", want: "18446744073709551616"},
		{in: "170141183460469231731687303715884105728", want: "170141183460469231731687303715884105728"},
		{in: maxBig.String(), want: maxBig.String()},
		{in: new(big.Int).Add(maxBig, big.NewInt(1)).String(), wantErr: true},
		{in: "-1", wantErr: true},
		{in: "", wantErr: true},
		{in: "12a", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			h, err := ParseHashKey(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseHashKey(%q) = %v, want error", tc.in, h)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := h.String(); got != tc.want {
				t.Fatalf("String() = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPartitionKeyHashMatchesBigInt(t *testing.T) {
	for _, pk := range []string{"", "a", "partition-key-1", "日本語", strings.Repeat("x", 256)} {
		sum := md5.Sum([]byte(pk)) //nolint:gosec // test
		want := new(big.Int).SetBytes(sum[:]).String()
		if got := PartitionKeyHash(pk).String(); got != want {
			t.Errorf("PartitionKeyHash(%q) = %s, want %s", pk, got, want)
		}
	}
}

func TestParseRange(t *testing.T) {
	cases := []struct {
		start, end string
		want       HashRange
		wantErr    bool
	}{
		{"", "", FullRange, false},
		{"10", "20", HashRange{Start: HashKey{Lo: 10}, End: HashKey{Lo: 20}}, false},
		{"20", "10", FullRange, true},
		{"x", "10", FullRange, true},
	}
	for _, tc := range cases {
		got, err := ParseRange(tc.start, tc.end)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseRange(%q,%q) = %v, %v", tc.start, tc.end, got, err)
		}
	}
}

// wrap adds magic and MD5 trailer to a protobuf body.
func wrap(body []byte) []byte {
	sum := md5.Sum(body) //nolint:gosec // test
	out := append(append([]byte{}, Magic...), body...)
	return append(out, sum[:]...)
}

// rawRecord encodes a Record message; negative ehk means absent.
func rawRecord(pk int, ehk int, data string) []byte {
	var b []byte
	if pk >= 0 {
		b = protowire.AppendTag(b, fieldPKIndex, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(pk))
	}
	if ehk >= 0 {
		b = protowire.AppendTag(b, fieldEHKIndex, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(ehk))
	}
	b = protowire.AppendTag(b, fieldData, protowire.BytesType)
	return protowire.AppendString(b, data)
}

func rawAggregate(pks, ehks []string, recs ...[]byte) []byte {
	var b []byte
	for _, k := range pks {
		b = protowire.AppendTag(b, fieldPKTable, protowire.BytesType)
		b = protowire.AppendString(b, k)
	}
	for _, k := range ehks {
		b = protowire.AppendTag(b, fieldEHKTable, protowire.BytesType)
		b = protowire.AppendString(b, k)
	}
	for _, r := range recs {
		b = protowire.AppendTag(b, fieldRecords, protowire.BytesType)
		b = protowire.AppendBytes(b, r)
	}
	return b
}

func mustAggregate(t testing.TB, recs []UserRecord) []byte {
	t.Helper()
	b, err := Aggregate(recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type subWant struct {
	pk, ehk, data string
	sub           int64
}

func TestDeaggregate(t *testing.T) {
	// Shard range: the lower half of the hash space.
	half := HashRange{End: HashKey{Hi: 1<<63 - 1, Lo: ^uint64(0)}}
	low, high := "1000", "300000000000000000000000000000000000000" // in / out of half
	arrival := time.UnixMilli(1_700_000_000_123)

	goodAgg := mustAggregate(t, []UserRecord{
		{PartitionKey: "a", ExplicitHashKey: low, Data: []byte("d0")},
		{PartitionKey: "b", ExplicitHashKey: "5", Data: []byte("d1")},
		{PartitionKey: "a", ExplicitHashKey: low, Data: []byte("d2")},
	})
	tamperedMD5 := append([]byte{}, goodAgg...)
	tamperedMD5[len(tamperedMD5)-1] ^= 0xFF

	// a partition key whose MD5 lies in the lower half / upper half
	var pkLow, pkHigh string
	for i := 0; pkLow == "" || pkHigh == ""; i++ {
		pk := fmt.Sprintf("pk-%d", i)
		if half.Contains(PartitionKeyHash(pk)) {
			if pkLow == "" {
				pkLow = pk
			}
		} else if pkHigh == "" {
			pkHigh = pk
		}
	}

	wrongWireType := rawAggregate([]string{"k"}, nil,
		append(protowire.AppendVarint(protowire.AppendTag(nil, fieldData, protowire.VarintType), 7), rawRecord(0, -1, "x")...))

	cases := []struct {
		name   string
		data   []byte
		rng    HashRange
		status Status
		want   []subWant // nil with Plain/Corrupt: the input record itself
		errSub string
	}{
		{name: "plain", data: []byte("hello"), rng: FullRange, status: Plain},
		{name: "empty data", data: []byte{}, rng: FullRange, status: Plain},
		{name: "magic only", data: Magic, rng: FullRange, status: Corrupt},
		{name: "magic + 16 bytes", data: append(append([]byte{}, Magic...), make([]byte, 16)...), rng: FullRange, status: Corrupt},
		{name: "bad md5", data: tamperedMD5, rng: FullRange, status: Corrupt},
		{name: "bad protobuf", data: wrap([]byte{0xFF, 0xFF, 0xFF}), rng: FullRange, status: Corrupt},
		{name: "missing required data", data: wrap(rawAggregate([]string{"k"}, nil, protowire.AppendVarint(protowire.AppendTag(nil, fieldPKIndex, protowire.VarintType), 0))), rng: FullRange, status: Corrupt},
		{name: "missing required pk index", data: wrap(rawAggregate([]string{"k"}, nil, rawRecord(-1, -1, "x"))), rng: FullRange, status: Corrupt},
		{name: "tag without key", data: wrap(rawAggregate([]string{"k"}, nil,
			append(rawRecord(0, -1, "x"), protowire.AppendBytes(protowire.AppendTag(nil, fieldTags, protowire.BytesType),
				protowire.AppendString(protowire.AppendTag(nil, fieldTagValue, protowire.BytesType), "v"))...))), rng: FullRange, status: Corrupt},
		{name: "wrong wire type is an unknown field", data: wrap(wrongWireType), rng: FullRange, status: Aggregated,
			want: []subWant{{pk: "k", data: "x", sub: 0}}},
		{name: "all in range", data: goodAgg, rng: half, status: Aggregated, want: []subWant{
			{pk: "a", ehk: low, data: "d0", sub: 0}, {pk: "b", ehk: "5", data: "d1", sub: 1}, {pk: "a", ehk: low, data: "d2", sub: 2}}},
		{name: "one sub-record out of range drops all", rng: half, status: OutOfRange, data: mustAggregate(t, []UserRecord{
			{PartitionKey: "a", ExplicitHashKey: low, Data: []byte("d0")},
			{PartitionKey: "b", ExplicitHashKey: high, Data: []byte("d1")},
		})},
		{name: "md5 of partition key in range", rng: half, status: Aggregated,
			data: mustAggregate(t, []UserRecord{{PartitionKey: pkLow, Data: []byte("x")}}),
			want: []subWant{{pk: pkLow, data: "x"}}},
		{name: "md5 of partition key out of range", rng: half, status: OutOfRange,
			data: mustAggregate(t, []UserRecord{{PartitionKey: pkLow, Data: []byte("x")}, {PartitionKey: pkHigh, Data: []byte("y")}})},
		{name: "negative explicit hash key", rng: FullRange, status: OutOfRange,
			data: wrap(rawAggregate([]string{"k"}, []string{"-5"}, rawRecord(0, 0, "x")))},
		{name: "explicit hash key above 2^128-1", rng: FullRange, status: OutOfRange,
			data: wrap(rawAggregate([]string{"k"}, []string{"340282366920938463463374607431768211456"}, rawRecord(0, 0, "x")))},
		{name: "pk index out of range keeps earlier", rng: FullRange, status: Truncated, errSub: "partition key index",
			data: wrap(rawAggregate([]string{"k"}, nil, rawRecord(0, -1, "x"), rawRecord(3, -1, "y"), rawRecord(0, -1, "z"))),
			want: []subWant{{pk: "k", data: "x"}}},
		{name: "unparsable explicit hash key keeps earlier", rng: FullRange, status: Truncated, errSub: "not decimal",
			data: wrap(rawAggregate([]string{"k"}, []string{"12", "zz"}, rawRecord(0, 0, "x"), rawRecord(0, 1, "y"))),
			want: []subWant{{pk: "k", ehk: "12", data: "x"}}},
		{name: "pk index 2^32 wraps like Java (int)", rng: FullRange, status: Aggregated,
			data: wrap(rawAggregate([]string{"k"}, nil, rawRecord(1<<32, -1, "x"))), want: []subWant{{pk: "k", data: "x"}}},
		{name: "empty aggregate yields nothing", rng: FullRange, status: Aggregated, data: wrap(rawAggregate([]string{"k"}, nil)), want: []subWant{}},
		{name: "empty data sub-record", rng: FullRange, status: Aggregated,
			data: wrap(rawAggregate([]string{"k"}, nil, rawRecord(0, -1, ""))), want: []subWant{{pk: "k", data: ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := record.Record{Data: tc.data, PartitionKey: "container", SequenceNumber: "4959", ApproximateArrivalTimestamp: arrival}
			got, status, err := tc.rng.Deaggregate([]record.Record{{SequenceNumber: "previous"}}, in)
			if status != tc.status {
				t.Fatalf("status = %v, want %v (err %v)", status, tc.status, err)
			}
			if (err != nil) != (tc.errSub != "") || (err != nil && !strings.Contains(err.Error(), tc.errSub)) {
				t.Fatalf("err = %v, want containing %q", err, tc.errSub)
			}
			if got[0].SequenceNumber != "previous" {
				t.Fatal("dst prefix not kept")
			}
			got = got[1:]
			if tc.status == Plain || tc.status == Corrupt {
				if len(got) != 1 || !reflect.DeepEqual(got[0], in) {
					t.Fatalf("got %+v, want the input record unchanged", got)
				}
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d records, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.PartitionKey != w.pk || g.ExplicitHashKey != w.ehk || string(g.Data) != w.data || g.SubSequenceNumber != int64(i) ||
					!g.Aggregated || g.SequenceNumber != "4959" || !g.ApproximateArrivalTimestamp.Equal(arrival) {
					t.Errorf("record %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestDeaggregateStringRange(t *testing.T) {
	agg := mustAggregate(t, []UserRecord{{PartitionKey: "a", ExplicitHashKey: "50", Data: []byte("x")}})
	r := record.Record{Data: agg, SequenceNumber: "1"}
	if got := Deaggregate(r, "0", "49"); len(got) != 0 {
		t.Fatalf("out of range: got %d records", len(got))
	}
	if got := Deaggregate(r, "50", "50"); len(got) != 1 || got[0].ExplicitHashKey != "50" {
		t.Fatalf("in range: got %+v", got)
	}
	if got := Deaggregate(r, "", ""); len(got) != 1 {
		t.Fatalf("unknown range: got %+v", got)
	}
}

func TestAggregateErrors(t *testing.T) {
	if _, err := Aggregate(nil); err != ErrEmpty {
		t.Fatalf("empty: %v", err)
	}
	if _, err := Aggregate([]UserRecord{{PartitionKey: "a", ExplicitHashKey: "-1"}}); err == nil {
		t.Fatal("bad explicit hash key accepted")
	}
}

func TestAggregatedSizeIsUpperBound(t *testing.T) {
	var recs []UserRecord
	for i := 0; i < 300; i++ {
		r := UserRecord{PartitionKey: fmt.Sprintf("pk-%d", i%40), Data: bytes.Repeat([]byte{'x'}, i)}
		if i%3 == 0 {
			r.ExplicitHashKey = fmt.Sprint(i * 1000)
		}
		recs = append(recs, r)
		b, err := Aggregate(recs)
		if err != nil {
			t.Fatal(err)
		}
		if n := AggregatedSize(recs); n < len(b) || n > len(b)+2*len(recs) {
			t.Fatalf("%d records: AggregatedSize %d, actual %d", len(recs), n, len(b))
		}
	}
}

// nodeRecord is the JSON shape agg.js exchanges.
type nodeRecord struct {
	PartitionKey      string `json:"partitionKey"`
	ExplicitHashKey   string `json:"explicitHashKey"`
	Data              string `json:"data"`
	SubSequenceNumber int64  `json:"subSequenceNumber"`
}

// runNode runs testdata/agg.js (aws-kinesis-agg 4.2.8) on req.
func runNode(t *testing.T, req any) (out struct {
	Aggregated   []nodeRecord   `json:"aggregated"`
	Deaggregated [][]nodeRecord `json:"deaggregated"`
}) {
	t.Helper()
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "agg.js"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+testenv.NodeModulesT(t))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("node agg.js: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("agg.js output: %v: %s", err, b)
	}
	return out
}

// TestCrossCheckAwsKinesisAgg de-aggregates aggregates built by the real
// aws-kinesis-agg npm package and lets that package de-aggregate ours.
func TestCrossCheckAwsKinesisAgg(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	// Keys are non-numeric (aws-kinesis-agg uses Object.keys, which reorders
	// integer-like keys) and EHKs exceed 2^32.
	sets := [][]UserRecord{
		{{PartitionKey: "alpha", Data: []byte("one")}},
		{
			{PartitionKey: "alpha", Data: []byte("one")},
			{PartitionKey: "beta", ExplicitHashKey: "340282366920938463463374607431768211455", Data: []byte("two")},
			{PartitionKey: "alpha", Data: []byte{}},
			{PartitionKey: "gamma", ExplicitHashKey: "85070591730234615865843651857942052864", Data: bytes.Repeat([]byte{0, 1, 2, 0xFF}, 300)},
			{PartitionKey: "beta", ExplicitHashKey: "340282366920938463463374607431768211455", Data: []byte("five")},
		},
	}
	var nodeIn [][]nodeRecord
	var ours []string
	for _, set := range sets {
		var nr []nodeRecord
		for _, r := range set {
			nr = append(nr, nodeRecord{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: b64(r.Data)})
		}
		nodeIn = append(nodeIn, nr)
		ours = append(ours, b64(mustAggregate(t, set)))
	}
	out := runNode(t, map[string]any{"aggregate": nodeIn, "deaggregate": ours})
	if len(out.Aggregated) != len(sets) || len(out.Deaggregated) != len(sets) {
		t.Fatalf("node returned %d aggregates and %d de-aggregations", len(out.Aggregated), len(out.Deaggregated))
	}
	for i, set := range sets {
		// Theirs → our de-aggregator.
		data, err := base64.StdEncoding.DecodeString(out.Aggregated[i].Data)
		if err != nil {
			t.Fatal(err)
		}
		if out.Aggregated[i].PartitionKey != set[0].PartitionKey {
			t.Errorf("set %d: container partition key %q, want %q", i, out.Aggregated[i].PartitionKey, set[0].PartitionKey)
		}
		got, status, err := FullRange.Deaggregate(nil, record.Record{Data: data, SequenceNumber: "9"})
		if status != Aggregated || err != nil {
			t.Fatalf("set %d: status %v err %v", i, status, err)
		}
		// Ours → their de-aggregator.
		theirs := out.Deaggregated[i]
		if len(got) != len(set) || len(theirs) != len(set) {
			t.Fatalf("set %d: %d records from ours, %d from theirs, want %d", i, len(got), len(theirs), len(set))
		}
		for j, want := range set {
			g := got[j]
			if g.PartitionKey != want.PartitionKey || g.ExplicitHashKey != want.ExplicitHashKey || !bytes.Equal(g.Data, want.Data) || g.SubSequenceNumber != int64(j) {
				t.Errorf("set %d record %d (theirs→ours): %+v, want %+v", i, j, g, want)
			}
			th := theirs[j]
			// aws-kinesis-agg reads an absent explicit_hash_key_index as 0
			// (protobufjs default) and so reports the table's first entry.
			wantEHK := want.ExplicitHashKey
			if wantEHK == "" {
				wantEHK = firstEHK(set)
			}
			if th.PartitionKey != want.PartitionKey || th.ExplicitHashKey != wantEHK || th.Data != b64(want.Data) || th.SubSequenceNumber != int64(j) {
				t.Errorf("set %d record %d (ours→theirs): %+v, want %+v", i, j, th, want)
			}
		}
	}
}

func firstEHK(set []UserRecord) string {
	for _, r := range set {
		if r.ExplicitHashKey != "" {
			return r.ExplicitHashKey
		}
	}
	return ""
}

func FuzzDeaggregate(f *testing.F) {
	f.Add([]byte("plain"))
	agg, _ := Aggregate([]UserRecord{{PartitionKey: "a", Data: []byte("x")}, {PartitionKey: "b", ExplicitHashKey: "7", Data: []byte("y")}})
	f.Add(agg)
	f.Add(wrap([]byte{0x1a, 0x02, 0x08}))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := record.Record{Data: data, SequenceNumber: "1"}
		out, status, err := FullRange.Deaggregate(nil, in)
		switch status {
		case Plain, Corrupt:
			if len(out) != 1 || err != nil {
				t.Fatalf("%v: %d records, err %v", status, len(out), err)
			}
		case Truncated:
			if err == nil {
				t.Fatal("truncated without error")
			}
		}
		for i, r := range out {
			if status == Aggregated && r.SubSequenceNumber != int64(i) {
				t.Fatalf("sub %d at %d", r.SubSequenceNumber, i)
			}
		}
		// Also with the body wrapped as a valid-checksum aggregate.
		_, _, _ = FullRange.Deaggregate(nil, record.Record{Data: wrap(data)})
	})
}

func BenchmarkDeaggregate(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		recs := make([]UserRecord, n)
		for i := range recs {
			recs[i] = UserRecord{PartitionKey: fmt.Sprintf("partition-%d", i), Data: bytes.Repeat([]byte{'a'}, 1024/n+16)}
		}
		agg, err := Aggregate(recs)
		if err != nil {
			b.Fatal(err)
		}
		in := record.Record{Data: agg, SequenceNumber: "49590338271490256608559692538361571095921575989136588898"}
		b.Run(fmt.Sprintf("subrecords=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(agg)))
			var dst []record.Record
			for b.Loop() {
				dst, _, _ = FullRange.Deaggregate(dst[:0], in)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "subrecords/s")
		})
	}
	b.Run("plain", func(b *testing.B) {
		in := record.Record{Data: bytes.Repeat([]byte{'a'}, 1024), SequenceNumber: "1"}
		var dst []record.Record
		for b.Loop() {
			dst, _, _ = FullRange.Deaggregate(dst[:0], in)
		}
	})
}
