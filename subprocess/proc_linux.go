package subprocess

import "syscall"

// sysProcAttr puts the child in its own process group (so a terminal Ctrl-C
// reaches only the daemon, which then shuts children down in order) and has
// the kernel SIGKILL it if the daemon dies, so a crash never leaves orphans.
// Pdeathsig fires when the forking OS thread exits; the Go runtime does not
// retire threads except ones locked with LockOSThread, which this package
// never uses.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
