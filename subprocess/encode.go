package subprocess

import (
	"encoding/base64"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/multilangd/multilangd/record"
)

// The encoders below append one daemon→child message to a buffer, byte for
// byte as the Java daemon's Jackson ObjectMapper writes it (Java MessageWriter): compact,
// fields in Jackson order, explicit nulls, standard padded base64, sequence
// numbers as strings, integers for timestamps and sub-sequence numbers, "\n"
// terminated. They are hand-written so a 10,000-record batch is encoded
// straight into one reused buffer without reflection or intermediate copies.

// Outgoing action names.
const (
	actionInitialize        = "initialize"
	actionProcessRecords    = "processRecords"
	actionLeaseLost         = "leaseLost"
	actionShardEnded        = "shardEnded"
	actionShutdownRequested = "shutdownRequested"
	actionCheckpoint        = "checkpoint"
	actionStatus            = "status"
)

// appendInitialize appends an initialize message; a non-empty streamName
// (multi-stream only) adds a "streamName" field after shardId.
func appendInitialize(b []byte, shardID, streamName string, seq *string, sub *int64) []byte {
	b = append(b, `{"action":"initialize","shardId":`...)
	b = appendString(b, shardID)
	if streamName != "" {
		b = append(b, `,"streamName":`...)
		b = appendString(b, streamName)
	}
	b = append(b, `,"sequenceNumber":`...)
	b = appendOptString(b, seq)
	b = append(b, `,"subSequenceNumber":`...)
	b = appendOptInt(b, sub)
	return append(b, "}\n"...)
}

// appendProcessRecords appends a processRecords message.
func appendProcessRecords(b []byte, recs []record.Record, millisBehindLatest *int64) []byte {
	b = append(b, `{"action":"processRecords","records":[`...)
	for i := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRecord(b, &recs[i])
	}
	b = append(b, `],"millisBehindLatest":`...)
	b = appendOptInt(b, millisBehindLatest)
	return append(b, "}\n"...)
}

// streamChunk is the size at which writeProcessRecords hands its buffer to
// the pipe: a processRecords line is never held whole, so the daemon's memory
// for it is this plus the largest single record, not the batch size.
const streamChunk = 64 << 10

// writeProcessRecords writes the same bytes as appendProcessRecords to w,
// encoding into buf (reused; returned for the next call) and writing it out
// whenever it reaches streamChunk.
func writeProcessRecords(w io.Writer, buf []byte, recs []record.Record, millisBehindLatest *int64) ([]byte, error) {
	b := append(buf[:0], `{"action":"processRecords","records":[`...)
	for i := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRecord(b, &recs[i])
		if len(b) >= streamChunk {
			if _, err := w.Write(b); err != nil {
				return b[:0], err
			}
			b = b[:0]
		}
	}
	b = append(b, `],"millisBehindLatest":`...)
	b = appendOptInt(b, millisBehindLatest)
	b = append(b, "}\n"...)
	_, err := w.Write(b)
	return b[:0], err
}

// appendRecord appends one record object; "action":"record" is last, as in
// Jackson's output. A nil payload is sent as "" rather than null (kclpy's
// binary_data would fail on null), and an unknown arrival time as 0 (kclpy
// crashes on a null timestamp).
func appendRecord(b []byte, r *record.Record) []byte {
	b = append(b, `{"data":"`...)
	if r.Data64 != "" {
		b = append(b, r.Data64...) // canonical base64 as received (record.Record)
	} else {
		b = base64.StdEncoding.AppendEncode(b, r.Data)
	}
	b = append(b, `","partitionKey":`...)
	b = appendString(b, r.PartitionKey)
	b = append(b, `,"sequenceNumber":`...)
	b = appendString(b, r.SequenceNumber)
	b = append(b, `,"approximateArrivalTimestamp":`...)
	var ms int64
	if !r.ApproximateArrivalTimestamp.IsZero() {
		ms = r.ApproximateArrivalTimestamp.UnixMilli()
	}
	b = strconv.AppendInt(b, ms, 10)
	b = append(b, `,"subSequenceNumber":`...)
	b = strconv.AppendInt(b, r.SubSequenceNumber, 10)
	return append(b, `,"action":"record"}`...)
}

// appendBare appends a message that has only its action (leaseLost,
// shardEnded, shutdownRequested).
func appendBare(b []byte, action string) []byte {
	b = append(b, `{"action":"`...)
	b = append(b, action...)
	return append(b, "\"}\n"...)
}

// appendCheckpointReply appends the reply to a checkpoint request: the
// request's values echoed exactly (null stays null) and the Java exception
// simple name, or null on success.
func appendCheckpointReply(b []byte, seq *string, sub *int64, errName string) []byte {
	b = append(b, `{"action":"checkpoint","sequenceNumber":`...)
	b = appendOptString(b, seq)
	b = append(b, `,"subSequenceNumber":`...)
	b = appendOptInt(b, sub)
	b = append(b, `,"error":`...)
	if errName == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, errName)
	}
	return append(b, "}\n"...)
}

func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

func appendOptInt(b []byte, n *int64) []byte {
	if n == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *n, 10)
}

const hexDigits = "0123456789ABCDEF" // Jackson writes \u00XX with upper-case hex

// appendString appends s as a JSON string the way Jackson escapes it: '"',
// '\\' and control characters below 0x20 are escaped (\b \t \n \f \r short
// forms, else \u00XX); everything else, including '/', DEL and non-ASCII, is
// written raw as UTF-8. Invalid UTF-8 (impossible in a Java String) becomes
// U+FFFD so the line always decodes in the child.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, "\uFFFD"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
