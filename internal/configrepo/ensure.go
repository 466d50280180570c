package configrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"go.uber.org/zap"
)

// Result describes the tree that is live after Ensure.
type Result struct {
	Commit  string // commit id of the live tree
	Dir     string // stable path of the live tree: <Target>/config
	Tree    string // the directory <Target>/config points to right now
	Changed bool   // whether Ensure swapped in a new tree
}

// Update tells a Syncer's caller that a new commit went live.
type Update struct {
	From, To string   // commit ids (From is empty after the first clone)
	Changed  []string // paths that differ between the two trees
	Dir      string   // stable path of the live tree: <Target>/config
	Tree     string   // the directory that just became live
}

// Reject tells a Syncer's caller that a new commit was not applied; the old tree stays live and
// the commit is not tried again until the remote moves.
type Reject struct {
	Commit string
	Err    error
}

// Ensure makes the target directory hold the wanted commit of cfg.URL: it clones into a missing or
// empty target, updates a clone of its own, and refuses anything else. New trees are validated,
// then swapped in atomically. It is the entrypoint's start-up step; the Syncer repeats it later.
func Ensure(ctx context.Context, cfg Config, log *zap.Logger) (Result, error) {
	r, err := openRepo(cfg, log)
	if err != nil {
		return Result{}, err
	}
	up, err := r.update(ctx, nil)
	if err != nil {
		return Result{}, err
	}
	rev, commit, err := r.lay.live()
	if err != nil {
		return Result{}, &Error{Step: "inspect", URL: r.src.redacted, Kind: ErrConfig, Err: err}
	}
	return Result{Commit: commit, Dir: r.lay.liveLink(), Tree: r.lay.revDir(rev), Changed: up != nil}, nil
}

// repo is the shared machinery of Ensure and the Syncer for one target directory. mu serialises
// updates: the swap protocol assumes a single writer.
type repo struct {
	mu    sync.Mutex
	cfg   Config
	src   *source
	log   *zap.Logger
	lay   layout
	state *state
	fetch *fetcher
	co    *checkout
}

// openRepo validates cfg, inspects the target and opens (or initialises) our bare repository.
func openRepo(cfg Config, log *zap.Logger) (*repo, error) {
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	src, err := parseSource(cfg)
	if err != nil {
		return nil, err
	}
	lay := layout{target: cfg.Target}
	status, st, err := lay.inspect(src.identity)
	if err != nil {
		return nil, wrap("inspect "+cfg.Target+" for", src.redacted, err)
	}
	if status == targetFresh {
		if err := os.MkdirAll(lay.stateDir(), 0o755); err != nil {
			return nil, wrap("prepare", src.redacted, err)
		}
		st = &state{URL: src.identity}
		// The marker goes first: an interrupted first clone leaves a directory we recognise.
		if err := lay.writeState(st); err != nil {
			return nil, wrap("prepare", src.redacted, err)
		}
	}
	storage := filesystem.NewStorage(osfs.New(lay.repoDir()), cache.NewObjectLRUDefault())
	if _, err := os.Stat(filepath.Join(lay.repoDir(), "HEAD")); errors.Is(err, fs.ErrNotExist) {
		if _, err := git.Init(storage, nil); err != nil {
			return nil, wrap("prepare", src.redacted, err)
		}
	}
	r := &repo{cfg: cfg, src: src, log: log.With(zap.String("repo", src.redacted)), lay: lay, state: st}
	r.fetch = &fetcher{src: src, cfg: cfg, st: storage, scratch: lay.scratch(), log: r.log}
	r.co = &checkout{st: storage, cfg: cfg, log: r.log}
	return r, nil
}

// update fetches the wanted ref and, when it names a different commit than the live one (or the
// live tree was modified and DiscardLocalChanges is set), validates and swaps in a new tree. It
// returns nil when nothing changed. skip is passed to the fetcher (see fetcher.fetch).
func (r *repo) update(ctx context.Context, skip func(plumbing.Hash) bool) (*Update, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	liveRev, liveCommit, err := r.lay.live()
	if err != nil {
		return nil, wrap("inspect", r.src.redacted, err)
	}
	step := "fetch"
	if liveCommit == "" {
		step = "clone"
	}
	res, err := r.fetch.fetch(ctx, step, skip)
	if err != nil {
		return nil, err
	}
	if res.commit.IsZero() { // skipped: the remote has not moved
		return nil, nil
	}
	return r.apply(ctx, res.commit, liveRev, liveCommit)
}

