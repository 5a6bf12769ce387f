package subprocess

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// msgKind classifies one decoded child→daemon line.
type msgKind uint8

const (
	// kindEmpty: blank or whitespace-only line, skipped silently (the
	// clients frame every message as "\n" + json + "\n").
	kindEmpty msgKind = iota
	// kindStatus: {"action":"status","responseFor":...}.
	kindStatus
	// kindCheckpoint: {"action":"checkpoint","sequenceNumber":...,"subSequenceNumber":...}.
	kindCheckpoint
	// kindIgnored: a well-formed message of a daemon→child type echoed back
	// (e.g. an initialize); Java decodes and ignores it.
	kindIgnored
)

// message is a decoded child→daemon line.
type message struct {
	kind        msgKind
	responseFor string  // kindStatus
	seq         *string // kindCheckpoint: nil = JSON null or absent
	sub         *int64  // kindCheckpoint: nil = JSON null or absent
}

// errNotProtocol marks a line that is not a protocol message at all (a
// print() from user code, non-JSON, an object without a known action); it is
// logged and skipped, as Java does.
var errNotProtocol = errors.New("not a protocol message")

// lineError marks a line that is a status or checkpoint message but malformed
// (unknown key, missing responseFor, a non-scalar sequence number). Java would
// skip such a line and then wait forever; multilangd fails the shard instead.
type lineError struct{ msg string }

func (e *lineError) Error() string { return e.msg }

// ignoredActions are daemon→child message types: decodable, but ignored when
// a child sends them.
var ignoredActions = map[string]bool{
	actionInitialize: true, actionProcessRecords: true, actionLeaseLost: true,
	actionShardEnded: true, actionShutdownRequested: true, "shutdown": true, "record": true,
}

// isJSONSpace reports JSON insignificant whitespace (what Jackson skips).
func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// decodeLine decodes one line (without its terminator) written by the child.
// Only the first JSON value on the line is considered; trailing bytes are
// ignored, as with Jackson's ObjectMapper.readValue.
func decodeLine(line []byte) (message, error) {
	i := 0
	for i < len(line) && isJSONSpace(line[i]) {
		i++
	}
	if i == len(line) {
		return message{kind: kindEmpty}, nil
	}
	if line[i] != '{' {
		return message{}, errNotProtocol
	}
	dec := json.NewDecoder(bytes.NewReader(line[i:]))
	dec.UseNumber()
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		return message{}, errNotProtocol
	}
	rawAction, ok := obj["action"]
	if !ok {
		return message{}, errNotProtocol
	}
	var action string
	if err := json.Unmarshal(rawAction, &action); err != nil {
		return message{}, errNotProtocol
	}
	switch action {
	case actionStatus:
		return decodeStatus(obj)
	case actionCheckpoint:
		return decodeCheckpoint(obj)
	}
	if ignoredActions[action] {
		return message{kind: kindIgnored}, nil
	}
	return message{}, errNotProtocol
}

func decodeStatus(obj map[string]json.RawMessage) (message, error) {
	for k := range obj {
		if k != "action" && k != "responseFor" {
			return message{}, &lineError{fmt.Sprintf("status message has unknown key %q", k)}
		}
	}
	raw, ok := obj["responseFor"]
	if !ok || isNull(raw) {
		return message{}, &lineError{"status message without responseFor"}
	}
	var rf string
	if err := json.Unmarshal(raw, &rf); err != nil {
		return message{}, &lineError{"status responseFor is not a string"}
	}
	return message{kind: kindStatus, responseFor: rf}, nil
}

func decodeCheckpoint(obj map[string]json.RawMessage) (message, error) {
	m := message{kind: kindCheckpoint}
	for k, raw := range obj {
		switch k {
		case "action", "error": // error is accepted and ignored, as in Java
		case "sequenceNumber":
			s, err := coerceString(raw)
			if err != nil {
				return message{}, &lineError{"checkpoint sequenceNumber: " + err.Error()}
			}
			m.seq = s
		case "subSequenceNumber":
			n, err := coerceInt(raw)
			if err != nil {
				return message{}, &lineError{"checkpoint subSequenceNumber: " + err.Error()}
			}
			m.sub = n
		default:
			return message{}, &lineError{fmt.Sprintf("checkpoint message has unknown key %q", k)}
		}
	}
	return m, nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// coerceString accepts a JSON string, null, or a number (Jackson coerces a
// number to its text).
func coerceString(raw json.RawMessage) (*string, error) {
	if isNull(raw) {
		return nil, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return &s, nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		s := string(raw)
		return &s, nil
	}
	return nil, errors.New("must be a string, a number or null")
}

// coerceInt accepts an integer, null, a number with a fraction (truncated,
// as Jackson's ACCEPT_FLOAT_AS_INT does), or a numeric string; "" is null.
func coerceInt(raw json.RawMessage) (*int64, error) {
	if isNull(raw) {
		return nil, nil
	}
	text := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return nil, err
		}
		if text == "" {
			return nil, nil
		}
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return &n, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f >= math.MaxInt64 || f < math.MinInt64 {
		return nil, fmt.Errorf("%s is not a 64-bit integer", truncate(raw, 64))
	}
	n := int64(f)
	return &n, nil
}
