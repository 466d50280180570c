package child

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

func sh(script string) Spec {
	return Spec{Name: "sh", Path: "/bin/sh", Args: []string{"sh", "-c", script}, Env: []string{"PATH=/usr/bin:/bin"}, Stderr: os.Stderr}
}

func alive(pid int) bool {
	// A zombie still answers kill(0); read its state instead.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func TestExitCodesPassThrough(t *testing.T) {
	for _, code := range []int{0, 1, 2, 42, 255} {
		p, err := Start(sh("exit " + strconv.Itoa(code)))
		if err != nil {
			t.Fatal(err)
		}
		if st := p.Wait(); st.ExitCode() != code || st.Signal != 0 {
			t.Errorf("exit %d: got %v", code, st)
		}
	}
}

func TestKilledBySignalIs128PlusN(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGKILL} {
		p, err := Start(sh("exec sleep 30"))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Signal(sig); err != nil {
			t.Fatal(err)
		}
		st := p.Wait()
		if st.Signal != sig || st.ExitCode() != 128+int(sig) {
			t.Errorf("%v: got %v (code %d)", sig, st, st.ExitCode())
		}
	}
}

func TestStartFailures(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "script")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		path string
		want int
	}{
		{"missing in PATH", "no-such-command-xyz", ExitNotFound},
		{"missing path", filepath.Join(dir, "nope"), ExitNotFound},
		{"not executable", notExec, ExitNotExecutable},
		{"a directory", dir, ExitNotExecutable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Start(Spec{Name: "x", Path: c.path, Env: []string{"PATH=/usr/bin:/bin"}})
			st, ok := StartStatus(err)
			if !ok || st.ExitCode() != c.want {
				t.Fatalf("got err %v status %v, want code %d", err, st, c.want)
			}
		})
	}
}

func TestStopAlreadyDeadChild(t *testing.T) {
	p, err := Start(sh("exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	p.Wait()
	if st := p.Stop(syscall.SIGTERM, time.Second); st.Code != 3 {
		t.Fatalf("Stop of a dead child: %v, want exit 3", st)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal to a gone group should be nil, got %v", err)
	}
}

func TestStopChildIgnoringTermIsKilledAfterTimeout(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	p, err := Start(sh(`trap '' TERM; touch ` + ready + `; while :; do sleep 1; done`))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "trap installed", func() bool { _, err := os.Stat(ready); return err == nil })
	begin := time.Now()
	st := p.Stop(syscall.SIGTERM, 300*time.Millisecond)
	if st.Signal != syscall.SIGKILL {
		t.Fatalf("got %v, want SIGKILL", st)
	}
	if took := time.Since(begin); took < 300*time.Millisecond {
		t.Fatalf("SIGKILL came before the timeout (%v)", took)
	}
}

func TestSignalReachesGrandchildrenThroughGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	p, err := Start(sh(`sleep 60 & echo $! > ` + pidFile + `.tmp; mv ` + pidFile + `.tmp ` + pidFile + `; wait`))
	if err != nil {
		t.Fatal(err)
	}
	var grandchild int
	testutil.Eventually(t, 5*time.Second, "grandchild pid", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		grandchild, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return grandchild > 0
	})
	p.Stop(syscall.SIGTERM, 5*time.Second)
	testutil.Eventually(t, 5*time.Second, "grandchild gone", func() bool { return !alive(grandchild) })
}

