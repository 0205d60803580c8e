package pgembed

import (
	"bufio"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procStat returns the state letter and parent pid of pid from
// /proc/<pid>/stat, or ok=false if there is no such process.
func procStat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) S ppid ...": comm may hold spaces and parentheses.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	ppid, _ = strconv.Atoi(f[1])
	return f[0][0], ppid, true
}

// alive reports whether pid is a live process (a zombie is not).
func alive(pid int) bool {
	state, _, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// childrenOf lists the live processes whose parent is pid.
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var kids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, ppid, ok := procStat(p); ok && ppid == pid && state != 'Z' {
			kids = append(kids, p)
		}
	}
	return kids
}

func TestStop_LeavesNoProcess(t *testing.T) {
	t.Parallel()
	s := startServer(t, newDataDir(t))
	conn := connect(t, s) // an open session must not hold Stop up
	backend := queryString(t, conn, "SELECT pg_backend_pid()::text")

	pid := s.cmd.Process.Pid
	kids := childrenOf(t, pid)
	if !strings.Contains(fmt.Sprint(kids), backend) {
		t.Fatalf("backend %s is not among the postmaster's children %v", backend, kids)
	}
	if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
		t.Errorf("postmaster process group %d (%v), want its own group %d", pgid, err, pid)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, p := range append([]int{pid}, kids...) {
		if alive(p) {
			t.Errorf("process %d still alive after Stop", p)
		}
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v, want the first one's nil", err)
	}
}

// TestServer_StopsWhenParentDies kills a stand-in Go server (this test
// binary, see runHelper) with SIGKILL and expects its postmaster to shut
// down on the parent-death signal.
func TestServer_StopsWhenParentDies(t *testing.T) {
	t.Parallel()
	dataDir := newDataDir(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	helper := osexec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"="+dataDir)
	helper.Stderr = t.Output()
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		helper.Wait()
		t.Fatalf("helper did not report the postmaster pid: %v", err)
	}
	var pid int
	var sockDir string
	if _, err := fmt.Sscan(line, &pid, &sockDir); err != nil {
		t.Fatalf("helper said %q: %v", line, err)
	}
	t.Cleanup(func() {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		// Nobody called Stop, so nobody removed the socket dir.
		os.RemoveAll(sockDir)
	})
	if !alive(pid) {
		t.Fatalf("postmaster %d not running while its parent is", pid)
	}

	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	helper.Wait() // "signal: killed", as intended

	// Bounded wait, not a timing assertion: a fast shutdown takes well
	// under a second; a missing parent-death signal never ends.
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("postmaster %d still running 30s after its parent was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(sockDir, socketFileName)); !os.IsNotExist(err) {
		t.Errorf("socket after shutdown: %v, want it removed", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); !os.IsNotExist(err) {
		t.Errorf("postmaster.pid after shutdown: %v, want it removed by a clean (fast) shutdown", err)
	}
}
