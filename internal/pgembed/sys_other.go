//go:build !unix

package pgembed

import (
	"io/fs"
	"syscall"
)

// sysProcAttr has nothing to set here: there is no root to drop and no
// process group or parent-death signal to ask for.
func sysProcAttr(*account) *syscall.SysProcAttr { return nil }

// fileOwner has no Unix ownership to report.
func fileOwner(fs.FileInfo) (uid, gid uint32, ok bool) { return 0, 0, false }
