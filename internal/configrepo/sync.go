package configrepo

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"go.uber.org/zap"
)

// SyncOptions configure a Syncer. OnUpdate and OnReject are called from the Syncer's goroutine;
// they must not block for long.
type SyncOptions struct {
	// Interval between polls; zero or negative disables syncing (Run returns at once).
	Interval time.Duration
	OnUpdate func(Update)
	OnReject func(Reject)
}

// Syncer polls the remote and applies new commits the way Ensure does. It must be the only writer
// of the target directory once it runs (call Ensure first, then Run).
type Syncer struct {
	mu   sync.Mutex // serialises SyncOnce
	r    *repo
	opts SyncOptions
	// lastTip is the remote tip last handled (applied, unchanged or rejected); a poll that sees
	// it again transfers nothing. Guarded by mu.
	lastTip plumbing.Hash
}

// NewSyncer prepares a Syncer for cfg; it checks cfg and the target like Ensure does.
func NewSyncer(cfg Config, opts SyncOptions, log *zap.Logger) (*Syncer, error) {
	r, err := openRepo(cfg, log)
	if err != nil {
		return nil, err
	}
	return &Syncer{r: r, opts: opts}, nil
}

// Run polls every Interval until ctx ends and returns nil then. Failures are logged and retried on
// the next tick; rejections are reported once per remote commit.
func (s *Syncer) Run(ctx context.Context) error {
	if s.opts.Interval <= 0 {
		s.r.log.Info("config repository sync disabled")
		return nil
	}
	clock := s.r.cfg.clock()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-clock.After(s.opts.Interval):
		}
		if _, err := s.SyncOnce(ctx); err != nil && ctx.Err() == nil {
			s.r.log.Warn("config repository sync failed", zap.Error(err))
		}
	}
}

// SyncOnce performs one poll. It returns the update when a new commit went live, nil when
// nothing changed or the commit was rejected (reported through OnReject), and an error for
// failures that will be retried on the next poll (unreachable remote, I/O).
func (s *Syncer) SyncOnce(ctx context.Context) (*Update, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var tip plumbing.Hash
	skip := func(h plumbing.Hash) bool {
		tip = h
		return h == s.lastTip
	}
	up, err := s.r.update(ctx, skip)
	if err == nil {
		if !tip.IsZero() {
			s.lastTip = tip
		}
		if up != nil && s.opts.OnUpdate != nil {
			s.opts.OnUpdate(*up)
		}
		return up, nil
	}
	if ctx.Err() != nil || tip.IsZero() || !rejectable(err) {
		return nil, err
	}
	// The remote's new commit itself is the problem: keep the old tree, report once.
	s.lastTip = tip
	commit := tip.String()
	if c, perr := peelToCommit(s.r.fetch.st, tip); perr == nil {
		commit = c.String()
	}
	s.r.log.Error("new configuration rejected; keeping the live one", zap.String("commit", commit), zap.Error(err))
	if s.opts.OnReject != nil {
		s.opts.OnReject(Reject{Commit: commit, Err: err})
	}
	return nil, nil
}

// rejectable reports whether err is about the new commit's content or the live tree (validation,
// symlink escape, size, local changes), as opposed to a failure worth retrying.
func rejectable(err error) bool {
	return errors.Is(err, ErrConfig)
}
