package child

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"
)

// RestartMode says when a Supervisor starts its child again after it exits.
type RestartMode int

const (
	// RestartOnFailure restarts after a non-zero exit or a kill; a clean exit 0 ends supervision.
	RestartOnFailure RestartMode = iota
	// RestartAlways restarts after any exit, clean ones included.
	RestartAlways
	// RestartNever runs the child once, as tini does.
	RestartNever
)

// ParseRestartMode accepts always, on-failure and never.
func ParseRestartMode(s string) (RestartMode, error) {
	switch s {
	case "always":
		return RestartAlways, nil
	case "on-failure", "":
		return RestartOnFailure, nil
	case "never", "no":
		return RestartNever, nil
	}
	return 0, fmt.Errorf("restart mode %q: want always, on-failure or never", s)
}

func (m RestartMode) String() string {
	return [...]string{"on-failure", "always", "never"}[m]
}

// Policy is how a Supervisor restarts its child.
type Policy struct {
	Restart RestartMode
	// MaxRestarts ends supervision after that many restarts; 0 means no limit.
	MaxRestarts int
	// MaxFailures and Window are the failure budget: a failure that makes more than MaxFailures
	// failures within Window ends supervision. 0 disables the budget.
	MaxFailures int
	Window      time.Duration
	Backoff     Backoff
}

// ErrGaveUp is returned by Run when the restart limit or failure budget ran out.
var ErrGaveUp = errors.New("gave up restarting")

// State names a step in a supervised child's life, as reported in Events.
type State string

const (
	StateStarting   State = "starting"
	StateRunning    State = "running"
	StateExited     State = "exited"
	StateRestarting State = "restarting"
	StateStopping   State = "stopping"
	StateGaveUp     State = "gave-up"
)

// Event reports a state change: the pid once running, the Status once exited, the Delay before a
// restart.
type Event struct {
	Name     string
	State    State
	Pid      int
	Status   Status
	Delay    time.Duration
	Restarts int
}

// Supervisor runs one child at a time, restarting it according to Policy, until the policy says
// stop, Stop is called or its context ends.
type Supervisor struct {
	Name string
	// Spec is called before every start, so each start sees current settings.
	Spec   func() (Spec, error)
	Policy Policy
	// StopSignal and StopTimeout are used when the context ends or Restart is called (defaults
	// SIGTERM and 10 s); after the timeout the child's group is SIGKILLed.
	StopSignal  syscall.Signal
	StopTimeout time.Duration
	// OnEvent is called for every state change, from Run and from Stop: it must be quick and safe
	// for concurrent use.
	OnEvent func(Event)
	// Rand supplies back-off jitter; nil means none.
	Rand *rand.Rand

	mu        sync.Mutex
	cur       *Process
	stopping  bool // no more restarts: the next exit ends Run
	signalled bool // the stop signal and its SIGKILL timer have been sent
	restart   bool
	wake      chan struct{}
}

// Run supervises until the child ends for good and returns its last Status. The error is
// a *StartError when the child could not be started, ErrGaveUp when the budget ran out, or the
// error of Spec.
func (s *Supervisor) Run(ctx context.Context) (Status, error) {
	s.mu.Lock()
	s.wake = make(chan struct{}, 1)
	s.mu.Unlock()
	stopCtx := context.AfterFunc(ctx, func() { s.Stop(s.stopSignal()) })
	defer stopCtx()

	var (
		restarts int
		attempt  int
		failures []time.Time
	)
	for {
		spec, err := s.Spec()
		if err != nil {
			return Status{Code: 70, Err: err}, fmt.Errorf("prepare %s: %w", s.Name, err)
		}
		if spec.Name == "" {
			spec.Name = s.Name
		}
		s.emit(Event{State: StateStarting, Restarts: restarts})
		p, err := Start(spec)
		if err != nil {
			st, _ := StartStatus(err)
			s.emit(Event{State: StateExited, Status: st, Restarts: restarts})
			return st, err
		}
		if !s.setCurrent(p) {
			// Stop arrived while starting: the new child gets the stop too.
			go p.Stop(s.stopSignal(), s.stopTimeout())
		}
		s.emit(Event{State: StateRunning, Pid: p.Pid(), Restarts: restarts})
		st := p.Wait()
		ran := time.Since(p.Started())
		stopping, restartReq := s.clearCurrent()
		s.emit(Event{State: StateExited, Pid: p.Pid(), Status: st, Restarts: restarts})
		switch {
		case stopping:
			return st, nil
		case restartReq:
			attempt = 0
			continue
		case s.Policy.Restart == RestartNever,
			s.Policy.Restart == RestartOnFailure && st.Success():
			return st, nil
		}
		if b := s.Policy.Backoff; b.ResetAfter > 0 && ran >= b.ResetAfter {
			attempt = 0
		}
		if !st.Success() {
			failures = append(recent(failures, s.Policy.Window), time.Now())
			if s.Policy.MaxFailures > 0 && len(failures) > s.Policy.MaxFailures {
				s.emit(Event{State: StateGaveUp, Status: st, Restarts: restarts})
				return st, fmt.Errorf("%s: %d failures within %v: %w", s.Name, len(failures), s.Policy.Window, ErrGaveUp)
			}
		}
		if s.Policy.MaxRestarts > 0 && restarts >= s.Policy.MaxRestarts {
			s.emit(Event{State: StateGaveUp, Status: st, Restarts: restarts})
			return st, fmt.Errorf("%s: %d restarts: %w", s.Name, restarts, ErrGaveUp)
		}
		attempt++
		restarts++
		delay := s.Policy.Backoff.Delay(attempt, s.Rand)
		s.emit(Event{State: StateRestarting, Status: st, Delay: delay, Restarts: restarts})
		if !s.sleep(delay) {
			return st, nil
		}
	}
}

