package configrepo

import (
	"context"
	"time"
)

// Defaults applied by Config.withDefaults when a field is left at its zero value.
const (
	DefaultTarget         = "/data"
	DefaultMaxBytes       = 100 << 20 // 100 MiB
	DefaultNetworkTimeout = 2 * time.Minute
	DefaultRetryBudget    = 2 * time.Minute
	DefaultRetryInitial   = 500 * time.Millisecond
	maxRetryBackoff       = 30 * time.Second
)

// KeybaseCopier copies the bare repository of keybase://<kind>/<tlf>/<repo> out of KBFS into dst
// (a path that does not exist yet; its parent does). kind is "team", "private" or "public"; repo
// is already lower-cased with any ".git" suffix dropped, as KBFS stores it under
// /keybase/<kind>/<tlf>/.kbfs_git/<repo>. internal/keybase implements it with `keybase fs cp -r`.
// Errors wrapping ErrConfig or fs.ErrNotExist are reported as configuration errors and not retried;
// any other error is retried as transient.
type KeybaseCopier interface {
	CopyBareRepo(ctx context.Context, kind, tlf, repo, dst string) error
}

// ValidateFunc checks a freshly checked-out tree (dir) before it goes live. A non-nil error keeps
// the old tree live. internal/synapse passes its homeserver.yaml validator.
type ValidateFunc func(ctx context.Context, dir string) error

// Config says what to clone and how. cmd/ resolves the environment (CONFIG_REPO, CONFIG_REF,
// CONFIG_REPO_USERNAME, CONFIG_REPO_PASSWORD and their _FILE variants, ...) into it.
type Config struct {
	// URL of the repository: keybase://team|private|public/<tlf>/<repo>, https:// or http://,
	// ssh://[user@]host[:port]/path, scp-like [user@]host:path, file:///path or a local path.
	URL string
	// Ref is a branch, tag or full 40-hex commit id; empty means the remote's HEAD.
	Ref string

	// Username and Password (or token) for http(s). A password without username is sent with
	// username "git", which GitHub, GitLab and Gitea accept for tokens.
	Username, Password string
	// SSHKeyFile is the private key for ssh URLs (unencrypted, or encrypted with SSHKeyPassphrase).
	SSHKeyFile       string
	SSHKeyPassphrase string
	// KnownHostsFile is required for ssh URLs: host keys are always checked strictly.
	KnownHostsFile string
	// CABundle is extra PEM CA certificates trusted for https (besides the system pool).
	CABundle []byte

	// Target is the directory the configuration is exposed in (default /data).
	Target string
	// MaxBytes caps the bytes of one fetched pack and of one checked-out tree (default 100 MiB).
	MaxBytes int64
	// NetworkTimeout bounds every network attempt (default 2 min).
	NetworkTimeout time.Duration
	// RetryBudget is the total time spent retrying transient failures (default 2 min); a negative
	// value disables retries. RetryInitial is the first back-off (default 500 ms), doubled per
	// attempt up to 30 s.
	RetryBudget  time.Duration
	RetryInitial time.Duration

	// Copier fetches keybase:// repositories out of KBFS; required for keybase URLs.
	Copier KeybaseCopier
	// Validate is called on every new tree before it goes live; nil accepts every tree.
	Validate ValidateFunc

	// Chown makes checked-out files, directories and our symlinks owned by UID:GID. It is skipped
	// (with a log line) when the process is not root.
	Chown    bool
	UID, GID int

	// Clock drives back-off and polling; nil means the real clock.
	Clock Clock

	// DiscardLocalChanges allows replacing a live tree that was modified in place. Without it, a
	// modified tree is never replaced and the modified files are listed in the error.
	DiscardLocalChanges bool
}

// Clock is the time source of retries and polling, passed in so tests and callers control it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// realClock is the wall clock.
type realClock struct{}

// Now implements Clock.
func (realClock) Now() time.Time { return time.Now() }

// After implements Clock.
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// clock returns c.Clock or the real clock.
func (c Config) clock() Clock {
	if c.Clock == nil {
		return realClock{}
	}
	return c.Clock
}

// withDefaults returns a copy of c with zero fields replaced by the package defaults.
func (c Config) withDefaults() Config {
	if c.Target == "" {
		c.Target = DefaultTarget
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.NetworkTimeout <= 0 {
		c.NetworkTimeout = DefaultNetworkTimeout
	}
	if c.RetryBudget == 0 {
		c.RetryBudget = DefaultRetryBudget
	}
	if c.RetryInitial <= 0 {
		c.RetryInitial = DefaultRetryInitial
	}
	return c
}
