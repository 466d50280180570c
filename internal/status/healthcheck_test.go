package status

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

func runHC(t *testing.T, defaultAddr string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := RunHealthcheck(args, &stdout, &stderr, defaultAddr)
	return code, stdout.String(), stderr.String()
}

func TestRunHealthcheckAgainstServer(t *testing.T) {
	clock := newFakeClock()
	tr := NewTracker(clock.Now, nil)
	addr := startServer(t, tr.Handler())
	_, port, _ := net.SplitHostPort(addr)

	tr.Set(PhaseKeybase, "")
	code, out, errOut := runHC(t, addr)
	if code != ExitUnhealthy || out != "not ready: waiting for Keybase\n" {
		t.Errorf("not ready: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// Liveness is fine while not ready.
	if code, out, errOut := runHC(t, addr, "--live"); code != ExitHealthy || out != "ok\n" {
		t.Errorf("--live: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	tr.SetRestarting(clock.Now().Add(12*time.Second), "")
	if code, out, _ := runHC(t, "", "--addr", addr); code != ExitUnhealthy || out != "not ready: Synapse restarting in 12s\n" {
		t.Errorf("restarting: exit %d, stdout %q", code, out)
	}

	tr.Set(PhaseReady, "")
	for _, args := range [][]string{
		nil,
		{"--addr", addr},
		{"-addr=" + addr},
		{"--addr", ":" + port}, // :port means loopback
		{"--timeout", "3s"},
	} {
		def := addr
		if len(args) > 0 && strings.Contains(args[0], "addr") {
			def = "127.0.0.1:1" // must be overridden by the flag
		}
		code, out, errOut := runHC(t, def, args...)
		if code != ExitHealthy || out != "ready\n" || errOut != "" {
			t.Errorf("ready %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

func TestRunHealthcheckNothingListening(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	code, out, errOut := runHC(t, addr)
	if code != ExitUnhealthy {
		t.Errorf("exit %d, want 1", code)
	}
	if out != "" || !strings.Contains(errOut, "nothing is listening on "+addr) ||
		!strings.Contains(errOut, "connection refused") {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}
}

// TestCheckNoAnswer uses a listener that accepts connections (the kernel backlog does) but never
// answers, as a hung entrypoint would.
func TestCheckNoAnswer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, out, errOut := runHC(t, l.Addr().String(), "--timeout", "100ms")
	if code != ExitUnhealthy || out != "" || !strings.Contains(errOut, "no answer within 100ms") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestCheckUnexpectedStatus(t *testing.T) {
	tr := NewTracker(nil, nil)
	addr := startServer(t, tr.Handler())
	ok, body, err := Check(context.Background(), addr, "/nope", time.Second)
	if ok || err == nil || !strings.Contains(err.Error(), "unexpected 404") || body != "404 page not found" {
		t.Errorf("ok %v, body %q, err %v", ok, body, err)
	}
	// A path without its slash and an empty path (meaning /readyz) both work.
	if ok, body, err := Check(context.Background(), addr, "healthz", time.Second); !ok || body != "ok" || err != nil {
		t.Errorf("healthz: %v %q %v", ok, body, err)
	}
	if ok, body, err := Check(context.Background(), addr, "", time.Second); ok || body != "not ready: entrypoint starting" || err != nil {
		t.Errorf("default path: %v %q %v", ok, body, err)
	}
}

func TestRunHealthcheckUsage(t *testing.T) {
	for _, tc := range []struct {
		name, def string
		args      []string
		code      int
		stderr    string
	}{
		{"unknown flag", "", []string{"--bogus"}, ExitUsage, "flag provided but not defined"},
		{"bad timeout", "", []string{"--timeout", "soon"}, ExitUsage, "invalid value"},
		{"zero timeout", "", []string{"--timeout", "0s"}, ExitUsage, "--timeout must be positive"},
		{"extra argument", "", []string{"now"}, ExitUsage, `unexpected argument "now"`},
		{"bad addr flag", "", []string{"--addr", "nonsense"}, ExitUsage, `status address "nonsense"`},
		{"bad configured addr", "nonsense", nil, ExitConfig, `status address "nonsense"`},
		{"help", "", []string{"-h"}, ExitHealthy, "usage: entrypoint healthcheck"},
	} {
		code, out, errOut := runHC(t, tc.def, tc.args...)
		if code != tc.code || out != "" || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%s: exit %d (want %d), stdout %q, stderr %q (want %q)", tc.name, code, tc.code, out, errOut, tc.stderr)
		}
	}
}

// TestHeadOverRealServer checks HEAD answers the same codes over a real server,
// where the body is dropped (the recorder in the handler tests keeps it).
func TestHeadOverRealServer(t *testing.T) {
	tr := NewTracker(nil, nil)
	addr := startServer(t, tr.Handler())
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Head("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("HEAD /readyz: %s", resp.Status)
	}
}
