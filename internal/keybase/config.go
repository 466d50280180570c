package keybase

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/child"
	"go.uber.org/zap/zapcore"
)

// Defaults applied when a Config field is left at its zero value.
const (
	DefaultBinary         = "keybase"
	DefaultKBFSBinary     = "kbfsfuse"
	DefaultRunAsUser      = "keybase"
	DefaultReadyTimeout   = 60 * time.Second
	DefaultLoginTimeout   = 60 * time.Second
	DefaultStopTimeout    = 3 * time.Second
	DefaultCommandTimeout = 30 * time.Second
	DefaultCopyTimeout    = 5 * time.Minute
	DefaultChannel        = "general"
	DefaultNotifyBurst    = 5
	DefaultNotifyEvery    = 10 * time.Second
	DefaultNotifyQueue    = 32
	DefaultSendTimeout    = 15 * time.Second
)

// DefaultDaemonPolicy restarts a crashed daemon with the child package's back-off and gives up after
// 5 failures within 10 minutes; Run then returns ErrUnavailable.
var DefaultDaemonPolicy = child.Policy{Restart: child.RestartOnFailure, MaxFailures: 5, Window: 10 * time.Minute, Backoff: child.DefaultBackoff}

// Config is Keybase's part of the entrypoint's configuration, already resolved by cmd/ from the
// environment (KEYBASE_USERNAME, KEYBASE_PAPERKEY or KEYBASE_PAPERKEY_FILE, KEYBASE_ALLOW_ROOT,
// KEYBASE_NOTIFY, ...). cmd/ starts Keybase only when Username and PaperKey are both set.
type Config struct {
	Username string
	// PaperKey reaches exactly one process: `keybase oneshot`, through its environment.
	PaperKey Secret

	// Binary and KBFSBinary are the keybase and kbfsfuse programs (looked up in PATH without a
	// slash). Defaults "keybase" and "kbfsfuse".
	Binary, KBFSBinary string
	// HomeDir is passed as --home to every keybase command and as HOME to every child; default the
	// home directory of the user the daemons run as. It is created (and given to that user) if
	// missing.
	HomeDir string
	// RunAsUser is the user the daemons and every keybase command run as when the entrypoint is
	// root: a user name or "uid[:gid]". Default "keybase". When running as root and that user does
	// not exist, Start fails unless AllowRoot is set; with AllowRoot Keybase runs as root with
	// KEYBASE_ALLOW_ROOT=1. When not root, everything runs as the entrypoint's own user.
	RunAsUser string
	AllowRoot bool

	// ReadyTimeout bounds the wait for `keybase ctl wait --include-kbfs` (default 60 s),
	// LoginTimeout the login (default 60 s), StopTimeout each step of Stop (default 3 s),
	// CommandTimeout any other single CLI call (default 30 s), CopyTimeout one `fs cp` (5 min).
	ReadyTimeout, LoginTimeout, StopTimeout, CommandTimeout, CopyTimeout time.Duration

	// Notify is the chat target "team" or "team#channel" (channel default "general"); empty
	// disables notifications.
	Notify string
	// NotifyBurst messages may go out at once, then one per NotifyEvery (defaults 5 and 10 s);
	// NotifyQueue bounds the messages waiting to be sent (default 32); SendTimeout bounds one send.
	NotifyBurst int
	NotifyEvery time.Duration
	NotifyQueue int
	SendTimeout time.Duration

	// BaseEnv is the environment every Keybase child starts from, already scrubbed of secrets
	// by the caller. KEYBASE_PAPERKEY and KEYBASE_PAPERKEY_FILE are removed again here anyway.
	BaseEnv []string
	// DaemonPolicy is how the service and kbfsfuse are restarted (default DefaultDaemonPolicy).
	DaemonPolicy child.Policy
	// DaemonOutput receives the daemons' stdout and stderr (default os.Stderr: the container log).
	DaemonOutput io.Writer
	// TempDir holds the private working directory (wrapper script, copy staging); default
	// os.TempDir().
	TempDir string

	// LookupUser, Geteuid and Now are injectable for tests; defaults user.Lookup / user.LookupId,
	// os.Geteuid and time.Now.
	LookupUser func(nameOrID string) (*user.User, error)
	Geteuid    func() int
	Now        func() time.Time
}

