package main

// The operator's journey, end to end, against the real Synapse and the fake Keybase CLI:
// a keybase:// config repository → oneshot login → clone → render and validate → Synapse ready →
// a user registers and logs in → a commit changing the log level is applied with SIGHUP → an
// invalid commit is rejected while the old config keeps serving → SIGTERM → exit 0, Keybase
// logged out, nothing left running.

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
	"github.com/ovrclk/synapse-entrypoint/internal/testutil/synapsert"
)

// configRepo is a git work tree on the host whose pushes land in the fixture KBFS tree.
type configRepo struct {
	t    *testing.T
	work string
	bare string
}

func (r *configRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.work
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=op", "GIT_AUTHOR_EMAIL=op@example.org", "GIT_COMMITTER_NAME=op", "GIT_COMMITTER_EMAIL=op@example.org")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// edit rewrites a file of the repository with f, commits and pushes; it returns the commit id.
func (r *configRepo) edit(name, msg string, f func(string) string) string {
	r.t.Helper()
	p := filepath.Join(r.work, name)
	b, err := os.ReadFile(p)
	if err != nil {
		r.t.Fatal(err)
	}
	out := f(string(b))
	if out == string(b) {
		r.t.Fatalf("edit of %s changed nothing", name)
	}
	os.WriteFile(p, []byte(out), 0o644)
	r.git("commit", "-qam", msg)
	r.git("push", "-q", "origin", "HEAD:main")
	return r.git("rev-parse", "HEAD")
}

// newKeybaseRepo makes keybase://team/acme/matrix in a fixture KBFS tree under root/kbfs, holding
// a fresh `entrypoint init` config whose port is templated.
func newKeybaseRepo(t *testing.T, root string) *configRepo {
	t.Helper()
	r := &configRepo{t: t, work: t.TempDir(), bare: filepath.Join(root, "kbfs/team/acme/.kbfs_git/matrix")}
	if out, err := exec.Command(entrypointBin, "init", "--server-name", "localhost", r.work).CombinedOutput(); err != nil {
		t.Fatalf("entrypoint init: %v\n%s", err, out)
	}
	hs := filepath.Join(r.work, "homeserver.yaml")
	b, _ := os.ReadFile(hs)
	templated := strings.Replace(string(b), "port: 8008", "port: ${SYNAPSE_HTTP_PORT}", 1)
	os.WriteFile(hs, []byte(templated), 0o644)
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", r.bare).CombinedOutput(); err != nil {
		t.Fatalf("git init --bare: %v\n%s", err, out)
	}
	r.git("init", "-q", "-b", "main")
	r.git("add", "-A")
	r.git("commit", "-qm", "initial config")
	r.git("remote", "add", "origin", r.bare)
	r.git("push", "-q", "origin", "main")
	return r
}

// kbCalls reads the fake keybase's call log.
type kbCall struct {
	Args          []string `json:"args"`
	PaperkeyEnv   bool     `json:"paperkey_in_env"`
	PaperkeyArgv  bool     `json:"paperkey_in_argv"`
	Argv0         string   `json:"argv0"`
	Pid           int      `json:"pid"`
	Exit          *int     `json:"exit"`
	subcommandStr string
}

func kbCalls(t *testing.T, path string) []kbCall {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var calls []kbCall
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var c kbCall
		if json.Unmarshal(sc.Bytes(), &c) == nil {
			c.subcommandStr = subcommand(c.Args)
			calls = append(calls, c)
		}
	}
	return calls
}

// subcommand drops global flags: "oneshot", "ctl wait", "fs cp", ...
func subcommand(args []string) string {
	var words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if a == "--home" {
				i++
			}
			continue
		}
		words = append(words, a)
		if len(words) == 2 {
			break
		}
	}
	return strings.Join(words, " ")
}

func hasCall(calls []kbCall, prefix string) bool {
	for _, c := range calls {
		if strings.HasPrefix(c.subcommandStr, prefix) {
			return true
		}
	}
	return false
}

