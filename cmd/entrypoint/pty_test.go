package main

// Case 10 of the conformance suite: the entrypoint under a real pty, as with `docker run -it`.

import (
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

// ptyRun is the entrypoint as PID 1 of a new PID namespace whose controlling terminal is a pty
// this test holds the master side of.
type ptyRun struct {
	*testutil.Process
	t      *testing.T
	master *os.File
	out    testutil.Buffer
}

func startUnderPty(t *testing.T, args ...string) *ptyRun {
	t.Helper()
	testutil.RequireRoot(t)
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	r := &ptyRun{t: t, master: master}
	cmd := exec.Command(entrypointBin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TERM=dumb", "PS1=$ ", "LOG_LEVEL=warn"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	// A new session with the pty as its controlling terminal, like docker's -t.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Cloneflags: syscall.CLONE_NEWPID}
	r.Process = testutil.Start(t, cmd)
	tty.Close()
	go func() { io.Copy(&r.out, master) }()
	t.Cleanup(func() {
		if !r.Exited() {
			cmd.Process.Kill()
			<-r.Done()
		}
		master.Close()
		if t.Failed() {
			t.Logf("terminal output:\n%s", r.out.String())
		}
	})
	return r
}

func (r *ptyRun) expect(re string) {
	r.t.Helper()
	rx := regexp.MustCompile(re)
	testutil.Eventually(r.t, 20*time.Second, "terminal shows "+re, func() bool { return rx.MatchString(r.out.String()) })
}

func (r *ptyRun) send(s string) {
	r.t.Helper()
	if _, err := r.master.Write([]byte(s)); err != nil {
		r.t.Fatalf("write to pty: %v", err)
	}
}

func (r *ptyRun) exitCode() int {
	r.t.Helper()
	return exactStatus(r.t, r.Process, exitWithin)
}

func TestPtyCtrlCEndsWith130(t *testing.T) {
	r := startUnderPty(t, "sh", "-c", "echo ready; sleep 30; true")
	r.expect("ready")
	r.send("\x03")
	if got := r.exitCode(); got != 130 {
		t.Fatalf("got %d, want 130", got)
	}
}

func TestPtyReadWorks(t *testing.T) {
	r := startUnderPty(t, "sh", "-c", `echo ready; read line; echo "got:$line"`)
	r.expect("ready")
	r.send("hello\n")
	r.expect("got:hello")
	if got := r.exitCode(); got != 0 {
		t.Fatalf("got %d, want 0", got)
	}
}

func TestPtyInteractiveShellHasJobControl(t *testing.T) {
	r := startUnderPty(t, "sh", "-i")
	r.send("set -o | grep monitor; echo marker-$((6*7))\n")
	r.expect(`marker-42`)
	out := r.out.String()
	if strings.Contains(out, "job control turned off") || !regexp.MustCompile(`monitor\s+on`).MatchString(out) {
		t.Fatalf("sh -i has no job control:\n%s", out)
	}
	// A background job and fg: only possible with job control.
	r.send("sleep 30 &\n")
	r.send("jobs; echo marker-$((7*7))\n")
	r.expect(`(?s)Running.*sleep 30.*marker-49`)
	r.send("kill %1; exit 7\n")
	if got := r.exitCode(); got != 7 {
		t.Fatalf("got %d, want 7", got)
	}
}
