package retrieval

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/multilangd/multilangd/record"
)

// The GetRecords relay decoder (docs/performance.md). Kinesis sends each
// record's data as base64 text inside the JSON response and the child
// protocol wants exactly that text, so a successful GetRecords response is
// decoded here instead of by the SDK: the records keep their base64 text
// (record.Record.Data64, a substring of the response), only KPL aggregates
// are base64-decoded (for the de-aggregator), and nothing is allocated per
// record. The SDK still signs, retries, resolves endpoints and credentials,
// and decodes every error response: only its OperationDeserializer's success
// path is replaced, and only for calls made with withRelayDecoder.

// withRelayDecoder is a GetRecords option that plugs relayDeserializer into
// the call's deserialize step.
func withRelayDecoder(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, swapGetRecordsDeserializer)
}

const operationDeserializerID = "OperationDeserializer"

func swapGetRecordsDeserializer(stack *middleware.Stack) error {
	sdk, ok := stack.Deserialize.Get(operationDeserializerID)
	if !ok {
		return nil // an SDK without that step: keep its deserializer
	}
	_, err := stack.Deserialize.Swap(operationDeserializerID, &relayDeserializer{sdk: sdk})
	return err
}

// relayDeserializer decodes a 2xx GetRecords response with decodeGetRecords
// and hands everything else to the SDK's own deserializer.
type relayDeserializer struct {
	sdk middleware.DeserializeMiddleware
}

func (*relayDeserializer) ID() string { return operationDeserializerID }

// replayed is a DeserializeHandler that returns a response already received.
type replayed struct {
	out middleware.DeserializeOutput
	md  middleware.Metadata
	err error
}

func (r replayed) HandleDeserialize(context.Context, middleware.DeserializeInput) (middleware.DeserializeOutput, middleware.Metadata, error) {
	return r.out, r.md, r.err
}

func (m *relayDeserializer) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	out middleware.DeserializeOutput, md middleware.Metadata, err error,
) {
	out, md, err = next.HandleDeserialize(ctx, in)
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if err != nil || !ok || resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return m.sdk.HandleDeserialize(ctx, in, replayed{out, md, err})
	}
	defer func() { smithyhttp.CloseResponseBody(ctx, resp, false, err) }()
	body, err := readBody(resp.Body, resp.ContentLength)
	if err != nil {
		return out, md, &smithy.DeserializationError{Err: err}
	}
	p, err := decodeGetRecords(body)
	if err != nil {
		return out, md, &smithy.DeserializationError{Err: err}
	}
	out.Result = &kinesis.GetRecordsOutput{NextShardIterator: p.next, MillisBehindLatest: p.millisBehind, ChildShards: p.children}
	md.Set(relayPageKey{}, p)
	return out, md, nil
}

// relayPageKey is the result-metadata key of a relayed page.
type relayPageKey struct{}

// relayedPage returns the page relayDeserializer decoded for out, if any.
func relayedPage(out *kinesis.GetRecordsOutput) (*relayPage, bool) {
	p, ok := out.ResultMetadata.Get(relayPageKey{}).(*relayPage)
	return p, ok
}

// readBody reads the whole body into one fresh allocation and returns it as a
// string that nothing ever modifies: the records' strings are substrings of
// it and keep it alive exactly as long as any of them is referenced.
func readBody(r io.Reader, n int64) (string, error) {
	var b []byte
	var err error
	if n > 0 && n < math.MaxInt32 {
		b = make([]byte, n)
		_, err = io.ReadFull(r, b)
	} else {
		b, err = io.ReadAll(r)
	}
	if err != nil || len(b) == 0 {
		return "", err
	}
	return unsafe.String(&b[0], len(b)), nil
}

// relayPage is one decoded GetRecords response.
type relayPage struct {
	// records holds one entry per Kinesis record: a plain record with
	// Data64 set, or (aggregate true) a record whose Data is decoded.
	records    []record.Record
	aggregates int // how many records are KPL aggregates (Data decoded)
	// aggregateBytes is the decoded size of those aggregates.
	aggregateBytes int
	// dataBytes is the records' decoded data size; bodyBytes the response's.
	dataBytes, bodyBytes int
	next                 *string
	millisBehind         *int64
	children             []types.ChildShard
}

// kplPrefix64 is the base64 text every KPL aggregate starts with: the 4-byte
// magic F3 89 9A C2 encodes to "84maw" followed by two bits of the next byte.
const kplPrefix64 = "84maw"

// decoder is a cursor over a JSON response.
type decoder struct {
	s string
	i int
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("GetRecords response at byte %d: %s", d.i, fmt.Sprintf(format, args...))
}

