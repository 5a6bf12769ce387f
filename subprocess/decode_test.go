package subprocess

import (
	"errors"
	"testing"
	"unicode/utf8"
)

func TestDecodeLine(t *testing.T) {
	type want struct {
		kind     msgKind
		rf       string
		seq      *string
		sub      *int64
		notProto bool // errNotProtocol
		lineErr  bool // *lineError
	}
	tests := []struct {
		in   string
		want want
	}{
		{``, want{kind: kindEmpty}},
		{"  \t ", want{kind: kindEmpty}},
		{`{"action":"status","responseFor":"initialize"}`, want{kind: kindStatus, rf: "initialize"}},
		{`{"action": "status", "responseFor": "processRecords"}`, want{kind: kindStatus, rf: "processRecords"}}, // Python json.dumps
		{`  {"responseFor":"leaseLost","action":"status"}  `, want{kind: kindStatus, rf: "leaseLost"}},
		{`{"action":"status","responseFor":"shardEnded"}{"action":"status","responseFor":"x"}`, want{kind: kindStatus, rf: "shardEnded"}},
		{`{"action":"status","responseFor":"initialize"} trailing garbage`, want{kind: kindStatus, rf: "initialize"}},
		{`{"action":"status","responseFor":"Initialize"}`, want{kind: kindStatus, rf: "Initialize"}}, // mismatch is the session's call
		{`{"action":"status"}`, want{lineErr: true}},
		{`{"action":"status","responseFor":null}`, want{lineErr: true}},
		{`{"action":"status","responseFor":1}`, want{lineErr: true}},
		{`{"action":"status","responseFor":"initialize","extra":true}`, want{lineErr: true}},
		{`{"action":"checkpoint","sequenceNumber":"123","subSequenceNumber":4}`, want{kind: kindCheckpoint, seq: ptr("123"), sub: ptr(int64(4))}},
		{`{"action": "checkpoint", "sequenceNumber": null, "subSequenceNumber": null}`, want{kind: kindCheckpoint}},
		{`{"action":"checkpoint","sequenceNumber":"123"}`, want{kind: kindCheckpoint, seq: ptr("123")}}, // Node
		{`{"action":"checkpoint"}`, want{kind: kindCheckpoint}},                                         // Node, undefined
		{`{"action":"checkpoint","sequenceNumber":123,"subSequenceNumber":"5"}`, want{kind: kindCheckpoint, seq: ptr("123"), sub: ptr(int64(5))}},
		{`{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":2.9}`, want{kind: kindCheckpoint, seq: ptr("1"), sub: ptr(int64(2))}},
		{`{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":""}`, want{kind: kindCheckpoint, seq: ptr("1")}},
		{`{"action":"checkpoint","sequenceNumber":"1","error":"x"}`, want{kind: kindCheckpoint, seq: ptr("1")}},
		{`{"action":"checkpoint","sequenceNumber":"abc"}`, want{kind: kindCheckpoint, seq: ptr("abc")}}, // Checkpointer rejects it
		{`{"action":"checkpoint","checkpoint":"123"}`, want{lineErr: true}},                             // KCL 1.x form
		{`{"action":"checkpoint","sequenceNumber":{"a":1}}`, want{lineErr: true}},
		{`{"action":"checkpoint","sequenceNumber":true}`, want{lineErr: true}},
		{`{"action":"checkpoint","subSequenceNumber":"x"}`, want{lineErr: true}},
		{`{"action":"checkpoint","subSequenceNumber":1e30}`, want{lineErr: true}},
		{`{"action":"initialize","shardId":"s"}`, want{kind: kindIgnored}},
		{`{"action":"shutdown","reason":"TERMINATE"}`, want{kind: kindIgnored}},
		{`{"action":"Status","responseFor":"initialize"}`, want{notProto: true}},
		{`{"action":"bogus"}`, want{notProto: true}},
		{`{"action":5}`, want{notProto: true}},
		{`{"no":"action"}`, want{notProto: true}},
		{`[1,2]`, want{notProto: true}},
		{`hello from print()`, want{notProto: true}},
		{`{'action':'status'}`, want{notProto: true}},
		{`{"action":"status","responseFor":"init`, want{notProto: true}},
	}
	for _, tc := range tests {
		m, err := decodeLine([]byte(tc.in))
		var le *lineError
		switch {
		case tc.want.notProto:
			if !errors.Is(err, errNotProtocol) {
				t.Errorf("%s: err = %v, want errNotProtocol", tc.in, err)
			}
			continue
		case tc.want.lineErr:
			if !errors.As(err, &le) {
				t.Errorf("%s: err = %v, want *lineError", tc.in, err)
			}
			continue
		case err != nil:
			t.Errorf("%s: unexpected err %v", tc.in, err)
			continue
		}
		if m.kind != tc.want.kind || m.responseFor != tc.want.rf || !eqPtr(m.seq, tc.want.seq) || !eqPtr(m.sub, tc.want.sub) {
			t.Errorf("%s: got %+v (seq %v sub %v), want %+v", tc.in, m, deref(m.seq), deref(m.sub), tc.want)
		}
	}
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// FuzzDecodeLine: the decoder never panics, classifies every line exactly
// once, and a checkpoint it accepts re-encodes to a valid reply echoing it.
func FuzzDecodeLine(f *testing.F) {
	for _, s := range []string{
		`{"action":"status","responseFor":"initialize"}`,
		`{"action": "checkpoint", "sequenceNumber": "1", "subSequenceNumber": 2}`,
		`{"action":"checkpoint","sequenceNumber":12.5,"subSequenceNumber":"7"}`,
		`{"action":"initialize","shardId":"x","sequenceNumber":null,"subSequenceNumber":0}`,
		"",
		"not json",
		`[{"action":"status"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := decodeLine(line)
		var le *lineError
		switch {
		case err == nil:
			if m.kind == kindCheckpoint {
				reply := appendCheckpointReply(nil, m.seq, m.sub, "")
				if !utf8.Valid(reply) {
					t.Fatalf("reply %q is not UTF-8", reply)
				}
				back, err := decodeLine(reply)
				if err != nil || back.kind != kindCheckpoint || !eqPtr(back.sub, m.sub) {
					t.Fatalf("reply %q decodes as %+v, %v", reply, back, err)
				}
				if m.seq != nil && utf8.ValidString(*m.seq) && !eqPtr(back.seq, m.seq) {
					t.Fatalf("reply %q does not echo %q", reply, *m.seq)
				}
			}
		case errors.Is(err, errNotProtocol), errors.As(err, &le):
		default:
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
	})
}