func TestJourneyKeybaseRepoToCleanStop(t *testing.T) {
	const paper = "bless ritual angry donkey orbit lunar fiction radio gravity wisdom ocean spoon"
	root := synapsert.Root(t)
	repo := newKeybaseRepo(t, root)
	synapsert.Install(t, root, fakeKeybaseBin, "/usr/local/bin/keybase")
	synapsert.Install(t, root, fakeKeybaseBin, "/usr/local/bin/kbfsfuse")
	kbLog := filepath.Join(root, "tmp/keybase-calls.jsonl")
	os.MkdirAll(filepath.Dir(kbLog), 0o1777)
	os.WriteFile(kbLog, nil, 0o666)

	h := startHomeserver(t, root, []string{
		"SYNAPSE_SERVER_NAME=", // no embedded default: the config comes from the repository
		"KEYBASE_USERNAME=alice",
		"KEYBASE_PAPERKEY=" + paper,
		"KEYBASE_ALLOW_ROOT=1", // the runtime tree has no unprivileged keybase user (the image does)
		"KEYBASE_HOME=/var/lib/keybase",
		"FAKEKEYBASE_PAPERKEY=" + paper,
		"FAKEKEYBASE_KBFS_ROOT=/kbfs",
		"FAKEKEYBASE_LOG=/tmp/keybase-calls.jsonl",
		"CONFIG_REPO=keybase://team/acme/matrix",
		"CONFIG_SYNC_INTERVAL=300ms",
	})

	// Phase 1: login, clone, validation, Synapse ready and serving Matrix clients.
	h.waitReady()
	calls := kbCalls(t, kbLog)
	// (The fake logs a call when it ends: the running service shows up at shutdown.)
	for _, want := range []string{"ctl wait", "whoami", "oneshot", "fs cp"} {
		if !hasCall(calls, want) {
			t.Errorf("keybase %s was never called", want)
		}
	}
	for _, c := range calls {
		if c.PaperkeyArgv || (c.PaperkeyEnv && !strings.HasPrefix(c.subcommandStr, "oneshot")) {
			t.Errorf("paper key reached `keybase %s` (argv %v, env %v)", c.subcommandStr, c.PaperkeyArgv, c.PaperkeyEnv)
		}
	}
	if fi, err := os.Lstat(h.path("/data/homeserver.yaml")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("/data/homeserver.yaml is not the repository's: %v %v", fi, err)
	}
	mc := newMatrixClient(t, h.port)
	mc.register(sharedSecret(t, filepath.Join(repo.work, "homeserver.yaml")), "carol", "a long enough password")
	mc.login("carol", "a long enough password")
	py, _ := h.synapse()
	for _, p := range h.nsProcs() {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/cmdline")
		environ, _ := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/environ")
		if strings.Contains(string(cmdline), paper) {
			t.Errorf("paper key in the argv of %s (%d)", p.comm, p.pid)
		}
		// FAKEKEYBASE_PAPERKEY is the fake's own switch (the key it accepts), not the entrypoint's.
		for _, kv := range strings.Split(string(environ), "\x00") {
			if p.pid == py.pid && strings.Contains(kv, paper) && !strings.HasPrefix(kv, "FAKEKEYBASE_PAPERKEY=") {
				t.Errorf("paper key in Synapse's environment: %.20s...", kv)
			}
		}
	}

	// Phase 2: a commit that changes only the log level is applied with SIGHUP.
	logConfig := "localhost.log.config"
	repo.edit(logConfig, "debug logging", func(s string) string {
		return regexp.MustCompile(`(?m)^(\s+level:\s*)INFO`).ReplaceAllString(s, "${1}DEBUG")
	})
	testutil.Eventually(t, 60*time.Second, "the log level change applied with SIGHUP", func() bool {
		return strings.Contains(h.stderr.String(), "new config commit applied with SIGHUP")
	})
	testutil.Eventually(t, 30*time.Second, "DEBUG lines from Synapse", func() bool {
		mc.versions()
		return strings.Contains(h.stdout.String()+h.stderr.String(), " - DEBUG - ")
	})
	if p, ok := h.synapse(); !ok || p.pid != py.pid {
		t.Fatal("Synapse was restarted for a change SIGHUP applies")
	}
	live, _ := os.Readlink(h.path("/data/config"))

	// Phase 2b: the Keybase service dies: it is restarted (and logged in again), Synapse untouched.
	var service proc
	for _, p := range h.nsProcs() {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/cmdline")
		if strings.HasSuffix(strings.TrimRight(string(cmdline), "\x00"), "\x00service") {
			service = p
		}
	}
	if service.pid == 0 {
		t.Fatal("no keybase service process")
	}
	syscall.Kill(service.pid, syscall.SIGKILL)
	testutil.Eventually(t, 60*time.Second, "keybase service restarted and logged in again", func() bool {
		n := 0
		for _, c := range kbCalls(t, kbLog) {
			if strings.HasPrefix(c.subcommandStr, "oneshot") {
				n++
			}
		}
		return n >= 2
	})
	if p, ok := h.synapse(); !ok || p.pid != py.pid {
		t.Fatal("Synapse was touched when the Keybase service died")
	}

	// Phase 3: an invalid commit is rejected; the old config keeps serving.
	bad := repo.edit("homeserver.yaml", "open registration", func(s string) string {
		return strings.Replace(s, "enable_registration: false", "enable_registration: true", 1)
	})
	testutil.Eventually(t, 60*time.Second, "the invalid commit rejected", func() bool {
		return strings.Contains(h.stderr.String(), "config commit rejected") && strings.Contains(h.stderr.String(), bad)
	})
	if now, _ := os.Readlink(h.path("/data/config")); now != live {
		t.Fatalf("/data/config moved to %s after an invalid commit (was %s)", now, live)
	}
	if code := mc.versions(); code != 200 {
		t.Fatalf("Synapse stopped serving after a rejected commit: %d", code)
	}
	if p, ok := h.synapse(); !ok || p.pid != py.pid {
		t.Fatal("Synapse was restarted for a rejected commit")
	}
	if m := h.metrics(); !regexp.MustCompile(`entrypoint_config_sync_failures_total\{kind="invalid"\} [1-9]`).MatchString(m) {
		t.Errorf("rejection not counted in metrics")
	}

	// Phase 4: SIGTERM → exit 0, Keybase logged out and stopped after Synapse, nothing left.
	h.signal(syscall.SIGTERM)
	if code := h.exitCode(30 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	calls = kbCalls(t, kbLog)
	if !hasCall(calls, "service") || !hasCall(calls, "logout") || !hasCall(calls, "ctl stop") {
		t.Errorf("Keybase was not logged out and stopped: %v", subcommands(calls))
	}
	if left := h.nsProcs(); len(left) != 0 {
		t.Fatalf("processes left: %v", left)
	}
	if strings.Contains(h.stdout.String()+h.stderr.String(), paper) {
		t.Fatal("the paper key appeared in the output")
	}
}

func subcommands(calls []kbCall) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.subcommandStr)
	}
	return out
}

