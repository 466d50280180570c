package keybase

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestSecretIsRedactedEverywhere(t *testing.T) {
	s := NewSecret(testKey)
	cfg := Config{Username: "alice", PaperKey: s}
	var outs []string
	for _, f := range []string{"%s", "%v", "%+v", "%#v", "%q", "%x", "%X", "%d", "%10s", "%T"} {
		outs = append(outs, fmt.Sprintf(f, s), fmt.Sprintf(f, cfg), fmt.Sprintf(f, &cfg))
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(s, cfg), s.String(), s.GoString())
	j, err := json.Marshal(struct {
		K Secret
		C Config
	}{s, cfg})
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	txt, _ := s.MarshalText()
	outs = append(outs, string(txt))

	var zbuf bytes.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&zbuf), zapcore.DebugLevel))
	log.Debug("x", zap.Any("key", s), zap.Any("cfg", cfg), zap.Object("cfg2", cfg), zap.Stringer("s", s), zap.Reflect("r", s), zap.Reflect("rc", cfg))
	outs = append(outs, zbuf.String())

	var sbuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&sbuf, nil)).Info("x", "key", s, "cfg", cfg)
	outs = append(outs, sbuf.String())

	for _, o := range outs {
		if strings.Contains(o, "stumble") || strings.Contains(o, "crater") {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if !strings.Contains(zbuf.String(), `"set":true`) || !strings.Contains(fmt.Sprint(s), redacted) {
		t.Errorf("redacted forms missing: %s / %s", zbuf.String(), fmt.Sprint(s))
	}
	if s.Reveal() != testKey || NewSecret("").String() != "" || !NewSecret("").IsZero() {
		t.Error("Reveal/IsZero")
	}
}

// TestMappingTable feeds the real CLI's messages (as the fake and keybase/client print them) to the
// one mapping table.
func TestMappingTable(t *testing.T) {
	cases := []struct {
		cmd, msg string
		code     int
		reason   error
		kind     error
		exit     int
	}{
		{"oneshot", "Error parsing command line arguments: Need a --paperkey option or a KEYBASE_PAPERKEY environment variable", 2, ErrMissingKey, ErrCredentials, 78},
		{"oneshot", "Error parsing command line arguments: Need a --username option or a KEYBASE_USERNAME environment variable", 2, ErrMissingUsername, ErrCredentials, 78},
		{"oneshot", "You are already logged in as a different user; try logout first", 2, ErrOtherUser, ErrConfig, 78},
		{"oneshot", "No device found no device found for paper key", 2, ErrWrongPaperKey, ErrCredentials, 78},
		{"oneshot", "Key revoked: 0120abcdef0a", 2, ErrRevokedKey, ErrCredentials, 78},
		{"oneshot", "KeyRevokedError: key 0120ab was revoked", 2, ErrRevokedKey, ErrCredentials, 78},
		{"oneshot", "In resolving 'zed': No resolution found", 2, ErrUnknownUser, ErrCredentials, 78},
		{"oneshot", "user not found", 2, ErrUnknownUser, ErrCredentials, 78},
		{"whoami", "Oops, you are trying to run as an admin user (Uid: 0). This isn't supported.", 2, ErrRootRefused, ErrConfig, 78},
		{"service", "Oops, you are trying to run as an admin user (Uid: 0). This isn't supported.", 2, ErrRootRefused, ErrConfig, 78},
		{"ctl", "keybase isn't running; try `run_keybase`", 2, ErrNotRunning, ErrUnavailable, 69},
		{"oneshot", "keybase isn't running; try `run_keybase`", 2, ErrNotRunning, ErrUnavailable, 69},
		{"fs", "API network error: doRequest failed: Post https://api-0.core.keybaseapi.com/_/api/1.0/x: EOF", 2, ErrNetwork, ErrUnavailable, 69},
		{"fs", "git-remote-keybase error: block does not exist", 2, ErrNetwork, ErrUnavailable, 69},
		{"fs", "/keybase/team/acme/.kbfs_git/nope does not exist", 2, ErrNotExist, ErrConfig, 78},
		{"fs", "Login required", 2, ErrNotLoggedIn, ErrUnavailable, 69},
		{"fs", "KBFS client wasn't found (start kbfsfuse and wait with `keybase ctl wait --include-kbfs`)", 2, ErrNotRunning, ErrUnavailable, 69},
		{"ctl", "interrupted", 3, ErrInterrupted, ErrUnavailable, 69},
		{"oneshot", "something entirely new", 2, nil, nil, 70},
		// "not found" means an unknown user only for the oneshot.
		{"fs", "user not found", 2, ErrNotExist, ErrConfig, 78},
	}
	for _, c := range cases {
		reason, kind, hint := classify(c.cmd, c.msg, c.code)
		if reason != c.reason || kind != c.kind {
			t.Errorf("%s %q: got %v/%v, want %v/%v", c.cmd, c.msg, reason, kind, c.reason, c.kind)
			continue
		}
		err := &Error{Step: c.cmd, Kind: kind, Reason: reason, Hint: hint, Msg: c.msg, Err: errors.New("exit status 2")}
		if got := ExitCode(err); got != c.exit {
			t.Errorf("%s %q: exit %d, want %d", c.cmd, c.msg, got, c.exit)
		}
		if reason != nil && (!errors.Is(err, reason) || (kind != nil && !errors.Is(err, kind))) {
			t.Errorf("%s %q: errors.Is fails", c.cmd, c.msg)
		}
		wantTransient := kind == ErrUnavailable
		if Transient(err) != wantTransient {
			t.Errorf("%s %q: transient %v", c.cmd, c.msg, !wantTransient)
		}
	}
	if err := (&Error{Kind: ErrCredentials, Reason: ErrWrongPaperKey}); !errors.Is(err, ErrConfig) {
		t.Error("credentials errors must be configuration errors too")
	}
	if !errors.Is(&Error{Reason: ErrNotExist}, fs.ErrNotExist) {
		t.Error("ErrNotExist must wrap fs.ErrNotExist")
	}
	if ExitCode(nil) != 0 || ExitCode(errors.New("x")) != 70 {
		t.Error("ExitCode of nil / plain error")
	}
}

func TestErrorTextAndRedaction(t *testing.T) {
	stderr := "some debug line\n▶ ERROR No device found no device found for paper key\n"
	if got := errorText(stderr); got != "No device found no device found for paper key" {
		t.Fatalf("errorText %q", got)
	}
	if got := errorText("plain failure\n"); got != "plain failure" {
		t.Fatalf("errorText fallback %q", got)
	}
	key := NewSecret("alpha  beta gamma")
	if got := redact("bad key alpha beta gamma! and alpha  beta gamma", key); strings.Contains(got, "alpha") {
		t.Fatalf("redact: %q", got)
	}
	if got := stepName([]string{"ctl", "wait", "--include-kbfs"}); got != "ctl wait" {
		t.Fatal(got)
	}
	if got := stepName([]string{"oneshot", "--username", "alice"}); got != "oneshot" {
		t.Fatal(got)
	}
	if got := stepName([]string{"fs", "cp", "-r", "/keybase/x", "/tmp/y"}); got != "fs cp" {
		t.Fatal(got)
	}
	e := &Error{Step: "oneshot", Kind: ErrCredentials, Reason: ErrWrongPaperKey, Hint: "check it", Msg: "No device found"}
	if e.Error() != `keybase oneshot: wrong paper key: check it: keybase said "No device found"` {
		t.Fatalf("Error(): %s", e.Error())
	}
}

func TestParseTarget(t *testing.T) {
	for in, want := range map[string][2]string{
		"acme":               {"acme", "general"},
		"acme#ops":           {"acme", "ops"},
		"acme.sub#alerts-1":  {"acme.sub", "alerts-1"},
		"acme#":              {"acme", "general"},
		"":                   {"", ""},
		"#ops":               {"!", ""},
		"acme#o p":           {"!", ""},
		"acme/../x":          {"!", ""},
		"keybase://team/foo": {"!", ""},
	} {
		team, ch, err := ParseTarget(in)
		if want[0] == "!" {
			if !errors.Is(err, ErrConfig) {
				t.Errorf("%q: want a configuration error, got %v", in, err)
			}
			continue
		}
		if err != nil || team != want[0] || ch != want[1] {
			t.Errorf("%q: %q %q %v", in, team, ch, err)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Username: "alice", PaperKey: NewSecret("k")}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg    Config
		reason error
	}{
		{Config{PaperKey: NewSecret("k")}, ErrMissingUsername},
		{Config{Username: "al ice", PaperKey: NewSecret("k")}, ErrInvalidUsername},
		{Config{Username: "alice"}, ErrMissingKey},
	} {
		if err := c.cfg.validate(); !errors.Is(err, c.reason) || !errors.Is(err, ErrCredentials) {
			t.Errorf("%v: %v", c.cfg, err)
		}
	}
}

func TestResolveIdentity(t *testing.T) {
	kb := &user.User{Uid: "991", Gid: "992", Username: "keybase", HomeDir: "/home/keybase"}
	lookup := func(u *user.User) func(string) (*user.User, error) {
		return func(name string) (*user.User, error) {
			if u == nil || name != "keybase" {
				return nil, user.UnknownUserError(name)
			}
			return u, nil
		}
	}
	root := func() int { return 0 }
	cfg := Config{RunAsUser: "keybase", Geteuid: root, LookupUser: lookup(kb)}
	id, err := resolveIdentity(cfg)
	if err != nil || !id.switchTo || id.uid != 991 || id.gid != 992 || id.home != "/home/keybase" || id.asRoot {
		t.Fatalf("keybase user: %+v %v", id, err)
	}
	cfg.LookupUser = lookup(nil)
	if _, err := resolveIdentity(cfg); !errors.Is(err, ErrRootRefused) || !strings.Contains(err.Error(), "KEYBASE_ALLOW_ROOT=1") {
		t.Fatalf("no user, no AllowRoot: %v", err)
	}
	cfg.AllowRoot = true
	id, err = resolveIdentity(cfg)
	if err != nil || !id.asRoot || id.switchTo || id.uid != 0 {
		t.Fatalf("AllowRoot: %+v %v", id, err)
	}
	cfg.LookupUser = lookup(&user.User{Uid: "0", Gid: "0", Username: "keybase"})
	cfg.AllowRoot = false
	if _, err := resolveIdentity(cfg); !errors.Is(err, ErrRootRefused) {
		t.Fatalf("a keybase user with uid 0 is root: %v", err)
	}
	cfg = Config{RunAsUser: "keybase", Geteuid: func() int { return 1234 }, LookupUser: lookup(nil)}
	id, err = resolveIdentity(cfg)
	if err != nil || id.switchTo || id.asRoot || id.uid != 1234 {
		t.Fatalf("not root: %+v %v", id, err)
	}
	cfg.LookupUser = func(string) (*user.User, error) { return nil, errors.New("nss down") }
	cfg.Geteuid = root
	if _, err := resolveIdentity(cfg); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "nss down") {
		t.Fatalf("lookup failure: %v", err)
	}
}

