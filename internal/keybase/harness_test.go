package keybase

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/child"
	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// testKey is the paper key the tests log in with: 13 words, like a real one.
const testKey = "stumble crater ocean vivid pledge ahead tunnel march orbit velvet garlic frozen eleven"

// fakeBinDir holds the fake keybase built once by TestMain, with kbfsfuse symlinked to it.
var fakeBinDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fakekeybase-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		root, err := moduleRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "keybase"), "./test/fakekeybase")
		build.Dir = root
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build the fake keybase:", err)
			return 1
		}
		if err := os.Symlink("keybase", filepath.Join(dir, "kbfsfuse")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// The unprivileged-user test runs the fake as nobody.
		_ = os.Chmod(dir, 0o755)
		fakeBinDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// harness is one Keybase under test: its own home, KBFS root, call log and logger.
type harness struct {
	t        *testing.T
	dir      string
	home     string
	kbfsRoot string
	callLog  string
	logs     *testutil.Buffer
	output   *testutil.Buffer
	cfg      Config
}

// noUser is a LookupUser with no "keybase" user: as root, Keybase needs AllowRoot.
func noUser(name string) (*user.User, error) { return nil, user.UnknownUserError(name) }

func newHarness(t *testing.T, env ...string) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, home: filepath.Join(dir, "home"), kbfsRoot: filepath.Join(dir, "kbfs"),
		callLog: filepath.Join(dir, "calls.jsonl"), logs: &testutil.Buffer{}, output: &testutil.Buffer{}}
	if err := os.MkdirAll(h.kbfsRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	base := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"LANG=C.UTF-8",
		"FAKEKEYBASE_LOG=" + h.callLog,
		"FAKEKEYBASE_KBFS_ROOT=" + h.kbfsRoot,
		"FAKEKEYBASE_PAPERKEY=" + testKey,
		"FAKEKEYBASE_USERS=alice,bob",
	}
	h.cfg = Config{
		Username:       "alice",
		PaperKey:       NewSecret(testKey),
		Binary:         filepath.Join(fakeBinDir, "keybase"),
		KBFSBinary:     filepath.Join(fakeBinDir, "kbfsfuse"),
		HomeDir:        h.home,
		AllowRoot:      true,
		ReadyTimeout:   20 * time.Second,
		LoginTimeout:   20 * time.Second,
		StopTimeout:    3 * time.Second,
		CommandTimeout: 15 * time.Second,
		SendTimeout:    10 * time.Second,
		BaseEnv:        overrideEnv(base, env),
		DaemonPolicy: child.Policy{Restart: child.RestartOnFailure, MaxFailures: 5, Window: time.Minute,
			Backoff: child.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Factor: 2}},
		DaemonOutput: h.output,
		TempDir:      dir,
		LookupUser:   noUser,
	}
	return h
}

// overrideEnv returns base with the entries of extra replacing same-named ones (an entry "NAME="
// with nothing after removes NAME).
func overrideEnv(base, extra []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range extra {
		name, val, _ := strings.Cut(kv, "=")
		kept := out[:0]
		for _, o := range out {
			if !strings.HasPrefix(o, name+"=") {
				kept = append(kept, o)
			}
		}
		out = kept
		if val != "" {
			out = append(out, kv)
		}
	}
	return out
}

// logger logs at debug level into h.logs (JSON), so tests can grep every line for the key.
func (h *harness) logger() *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(h.logs), zapcore.DebugLevel))
}

func (h *harness) start() (*Keybase, error) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Start(ctx, h.cfg, h.logger())
}

// mustStart starts Keybase and stops it when the test ends.
func (h *harness) mustStart() *Keybase {
	h.t.Helper()
	k, err := h.start()
	if err != nil {
		h.t.Fatalf("Start: %v\nlogs:\n%s", err, h.logs.String())
	}
	h.t.Cleanup(func() { h.stop(k) })
	return k
}

func (h *harness) stop(k *Keybase) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = k.Stop(ctx)
}

// call is one line of FAKEKEYBASE_LOG.
type call struct {
	TS             string   `json:"ts"`
	PID            int      `json:"pid"`
	Argv0          string   `json:"argv0"`
	Args           []string `json:"args"`
	PaperkeyInArgv bool     `json:"paperkey_in_argv"`
	PaperkeyInEnv  bool     `json:"paperkey_in_env"`
	UID            int      `json:"uid"`
	Exit           int      `json:"exit"`
}

