package configrepo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrConfig marks errors the operator must fix (bad URL, wrong credentials, unknown host key,
// missing known_hosts, foreign or locally modified /data, missing ref, symlink escape, oversized
// repository, failed validation). Retrying cannot help; cmd/ maps it to exit 78.
var ErrConfig = errors.New("configuration error")

// ErrUnavailable marks a remote that stayed unreachable for the whole retry budget (connection
// refused, timeouts, 5xx). cmd/ maps it to exit 69.
var ErrUnavailable = errors.New("service unavailable")

// Error is every error this package returns for a failed step: it names the step and the
// (redacted) URL, carries a kind (ErrConfig, ErrUnavailable or nil for internal faults) and wraps
// the cause, so errors.Is works for the kind, for go-git's transport errors and for context errors.
type Error struct {
	Step string // "clone", "fetch", "checkout", "validate", "swap", "inspect", ...
	URL  string // redacted: never contains a password or token
	Kind error  // ErrConfig, ErrUnavailable or nil
	Err  error
}

// Error renders "step url: cause", trimming the dangling ": " go-git leaves on empty reasons.
func (e *Error) Error() string {
	msg := strings.TrimRight(e.Err.Error(), ": ")
	if e.URL == "" {
		return e.Step + ": " + msg
	}
	return e.Step + " " + e.URL + ": " + msg
}

// Unwrap exposes both the kind and the cause to errors.Is / errors.As.
func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// ExitCode maps an error from Ensure or the Syncer to the sysexits code of docs/CONVENTIONS.md:
// 0 for nil, 78 for configuration errors, 69 for an unreachable remote, 70 otherwise (including
// cancellation, which the caller normally handles before asking).
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrConfig):
		return 78
	case errors.Is(err, ErrUnavailable):
		return 69
	default:
		return 70
	}
}

// configErr builds a configuration error for step on url.
func configErr(step, url string, format string, args ...any) *Error {
	return &Error{Step: step, URL: url, Kind: ErrConfig, Err: fmt.Errorf(format, args...)}
}

// errorClass is how the retry loop treats a failure.
type errorClass int

const (
	classInternal  errorClass = iota // not retried, no kind: a bug or a local I/O fault
	classConfig                      // not retried, ErrConfig
	classTransient                   // retried with back-off, ErrUnavailable once the budget is spent
)

// errRefNotFound is returned when the wanted branch, tag or commit does not exist on the remote.
var errRefNotFound = errors.New("ref not found")

// errOversized is returned when the fetched pack or the checked-out tree exceeds MaxBytes.
var errOversized = errors.New("repository exceeds the size limit")

// classify decides whether err is the operator's problem, a transient network fault or neither.
// Auth failures, missing repositories and refs are never retried: retrying them only delays the
// clear error the operator needs.
func classify(err error) errorClass {
	var herr *githttp.Err
	var certErr *tls.CertificateVerificationError
	var authorityErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidErr x509.CertificateInvalidError
	var kerr *knownhosts.KeyError
	var nerr net.Error
	var uerr *plumbing.UnexpectedError
	switch {
	case errors.Is(err, ErrConfig),
		errors.Is(err, errRefNotFound),
		errors.Is(err, errOversized),
		errors.Is(err, errSymlinkEscape),
		errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrRepositoryNotFound),
		errors.Is(err, transport.ErrEmptyRemoteRepository),
		errors.Is(err, transport.ErrInvalidAuthMethod),
		errors.As(err, &kerr),
		errors.As(err, &certErr), errors.As(err, &authorityErr), errors.As(err, &hostErr), errors.As(err, &invalidErr):
		return classConfig
	case errors.As(err, &herr):
		if code := herr.StatusCode(); code >= 500 || code == 429 || code == 408 {
			return classTransient
		}
		return classConfig
	case errors.Is(err, ErrUnavailable),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF),
		errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &nerr):
		return classTransient
	case errors.As(err, &uerr) && errors.As(uerr.Err, &herr):
		// go-git wraps unexpected HTTP statuses without Unwrap.
		if code := herr.StatusCode(); code >= 500 || code == 429 || code == 408 {
			return classTransient
		}
		return classConfig
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unable to authenticate"),
		strings.Contains(msg, "knownhosts:"),
		strings.Contains(msg, "host key mismatch"):
		return classConfig
	case strings.Contains(msg, "connection refused"),
		strings.Contains(msg, "connection reset"),
		strings.Contains(msg, "i/o timeout"):
		return classTransient
	}
	return classInternal
}

// wrap turns a raw error from step on url into an *Error with the right kind. Context
// cancellation of the caller's context is kept as is (wrapped) so errors.Is(err,
// context.Canceled) holds and cmd/ can tell a shutdown from a failure.
func wrap(step, url string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var kind error
	switch classify(err) {
	case classConfig:
		kind = ErrConfig
	case classTransient:
		kind = ErrUnavailable
	}
	if errors.Is(err, context.Canceled) {
		kind = nil
	}
	return &Error{Step: step, URL: url, Kind: kind, Err: err}
}

// kindError carries a kind for errors.Is without repeating the kind's text in the message.
type kindError struct {
	kind error
	msg  string
}

// Error returns the message alone.
func (e *kindError) Error() string { return e.msg }

// Is matches the kind.
func (e *kindError) Is(target error) bool { return target == e.kind }

// kindErrorf formats a message of the given kind (ErrConfig or ErrUnavailable).
func kindErrorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
