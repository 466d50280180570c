package synapsert_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
	"github.com/ovrclk/synapse-entrypoint/internal/testutil/synapsert"
)

// consoleLogConfig sends Synapse's log to stderr (the generated one writes to a file relative to the
// working directory, which chroot(1) sets to /), so a failing test can show it.
const consoleLogConfig = `version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  console:
    class: logging.StreamHandler
    formatter: precise
root:
  level: INFO
  handlers: [console]
disable_existing_loggers: false
`

// TestSynapseRunsInTree is the runtime's acceptance test: generate a config, start the real server
// on a free port, see /health answer, check the systemd notify protocol (start, SIGHUP, SIGTERM) and
// a clean exit 0.
func TestSynapseRunsInTree(t *testing.T) {
	tree := synapsert.Tree(t)
	t.Logf("Synapse %s in %s", synapsert.Version(tree), tree)

	hostDir, err := os.MkdirTemp(filepath.Join(tree, "tmp"), "synapsert-")
	if err != nil {
		t.Fatalf("make work dir in tree: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(hostDir) })
	inDir := "/tmp/" + filepath.Base(hostDir) // the same directory as seen inside the chroot
	config := inDir + "/homeserver.yaml"

	gen := chrootCmd(tree, "python3", "-m", "synapse.app.homeserver", "--generate-config",
		"-H", "localhost", "--report-stats", "no", "-c", config, "--data-directory", inDir)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("generate config: %v\n%s", err, out)
	}
	port := testutil.FreePort(t)
	editConfig(t, filepath.Join(hostDir, "homeserver.yaml"), port, inDir+"/console.log.yaml")
	writeFile(t, filepath.Join(hostDir, "console.log.yaml"), consoleLogConfig)

	notify := listenNotify(t, filepath.Join(hostDir, "notify.sock"))

	srv := synapsert.Start(t, tree, config, "NOTIFY_SOCKET="+inDir+"/notify.sock")

	healthURL := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	testutil.Eventually(t, 60*time.Second, "GET "+healthURL+" → 200", func() bool {
		srv.FailIfExited(t)
		return healthy(healthURL)
	})
	testutil.Eventually(t, 10*time.Second, "READY=1 on NOTIFY_SOCKET", func() bool {
		return notify.indexAfter(0, isReady) >= 0
	})
	t.Logf("notify at start: %q", notify.all())
	// chroot(1) execs Python, so the MAINPID Synapse reports is the pid we started.
	if want := fmt.Sprintf("MAINPID=%d", srv.Pid()); notify.indexAfter(0, func(d string) bool { return hasField(d, want) }) < 0 {
		t.Errorf("no %s in %q", want, notify.all())
	}

	mark := notify.len()
	srv.Signal(t, syscall.SIGHUP)
	testutil.Eventually(t, 30*time.Second, "RELOADING=1 then READY=1 after SIGHUP", func() bool {
		srv.FailIfExited(t)
		reloading := notify.indexAfter(mark, func(d string) bool { return hasField(d, "RELOADING=1") })
		return reloading >= 0 && notify.indexAfter(reloading+1, isReady) >= 0
	})
	t.Logf("notify after SIGHUP: %q", notify.all()[mark:])
	if !healthy(healthURL) {
		t.Errorf("GET %s after SIGHUP: not 200", healthURL)
	}

	mark = notify.len()
	srv.Signal(t, syscall.SIGTERM)
	code := srv.Wait(t, 60*time.Second)
	if code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0\nstderr:\n%s", code, srv.Output())
	}
	testutil.Eventually(t, 5*time.Second, "STOPPING=1 after SIGTERM", func() bool {
		return notify.indexAfter(mark, func(d string) bool { return hasField(d, "STOPPING=1") }) >= 0
	})
	t.Logf("notify after SIGTERM: %q", notify.all()[mark:])
}

// chrootCmd runs name inside tree with a minimal environment: the host's (pyenv paths,
// PYTHONDONTWRITEBYTECODE) must not leak into the tree's Python.
func chrootCmd(tree, name string, args ...string) *exec.Cmd {
	cmd := exec.Command("chroot", append([]string{tree, name}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/root"}
	return cmd
}

// editConfig moves the generated listener to port on IPv4 loopback (never 8008: other work shares
// the machine) and points log_config at a console logger.
func editConfig(t *testing.T, path string, port int, logConfig string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read generated config: %v", err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("parse generated config %s: %v", path, err)
	}
	listeners, ok := cfg["listeners"].([]any)
	if !ok || len(listeners) == 0 {
		t.Fatalf("generated config %s has no listeners", path)
	}
	l, ok := listeners[0].(map[string]any)
	if !ok {
		t.Fatalf("generated config %s: listener is %T", path, listeners[0])
	}
	l["port"] = port
	l["bind_addresses"] = []string{"127.0.0.1"}
	cfg["log_config"] = logConfig
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatalf("encode config: %v", err)
	}
	writeFile(t, path, string(out))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

func healthy(url string) bool {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// notifyLog collects every datagram that arrives on a NOTIFY_SOCKET, in order.
type notifyLog struct {
	mu        sync.Mutex
	datagrams []string
}

// listenNotify binds a unix datagram socket at path (inside the tree, so the chrooted Synapse can
// reach it) and records what arrives until the test ends.
func listenNotify(t *testing.T, path string) *notifyLog {
	t.Helper()
	if len(path) >= 108 {
		t.Fatalf("notify socket path %q is %d bytes, over the 107 a unix socket allows; use a shorter SYNAPSE_RUNTIME_DIR", path, len(path))
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen on notify socket %s: %v", path, err)
	}
	n := &notifyLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.datagrams = append(n.datagrams, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return n
}

func (n *notifyLog) len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.datagrams)
}

func (n *notifyLog) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.datagrams)
}

// indexAfter returns the index of the first datagram at or after from that matches, or -1.
func (n *notifyLog) indexAfter(from int, match func(string) bool) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := from; i < len(n.datagrams); i++ {
		if match(n.datagrams[i]) {
			return i
		}
	}
	return -1
}

// hasField reports whether a notify datagram (newline-separated KEY=VALUE) contains field.
func hasField(datagram, field string) bool {
	return slices.Contains(strings.Split(datagram, "\n"), field)
}

func isReady(d string) bool { return hasField(d, "READY=1") }
