// Package keybase runs Keybase next to Synapse: the `keybase service` and `kbfsfuse
// -mount-type=none` daemons (supervised, restarted with back-off, as an unprivileged user when
// possible), a paper-key login with `keybase oneshot`, copies of bare git repositories out of KBFS
// for the configuration repository, and rate-limited chat notifications through
// go-keybase-chat-bot (kbchat).
//
// The paper key reaches exactly one process, `keybase oneshot`, through its environment: it is never
// in an argv, never logged, never in the environment of any other child. We run the oneshot ourselves
// rather than through kbchat (see login.go for what kbchat does and why).
//
// Wiring in cmd/: Start (exit with ExitCode(err) when it fails: 78 for credentials and
// configuration, 69 for Keybase unavailable); hand the *Keybase to configrepo as its KeybaseCopier;
// run Run in the oklog/run group with Stop as its interrupt, called after Synapse has stopped;
// Notify at each event (a nil *Keybase ignores it, so no Keybase means no notifications).
//
// This package uses os/exec and kbchat (which waits on its own children), so it must run in the
// supervisor process, never next to the wait4(-1) reaper of PID 1 (docs: shared notes pid1.md).
package keybase

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/child"
	"go.uber.org/zap"
)

// Keybase is a started, logged-in Keybase. Its methods are safe for concurrent use.
type Keybase struct {
	cfg     Config
	log     *zap.Logger
	id      identity
	cli     *cli
	workDir string
	wrapper string

	service, kbfs *daemon
	notifier      *notifier

	stopping atomic.Bool
	bg       context.Context // ends when Stop begins: background work (re-login) stops
	cancelBg context.CancelFunc
	relogin  chan struct{} // signalled when the service was restarted: its session is gone
	done     chan struct{} // closed when a daemon ended for good or Stop finished
	doneOnce sync.Once
	errMu    sync.Mutex
	err      error

	stopOnce sync.Once
	stopDone chan struct{}
	stopErr  error
}

// daemon is one supervised long-running Keybase process.
type daemon struct {
	name string
	sup  *child.Supervisor
	done chan struct{} // closed when the supervisor returned
}

// Start starts the daemons, waits until they are ready, logs in with the paper key and, when
// cfg.Notify is set, starts the notifier. On error everything it started is already stopped; the
// error is an *Error whose kind (ErrConfig, ErrCredentials, ErrUnavailable) ExitCode maps.
func Start(ctx context.Context, cfg Config, log *zap.Logger) (*Keybase, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	id, err := resolveIdentity(cfg)
	if err != nil {
		return nil, err
	}
	bin, err := findBinary(cfg.Binary)
	if err != nil {
		return nil, err
	}
	kbfsBin, err := findBinary(cfg.KBFSBinary)
	if err != nil {
		return nil, err
	}
	home := cfg.HomeDir
	if home == "" {
		home = id.home
	}
	if home == "" {
		return nil, &Error{Step: "configure", Kind: ErrConfig, Hint: fmt.Sprintf("user %q has no home directory: set the Keybase home", id.name)}
	}
	if err := prepareHome(home, id); err != nil {
		return nil, err
	}
	k := &Keybase{cfg: cfg, log: log, id: id, done: make(chan struct{}), stopDone: make(chan struct{}), relogin: make(chan struct{}, 1)}
	k.bg, k.cancelBg = context.WithCancel(context.Background())
	k.cli = &cli{bin: bin, home: cfg.HomeDir, env: childEnv(cfg.BaseEnv, id, home), secret: cfg.PaperKey, log: log}
	if id.switchTo {
		k.cli.cred = &syscall.Credential{Uid: uint32(id.uid), Gid: uint32(id.gid), Groups: []uint32{}}
	}
	if k.workDir, err = os.MkdirTemp(cfg.TempDir, "keybase-"); err != nil {
		return nil, fmt.Errorf("keybase: private working directory: %w", err)
	}
	team, channel, _ := ParseTarget(cfg.Notify)
	if team != "" {
		sh, env, setpriv, err := wrapperTools(id.switchTo)
		if err == nil {
			k.wrapper, err = writeWrapper(k.workDir, sh, env, setpriv, k.cli)
		}
		if err != nil {
			_ = os.RemoveAll(k.workDir)
			return nil, &Error{Step: "configure", Kind: ErrConfig, Hint: "notifications need sh, env and setpriv", Err: err}
		}
	}
	log.Info("starting keybase", zap.String("user", cfg.Username), zap.String("run_as", id.name),
		zap.Int("uid", id.uid), zap.String("home", home), zap.Bool("allow_root", id.asRoot))

	// The service first: kbfsfuse exits at once when the service socket is not there (libfs
	// InitError), which would only burn its restart budget. Then KBFS, then both must answer.
	readyBy := time.Now().Add(cfg.ReadyTimeout)
	k.service = k.startDaemon("keybase service", bin, k.serviceArgs())
	if err := k.waitReady(ctx, readyBy, false); err != nil {
		k.abort(err)
		return nil, err
	}
	k.kbfs = k.startDaemon("kbfsfuse", kbfsBin, []string{kbfsBin, "-mount-type=none"})
	if err := k.waitReady(ctx, readyBy, true); err != nil {
		k.abort(err)
		return nil, err
	}
	if err := k.login(ctx); err != nil {
		k.abort(err)
		return nil, err
	}
	log.Info("keybase logged in", zap.String("user", cfg.Username))
	if team != "" {
		k.notifier = newNotifier(cfg, team, channel, k.wrapper, log)
		go k.notifier.run()
	}
	go k.reloginLoop()
	return k, nil
}

