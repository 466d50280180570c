package keybase

import (
	"errors"
	"io/fs"
	"strings"
)

// Kinds: what the caller does about an error. cmd/ maps them to exit codes with ExitCode.
var (
	// ErrConfig is a problem only the operator can fix (root refused, another user logged in, a
	// malformed notification target, a missing repository). Exit 78.
	ErrConfig = errors.New("keybase configuration error")
	// ErrCredentials is a rejected or missing username or paper key. It is a configuration error
	// too: errors.Is(err, ErrConfig) holds for every credentials error. Exit 78.
	ErrCredentials = errors.New("keybase credentials rejected")
	// ErrUnavailable is Keybase not working after the retry budget: the service never became
	// ready, a daemon kept crashing, the network kept failing. Exit 69.
	ErrUnavailable = errors.New("keybase unavailable")
)

// Reasons: what exactly went wrong. Each error carries one reason and one kind.
var (
	ErrMissingKey      = errors.New("no paper key given")
	ErrMissingUsername = errors.New("no username given")
	ErrInvalidUsername = errors.New("invalid username")
	ErrWrongPaperKey   = errors.New("wrong paper key")
	ErrRevokedKey      = errors.New("paper key revoked")
	ErrUnknownUser     = errors.New("unknown keybase user")
	ErrOtherUser       = errors.New("already logged in as a different user")
	ErrRootRefused     = errors.New("refusing to run keybase as root")
	ErrNotRunning      = errors.New("keybase service not running")
	ErrNetwork         = errors.New("keybase network error")
	ErrNotLoggedIn     = errors.New("keybase session lost")
	ErrInterrupted     = errors.New("keybase command interrupted")
	ErrTimeout         = errors.New("keybase command timed out")
	ErrNotReady        = errors.New("keybase service not ready")
	ErrDaemonExited    = errors.New("keybase daemon ended")
	ErrBinaryNotFound  = errors.New("keybase binary not found")
	// ErrNotExist is a path missing in KBFS (a repository that is not there). It wraps
	// fs.ErrNotExist so that callers checking errors.Is(err, fs.ErrNotExist) see it.
	ErrNotExist = &notExist{}
)

type notExist struct{}

func (*notExist) Error() string        { return "does not exist in KBFS" }
func (*notExist) Unwrap() error        { return fs.ErrNotExist }
func (*notExist) Is(target error) bool { _, ok := target.(*notExist); return ok }

