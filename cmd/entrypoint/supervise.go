package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/oklog/run"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ovrclk/synapse-entrypoint/internal/child"
	"github.com/ovrclk/synapse-entrypoint/internal/pid1"
)

// superviseCommand runs argv once, like tini: signals relayed to its process group, SIGTERM and
// SIGINT followed by SIGKILL after STOP_TIMEOUT, and its exit status returned.
func superviseCommand(log *zap.Logger, s Settings, argv, env []string) int {
	logChild := logEvent(log, zap.DebugLevel)
	sup := &child.Supervisor{
		Name: filepath.Base(argv[0]),
		Spec: func() (child.Spec, error) {
			return child.Spec{
				Path: argv[0], Args: argv, Env: childEnv(env),
				Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
				Foreground: true,
			}, nil
		},
		Policy:      child.Policy{Restart: child.RestartNever},
		StopTimeout: s.StopTimeout,
		OnEvent: func(e child.Event) {
			logChild(e)
			if e.State == child.StateRunning {
				log.Debug("released start-up pages", zap.Int("bytes", pid1.ReleaseStartupPages()))
			}
		},
	}
	var (
		g      run.Group
		status child.Status
	)
	g.Add(func() error {
		st, err := sup.Run(context.Background())
		status = st
		return err
	}, func(error) { sup.Stop(syscall.SIGTERM) })
	addSignalActor(&g, log, sup, sup.Stop)
	if err := g.Run(); err != nil {
		if _, ok := child.StartStatus(err); ok {
			log.Error("cannot start command", zap.Strings("argv", argv), zap.Error(err), zap.Int("exit_code", status.ExitCode()))
		}
	}
	return status.ExitCode()
}

// signaller is what the signal actor forwards signals to.
type signaller interface {
	Signal(sig syscall.Signal) error
}

// addSignalActor relays the signals the init passes on: SIGTERM and SIGINT call stop with the
// signal (command mode forwards it, so SIGINT stays SIGINT); job-control signals the kernel sends
// to background processes that touch the terminal (TTIN, TTOU) are dropped, since relaying
// them would stop the child for the supervisor's own output; everything else is forwarded.
func addSignalActor(g *run.Group, log *zap.Logger, sup signaller, stop func(syscall.Signal)) {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, pid1.Relayable()...)
	quit := make(chan struct{})
	g.Add(func() error {
		for {
			select {
			case s := <-sigs:
				sig := s.(syscall.Signal)
				log.Debug("signal", zap.Stringer("signal", sig))
				switch sig {
				case syscall.SIGTERM, syscall.SIGINT:
					stop(sig)
				case syscall.SIGTTIN, syscall.SIGTTOU:
				default:
					if err := sup.Signal(sig); err != nil {
						log.Warn("forward signal", zap.Error(err))
					}
				}
			case <-quit:
				return nil
			}
		}
	}, func(error) {
		signal.Stop(sigs)
		close(quit)
	})
}

// logEvent logs a supervised child's state changes at level (failures always at warn or
// above). Command mode logs at debug: like tini, it keeps the terminal to the child.
func logEvent(log *zap.Logger, level zapcore.Level) func(child.Event) {
	return func(e child.Event) {
		fields := []zap.Field{zap.String("child", e.Name), zap.String("state", string(e.State))}
		if e.Pid != 0 {
			fields = append(fields, zap.Int("pid", e.Pid))
		}
		switch e.State {
		case child.StateExited, child.StateGaveUp:
			fields = append(fields, zap.Stringer("status", e.Status), zap.Int("exit_code", e.Status.ExitCode()))
		case child.StateRestarting:
			fields = append(fields, zap.Duration("in", e.Delay), zap.Int("restarts", e.Restarts))
		}
		lvl := level
		if e.State == child.StateGaveUp || (e.State == child.StateExited && !e.Status.Success() && lvl < zapcore.WarnLevel) {
			lvl = zapcore.WarnLevel
		}
		log.Log(lvl, "child "+string(e.State), fields...)
	}
}

// secretEnv are the entrypoint's own secrets: they never reach a child that does not need them.
var secretEnv = map[string]bool{
	"KEYBASE_PAPERKEY":     true,
	"CONFIG_REPO_PASSWORD": true,
}

// childEnv is env without the entrypoint's secrets.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !secretEnv[name] {
			out = append(out, kv)
		}
	}
	return out
}
