// Package image_test builds the ovrclk/synapse image (Dockerfile, scripts/image.sh) on a base
// imported from the cached Synapse runtime tree, in a private dockerd, and runs it as Docker and
// Akash would: health, a real Matrix request, `docker stop`, Ctrl-C under `docker run -it`, and a
// keybase:// config repository served by the fake Keybase CLI.
package image_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

const (
	imageTag = "ovrclk/synapse:test"
	// healthyTimeout bounds a container's way to "healthy": Synapse starts in 2–4 s when quiet,
	// 10–14 s under load, and three of them may start at once here.
	healthyTimeout = 120 * time.Second
	// stopBudget is what `docker stop -t` and Akash (Kubernetes) give before SIGKILL.
	stopBudget = 30 * time.Second
)

// env is what every subtest shares: one engine and one image, built once.
type env struct {
	d    *dockerd
	root string // module root
	bin  string // the static entrypoint that went into the image, for `init` on the host
}

// TestImage builds the image once and runs the container scenarios against it in parallel.
func TestImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED (needs root): a private dockerd and container runs; CI runs as root")
	}
	root := moduleRoot(t)
	d, err := startDockerd(t)
	if err != nil {
		t.Skipf("SKIPPED: dockerd cannot start here: %v", err)
	}
	// Registered first, so it runs last: after every subtest's own cleanup.
	t.Cleanup(func() {
		for _, err := range d.stop() {
			t.Errorf("stop dockerd: %v", err)
		}
	})
	e := &env{d: d, root: root, bin: buildEntrypoint(t, root)}
	e.buildImage(t)

	t.Run("group", func(t *testing.T) {
		t.Run("healthy-versions-stop", e.testHealthyStop)
		t.Run("ctrl-c-under-pty", e.testCtrlC)
		t.Run("keybase-config-repo", e.testKeybase)
	})
}

// moduleRoot is the directory holding go.mod (tests run in test/image).
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// buildEntrypoint builds the static binary as `make build` does, into the test's own directory
// (bin/entrypoint may be rewritten by a concurrent `make build`).
func buildEntrypoint(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "entrypoint")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=image-test", "-o", bin, "./cmd/entrypoint")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/entrypoint: %v\n%s", err, out)
	}
	return bin
}

// buildImage runs scripts/image.sh with the fake Keybase and reports build time and size.
func (e *env) buildImage(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(e.root, "scripts/image.sh"),
		"--fake-keybase", "--tag", imageTag, "--entrypoint-bin", e.bin)
	cmd.Dir = e.root
	cmd.Env = e.d.client
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/image.sh: %v\n%s", err, out)
	}
	took := time.Since(start)
	size, _ := strconv.ParseInt(e.d.inspect(imageTag, "{{.Size}}"), 10, 64)
	t.Logf("image %s built in %v (scripts/image.sh, base import included when it was missing), size %.0f MB",
		imageTag, took.Round(100*time.Millisecond), float64(size)/1e6)
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "image: ") {
			t.Log(line)
		}
	}
	if got := e.d.inspect(imageTag, "{{json .Config.Entrypoint}}"); got != `["/usr/local/bin/entrypoint"]` {
		t.Errorf("Entrypoint = %s, want the exec form [\"/usr/local/bin/entrypoint\"]", got)
	}
	if got := e.d.inspect(imageTag, "{{json .Config.Healthcheck.Test}}"); got != `["CMD","/usr/local/bin/entrypoint","healthcheck"]` {
		t.Errorf("Healthcheck.Test = %s, want the exec form of `entrypoint healthcheck`", got)
	}
	if got := e.d.inspect(imageTag, "{{.Config.StopSignal}}"); got != "SIGTERM" {
		t.Errorf("StopSignal = %q, want SIGTERM", got)
	}
	if got := e.d.inspect(imageTag, "{{json .Config.Volumes}}"); !strings.Contains(got, `"/data"`) {
		t.Errorf("Volumes = %s, want /data", got)
	}
	if got := e.d.inspect(imageTag, "{{json .Config.ExposedPorts}}"); !strings.Contains(got, `"8008/tcp"`) {
		t.Errorf("ExposedPorts = %s, want 8008/tcp", got)
	}
}

