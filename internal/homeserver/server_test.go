package homeserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ovrclk/synapse-entrypoint/internal/child"
	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

var fakeBin string

func TestMain(m *testing.M) {
	dir, _ := os.MkdirTemp("", "homeserver-test-")
	fakeBin = filepath.Join(dir, "fakesynapse")
	if out, err := exec.Command("go", "build", "-o", fakeBin, "../../test/fakesynapse").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fakesynapse: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// phases records the phases a Server reports.
type phases struct {
	mu  sync.Mutex
	got []Phase
	rs  []string
}

func (p *phases) add(ph Phase, _ string, _ time.Time) {
	p.mu.Lock()
	p.got = append(p.got, ph)
	p.mu.Unlock()
}
func (p *phases) restart(r string) { p.mu.Lock(); p.rs = append(p.rs, r); p.mu.Unlock() }
func (p *phases) count(ph Phase) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, g := range p.got {
		if g == ph {
			n++
		}
	}
	return n
}
func (p *phases) restarts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.rs...)
}

type fixture struct {
	t   *testing.T
	dir string
	log string
	srv *Server
	ph  *phases
	st  chan child.Status
}

func start(t *testing.T, mutate func(*Config), args ...string) *fixture {
	t.Helper()
	dir := t.TempDir()
	port := testutil.FreePort(t)
	f := &fixture{t: t, dir: dir, log: filepath.Join(dir, "events"), ph: &phases{}, st: make(chan child.Status, 1)}
	cfg := Config{
		Argv:          append([]string{fakeBin, "-port", fmt.Sprint(port), "-log", f.log}, args...),
		Stdout:        os.Stdout,
		Stderr:        os.Stderr,
		NotifyDir:     filepath.Join(dir, "run"),
		HealthURL:     fmt.Sprintf("http://127.0.0.1:%d/health", port),
		ProbeInterval: 20 * time.Millisecond,
		ProbeTimeout:  time.Second,
		ProbeFailures: 3,
		StartTimeout:  time.Minute,
		StopTimeout:   10 * time.Second,
		Policy:        child.Policy{Restart: child.RestartOnFailure, Backoff: child.Backoff{Initial: time.Millisecond, Max: time.Millisecond}},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	f.srv = New(cfg, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), Hooks{Phase: f.ph.add, Restart: f.ph.restart})
	go func() { st, _ := f.srv.Run(context.Background()); f.st <- st }()
	t.Cleanup(func() {
		f.srv.Stop()
		select {
		case <-f.st:
		case <-time.After(20 * time.Second):
			t.Error("server did not stop")
		}
	})
	return f
}

func (f *fixture) events() string { b, _ := os.ReadFile(f.log); return string(b) }

func (f *fixture) waitEvent(s string, n int) {
	f.t.Helper()
	testutil.Eventually(f.t, 20*time.Second, fmt.Sprintf("%d× %q in the event log", n, s), func() bool {
		return strings.Count(f.events(), s) >= n
	})
}

func (f *fixture) status() child.Status {
	f.t.Helper()
	select {
	case st := <-f.st:
		f.st <- st
		return st
	case <-time.After(30 * time.Second):
		f.t.Fatal("Run did not return")
	}
	return child.Status{}
}

func TestReadyThroughNotifySocket(t *testing.T) {
	f := start(t, func(c *Config) { c.HealthURL = "" }) // no probe: READY=1 alone must do it
	testutil.Eventually(t, 20*time.Second, "ready", f.srv.Ready)
	if f.ph.count(PhaseReady) != 1 {
		t.Fatalf("phases %v", f.ph.got)
	}
}

func TestReadyThroughHealthWithoutNotify(t *testing.T) {
	// A Synapse that does not speak the notify protocol: the socket is elsewhere.
	f := start(t, nil, "-no-notify")
	testutil.Eventually(t, 20*time.Second, "ready", f.srv.Ready)
}

func TestStopDuringStartupWaitsForReady(t *testing.T) {
	f := start(t, nil, "-startup", "1s")
	f.waitEvent("start", 1)
	f.srv.Stop()
	st := f.status()
	ev := f.events()
	if !st.Success() || !strings.Contains(ev, "ready") || !strings.Contains(ev, "stop terminated") {
		t.Fatalf("status %v; events:\n%s\nwant READY first, then a clean SIGTERM exit", st, ev)
	}
}