// command names a call: "kbfsfuse", or the keybase subcommand words without flags
// ("service", "ctl wait", "oneshot").
func (c call) command() string {
	if filepath.Base(c.Argv0) == "kbfsfuse" {
		return "kbfsfuse"
	}
	var words []string
	for i := 0; i < len(c.Args); i++ {
		a := c.Args[i]
		switch {
		case a == "--home" || a == "-H":
			i++
		case strings.HasPrefix(a, "-"):
		case len(words) == 0, len(words) == 1 && contains([]string{"ctl", "fs", "chat", "log"}, words[0]):
			words = append(words, a)
		}
	}
	cmd := strings.Join(words, " ")
	if cmd == "ctl wait" && contains(c.Args, "--include-kbfs") {
		cmd += " --include-kbfs"
	}
	return cmd
}

// calls reads the call log in spawn order. A line is written when its process exits, and its ts is
// taken after the fake's runtime init, so neither orders processes started close together; pids
// are handed out at fork, in order (pid_max is far from wrapping during a test).
func (h *harness) calls() []call {
	h.t.Helper()
	f, err := os.Open(h.callLog)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	var out []call
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var c call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			h.t.Fatalf("bad call log line %q: %v", sc.Text(), err)
		}
		out = append(out, c)
	}
	order := spawnOrder(out)
	sort.SliceStable(out, func(i, j int) bool { return order(out[i].PID) < order(out[j].PID) })
	return out
}

// spawnOrder maps pids to a sortable key, unwrapping a pid_max wrap-around within the set.
func spawnOrder(cs []call) func(int) int {
	pidMax := 1 << 22
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pidMax = n
		}
	}
	lo, hi := pidMax, 0
	for _, c := range cs {
		lo, hi = min(lo, c.PID), max(hi, c.PID)
	}
	wrapped := hi-lo > pidMax/2
	return func(pid int) int {
		if wrapped && pid < pidMax/2 {
			return pid + pidMax
		}
		return pid
	}
}

func commands(cs []call) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.command())
	}
	return out
}

func countCalls(cs []call, cmd string, exit int) int {
	n := 0
	for _, c := range cs {
		if c.command() == cmd && c.Exit == exit {
			n++
		}
	}
	return n
}

// chatMessage is one line of the fake service's chat log.
type chatMessage struct {
	Sender  string `json:"sender"`
	Channel struct {
		Name        string `json:"name"`
		MembersType string `json:"members_type"`
		TopicName   string `json:"topic_name"`
	} `json:"channel"`
	Body string `json:"body"`
}

func (h *harness) chat() []chatMessage {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.home, ".config", "keybase", "fakekeybase-chat.jsonl"))
	if err != nil {
		return nil
	}
	var out []chatMessage
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m chatMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			h.t.Fatalf("bad chat line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// waitChat waits until the chat log has n messages.
func (h *harness) waitChat(n int) []chatMessage {
	h.t.Helper()
	testutil.Eventually(h.t, 20*time.Second, fmt.Sprintf("%d chat messages", n), func() bool { return len(h.chat()) >= n })
	return h.chat()
}

// gitRepo makes a bare repository with one commit under the fake KBFS at
// /keybase/<kind>/<tlf>/.kbfs_git/<name> and returns the commit id.
func (h *harness) gitRepo(kind, tlf, name string) string {
	h.t.Helper()
	bare := filepath.Join(h.kbfsRoot, kind, tlf, ".kbfs_git", name)
	work := filepath.Join(h.dir, "work-"+name)
	git := func(dir string, args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + h.dir, "PATH=/usr/bin:/bin", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			h.t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(filepath.Dir(bare), 0o755); err != nil {
		h.t.Fatal(err)
	}
	git(h.dir, "init", "-q", "--bare", "-b", "main", bare)
	git(h.dir, "init", "-q", "-b", "main", work)
	if err := os.WriteFile(filepath.Join(work, "homeserver.yaml"), []byte("server_name: example.org\n"), 0o644); err != nil {
		h.t.Fatal(err)
	}
	git(work, "add", "homeserver.yaml")
	git(work, "commit", "-q", "-m", "config")
	git(work, "push", "-q", bare, "main")
	return git(work, "rev-parse", "HEAD")
}
