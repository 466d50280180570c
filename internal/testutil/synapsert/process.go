package synapsert

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

// Process is a Synapse started directly in the tree (without the entrypoint), whose exit one
// goroutine observes. It is killed when the test ends, and its output is logged if the test failed.
type Process struct {
	cmd    *exec.Cmd
	out    *testutil.Buffer
	exited chan struct{}
	err    error
}

// Start runs `chroot tree python3 -m synapse.app.homeserver -c config` with a minimal environment
// (the host's Python settings must not leak in) plus extraEnv.
func Start(t testing.TB, tree, config string, extraEnv ...string) *Process {
	t.Helper()
	cmd := exec.Command("chroot", tree, "python3", "-m", "synapse.app.homeserver", "-c", config)
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/root"}, extraEnv...)
	p := &Process{cmd: cmd, out: &testutil.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start synapse: %v", err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("synapse output:\n%s", p.out.String())
		}
	})
	return p
}

// Pid is the process id (chroot execs Python, so it is Synapse's).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output is everything Synapse wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// Exited reports whether Synapse has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// FailIfExited fails the test when Synapse has already exited, for use inside wait conditions.
func (p *Process) FailIfExited(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("synapse exited early: %v\n%s", p.err, p.out.String())
	default:
	}
}

// Signal sends sig to Synapse.
func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v to synapse: %v", sig, err)
	}
}

// Wait waits for Synapse to end within timeout and returns its exit code (128+N when killed by
// signal N).
func (p *Process) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		t.Fatalf("synapse did not exit within %v", timeout)
	}
	code, ok := testutil.ExitCode(p.err)
	if !ok {
		t.Fatalf("wait for synapse: %v", p.err)
	}
	return code
}
