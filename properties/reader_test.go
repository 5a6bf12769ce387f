package properties

import (
	"reflect"
	"strings"
	"testing"
)

func TestReadEntriesSyntax(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Entry
	}{
		{"equals", "a=b\n", []Entry{{"a", "b", 1}}},
		{"colon", "a:b\n", []Entry{{"a", "b", 1}}},
		{"whitespace separator", "a b\n", []Entry{{"a", "b", 1}}},
		{"tab and formfeed separators", "a\t\fb\n", []Entry{{"a", "b", 1}}},
		{"whitespace around separator dropped", "  a   =   b\n", []Entry{{"a", "b", 1}}},
		{"whitespace then equals is one separator", "a = = b\n", []Entry{{"a", "= b", 1}}},
		{"trailing value whitespace kept", "a = b  \t\n", []Entry{{"a", "b  \t", 1}}},
		{"key without value", "a\n", []Entry{{"a", "", 1}}},
		{"key with separator, no value", "a=\n", []Entry{{"a", "", 1}}},
		{"hash comment", "# c\na=b\n", []Entry{{"a", "b", 2}}},
		{"bang comment", "! c\na=b\n", []Entry{{"a", "b", 2}}},
		{"indented comment", "   # c\na=b", []Entry{{"a", "b", 2}}},
		{"hash inside value is literal", "a=b # not a comment\n", []Entry{{"a", "b # not a comment", 1}}},
		{"comment ending in backslash does not continue", "# c \\\na=b\n", []Entry{{"a", "b", 2}}},
		{"blank lines skipped", "\n\n  \na=b\n", []Entry{{"a", "b", 4}}},
		{"continuation", "a = one \\\n    two\n", []Entry{{"a", "one two", 1}}},
		{"continuation in key", "ab\\\n  c = d\n", []Entry{{"abc", "d", 1}}},
		{"double continuation line numbers", "a=1\\\n2\\\n3\nb=4\n", []Entry{{"a", "123", 1}, {"b", "4", 4}}},
		{"even backslashes do not continue", "a=x\\\\\nb=y\n", []Entry{{"a", "x\\", 1}, {"b", "y", 2}}},
		{"backslash at EOF dropped", "a=x\\", []Entry{{"a", "x", 1}}},
		{"empty continuation ends the line", "a=x\\\n\nb=y", []Entry{{"a", "x", 1}, {"b", "y", 3}}},
		{"continuation keeps comment chars", "a=x\\\n  #y\n", []Entry{{"a", "x#y", 1}}},
		{"CRLF", "a=b\r\nc=d\r\n", []Entry{{"a", "b", 1}, {"c", "d", 2}}},
		{"CR only", "a=b\rc=d\r", []Entry{{"a", "b", 1}, {"c", "d", 2}}},
		{"CRLF continuation", "a=b\\\r\n  c\r\nd=e", []Entry{{"a", "bc", 1}, {"d", "e", 3}}},
		{"escapes", `a=\t\n\r\f\x\\`, []Entry{{"a", "\t\n\r\fx\\", 1}}},
		{"unicode escape", `a=caf\u00e9 \u20AC`, []Entry{{"a", "café €", 1}}},
		{"surrogate pair", `a=\uD83D\uDE00`, []Entry{{"a", "😀", 1}}},
		{"ISO-8859-1 bytes", "a=caf\xe9", []Entry{{"a", "café", 1}}},
		{"UTF-8 bytes become mojibake", "a=caf\xc3\xa9", []Entry{{"a", "cafÃ©", 1}}},
		{"escaped separator in key", `a\=b\:c\ d = v`, []Entry{{"a=b:c d", "v", 1}}},
		{"quotes are literal", `workerId = "w1"`, []Entry{{"workerId", `"w1"`, 1}}},
		{"duplicates all returned", "a=1\na=2\n", []Entry{{"a", "1", 1}, {"a", "2", 2}}},
		{"no trailing newline", "a=b", []Entry{{"a", "b", 1}}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadEntries("f", []byte(tt.in))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestReadEntriesMalformedUnicode(t *testing.T) {
	for _, in := range []string{`a=\u12`, `a=\u12G4`, "x=1\nb=\\uZZZZ\n"} {
		_, err := ReadEntries("f.properties", []byte(in))
		errs := Errors(err)
		if len(errs) != 1 || !strings.Contains(errs[0].Msg, "malformed") {
			t.Fatalf("%q: want one malformed error, got %v", in, err)
		}
		if want := strings.Count(in, "\n") + 1; errs[0].Line != want && !strings.HasSuffix(in, "\n") {
			t.Fatalf("%q: line %d, want %d", in, errs[0].Line, want)
		}
	}
}