// recent keeps the times within window of now (all of them when window is 0).
func recent(ts []time.Time, window time.Duration) []time.Time {
	if window <= 0 {
		return ts
	}
	cut := time.Now().Add(-window)
	out := ts[:0]
	for _, t := range ts {
		if t.After(cut) {
			out = append(out, t)
		}
	}
	return out
}

// sleep waits out a back-off delay. It reports false when a stop arrived meanwhile; a Restart
// request cuts the delay short.
func (s *Supervisor) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return !s.isStopping()
		case <-s.wake:
			s.mu.Lock()
			stopping, restart := s.stopping, s.restart
			s.restart = false
			s.mu.Unlock()
			if stopping {
				return false
			}
			if restart {
				return true
			}
		}
	}
}

func (s *Supervisor) setCurrent(p *Process) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = p
	return !s.stopping
}

func (s *Supervisor) clearCurrent() (stopping, restart bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = nil
	stopping, restart = s.stopping, s.restart
	s.restart = false
	return stopping, restart
}

func (s *Supervisor) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// Current returns the running child, or nil between runs.
func (s *Supervisor) Current() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Signal forwards sig to the running child's process group; between runs it is dropped.
func (s *Supervisor) Signal(sig syscall.Signal) error {
	if p := s.Current(); p != nil {
		return p.Signal(sig)
	}
	return nil
}

// Stop ends supervision: the child gets sig (the one the operator sent, so SIGINT stays SIGINT)
// and, after StopTimeout, SIGKILL. Run then returns the child's status. Calling it again only
// forwards sig.
func (s *Supervisor) Stop(sig syscall.Signal) { s.StopWith(sig, s.stopTimeout()) }

// StopWith is Stop with its own timeout, for callers that spent part of their budget already
// (Synapse's stop waits for READY before it signals).
func (s *Supervisor) StopWith(sig syscall.Signal, timeout time.Duration) {
	s.mu.Lock()
	first := !s.signalled
	s.stopping, s.signalled = true, true
	p := s.cur
	s.poke()
	s.mu.Unlock()
	if p == nil {
		return
	}
	if !first {
		_ = p.Signal(sig)
		return
	}
	s.emit(Event{State: StateStopping, Pid: p.Pid()})
	go p.Stop(sig, timeout)
}

// Drain ends supervision without signalling: the running child is left alone, but when it exits
// Run returns instead of restarting it, and a back-off wait ends at once. A later Stop or
// StopWith still signals it.
func (s *Supervisor) Drain() {
	s.mu.Lock()
	s.stopping = true
	s.poke()
	s.mu.Unlock()
}

// Restart stops the running child gracefully (StopSignal, StopTimeout) and starts it again at
// once, without counting a failure; during a back-off wait it cuts the wait short.
func (s *Supervisor) Restart() {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return
	}
	s.restart = true
	p := s.cur
	s.poke()
	s.mu.Unlock()
	if p != nil {
		go p.Stop(s.stopSignal(), s.stopTimeout())
	}
}

// poke wakes a back-off wait; s.mu must be held.
func (s *Supervisor) poke() {
	if s.wake == nil {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Supervisor) emit(e Event) {
	if s.OnEvent != nil {
		e.Name = s.Name
		s.OnEvent(e)
	}
}

func (s *Supervisor) stopSignal() syscall.Signal {
	if s.StopSignal == 0 {
		return syscall.SIGTERM
	}
	return s.StopSignal
}

func (s *Supervisor) stopTimeout() time.Duration {
	if s.StopTimeout <= 0 {
		return 10 * time.Second
	}
	return s.StopTimeout
}
