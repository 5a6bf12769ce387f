package properties

import (
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader. Seeds live in
// testdata/fuzz/FuzzLoad (run with `make fuzz`).
func FuzzLoad(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte(base + "maxRecords = 100\nidleTimeBetweenReadsInMillis = 5\n"))
	f.Add([]byte("a\\\n b = c\\u00e9\r\n#x\\\n!y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _ := ReadEntries("fuzz", data)
		last := 0
		for _, e := range entries {
			if e.Line < 1 || e.Line < last || e.Line > strings.Count(string(data), "\n")+strings.Count(string(data), "\r")+1 {
				t.Fatalf("entry %+v: bad line (previous %d)", e, last)
			}
			last = e.Line
		}
		c, err := Parse("fuzz", data)
		if err != nil {
			for _, e := range Errors(err) {
				if e.File != "fuzz" || e.Msg == "" {
					t.Fatalf("malformed error %#v", e)
				}
			}
			return
		}
		if c.ExecutableName == "" || c.ApplicationName == "" || c.StreamName == "" || len(c.CredentialsKinesis) == 0 {
			t.Fatalf("valid config lacks a required value: %+v", c)
		}
		if c.RetrievalMode != RetrievalFanout && c.RetrievalMode != RetrievalPolling {
			t.Fatalf("unresolved retrieval mode %q", c.RetrievalMode)
		}
		if c.MaxRecords < 1 || c.MaxRecords > 10000 || c.IdleTimeBetweenReads < 200e6 {
			t.Fatalf("polling bounds violated: %d %v", c.MaxRecords, c.IdleTimeBetweenReads)
		}
		_ = c.Settings()
	})
}
