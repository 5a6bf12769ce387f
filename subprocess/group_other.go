//go:build unix && !linux

package subprocess

func groupAlive(pgid int) bool { return groupAliveKill(pgid) }