// Error is every failure this package returns: the step ("ctl wait", "oneshot", "fs cp", ...), the
// keybase:// URL when there is one, the kind (ErrConfig, ErrCredentials, ErrUnavailable or nil for
// internal faults), the reason, an explanation for the operator and the cause. Msg is the CLI's own
// `▶ ERROR` text with the paper key redacted. errors.Is works for the kind, the reason and the cause.
type Error struct {
	Step   string
	URL    string
	Kind   error
	Reason error
	// Hint tells the operator what to do ("check KEYBASE_PAPERKEY").
	Hint string
	// Msg is what the CLI said (already redacted).
	Msg string
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("keybase ")
	b.WriteString(e.Step)
	if e.URL != "" {
		b.WriteString(" ")
		b.WriteString(e.URL)
	}
	add := func(s string) {
		if s != "" {
			b.WriteString(": ")
			b.WriteString(s)
		}
	}
	if e.Reason != nil {
		add(e.Reason.Error())
	}
	add(e.Hint)
	switch {
	case e.Msg != "":
		add("keybase said " + quoteMsg(e.Msg))
	case e.Err != nil:
		add(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes the kind (and ErrConfig under ErrCredentials), the reason and the cause.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
		if e.Kind == ErrCredentials {
			out = append(out, ErrConfig)
		}
	}
	if e.Reason != nil {
		out = append(out, e.Reason)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// Transient reports whether retrying the same step may help (service not up yet, network EOF,
// KBFS block not fetched yet). Only these are retried, with back-off and a budget.
func Transient(err error) bool {
	for _, r := range []error{ErrNotRunning, ErrNotLoggedIn, ErrNetwork, ErrTimeout, ErrInterrupted} {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

// Exit codes of docs/CONVENTIONS.md.
const (
	ExitUnavailable = 69
	ExitSoftware    = 70
	ExitConfig      = 78
)

// ExitCode maps an error from Start, Run or Stop to a sysexits code: 0 for nil, 78 for
// configuration and credentials errors, 69 for Keybase unavailable, 70 for anything else.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrConfig), errors.Is(err, ErrCredentials):
		return ExitConfig
	case errors.Is(err, ErrUnavailable):
		return ExitUnavailable
	}
	return ExitSoftware
}

func quoteMsg(s string) string {
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return `"` + s + `"`
}

// rule is one row of the mapping table: when the CLI's error text contains any of Match
// (case-insensitive) and the command is one of Cmds (any command when empty), the failure gets
// Reason, Kind and Hint. The first matching row wins, so specific rows come before generic ones.
type rule struct {
	Cmds   []string
	Match  []string
	Reason error
	Kind   error
	Hint   string
}

// rules is the one place where the Keybase CLI's failures become typed errors. Messages are the
// real CLI's (keybase/client go/client, go/libkb) as collected in docs and the shared notes.
var rules = []rule{
	{Match: []string{"you are trying to run as an admin user", "run as an admin user"},
		Reason: ErrRootRefused, Kind: ErrConfig,
		Hint: "set KEYBASE_ALLOW_ROOT=1 or run Keybase as an unprivileged user (create a \"keybase\" user in the image)"},
	{Cmds: []string{"oneshot"}, Match: []string{"need a --paperkey", "keybase_paperkey environment variable"},
		Reason: ErrMissingKey, Kind: ErrCredentials, Hint: "set KEYBASE_PAPERKEY or KEYBASE_PAPERKEY_FILE"},
	{Cmds: []string{"oneshot"}, Match: []string{"need a --username", "keybase_username environment variable"},
		Reason: ErrMissingUsername, Kind: ErrCredentials, Hint: "set KEYBASE_USERNAME"},
	{Match: []string{"already logged in as a different user"},
		Reason: ErrOtherUser, Kind: ErrConfig,
		Hint: "the Keybase home holds another user's session; log it out or use a fresh home"},
	{Cmds: []string{"oneshot"}, Match: []string{"no device found for paper key", "no device found", "bad paper key", "invalid paper key", "wrong paper key", "bad paperkey"},
		Reason: ErrWrongPaperKey, Kind: ErrCredentials,
		Hint: "the paper key does not belong to this user (check KEYBASE_PAPERKEY and KEYBASE_USERNAME)"},
	{Match: []string{"keyrevokederror", "key revoked", "revoked key", "has been revoked", "was revoked"},
		Reason: ErrRevokedKey, Kind: ErrCredentials,
		Hint: "the paper key was revoked; generate a new one with `keybase paperkey` and update KEYBASE_PAPERKEY"},
	{Cmds: []string{"oneshot"}, Match: []string{"user not found", "usernotfounderror", "no such user", "no resolution found", "failed to resolve", "not found"},
		Reason: ErrUnknownUser, Kind: ErrCredentials, Hint: "check KEYBASE_USERNAME"},
	{Cmds: []string{"fs"}, Match: []string{"block does not exist"},
		Reason: ErrNetwork, Kind: ErrUnavailable, Hint: "KBFS could not fetch a block yet"},
	{Match: []string{"isn't running", "is not running", "not running", "connection refused", "dial unix", "keybased.sock", "kbfs client wasn't found"},
		Reason: ErrNotRunning, Kind: ErrUnavailable, Hint: "the keybase service is not (yet) running"},
	{Match: []string{"login required", "not logged in"},
		Reason: ErrNotLoggedIn, Kind: ErrUnavailable, Hint: "the service has no session (restarted?); logging in again"},
	{Match: []string{"api network error", ": eof", "unexpected eof", "connection reset", "network is unreachable", "i/o timeout", "tls handshake timeout"},
		Reason: ErrNetwork, Kind: ErrUnavailable, Hint: "network error talking to the Keybase servers"},
	{Cmds: []string{"fs"}, Match: []string{"does not exist", "no such file or directory", "not found", "not exist"},
		Reason: ErrNotExist, Kind: ErrConfig, Hint: "no such repository in KBFS"},
}

// classify turns a failed CLI call (its command word, the `▶ ERROR` text and the exit code) into a
// reason, a kind and a hint using rules. Exit code 3 is the CLI's "interrupted".
func classify(cmd, msg string, code int) (reason, kind error, hint string) {
	low := strings.ToLower(msg)
	for _, r := range rules {
		if len(r.Cmds) > 0 && !contains(r.Cmds, cmd) {
			continue
		}
		for _, m := range r.Match {
			if strings.Contains(low, m) {
				return r.Reason, r.Kind, r.Hint
			}
		}
	}
	if code == 3 {
		return ErrInterrupted, ErrUnavailable, "the command was interrupted"
	}
	return nil, nil, ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
