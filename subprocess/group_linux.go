package subprocess

import (
	"bytes"
	"os"
	"strconv"
)

// groupAlive reports whether any live (non-zombie) process is in process
// group pgid. Zombies are ignored: they are already dead and, once orphaned,
// are reaped by init (or linger where PID 1 does not reap, which no signal
// could change).
func groupAlive(pgid int) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return groupAliveKill(pgid)
	}
	for _, e := range ents {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		st, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		// Fields after the ")" closing comm: state ppid pgrp ...
		i := bytes.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(st[i+1:])
		if len(f) < 3 {
			continue
		}
		if f[0][0] == 'Z' || f[0][0] == 'X' {
			continue
		}
		if g, err := strconv.Atoi(string(f[2])); err == nil && g == pgid {
			return true
		}
	}
	return false
}
