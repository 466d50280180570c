package configrepo

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// localChanges compares the live tree dir with the commit's entries and lists what an operator
// changed in place: "modified: p", "deleted: p", "added: p". Permissions and owners are ours to
// set, so they are not compared. Content is compared by git blob hash, so nothing is kept in memory
// beyond one file at a time.
func localChanges(st storer.EncodedObjectStorer, entries []entry, dir string) ([]string, error) {
	var changes []string
	want := make(map[string]entry, len(entries))
	for _, e := range entries {
		want[e.path] = e
	}
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.path))
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			changes = append(changes, "deleted: "+e.path)
			continue
		}
		if err != nil {
			return nil, err
		}
		same, err := sameContent(st, e, p, fi)
		if err != nil {
			return nil, err
		}
		if !same {
			changes = append(changes, "modified: "+e.path)
		}
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." || d.IsDir() {
			return nil
		}
		if _, ok := want[rel]; !ok {
			changes = append(changes, "added: "+rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(changes)
	return changes, nil
}

// sameContent reports whether the file at p still has the type and content of e.
func sameContent(st storer.EncodedObjectStorer, e entry, p string, fi os.FileInfo) (bool, error) {
	if e.mode == filemode.Symlink {
		if fi.Mode()&os.ModeSymlink == 0 {
			return false, nil
		}
		target, err := os.Readlink(p)
		if err != nil {
			return false, err
		}
		blob, err := object.GetBlob(st, e.hash)
		if err != nil {
			return false, err
		}
		r, err := blob.Reader()
		if err != nil {
			return false, err
		}
		defer r.Close()
		data, err := io.ReadAll(r)
		return err == nil && string(data) == target, err
	}
	if !fi.Mode().IsRegular() {
		return false, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := plumbing.NewHasher(plumbing.BlobObject, fi.Size())
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return h.Sum() == e.hash, nil
}

// changedPaths lists the paths that differ between two commits (all paths of to when from is zero).
func changedPaths(st storer.EncodedObjectStorer, from, to plumbing.Hash, toEntries []entry) ([]string, error) {
	if from.IsZero() {
		out := make([]string, 0, len(toEntries))
		for _, e := range toEntries {
			out = append(out, e.path)
		}
		return out, nil
	}
	a, err := object.GetCommit(st, from)
	if err != nil {
		return nil, err
	}
	b, err := object.GetCommit(st, to)
	if err != nil {
		return nil, err
	}
	ta, err := a.Tree()
	if err != nil {
		return nil, err
	}
	tb, err := b.Tree()
	if err != nil {
		return nil, err
	}
	changes, err := object.DiffTree(ta, tb)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, c := range changes {
		for _, name := range []string{c.From.Name, c.To.Name} {
			if name != "" && !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// summarize shortens a long change list for an error message.
func summarize(changes []string) string {
	const max = 20
	if len(changes) <= max {
		return strings.Join(changes, ", ")
	}
	return strings.Join(changes[:max], ", ") + ", ..."
}
