package child

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
)

// Exit codes of a child that could not be started, as shells report them, so `docker run image
// nosuchcmd` means the same thing with this entrypoint as it does with sh or tini.
const (
	ExitNotExecutable = 126
	ExitNotFound      = 127
)

// Status is how a child ended: it exited with Code, was killed by Signal, or never started (Err).
type Status struct {
	Code   int
	Signal syscall.Signal
	// Err is set when the child could not be started at all; Code then holds 126 or 127.
	Err error
}

// ExitCode folds a Status into the single number a container runtime shows: the child's own code,
// or 128+N when it was killed by signal N (the shell convention docker and Kubernetes expect).
func (s Status) ExitCode() int {
	if s.Signal != 0 {
		return 128 + int(s.Signal)
	}
	return s.Code
}

// Success reports a clean exit 0.
func (s Status) Success() bool { return s.Err == nil && s.Signal == 0 && s.Code == 0 }

func (s Status) String() string {
	switch {
	case s.Err != nil:
		return fmt.Sprintf("not started (%d): %v", s.Code, s.Err)
	case s.Signal != 0:
		return fmt.Sprintf("killed by %v (%d)", s.Signal, s.ExitCode())
	default:
		return fmt.Sprintf("exited with %d", s.Code)
	}
}

// statusFromWait converts a wait status the kernel reported into a Status.
func statusFromWait(ws syscall.WaitStatus) Status {
	if ws.Signaled() {
		return Status{Signal: ws.Signal()}
	}
	return Status{Code: ws.ExitStatus()}
}

// startFailure classifies an error from exec's Start as 127 (nothing to run) or 126 (found but
// not runnable), the two codes shells use, so scripts around the container can tell them apart.
func startFailure(err error) Status {
	code := ExitNotExecutable
	var errno syscall.Errno
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, syscall.ENOENT):
		code = ExitNotFound
	case errors.As(err, &errno) && errno == syscall.ENOTDIR:
		code = ExitNotFound
	}
	return Status{Code: code, Err: err}
}
