//go:build linux

package pgembed

import "syscall"

// sysProcAttr starts a PostgreSQL program in its own process group, as
// acct when not nil, and has the kernel send it SIGINT (fast shutdown for
// postgres, clean-up-and-exit for initdb) if the thread that started it
// dies. Go sets the parent-death signal after changing credentials, which
// would otherwise clear it.
func sysProcAttr(acct *account) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGINT,
		Credential: credential(acct),
	}
}
