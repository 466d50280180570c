package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/ovrclk/synapse-entrypoint/internal/configrepo"
	"github.com/ovrclk/synapse-entrypoint/internal/homeserver"
	"github.com/ovrclk/synapse-entrypoint/internal/keybase"
	"github.com/ovrclk/synapse-entrypoint/internal/synapse"
)

// repoConfig turns the settings into the config repository's configuration. Every new tree is
// validated before it goes live.
func (a *app) repoConfig(copier configrepo.KeybaseCopier) configrepo.Config {
	return configrepo.Config{
		URL: a.s.ConfigRepo, Ref: a.s.ConfigRef,
		Username: a.s.ConfigUsername, Password: a.s.ConfigPassword,
		SSHKeyFile: a.s.ConfigSSHKeyFile, KnownHostsFile: a.s.ConfigKnownHosts,
		Target: a.s.DataDir, MaxBytes: a.s.ConfigMaxBytes, NetworkTimeout: a.s.ConfigNetworkTimout,
		Copier: copier, Validate: a.validateTree,
		Chown: root(), UID: a.s.UID, GID: a.s.GID,
		DiscardLocalChanges: a.s.ConfigDiscardLocal,
	}
}

// validateTree validates a tree that is not live yet, as it will be seen once live: files under
// the data dir (the config itself, its log config, signing key, secret files) are read from the
// new tree when it has them.
func (a *app) validateTree(_ context.Context, dir string) error {
	remap := func(p string) string {
		rel, err := filepath.Rel(a.s.DataDir, p)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			return p
		}
		rel = strings.TrimPrefix(rel, "config"+string(filepath.Separator))
		if _, err := os.Lstat(filepath.Join(dir, rel)); err == nil {
			return filepath.Join(dir, rel)
		}
		return p
	}
	_, findings, err := a.load(a.paths, remap)
	if err != nil {
		return err
	}
	if findings.HasErrors(a.s.StrictCheck) {
		var lines []string
		for _, f := range findings {
			if f.Severity == synapse.SeverityError || a.s.StrictCheck {
				lines = append(lines, f.String())
			}
		}
		return &invalidConfig{lines: lines}
	}
	return nil
}

// invalidConfig lists the findings that refused a tree.
type invalidConfig struct{ lines []string }

func (e *invalidConfig) Error() string {
	return fmt.Sprintf("%d error(s):\n  %s", len(e.lines), strings.Join(e.lines, "\n  "))
}

// startSync polls the repository in the background; updates are applied to Synapse.
func (a *app) startSync(ctx context.Context, copier configrepo.KeybaseCopier) error {
	m := a.tracker.Metrics()
	syncer, err := configrepo.NewSyncer(a.repoConfig(copier), configrepo.SyncOptions{
		Interval: a.s.ConfigSyncInterval,
		OnUpdate: a.applyUpdate,
		OnReject: func(r configrepo.Reject) {
			m.IncSyncFailure("invalid")
			a.log.Error("config commit rejected; the running config stays", zap.String("commit", r.Commit), zap.Error(r.Err))
			a.notify.notify(keybase.EventConfigRejected, fmt.Sprintf("config commit %s rejected, still running the previous one:\n%v", short(r.Commit), r.Err))
		},
	}, a.log.Named("sync"))
	if err != nil {
		return err
	}
	go func() {
		if err := syncer.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("config sync stopped", zap.Error(err))
		}
	}()
	return nil
}

// applyUpdate brings Synapse to a new, already validated and swapped-in commit: SIGHUP when only
// what Synapse reloads changed (log config, caches, TLS files), a graceful restart otherwise.
func (a *app) applyUpdate(u configrepo.Update) {
	m := a.tracker.Metrics()
	m.SetConfigCommit(u.To)
	a.mu.Lock()
	srv, old := a.srv, a.cfg
	a.mu.Unlock()
	cfg, findings, err := a.load(a.paths, nil)
	if err != nil || findings.HasErrors(a.s.StrictCheck) {
		// Validated before the swap, so only a race with the environment gets here.
		m.IncSyncFailure("invalid")
		a.log.Error("config invalid after the swap; Synapse keeps its rendered config", zap.Error(err))
		return
	}
	if err := a.install(cfg); err != nil {
		a.log.Error("install new config", zap.Error(err))
		return
	}
	a.mu.Lock()
	a.cfg = cfg
	a.mu.Unlock()
	onlyReloadable, keys := synapse.ReloadableDiff(old, cfg)
	reloadFiles, restartFiles := a.classify(cfg, u.Changed)
	log := a.log.With(zap.String("from", short(u.From)), zap.String("to", short(u.To)), zap.Strings("changed_keys", keys), zap.Strings("changed_files", u.Changed))
	m.IncConfigApplied()
	switch {
	case len(keys) == 0 && len(reloadFiles) == 0 && len(restartFiles) == 0:
		log.Info("new config commit changes nothing Synapse reads")
	case onlyReloadable && len(restartFiles) == 0:
		if err := srv.Reload(); err != nil {
			log.Info("new config commit: Synapse is not ready for SIGHUP; restarting it", zap.Error(err))
			srv.Restart(homeserver.ReasonConfig)
			break
		}
		log.Info("new config commit applied with SIGHUP")
	default:
		log.Info("new config commit needs a restart")
		srv.Restart(homeserver.ReasonConfig)
	}
	a.notify.notify(keybase.EventConfigApplied, fmt.Sprintf("config %s applied (%s → %s)", short(u.To), short(u.From), short(u.To)))
}

// classify sorts changed repository files into those SIGHUP reloads (log config, TLS files) and
// those that need a restart (the signing key); files Synapse does not read are neither.
func (a *app) classify(cfg *synapse.Config, changed []string) (reload, restart []string) {
	reloadable := map[string]bool{}
	for _, f := range cfg.ReloadableFiles() {
		reloadable[filepath.Clean(f)] = true
	}
	for _, c := range changed {
		p := filepath.Join(a.s.DataDir, c)
		switch {
		case reloadable[p]:
			reload = append(reload, c)
		case p == filepath.Clean(cfg.SigningKeyPath()):
			restart = append(restart, c)
		}
	}
	return reload, restart
}

func short(commit string) string {
	if len(commit) > 10 {
		return commit[:10]
	}
	return commit
}
