package subprocess

import (
	"errors"
	"syscall"
)

// groupAliveKill reports whether process group pgid still exists.
func groupAliveKill(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
