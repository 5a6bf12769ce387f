package properties

import (
	"fmt"
	"unicode/utf16"
)

// Entry is one key/value pair of a properties file, in file order.
type Entry struct {
	Key   string
	Value string
	// Line is the 1-based line on which the logical line of this entry starts.
	Line int
}

// ReadEntries parses data with java.util.Properties.load(InputStream)
// semantics: ISO-8859-1 bytes, '#'/'!' comment lines, the first unescaped
// '=', ':' or whitespace separates key and value, whitespace around the
// separator and at line start is dropped, trailing value whitespace is kept, a
// line ending in an odd number of backslashes continues on the next line, and
// escapes \t \n \r \f \uXXXX (any other \x is x). Duplicates are all returned;
// the caller decides (later ones win in Java). The only error is a malformed
// \uXXXX escape, which Java rejects too.
func ReadEntries(file string, data []byte) ([]Entry, error) {
	var (
		entries []Entry
		errs    []error
	)
	for _, ll := range logicalLines(data) {
		key, value, err := splitKeyValue(ll.text)
		if err != nil {
			// Name the entry as written (escapes undecoded).
			rawKey, rawValue := splitRaw(ll.text)
			errs = append(errs, &Error{File: file, Line: ll.line, Key: rawKey, Value: rawValue, Msg: err.Error()})
			continue
		}
		entries = append(entries, Entry{Key: key, Value: value, Line: ll.line})
	}
	return entries, joinErrors(errs)
}

type logicalLine struct {
	text []rune
	line int
}

func isWS(c rune) bool { return c == ' ' || c == '\t' || c == '\f' }

// logicalLines mirrors java.util.Properties.LineReader, working on runes
// decoded as ISO-8859-1 (one byte = one rune) and counting natural lines.
func logicalLines(data []byte) []logicalLine {
	var (
		out         []logicalLine
		buf         []rune
		line        = 1 // current natural line
		start       = 0 // natural line where buf started
		skipWS      = true
		appended    = false // just joined a continuation line
		isNewLine   = true
		isComment   = false
		precedingBS = false
	)
	emit := func() {
		out = append(out, logicalLine{text: append([]rune(nil), buf...), line: start})
		buf = buf[:0]
	}
	for i := 0; i < len(data); i++ {
		c := rune(data[i])
		if c == '\n' || c == '\r' {
			// "\r\n" is one terminator (Java's skipLF)
			if c == '\r' && i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
			line++
		}
		if skipWS {
			if isWS(c) {
				continue
			}
			if !appended && (c == '\r' || c == '\n') {
				continue
			}
			skipWS = false
			appended = false
		}
		if isNewLine {
			isNewLine = false
			start = line
			if c == '#' || c == '!' {
				isComment = true
				continue
			}
		}
		if c != '\n' && c != '\r' {
			if isComment {
				continue
			}
			buf = append(buf, c)
			if c == '\\' {
				precedingBS = !precedingBS
			} else {
				precedingBS = false
			}
			continue
		}
		// end of a natural line
		if isComment || len(buf) == 0 {
			isComment = false
			isNewLine = true
			skipWS = true
			buf = buf[:0]
			precedingBS = false
			continue
		}
		if precedingBS {
			buf = buf[:len(buf)-1]
			skipWS = true
			appended = true
			precedingBS = false
			continue
		}
		emit()
		isNewLine = true
		skipWS = true
		precedingBS = false
	}
	if len(buf) > 0 && !isComment {
		if precedingBS {
			buf = buf[:len(buf)-1]
		}
		emit()
	}
	return out
}

// splitKeyValue mirrors Properties.load0 and loadConvert.
func splitKeyValue(l []rune) (key, value string, err error) {
	rawKey, rawValue := splitPoints(l)
	if key, err = unescape(rawKey); err != nil {
		return "", "", err
	}
	if value, err = unescape(rawValue); err != nil {
		return "", "", err
	}
	return key, value, nil
}

// splitRaw returns the key and value of a logical line as written, escapes
// undecoded, for error messages about lines that cannot be decoded.
func splitRaw(l []rune) (key, value string) {
	k, v := splitPoints(l)
	return string(k), string(v)
}

// splitPoints finds the key and the value of a logical line (Properties.load0).
func splitPoints(l []rune) (key, value []rune) {
	limit := len(l)
	keyLen, valueStart := 0, limit
	hasSep, precedingBS := false, false
	for keyLen < limit {
		c := l[keyLen]
		if (c == '=' || c == ':') && !precedingBS {
			valueStart = keyLen + 1
			hasSep = true
			break
		} else if isWS(c) && !precedingBS {
			valueStart = keyLen + 1
			break
		}
		if c == '\\' {
			precedingBS = !precedingBS
		} else {
			precedingBS = false
		}
		keyLen++
	}
	for valueStart < limit {
		c := l[valueStart]
		if !isWS(c) {
			if !hasSep && (c == '=' || c == ':') {
				hasSep = true
			} else {
				break
			}
		}
		valueStart++
	}
	return l[:keyLen], l[valueStart:]
}

// unescape mirrors Properties.loadConvert.
// Runes are collected as UTF-16 code units so that a surrogate pair written as
// two \uXXXX escapes decodes to one character, as in Java.
func unescape(in []rune) (string, error) {
	out := make([]uint16, 0, len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '\\' {
			out = append(out, uint16(c))
			continue
		}
		i++
		if i >= len(in) {
			// unreachable from ReadEntries (the reader drops a lone trailing
			// backslash); Java would index past the end, we keep nothing.
			break
		}
		c = in[i]
		switch c {
		case 'u':
			if i+4 >= len(in) {
				return "", fmt.Errorf("malformed \\uxxxx encoding")
			}
			var v rune
			for j := 1; j <= 4; j++ {
				h := in[i+j]
				switch {
				case h >= '0' && h <= '9':
					v = v<<4 + h - '0'
				case h >= 'a' && h <= 'f':
					v = v<<4 + 10 + h - 'a'
				case h >= 'A' && h <= 'F':
					v = v<<4 + 10 + h - 'A'
				default:
					return "", fmt.Errorf("malformed \\uxxxx encoding")
				}
			}
			i += 4
			out = append(out, uint16(v))
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 'f':
			out = append(out, '\f')
		default:
			out = append(out, uint16(c))
		}
	}
	return string(utf16.Decode(out)), nil
}
