// Command fakekeybase stands in for the `keybase` and `kbfsfuse` binaries in tests: no Keybase server
// is reachable from the test machines. It keeps the real CLI's contract (argv, global flags, exit
// codes, `▶ ERROR` messages, JSON shapes kbchat parses) and records every invocation so tests can
// assert what the entrypoint ran. See README.md for the switches and the state layout.
//
// One binary plays both roles, chosen by filepath.Base(os.Args[0]): install it on PATH as `keybase`
// and `kbfsfuse` (symlink or copy).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Exit codes of the real CLI: keybase1.ExitCode_OK, _NOTOK (every error), _RESTART (interrupted).
const (
	exitOK          = 0
	exitNotOK       = 2
	exitInterrupted = 3
)

// fakeVersion is what `keybase version` reports; a real release string plus a marker.
const fakeVersion = "6.5.1-20251120000000+fakekeybase"

// proc is one invocation: its argv, environment and stdio, passed explicitly so nothing reads
// process-global state behind the tests' back.
type proc struct {
	argv0  string
	args   []string
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	euid   int
	pid    int
	start  time.Time
}

func main() {
	p := &proc{
		argv0:  os.Args[0],
		args:   os.Args[1:],
		getenv: os.Getenv,
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		euid:   os.Geteuid(),
		pid:    os.Getpid(),
		start:  time.Now(),
	}
	code := p.run()
	p.record(code)
	os.Exit(code)
}

// run dispatches on the name the binary was invoked as.
func (p *proc) run() int {
	switch name := filepath.Base(p.argv0); name {
	case "kbfsfuse":
		return p.runKBFSFuse()
	case "keybase":
		return p.runKeybase()
	default:
		// Tests may run the binary under its build name; treat that as keybase.
		if strings.HasPrefix(name, "kbfsfuse") {
			return p.runKBFSFuse()
		}
		return p.runKeybase()
	}
}

// cliError is an error the real CLI would print as `▶ ERROR <msg>` and exit with code.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

// errNotOK makes the common error: exit 2 with msg.
func errNotOK(format string, args ...any) error {
	return &cliError{code: exitNotOK, msg: fmt.Sprintf(format, args...)}
}

// errInterrupted is what the real CLI's signal handler does: log "interrupted", exit 3.
func errInterrupted() error { return &cliError{code: exitInterrupted, msg: "interrupted"} }

// fail prints err the way the real CLI's logger does and returns its exit code.
func (p *proc) fail(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *cliError
	if errors.As(err, &ce) {
		fmt.Fprintf(p.stderr, "▶ ERROR %s\n", ce.msg)
		return ce.code
	}
	fmt.Fprintf(p.stderr, "▶ ERROR %s\n", err)
	return exitNotOK
}

// envBool reads a boolean the way libkb's getEnvBool does: unset → not set; "0" or anything
// starting with "n" → false; any other value → true.
func envBool(getenv func(string) string, name string) bool {
	v := strings.ToLower(getenv(name))
	if v == "" || v == "0" || v[0] == 'n' {
		return false
	}
	return true
}

// envDuration parses a FAKEKEYBASE_* duration switch; empty means zero.
func envDuration(getenv func(string) string, name string) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("parse %s=%q: %w", name, v, err)
	}
	return d, nil
}
