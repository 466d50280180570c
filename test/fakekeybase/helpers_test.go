package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

// testPaperKey is the fixture's correct paper key: thirteen words like a real one.
const testPaperKey = "absent blanket coyote dizzy eagle fabric galaxy harbor ivory jungle kitten lemon mango"

// fakeEnv is one isolated fake installation: the binary on PATH as keybase and kbfsfuse, its own
// HOME, invocation log and KBFS root.
type fakeEnv struct {
	bin      string // directory with keybase and kbfsfuse
	keybase  string
	home     string
	log      string
	kbfsRoot string
	base     []string // environment every process gets
}

// newFakeEnv builds the fake (the go build cache makes repeats cheap) into a temp dir.
func newFakeEnv(t *testing.T) *fakeEnv {
	t.Helper()
	dir := t.TempDir()
	e := &fakeEnv{
		bin:      filepath.Join(dir, "bin"),
		home:     filepath.Join(dir, "home"),
		log:      filepath.Join(dir, "invocations.jsonl"),
		kbfsRoot: filepath.Join(dir, "kbfs"),
	}
	e.keybase = filepath.Join(e.bin, "keybase")
	for _, d := range []string{e.bin, e.home, e.kbfsRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("mkdir %s: %v", d, err)
		}
	}
	build := exec.Command("go", "build", "-o", e.keybase, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build fake: %v\n%s", err, out)
	}
	if err := os.Symlink("keybase", filepath.Join(e.bin, "kbfsfuse")); err != nil {
		t.Fatalf("link kbfsfuse: %v", err)
	}
	e.base = []string{
		"PATH=" + e.bin + ":/usr/local/bin:/usr/bin:/bin",
		"HOME=" + e.home,
		"KEYBASE_ALLOW_ROOT=1",
		"FAKEKEYBASE_LOG=" + e.log,
		"FAKEKEYBASE_KBFS_ROOT=" + e.kbfsRoot,
		"FAKEKEYBASE_PAPERKEY=" + testPaperKey,
		"FAKEKEYBASE_USERS=alice,bob",
	}
	return e
}

// env returns the base environment with extra entries appended (later entries win for exec).
func (e *fakeEnv) env(extra ...string) []string {
	return append(append([]string{}, e.base...), extra...)
}

// result is how one CLI invocation ended.
type result struct {
	stdout, stderr string
	code           int
}

// run executes `keybase args...` to completion (deadline 20 s) with the base environment plus
// extra.
func (e *fakeEnv) run(t *testing.T, extra []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(e.keybase, args...)
	cmd.Env = e.env(extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := testutil.Start(t, cmd).Wait(t, 20*time.Second)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// startService starts `keybase service` with extra environment (stderr kept for failures); callers
// wait for it with waitReady, i.e. with the `ctl wait` contract itself.
func (e *fakeEnv) startService(t *testing.T, extra ...string) (*testutil.Process, *testutil.Buffer) {
	t.Helper()
	cmd := exec.Command(e.keybase, "--debug", "service")
	cmd.Env = e.env(extra...)
	stderr := &testutil.Buffer{}
	cmd.Stderr = stderr
	return testutil.Start(t, cmd), stderr
}

// startKBFS starts kbfsfuse the way Keybase's own image does.
func (e *fakeEnv) startKBFS(t *testing.T) *testutil.Process {
	t.Helper()
	cmd := exec.Command(filepath.Join(e.bin, "kbfsfuse"), "-debug", "-mount-type=none", "-log-to-file")
	cmd.Env = e.env()
	return testutil.Start(t, cmd)
}

// invocations reads the fake's invocation log.
func (e *fakeEnv) invocations(t *testing.T) []invocation {
	t.Helper()
	f, err := os.Open(e.log)
	if err != nil {
		t.Fatalf("open invocation log: %v", err)
	}
	defer f.Close()
	var out []invocation
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var inv invocation
		if err := json.Unmarshal(sc.Bytes(), &inv); err != nil {
			t.Fatalf("invocation log line %q: %v", sc.Text(), err)
		}
		out = append(out, inv)
	}
	return out
}

// chatLog reads the messages the service recorded.
func (e *fakeEnv) chatLog(t *testing.T) []sentMessage {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(e.home, ".config", "keybase", "fakekeybase-chat.jsonl"))
	if err != nil {
		t.Fatalf("read chat log: %v", err)
	}
	var out []sentMessage
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var m sentMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("chat log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// waitReady runs `ctl wait` (the contract under test doubles as the readiness wait).
func (e *fakeEnv) waitReady(t *testing.T, includeKBFS bool) {
	t.Helper()
	args := []string{"--no-auto-fork", "ctl", "wait", "-d", "15s"}
	if includeKBFS {
		args = append(args, "--include-kbfs")
	}
	if r := e.run(t, nil, args...); r.code != 0 {
		t.Fatalf("ctl wait: exit %d\n%s", r.code, r.stderr)
	}
}

// assertNoSecretOnDisk fails if the paper key appears in any file under the given roots.
func assertNoSecretOnDisk(t *testing.T, roots ...string) {
	t.Helper()
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Type()&os.ModeType != 0 {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte(testPaperKey)) || bytes.Contains(b, []byte(strings.Fields(testPaperKey)[0]+" "+strings.Fields(testPaperKey)[1])) {
				t.Errorf("paper key found in %s", p)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
	}
}

// socketOpen reports whether pid holds a socket (used to know a blocked CLI call got as far as
// the service).
func socketOpen(pid int) bool {
	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err == nil && strings.HasPrefix(link, "socket:") {
			return true
		}
	}
	return false
}