// MarshalLogObject lets cmd/ log the configuration with zap.Object; the paper key shows only as set.
func (c Config) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("username", c.Username)
	_ = enc.AddObject("paperkey", c.PaperKey)
	enc.AddString("binary", c.Binary)
	enc.AddString("kbfs_binary", c.KBFSBinary)
	enc.AddString("home", c.HomeDir)
	enc.AddString("run_as", c.RunAsUser)
	enc.AddBool("allow_root", c.AllowRoot)
	enc.AddString("notify", c.Notify)
	enc.AddDuration("ready_timeout", c.ReadyTimeout)
	enc.AddDuration("login_timeout", c.LoginTimeout)
	enc.AddDuration("stop_timeout", c.StopTimeout)
	return nil
}

// MarshalJSON dumps the configuration for diagnostics without the paper key (and without the
// injectable functions, which JSON cannot encode).
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{
		"username": c.Username, "paperkey": c.PaperKey, "binary": c.Binary, "kbfs_binary": c.KBFSBinary,
		"home": c.HomeDir, "run_as": c.RunAsUser, "allow_root": c.AllowRoot, "notify": c.Notify,
		"ready_timeout": c.ReadyTimeout.String(), "login_timeout": c.LoginTimeout.String(), "stop_timeout": c.StopTimeout.String(),
	})
}

// String keeps %v of a Config from printing the paper key's field layout or anything else.
func (c Config) String() string {
	return fmt.Sprintf("keybase.Config{Username:%q PaperKey:%s Binary:%q Home:%q RunAs:%q AllowRoot:%v Notify:%q}",
		c.Username, c.PaperKey, c.Binary, c.HomeDir, c.RunAsUser, c.AllowRoot, c.Notify)
}

// GoString is String for %#v.
func (c Config) GoString() string { return c.String() }

