package main

// The entrypoint against the real Synapse (Debian sid's package in a chroot tree): the binary is
// PID 1 of a new PID namespace chrooted into a fresh overlay of the runtime, as in the image.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
	"github.com/ovrclk/synapse-entrypoint/internal/testutil/synapsert"
)

// synapseTimeout bounds a Synapse start: 2–4 s quiet, 10–14 s under load (synapse.md).
const synapseTimeout = 90 * time.Second

// homeserverRun is the entrypoint running in a Synapse root.
type homeserverRun struct {
	*initRun
	root       string
	port       int // Synapse's client listener
	statusPort int
}

// startHomeserver runs the entrypoint as the image would. Extra env entries override the
// defaults (a free port, a free status port, /data, the embedded default for "localhost").
func startHomeserver(t *testing.T, root string, env []string, args ...string) *homeserverRun {
	t.Helper()
	if root == "" {
		root = synapsert.Root(t)
	}
	synapsert.Install(t, root, entrypointBin, "/usr/local/bin/entrypoint")
	h := &homeserverRun{root: root, port: testutil.FreePort(t), statusPort: testutil.FreePort(t)}
	base := []string{
		"SYNAPSE_SERVER_NAME=localhost",
		"SYNAPSE_HTTP_PORT=" + strconv.Itoa(h.port),
		"STATUS_ADDR=127.0.0.1:" + strconv.Itoa(h.statusPort),
		"SYNAPSE_PROBE_INTERVAL=200ms",
		"LOG_FORMAT=json",
	}
	h.initRun = startRun(t, runOpts{newNS: true, root: root, env: append(base, env...), path: "/usr/local/bin/entrypoint", args: args})
	return h
}

// status is GET on the status endpoint: the code and the one-line body.
func (h *homeserverRun) status(path string) (int, string) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", h.statusPort, path))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b := make([]byte, 4096)
	n, _ := resp.Body.Read(b)
	return resp.StatusCode, strings.TrimSpace(string(b[:n]))
}

func (h *homeserverRun) waitReady() {
	h.t.Helper()
	testutil.Eventually(h.t, synapseTimeout, "/readyz 200", func() bool {
		if h.Exited() {
			h.t.Fatalf("entrypoint exited before Synapse was ready")
		}
		code, _ := h.status("/readyz")
		return code == 200
	})
}

// synapse is the Synapse process (python3) in the namespace.
func (h *homeserverRun) synapse() (proc, bool) {
	for _, p := range h.nsProcs() {
		if strings.HasPrefix(p.comm, "python3") {
			return p, true
		}
	}
	return proc{}, false
}

// file is a path inside the root.
func (h *homeserverRun) path(p string) string { return filepath.Join(h.root, p) }

