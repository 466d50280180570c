package keybase

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// cli runs one short keybase CLI command at a time. It is the only place that executes the CLI
// (besides kbchat's pipes, which go through the wrapper of wrapper.go) and the only place that turns
// its failures into typed errors. Every call gets --no-auto-fork, so a missing service is an error
// instead of a silently forked second service, and --home when a home was configured.
type cli struct {
	bin    string   // absolute path of keybase
	home   string   // --home, empty for none
	env    []string // the daemons' environment: never contains the paper key
	cred   *syscall.Credential
	secret Secret // redacted out of everything the CLI prints
	log    *zap.Logger
}

// maxOutput caps what is kept of a command's stdout and stderr.
const maxOutput = 1 << 20

// args builds the full argv after the binary: global flags, then the command.
func (c *cli) args(cmd ...string) []string {
	a := []string{"--no-auto-fork"}
	if c.home != "" {
		a = append(a, "--home", c.home)
	}
	return append(a, cmd...)
}

// run executes `keybase <global flags> cmd...` with a deadline. extraEnv is appended to the daemons'
// environment (the oneshot's paper key is the only use). The child gets its own process group, which
// is SIGKILLed when the deadline passes, and WaitDelay bounds the wait for pipes held by
// grandchildren, so a hanging CLI never blocks the caller past timeout + 2 s. On failure the error
// is an *Error classified by the rules of errors.go.
func (c *cli) run(ctx context.Context, timeout time.Duration, extraEnv []string, cmd ...string) ([]byte, error) {
	step := stepName(cmd)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	x := exec.CommandContext(ctx, c.bin, c.args(cmd...)...)
	x.Env = append(append([]string(nil), c.env...), extraEnv...)
	x.Dir = "/"
	x.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	x.Cancel = func() error { return syscall.Kill(-x.Process.Pid, syscall.SIGKILL) }
	x.WaitDelay = 2 * time.Second
	var stdout, stderr capped
	x.Stdout, x.Stderr = &stdout, &stderr
	begin := time.Now()
	err := x.Run()
	c.log.Debug("keybase command", zap.Strings("argv", x.Args), zap.Duration("took", time.Since(begin)), zap.Error(err))
	if err == nil {
		return stdout.Bytes(), nil
	}
	return stdout.Bytes(), c.failure(ctx, step, cmd[0], err, stderr.String())
}

// stepName names a command by its leading words ("ctl wait", "oneshot", "fs cp", "logout") for
// errors and logs, leaving out flags and operands.
func stepName(cmd []string) string {
	var words []string
	for _, w := range cmd {
		if strings.HasPrefix(w, "-") || strings.HasPrefix(w, "/") || len(words) == 2 {
			break
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}

// failure builds the typed error of a failed command. The paper key is redacted from the CLI's
// text before it goes anywhere.
func (c *cli) failure(ctx context.Context, step, word string, err error, stderr string) error {
	msg := redact(errorText(stderr), c.secret)
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &Error{Step: step, Kind: ErrUnavailable, Reason: ErrTimeout, Msg: msg, Err: ctx.Err()}
		}
		return &Error{Step: step, Msg: msg, Err: ctx.Err()}
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, syscall.ENOENT) && code < 0 {
		return &Error{Step: step, Kind: ErrUnavailable, Reason: ErrBinaryNotFound, Err: err}
	}
	reason, kind, hint := classify(word, msg, code)
	if msg == "" {
		msg = redact(strings.TrimSpace(lastLines(stderr, 3)), c.secret)
	}
	return &Error{Step: step, Kind: kind, Reason: reason, Hint: hint, Msg: msg, Err: err}
}

// errorText extracts the CLI's `▶ ERROR <message>` lines (the real CLI's error format); without
// such a line it falls back to the last lines of stderr so nothing useful is lost.
func errorText(stderr string) string {
	var msgs []string
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "ERROR "); i >= 0 && strings.HasPrefix(strings.TrimSpace(line[:i]), "▶") {
			msgs = append(msgs, strings.TrimSpace(line[i+len("ERROR "):]))
		}
	}
	if len(msgs) > 0 {
		return strings.Join(msgs, "; ")
	}
	return strings.TrimSpace(lastLines(stderr, 3))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// redact removes the secret from text produced by a child, in case a CLI ever echoes it.
func redact(s string, secret Secret) string {
	if secret.IsZero() {
		return s
	}
	s = strings.ReplaceAll(s, secret.Reveal(), redacted)
	// The CLI normalises whitespace in paper keys; catch a re-spaced echo too.
	if norm := strings.Join(strings.Fields(secret.Reveal()), " "); norm != "" {
		s = strings.ReplaceAll(s, norm, redacted)
	}
	return s
}

// capped is a bytes.Buffer that keeps at most maxOutput bytes and drops the rest.
type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := maxOutput - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// retry runs op until it succeeds, fails with a non-transient error, or the budget ends; the wait
// between attempts doubles from 200 ms to 2 s. abort, when it returns a non-nil error, ends the
// retries at once (a daemon gave up). It returns the last error.
func retry(ctx context.Context, budget time.Duration, abort func() error, op func(ctx context.Context, remaining time.Duration) error) error {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	deadline, _ := ctx.Deadline()
	wait := 200 * time.Millisecond
	for {
		err := op(ctx, time.Until(deadline))
		if err == nil || !Transient(err) {
			return err
		}
		if aerr := abort(); aerr != nil {
			return fmt.Errorf("%w (last attempt: %v)", aerr, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}
