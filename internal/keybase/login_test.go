package keybase

import (
	"errors"
	"os"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

// assertStartFails checks Start's error, that everything it started is gone again, and that the
// key leaked nowhere on the way.
func assertStartFails(t *testing.T, h *harness, reason, kind error, exit int, mention string) {
	t.Helper()
	k, err := h.start()
	if err == nil {
		h.stop(k)
		t.Fatal("Start succeeded")
	}
	if !errors.Is(err, reason) || !errors.Is(err, kind) || ExitCode(err) != exit {
		t.Fatalf("got %v; want %v / %v (exit %d, got %d)", err, reason, kind, exit, ExitCode(err))
	}
	if !strings.Contains(err.Error(), mention) {
		t.Fatalf("error %q does not mention %q", err, mention)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Fatal("the key is in the error")
	}
	for _, c := range h.calls() {
		if (c.command() == "service" || c.command() == "kbfsfuse") && alive(c.PID) {
			t.Errorf("%s (pid %d) still running after a failed Start", c.command(), c.PID)
		}
	}
	assertKeyOnlyInOneshotOrNone(t, h.calls())
	assertNoKeyInLogs(t, h)
}

// assertKeyOnlyInOneshotOrNone is assertKeyOnlyInOneshot for runs that may stop before the oneshot.
func assertKeyOnlyInOneshotOrNone(t *testing.T, calls []call) {
	t.Helper()
	for _, c := range calls {
		if c.PaperkeyInArgv || (c.PaperkeyInEnv && c.command() != "oneshot") {
			t.Errorf("paper key exposed by %s (argv %v, env %v)", c.command(), c.PaperkeyInArgv, c.PaperkeyInEnv)
		}
	}
}

func TestWrongPaperKeyIsACredentialsError(t *testing.T) {
	h := newHarness(t, "FAKEKEYBASE_PAPERKEY=some other thirteen words that are not the key at all today ok")
	assertStartFails(t, h, ErrWrongPaperKey, ErrCredentials, ExitConfig, "paper key")
	if n := countCalls(h.calls(), "oneshot", 2); n != 1 {
		t.Fatalf("%d failed oneshots, want exactly 1 (credentials errors are not retried)", n)
	}
}

func TestRevokedPaperKeyIsACredentialsError(t *testing.T) {
	h := newHarness(t, "FAKEKEYBASE_REVOKED=1")
	assertStartFails(t, h, ErrRevokedKey, ErrCredentials, ExitConfig, "revoked")
}

func TestUnknownUserIsACredentialsError(t *testing.T) {
	h := newHarness(t, "FAKEKEYBASE_USERS=bob")
	assertStartFails(t, h, ErrUnknownUser, ErrCredentials, ExitConfig, "KEYBASE_USERNAME")
}

func TestMissingKeyIsRefusedBeforeAnythingStarts(t *testing.T) {
	h := newHarness(t)
	h.cfg.PaperKey = Secret{}
	assertStartFails(t, h, ErrMissingKey, ErrCredentials, ExitConfig, "KEYBASE_PAPERKEY")
	if len(h.calls()) != 0 {
		t.Fatalf("processes started without a key: %q", commands(h.calls()))
	}
}

func TestRootWithoutKeybaseUserIsRefused(t *testing.T) {
	h := newHarness(t)
	h.cfg.AllowRoot = false
	h.cfg.Geteuid = func() int { return 0 }
	assertStartFails(t, h, ErrRootRefused, ErrConfig, ExitConfig, "KEYBASE_ALLOW_ROOT=1")
	if !strings.Contains(func() string { _, err := h.start(); return err.Error() }(), "create that user") {
		t.Fatal("the error does not tell the operator to create the user")
	}
	if len(h.calls()) != 0 {
		t.Fatalf("processes started as root: %q", commands(h.calls()))
	}
}

// TestRootRefusedByTheCLIIsMapped runs the CLI as root without KEYBASE_ALLOW_ROOT (what would
// happen if the environment were wrong) and checks the mapping of its "Oops" message.
func TestRootRefusedByTheCLIIsMapped(t *testing.T) {
	testutil.RequireRoot(t) // the fake refuses root only when it runs as root
	h := newHarness(t)
	c := &cli{bin: h.cfg.Binary, home: h.home, env: h.cfg.BaseEnv, log: h.logger()}
	_, err := c.run(t.Context(), 10*time.Second, nil, "whoami", "-json")
	if !errors.Is(err, ErrRootRefused) || ExitCode(err) != ExitConfig || !strings.Contains(err.Error(), "KEYBASE_ALLOW_ROOT") {
		t.Fatalf("got %v", err)
	}
}

func TestSlowServiceIsWaitedFor(t *testing.T) {
	h := newHarness(t, "FAKEKEYBASE_SERVICE_DELAY=1500ms")
	h.mustStart()
	if n := countCalls(h.calls(), "oneshot", 0); n != 1 {
		t.Fatalf("%d successful oneshots, want 1", n)
	}
}

func TestServiceNeverReadyIsUnavailable(t *testing.T) {
	h := newHarness(t, "FAKEKEYBASE_SERVICE_DELAY=1h")
	h.cfg.ReadyTimeout = 1500 * time.Millisecond
	assertStartFails(t, h, ErrNotReady, ErrUnavailable, ExitUnavailable, "not ready within")
	// The service got SIGTERM during its delay and exited 0, which the fake records.
	if n := countCalls(h.calls(), "service", 0); n != 1 {
		t.Fatalf("service not stopped cleanly: %q", commands(h.calls()))
	}
}

func TestHangingOneshotIsBoundedByLoginTimeout(t *testing.T) {
	h := newHarness(t, "FAKEKEYBASE_ONESHOT_HANG=1")
	h.cfg.LoginTimeout = 2 * time.Second
	assertStartFails(t, h, ErrNotReady, ErrUnavailable, ExitUnavailable, "login did not succeed within")
}

func TestAlreadyLoggedInAsSomeoneElseIsAConfigError(t *testing.T) {
	h := newHarness(t)
	h.mustStart()
	// A second Keybase for bob against the same home finds alice's session.
	h2 := *h
	h2.cfg.Username = "bob"
	h2.cfg.HomeDir = h.home
	k2, err := Start(t.Context(), h2.cfg, h.logger())
	if err == nil {
		h.stop(k2)
		t.Fatal("a second Start succeeded")
	}
	if !errors.Is(err, ErrOtherUser) || ExitCode(err) != ExitConfig || !strings.Contains(err.Error(), `"alice"`) {
		t.Fatalf("got %v", err)
	}
}

func TestUnprivilegedUserRunsEverything(t *testing.T) {
	testutil.RequireRoot(t) // switching to an unprivileged user needs root
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no nobody user: %v", err)
	}
	h := newHarness(t)
	// nobody must reach the temp tree, write the call log and own its home.
	for _, d := range []string{h.dir, h.dir + "/..", h.kbfsRoot} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(h.callLog, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(h.callLog, 0o666); err != nil {
		t.Fatal(err)
	}
	h.cfg.AllowRoot = false
	h.cfg.Notify = "acme"
	h.cfg.LookupUser = func(name string) (*user.User, error) {
		if name != "keybase" {
			return nil, user.UnknownUserError(name)
		}
		return &user.User{Uid: nobody.Uid, Gid: nobody.Gid, Username: "keybase", HomeDir: h.home}, nil
	}
	commit := h.gitRepo("team", "acme", "config")
	k := h.mustStart()
	k.Notify(t.Context(), EventReady, "as nobody")
	h.waitChat(1)
	dst := t.TempDir() + "/copy"
	if err := k.CopyBareRepo(t.Context(), "team", "acme", "config", dst); err != nil {
		t.Fatalf("CopyBareRepo as nobody: %v", err)
	}
	assertCommit(t, dst, commit)
	assertOwnedByUs(t, dst)
	h.stop(k)
	for _, c := range h.calls() {
		if strconvUID(nobody.Uid) != c.UID {
			t.Errorf("%s ran as uid %d, want nobody (%s)", c.command(), c.UID, nobody.Uid)
		}
	}
	assertKeyOnlyInOneshot(t, h.calls())
}
