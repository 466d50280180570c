// Package homeserver runs and supervises Synapse, respecting its sharp edges: it has no signal
// handlers until it is ready (so a stop waits for READY rather than cutting a database migration
// in half, and SIGHUP is forwarded only once ready), it announces readiness over NOTIFY_SOCKET,
// and it answers GET /health once listening. Crashes are restarted with back-off; failed health
// probes after READY cause a graceful restart.
package homeserver

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/ovrclk/synapse-entrypoint/internal/child"
)

// Phase is Synapse's state as the status endpoint shows it.
type Phase string

const (
	PhaseStarting   Phase = "migrating" // started, not READY yet: imports, database migrations
	PhaseReady      Phase = "ready"
	PhaseRestarting Phase = "restarting"
	PhaseStopping   Phase = "stopping"
	PhaseExited     Phase = "stopped"
)

// Restart reasons, as counted in metrics.
const (
	ReasonCrash        = "crash"
	ReasonProbe        = "probe"
	ReasonStartTimeout = "start-timeout"
	ReasonConfig       = "config"
)

// Config is how to run Synapse.
type Config struct {
	// Argv is the whole command line, e.g. python3 -m synapse.app.homeserver -c /run/... .
	Argv []string
	// Env is Synapse's whole environment (already scrubbed of the entrypoint's secrets);
	// NOTIFY_SOCKET is added.
	Env        []string
	Dir        string
	Credential *syscall.Credential
	Stdout     *os.File
	Stderr     *os.File
	// NotifyDir holds the notify socket.
	NotifyDir string
	// HealthURL is probed, e.g. http://127.0.0.1:8008/health.
	HealthURL     string
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	// ProbeFailures consecutive failed probes after READY cause a graceful restart.
	ProbeFailures int
	// StartTimeout: a Synapse not ready after this long is restarted. Migrations on big
	// databases take minutes; nothing before READY counts as a liveness failure until then.
	StartTimeout time.Duration
	// StopTimeout is the whole stop budget: waiting for READY, then SIGTERM, then SIGKILL.
	StopTimeout time.Duration
	Policy      child.Policy
}

// Hooks let the caller follow Synapse (status endpoint, metrics, chat notifications). Each may
// be nil; each must be quick.
type Hooks struct {
	Phase   func(p Phase, detail string, at time.Time)
	Probe   func(took time.Duration, ok bool)
	Restart func(reason string)
	Exited  func(st child.Status)
}

// Server owns the Synapse process.
type Server struct {
	cfg   Config
	log   *zap.Logger
	hooks Hooks
	sup   *child.Supervisor
	http  *http.Client

	mu       sync.Mutex
	pid      int
	started  time.Time
	ready    bool
	readyCh  chan struct{} // closed when the current process is ready or has exited
	stopping bool
}

// New prepares a Server; Run starts it.
func New(cfg Config, log *zap.Logger, hooks Hooks) *Server {
	s := &Server{cfg: cfg, log: log, hooks: hooks, http: &http.Client{}, readyCh: make(chan struct{})}
	s.sup = &child.Supervisor{
		Name:        "synapse",
		Spec:        s.spec,
		Policy:      cfg.Policy,
		StopSignal:  syscall.SIGTERM,
		StopTimeout: cfg.StopTimeout,
		OnEvent:     s.onEvent,
	}
	return s
}

func (s *Server) spec() (child.Spec, error) {
	env := append(append([]string(nil), s.cfg.Env...), "NOTIFY_SOCKET="+s.notifyPath())
	return child.Spec{
		Name: "synapse", Path: s.cfg.Argv[0], Args: s.cfg.Argv, Env: env, Dir: s.cfg.Dir,
		Credential: s.cfg.Credential, Stdin: nil, Stdout: s.cfg.Stdout, Stderr: s.cfg.Stderr,
	}, nil
}

func (s *Server) notifyPath() string { return s.cfg.NotifyDir + "/notify.sock" }

