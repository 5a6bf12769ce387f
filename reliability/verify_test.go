package reliability

import (
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) int64 { return t0.Add(time.Duration(s) * time.Second).UnixNano() }
	prod := []Produced{{Key{"s0", "1", 0}, 3, 7}, {Key{"s0", "2", 0}, 3, 7}, {Key{"s0", "3", 0}, 3, 7}}
	rec := func(s, pid int, seq string) Event {
		return Event{T: at(s), Ev: "rec", Pid: pid, Shard: "s0", Seq: seq, Len: 3, CRC: 7}
	}
	cp := func(s, pid int, seq string) Event { return Event{T: at(s), Ev: "cp", Pid: pid, Shard: "s0", Seq: seq} }
	initE := func(s, pid int) Event { return Event{T: at(s), Ev: "init", Pid: pid, Shard: "s0"} }
	fault := []Fault{{What: "kill", Start: t0.Add(5 * time.Second), End: t0.Add(5 * time.Second)}}

	// Child 1 delivers 1..3, checkpoints 1, dies; child 2 starts after the
	// fault and redelivers 2..3: two legitimate duplicates.
	good := []Event{initE(0, 1), rec(1, 1, "1"), cp(2, 1, "1"), rec(3, 1, "2"), rec(4, 1, "3"),
		initE(6, 2), rec(7, 2, "2"), rec(8, 2, "3")}
	r := Verify(prod, good, fault)
	if !r.OK() || r.Duplicates != 2 || r.Delivered != 3 {
		t.Fatalf("good run: %+v", r)
	}
	if r.Recover != 3*time.Second { // 4 s (last before) -> 7 s (first new after)
		t.Errorf("recover %s, want 3s", r.Recover)
	}

	// A child of another worker (ppid 20) redelivering above the checkpoint
	// needs no fault: the lease moved. At or below it, it is a violation.
	moved := []Event{initE(0, 1), rec(1, 1, "1"), cp(2, 1, "1"), rec(3, 1, "2"), rec(4, 1, "3"),
		{T: at(6), Ev: "init", Pid: 2, PPid: 20, Shard: "s0"}, {T: at(7), Ev: "rec", Pid: 2, PPid: 20, Shard: "s0", Seq: "2", Len: 3, CRC: 7}}
	if r := Verify(prod, moved, nil); !r.OK() || r.Duplicates != 1 {
		t.Fatalf("lease moved: %+v", r)
	}
	otherWorker := append([]Event(nil), moved...)
	otherWorker[6].Seq = "1"
	otherWorker = append(otherWorker, Event{T: at(8), Ev: "rec", Pid: 2, PPid: 20, Shard: "s0", Seq: "2", Len: 3, CRC: 7})

	cases := map[string]struct {
		evs    []Event
		faults []Fault
		want   string
	}{
		"missing":          {[]Event{initE(0, 1), rec(1, 1, "1"), rec(2, 1, "2")}, nil, ""},
		"no fault":         {append([]Event(nil), good...), nil, "no fault before it"},
		"other worker":     {otherWorker, nil, "checkpoint"},
		"below checkpoint": {[]Event{initE(0, 1), rec(1, 1, "1"), rec(2, 1, "2"), cp(3, 1, "2"), rec(4, 1, "3"), initE(6, 2), rec(7, 2, "2")}, fault, "checkpoint"},
		"same child":       {[]Event{initE(0, 1), rec(1, 1, "1"), rec(2, 1, "2"), rec(3, 1, "3"), rec(6, 1, "3")}, fault, "child 1 delivered it after"},
		"corrupt":          {[]Event{initE(0, 1), rec(1, 1, "1"), rec(2, 1, "2"), {T: at(3), Ev: "rec", Pid: 1, Shard: "s0", Seq: "3", Len: 3, CRC: 8}}, nil, "data len/crc"},
		"never given":      {[]Event{initE(0, 1), rec(1, 1, "1"), rec(2, 1, "2"), rec(3, 1, "3"), cp(4, 1, "99")}, nil, "never delivered"},
	}
	for name, c := range cases {
		r := Verify(prod, c.evs, c.faults)
		if r.OK() {
			t.Errorf("%s: passed: %+v", name, r)
			continue
		}
		if c.want != "" && !strings.Contains(strings.Join(r.Violations, "\n"), c.want) {
			t.Errorf("%s: violations %q, want one containing %q", name, r.Violations, c.want)
		}
		if name == "missing" && (len(r.Missing) != 1 || r.Missing[0].Seq != "3") {
			t.Errorf("missing: %v", r.Missing)
		}
	}
}
