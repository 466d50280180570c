package main

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/ovrclk/synapse-entrypoint/internal/keybase"
	"github.com/ovrclk/synapse-entrypoint/internal/status"
)

// keybaseStopBudget bounds Keybase's whole shutdown (logout, ctl stop, daemons), which runs after
// Synapse has stopped: together they stay inside the 30 s Kubernetes and Akash give.
const keybaseStopBudget = 8 * time.Second

// startKeybase starts the Keybase daemons and logs in when a user and a paper key are
// configured. It returns a non-zero exit code when Keybase is configured but cannot be used:
// 78 for wrong credentials, 69 when it stays unavailable.
func (a *app) startKeybase(ctx context.Context) (*keybase.Keybase, int) {
	if !a.s.keybaseEnabled() {
		if a.s.KeybaseUsername != "" || a.s.KeybasePaperkey != "" {
			a.log.Warn("Keybase not started: set both KEYBASE_USERNAME and KEYBASE_PAPERKEY (or KEYBASE_PAPERKEY_FILE)")
		}
		return nil, 0
	}
	a.tracker.Set(status.PhaseKeybase, "logging in as "+a.s.KeybaseUsername)
	kb, err := keybase.Start(ctx, keybase.Config{
		Username:     a.s.KeybaseUsername,
		PaperKey:     keybase.NewSecret(a.s.KeybasePaperkey),
		HomeDir:      a.s.KeybaseHome,
		AllowRoot:    a.s.KeybaseAllowRoot,
		ReadyTimeout: a.s.KeybaseReadyTimeout,
		Notify:       a.s.KeybaseNotify,
		BaseEnv:      childEnv(a.env),
	}, a.log.Named("keybase"))
	if err != nil {
		if ctx.Err() != nil {
			return nil, a.stoppedEarly()
		}
		return nil, a.fail(keybase.ExitCode(err), "keybase", err)
	}
	a.notify = kbNotifier{kb: kb}
	// The daemons are supervised inside; if they give up, Synapse keeps running on the config it
	// has, and only sync and notifications suffer.
	go func() {
		if err := kb.Run(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("keybase gave up; Synapse keeps running, config sync from keybase:// will fail", zap.Error(err))
		}
	}()
	return kb, 0
}

// stopKeybase logs out and stops the daemons, after Synapse, within keybaseStopBudget.
func (a *app) stopKeybase(kb *keybase.Keybase) {
	ctx, cancel := context.WithTimeout(context.Background(), keybaseStopBudget)
	defer cancel()
	if err := kb.Stop(ctx); err != nil {
		a.log.Warn("keybase stop", zap.Error(err))
	}
}

// kbNotifier sends notifications to the Keybase chat channel; sending is asynchronous and never
// blocks or fails the caller.
type kbNotifier struct{ kb *keybase.Keybase }

func (n kbNotifier) notify(event keybase.EventKind, text string) {
	n.kb.Notify(context.Background(), event, text)
}
