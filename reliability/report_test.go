package reliability

import (
	"strings"
	"testing"
	"time"
)

func TestReportKeepsRowsNotRun(t *testing.T) {
	var first strings.Builder
	if err := WriteReport(&first, "# R\n", []Row{
		{Scenario: "TestA", Injected: "a", Produced: 3, Delivered: 3, Passed: true, Command: "go test -run A"},
		{Scenario: "TestB", Injected: "b", Produced: 5, Delivered: 4, Recover: 1500 * time.Millisecond, Command: "go test -run B"},
	}, nil, nil); err != nil {
		t.Fatal(err)
	}
	rerun := []Row{{Scenario: "TestB", Injected: "b", Produced: 5, Delivered: 5, Passed: true, Command: "go test -run B"}}
	var second strings.Builder
	if err := WriteReport(&second, "# R\n", rerun, KeptRows(first.String(), rerun), []Sample{{At: time.Minute, Daemon: "w1", RSSKiB: 10, Goroutines: -1}}); err != nil {
		t.Fatal(err)
	}
	got := second.String()
	for _, want := range []string{"| TestA | a | 3 | 3 | 0 | – | 0 | pass |", "| TestB | b | 5 | 5 | 0 | – | 0 | pass |", "| 1m0s | w1 | 10 | – |"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "FAIL") || strings.Index(got, "TestA") > strings.Index(got, "TestB") {
		t.Errorf("old TestB row kept or rows unsorted:\n%s", got)
	}
}
