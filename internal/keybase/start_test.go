package keybase

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func TestStartLogsInAndStopsInOrder(t *testing.T) {
	h := newHarness(t)
	k := h.mustStart()
	svc := k.service.sup.Current()
	kbfs := k.kbfs.sup.Current()
	if svc == nil || kbfs == nil {
		t.Fatal("daemons not running after Start")
	}
	out, err := k.cli.run(context.Background(), 10*time.Second, nil, "whoami", "-json")
	if err != nil || !strings.Contains(string(out), `"username": "alice"`) {
		t.Fatalf("whoami after Start: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if alive(svc.Pid()) || alive(kbfs.Pid()) {
		t.Fatal("a daemon survived Stop")
	}
	select {
	case <-k.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := k.Run(context.Background()); err != nil {
		t.Fatalf("Run after a clean Stop: %v", err)
	}

	calls := h.calls()
	// The second whoami is the test's own check above.
	got := commands(calls)
	want := []string{"service", "ctl wait", "kbfsfuse", "ctl wait --include-kbfs", "whoami", "oneshot", "whoami", "logout", "ctl stop"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("calls in spawn order:\n got %q\nwant %q", got, want)
	}
	for _, c := range calls {
		if c.Exit != 0 {
			t.Errorf("%s exited %d", c.command(), c.Exit)
		}
		if c.command() == "logout" && !contains(c.Args, "--force") {
			t.Errorf("logout without --force: %q", c.Args)
		}
	}
	assertGlobalFlags(t, calls)
	assertKeyOnlyInOneshot(t, calls)
	assertNoKeyInLogs(t, h)
	if testing.Verbose() {
		t.Logf("log:\n%s", h.logs.String())
	}
}

// assertGlobalFlags checks that every CLI call (kbchat's included) starts with --no-auto-fork and
// names the home.
func assertGlobalFlags(t *testing.T, calls []call) {
	t.Helper()
	for _, c := range calls {
		switch c.command() {
		case "service", "kbfsfuse":
		default:
			if len(c.Args) == 0 || c.Args[0] != "--no-auto-fork" || !contains(c.Args, "--home") {
				t.Errorf("%s without --no-auto-fork/--home: %q", c.command(), c.Args)
			}
		}
	}
}

// assertKeyOnlyInOneshot checks the fake's record of every process: the key is in no argv, and in
// the environment of the oneshot only.
func assertKeyOnlyInOneshot(t *testing.T, calls []call) {
	t.Helper()
	oneshots := 0
	for _, c := range calls {
		if c.PaperkeyInArgv {
			t.Errorf("paper key in the argv of %s", c.command())
		}
		if c.command() == "oneshot" {
			oneshots++
			if !c.PaperkeyInEnv {
				t.Errorf("oneshot without the paper key in its environment")
			}
		} else if c.PaperkeyInEnv {
			t.Errorf("paper key in the environment of %s", c.command())
		}
		if strings.Contains(strings.Join(c.Args, " "), testKey) {
			t.Errorf("paper key in the recorded argv of %s", c.command())
		}
	}
	if oneshots == 0 {
		t.Error("no oneshot call recorded")
	}
}

func assertNoKeyInLogs(t *testing.T, h *harness) {
	t.Helper()
	for name, text := range map[string]string{"zap log": h.logs.String(), "daemon output": h.output.String()} {
		for _, w := range []string{testKey, strings.Fields(testKey)[0] + " " + strings.Fields(testKey)[1]} {
			if strings.Contains(text, w) {
				t.Errorf("paper key (or part) in the %s", name)
			}
		}
	}
	if len(h.calls()) > 0 && !strings.Contains(h.logs.String(), `"level":"debug"`) && !strings.Contains(h.logs.String(), `"L":"DEBUG"`) {
		t.Errorf("logger did not log at debug level; the check above proves little:\n%s", h.logs.String())
	}
}

func TestServiceKilledIsRestartedAndLoggedInAgain(t *testing.T) {
	h := newHarness(t)
	h.cfg.Notify = "acme"
	k := h.mustStart()
	k.Notify(t.Context(), EventReady, "before")
	h.waitChat(1)
	old := k.service.sup.Current().Pid()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "a second successful oneshot", func() bool {
		return countCalls(h.calls(), "oneshot", 0) == 2
	})
	cur := k.service.sup.Current()
	if cur == nil || cur.Pid() == old {
		t.Fatalf("service not restarted (pid %d)", old)
	}
	if !strings.Contains(h.logs.String(), `"state":"restarting"`) {
		t.Errorf("no restart event in the log")
	}
	out, err := k.cli.run(context.Background(), 10*time.Second, nil, "whoami", "-json")
	if err != nil || !strings.Contains(string(out), `"username": "alice"`) {
		t.Fatalf("whoami after restart: %v\n%s", err, out)
	}
	select {
	case <-k.Done():
		t.Fatalf("Keybase gave up after one restart: %v", k.Err())
	default:
	}
	h.gitRepo("team", "acme", "config")
	if err := k.CopyBareRepo(context.Background(), "team", "acme", "config", t.TempDir()+"/copy"); err != nil {
		t.Fatalf("CopyBareRepo after restart: %v", err)
	}
	// The notifier's chat pipes talked to the dead service; they are rebuilt. The restarted
	// service's chat log is the same file.
	k.Notify(t.Context(), EventSynapseRestart, "after")
	if msgs := h.waitChat(2); msgs[1].Body != "[synapse-restart] after" {
		t.Fatalf("after the restart: %+v", msgs)
	}
}

func TestRunReturnsWhenTheServiceKeepsCrashing(t *testing.T) {
	h := newHarness(t, "FAKEKEYBASE_SERVICE_CRASH_AFTER=1500ms")
	h.cfg.DaemonPolicy.MaxFailures = 1
	k := h.mustStart()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := k.Run(ctx)
	if !errors.Is(err, ErrUnavailable) || ExitCode(err) != ExitUnavailable {
		t.Fatalf("Run: %v, want ErrUnavailable (exit 69)", err)
	}
}
