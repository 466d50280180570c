package keybase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
)

// What kbchat (go-keybase-chat-bot v0.0.0-20260714190752-406d338a3ba3, kbchat.go) does with the
// paper key, and why this package runs the oneshot itself:
//
//   - kbchat passes the key in the oneshot's environment, not in argv: `oneshot --username U` with
//     Env = ["KEYBASE_PAPERKEY=<key>"] + os.Environ(). That part is right.
//   - But that environment is this whole process's environment, the oneshot has no deadline
//     (exec.Cmd.Run; "oneshot hangs" is a known complaint), it runs without --no-auto-fork, as
//     this process's user, and its stderr is discarded: a failure is only "exit status 2", so wrong
//     key, revoked key and unknown user cannot be told apart. It also runs `logout -f` first,
//     silently ending another user's session.
//
// So login runs `whoami -json` and `oneshot` itself (key in that one environment, deadline, stderr
// mapped by rules) and starts kbchat later without Oneshot, only for notifications.

// status is the part of `keybase whoami -json` (keybase1.CurrentStatus) we read.
type status struct {
	LoggedIn bool `json:"loggedIn"`
	User     *struct {
		Username string `json:"username"`
	} `json:"user"`
}

// waitReady retries `keybase ctl wait` (with --include-kbfs once kbfsfuse is started) until the
// service (and KBFS) answer, up to readyBy (cfg.ReadyTimeout after start). While the service socket
// is not there yet the CLI fails with "keybase isn't running", which is transient; anything else
// (root refused) ends the wait at once, as does a daemon that gave up.
func (k *Keybase) waitReady(ctx context.Context, readyBy time.Time, includeKBFS bool) error {
	begin := time.Now()
	cmd := []string{"ctl", "wait"}
	if includeKBFS {
		cmd = append(cmd, "--include-kbfs")
	}
	err := retry(ctx, time.Until(readyBy), k.daemonFailure, func(ctx context.Context, remaining time.Duration) error {
		_, err := k.cli.run(ctx, min(remaining, k.cfg.CommandTimeout), nil, cmd...)
		return err
	})
	if err == nil {
		k.log.Info("keybase ready", zap.Bool("kbfs", includeKBFS), zap.Duration("took", time.Since(begin)))
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("keybase ctl wait: %w", ctx.Err())
	}
	if Transient(err) || errors.Is(err, ErrDaemonExited) {
		what := "the service"
		if includeKBFS {
			what = "KBFS"
		}
		return &Error{Step: "ctl wait", Kind: ErrUnavailable, Reason: ErrNotReady,
			Hint: fmt.Sprintf("%s was not ready within %v", what, k.cfg.ReadyTimeout), Err: err}
	}
	return err
}

// login makes sure the service is logged in as cfg.Username. Already logged in as that user: done.
// Logged in as someone else: a configuration error (we do not end a session we did not start).
// Otherwise `keybase oneshot --username U` with the paper key in its environment only, retried while
// the failure is transient, within cfg.LoginTimeout.
func (k *Keybase) login(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, k.cfg.LoginTimeout)
	defer cancel()
	who, err := k.whoami(ctx)
	if err != nil {
		return err
	}
	if who.LoggedIn && who.User != nil {
		if strings.EqualFold(who.User.Username, k.cfg.Username) {
			k.log.Info("keybase already logged in", zap.String("user", who.User.Username))
			return nil
		}
		return &Error{Step: "whoami", Kind: ErrConfig, Reason: ErrOtherUser,
			Hint: fmt.Sprintf("the service is logged in as %q, not %q; log it out or use a fresh Keybase home", who.User.Username, k.cfg.Username)}
	}
	err = retry(ctx, k.cfg.LoginTimeout, k.daemonFailure, func(ctx context.Context, remaining time.Duration) error {
		_, err := k.cli.run(ctx, remaining, oneshotEnv(k.cfg.PaperKey), "oneshot", "--username", k.cfg.Username)
		return err
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && !Transient(err) {
		return fmt.Errorf("keybase oneshot: %w", err)
	}
	if Transient(err) {
		return &Error{Step: "oneshot", Kind: ErrUnavailable, Reason: ErrNotReady,
			Hint: fmt.Sprintf("login did not succeed within %v", k.cfg.LoginTimeout), Err: err}
	}
	return err
}

// whoami asks the service who is logged in. The CLI prints the status as JSON even when nobody is;
// when it prints nothing parseable and fails non-transiently, we assume nobody is logged in and let
// the oneshot report the real problem.
func (k *Keybase) whoami(ctx context.Context) (status, error) {
	var st status
	err := retry(ctx, k.cfg.LoginTimeout, k.daemonFailure, func(ctx context.Context, remaining time.Duration) error {
		out, err := k.cli.run(ctx, min(remaining, k.cfg.CommandTimeout), nil, "whoami", "-json")
		if jerr := json.Unmarshal(out, &st); jerr == nil {
			return nil
		}
		if err != nil && Transient(err) {
			return err
		}
		st = status{}
		if err != nil {
			k.log.Debug("keybase whoami failed, assuming nobody is logged in", zap.Error(err))
		}
		return nil
	})
	if err != nil {
		return status{}, &Error{Step: "whoami", Kind: ErrUnavailable, Reason: ErrNotReady, Err: err}
	}
	return st, nil
}