func (d *decoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (d *decoder) peek() byte {
	d.ws()
	if d.i >= len(d.s) {
		return 0
	}
	return d.s[d.i]
}

func (d *decoder) expect(c byte) error {
	if d.peek() != c {
		return d.errorf("want %q", c)
	}
	d.i++
	return nil
}

// null consumes a JSON null and reports whether there was one.
func (d *decoder) null() bool {
	if d.peek() == 'n' && strings.HasPrefix(d.s[d.i:], "null") {
		d.i += 4
		return true
	}
	return false
}

// str reads a JSON string. Without escapes (always, for Kinesis data,
// sequence numbers and iterators) it is a substring of the response.
func (d *decoder) str() (string, error) {
	v, escaped, err := d.rawStr()
	if err == nil && !escaped && hasControl(v) {
		return "", d.errorf("control character in string")
	}
	return v, err
}

// rawStr is str without the check for raw control characters in a string
// without escapes (escaped reports whether it had any; those were checked),
// for record data: canonicalBase64 rejects them on the way, and data that
// is not canonical is checked by data.
func (d *decoder) rawStr() (v string, escaped bool, err error) {
	if err := d.expect('"'); err != nil {
		return "", false, err
	}
	start := d.i
	end := strings.IndexByte(d.s[start:], '"')
	if end < 0 {
		return "", false, d.errorf("unterminated string")
	}
	v = d.s[start : start+end]
	if strings.IndexByte(v, '\\') < 0 {
		d.i = start + end + 1
		return v, false, nil
	}
	v, err = d.escapedStr(start - 1)
	return v, true, err
}

// hasControl reports a raw control character (invalid in a JSON string).
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 {
			return true
		}
	}
	return false
}

// escapedStr decodes the string starting at the quote at q with
// encoding/json (rare: only a string with escapes gets here).
func (d *decoder) escapedStr(q int) (string, error) {
	i := q + 1
	for i < len(d.s) && d.s[i] != '"' {
		if d.s[i] == '\\' {
			i++
		}
		i++
	}
	if i >= len(d.s) {
		return "", d.errorf("unterminated string")
	}
	var v string
	if err := json.Unmarshal([]byte(d.s[q:i+1]), &v); err != nil {
		return "", d.errorf("bad string: %v", err)
	}
	d.i = i + 1
	return v, nil
}

// number returns the raw text of a JSON number.
func (d *decoder) number() (string, error) {
	d.ws()
	start := d.i
	for d.i < len(d.s) {
		c := d.s[d.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			d.i++
			continue
		}
		break
	}
	if d.i == start {
		return "", d.errorf("want a number")
	}
	return d.s[start:d.i], nil
}

// skip skips any JSON value (fields the relay does not use).
func (d *decoder) skip() error {
	switch d.peek() {
	case '"':
		_, err := d.str()
		return err
	case '{', '[':
		var raw json.RawMessage
		dec := json.NewDecoder(strings.NewReader(d.s[d.i:]))
		if err := dec.Decode(&raw); err != nil {
			return d.errorf("bad value: %v", err)
		}
		d.i += int(dec.InputOffset())
		return nil
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		_, err := d.number()
		return err
	}
}

func (d *decoder) literal(l string) error {
	if !strings.HasPrefix(d.s[d.i:], l) {
		return d.errorf("bad literal")
	}
	d.i += len(l)
	return nil
}

// object calls field for every member of a JSON object.
func (d *decoder) object(field func(key string) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		key, err := d.str()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.errorf("want ',' or '}'")
		}
	}
}

// decodeGetRecords decodes a GetRecords response body.
func decodeGetRecords(body string) (*relayPage, error) {
	p := &relayPage{bodyBytes: len(body)}
	if body == "" {
		return p, nil
	}
	d := &decoder{s: body}
	err := d.object(func(key string) error {
		if d.null() {
			return nil
		}
		switch key {
		case "Records":
			return d.records(p)
		case "NextShardIterator":
			v, err := d.str()
			p.next = &v
			return err
		case "MillisBehindLatest":
			n, err := d.number()
			if err != nil {
				return err
			}
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				return d.errorf("MillisBehindLatest %q: %v", n, err)
			}
			p.millisBehind = &v
			return nil
		case "ChildShards":
			start := d.i
			if err := d.skip(); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(d.s[start:d.i]), &p.children); err != nil {
				return d.errorf("ChildShards: %v", err)
			}
			return nil
		}
		return d.skip()
	})
	if err != nil {
		return nil, err
	}
	return p, nil // like the SDK, ignore anything after the object
}

// records decodes the Records array into p.records.
func (d *decoder) records(p *relayPage) error {
	if err := d.expect('['); err != nil {
		return err
	}
	// A first guess at the count from the size (1 KiB records are ~1.5 KB
	// of JSON); append grows it when the records are smaller.
	p.records = make([]record.Record, 0, min(max(len(d.s)/1500, 16), 10000))
	if d.peek() == ']' {
		d.i++
		return nil
	}
	for {
		var r record.Record
		if err := d.record(&r); err != nil {
			return err
		}
		if r.Data == nil && r.Data64 == "" {
			r.Data = []byte{}
		}
		if r.Data64 == "" {
			p.aggregateBytes += len(r.Data) // decoded: an aggregate or odd base64
			if len(r.Data) >= 4 && isAggregate(r.Data) {
				p.aggregates++
			}
		}
		p.dataBytes += r.DataLen()
		p.records = append(p.records, r)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return d.errorf("want ',' or ']' in Records")
		}
	}
}