func TestStopDuringStartupSignalsWhenBudgetRunsOut(t *testing.T) {
	f := start(t, func(c *Config) { c.StopTimeout = 300 * time.Millisecond }, "-startup", "30s")
	f.waitEvent("start", 1)
	begin := time.Now()
	f.srv.Stop()
	st := f.status()
	if st.Signal != syscall.SIGTERM || strings.Contains(f.events(), "ready") {
		t.Fatalf("status %v; events:\n%s", st, f.events())
	}
	if time.Since(begin) > 10*time.Second {
		t.Fatalf("stop took %v with a 300ms budget", time.Since(begin))
	}
}

func TestSighupOnlyAfterReady(t *testing.T) {
	f := start(t, nil, "-startup", "500ms")
	f.waitEvent("start", 1)
	if err := f.srv.Reload(); err != ErrNotReady {
		t.Fatalf("Reload before READY: %v, want ErrNotReady", err)
	}
	f.srv.Signal(syscall.SIGHUP) // dropped, or it would kill the starting process
	testutil.Eventually(t, 20*time.Second, "ready", f.srv.Ready)
	if err := f.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	f.waitEvent("reload", 1)
	if n := strings.Count(f.events(), "start pid"); n != 1 {
		t.Fatalf("synapse started %d times: a SIGHUP before READY killed it\n%s", n, f.events())
	}
}

func TestCrashIsRestartedWithReason(t *testing.T) {
	f := start(t, nil, "-crash-after", "50ms")
	f.waitEvent("start pid", 3)
	if r := f.ph.restarts(); len(r) < 2 || r[0] != ReasonCrash {
		t.Fatalf("restart reasons %v", r)
	}
}

func TestFailedProbesRestartGracefully(t *testing.T) {
	unhealthy := filepath.Join(t.TempDir(), "unhealthy")
	f := start(t, nil, "-unhealthy", unhealthy)
	testutil.Eventually(t, 20*time.Second, "ready", f.srv.Ready)
	os.WriteFile(unhealthy, nil, 0o644)
	f.waitEvent("stop terminated", 1) // graceful: SIGTERM, not a kill
	os.Remove(unhealthy)
	f.waitEvent("start pid", 2)
	testutil.Eventually(t, 20*time.Second, "ready again", f.srv.Ready)
	if r := f.ph.restarts(); len(r) != 1 || r[0] != ReasonProbe {
		t.Fatalf("restart reasons %v, want [probe]", r)
	}
}

func TestStartTimeoutRestarts(t *testing.T) {
	f := start(t, func(c *Config) { c.StartTimeout, c.StopTimeout = 200*time.Millisecond, time.Second }, "-startup", "30s")
	f.waitEvent("start pid", 2)
	if r := f.ph.restarts(); len(r) == 0 || r[0] != ReasonStartTimeout {
		t.Fatalf("restart reasons %v", r)
	}
}

func TestNotifyFromAnotherProcessIsIgnored(t *testing.T) {
	f := start(t, func(c *Config) { c.HealthURL, c.StopTimeout = "", time.Second }, "-startup", "30s")
	f.waitEvent("start", 1)
	c, err := netDialUnixgram(filepath.Join(f.dir, "run", "notify.sock"))
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("READY=1"))
	c.Close()
	// The spoofed READY must not count; give it every chance to.
	if testutil.WaitFor(300*time.Millisecond, f.srv.Ready) {
		t.Fatal("a READY=1 from a foreign process made Synapse ready")
	}
}

func TestCleanExitEndsSupervision(t *testing.T) {
	f := start(t, nil)
	testutil.Eventually(t, 20*time.Second, "ready", f.srv.Ready)
	f.srv.sup.Signal(syscall.SIGTERM) // Synapse exits 0 on its own (e.g. an admin's kill)
	if st := f.status(); !st.Success() {
		t.Fatalf("got %v", st)
	}
	if n := strings.Count(f.events(), "start pid"); n != 1 {
		t.Fatalf("restarted after a clean exit: %d starts", n)
	}
}
