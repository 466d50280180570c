// Package pid1 is the init half of the entrypoint: a tiny process that owns the only wait4(-1)
// loop in the container, relays signals and drains the namespace at the end.
//
// Why two processes: a Go program that reaps with wait4(-1) steals exit statuses from os/exec,
// which the supervisor (and kbchat and go-git inside it) rely on. So the entrypoint re-executes
// itself: the parent is this init, which never uses os/exec; the child is the supervisor, which
// may. Orphans reparent to the init (as PID 1, or as a registered child subreaper when the
// container already has an init), never to the supervisor.
package pid1

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// RoleEnv marks the re-executed supervisor. The supervisor removes it from the environment it
// passes on (see SupervisorRole), so no grandchild ever sees it.
const RoleEnv = "_ENTRYPOINT_ROLE"

const supervisorRole = "supervisor"

// SupervisorRole reports whether this process is the supervisor half and returns environ without
// the marker.
func SupervisorRole(environ []string) (bool, []string) {
	out := make([]string, 0, len(environ))
	is := false
	for _, kv := range environ {
		if strings.HasPrefix(kv, RoleEnv+"=") {
			is = kv == RoleEnv+"="+supervisorRole
			continue
		}
		out = append(out, kv)
	}
	return is, out
}

// Exit codes of the init's own failures (sysexits).
const (
	ExitInternal = 70
)

// Options configure the init.
type Options struct {
	// Self is the executable re-executed as the supervisor (default /proc/self/exe) with Args
	// (argv, argv[0] included) and Env; the role marker is added to Env.
	Self string
	Args []string
	Env  []string
	// Grace is how long the drain waits after SIGTERM-ing what is left before it SIGKILLs it.
	Grace time.Duration
	// Tick is the reaping interval used as well as SIGCHLD, since signal delivery coalesces
	// (default 1 s).
	Tick time.Duration
	Log  *zap.Logger
}

// Run is the whole life of the init: start the supervisor, reap every child and relay every
// catchable signal to the supervisor until it exits, then drain what is left and return the
// supervisor's exit code (128+N if it was killed by signal N).
func Run(o Options) int {
	if o.Self == "" {
		o.Self = selfPath(o.Args)
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	in := &initProc{opts: o, log: o.Log, pid1: os.Getpid() == 1}

	// Catch before forking: a signal in between would otherwise hit the default action, and the
	// kernel drops unhandled signals to a namespace's PID 1 only for some of them.
	in.sigs = make(chan os.Signal, 256)
	signal.Notify(in.sigs, append(Relayable(), syscall.SIGCHLD)...)
	defer signal.Stop(in.sigs)

	if !in.pid1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			in.log.Warn("cannot register as child subreaper; orphans will go to the real init", zap.Error(err))
		}
	}
	pid, err := syscall.ForkExec(o.Self, o.Args, &syscall.ProcAttr{
		Env:   append(append([]string(nil), o.Env...), RoleEnv+"="+supervisorRole),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		in.log.Error("start supervisor", zap.String("path", o.Self), zap.Error(err))
		return ExitInternal
	}
	in.sup = pid
	in.log.Debug("supervisor started", zap.Int("pid", pid), zap.Int("released_startup_bytes", ReleaseStartupPages()))
	in.loop()
	in.drain()
	return exitCode(in.supStatus)
}

type initProc struct {
	opts      Options
	log       *zap.Logger
	pid1      bool
	sigs      chan os.Signal
	sup       int
	supDone   bool
	supStatus syscall.WaitStatus
	reaped    int
}

// loop reaps and relays until the supervisor has exited.
func (in *initProc) loop() {
	tick := time.NewTicker(in.opts.Tick)
	defer tick.Stop()
	for !in.supDone {
		select {
		case s := <-in.sigs:
			if s != syscall.SIGCHLD {
				in.relay(s.(syscall.Signal))
			}
		case <-tick.C:
		}
		in.reap()
	}
}