// Run starts Synapse and supervises it until it ends for good (Stop, a clean exit, or the restart
// policy giving up). Cancelling ctx is the same as calling Stop.
func (s *Server) Run(ctx context.Context) (child.Status, error) {
	uid := -1
	if c := s.cfg.Credential; c != nil {
		uid = int(c.Uid)
	}
	ns, err := listenNotify(s.cfg.NotifyDir, uid)
	if err != nil {
		return child.Status{Code: 70, Err: err}, err
	}
	defer ns.Close()
	go s.readNotify(ns)
	probeCtx, cancelProbe := context.WithCancel(context.Background())
	defer cancelProbe()
	go s.probeLoop(probeCtx)
	stopOnCancel := context.AfterFunc(ctx, s.Stop)
	defer stopOnCancel()
	return s.sup.Run(context.Background())
}

// onEvent turns the child's state changes into Synapse phases.
func (s *Server) onEvent(e child.Event) {
	now := time.Now()
	switch e.State {
	case child.StateRunning:
		s.mu.Lock()
		s.pid, s.started, s.ready = e.Pid, now, false
		s.readyCh = make(chan struct{})
		s.mu.Unlock()
		s.log.Info("synapse started", zap.Int("pid", e.Pid), zap.Int("restarts", e.Restarts))
		s.phase(PhaseStarting, "Synapse starting (imports and database migrations)", now)
	case child.StateExited:
		s.mu.Lock()
		s.pid, s.ready = 0, false
		closeOnce(s.readyCh)
		stopping := s.stopping
		s.mu.Unlock()
		level := zap.InfoLevel
		if !e.Status.Success() && !stopping {
			level = zap.WarnLevel
		}
		s.log.Log(level, "synapse exited", zap.Stringer("status", e.Status), zap.Int("exit_code", e.Status.ExitCode()))
		if s.hooks.Exited != nil {
			s.hooks.Exited(e.Status)
		}
		s.phase(PhaseExited, e.Status.String(), now)
	case child.StateRestarting:
		// Only crashes come this way; graceful restarts go through restart().
		if s.hooks.Restart != nil {
			s.hooks.Restart(ReasonCrash)
		}
		s.log.Info("synapse restarting after a crash", zap.Duration("in", e.Delay), zap.Int("restarts", e.Restarts))
		s.phase(PhaseRestarting, "after a crash", now.Add(e.Delay))
	case child.StateGaveUp:
		s.log.Error("synapse keeps failing; giving up", zap.Int("restarts", e.Restarts), zap.Stringer("status", e.Status))
	}
}

func (s *Server) phase(p Phase, detail string, at time.Time) {
	if s.hooks.Phase != nil {
		s.hooks.Phase(p, detail, at)
	}
}