func TestChildRunsInItsOwnProcessGroup(t *testing.T) {
	p, err := Start(sh("exec sleep 30"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	pgid, err := syscall.Getpgid(p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if pgid != p.Pid() || pgid == syscall.Getpgrp() {
		t.Fatalf("pgid %d, pid %d, ours %d", pgid, p.Pid(), syscall.Getpgrp())
	}
}

func TestEnvIsExactlyTheSpecs(t *testing.T) {
	t.Setenv("SECRET_OF_PARENT", "x")
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	spec := sh("env > " + out)
	spec.Env = []string{"A=1"}
	p, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	p.Wait()
	b, _ := os.ReadFile(out)
	if strings.Contains(string(b), "SECRET_OF_PARENT") || !strings.Contains(string(b), "A=1") {
		t.Fatalf("child env:\n%s", b)
	}
}

func TestBackoffBounds(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 5 * time.Minute, Factor: 2, Jitter: 0.2}
	rnd := rand.New(rand.NewPCG(1, 2))
	prevMax := time.Duration(0)
	for attempt := 1; attempt <= 20; attempt++ {
		base := b.Delay(attempt, nil)
		want := time.Second << (attempt - 1)
		if want > 5*time.Minute || want <= 0 {
			want = 5 * time.Minute
		}
		if base != want {
			t.Fatalf("attempt %d: base %v, want %v", attempt, base, want)
		}
		for i := 0; i < 200; i++ {
			d := b.Delay(attempt, rnd)
			lo, hi := time.Duration(float64(base)*0.8), time.Duration(float64(base)*1.2)
			if d < lo || d > hi {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, lo, hi)
			}
		}
		if base < prevMax {
			t.Fatalf("back-off shrank at attempt %d", attempt)
		}
		prevMax = base
	}
}

// events collects a Supervisor's events for assertions.
type events struct {
	mu sync.Mutex
	ev []Event
}

func (e *events) add(ev Event) { e.mu.Lock(); e.ev = append(e.ev, ev); e.mu.Unlock() }
func (e *events) count(s State) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.ev {
		if ev.State == s {
			n++
		}
	}
	return n
}

var fastBackoff = Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond, Factor: 2}

func TestSupervisorRestartsOnFailureUntilBudget(t *testing.T) {
	var ev events
	s := &Supervisor{
		Name:    "crasher",
		Spec:    func() (Spec, error) { return sh("exit 7"), nil },
		Policy:  Policy{Restart: RestartOnFailure, MaxFailures: 3, Window: time.Minute, Backoff: fastBackoff},
		OnEvent: ev.add,
	}
	st, err := s.Run(context.Background())
	if !errors.Is(err, ErrGaveUp) || st.Code != 7 {
		t.Fatalf("got %v, %v; want exit 7 and ErrGaveUp", st, err)
	}
	if n := ev.count(StateRunning); n != 4 {
		t.Fatalf("ran %d times, want 4 (3 failures allowed, the 4th exhausts the budget)", n)
	}
	if n := ev.count(StateRestarting); n != 3 {
		t.Fatalf("%d restarting events, want 3", n)
	}
}

func TestSupervisorMaxRestarts(t *testing.T) {
	var ev events
	s := &Supervisor{
		Spec:    func() (Spec, error) { return sh("exit 0"), nil },
		Policy:  Policy{Restart: RestartAlways, MaxRestarts: 2, Backoff: fastBackoff},
		OnEvent: ev.add,
	}
	if _, err := s.Run(context.Background()); !errors.Is(err, ErrGaveUp) {
		t.Fatalf("want ErrGaveUp, got %v", err)
	}
	if n := ev.count(StateRunning); n != 3 {
		t.Fatalf("ran %d times, want 3", n)
	}
}

func TestSupervisorCleanExitEndsOnFailureMode(t *testing.T) {
	var ev events
	s := &Supervisor{Spec: func() (Spec, error) { return sh("exit 0"), nil }, Policy: Policy{Backoff: fastBackoff}, OnEvent: ev.add}
	st, err := s.Run(context.Background())
	if err != nil || !st.Success() || ev.count(StateRunning) != 1 {
		t.Fatalf("got %v %v, runs %d", st, err, ev.count(StateRunning))
	}
}

func TestSupervisorNeverRestartsInNeverMode(t *testing.T) {
	var ev events
	s := &Supervisor{Spec: func() (Spec, error) { return sh("exit 9"), nil }, Policy: Policy{Restart: RestartNever}, OnEvent: ev.add}
	st, _ := s.Run(context.Background())
	if st.Code != 9 || ev.count(StateRunning) != 1 {
		t.Fatalf("got %v after %d runs", st, ev.count(StateRunning))
	}
}

func TestSupervisorStartFailureIsNotRetried(t *testing.T) {
	var ev events
	s := &Supervisor{Spec: func() (Spec, error) { return Spec{Path: "no-such-command-xyz"}, nil }, Policy: Policy{Backoff: fastBackoff}, OnEvent: ev.add}
	st, err := s.Run(context.Background())
	if st.ExitCode() != 127 || err == nil || ev.count(StateStarting) != 1 {
		t.Fatalf("got %v %v after %d starts", st, err, ev.count(StateStarting))
	}
}

