package testutil

import (
	"os/exec"
	"testing"
	"time"
)

// Process is a started command whose exit one goroutine observes. If it is still running when
// the test ends, it is killed (and waited for).
type Process struct {
	Cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// Start starts cmd, failing the test if it cannot be started.
func Start(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		if !p.Exited() {
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// Done is closed once the process has exited and been waited for.
func (p *Process) Done() <-chan struct{} { return p.exited }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to end and returns its exit code (128+N when it was
// killed by signal N), failing the test on a timeout.
func (p *Process) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		t.Fatalf("%v did not exit within %v", p.Cmd.Args, timeout)
	}
	code, ok := ExitCode(p.err)
	if !ok {
		t.Fatalf("wait for %v: %v", p.Cmd.Args, p.err)
	}
	return code
}

// Err is what Cmd.Wait returned; valid once Done is closed.
func (p *Process) Err() error {
	<-p.exited
	return p.err
}
