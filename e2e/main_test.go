package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"switchboard/e2e/client"
	"switchboard/internal/database/dbtest"
	"switchboard/internal/mail/mailtest"
)

// serverBinary is the path of the server built by TestMain.
var serverBinary string

// artifactsDir receives the screenshots of the browser tests; it is
// git-ignored and kept after the run.
const artifactsDir = "artifacts"

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	flag.Parse() // for testing.Verbose and -run before m.Run
	dir, err := os.MkdirTemp("", "switchboard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	start := time.Now()
	bin, err := buildServer(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build the server:", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Printf("e2e: built %s (race=%v) in %s\n", bin, raceEnabled, time.Since(start).Round(time.Millisecond))
	}
	serverBinary = bin
	if err := resetArtifacts(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}

	code := m.Run()
	if code == 0 {
		// Every test stops its server, browser and HTTP connections in its
		// cleanups, so nothing of ours may be left running. No goroutine is
		// ignored: chromedp's goroutines all end once the browser context is
		// cancelled and the allocator has waited for Chromium to exit.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: goroutines leaked:", err)
			code = 1
		}
	}
	return code
}

// buildServer builds cmd/server into dir, with the race detector when the
// tests run with it.
func buildServer(dir string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "switchboard")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool, append(args, "./cmd/server")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return bin, nil
}

// repoRoot finds the module root above the working directory (go test runs
// in e2e/).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module switchboard")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of module switchboard above the working directory")
		}
		dir = parent
	}
}