// isAggregate reports the KPL magic (the de-aggregator checks the rest).
func isAggregate(b []byte) bool {
	return b[0] == 0xF3 && b[1] == 0x89 && b[2] == 0x9A && b[3] == 0xC2
}

// record decodes one Kinesis record.
func (d *decoder) record(r *record.Record) error {
	return d.object(func(key string) error {
		if d.null() {
			return nil
		}
		var err error
		switch key {
		case "Data":
			var v string
			var escaped bool
			if v, escaped, err = d.rawStr(); err == nil {
				err = d.data(r, v, escaped)
			}
		case "PartitionKey":
			r.PartitionKey, err = d.str()
		case "SequenceNumber":
			r.SequenceNumber, err = d.str()
		case "ApproximateArrivalTimestamp":
			r.ApproximateArrivalTimestamp, err = d.epochSeconds()
		default:
			err = d.skip()
		}
		return err
	})
}

// data keeps canonical base64 text as is; it decodes KPL aggregates (whose
// text starts with kplPrefix64) and any text that is not canonical, so the
// child gets exactly the bytes the SDK path would give it.
func (d *decoder) data(r *record.Record, v string, escaped bool) error {
	if !strings.HasPrefix(v, kplPrefix64) && canonicalBase64(v) {
		r.Data64, r.Data = v, nil
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return d.errorf("record data: %v", err)
	}
	// The decoder skips raw "\r" and "\n", which JSON forbids unescaped; it
	// rejects every other control character. Only a text it shortened can
	// hold them, so only such a text is scanned.
	if !escaped && len(v) != base64.StdEncoding.EncodedLen(len(b)) && hasControl(v) {
		return d.errorf("control character in record data")
	}
	r.Data, r.Data64 = b, ""
	return nil
}

// epochSeconds parses a timestamp as the SDK does (smithy-go
// ParseEpochSeconds: seconds × 1000 rounded to float64, truncated to
// milliseconds, UTC).
func (d *decoder) epochSeconds() (time.Time, error) {
	var f float64
	if d.peek() == '"' {
		s, err := d.str()
		if err != nil {
			return time.Time{}, err
		}
		switch {
		case strings.EqualFold(s, "NaN"), strings.EqualFold(s, "Infinity"), strings.EqualFold(s, "-Infinity"):
			return time.Time{}, d.errorf("timestamp %q", s)
		default:
			return time.Time{}, d.errorf("unexpected string value for float: %s", s)
		}
	}
	n, err := d.number()
	if err != nil {
		return time.Time{}, err
	}
	if f, err = strconv.ParseFloat(n, 64); err != nil {
		return time.Time{}, d.errorf("timestamp %q: %v", n, err)
	}
	ms := f * 1000
	var i int64
	switch {
	case ms >= math.MaxInt64:
		i = math.MaxInt64
	case ms <= math.MinInt64:
		i = math.MinInt64
	default:
		i = int64(ms)
	}
	return time.Unix(0, i*1e6).UTC(), nil
}

// b64invalid[c] is 1 for a byte outside the standard base64 alphabet.
var b64invalid = func() (t [256]byte) {
	for i := range t {
		t[i] = 1
	}
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = 0
	}
	return t
}()

// canonicalBase64 reports whether s is what base64.StdEncoding would encode
// its own decoding to: padded, standard alphabet, no line breaks, zero
// unused bits.
func canonicalBase64(s string) bool {
	n := len(s)
	if n%4 != 0 {
		return false
	}
	if n == 0 {
		return true
	}
	pad := 0
	if s[n-1] == '=' {
		pad = 1
		if s[n-2] == '=' {
			pad = 2
		}
	}
	body := s[:n-pad]
	var bad byte
	i := 0
	for ; i+8 <= len(body); i += 8 {
		c := body[i : i+8]
		bad |= b64invalid[c[0]] | b64invalid[c[1]] | b64invalid[c[2]] | b64invalid[c[3]] |
			b64invalid[c[4]] | b64invalid[c[5]] | b64invalid[c[6]] | b64invalid[c[7]]
	}
	for ; i < len(body); i++ {
		bad |= b64invalid[body[i]]
	}
	if bad != 0 {
		return false
	}
	last := strings.IndexByte(b64alphabet, body[len(body)-1])
	switch pad {
	case 1:
		return last&0x3 == 0
	case 2:
		return last&0xF == 0
	}
	return true
}

const b64alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
