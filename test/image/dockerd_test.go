package image_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

// dockerd is a private Docker engine for one test run: its own data root, exec root, pid file and
// unix socket under one directory, no bridge, no iptables, no IP forwarding. Containers use
// --network host and talk over loopback only; nothing here ever routes to another address.
type dockerd struct {
	dir    string // everything of this engine lives under it
	sock   string
	cmd    *exec.Cmd
	done   chan struct{}
	logf   string
	client []string // the environment docker CLI calls run with
}

// dockerdStartTimeout bounds the wait for the API socket (dockerd starts in under 8 s here).
const dockerdStartTimeout = 60 * time.Second

// startDockerd starts the engine, preferring overlay2 and falling back to vfs where overlay mounts
// are refused (nested containers). The error says why it could not start at all, for the skip.
func startDockerd(t *testing.T) (*dockerd, error) {
	t.Helper()
	path, err := exec.LookPath("dockerd")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/dockerd"); statErr != nil {
			return nil, fmt.Errorf("no dockerd on PATH (Debian's docker.io; make test-deps installs it): %w", err)
		}
		path = "/usr/sbin/dockerd"
	}
	if _, err := exec.LookPath("docker"); err != nil {
		return nil, fmt.Errorf("no docker client on PATH: %w", err)
	}
	var errs []error
	for _, driver := range []string{"overlay2", "vfs"} {
		d, err := startDockerdWith(path, driver)
		if err == nil {
			t.Logf("private dockerd (storage %s) at %s, pid %d", driver, d.sock, d.cmd.Process.Pid)
			return d, nil
		}
		errs = append(errs, fmt.Errorf("storage driver %s: %w", driver, err))
	}
	return nil, errors.Join(errs...)
}

func startDockerdWith(path, driver string) (*dockerd, error) {
	// A short path: the unix socket's name must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "imgtest-")
	if err != nil {
		return nil, err
	}
	d := &dockerd{dir: dir, sock: filepath.Join(dir, "docker.sock"), logf: filepath.Join(dir, "dockerd.log"), done: make(chan struct{})}
	for _, sub := range []string{"data", "exec", "client"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	// An empty daemon.json: nothing of the host's /etc/docker configuration applies.
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(d.logf)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	ns := filepath.Base(dir)
	d.cmd = exec.Command(path,
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"--host", "unix://"+d.sock,
		"--storage-driver", driver,
		// Private: no bridge or NAT, no iptables rules, no forwarding; containers use --network host.
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
		"--userland-proxy=false",
		// Its own containerd namespaces, apart from any other engine on the machine.
		"--containerd-namespace", ns, "--containerd-plugins-namespace", ns+"-plugins",
		"--log-level", "warn",
	)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	// Its own process group, and a SIGTERM if this test binary dies without stopping it.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	d.client = append(os.Environ(),
		"DOCKER_HOST=unix://"+d.sock,
		"DOCKER_CONFIG="+filepath.Join(dir, "client"), // no credential helpers, no contexts
		"DOCKER_BUILDKIT=0",
		"DOCKER_CLI_HINTS=false",
	)
	if err := d.cmd.Start(); err != nil {
		d.removeDir()
		return nil, err
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	if err := d.waitAPI(); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// waitAPI waits until /_ping answers on the socket, or dockerd exits.
func (d *dockerd) waitAPI() error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
		},
	}}
	exited := false
	ok := testutil.WaitFor(dockerdStartTimeout, func() bool {
		select {
		case <-d.done:
			exited = true
			return true
		default:
		}
		resp, err := hc.Get("http://docker/_ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	switch {
	case exited:
		return fmt.Errorf("dockerd exited at start: %s", d.tail())
	case !ok:
		return fmt.Errorf("dockerd API not up after %v: %s", dockerdStartTimeout, d.tail())
	}
	return nil
}

// tail is the end of dockerd's log, for error messages.
func (d *dockerd) tail() string {
	b, _ := os.ReadFile(d.logf)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// stop removes every container (their shims would outlive the engine), stops dockerd by its pid
// (SIGTERM, then SIGKILL after 30 s), unmounts whatever is left under its directory and removes it.
func (d *dockerd) stop() []error {
	var errs []error
	if ids, err := d.docker(context.Background(), "ps", "-aq"); err == nil && strings.TrimSpace(ids) != "" {
		args := append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)
		if out, err := d.docker(context.Background(), args...); err != nil {
			errs = append(errs, fmt.Errorf("remove containers: %v: %s", err, out))
		}
	}
	if d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			errs = append(errs, fmt.Errorf("dockerd (pid %d) ignored SIGTERM for 30s: killed", d.cmd.Process.Pid))
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
	errs = append(errs, d.removeDir()...)
	return errs
}

// removeDir unmounts every mount under the directory (deepest first) and removes it.
func (d *dockerd) removeDir() []error {
	var errs []error
	mounts, err := mountsUnder(d.dir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	if err := os.RemoveAll(d.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", d.dir, err))
	}
	return errs
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// docker runs the docker CLI against this engine and returns its combined output.
func (d *dockerd) docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = d.client
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// must is docker for steps that cannot fail without failing the test.
func (d *dockerd) must(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := d.docker(ctx, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// inspect is one `docker inspect -f FORMAT` value ("" when the container is gone).
func (d *dockerd) inspect(id, format string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := d.docker(ctx, "inspect", "-f", format, id)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}