// apply moves the target to commit. Local changes to the live tree stop it unless the operator
// opted in; a failed validation leaves everything as it was.
func (r *repo) apply(ctx context.Context, commit plumbing.Hash, liveRev, liveCommit string) (*Update, error) {
	to := commit.String()
	entries, err := r.co.flatten(commit)
	if err != nil {
		return nil, wrap("checkout "+to+" from", r.src.redacted, err)
	}
	if liveCommit != "" {
		dirty, err := r.localChanges(liveRev, liveCommit)
		if err != nil {
			return nil, err
		}
		if liveCommit == to && !dirty {
			return nil, nil
		}
	}
	rev := revName(to)
	revDir := r.lay.revDir(rev)
	if err := r.co.write(entries, revDir); err != nil {
		_ = os.RemoveAll(revDir)
		return nil, wrap("checkout "+to+" from", r.src.redacted, err)
	}
	if r.cfg.Validate != nil {
		if err := r.cfg.Validate(ctx, revDir); err != nil {
			_ = os.RemoveAll(revDir)
			if ctx.Err() != nil {
				return nil, wrap("validate "+to+" from", r.src.redacted, ctx.Err())
			}
			return nil, &Error{Step: "validate " + to + " from", URL: r.src.redacted, Kind: ErrConfig, Err: err}
		}
	}
	chown := r.cfg.Chown && os.Geteuid() == 0
	if r.cfg.Chown && !chown {
		r.log.Info("not root: leaving file ownership as is", zap.Int("uid", r.cfg.UID), zap.Int("gid", r.cfg.GID))
	}
	names := topLevel(entries)
	if err := r.lay.addLinks(r.state, names, chown, r.cfg.UID, r.cfg.GID); err != nil {
		_ = os.RemoveAll(revDir)
		return nil, wrap("expose "+to+" from", r.src.redacted, err)
	}
	if err := r.lay.swap(rev, chown, r.cfg.UID, r.cfg.GID); err != nil {
		_ = os.RemoveAll(revDir)
		return nil, wrap("swap "+to+" from", r.src.redacted, err)
	}
	var keep []string
	for _, n := range names {
		if linkable(n) {
			keep = append(keep, n)
		}
	}
	r.state.Previous = liveRev
	if err := r.lay.removeLinks(r.state, keep); err != nil {
		return nil, wrap("expose "+to+" from", r.src.redacted, err)
	}
	if err := r.lay.gc(rev, liveRev); err != nil {
		r.log.Warn("removing old trees failed", zap.Error(err))
	}
	changed, err := changedPaths(r.fetch.st, plumbing.NewHash(liveCommit), commit, entries)
	if err != nil {
		r.log.Warn("listing changed paths failed", zap.Error(err))
	}
	up := &Update{From: liveCommit, To: to, Changed: changed, Dir: r.lay.liveLink(), Tree: revDir}
	r.log.Info("configuration updated", zap.String("from", liveCommit), zap.String("to", to),
		zap.Int("changed", len(changed)))
	return up, nil
}

// localChanges checks the live tree against its commit. It reports whether the tree is dirty and
// fails when it is dirty and the operator did not allow discarding the changes.
func (r *repo) localChanges(liveRev, liveCommit string) (bool, error) {
	entries, err := r.co.flatten(plumbing.NewHash(liveCommit))
	if err != nil {
		return false, wrap("inspect live tree "+liveCommit+" of", r.src.redacted, err)
	}
	changes, err := localChanges(r.fetch.st, entries, r.lay.revDir(liveRev))
	if err != nil {
		return false, wrap("inspect live tree "+liveCommit+" of", r.src.redacted, err)
	}
	if len(changes) == 0 {
		return false, nil
	}
	if !r.cfg.DiscardLocalChanges {
		return true, &Error{Step: "update", URL: r.src.redacted, Kind: ErrConfig,
			Err: fmt.Errorf("the live configuration in %s was modified locally (%s); commit the changes to the repository, or set DiscardLocalChanges to replace them", r.lay.liveLink(), summarize(changes))}
	}
	r.log.Warn("discarding local changes to the live configuration", zap.Strings("changes", changes))
	return true, nil
}
