package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keybase/go-keybase-chat-bot/kbchat/types/keybase1"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

// TestContract walks the life of a container's Keybase: service up, wait, oneshot (wrong key, right
// key), whoami, chat, SimpleFS copy of a bare repo, logout, stop — checking each step against the
// real CLI's contract, and that the paper key never lands anywhere.
func TestContract(t *testing.T) {
	e := newFakeEnv(t)
	repo := makeBareRepo(t, filepath.Join(e.kbfsRoot, "team", "acme", ".kbfs_git", "matrix-config"))

	svc, svcErr := e.startService(t)
	e.waitReady(t, false)

	if r := e.run(t, nil, "--no-auto-fork", "whoami", "-json"); r.code != 0 || decodeStatus(t, r.stdout).LoggedIn {
		t.Fatalf("whoami -json before login: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}

	r := e.run(t, []string{"KEYBASE_PAPERKEY=wrong words entirely"}, "--no-auto-fork", "--no-debug", "oneshot", "--username", "alice")
	if r.code != 2 || r.stdout != "" || r.stderr != "▶ ERROR No device found no device found for paper key\n" {
		t.Errorf("oneshot with a wrong key: exit %d stdout %q stderr %q; want 2, \"\", the real NoDeviceError", r.code, r.stdout, r.stderr)
	}

	r = e.run(t, []string{"KEYBASE_USERNAME=alice", "KEYBASE_PAPERKEY=" + testPaperKey}, "--no-auto-fork", "--no-debug", "oneshot")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("oneshot with the env key: exit %d stdout %q stderr %q; want 0 and no output", r.code, r.stdout, r.stderr)
	}

	r = e.run(t, nil, "--no-auto-fork", "whoami", "-json")
	st := decodeStatus(t, r.stdout)
	if r.code != 0 || !st.LoggedIn || st.User == nil || st.User.Username != "alice" || len(st.User.Uid) != 32 {
		t.Errorf("whoami -json after login: exit %d, %+v", r.code, st)
	}
	if r := e.run(t, nil, "whoami"); r.code != 0 || r.stdout != "alice\n" {
		t.Errorf("whoami: exit %d stdout %q", r.code, r.stdout)
	}

	r = e.run(t, []string{"KEYBASE_PAPERKEY=" + testPaperKey}, "oneshot", "-u", "alice")
	if r.code != 2 || !strings.Contains(r.stderr, "You are already logged in as a different user; try logout first") {
		t.Errorf("second oneshot: exit %d stderr %q", r.code, r.stderr)
	}

	t.Run("chat api send round trip", func(t *testing.T) {
		cmd := exec.Command(e.keybase, "chat", "api")
		cmd.Env = e.env()
		// Two calls in one stream, keys in other cases than the documented ones.
		cmd.Stdin = strings.NewReader(`{"Method":"send","PARAMS":{"Options":{"Channel":{"Name":"acme","Members_Type":"team","Topic_Name":"ops"},"Message":{"Body":"synapse is up"}}}}` +
			"\n" + `{"method":"list"}`)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chat api: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 2 || lines[0] != `{"result":{"id":1,"message":"message sent"}}` || !strings.Contains(lines[1], `"conversations":[{`) {
			t.Fatalf("chat api replies: %q", lines)
		}
		msgs := e.chatLog(t)
		want := chatChannel{Name: "acme", MembersType: "team", TopicName: "ops"}
		if len(msgs) != 1 || msgs[0].Body != "synapse is up" || msgs[0].Channel != want || msgs[0].Sender != "alice" {
			t.Errorf("recorded messages: %+v", msgs)
		}
	})

	t.Run("fs cp -r of a bare repo", func(t *testing.T) {
		src := "/keybase/team/acme/.kbfs_git/matrix-config"
		dst := filepath.Join(t.TempDir(), "matrix-config.git")
		if r := e.run(t, nil, "--no-auto-fork", "fs", "cp", "-r", src, dst); r.code != 2 || !strings.Contains(r.stderr, "KBFS client wasn't found") {
			t.Errorf("fs cp without kbfsfuse: exit %d stderr %q", r.code, r.stderr)
		}
		e.startKBFS(t)
		e.waitReady(t, true)
		if r := e.run(t, nil, "--no-auto-fork", "fs", "cp", "-r", src, dst); r.code != 0 {
			t.Fatalf("fs cp -r: exit %d\n%s", r.code, r.stderr)
		}
		if got := git(t, "", "--git-dir", dst, "rev-parse", "HEAD"); got != repo.head {
			t.Errorf("copied repo HEAD = %s, want %s", got, repo.head)
		}
		if _, err := os.Stat(filepath.Join(dst, "kbfs_config")); err != nil {
			t.Errorf("kbfs_config not copied: %v", err)
		}
		clone := filepath.Join(t.TempDir(), "clone")
		git(t, "", "clone", "-q", dst, clone)
		if b, err := os.ReadFile(filepath.Join(clone, "homeserver.yaml")); err != nil || string(b) != repo.content {
			t.Errorf("clone of the copy: %q, %v", b, err)
		}
		if r := e.run(t, nil, "fs", "ls", "-a", "/keybase/team/acme/.kbfs_git"); r.code != 0 || r.stdout != "matrix-config\n" {
			t.Errorf("fs ls: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		if r := e.run(t, nil, "fs", "read", "keybase://team/acme/.kbfs_git/matrix-config/HEAD"); r.code != 0 || !strings.HasPrefix(r.stdout, "ref: refs/heads/") {
			t.Errorf("fs read: exit %d stdout %q", r.code, r.stdout)
		}
		if r := e.run(t, nil, "fs", "cp", "/keybase/team/acme/.kbfs_git/nope", dst+"-2"); r.code != 2 || !strings.Contains(r.stderr, "does not exist") {
			t.Errorf("fs cp of a missing path: exit %d stderr %q", r.code, r.stderr)
		}
	})

	if r := e.run(t, nil, "--no-auto-fork", "logout", "--force"); r.code != 0 {
		t.Errorf("logout --force: exit %d %s", r.code, r.stderr)
	}
	if r := e.run(t, nil, "whoami", "-j"); decodeStatus(t, r.stdout).LoggedIn {
		t.Errorf("whoami after logout: still logged in: %s", r.stdout)
	}

	// The key in argv is recorded redacted, with the flag saying it was exposed.
	if r := e.run(t, []string{"KEYBASE_PAPERKEY="}, "oneshot", "-u", "alice", "--paperkey", testPaperKey); r.code != 0 {
		t.Errorf("oneshot --paperkey: exit %d %s", r.code, r.stderr)
	}

	if r := e.run(t, nil, "--no-auto-fork", "ctl", "stop"); r.code != 0 {
		t.Fatalf("ctl stop: exit %d %s", r.code, r.stderr)
	}
	if code := svc.Wait(t, 10*time.Second); code != 0 {
		t.Errorf("service exit after ctl stop = %d, want 0\n%s", code, svcErr.String())
	}
	if _, err := os.Stat(filepath.Join(e.home, ".config", "keybase", "keybased.sock")); !os.IsNotExist(err) {
		t.Errorf("socket still there after a clean stop: %v", err)
	}
	if r := e.run(t, nil, "--no-auto-fork", "whoami", "-json"); r.code != 2 || r.stderr != "▶ ERROR keybase isn't running; try `run_keybase`\n" {
		t.Errorf("whoami after stop: exit %d stderr %q", r.code, r.stderr)
	}

	invs := e.invocations(t)
	var sawRedacted bool
	for _, inv := range invs {
		if inv.PaperkeyInArgv {
			sawRedacted = true
			if !reflect.DeepEqual(inv.Args, []string{"oneshot", "-u", "alice", "--paperkey", redacted}) {
				t.Errorf("redacted argv = %q", inv.Args)
			}
		}
	}
	if !sawRedacted {
		t.Errorf("no invocation recorded paperkey_in_argv")
	}
	if invs[len(invs)-1].Argv0 == "" || invs[0].UID != os.Geteuid() {
		t.Errorf("invocation fields: %+v", invs[0])
	}
	assertNoSecretOnDisk(t, e.home, e.log)
}

// TestRootRefused checks the real refusal to run as root without KEYBASE_ALLOW_ROOT.
func TestRootRefused(t *testing.T) {
	testutil.RequireRoot(t)
	e := newFakeEnv(t)
	for _, allow := range []string{"KEYBASE_ALLOW_ROOT=", "KEYBASE_ALLOW_ROOT=0", "KEYBASE_ALLOW_ROOT=no"} {
		r := e.run(t, []string{allow}, "service")
		if r.code != 2 || r.stderr != "▶ ERROR Oops, you are trying to run as an admin user (Uid: 0). This isn't supported.\n" {
			t.Errorf("%s keybase service: exit %d stderr %q", allow, r.code, r.stderr)
		}
	}
	if r := e.run(t, []string{"KEYBASE_ALLOW_ROOT="}, "oneshot"); r.code != 2 || !strings.Contains(r.stderr, "Need a --username option or a KEYBASE_USERNAME environment variable") {
		t.Errorf("argument errors come before the root check: exit %d stderr %q", r.code, r.stderr)
	}
}

// TestNotRunning checks the failures a too-early CLI call sees.
func TestNotRunning(t *testing.T) {
	e := newFakeEnv(t)
	if r := e.run(t, []string{"KEYBASE_PAPERKEY=" + testPaperKey}, "--no-auto-fork", "oneshot", "-u", "alice"); r.code != 2 || r.stderr != "▶ ERROR keybase isn't running; try `run_keybase`\n" {
		t.Errorf("oneshot without service: exit %d stderr %q", r.code, r.stderr)
	}
	if r := e.run(t, nil, "ctl", "wait", "-d", "100ms"); r.code != 2 || !strings.Contains(r.stderr, "timed out waiting for the keybase service") {
		t.Errorf("ctl wait without service: exit %d stderr %q", r.code, r.stderr)
	}
	if r := e.run(t, nil, "--bogus-flag", "whoami"); r.code != 2 || !strings.Contains(r.stderr, "flag provided but not defined: -bogus-flag") {
		t.Errorf("unknown global flag: exit %d stderr %q", r.code, r.stderr)
	}
}

// TestSlowService: the socket appears only after FAKEKEYBASE_SERVICE_DELAY; ctl wait covers it.
func TestSlowService(t *testing.T) {
	e := newFakeEnv(t)
	e.startService(t, "FAKEKEYBASE_SERVICE_DELAY=3s")
	if r := e.run(t, []string{"KEYBASE_PAPERKEY=" + testPaperKey}, "oneshot", "-u", "alice"); r.code != 2 || !strings.Contains(r.stderr, "isn't running") {
		t.Errorf("oneshot before the slow service is up: exit %d stderr %q", r.code, r.stderr)
	}
	e.waitReady(t, false)
	if r := e.run(t, []string{"KEYBASE_PAPERKEY=" + testPaperKey}, "oneshot", "-u", "alice"); r.code != 0 {
		t.Errorf("oneshot after ctl wait: exit %d stderr %q", r.code, r.stderr)
	}
}

// TestCrashingService: the service exits 1 and leaves a stale socket; clients see "isn't running".
func TestCrashingService(t *testing.T) {
	e := newFakeEnv(t)
	svc, _ := e.startService(t, "FAKEKEYBASE_SERVICE_CRASH_AFTER=300ms")
	if code := svc.Wait(t, 10*time.Second); code != 1 {
		t.Fatalf("crashing service exit = %d, want 1", code)
	}
	if _, err := os.Stat(filepath.Join(e.home, ".config", "keybase", "keybased.sock")); err != nil {
		t.Errorf("a crash should leave the stale socket: %v", err)
	}
	if r := e.run(t, nil, "whoami", "-json"); r.code != 2 || !strings.Contains(r.stderr, "isn't running") {
		t.Errorf("whoami after crash: exit %d stderr %q", r.code, r.stderr)
	}
	// A new service replaces the stale socket.
	e.startService(t)
	e.waitReady(t, false)
}

// TestOneshotFailures covers the other login errors worth mapping and the hang.
func TestOneshotFailures(t *testing.T) {
	e := newFakeEnv(t)
	e.startService(t)
	e.waitReady(t, false)
	key := []string{"KEYBASE_PAPERKEY=" + testPaperKey}
	if r := e.run(t, key, "oneshot", "-u", "mallory"); r.code != 2 || r.stderr != "▶ ERROR In resolving 'mallory': No resolution found\n" {
		t.Errorf("unknown user: exit %d stderr %q", r.code, r.stderr)
	}
	if r := e.run(t, nil, "oneshot", "-u", "alice"); r.code != 2 || !strings.Contains(r.stderr, "Need a --paperkey option or a KEYBASE_PAPERKEY environment variable") {
		t.Errorf("no key: exit %d stderr %q", r.code, r.stderr)
	}

	cmd := exec.Command(e.keybase, "--no-auto-fork", "oneshot", "-u", "alice")
	cmd.Env = e.env(append(key, "FAKEKEYBASE_ONESHOT_HANG=1")...)
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	hung := testutil.Start(t, cmd)
	testutil.Eventually(t, 10*time.Second, "hung oneshot connected to the service", func() bool {
		return socketOpen(cmd.Process.Pid) || hung.Exited()
	})
	if hung.Exited() {
		t.Fatalf("oneshot with FAKEKEYBASE_ONESHOT_HANG exited: %v %s", hung.Err(), stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal hung oneshot: %v", err)
	}
	if code := hung.Wait(t, 10*time.Second); code != 3 || stderr.String() != "▶ ERROR interrupted\n" {
		t.Errorf("interrupted oneshot: exit %d stderr %q, want 3 and interrupted", code, stderr.String())
	}

	revoked := newFakeEnv(t)
	revoked.startService(t, "FAKEKEYBASE_REVOKED=1")
	revoked.waitReady(t, false)
	if r := revoked.run(t, key, "oneshot", "-u", "alice"); r.code != 2 || !strings.HasPrefix(r.stderr, "▶ ERROR Key revoked: 0120") {
		t.Errorf("revoked key: exit %d stderr %q", r.code, r.stderr)
	}
}

// TestRedactArgs pins down every argv spelling of the paper key flag.
func TestRedactArgs(t *testing.T) {
	cases := []struct {
		in, want []string
		found    bool
	}{
		{[]string{"oneshot", "-u", "a"}, []string{"oneshot", "-u", "a"}, false},
		{[]string{"oneshot", "-p", "k k"}, []string{"oneshot", "-p", redacted}, true},
		{[]string{"oneshot", "--paperkey", "k"}, []string{"oneshot", "--paperkey", redacted}, true},
		{[]string{"oneshot", "-paperkey=k"}, []string{"oneshot", "-paperkey=" + redacted}, true},
		{[]string{"oneshot", "--p=k", "-u", "a"}, []string{"oneshot", "--p=" + redacted, "-u", "a"}, true},
		{[]string{"oneshot", "-p"}, []string{"oneshot", "-p"}, true},
	}
	for _, c := range cases {
		got, found := redactArgs(c.in)
		if !reflect.DeepEqual(got, c.want) || found != c.found {
			t.Errorf("redactArgs(%q) = %q, %v; want %q, %v", c.in, got, found, c.want, c.found)
		}
	}
}

// decodeStatus parses whoami -json with kbchat's own type, so a shape kbchat cannot read fails here.
func decodeStatus(t *testing.T, out string) keybase1.CurrentStatus {
	t.Helper()
	var st keybase1.CurrentStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("whoami -json output %q: %v", out, err)
	}
	return st
}

// bareRepo is a fixture repository as KBFS stores it.
type bareRepo struct {
	head    string
	content string
}

// makeBareRepo builds, with the real git, a bare repository at dir the way KBFS keeps one
// (plus the kbfs_config file), with one commit holding homeserver.yaml.
func makeBareRepo(t *testing.T, dir string) bareRepo {
	t.Helper()
	work := filepath.Join(t.TempDir(), "work")
	content := "server_name: example.org\nreport_stats: false\n"
	git(t, "", "init", "-q", "-b", "main", work)
	if err := os.WriteFile(filepath.Join(work, "homeserver.yaml"), []byte(content), 0o644); err != nil {
		t.Fatalf("write fixture: %v", err)
	}
	git(t, work, "add", "homeserver.yaml")
	git(t, work, "commit", "-q", "-m", "config")
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	git(t, "", "clone", "-q", "--bare", work, dir)
	if err := os.WriteFile(filepath.Join(dir, "kbfs_config"), []byte(`{"ID":"fixture","Name":"matrix-config"}`+"\n"), 0o644); err != nil {
		t.Fatalf("write kbfs_config: %v", err)
	}
	return bareRepo{head: git(t, work, "rev-parse", "HEAD"), content: content}
}

// git runs the real git with a neutral identity and no user or system config.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=fixture", "GIT_AUTHOR_EMAIL=fixture@example.org",
		"GIT_COMMITTER_NAME=fixture", "GIT_COMMITTER_EMAIL=fixture@example.org",
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}
