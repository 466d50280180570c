package configrepo

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Names inside the target directory that belong to this package.
const (
	stateDirName = ".configrepo" // bare repository, state and checked-out trees
	liveLinkName = "config"      // symlink to the live tree, replaced with one rename(2)
	repoDirName  = "repo.git"
	stateName    = "state.json"
	scratchName  = "tmp"
	revPrefix    = "rev-"
	stateVersion = 1
)

// state is the marker that makes a target directory "ours" and the manifest of the top-level
// symlinks we created. The live commit is not stored here: the config symlink is the truth, so a
// crash between the swap and the state write cannot make them disagree.
type state struct {
	Version  int      `json:"version"`
	URL      string   `json:"url"` // source identity, without credentials
	Previous string   `json:"previous,omitempty"`
	Links    []string `json:"links"`
}

// layout names the paths of one target directory.
type layout struct {
	target string
}

func (l layout) stateDir() string          { return filepath.Join(l.target, stateDirName) }
func (l layout) repoDir() string           { return filepath.Join(l.stateDir(), repoDirName) }
func (l layout) statePath() string         { return filepath.Join(l.stateDir(), stateName) }
func (l layout) scratch() string           { return filepath.Join(l.stateDir(), scratchName) }
func (l layout) liveLink() string          { return filepath.Join(l.target, liveLinkName) }
func (l layout) revDir(name string) string { return filepath.Join(l.stateDir(), name) }

// ignoredTopLevel reports whether name is an entry an empty volume may carry (ext4's lost+found)
// that does not make it "non-empty".
func ignoredTopLevel(name string) bool { return name == "lost+found" }

// targetStatus is what inspect found.
type targetStatus int

const (
	targetFresh targetStatus = iota + 1 // missing or empty: clone
	targetOurs                          // a clone we made of the same URL: update
)

// inspect decides what the target directory is. It never modifies anything except creating a
// missing target. Anything that is neither empty nor our clone of the same URL is refused: we
// never delete what is not ours.
func (l layout) inspect(identity string) (targetStatus, *state, error) {
	fi, err := os.Stat(l.target)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(l.target, 0o755); err != nil {
			return 0, nil, err
		}
		return targetFresh, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	if !fi.IsDir() {
		return 0, nil, kindErrorf(ErrConfig, "%s is not a directory", l.target)
	}
	st, err := l.readState()
	if err == nil {
		if st.URL != identity {
			return 0, nil, kindErrorf(ErrConfig, "%s holds a clone of %s, not of %s; remove %s, %s and the links listed in %s to switch repositories",
				l.target, st.URL, identity, l.stateDir(), l.liveLink(), l.statePath())
		}
		return targetOurs, st, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return 0, nil, kindErrorf(ErrConfig, "%s: unreadable state: %v", l.statePath(), err)
	}
	entries, err := os.ReadDir(l.target)
	if err != nil {
		return 0, nil, err
	}
	var names []string
	for _, e := range entries {
		if !ignoredTopLevel(e.Name()) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return targetFresh, nil, nil
	}
	if len(names) > 5 {
		names = append(names[:5], "...")
	}
	return 0, nil, kindErrorf(ErrConfig, "%s is not empty and is not a clone made by this entrypoint (found %s); refusing to touch it — empty it or point the volume elsewhere",
		l.target, strings.Join(names, ", "))
}

// readState loads the marker.
func (l layout) readState() (*state, error) {
	data, err := os.ReadFile(l.statePath())
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("state version %d, want %d", st.Version, stateVersion)
	}
	return &st, nil
}

// writeState replaces the marker atomically (write, fsync, rename) so a crash leaves the old or
// the new manifest, never a torn one that would make the target look foreign.
func (l layout) writeState(st *state) error {
	st.Version = stateVersion
	sort.Strings(st.Links)
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := l.statePath() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, l.statePath()); err != nil {
		return err
	}
	return syncDir(l.stateDir())
}

// live reads the config symlink: the name of the live tree and its commit id, or empty strings
// when nothing is live yet.
func (l layout) live() (rev, commit string, err error) {
	target, err := os.Readlink(l.liveLink())
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", kindErrorf(ErrConfig, "%s exists but is not our symlink: %v", l.liveLink(), err)
	}
	rev = filepath.Base(target)
	commit, ok := revCommit(rev)
	if !ok || filepath.Dir(target) != stateDirName {
		return "", "", kindErrorf(ErrConfig, "%s points to %s, not to a tree of ours", l.liveLink(), target)
	}
	return rev, commit, nil
}