// container is one `docker run -d` of the image.
type container struct {
	e                  *env
	id                 string
	httpPort, statPort int
}

// run starts the image detached with a fresh pair of loopback ports and the given extra
// environment (NAME=VALUE, or NAME alone to pass the docker client's own value).
func (e *env) run(t *testing.T, clientEnv []string, args ...string) *container {
	t.Helper()
	c := &container{e: e, httpPort: testutil.FreePort(t), statPort: testutil.FreePort(t)}
	runArgs := append([]string{"run", "-d", "--network", "host",
		"-e", "SYNAPSE_HTTP_PORT=" + strconv.Itoa(c.httpPort),
		"-e", "STATUS_ADDR=127.0.0.1:" + strconv.Itoa(c.statPort),
		"--health-interval=1s",
	}, args...)
	runArgs = append(runArgs, imageTag)
	cmd := exec.Command("docker", runArgs...)
	cmd.Env = append(append([]string{}, e.d.client...), clientEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	c.id = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := e.d.docker(context.Background(), "logs", "--tail", "80", c.id)
			t.Logf("container %.12s, last log lines:\n%s", c.id, logs)
		}
		_, _ = e.d.docker(context.Background(), "rm", "-f", "-v", c.id)
	})
	return c
}

// waitHealthy waits for Docker's health status "healthy" (the image's HEALTHCHECK, i.e.
// `entrypoint healthcheck`), failing early when the container stops.
func (c *container) waitHealthy(t *testing.T) {
	t.Helper()
	waitHealthy(t, c.e.d, c.id)
}

func waitHealthy(t *testing.T, d *dockerd, id string) {
	t.Helper()
	var status, running string
	start := time.Now()
	ok := testutil.WaitFor(healthyTimeout, func() bool {
		status = d.inspect(id, "{{.State.Health.Status}}")
		running = d.inspect(id, "{{.State.Running}}")
		return status == "healthy" || running == "false"
	})
	switch {
	case !ok:
		t.Fatalf("container %.12s not healthy after %v (health %q)", id, healthyTimeout, status)
	case status != "healthy":
		t.Fatalf("container %.12s stopped before it was healthy: exit code %s, health %q", id, d.inspect(id, "{{.State.ExitCode}}"), status)
	}
	t.Logf("container %.12s healthy after %v", id, time.Since(start).Round(100*time.Millisecond))
}

