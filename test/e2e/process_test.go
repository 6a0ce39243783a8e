package e2e_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/testenv"
)

// root is the repository root (this package is test/e2e).
var root = func() string { p, _ := filepath.Abs("../.."); return p }()

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds bin/mss-login from this checkout once per test run, into a temp dir.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "mss-e2e-bin")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "mss-login")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/mss-login")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &testenv.CmdError{Err: err, Stderr: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/mss-login: %v", buildErr)
	}
	return binPath
}

// process is a child process whose output goes to a log file, shown when the test fails.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *testenv.SyncBuffer
	done chan struct{}
}

func start(t testing.TB, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, log: &testenv.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- %s output (last 4000 bytes) ---\n%s", name, tail(p.log.String(), 4000))
		}
	})
	return p
}

// stop sends SIGTERM (both servers shut down cleanly on it) and waits up to 10 s.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// run runs a command with exactly env; stderr is in the error.
var run = testenv.Run

// eventually polls f every 100 ms until it returns "" or within passes; it returns how long it took.
func eventually(t *testing.T, within time.Duration, what string, f func() string) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < within {
		if last = f(); last == "" {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %s", what, within, last)
	return 0
}