// relay passes sig to the supervisor, which decides what it means for its children.
func (in *initProc) relay(sig syscall.Signal) {
	if err := syscall.Kill(in.sup, sig); err != nil && err != syscall.ESRCH {
		in.log.Warn("relay signal", zap.Stringer("signal", sig), zap.Error(err))
	}
}

// reap collects every child that has exited, noting the supervisor's status. It reports whether
// any child is left.
func (in *initProc) reap() (childrenLeft bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.ECHILD:
			return false
		case err != nil:
			in.log.Warn("wait4", zap.Error(err))
			return true
		case pid == 0:
			return true
		}
		in.reaped++
		if pid == in.sup {
			in.supDone, in.supStatus = true, ws
		}
	}
}

// drain ends whatever outlived the supervisor: SIGTERM to all, reap until none is left or the
// grace period ends, then SIGKILL. Helpers that trap SIGTERM (a sidecar, a setsid'd daemon) get
// their cleanup time instead of the kernel's instant SIGKILL when PID 1 exits.
func (in *initProc) drain() {
	if !in.reap() {
		return
	}
	signalled := map[int]bool{}
	in.signalAll(syscall.SIGTERM, signalled)
	deadline := time.NewTimer(in.opts.Grace)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for in.reap() {
		select {
		case <-in.sigs:
		case <-poll.C:
			if !in.pid1 {
				// Orphans of the processes just ended reparent to us: they get SIGTERM too.
				in.signalAll(syscall.SIGTERM, signalled)
			}
			continue
		case <-deadline.C:
			in.log.Warn("processes outlived the grace period; killing them", zap.Duration("grace", in.opts.Grace))
			in.kill()
			return
		}
	}
}

// kill SIGKILLs everything left and reaps it, bounded so a stuck process (uninterruptible
// sleep) cannot keep the container from exiting.
func (in *initProc) kill() {
	end := time.Now().Add(2 * time.Second)
	for in.reap() && time.Now().Before(end) {
		in.signalAll(syscall.SIGKILL, nil)
		time.Sleep(5 * time.Millisecond)
	}
}

// signalAll sends sig to every process this init is responsible for: as PID 1, the whole
// namespace via kill(-1); as a subreaper, only our own children (kill(-1) would hit the host).
// done records pids already sent sig so a subreaper signals each orphan once.
func (in *initProc) signalAll(sig syscall.Signal, done map[int]bool) {
	if in.pid1 {
		if err := syscall.Kill(-1, sig); err != nil && err != syscall.ESRCH {
			in.log.Warn("signal all", zap.Stringer("signal", sig), zap.Error(err))
		}
		return
	}
	for _, pid := range childrenOf(os.Getpid()) {
		if done != nil && done[pid] {
			continue
		}
		_ = syscall.Kill(pid, sig)
		if done != nil {
			done[pid] = true
		}
	}
}

// childrenOf lists the pids whose parent is ppid, from /proc.
func childrenOf(ppid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		if p, err := parentOf(pid); err == nil && p == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// parentOf reads the ppid field of /proc/pid/stat, after the parenthesised command name (which
// may itself contain spaces and parentheses).
func parentOf(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	var state string
	var ppid int
	if _, err := fmt.Sscanf(s[i+1:], " %s %d", &state, &ppid); err != nil {
		return 0, err
	}
	return ppid, nil
}

// selfPath is the executable to re-execute: /proc/self/exe, or, when /proc is not mounted (a
// chroot, a minimal container), argv[0] resolved through PATH.
func selfPath(args []string) string {
	const procSelf = "/proc/self/exe"
	if _, err := os.Stat(procSelf); err == nil || len(args) == 0 {
		return procSelf
	}
	if p, err := exec.LookPath(args[0]); err == nil {
		return p
	}
	return args[0]
}

// exitCode folds a wait status into a process exit code: the code, or 128+N for signal N.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