// versions asserts a real Matrix client request answers 200.
func (c *container) versions(t *testing.T) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/_matrix/client/versions", c.httpPort)
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"versions"`) {
		t.Fatalf("GET %s = %d %.200s, want 200 with a versions list", url, resp.StatusCode, body)
	}
}

// stop runs `docker stop -t 30` and asserts a clean exit inside the budget (no SIGKILL).
func (c *container) stop(t *testing.T) {
	t.Helper()
	start := time.Now()
	c.e.d.must(t, "stop", "-t", strconv.Itoa(int(stopBudget/time.Second)), c.id)
	took := time.Since(start)
	t.Logf("docker stop took %v", took.Round(10*time.Millisecond))
	if code := c.e.d.inspect(c.id, "{{.State.ExitCode}}"); code != "0" {
		t.Errorf("exit code after docker stop = %s, want 0", code)
	}
	if oom := c.e.d.inspect(c.id, "{{.State.OOMKilled}}"); oom != "false" {
		t.Errorf("OOMKilled = %s", oom)
	}
	// Docker SIGKILLs when the budget is spent: a stop that needed all of it was not clean.
	if took >= stopBudget-time.Second {
		t.Errorf("docker stop took %v: the %v budget ran out, Docker had to SIGKILL", took, stopBudget)
	}
}

// testHealthyStop: the embedded default config (SYNAPSE_SERVER_NAME only) → healthy → a Matrix
// request → docker stop → exit 0 within the budget.
func (e *env) testHealthyStop(t *testing.T) {
	t.Parallel()
	c := e.run(t, nil, "-e", "SYNAPSE_SERVER_NAME=localhost")
	c.waitHealthy(t)
	c.versions(t)
	c.stop(t)
}

// testCtrlC: `docker run -it` under a real pty, as a person at a terminal: ready, then Ctrl-C →
// the container and the client exit 130 (128 + SIGINT).
func (e *env) testCtrlC(t *testing.T) {
	t.Parallel()
	httpPort, statPort := testutil.FreePort(t), testutil.FreePort(t)
	name := fmt.Sprintf("ctrlc-%d", httpPort)
	cmd := exec.Command("docker", "run", "-it", "--name", name, "--network", "host",
		"-e", "SYNAPSE_SERVER_NAME=localhost",
		"-e", "SYNAPSE_HTTP_PORT="+strconv.Itoa(httpPort),
		"-e", "STATUS_ADDR=127.0.0.1:"+strconv.Itoa(statPort),
		"--health-interval=1s", imageTag)
	cmd.Env = append(append([]string{}, e.d.client...), "TERM=xterm")
	master, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
	if err != nil {
		t.Fatalf("docker run -it under a pty: %v", err)
	}
	var out testutil.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&out, master); close(copied) }()
	exited := make(chan struct{})
	var werr error
	go func() { werr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		master.Close()
		select { // the copy ends with EIO once the client is gone; do not hang on it regardless
		case <-copied:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("terminal output (last 3000 bytes):\n%s", lastBytes(out.String(), 3000))
		}
		_, _ = e.d.docker(context.Background(), "rm", "-f", "-v", name)
	})

	// The container exists once the client created it; then the same readiness as detached runs.
	testutil.Eventually(t, 60*time.Second, "docker run -it to create the container", func() bool {
		return e.d.inspect(name, "{{.Id}}") != ""
	})
	waitHealthy(t, e.d, name)
	if !testutil.WaitFor(10*time.Second, func() bool { return strings.Contains(out.String(), "Synapse now listening") }) {
		t.Errorf("the terminal did not show Synapse's ready line although the container is healthy")
	}

	if _, err := master.Write([]byte{0x03}); err != nil { // Ctrl-C, as the terminal sends it
		t.Fatalf("write Ctrl-C to the pty: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(stopBudget + 30*time.Second):
		t.Fatalf("docker run -it still running %v after Ctrl-C", stopBudget+30*time.Second)
	}
	clientCode := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		clientCode = ee.ExitCode()
	} else if werr != nil {
		t.Fatalf("docker run -it: %v", werr)
	}
	if clientCode != 130 {
		t.Errorf("docker run -it exit status after Ctrl-C = %d, want 130", clientCode)
	}
	if code := e.d.inspect(name, "{{.State.ExitCode}}"); code != "130" {
		t.Errorf("container exit code after Ctrl-C = %s, want 130", code)
	}
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// testKeybase: Keybase login with a paper key (fake CLI, daemons as the image's keybase user) and a
// keybase://team/acme/matrix config repository from a fixture KBFS tree → healthy → docker stop →
// exit 0; the paper key never reaches the container log or any keybase argv.
func (e *env) testKeybase(t *testing.T) {
	t.Parallel()
	const paperKey = "stove hungry rhythm vacant grain sauce pilot toast ribbon elbow cactus vivid"
	kbfs := e.kbfsFixture(t)
	c := e.run(t, []string{"KEYBASE_PAPERKEY=" + paperKey, "FAKEKEYBASE_PAPERKEY=" + paperKey},
		"-v", kbfs+":/kbfs:ro",
		"-e", "KEYBASE_USERNAME=alice",
		"-e", "KEYBASE_PAPERKEY", // the value from the client's environment: not in any argv
		"-e", "FAKEKEYBASE_PAPERKEY", // the fake accepts only this key
		"-e", "FAKEKEYBASE_USERS=alice",
		"-e", "FAKEKEYBASE_KBFS_ROOT=/kbfs",
		"-e", "FAKEKEYBASE_LOG=/tmp/fakekeybase.jsonl",
		"-e", "CONFIG_REPO=keybase://team/acme/matrix",
	)
	c.waitHealthy(t)
	c.versions(t)
	// The config came from the repository (the clone's state names it), not an embedded default.
	if got := c.e.d.must(t, "exec", c.id, "cat", "/data/.configrepo/state.json"); !strings.Contains(got, "keybase://team/acme/matrix") {
		t.Errorf("/data is not a clone of keybase://team/acme/matrix: state %s", got)
	}
	c.stop(t)

	logs, err := e.d.docker(context.Background(), "logs", c.id)
	if err != nil {
		t.Fatalf("docker logs: %v", err)
	}
	for _, want := range []string{"keybase logged in"} {
		if !strings.Contains(logs, want) {
			t.Errorf("container log lacks %q", want)
		}
	}
	for _, leak := range []string{paperKey, "stove hungry rhythm", "vivid"} {
		if strings.Contains(logs, leak) {
			t.Errorf("the paper key (%q) appears in docker logs", leak)
		}
	}

	// The fake's invocation log: every keybase command ran as the unprivileged keybase user, the
	// key was never in argv, and only the oneshot login had it in its environment.
	log := filepath.Join(t.TempDir(), "calls.jsonl")
	e.d.must(t, "cp", c.id+":/tmp/fakekeybase.jsonl", log)
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "stove") {
		t.Errorf("the paper key appears in the fake keybase's invocation log")
	}
	uid := e.d.must(t, "run", "--rm", "--network", "none", "--entrypoint", "sh", imageTag, "-c", "id -u keybase")
	var calls, oneshots int
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		calls++
		if strings.Contains(line, `"paperkey_in_argv":true`) {
			t.Errorf("paper key in argv: %s", line)
		}
		if !strings.Contains(line, `"uid":`+uid+`,`) && !strings.Contains(line, `"uid":`+uid+`}`) {
			t.Errorf("keybase ran as another uid than keybase's %s: %s", uid, line)
		}
		isOneshot := strings.Contains(line, `"oneshot"`)
		if isOneshot {
			oneshots++
		}
		if strings.Contains(line, `"paperkey_in_env":true`) && !isOneshot {
			t.Errorf("paper key in the environment of a command other than oneshot: %s", line)
		}
	}
	if oneshots == 0 {
		t.Errorf("no oneshot login among %d keybase invocations", calls)
	}
	t.Logf("%d keybase invocations, all as uid %s", calls, uid)
}

// kbfsFixture is a KBFS tree holding keybase://team/acme/matrix: a bare git repository with a
// fresh `entrypoint init` config whose listener port is ${SYNAPSE_HTTP_PORT} (so a free port works;
// the renderer turns a number-valued ${VAR} into an int) and bound to loopback.
func (e *env) kbfsFixture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	work := filepath.Join(root, "work")
	kbfs := filepath.Join(root, "kbfs")
	bare := filepath.Join(kbfs, "team/acme/.kbfs_git/matrix")
	if out, err := exec.Command(e.bin, "init", "--server-name", "localhost", work).CombinedOutput(); err != nil {
		t.Fatalf("entrypoint init: %v\n%s", err, out)
	}
	hs := filepath.Join(work, "homeserver.yaml")
	b, err := os.ReadFile(hs)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "port: 8008", "port: ${SYNAPSE_HTTP_PORT}", 1)
	s = strings.Replace(s, "bind_addresses: ['0.0.0.0']", "bind_addresses: ['127.0.0.1']", 1)
	if s == string(b) || !strings.Contains(s, "${SYNAPSE_HTTP_PORT}") || !strings.Contains(s, "'127.0.0.1'") {
		t.Fatalf("entrypoint init's homeserver.yaml changed shape; cannot template the port:\n%s", b)
	}
	if err := os.WriteFile(hs, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	git := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.org",
			"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+root)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git(work, "init", "-q", "-b", "main")
	git(work, "add", "-A")
	git(work, "commit", "-qm", "synapse config")
	if err := os.MkdirAll(filepath.Dir(bare), 0o755); err != nil {
		t.Fatal(err)
	}
	git(root, "clone", "-q", "--bare", work, bare)
	// The fake's `fs cp` runs as the container's keybase user: the tree must be world-readable
	// (t.TempDir is 0700, git's files follow the umask).
	if err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	}); err != nil {
		t.Fatal(err)
	}
	return kbfs
}