// resetArtifacts empties the artifacts directory so it shows this run only.
func resetArtifacts() error {
	if err := os.MkdirAll(artifactsDir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(artifactsDir, "*.png"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	return nil
}

// server is one running server process.
type server struct {
	URL     string // http://127.0.0.1:PORT, its SWITCHBOARD_BASE_URL unless opts.Env sets another
	DataDir string
	Mail    *mailtest.Server // where the server sends its mail

	dbURL   string
	opts    launchOptions // as launched, ports filled in: a restart reuses them
	cmd     *exec.Cmd
	log     *logBuffer    // the process's stdout and stderr
	exited  chan struct{} // closed when the process has exited
	waitErr error         // the result of cmd.Wait; read after exited is closed
	killed  bool          // the test crashed it on purpose (kill)
}

// launchOptions are what a test sets beyond launch's defaults.
type launchOptions struct {
	// Port and RaftPort are the HTTP and Raft ports to listen on on
	// 127.0.0.1; "" picks a free one.
	Port, RaftPort string
	// Env holds extra KEY=value settings; they win over the defaults
	// (os/exec keeps the last value of a key).
	Env []string
	// Mail is the SMTP server the server sends mail to.
	Mail *mailtest.Server
}

// startServer starts the binary on a fresh database and data directory,
// waits until GET /readyz answers 200, and stops it with SIGTERM when the
// test ends, failing the test unless it exits cleanly within 15 s.
func startServer(t *testing.T) *server {
	t.Helper()
	start := time.Now()
	dbURL := dbtest.NewURL(t)
	dataDir := t.TempDir()
	smtp := mailtest.New(t)
	// The port is found by listening on :0 and closing; another process can
	// take it before the server binds it, so a bind failure is retried.
	for attempt := 1; ; attempt++ {
		s, err := launch(dbURL, dataDir, launchOptions{Mail: smtp})
		if err == nil {
			t.Logf("server %s ready in %s", s.URL, time.Since(start).Round(time.Millisecond))
			t.Cleanup(func() { s.stop(t) })
			return s
		}
		if attempt < 3 && errors.Is(err, errPortTaken) {
			t.Logf("start server (attempt %d): %v; retrying", attempt, err)
			continue
		}
		t.Fatalf("start server: %v", err)
	}
}

var errPortTaken = errors.New("the port was taken")

// metricsToken lets the tests read /metrics of the servers they start.
const metricsToken = "e2e-metrics-token-0123456789"

// launch starts the binary on dbURL and dataDir and waits until GET
// /readyz answers 200 (for a node of a Raft group: until the group has a
// leader). A port that another process took first is errPortTaken.
func launch(dbURL, dataDir string, opts launchOptions) (*server, error) {
	var err error
	if opts.Port == "" {
		if opts.Port, err = freePort(); err != nil {
			return nil, err
		}
	}
	if opts.RaftPort == "" {
		if opts.RaftPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	s := &server{
		URL:     "http://127.0.0.1:" + opts.Port,
		DataDir: dataDir,
		Mail:    opts.Mail,
		dbURL:   dbURL,
		opts:    opts,
		log:     &logBuffer{},
		exited:  make(chan struct{}),
	}
	cmd := exec.Command(serverBinary)
	cmd.Env = append(serverEnv(),
		"SWITCHBOARD_ADDR=127.0.0.1:"+opts.Port,
		"SWITCHBOARD_RAFT_ADDR=127.0.0.1:"+opts.RaftPort,
		"SWITCHBOARD_BASE_URL="+s.URL,
		"SWITCHBOARD_DATA_DIR="+dataDir,
		"DATABASE_URL="+dbURL,
		// ada is the platform's operator in these tests: she may see the
		// Raft group.
		"SWITCHBOARD_OPERATORS=ada@example.com",
		"SWITCHBOARD_METRICS_TOKEN="+metricsToken,
	)
	if opts.Mail != nil {
		cmd.Env = append(cmd.Env, "SWITCHBOARD_SMTP_URL="+opts.Mail.URL(), "SWITCHBOARD_MAIL_FROM=Switchboard <switchboard@example.test>")
	}
	cmd.Env = append(cmd.Env, opts.Env...)
	if raceEnabled && os.Getenv("GORACE") == "" {
		// The race runtime sleeps 1 s at exit by default so late reports
		// get out; the server has stopped serving by then, so 50 ms do.
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=50")
	}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.cmd = cmd
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	c := client.New(s.URL)
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ready(ctx)
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			if strings.Contains(s.log.String(), "address already in use") {
				return nil, fmt.Errorf("%w: %v\n%s", errPortTaken, s.waitErr, s.log.tail())
			}
			return nil, fmt.Errorf("the server exited before it was ready: %v\nits output:\n%s", s.waitErr, s.log.tail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill() // it is stuck; nothing to do if it is gone already
			<-s.exited
			return nil, fmt.Errorf("GET /readyz did not answer 200 within 30s (last: %v)\nits output:\n%s", err, s.log.tail())
		}
	}
}

// kill crashes the server with SIGKILL: no shutdown code runs, as in a
// power cut. It waits for the process to be gone; the server's stop at the
// end of the test then only checks its output.
func (s *server) kill(t *testing.T) {
	t.Helper()
	s.killed = true
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill the server %s: %v", s.URL, err)
	}
	<-s.exited
}

// stop sends SIGTERM and checks that the server shuts down cleanly: exit
// status 0 within 15 s, and (with -race) no data race reported. A server the
// test killed is only checked for data races.
func (s *server) stop(t *testing.T) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("server %s stopped in %s", s.URL, time.Since(start).Round(time.Millisecond)) }()
	select {
	case <-s.exited:
		if !s.killed {
			t.Errorf("the server exited before the test ended: %v", s.waitErr)
		}
	default:
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("send SIGTERM to the server: %v", err)
		}
		select {
		case <-s.exited:
			if s.waitErr != nil {
				t.Errorf("the server did not exit cleanly after SIGTERM: %v", s.waitErr)
			}
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill() // last resort; the test fails anyway
			<-s.exited
			t.Errorf("the server did not exit within 15s of SIGTERM")
		}
	}
	out := s.log.String()
	if strings.Contains(out, "WARNING: DATA RACE") {
		t.Errorf("the race detector found a data race in the server")
	}
	if t.Failed() {
		t.Logf("server output (%s):\n%s", s.URL, s.log.tail())
	}
}

// serverEnv is the test's environment without the server's own settings,
// so a developer's SWITCHBOARD_* or DATABASE_URL cannot leak in.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SWITCHBOARD_") || strings.HasPrefix(kv, "DATABASE_URL=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// logBuffer collects a process's output; the exec package writes to it from
// its own goroutine while tests read it.
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns the last 200 lines, enough to see why a process failed
// without drowning the test output.
func (b *logBuffer) tail() string {
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) > 200 {
		lines = append([]string{fmt.Sprintf("… %d earlier lines", len(lines)-200)}, lines[len(lines)-200:]...)
	}
	return strings.Join(lines, "\n")
}

// newClient returns an API client of s whose connections close when the
// test ends.
func (s *server) newClient(t *testing.T) *client.Client {
	c := client.New(s.URL)
	t.Cleanup(c.CloseIdleConnections)
	return c
}
