package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

// binaries built once for the whole test binary by TestMain.
var (
	entrypointBin  string
	sigrecBin      string
	fakeKeybaseBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "entrypoint-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	entrypointBin = filepath.Join(dir, "entrypoint")
	sigrecBin = filepath.Join(dir, "sigrecorder")
	fakeKeybaseBin = filepath.Join(dir, "keybase")
	for out, pkg := range map[string]string{entrypointBin: ".", sigrecBin: "../../test/sigrecorder", fakeKeybaseBin: "../../test/fakekeybase"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, b)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// initRun is the entrypoint started as PID 1 of a new PID namespace, with this test as its real
// parent so the exit status seen here is exactly the one a container runtime would see.
type initRun struct {
	*testutil.Process
	t      *testing.T
	dir    string
	stdout testutil.Buffer
	stderr testutil.Buffer
}

// startInit runs `entrypoint args...` as PID 1 (newNS) or as a plain child (not PID 1).
func startInit(t *testing.T, newNS bool, env []string, args ...string) *initRun {
	t.Helper()
	return startProcess(t, newNS, env, entrypointBin, args...)
}

// startProcess runs path with args as PID 1 of a new namespace (newNS) or as a plain child.
func startProcess(t *testing.T, newNS bool, env []string, path string, args ...string) *initRun {
	t.Helper()
	return startRun(t, runOpts{newNS: newNS, env: env, path: path, args: args})
}

// runOpts say how startRun starts a process.
type runOpts struct {
	newNS bool   // PID 1 of a new PID namespace
	root  string // chroot into this root (path and args are then inside it)
	env   []string
	path  string
	args  []string
}

func startRun(t *testing.T, o runOpts) *initRun {
	t.Helper()
	if o.newNS || o.root != "" {
		testutil.RequireRoot(t)
	}
	r := &initRun{t: t, dir: t.TempDir()}
	cmd := exec.Command(o.path, o.args...)
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "LOG_LEVEL=debug", "DIR=" + r.dir}, o.env...)
	cmd.Stdout, cmd.Stderr = &r.stdout, &r.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Chroot: o.root}
	if o.root != "" {
		cmd.Dir = "/"
	}
	if o.newNS {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	}
	r.Process = testutil.Start(t, cmd)
	t.Cleanup(func() {
		if !r.Exited() {
			// The whole group: a child of a non-PID-1 run must not outlive the test either.
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-r.Done()
		}
		if t.Failed() {
			t.Logf("entrypoint stdout:\n%s\nentrypoint stderr:\n%s", r.stdout.String(), r.stderr.String())
		}
	})
	return r
}

// pid is the init's pid as this test (the parent namespace) sees it.
func (r *initRun) pid() int { return r.Cmd.Process.Pid }

func (r *initRun) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := syscall.Kill(r.pid(), sig); err != nil {
		r.t.Fatalf("signal init with %v: %v", sig, err)
	}
}

// exitCode waits for the init to exit and returns its exact status (see exactStatus).
func (r *initRun) exitCode(timeout time.Duration) int {
	r.t.Helper()
	return exactStatus(r.t, r.Process, timeout)
}

// exactStatus waits for p and returns its exit code, or -N if it was itself killed by signal N:
// unlike a shell's 128+N, this tells an init that exited 130 from one that died of SIGINT (which
// would be a bug: an init must exit, not die).
func exactStatus(t *testing.T, p *testutil.Process, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(timeout):
		t.Fatalf("entrypoint did not exit within %v", timeout)
	}
	ws := p.Cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return -int(ws.Signal())
	}
	return ws.ExitStatus()
}

// file is the path of name in the run's scratch directory (the child sees it as $DIR/name).
func (r *initRun) file(name string) string { return filepath.Join(r.dir, name) }

func (r *initRun) waitFile(name string) {
	r.t.Helper()
	testutil.Eventually(r.t, 20*time.Second, "file "+name, func() bool {
		_, err := os.Stat(r.file(name))
		return err == nil || r.Exited()
	})
	if r.Exited() {
		if _, err := os.Stat(r.file(name)); err != nil {
			r.t.Fatalf("entrypoint exited before %s appeared", name)
		}
	}
}

// proc is one process of the init's namespace, seen from outside.
type proc struct {
	pid   int
	ppid  int
	state string
	comm  string
}

// nsProcs lists the processes in the init's PID namespace (the init included).
func (r *initRun) nsProcs() []proc {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", r.pid()))
	if err != nil {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil || l != ns {
			continue
		}
		if p, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

func readProc(pid int) (proc, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return proc{}, false
	}
	s := string(b)
	open, cl := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	f := strings.Fields(s[cl+1:])
	ppid, _ := strconv.Atoi(f[1])
	return proc{pid: pid, ppid: ppid, state: f[0], comm: s[open+1 : cl]}, true
}

// find returns the namespace's processes whose command name is comm.
func (r *initRun) find(comm string) []proc {
	var out []proc
	for _, p := range r.nsProcs() {
		if p.comm == comm {
			out = append(out, p)
		}
	}
	return out
}

func (r *initRun) zombies() int {
	n := 0
	for _, p := range r.nsProcs() {
		if p.state == "Z" {
			n++
		}
	}
	return n
}

// signalsRecorded parses a sigrecorder file into the signal numbers received, in order.
func signalsRecorded(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []int
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			n, _ := strconv.Atoi(f[0])
			out = append(out, n)
		}
	}
	return out
}