// revName names a new tree directory for commit; the random suffix lets the same commit be
// checked out again (after discarding local changes) beside the live copy.
func revName(commit string) string {
	return revPrefix + commit + "-" + randHex(4)
}

// revCommit extracts the commit id from a tree directory name.
func revCommit(rev string) (string, bool) {
	rest, ok := strings.CutPrefix(rev, revPrefix)
	if !ok {
		return "", false
	}
	commit, _, _ := strings.Cut(rest, "-")
	return commit, isCommitID(commit)
}

// randHex returns 2n random hex digits.
func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// linkable reports whether a top-level name of the repository gets a symlink in the target.
// Our own names and git metadata are never exposed.
func linkable(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00") &&
		name != liveLinkName && name != stateDirName && !ignoredTopLevel(name) &&
		!strings.HasPrefix(name, ".git")
}

// linkTarget is what every top-level symlink points to: through the live symlink, so the swap of
// that one symlink moves every exposed name at once.
func linkTarget(name string) string { return liveLinkName + "/" + name }

// isOurLink reports whether target/name is a symlink of the shape we create.
func (l layout) isOurLink(name string) bool {
	t, err := os.Readlink(filepath.Join(l.target, name))
	return err == nil && t == linkTarget(name)
}

// addLinks creates the symlinks for names not yet in the manifest, after recording them there (so
// a crash never leaves a link we do not know about). A name already taken by something that is not
// our link — a Synapse database, an operator's file — is a conflict and nothing is created.
func (l layout) addLinks(st *state, names []string, chown bool, uid, gid int) error {
	var add []string
	for _, n := range names {
		if !linkable(n) || slices.Contains(st.Links, n) {
			continue
		}
		if _, err := os.Lstat(filepath.Join(l.target, n)); err == nil && !l.isOurLink(n) {
			return kindErrorf(ErrConfig, "the repository's top-level %q would shadow %s, which this entrypoint did not create",
				n, filepath.Join(l.target, n))
		}
		add = append(add, n)
	}
	if len(add) == 0 {
		return nil
	}
	st.Links = append(st.Links, add...)
	if err := l.writeState(st); err != nil {
		return err
	}
	for _, n := range add {
		p := filepath.Join(l.target, n)
		if l.isOurLink(n) {
			continue
		}
		if err := os.Symlink(linkTarget(n), p); err != nil {
			return err
		}
		if chown {
			if err := os.Lchown(p, uid, gid); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeLinks deletes manifest links whose names the live tree no longer has — only if they are
// still the symlinks we made.
func (l layout) removeLinks(st *state, keep []string) error {
	var kept []string
	for _, n := range st.Links {
		if slices.Contains(keep, n) {
			kept = append(kept, n)
			continue
		}
		if linkable(n) && l.isOurLink(n) {
			if err := os.Remove(filepath.Join(l.target, n)); err != nil {
				return err
			}
		}
	}
	st.Links = kept
	return l.writeState(st)
}

// swap makes rev the live tree: a new symlink is created beside config and renamed over it, which
// rename(2) does atomically — every reader resolves either the old tree or the new one.
func (l layout) swap(rev string, chown bool, uid, gid int) error {
	tmp := filepath.Join(l.target, "."+liveLinkName+".tmp-"+randHex(4))
	if err := os.Symlink(filepath.Join(stateDirName, rev), tmp); err != nil {
		return err
	}
	if chown {
		if err := os.Lchown(tmp, uid, gid); err != nil {
			_ = os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, l.liveLink()); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(l.target)
}

// gc removes trees other than the live and the previous one, plus scratch leftovers. It only ever
// looks inside .configrepo.
func (l layout) gc(live, previous string) error {
	entries, err := os.ReadDir(l.stateDir())
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		n := e.Name()
		if (strings.HasPrefix(n, revPrefix) && n != live && n != previous) || n == scratchName {
			errs = append(errs, os.RemoveAll(filepath.Join(l.stateDir(), n)))
		}
	}
	// Leftover temporary live links from an interrupted swap.
	top, err := os.ReadDir(l.target)
	if err != nil {
		return err
	}
	for _, e := range top {
		if strings.HasPrefix(e.Name(), "."+liveLinkName+".tmp-") && e.Type()&fs.ModeSymlink != 0 {
			errs = append(errs, os.Remove(filepath.Join(l.target, e.Name())))
		}
	}
	return errors.Join(errs...)
}