// findBinary resolves a program once, so a missing keybase is one clear error at start.
func findBinary(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", &Error{Step: "configure", Kind: ErrUnavailable, Reason: ErrBinaryNotFound, Hint: name, Err: err}
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return p, nil
}

// prepareHome creates the Keybase home and, when Keybase runs as another user, gives it to that
// user: the service writes its config, keys cache and socket there.
func prepareHome(home string, id identity) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return &Error{Step: "configure", Kind: ErrConfig, Hint: "create Keybase home " + home, Err: err}
	}
	if id.switchTo {
		var st syscall.Stat_t
		if err := syscall.Stat(home, &st); err != nil {
			return &Error{Step: "configure", Kind: ErrConfig, Hint: "Keybase home " + home, Err: err}
		}
		if int(st.Uid) != id.uid {
			if err := os.Lchown(home, id.uid, id.gid); err != nil {
				return &Error{Step: "configure", Kind: ErrConfig, Hint: fmt.Sprintf("give Keybase home %s to %s", home, id.name), Err: err}
			}
		}
	}
	return nil
}

// serviceArgs is the service's argv: `keybase [--home H] service`.
func (k *Keybase) serviceArgs() []string {
	a := []string{k.cli.bin}
	if k.cli.home != "" {
		a = append(a, "--home", k.cli.home)
	}
	return append(a, "service")
}

