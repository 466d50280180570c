package configrepo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"go.uber.org/zap"
)

// errSymlinkEscape is returned for a symlink in the repository that points outside of it.
var errSymlinkEscape = errors.New("symlink points outside the repository")

// checkout writes the tree of commit into dir (which must not exist) with our own writer instead
// of go-git's worktree: no .git directory in the live tree, permissions chosen by name (secrets
// 0600), ownership set when configured, every path confined to dir through os.Root, symlinks
// checked before anything is written, and the bytes counted against MaxBytes.
type checkout struct {
	st  storer.EncodedObjectStorer
	cfg Config
	log *zap.Logger
}

// entry is one file of a tree, flattened.
type entry struct {
	path string // slash-separated, relative
	mode filemode.FileMode
	hash plumbing.Hash
}

// flatten lists every blob and symlink under the commit's tree, refusing unsafe names and
// symlinks that leave the repository. Submodules are skipped with a log line.
func (c *checkout) flatten(commit plumbing.Hash) ([]entry, error) {
	cm, err := object.GetCommit(c.st, commit)
	if err != nil {
		return nil, err
	}
	tree, err := cm.Tree()
	if err != nil {
		return nil, err
	}
	var out []entry
	if err := c.walk(tree, "", &out); err != nil {
		return nil, err
	}
	for _, e := range out {
		if e.mode != filemode.Symlink {
			continue
		}
		target, err := c.blobString(e.hash)
		if err != nil {
			return nil, err
		}
		if err := checkSymlink(e.path, target); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// walk recurses through tree, validating every name so a crafted tree cannot write outside dir.
func (c *checkout) walk(tree *object.Tree, prefix string, out *[]entry) error {
	for _, te := range tree.Entries {
		if te.Name == "" || te.Name == "." || te.Name == ".." || strings.ContainsAny(te.Name, "/\x00") ||
			strings.EqualFold(te.Name, ".git") {
			return kindErrorf(ErrConfig, "unsafe path %q in repository", path.Join(prefix, te.Name))
		}
		p := path.Join(prefix, te.Name)
		switch te.Mode {
		case filemode.Dir:
			sub, err := object.GetTree(c.st, te.Hash)
			if err != nil {
				return err
			}
			if err := c.walk(sub, p, out); err != nil {
				return err
			}
		case filemode.Submodule:
			c.log.Warn("skipping git submodule: not supported", zap.String("path", p))
		case filemode.Regular, filemode.Executable, filemode.Deprecated, filemode.Symlink:
			*out = append(*out, entry{path: p, mode: te.Mode, hash: te.Hash})
		default:
			return kindErrorf(ErrConfig, "unsupported file mode %v for %q", te.Mode, p)
		}
	}
	return nil
}

// checkSymlink refuses symlinks that could resolve outside the repository. Targets must be
// relative, and ".." may only appear as a leading run that climbs no higher than the root: the
// directories a link sits in are real directories we create, so those ".." are resolved exactly as
// written, while a ".." after another component could climb out of a directory reached through a
// second symlink (a -> b/../../x with b -> ..). Each component after the leading run descends, and
// any symlink it crosses is itself checked by this rule.
func checkSymlink(p, target string) error {
	if target == "" || path.IsAbs(target) || filepath.IsAbs(target) || strings.ContainsRune(target, 0) {
		return fmt.Errorf("%w: %s -> %s", errSymlinkEscape, p, target)
	}
	depth := strings.Count(p, "/") // directories between the root and the link
	leading := true
	for _, c := range strings.Split(target, "/") {
		switch {
		case c == "..":
			if !leading || depth == 0 {
				return fmt.Errorf("%w: %s -> %s", errSymlinkEscape, p, target)
			}
			depth--
		case c == "" || c == ".":
		default:
			leading = false
		}
	}
	return nil
}

// blobString reads a small blob (a symlink target).
func (c *checkout) blobString(h plumbing.Hash) (string, error) {
	b, err := object.GetBlob(c.st, h)
	if err != nil {
		return "", err
	}
	r, err := b.Reader()
	if err != nil {
		return "", err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, 4096))
	return string(data), err
}

// write materialises entries in dir (created here). The total size is checked against MaxBytes
// before writing, from the object headers, so an oversized tree costs no disk.
func (c *checkout) write(entries []entry, dir string) (err error) {
	var total int64
	for _, e := range entries {
		size, err := c.st.EncodedObject(plumbing.BlobObject, e.hash)
		if err != nil {
			return err
		}
		total += size.Size()
	}
	if total > c.cfg.MaxBytes {
		return fmt.Errorf("%w: checked-out tree is %d bytes, limit %d", errOversized, total, c.cfg.MaxBytes)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	chown := c.cfg.Chown && os.Geteuid() == 0
	dirs := map[string]bool{}
	for _, e := range entries {
		if err := c.mkdirs(root, path.Dir(e.path), dirs, chown); err != nil {
			return err
		}
		if err := c.writeEntry(root, e, chown); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
	}
	if chown {
		if err := os.Lchown(dir, c.cfg.UID, c.cfg.GID); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// mkdirs creates the parents of a file once, 0755, owned like the files.
func (c *checkout) mkdirs(root *os.Root, d string, done map[string]bool, chown bool) error {
	if d == "." || done[d] {
		return nil
	}
	if err := c.mkdirs(root, path.Dir(d), done, chown); err != nil {
		return err
	}
	if err := root.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := root.Chmod(d, 0o755); err != nil {
		return err
	}
	if chown {
		if err := root.Lchown(d, c.cfg.UID, c.cfg.GID); err != nil {
			return err
		}
	}
	done[d] = true
	return nil
}

// writeEntry writes one blob or symlink with its permission and owner, fsyncing file contents
// so the tree is complete on disk before it can become live.
func (c *checkout) writeEntry(root *os.Root, e entry, chown bool) error {
	if e.mode == filemode.Symlink {
		target, err := c.blobString(e.hash)
		if err != nil {
			return err
		}
		if err := root.Symlink(target, e.path); err != nil {
			return err
		}
	} else {
		blob, err := object.GetBlob(c.st, e.hash)
		if err != nil {
			return err
		}
		r, err := blob.Reader()
		if err != nil {
			return err
		}
		defer r.Close()
		perm := filePerm(e.path, e.mode == filemode.Executable)
		f, err := root.OpenFile(e.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		if err := f.Chmod(perm); err != nil { // the umask may have narrowed it
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
	}
	if chown {
		return root.Lchown(e.path, c.cfg.UID, c.cfg.GID)
	}
	return nil
}

// filePerm gives secrets (signing keys, TLS keys, anything named *secret*) 0600 and everything else
// 0644, keeping the executable bit git records.
func filePerm(p string, exec bool) os.FileMode {
	perm := os.FileMode(0o644)
	if isSecretName(p) {
		perm = 0o600
	}
	if exec {
		perm |= (perm & 0o444) >> 2
	}
	return perm
}

// isSecretName reports whether a file name looks like it holds a secret.
func isSecretName(p string) bool {
	base := strings.ToLower(path.Base(p))
	return strings.HasSuffix(base, ".key") || strings.HasSuffix(base, ".pem") || strings.Contains(base, "secret")
}

// syncDir fsyncs a directory so renames and creations inside it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// topLevel lists the distinct first path components of entries, sorted.
func topLevel(entries []entry) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range entries {
		first, _, _ := strings.Cut(e.path, "/")
		if !seen[first] {
			seen[first] = true
			out = append(out, first)
		}
	}
	sort.Strings(out)
	return out
}
