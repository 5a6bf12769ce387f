package retrieval

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// NewSubscribeClient returns a copy of base for SubscribeToShard. Against AWS
// (no endpoint override, or an https:// one) it keeps the SDK's default HTTP
// client, which speaks HTTP/2 over TLS. For a plain http:// endpoint (an
// emulator such as kinesis-local) it uses HTTP/2 with prior knowledge (h2c),
// because SubscribeToShard needs HTTP/2. Either way the client tolerates a
// missing initial-response event (kinesis-local sends none); responses that
// carry one, as AWS's do, pass through unchanged.
//
// Keep using base for every other call: an h2c-only client cannot talk to
// HTTP/1.1 emulators such as kinesalite.
func NewSubscribeClient(base *kinesis.Client) *kinesis.Client {
	return kinesis.New(base.Options(), func(o *kinesis.Options) {
		next := o.HTTPClient
		if o.BaseEndpoint != nil && strings.HasPrefix(strings.ToLower(*o.BaseEndpoint), "http://") {
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			next = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
				t.Protocols = &p
			})
		}
		if next == nil {
			next = awshttp.NewBuildableClient()
		}
		o.HTTPClient = initialResponseClient{next: next}
	})
}

// initialResponseClient prepends a synthetic, empty "initial-response"
// event-stream message to a successful SubscribeToShard response whose first
// message is something else. aws-sdk-go-v2 requires that message; real
// Kinesis sends it, kinesis-local does not.
type initialResponseClient struct{ next kinesis.HTTPClient }

func (c initialResponseClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".SubscribeToShard") {
		return resp, err
	}
	// Peek the first message: a 4-byte total length, then the rest.
	var prelude [4]byte
	if _, err := io.ReadFull(resp.Body, prelude[:]); err != nil {
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(prelude[:]), errReader{err}), resp.Body}
		return resp, nil
	}
	total := binary.BigEndian.Uint32(prelude[:])
	if total < 16 || total > 16<<20 {
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(prelude[:]), resp.Body), resp.Body}
		return resp, nil
	}
	first := make([]byte, total)
	copy(first, prelude[:])
	if _, err := io.ReadFull(resp.Body, first[4:]); err != nil {
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(first), resp.Body), resp.Body}
		return resp, nil
	}
	if msg, err := eventstream.NewDecoder().Decode(bytes.NewReader(first), nil); err == nil {
		if et := msg.Headers.Get(":event-type"); et != nil && et.String() == "initial-response" {
			resp.Body = readCloser{io.MultiReader(bytes.NewReader(first), resp.Body), resp.Body}
			return resp, nil
		}
	}
	var synth bytes.Buffer
	var m eventstream.Message
	m.Headers.Set(":message-type", eventstream.StringValue("event"))
	m.Headers.Set(":event-type", eventstream.StringValue("initial-response"))
	m.Headers.Set(":content-type", eventstream.StringValue("application/x-amz-json-1.1"))
	m.Payload = []byte("{}")
	if err := eventstream.NewEncoder().Encode(&synth, m); err != nil {
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(first), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body = readCloser{io.MultiReader(&synth, bytes.NewReader(first), resp.Body), resp.Body}
	return resp, nil
}

type readCloser struct {
	io.Reader
	c io.Closer
}

func (r readCloser) Close() error { return r.c.Close() }

// errReader replays a read error after the peeked bytes.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