// startDaemon supervises one daemon in the background. Its environment is the daemons' (no paper
// key). When the supervisor returns while we are not stopping, Keybase is unavailable: Run returns.
func (k *Keybase) startDaemon(name, path string, args []string) *daemon {
	d := &daemon{name: name, done: make(chan struct{})}
	started := make(chan struct{})
	var startedOnce sync.Once
	d.sup = &child.Supervisor{
		Name: name,
		Spec: func() (child.Spec, error) {
			return child.Spec{Name: name, Path: path, Args: args, Env: k.cli.env, Dir: "/",
				Stdout: k.cfg.DaemonOutput, Stderr: k.cfg.DaemonOutput, Credential: k.cli.cred}, nil
		},
		Policy: k.cfg.DaemonPolicy,
		// Long enough to cover `ctl stop` and the wait after it (see stop); Stop escalates itself.
		StopTimeout: 3 * k.cfg.StopTimeout,
		OnEvent: func(e child.Event) {
			if e.State == child.StateRunning || e.State == child.StateExited {
				startedOnce.Do(func() { close(started) })
			}
			fields := []zap.Field{zap.String("daemon", e.Name), zap.String("state", string(e.State)), zap.Int("restarts", e.Restarts)}
			if e.Pid != 0 {
				fields = append(fields, zap.Int("pid", e.Pid))
			}
			switch e.State {
			case child.StateExited:
				fields = append(fields, zap.Stringer("status", e.Status))
			case child.StateRestarting:
				fields = append(fields, zap.Duration("delay", e.Delay), zap.Stringer("status", e.Status))
			}
			if e.State == child.StateRunning && e.Restarts > 0 && name == "keybase service" {
				// A restarted service has no session (oneshot devices live in its memory).
				select {
				case k.relogin <- struct{}{}:
				default:
				}
			}
			if e.State == child.StateRestarting || e.State == child.StateGaveUp {
				k.log.Warn("keybase daemon", fields...)
			} else {
				k.log.Info("keybase daemon", fields...)
			}
		},
	}
	go func() {
		defer close(d.done)
		st, err := d.sup.Run(context.Background())
		if k.stopping.Load() {
			return
		}
		reason := ErrDaemonExited
		if err == nil {
			err = fmt.Errorf("%s %v", name, st)
		}
		k.fail(&Error{Step: name, Kind: ErrUnavailable, Reason: reason, Hint: "Keybase cannot work without it", Err: err})
	}()
	// Return once the first process exists (or could not be started), so what follows (ctl wait)
	// really runs after it.
	select {
	case <-started:
	case <-d.done:
	}
	return d
}

// reloginLoop logs in again after every service restart: the oneshot session lived in the dead
// service's memory. It waits for readiness again (kbfsfuse reconnects by itself), then has the
// notifier reconnect its chat pipes, which were talking to the dead service. A failure makes
// Keybase fail (Run returns) unless we are stopping.
func (k *Keybase) reloginLoop() {
	for {
		select {
		case <-k.bg.Done():
			return
		case <-k.relogin:
		}
		k.log.Info("keybase service restarted, logging in again")
		err := k.waitReady(k.bg, time.Now().Add(k.cfg.ReadyTimeout), true)
		if err == nil {
			err = k.login(k.bg)
		}
		if k.bg.Err() != nil {
			return
		}
		if err != nil {
			k.fail(fmt.Errorf("log in again after a service restart: %w", err))
			return
		}
		k.log.Info("keybase logged in again", zap.String("user", k.cfg.Username))
		if k.notifier != nil {
			k.notifier.reconnect()
		}
	}
}

// fail records the first fatal error and wakes Run.
func (k *Keybase) fail(err error) {
	k.errMu.Lock()
	if k.err == nil {
		k.err = err
		k.log.Error("keybase failed", zap.Error(err))
	}
	k.errMu.Unlock()
	k.doneOnce.Do(func() { close(k.done) })
}

// Err returns why Keybase stopped working, or nil.
func (k *Keybase) Err() error {
	k.errMu.Lock()
	defer k.errMu.Unlock()
	return k.err
}

// daemonFailure reports a daemon that ended for good during start, ending retries at once.
func (k *Keybase) daemonFailure() error {
	select {
	case <-k.done:
		return k.Err()
	default:
		return nil
	}
}

// Done is closed when a daemon ended for good (the restart budget ran out; Err says why) or after
// Stop.
func (k *Keybase) Done() <-chan struct{} { return k.done }

// Run blocks until a daemon ends for good (returning an ErrUnavailable error), Stop finishes
// (returning nil) or ctx ends (returning ctx.Err()). With oklog/run: execute Run, interrupt with Stop.
func (k *Keybase) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-k.done:
		return k.Err()
	}
}