// A wrong paper key: exit 78 with a message that says so, and Synapse never started.
func TestJourneyWrongPaperKey(t *testing.T) {
	root := synapsert.Root(t)
	newKeybaseRepo(t, root)
	synapsert.Install(t, root, fakeKeybaseBin, "/usr/local/bin/keybase")
	synapsert.Install(t, root, fakeKeybaseBin, "/usr/local/bin/kbfsfuse")
	const wrong = "this is not the paper key at all"
	h := startHomeserver(t, root, []string{
		"SYNAPSE_SERVER_NAME=",
		"KEYBASE_USERNAME=alice", "KEYBASE_PAPERKEY=" + wrong, "KEYBASE_ALLOW_ROOT=1",
		"KEYBASE_HOME=/var/lib/keybase", "FAKEKEYBASE_PAPERKEY=the right one",
		"FAKEKEYBASE_KBFS_ROOT=/kbfs", "CONFIG_REPO=keybase://team/acme/matrix",
	})
	if code := h.exitCode(60 * time.Second); code != 78 {
		t.Fatalf("exit %d, want 78", code)
	}
	out := h.stderr.String()
	if !strings.Contains(out, "paper key") || strings.Contains(out, "synapse started") {
		t.Fatalf("want a paper-key error and no Synapse:\n%s", out)
	}
	if strings.Contains(out, wrong) {
		t.Fatal("the (wrong) paper key was printed")
	}
	if left := h.nsProcs(); len(left) != 0 {
		t.Fatalf("processes left: %v", left)
	}
}