func sharedSecret(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Secret string `yaml:"registration_shared_secret"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil || cfg.Secret == "" {
		t.Fatalf("no registration_shared_secret in %s: %v", path, err)
	}
	return cfg.Secret
}

func procStatusField(pid int, field string) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			return strings.TrimSpace(strings.TrimPrefix(l, field+":"))
		}
	}
	return ""
}

// The embedded default: nothing but a server name gives a working homeserver; Synapse runs as
// 991 without the entrypoint's secrets; a user registers and logs in; SIGHUP after READY reloads
// the log config; SIGTERM ends everything with 0.
func TestSynapseEmbeddedDefaultServesMatrix(t *testing.T) {
	const paper = "ride horse deep purple tuesday zebra"
	h := startHomeserver(t, "", []string{
		"KEYBASE_PAPERKEY=" + paper, // without KEYBASE_USERNAME: Keybase stays off
		"CONFIG_REPO_PASSWORD=hunter2-secret",
	})
	// Phase 1: ready, through NOTIFY_SOCKET or /health, as the status endpoint says.
	h.waitReady()
	py, ok := h.synapse()
	if !ok {
		t.Fatal("no Synapse process")
	}
	// Phase 2: privileges and environment.
	if uid := procStatusField(py.pid, "Uid"); !strings.HasPrefix(uid, "991\t") {
		t.Errorf("Synapse runs as uid %q, want 991", uid)
	}
	environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", py.pid))
	for _, secret := range []string{paper, "hunter2-secret", "KEYBASE_PAPERKEY", "_ENTRYPOINT_ROLE"} {
		if strings.Contains(string(environ), secret) {
			t.Errorf("Synapse's environment contains %q", secret)
		}
	}
	if !strings.Contains(string(environ), "NOTIFY_SOCKET=") {
		t.Error("Synapse has no NOTIFY_SOCKET")
	}
	// Phase 3: files written — the generated config, the rendered one (0600, Synapse's).
	if fi, err := os.Stat(h.path("/run/synapse/homeserver.yaml")); err != nil || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != 991 {
		t.Errorf("rendered config: %v %v", fi, err)
	}
	// Phase 4: Matrix works.
	mc := newMatrixClient(t, h.port)
	if code := mc.versions(); code != 200 {
		t.Fatalf("/_matrix/client/versions: %d", code)
	}
	mc.register(sharedSecret(t, h.path("/data/homeserver.yaml")), "alice", "correct horse battery")
	mc.login("alice", "correct horse battery")
	// Phase 5: SIGHUP reloads the log config: switch it to DEBUG and look for debug lines.
	logConfigs, _ := filepath.Glob(h.path("/data/*.log.config"))
	if len(logConfigs) != 1 {
		t.Fatalf("log configs: %v", logConfigs)
	}
	lc, _ := os.ReadFile(logConfigs[0])
	debug := regexp.MustCompile(`(?m)^(\s+level:\s*)INFO`).ReplaceAll(lc, []byte("${1}DEBUG"))
	if string(debug) == string(lc) {
		t.Fatalf("cannot switch %s to DEBUG:\n%s", logConfigs[0], lc)
	}
	os.WriteFile(logConfigs[0], debug, 0o644)
	h.signal(syscall.SIGHUP)
	testutil.Eventually(t, 30*time.Second, "DEBUG lines after SIGHUP", func() bool {
		mc.versions()
		return strings.Contains(h.stdout.String()+h.stderr.String(), " - DEBUG - ")
	})
	if p, ok := h.synapse(); !ok || p.pid != py.pid {
		t.Fatal("Synapse was restarted by SIGHUP instead of reloading")
	}
	// Phase 6: SIGTERM → 0 within the budget, nothing left.
	h.signal(syscall.SIGTERM)
	if code := h.exitCode(30 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if left := h.nsProcs(); len(left) != 0 {
		t.Fatalf("processes left: %v", left)
	}
	if logs := h.stdout.String() + h.stderr.String(); strings.Contains(logs, paper) || strings.Contains(logs, "hunter2-secret") {
		t.Fatal("a secret appeared in the output")
	}
}

// kill -9 of Synapse: restarted with back-off, ready again, the restart counted; then SIGINT.
func TestSynapseKilledIsRestarted(t *testing.T) {
	h := startHomeserver(t, "", nil)
	h.waitReady()
	py, _ := h.synapse()
	syscall.Kill(py.pid, syscall.SIGKILL)
	testutil.Eventually(t, synapseTimeout, "a new Synapse, ready", func() bool {
		p, ok := h.synapse()
		code, _ := h.status("/readyz")
		return ok && p.pid != py.pid && code == 200
	})
	metrics := h.metrics()
	if !regexp.MustCompile(`entrypoint_synapse_restarts_total\{reason="crash"\} 1`).MatchString(metrics) {
		t.Fatalf("restart not counted:\n%s", metrics)
	}
	// Ctrl-C (SIGINT) stops Synapse as cleanly as SIGTERM but ends like an interrupted program.
	h.signal(syscall.SIGINT)
	if code := h.exitCode(30 * time.Second); code != 130 {
		t.Fatalf("exit %d after SIGINT, want 130", code)
	}
}

func (h *homeserverRun) metrics() string {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", h.statusPort))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 1<<16)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// An invalid config: Synapse never starts, exit 78, every finding printed with file and line.
func TestSynapseInvalidConfigIsRefused(t *testing.T) {
	root := synapsert.Root(t)
	os.MkdirAll(filepath.Join(root, "data"), 0o755)
	os.WriteFile(filepath.Join(root, "data/homeserver.yaml"), []byte(`server_name: "example.org"
report_stats: false
enable_registration: true
log_file: /data/homeserver.log
listeners:
  - port: 8008
    type: http
    resources: [{names: [client, webclient]}]
database: {name: sqlite3, args: {database: /data/homeserver.db}}
`), 0o644)
	h := startHomeserver(t, root, nil)
	if code := h.exitCode(60 * time.Second); code != 78 {
		t.Fatalf("exit %d, want 78", code)
	}
	out := h.stderr.String()
	for _, rule := range []string{"registration", "log_file", "webclient"} {
		if !regexp.MustCompile(`/data/homeserver.yaml:\d+:\d+: error [^\n]*` + rule).MatchString(out) {
			t.Errorf("no error finding about %s with file:line:col in:\n%s", rule, out)
		}
	}
	if strings.Contains(out, "synapse started") {
		t.Fatal("Synapse was started on an invalid config")
	}
	if _, err := os.Stat(filepath.Join(root, "data/homeserver.db")); err == nil {
		t.Fatal("Synapse wrote its database")
	}
}

// A stop requested while Synapse is starting waits for READY, so no migration is cut in half;
// Synapse then stops cleanly and the entrypoint exits 0.
func TestSynapseStopDuringStartupWaitsForReady(t *testing.T) {
	h := startHomeserver(t, "", []string{"SYNAPSE_STOP_TIMEOUT=60s"})
	testutil.Eventually(t, synapseTimeout, "Synapse process", func() bool { _, ok := h.synapse(); return ok })
	h.signal(syscall.SIGTERM)
	if code := h.exitCode(90 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0 (a clean stop after READY)", code)
	}
	logs := h.stderr.String()
	wait, ready := strings.Index(logs, "waiting for it to be ready first"), strings.Index(logs, "synapse ready")
	if wait < 0 || ready < 0 || ready < wait {
		t.Fatalf("the stop did not wait for READY:\n%s", logs)
	}
}

// The tutorial's `--generate-config` invocation is passed through: Synapse writes the files and
// exits.
func TestSynapseGenerateConfigPassesThrough(t *testing.T) {
	h := startHomeserver(t, "", nil, "/run.sh", "--server-name", "matrix.example.org", "--config-path", "/data/homeserver.yaml",
		"--generate-config", "--report-stats=yes")
	if code := h.exitCode(90 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, f := range []string{"/data/homeserver.yaml", "/data/matrix.example.org.signing.key", "/data/matrix.example.org.log.config"} {
		if _, err := os.Stat(h.path(f)); err != nil {
			t.Errorf("%s not generated: %v", f, err)
		}
	}
}
