// Package testutil holds the few helpers every test in this repository shares: waiting on a
// condition with a deadline (never sleeping as synchronisation) and picking free loopback ports
// (never fixed ones: other work shares this machine).
package testutil

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it returns true or the deadline passes, then
// fails the test with what. It is the only sanctioned way to wait for another process.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !WaitFor(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// WaitFor polls cond until it returns true (reporting true) or timeout passes (reporting false).
// The poll interval starts at 1 ms and grows to 50 ms so fast conditions are seen quickly and slow
// ones do not burn a core that other tests need.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	interval := time.Millisecond
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
		if interval < 50*time.Millisecond {
			interval *= 2
		}
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. The listener is closed
// before returning, so a tiny race remains; callers that can pass a listener should do so instead.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RequireRoot skips the test loudly when not running as root. CI runs as root, so a skip there
// would be a bug in the environment, not in the code.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED (needs root): this test uses namespaces, chroot or privileged ports; CI runs it as root")
	}
}

// Buffer is a bytes.Buffer that a process's output copier and the test can use at once.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ExitCode turns what exec.Cmd.Wait returned into the code a shell would show: 0, the exit
// code, or 128+N when the process was killed by signal N. ok is false when err is not about how
// the process ended (it could not be waited for at all).
func ExitCode(err error) (code int, ok bool) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, true
	case errors.As(err, &ee):
		if ws, isWS := ee.Sys().(syscall.WaitStatus); isWS && ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ee.ExitCode(), true
	}
	return -1, false
}