func TestSupervisorStopForwardsTheSignalGiven(t *testing.T) {
	var ev events
	s := &Supervisor{Spec: func() (Spec, error) { return sh("exec sleep 30"), nil }, Policy: Policy{Restart: RestartAlways}, OnEvent: ev.add}
	done := make(chan Status)
	go func() { st, _ := s.Run(context.Background()); done <- st }()
	testutil.Eventually(t, 5*time.Second, "running", func() bool { return s.Current() != nil })
	s.Stop(syscall.SIGINT)
	st := <-done
	if st.Signal != syscall.SIGINT || ev.count(StateRunning) != 1 {
		t.Fatalf("got %v, runs %d; want SIGINT and no restart", st, ev.count(StateRunning))
	}
}

func TestSupervisorContextCancelStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Supervisor{Spec: func() (Spec, error) { return sh("exec sleep 30"), nil }, Policy: Policy{Restart: RestartAlways}}
	done := make(chan Status)
	go func() { st, _ := s.Run(ctx); done <- st }()
	testutil.Eventually(t, 5*time.Second, "running", func() bool { return s.Current() != nil })
	cancel()
	if st := <-done; st.Signal != syscall.SIGTERM {
		t.Fatalf("got %v, want SIGTERM", st)
	}
}

func TestSupervisorStopDuringBackoffReturnsPromptly(t *testing.T) {
	var ev events
	s := &Supervisor{
		Spec:    func() (Spec, error) { return sh("exit 1"), nil },
		Policy:  Policy{Backoff: Backoff{Initial: time.Hour, Max: time.Hour}},
		OnEvent: ev.add,
	}
	done := make(chan Status)
	go func() { st, _ := s.Run(context.Background()); done <- st }()
	testutil.Eventually(t, 5*time.Second, "restarting", func() bool { return ev.count(StateRestarting) == 1 })
	s.Stop(syscall.SIGTERM)
	select {
	case st := <-done:
		if st.Code != 1 {
			t.Fatalf("got %v", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Stop during back-off")
	}
}

func TestSupervisorRestartIsGracefulAndNotAFailure(t *testing.T) {
	var ev events
	starts := 0
	s := &Supervisor{
		Spec:        func() (Spec, error) { starts++; return sh("exec sleep 30"), nil },
		Policy:      Policy{MaxFailures: 1, Window: time.Minute, Backoff: fastBackoff},
		StopTimeout: 5 * time.Second,
		OnEvent:     ev.add,
	}
	done := make(chan Status)
	go func() { st, _ := s.Run(context.Background()); done <- st }()
	for i := 1; i <= 3; i++ {
		testutil.Eventually(t, 5*time.Second, "running", func() bool { return ev.count(StateRunning) == i })
		s.Restart()
	}
	testutil.Eventually(t, 5*time.Second, "4th run", func() bool { return ev.count(StateRunning) == 4 })
	s.Stop(syscall.SIGTERM)
	<-done
	if ev.count(StateGaveUp) != 0 || ev.count(StateRestarting) != 0 {
		t.Fatalf("graceful restarts counted as failures: %+v", ev.ev)
	}
}

func TestSupervisorSpecIsCalledBeforeEveryStart(t *testing.T) {
	n := 0
	s := &Supervisor{
		Spec:   func() (Spec, error) { n++; return sh("exit " + strconv.Itoa(n%2)), nil },
		Policy: Policy{Backoff: fastBackoff},
	}
	// First run exits 1 (failure, restart), second exits 0 (done).
	st, err := s.Run(context.Background())
	if err != nil || !st.Success() || n != 2 {
		t.Fatalf("got %v %v after %d specs", st, err, n)
	}
}

func TestSupervisorDrainEndsWithoutSignalling(t *testing.T) {
	dir := t.TempDir()
	s := &Supervisor{Spec: func() (Spec, error) {
		return sh(`trap 'touch ` + dir + `/term' TERM; while [ ! -e ` + dir + `/go ] ; do sleep 0.01; done; exit 1`), nil
	}, Policy: Policy{Restart: RestartAlways, Backoff: fastBackoff}}
	done := make(chan Status)
	go func() { st, _ := s.Run(context.Background()); done <- st }()
	testutil.Eventually(t, 5*time.Second, "running", func() bool { return s.Current() != nil })
	s.Drain()
	os.WriteFile(dir+"/go", nil, 0o644)
	st := <-done
	if st.Code != 1 {
		t.Fatalf("got %v, want the child's own exit 1 and no restart", st)
	}
	if _, err := os.Stat(dir + "/term"); err == nil {
		t.Fatal("Drain signalled the child")
	}
}