func (c Config) withDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Binary, DefaultBinary)
	def(&c.KBFSBinary, DefaultKBFSBinary)
	def(&c.RunAsUser, DefaultRunAsUser)
	def(&c.TempDir, os.TempDir())
	dur(&c.ReadyTimeout, DefaultReadyTimeout)
	dur(&c.LoginTimeout, DefaultLoginTimeout)
	dur(&c.StopTimeout, DefaultStopTimeout)
	dur(&c.CommandTimeout, DefaultCommandTimeout)
	dur(&c.CopyTimeout, DefaultCopyTimeout)
	dur(&c.NotifyEvery, DefaultNotifyEvery)
	dur(&c.SendTimeout, DefaultSendTimeout)
	if c.NotifyBurst <= 0 {
		c.NotifyBurst = DefaultNotifyBurst
	}
	if c.NotifyQueue <= 0 {
		c.NotifyQueue = DefaultNotifyQueue
	}
	if c.DaemonPolicy == (child.Policy{}) {
		c.DaemonPolicy = DefaultDaemonPolicy
	}
	if c.DaemonOutput == nil {
		c.DaemonOutput = os.Stderr
	}
	if c.LookupUser == nil {
		c.LookupUser = lookupUser
	}
	if c.Geteuid == nil {
		c.Geteuid = os.Geteuid
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validUsername is what Keybase (and kbchat) accept as a username.
var validUsername = regexp.MustCompile(`^[a-zA-Z0-9_]+$`)

// validate rejects a configuration that cannot work before anything is started.
func (c Config) validate() error {
	switch {
	case c.Username == "":
		return &Error{Step: "configure", Kind: ErrCredentials, Reason: ErrMissingUsername, Hint: "set KEYBASE_USERNAME"}
	case !validUsername.MatchString(c.Username):
		return &Error{Step: "configure", Kind: ErrCredentials, Reason: ErrInvalidUsername,
			Hint: fmt.Sprintf("KEYBASE_USERNAME %q must match [a-zA-Z0-9_]+", c.Username)}
	case c.PaperKey.IsZero():
		return &Error{Step: "configure", Kind: ErrCredentials, Reason: ErrMissingKey, Hint: "set KEYBASE_PAPERKEY or KEYBASE_PAPERKEY_FILE"}
	}
	if _, _, err := ParseTarget(c.Notify); err != nil {
		return err
	}
	return nil
}

// ParseTarget splits a notification target "team" or "team#channel" (channel default "general").
// An empty target means no notifications and returns two empty strings.
func ParseTarget(s string) (team, channel string, err error) {
	if s == "" {
		return "", "", nil
	}
	team, channel, _ = strings.Cut(s, "#")
	if channel == "" {
		channel = DefaultChannel
	}
	validTeam := regexp.MustCompile(`^[a-zA-Z0-9_]+(\.[a-zA-Z0-9_]+)*$`)
	validChannel := regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	if !validTeam.MatchString(team) || !validChannel.MatchString(channel) {
		return "", "", &Error{Step: "configure", Kind: ErrConfig,
			Hint: fmt.Sprintf("notification target %q: want team or team#channel (team names may contain dots for subteams)", s)}
	}
	return team, channel, nil
}

// identity is who the daemons and commands run as.
type identity struct {
	name     string
	uid, gid int
	home     string
	switchTo bool // we are root and run Keybase as another user
	asRoot   bool // Keybase runs as root: needs KEYBASE_ALLOW_ROOT=1
}

// resolveIdentity decides who runs Keybase. As root it prefers RunAsUser; without that user it
// runs as root only when AllowRoot is set, and otherwise fails with an error that tells the
// operator both ways out. Not being root, it runs Keybase as ourselves.
func resolveIdentity(c Config) (identity, error) {
	euid := c.Geteuid()
	if euid != 0 {
		u, err := c.LookupUser(strconv.Itoa(euid))
		id := identity{uid: euid, gid: os.Getegid(), name: strconv.Itoa(euid)}
		if err == nil {
			id.name, id.home = u.Username, u.HomeDir
		}
		return id, nil
	}
	u, err := c.LookupUser(c.RunAsUser)
	if err == nil {
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil {
			return identity{}, &Error{Step: "configure", Kind: ErrConfig, Hint: fmt.Sprintf("user %q has a non-numeric uid or gid", c.RunAsUser)}
		}
		if uid != 0 {
			return identity{name: u.Username, uid: uid, gid: gid, home: u.HomeDir, switchTo: true}, nil
		}
	} else if !isUnknownUser(err) {
		return identity{}, &Error{Step: "configure", Kind: ErrConfig, Hint: fmt.Sprintf("look up user %q", c.RunAsUser), Err: err}
	}
	if !c.AllowRoot {
		return identity{}, &Error{Step: "configure", Kind: ErrConfig, Reason: ErrRootRefused,
			Hint: fmt.Sprintf("the entrypoint runs as root and there is no unprivileged user %q to run Keybase as: create that user in the image (useradd --system --create-home %s) or set KEYBASE_ALLOW_ROOT=1 to run Keybase as root",
				c.RunAsUser, c.RunAsUser)}
	}
	return identity{name: "root", uid: 0, gid: 0, home: "/root", asRoot: true}, nil
}

func isUnknownUser(err error) bool {
	var un user.UnknownUserError
	var ui user.UnknownUserIdError
	return errors.As(err, &un) || errors.As(err, &ui)
}

// lookupUser accepts a name, "uid" or "uid:gid".
func lookupUser(s string) (*user.User, error) {
	idPart, gidPart, hasGid := strings.Cut(s, ":")
	if _, err := strconv.Atoi(idPart); err != nil {
		return user.Lookup(s)
	}
	u, err := user.LookupId(idPart)
	if err != nil {
		if !isUnknownUser(err) {
			return nil, err
		}
		// A numeric uid with no passwd entry is fine: it just has no home there.
		u = &user.User{Uid: idPart, Gid: idPart, Username: idPart, HomeDir: "/home/" + idPart}
	}
	if hasGid {
		u.Gid = gidPart
	}
	return u, nil
}