// restart stops Synapse gracefully and starts it again at once, reporting why.
func (s *Server) restart(reason string) {
	if s.hooks.Restart != nil {
		s.hooks.Restart(reason)
	}
	s.log.Info("synapse restarting gracefully", zap.String("reason", reason))
	s.sup.Restart()
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// readNotify handles Synapse's notify messages until the socket is closed. Only messages from
// the Synapse process group count.
func (s *Server) readNotify(ns *notifySocket) {
	for {
		msg, err := ns.read()
		if err != nil {
			return
		}
		s.mu.Lock()
		pid := s.pid
		s.mu.Unlock()
		if pid == 0 || !fromGroup(msg.pid, pid) {
			s.log.Warn("notify message from a process that is not Synapse; ignored", zap.Int("sender", msg.pid))
			continue
		}
		if st, ok := msg.fields["STATUS"]; ok {
			s.log.Debug("synapse status", zap.String("status", st))
		}
		switch {
		case msg.fields["READY"] == "1":
			s.markReady("NOTIFY_SOCKET READY=1")
		case msg.fields["STOPPING"] == "1":
			s.mu.Lock()
			s.ready = false
			s.mu.Unlock()
			s.phase(PhaseStopping, "Synapse shutting down", time.Now())
		case msg.fields["RELOADING"] == "1":
			s.log.Info("synapse reloading")
		}
	}
}

// fromGroup reports whether sender is pgid's leader or in its process group.
func fromGroup(sender, pgid int) bool {
	if sender == pgid {
		return true
	}
	g, err := syscall.Getpgid(sender)
	return err == nil && g == pgid
}

func (s *Server) markReady(how string) {
	s.mu.Lock()
	if s.ready || s.pid == 0 {
		s.mu.Unlock()
		return
	}
	s.ready = true
	took := time.Since(s.started)
	closeOnce(s.readyCh)
	s.mu.Unlock()
	s.log.Info("synapse ready", zap.String("signal", how), zap.Duration("after", took))
	s.phase(PhaseReady, "", time.Now())
}

// Ready reports whether the running Synapse has announced readiness.
func (s *Server) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// probeLoop checks GET /health: before READY a success also counts as ready (for a Synapse that
// does not speak the notify protocol) and only the start timeout counts as a liveness failure;
// after READY, ProbeFailures failures in a row restart Synapse gracefully.
func (s *Server) probeLoop(ctx context.Context) {
	if s.cfg.HealthURL == "" || s.cfg.ProbeInterval <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.ProbeInterval)
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		pid, ready, started, stopping := s.pid, s.ready, s.started, s.stopping
		s.mu.Unlock()
		if pid == 0 || stopping {
			fails = 0
			continue
		}
		took, err := probe(ctx, s.http, s.cfg.HealthURL, s.cfg.ProbeTimeout)
		if s.hooks.Probe != nil && ready {
			s.hooks.Probe(took, err == nil)
		}
		switch {
		case !ready && err == nil:
			s.markReady("GET /health")
		case !ready && s.cfg.StartTimeout > 0 && time.Since(started) > s.cfg.StartTimeout:
			s.log.Error("synapse did not become ready within the start timeout; restarting it",
				zap.Duration("start_timeout", s.cfg.StartTimeout))
			s.restart(ReasonStartTimeout)
		case ready && err != nil:
			fails++
			s.log.Warn("synapse health probe failed", zap.Error(err), zap.Int("failures", fails), zap.Int("threshold", s.cfg.ProbeFailures))
			if fails >= s.cfg.ProbeFailures {
				fails = 0
				s.restart(ReasonProbe)
			}
		case ready:
			fails = 0
		}
	}
}

// Stop ends Synapse within StopTimeout: if it is still starting it first waits for READY (a
// SIGTERM then would kill it mid-migration), then sends SIGTERM, then SIGKILL when the budget is
// spent. It returns at once; Run returns when Synapse has exited.
func (s *Server) Stop() {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return
	}
	s.stopping = true
	readyCh, ready, pid := s.readyCh, s.ready, s.pid
	s.mu.Unlock()
	s.sup.Drain()
	deadline := time.Now().Add(s.cfg.StopTimeout)
	go func() {
		if pid != 0 && !ready {
			s.log.Info("stop requested while Synapse is starting: waiting for it to be ready first",
				zap.Duration("budget", s.cfg.StopTimeout))
			s.phase(PhaseStopping, "waiting for Synapse to finish starting", time.Now())
			t := time.NewTimer(time.Until(deadline))
			select {
			case <-readyCh:
			case <-t.C:
				s.log.Warn("synapse still not ready; stopping it anyway")
			}
			t.Stop()
		}
		s.phase(PhaseStopping, "Synapse shutting down", time.Now())
		remaining := time.Until(deadline)
		if remaining < time.Second {
			remaining = time.Second
		}
		s.sup.StopWith(syscall.SIGTERM, remaining)
	}()
}

// ErrNotReady is returned by Reload before Synapse is ready: it has no SIGHUP handler then.
var ErrNotReady = errors.New("synapse is not ready")

// Reload sends SIGHUP, which makes Synapse re-read its log config, caches and TLS files. Before
// READY, SIGHUP would kill it, so Reload refuses with ErrNotReady.
func (s *Server) Reload() error {
	if !s.Ready() {
		return ErrNotReady
	}
	return s.sup.Signal(syscall.SIGHUP)
}

// Restart stops Synapse gracefully and starts it again (a config change SIGHUP cannot apply).
func (s *Server) Restart(reason string) { s.restart(reason) }

// Signal forwards an operator's signal. SIGHUP goes through Reload's check.
func (s *Server) Signal(sig syscall.Signal) error {
	if sig != syscall.SIGHUP {
		return s.sup.Signal(sig)
	}
	err := s.Reload()
	if errors.Is(err, ErrNotReady) {
		s.log.Warn("SIGHUP not forwarded: Synapse is still starting and would die of it")
		return nil
	}
	return err
}
