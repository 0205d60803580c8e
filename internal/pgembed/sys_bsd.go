//go:build unix && !linux

package pgembed

import "syscall"

// sysProcAttr starts a PostgreSQL program in its own process group, as
// acct when not nil. These systems get no parent-death signal: if the Go
// server is killed, the postmaster keeps running until stopped by hand.
func sysProcAttr(acct *account) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: credential(acct),
	}
}
