// Package child owns one child process at a time: it starts it in its own process group with
// default signal dispositions, gives it the terminal only when stdin is one, signals the whole
// group, stops it with a signal and a timeout followed by SIGKILL, and (with Supervisor) restarts
// it with exponential back-off, jitter and a failure budget.
//
// It uses os/exec and so must not share a process with a wait4(-1) reaper: see internal/pid1.
package child

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Spec says what to run. It is a value: a Supervisor asks for a fresh one before every start, so
// a restart can pick up a new environment or arguments.
type Spec struct {
	// Name labels the child in logs and events ("synapse", "keybase service").
	Name string
	// Path is the program; without a slash it is looked up in PATH. Args is the full argv,
	// Args[0] included; when empty it defaults to []string{Path}.
	Path string
	Args []string
	// Env is the child's whole environment. A nil Env is an empty environment, never an
	// inherited one: secrets reach a child only when its caller puts them there.
	Env []string
	Dir string
	// Stdin, Stdout and Stderr are handed to the child as they are. Pass *os.File values (the
	// entrypoint's own fds) so the child's output reaches the container log untouched, with no
	// copying goroutine in between.
	Stdin          *os.File
	Stdout, Stderr io.Writer
	ExtraFiles     []*os.File
	// Credential runs the child as another user (Synapse as 991:991).
	Credential *syscall.Credential
	// Foreground gives the child's process group the terminal when Stdin is a terminal, so
	// Ctrl-C under `docker run -it` reaches it and it can read the terminal without SIGTTIN.
	Foreground bool
}

// Process is one started child. It is safe for concurrent use.
type Process struct {
	name    string
	pid     int
	started time.Time
	done    chan struct{}

	mu     sync.Mutex
	status Status
}

// Start runs spec in a new process group. The child starts with default signal dispositions (Go
// resets every signal it handles; the entrypoint handles them all) and the signal mask the
// entrypoint inherited. A program that cannot be run comes back as an error whose Status (see
// StartStatus) carries 126 or 127.
func Start(spec Spec) (*Process, error) {
	argv := spec.Args
	if len(argv) == 0 {
		argv = []string{spec.Path}
	}
	cmd := exec.Command(spec.Path, argv[1:]...)
	cmd.Args = argv
	cmd.Env = spec.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Dir = spec.Dir
	if spec.Stdin != nil {
		cmd.Stdin = spec.Stdin
	}
	cmd.Stdout, cmd.Stderr = spec.Stdout, spec.Stderr
	cmd.ExtraFiles = spec.ExtraFiles
	// Bound the wait for output copying when a writer is not an *os.File and a grandchild keeps
	// the pipe open after the child is gone.
	cmd.WaitDelay = 2 * time.Second
	attr := &syscall.SysProcAttr{Setpgid: true, Credential: spec.Credential}
	if spec.Foreground && spec.Stdin != nil && isTerminal(spec.Stdin) {
		// Ctty is a descriptor number in the child: 0, its stdin.
		attr.Foreground, attr.Ctty = true, 0
	}
	cmd.SysProcAttr = attr
	if cmd.Err != nil {
		return nil, &StartError{Name: spec.Name, Status: startFailure(cmd.Err)}
	}
	if err := cmd.Start(); err != nil {
		return nil, &StartError{Name: spec.Name, Status: startFailure(err)}
	}
	p := &Process{name: spec.Name, pid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{})}
	go p.wait(cmd)
	return p, nil
}

// StartError is a child that could not be started. Its Status holds 126 or 127.
type StartError struct {
	Name   string
	Status Status
}

func (e *StartError) Error() string { return fmt.Sprintf("start %s: %v", e.Name, e.Status.Err) }
func (e *StartError) Unwrap() error { return e.Status.Err }

// StartStatus returns the Status of a start failure, or false when err is not one.
func StartStatus(err error) (Status, bool) {
	var se *StartError
	if errors.As(err, &se) {
		return se.Status, true
	}
	return Status{}, false
}

func (p *Process) wait(cmd *exec.Cmd) {
	err := cmd.Wait()
	st := Status{}
	if ws, ok := waitStatus(cmd); ok {
		st = statusFromWait(ws)
	} else if err != nil {
		st = Status{Code: 1, Err: err}
	}
	p.mu.Lock()
	p.status = st
	p.mu.Unlock()
	close(p.done)
}

// waitStatus extracts the kernel's wait status, which exec hides behind ProcessState.
func waitStatus(cmd *exec.Cmd) (syscall.WaitStatus, bool) {
	if cmd.ProcessState == nil {
		return 0, false
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ws, ok
}

// Pid is the child's process id, which is also its process group id.
func (p *Process) Pid() int { return p.pid }

// Name is the label given in Spec.
func (p *Process) Name() string { return p.name }

// Started is when the child was started.
func (p *Process) Started() time.Time { return p.started }

// Done is closed when the child has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait blocks until the child exits and returns how it ended.
func (p *Process) Wait() Status {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Exited reports whether the child has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the child's whole process group, so `sh -c 'sleep 30'` and any helpers the
// child started get it too. A group that has already gone is not an error.
func (p *Process) Signal(sig syscall.Signal) error {
	err := syscall.Kill(-p.pid, sig)
	if err == syscall.ESRCH {
		return nil
	}
	if err != nil {
		return fmt.Errorf("signal %s (pgid %d) with %v: %w", p.name, p.pid, sig, err)
	}
	return nil
}

// Stop asks the child to exit with sig and, if it has not exited after timeout, SIGKILLs its
// process group. It returns how the child ended. Stopping a child that already exited just
// returns its status.
func (p *Process) Stop(sig syscall.Signal, timeout time.Duration) Status {
	if p.Exited() {
		return p.Wait()
	}
	_ = p.Signal(sig)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.Signal(syscall.SIGKILL)
	}
	return p.Wait()
}

// Kill SIGKILLs the child's process group.
func (p *Process) Kill() error { return p.Signal(syscall.SIGKILL) }

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