// abort cleans up after a failed Start: no logout (we are not logged in), just the daemons.
func (k *Keybase) abort(cause error) {
	k.log.Warn("keybase start failed, stopping daemons", zap.Error(cause))
	k.stopping.Store(true)
	k.cancelBg()
	ctx, cancel := context.WithTimeout(context.Background(), 4*k.cfg.StopTimeout)
	defer cancel()
	k.endDaemon(ctx, k.kbfs)
	k.endDaemon(ctx, k.service)
	_ = os.RemoveAll(k.workDir)
	k.doneOnce.Do(func() { close(k.done) })
}

// Stop shuts Keybase down in order, each step under cfg.StopTimeout and all of it under ctx (once
// ctx ends, what is left is SIGKILLed): flush queued
// notifications and end kbchat's `chat api` children, `logout --force`, `ctl stop`, wait for the
// service to exit, then SIGTERM (and after the timeout SIGKILL) whatever daemon is left. Call it
// after Synapse has stopped. It is idempotent; later calls wait for the first and return its result.
func (k *Keybase) Stop(ctx context.Context) error {
	k.stopOnce.Do(func() {
		k.stopErr = k.stop(ctx)
		close(k.stopDone)
	})
	select {
	case <-k.stopDone:
		return k.stopErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (k *Keybase) stop(ctx context.Context) error {
	k.stopping.Store(true)
	k.cancelBg()
	begin := time.Now()
	st := k.cfg.StopTimeout
	var errs []error
	if k.notifier != nil {
		k.notifier.close(ctx, st)
	}
	serviceUp := func() bool {
		select {
		case <-k.service.done:
			return false
		default:
			return ctx.Err() == nil
		}
	}
	// A service that is already gone needs neither: the step's goal is reached.
	step := func(cmd ...string) error {
		_, err := k.cli.run(ctx, st, nil, cmd...)
		switch {
		case err == nil:
		case errors.Is(err, ErrNotRunning):
			k.log.Info("keybase service already gone", zap.String("step", stepName(cmd)))
			err = nil
		default:
			k.log.Warn("keybase shutdown step failed", zap.String("step", stepName(cmd)), zap.Error(err))
			errs = append(errs, err)
		}
		return err
	}
	if serviceUp() {
		_ = step("logout", "--force")
	}
	// From here on the service must not be restarted: Stop(0) marks its supervisor stopping
	// without a signal (`ctl stop` is the polite request); the supervisor SIGKILLs it after its
	// StopTimeout if all else fails.
	k.service.sup.Stop(0)
	if serviceUp() && step("ctl", "stop") == nil {
		waitClosed(ctx, k.service.done, st)
	}
	if err := k.endDaemon(ctx, k.service); err != nil {
		errs = append(errs, err)
	}
	if err := k.endDaemon(ctx, k.kbfs); err != nil {
		errs = append(errs, err)
	}
	_ = os.RemoveAll(k.workDir)
	k.log.Info("keybase stopped", zap.Duration("took", time.Since(begin)), zap.Int("errors", len(errs)))
	k.doneOnce.Do(func() { close(k.done) })
	return errors.Join(errs...)
}

// endDaemon makes sure a daemon is gone: SIGTERM to its group, cfg.StopTimeout to exit, then
// SIGKILL. When ctx has ended it goes straight to SIGKILL.
func (k *Keybase) endDaemon(ctx context.Context, d *daemon) error {
	if d == nil {
		return nil
	}
	if ctx.Err() == nil {
		d.sup.Stop(syscall.SIGTERM)
		if waitClosed(ctx, d.done, k.cfg.StopTimeout) {
			return nil
		}
	}
	d.sup.Stop(syscall.SIGKILL)
	if waitClosed(context.Background(), d.done, k.cfg.StopTimeout) {
		return nil
	}
	return fmt.Errorf("keybase: %s did not exit after SIGKILL", d.name)
}

// waitClosed waits for ch to close, at most timeout or until ctx ends; it reports whether ch closed.
func waitClosed(ctx context.Context, ch <-chan struct{}, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
	case <-t.C:
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
