package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oklog/run"
	"go.uber.org/zap"

	"github.com/ovrclk/synapse-entrypoint/internal/child"
	"github.com/ovrclk/synapse-entrypoint/internal/configrepo"
	"github.com/ovrclk/synapse-entrypoint/internal/homeserver"
	"github.com/ovrclk/synapse-entrypoint/internal/keybase"
	"github.com/ovrclk/synapse-entrypoint/internal/pid1"
	"github.com/ovrclk/synapse-entrypoint/internal/status"
	"github.com/ovrclk/synapse-entrypoint/internal/synapse"
)

// app is the default mode: environment → Keybase → config repository → render and validate →
// Synapse, with the status endpoint showing which step it is in.
type app struct {
	s       Settings
	log     *zap.Logger
	env     []string // the entrypoint's environment (role marker removed)
	args    []string // Synapse arguments other than -c
	paths   []string // the config files Synapse's -c named (the repository's files)
	tracker *status.Tracker
	notify  notifier
	version synapse.Version

	mu      sync.Mutex
	srv     *homeserver.Server
	cfg     *synapse.Config // the config Synapse runs with
	stopSig syscall.Signal  // the signal that asked us to stop, if one did

	releaseOnce sync.Once // start-up pages are released once Synapse is first ready
}

// notifier sends chat notifications; the no-op one is used when Keybase is off.
type notifier interface {
	notify(event keybase.EventKind, text string)
}

type noNotifier struct{}

func (noNotifier) notify(keybase.EventKind, string) {}