func TestChildEnvDropsTheKeyAndSetsHome(t *testing.T) {
	base := []string{"PATH=/bin", "KEYBASE_PAPERKEY=" + testKey, "KEYBASE_PAPERKEY_FILE=/run/secrets/k", "HOME=/root", "KEYBASE_ALLOW_ROOT=1", "TZ=UTC"}
	env := childEnv(base, identity{name: "keybase", uid: 991}, "/home/kb")
	joined := strings.Join(env, "\n")
	for _, bad := range []string{"KEYBASE_PAPERKEY", "HOME=/root", "KEYBASE_ALLOW_ROOT"} {
		if strings.Contains(joined, bad) {
			t.Errorf("%s in %q", bad, env)
		}
	}
	for _, want := range []string{"PATH=/bin", "TZ=UTC", "HOME=/home/kb", "USER=keybase"} {
		if !contains(env, want) {
			t.Errorf("%s missing from %q", want, env)
		}
	}
	env = childEnv(nil, identity{name: "root", asRoot: true}, "/root")
	if !contains(env, "KEYBASE_ALLOW_ROOT=1") || !hasVar(env, "PATH") {
		t.Errorf("as root: %q", env)
	}
}

// TestWrapperGivesExactlyTheDaemonEnvironment runs the kbchat wrapper with a polluted environment and
// a hostile argument, with `env` standing in for keybase, and checks what the command receives.
func TestWrapperGivesExactlyTheDaemonEnvironment(t *testing.T) {
	dir := t.TempDir()
	envBin, err := exec.LookPath("env")
	if err != nil {
		t.Skip("no env binary")
	}
	shBin, _ := exec.LookPath("sh")
	c := &cli{bin: envBin, home: "/home/it's", env: []string{"PATH=/usr/bin:/bin", "HOME=/home/kb", "ODD=a 'quoted' $value `x`", "BAD-NAME=x"}}
	w, err := writeWrapper(dir, shBin, envBin, "", c)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(w); fi.Mode().Perm() != 0o700 {
		t.Fatalf("wrapper mode %v", fi.Mode())
	}
	script, _ := os.ReadFile(w)
	if strings.Contains(string(script), testKey) || strings.Contains(string(script), "SECRET") {
		t.Fatal("wrapper holds a secret")
	}
	// Replace the final exec with a print of the environment (NUL-separated), keeping every step
	// before it: the env -i re-exec and the exports.
	text := strings.Replace(string(script), "exec "+shellQuote(envBin)+" '--no-auto-fork'", "exec "+shellQuote(envBin)+" -0; exit; : '--no-auto-fork'", 1)
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, []byte(text), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(probe, "chat", "api")
	cmd.Env = []string{"KEYBASE_PAPERKEY=" + testKey, "SECRET=x", "PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, text)
	}
	got := strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	want := []string{"PATH=/usr/bin:/bin", "HOME=/home/kb", "ODD=a 'quoted' $value `x`"}
	for _, w := range want {
		if !contains(got, w) {
			t.Errorf("%q missing from %q", w, got)
		}
	}
	for _, g := range got {
		if strings.HasPrefix(g, "KEYBASE_PAPERKEY") || strings.HasPrefix(g, "SECRET") || strings.HasPrefix(g, "SYNAPSE_ENTRYPOINT_KBWRAP") {
			t.Errorf("%q leaked into the wrapped command's environment", g)
		}
	}
	if !strings.Contains(text, `'--home' '/home/it'\''s'`) {
		t.Errorf("home not quoted: %s", text)
	}
}

func TestBucket(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	b := newBucket(2, 10*time.Second, clock.Now)
	if !b.take() || !b.take() || b.take() {
		t.Fatal("burst of 2")
	}
	clock.Add(5 * time.Second)
	if b.take() {
		t.Fatal("half a token is not a token")
	}
	clock.Add(5 * time.Second)
	if !b.take() || b.take() {
		t.Fatal("one token after 10 s")
	}
	clock.Add(time.Hour)
	if !b.take() || !b.take() || b.take() {
		t.Fatal("refill is capped at the burst")
	}
}

// TestCopyTree covers the fallback used when the staging directory and dst are on different file
// systems (rename fails with EXDEV).
func TestCopyTree(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "objects", "ab"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "HEAD"), []byte("ref: refs/heads/main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("HEAD", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if err := copyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "HEAD")); string(b) != "ref: refs/heads/main\n" {
		t.Fatal("HEAD not copied")
	}
	if l, _ := os.Readlink(filepath.Join(dst, "link")); l != "HEAD" {
		t.Fatal("symlink not copied")
	}
	if fi, err := os.Stat(filepath.Join(dst, "objects", "ab")); err != nil || !fi.IsDir() {
		t.Fatal("directory not copied")
	}
}
