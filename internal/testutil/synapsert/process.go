package synapsert

import (
	"os/exec"
	"syscall"
	"testing"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

// Process is a Synapse started directly in the tree (without the entrypoint). It is killed when
// the test ends, and its output is logged if the test failed.
type Process struct {
	*testutil.Process
	out *testutil.Buffer
}

// Start runs `chroot tree python3 -m synapse.app.homeserver -c config` with a minimal environment
// (the host's Python settings must not leak in) plus extraEnv.
func Start(t testing.TB, tree, config string, extraEnv ...string) *Process {
	t.Helper()
	cmd := exec.Command("chroot", tree, "python3", "-m", "synapse.app.homeserver", "-c", config)
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/root"}, extraEnv...)
	out := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	p := &Process{Process: testutil.Start(t, cmd), out: out}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("synapse output:\n%s", out.String())
		}
	})
	return p
}

// Pid is the process id (chroot execs Python, so it is Synapse's).
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Output is everything Synapse wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// FailIfExited fails the test when Synapse has already exited, for use inside wait conditions.
func (p *Process) FailIfExited(t testing.TB) {
	t.Helper()
	if p.Exited() {
		t.Fatalf("synapse exited early: %v\n%s", p.Err(), p.out.String())
	}
}

// Signal sends sig to Synapse.
func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v to synapse: %v", sig, err)
	}
}