// runSynapse is the default mode's whole life; it returns the exit code.
func runSynapse(log *zap.Logger, s Settings, args, env []string) int {
	paths, rest := splitConfigArgs(args)
	if generating(rest) {
		return runGenerate(log, s, args, env)
	}
	if len(paths) == 0 {
		paths = []string{s.ConfigPath}
	}
	a := &app{s: s, log: log, env: env, args: rest, paths: paths, tracker: status.NewTracker(nil, nil), notify: noNotifier{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var g run.Group
	if s.StatusAddr != "" {
		srv, err := status.NewServer(s.StatusAddr, a.tracker.Handler(), log)
		if err != nil {
			log.Error("status endpoint", zap.Error(err))
			return exitConfig
		}
		statusCtx, stopStatus := context.WithCancel(context.Background())
		g.Add(func() error { return srv.Run(statusCtx) }, func(error) { stopStatus() })
	}
	code := exitInternal
	g.Add(func() error {
		code = a.run(ctx)
		return errors.New("synapse supervision ended")
	}, func(error) { cancel() })
	addSignalActor(&g, log, a, func(sig syscall.Signal) {
		a.mu.Lock()
		if a.stopSig == 0 {
			a.stopSig = sig
		}
		a.mu.Unlock()
		cancel()
	})
	g.Run()
	return a.exitCode(code)
}

// exitCode is what the container ends with. A clean stop asked for with SIGTERM is 0 (docker
// stop, Kubernetes); with SIGINT (Ctrl-C under `docker run -it`) it is 130, as for any program
// interrupted at a terminal.
func (a *app) exitCode(code int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if code == 0 && a.stopSig == syscall.SIGINT {
		return 128 + int(syscall.SIGINT)
	}
	return code
}

// Signal forwards an operator's signal to Synapse (SIGHUP only once it is ready).
func (a *app) Signal(sig syscall.Signal) error {
	a.mu.Lock()
	srv := a.srv
	a.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Signal(sig)
}

// run goes through the phases and then supervises Synapse until it ends for good.
func (a *app) run(ctx context.Context) int {
	a.tracker.Set(status.PhaseStarting, "")
	a.version = a.detectVersion()

	// Keybase first: a keybase:// config repository needs it.
	kb, code := a.startKeybase(ctx)
	if code != 0 {
		return code
	}
	if kb != nil {
		defer a.stopKeybase(kb)
	}
	if ctx.Err() != nil {
		return a.stoppedEarly()
	}
	var copier configrepo.KeybaseCopier
	if kb != nil {
		copier = kb
	}
	if a.s.ConfigRepo != "" {
		a.tracker.Set(status.PhaseCloning, configrepo.Redact(a.s.ConfigRepo))
		res, err := configrepo.Ensure(ctx, a.repoConfig(copier), a.log)
		if err != nil {
			if ctx.Err() != nil {
				return a.stoppedEarly()
			}
			return a.fail(configrepo.ExitCode(err), "config repository", err)
		}
		a.log.Info("config repository ready", zap.String("commit", res.Commit), zap.Bool("changed", res.Changed))
		a.tracker.Metrics().SetConfigCommit(res.Commit)
	} else if code := a.ensureEmbeddedDefault(); code != 0 {
		return code
	}
	if ctx.Err() != nil {
		return a.stoppedEarly()
	}

	a.tracker.Set(status.PhaseValidating, strings.Join(a.paths, ", "))
	cfg, findings, err := a.load(a.paths, nil)
	if err != nil {
		return a.fail(exitConfig, "load config", err)
	}
	if a.report(findings) {
		return exitConfig
	}
	if err := a.install(cfg); err != nil {
		return a.fail(exitConfig, "prepare Synapse", err)
	}
	if ctx.Err() != nil {
		return a.stoppedEarly()
	}

	srv := homeserver.New(a.serverConfig(cfg), a.log.Named("synapse"), a.hooks())
	a.mu.Lock()
	a.srv, a.cfg = srv, cfg
	a.mu.Unlock()
	if a.s.ConfigRepo != "" && a.s.ConfigSyncInterval > 0 {
		syncCtx, stopSync := context.WithCancel(ctx)
		defer stopSync()
		if err := a.startSync(syncCtx, copier); err != nil {
			return a.fail(exitConfig, "config sync", err)
		}
	}
	a.notify.notify(keybase.EventStart, fmt.Sprintf("Synapse %s starting", cfg.ServerName()))
	st, err := srv.Run(ctx)
	a.tracker.Set(status.PhaseStopped, st.String())
	if err != nil && !errors.Is(err, child.ErrGaveUp) {
		return a.fail(exitInternal, "run Synapse", err)
	}
	a.notify.notify(keybase.EventShutdown, fmt.Sprintf("Synapse stopped: %s", st))
	return st.ExitCode()
}

// stoppedEarly is a stop request that arrived before Synapse started: nothing failed.
func (a *app) stoppedEarly() int {
	a.log.Info("stopped before Synapse started")
	a.tracker.Set(status.PhaseStopped, "stopped before Synapse started")
	return 0
}

// fail logs the step that failed and returns code.
func (a *app) fail(code int, step string, err error) int {
	a.log.Error(step+" failed", zap.Error(err), zap.Int("exit_code", code))
	a.tracker.Set(status.PhaseStopped, step+" failed")
	return code
}

// detectVersion finds the Synapse version the config is validated for.
func (a *app) detectVersion() synapse.Version {
	v, where, err := synapse.DetectVersion(envLookup(a.env), synapse.DefaultSitePackages())
	switch {
	case err != nil:
		a.log.Warn("cannot tell the Synapse version; validating for the newest", zap.Error(err))
	case where != "":
		a.log.Info("synapse version", zap.Stringer("version", v), zap.String("from", where))
	}
	return v
}

// ensureEmbeddedDefault writes a fresh config for SYNAPSE_SERVER_NAME into the data dir when
// there is no config repository and no config: `SYNAPSE_SERVER_NAME=localhost` alone is enough
// for a working homeserver.
func (a *app) ensureEmbeddedDefault() int {
	if len(a.paths) != 1 || a.paths[0] != a.s.ConfigPath {
		return 0 // the operator named configs with -c: they must exist
	}
	if _, err := os.Stat(a.s.ConfigPath); !errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if a.s.ServerName == "" {
		return a.fail(exitConfig, "config", fmt.Errorf("%s does not exist and there is nothing to make one from: set CONFIG_REPO to your config repository, or SYNAPSE_SERVER_NAME for a fresh server", a.s.ConfigPath))
	}
	files, err := synapse.GenerateInit(synapse.InitOptions{
		ServerName: a.s.ServerName, ReportStats: a.s.ReportStats, Port: a.s.HTTPPort,
		DataDir: a.s.DataDir, ConfigDir: filepath.Dir(a.s.ConfigPath),
	})
	if err == nil {
		err = synapse.WriteInit(filepath.Dir(a.s.ConfigPath), files)
	}
	if err != nil {
		return a.fail(exitConfig, "generate the embedded default config", err)
	}
	a.log.Info("no config found: generated a fresh one", zap.String("server_name", a.s.ServerName), zap.String("dir", filepath.Dir(a.s.ConfigPath)))
	if root() {
		for _, f := range files {
			_ = os.Chown(filepath.Join(filepath.Dir(a.s.ConfigPath), f.Name), a.s.UID, a.s.GID)
		}
	}
	return 0
}

// load reads and validates the config. remap, when set, redirects files under the data dir into a
// tree that is not live yet (a new commit being validated before the swap).
func (a *app) load(paths []string, remap func(string) string) (*synapse.Config, synapse.Findings, error) {
	if remap == nil {
		remap = func(p string) string { return p }
	}
	readFile := func(p string) ([]byte, error) { return os.ReadFile(remap(p)) }
	mapped := make([]string, len(paths))
	for i, p := range paths {
		mapped[i] = remap(p)
	}
	cfg, err := synapse.Load(mapped, synapse.LoadOptions{
		Env: envLookup(a.env), ReadFile: readFile, WorkDir: a.s.DataDir,
		ReadDir: func(p string) ([]fs.DirEntry, error) { return os.ReadDir(remap(p)) },
	})
	if err != nil {
		return nil, nil, err
	}
	findings := cfg.Validate(synapse.ValidateOptions{
		Version:  a.version,
		ReadFile: readFile,
		Stat:     func(p string) (fs.FileInfo, error) { return os.Stat(remap(p)) },
	})
	return cfg, findings, nil
}

// report prints every finding, one line each (file:line:col: severity rule: message), and
// reports whether they stop Synapse from starting.
func (a *app) report(findings synapse.Findings) bool {
	for _, f := range findings {
		fmt.Fprintln(os.Stderr, f.String())
	}
	errs, warns := findings.Count()
	bad := findings.HasErrors(a.s.StrictCheck)
	if bad {
		first := ""
		for _, f := range findings {
			if f.Severity == synapse.SeverityError || a.s.StrictCheck {
				first = fmt.Sprintf("%s:%d:%d: %s", f.File, f.Line, f.Col, f.Message)
				break
			}
		}
		a.tracker.SetConfigInvalid(first, errs)
		a.log.Error("config is invalid: Synapse not started", zap.Int("errors", errs), zap.Int("warnings", warns), zap.Int("exit_code", exitConfig))
		return true
	}
	a.log.Info("config is valid", zap.Int("warnings", warns))
	return false
}

// install writes the rendered config and makes the directories Synapse writes its own.
func (a *app) install(cfg *synapse.Config) error {
	data, err := cfg.Render()
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(a.s.RenderedConfig), 0o755); err != nil {
		return err
	}
	if err := synapse.WriteRendered(a.s.RenderedConfig, data); err != nil {
		return fmt.Errorf("write %s: %w", a.s.RenderedConfig, err)
	}
	if !root() {
		return nil
	}
	if err := os.Chown(a.s.RenderedConfig, a.s.UID, a.s.GID); err != nil {
		return err
	}
	return a.ownDirs(cfg)
}

// ownDirs makes what Synapse writes (data dir, sqlite database, media store) owned by UID:GID,
// as the official image does. A media store already owned by it is not walked again.
func (a *app) ownDirs(cfg *synapse.Config) error {
	uid, gid := a.s.UID, a.s.GID
	dirs := []string{a.s.DataDir}
	if engine, db := cfg.Database(); engine == synapse.DatabaseSQLite && db != "" && db != ":memory:" {
		dirs = append(dirs, filepath.Dir(db))
		if _, err := os.Stat(db); err == nil {
			if err := os.Chown(db, uid, gid); err != nil {
				return err
			}
		}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
		if err := os.Chown(d, uid, gid); err != nil {
			return err
		}
	}
	if key := cfg.SigningKeyPath(); key != "" {
		if _, err := os.Stat(key); err == nil {
			if err := os.Chown(key, uid, gid); err != nil {
				return err
			}
		}
	}
	if media := cfg.MediaStorePath(); media != "" {
		return chownTree(media, uid, gid)
	}
	return nil
}

// chownTree creates dir and gives it to uid:gid, walking it only when its top was not already
// theirs (a large media store is not walked at every start).
func chownTree(dir string, uid, gid int) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// serverConfig is how homeserver runs Synapse.
func (a *app) serverConfig(cfg *synapse.Config) homeserver.Config {
	argv := append(strings.Fields(a.s.Command), "-c", a.s.RenderedConfig)
	argv = append(argv, a.args...)
	hc := homeserver.Config{
		Argv: argv, Env: childEnv(a.env), Dir: a.s.DataDir,
		Stdout: os.Stdout, Stderr: os.Stderr,
		NotifyDir:     filepath.Join(filepath.Dir(a.s.RenderedConfig), "notify"),
		ProbeInterval: a.s.ProbeInterval, ProbeTimeout: a.s.ProbeTimeout, ProbeFailures: a.s.ProbeFailures,
		StartTimeout: a.s.StartTimeout, StopTimeout: a.s.SynapseStop,
		Policy: a.restartPolicy(),
	}
	if l, ok := cfg.HTTPListener(); ok {
		hc.HealthURL = fmt.Sprintf("http://%s/health", joinHostPort(l.ProbeHost(), l.Port))
	}
	if root() {
		hc.Credential = &syscall.Credential{Uid: uint32(a.s.UID), Gid: uint32(a.s.GID), Groups: []uint32{}}
	}
	return hc
}

func (a *app) restartPolicy() child.Policy {
	mode, err := child.ParseRestartMode(a.s.Restart)
	if err != nil {
		a.log.Warn("SYNAPSE_RESTART: using on-failure", zap.Error(err))
	}
	return child.Policy{Restart: mode, MaxRestarts: a.s.MaxRestarts, Backoff: child.DefaultBackoff}
}

// hooks connect Synapse's phases to the status endpoint, metrics and notifications.
func (a *app) hooks() homeserver.Hooks {
	m := a.tracker.Metrics()
	return homeserver.Hooks{
		Phase: func(p homeserver.Phase, detail string, at time.Time) {
			switch p {
			case homeserver.PhaseStarting:
				a.tracker.Set(status.PhaseMigrating, detail)
			case homeserver.PhaseReady:
				a.tracker.Set(status.PhaseReady, "")
				a.releaseOnce.Do(func() {
					a.log.Debug("released start-up pages", zap.Int("bytes", pid1.ReleaseStartupPages()))
				})
				a.notify.notify(keybase.EventReady, "Synapse is ready")
			case homeserver.PhaseRestarting:
				a.tracker.SetRestarting(at, detail)
			case homeserver.PhaseStopping:
				a.tracker.Set(status.PhaseStopping, detail)
			case homeserver.PhaseExited:
				a.tracker.Set(status.PhaseStopped, detail)
			}
		},
		Probe: m.ObserveProbe,
		Restart: func(reason string) {
			m.IncRestart(restartReason(reason))
			if reason == homeserver.ReasonCrash {
				a.notify.notify(keybase.EventSynapseCrash, "Synapse crashed; restarting it")
			}
		},
	}
}

func restartReason(r string) status.RestartReason {
	switch r {
	case homeserver.ReasonCrash:
		return status.RestartCrash
	case homeserver.ReasonProbe, homeserver.ReasonStartTimeout:
		return status.RestartProbe
	case homeserver.ReasonConfig:
		return status.RestartConfig
	}
	return status.RestartManual
}

// splitConfigArgs takes Synapse's -c/--config-path arguments out of args: those name the
// repository's files, which the entrypoint renders into one config of its own.
func splitConfigArgs(args []string) (paths, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case (a == "-c" || a == "--config-path") && i+1 < len(args):
			paths = append(paths, args[i+1])
			i++
		case strings.HasPrefix(a, "--config-path="):
			paths = append(paths, strings.TrimPrefix(a, "--config-path="))
		default:
			rest = append(rest, a)
		}
	}
	return paths, rest
}

// generating reports the tutorial's `--generate-config` style invocations: Synapse writes files
// and exits, so they are passed through as they are.
func generating(args []string) bool {
	for _, a := range args {
		switch strings.SplitN(a, "=", 2)[0] {
		case "--generate-config", "--generate-keys", "--generate-missing-configs":
			return true
		}
	}
	return false
}

// runGenerate runs Synapse once with the operator's arguments, unchanged.
func runGenerate(log *zap.Logger, s Settings, args, env []string) int {
	argv := append(strings.Fields(s.Command), args...)
	log.Info("passing a config generation request to Synapse", zap.Strings("args", args))
	return superviseCommand(log, s, argv, env)
}

func root() bool { return os.Geteuid() == 0 }

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

// envLookup adapts an environ slice to synapse.Env.
func envLookup(env []string) synapse.EnvFunc {
	return func(name string) (string, bool) {
		for i := len(env) - 1; i >= 0; i-- {
			if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
				return v, true
			}
		}
		return "", false
	}
}
