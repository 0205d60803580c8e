//go:build unix

package pgembed

import (
	"io/fs"
	"syscall"
)

// fileOwner returns the owner and group of fi.
func fileOwner(fi fs.FileInfo) (uid, gid uint32, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return st.Uid, st.Gid, true
}

// credential returns the identity to run as, or nil to stay ourselves.
// Groups is empty and NoSetGroups false, so Go calls setgroups(0): the
// child keeps no supplementary group of ours.
func credential(acct *account) *syscall.Credential {
	if acct == nil {
		return nil
	}
	return &syscall.Credential{Uid: acct.uid, Gid: acct.gid}
}
