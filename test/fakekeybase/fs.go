package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// kbfsPrefixes returns the accepted spellings of a KBFS path; a function, not a variable, so the
// program keeps no package-level state.
func kbfsPrefixes() []string { return []string{"/keybase/", "keybase://"} }

// parseFS handles `fs cp [-r] SRC DST`, `fs ls [-a] PATH`, `fs read PATH`.
func (p *proc) parseFS(paths statePaths, args []string, parse func(flagSpec, []string, int) (parsedFlags, error)) (runner, error) {
	if len(args) == 0 {
		return nil, errNotOK("Error parsing command line arguments: fs needs a subcommand (cp, ls, read)")
	}
	switch args[0] {
	case "cp":
		f, err := parse(flagSpec{bools: []string{"recursive,r", "interactive,i", "force,f", "preserve"}}, args[1:], 2)
		if err != nil {
			return nil, err
		}
		if len(f.rest) != 2 {
			return nil, errNotOK("Error parsing command line arguments: cp needs a source and a destination")
		}
		return func() error { return p.fsCopy(paths, f.rest[0], f.rest[1], f.bool("recursive")) }, nil
	case "ls":
		f, err := parse(flagSpec{bools: []string{"all,a", "one,1", "long,l", "rec,R", "nocolor", "dirs-first", "json,j"}}, args[1:], 1)
		if err != nil {
			return nil, err
		}
		if len(f.rest) != 1 {
			return nil, errNotOK("Error parsing command line arguments: ls needs a path")
		}
		return func() error { return p.fsList(paths, f.rest[0], f.bool("all")) }, nil
	case "read":
		f, err := parse(flagSpec{values: []string{"offset", "size", "buffersize,b"}, bools: []string{"nofollow"}}, args[1:], 1)
		if err != nil {
			return nil, err
		}
		if len(f.rest) != 1 {
			return nil, errNotOK("Error parsing command line arguments: read needs a path")
		}
		return func() error { return p.fsRead(paths, f.rest[0]) }, nil
	default:
		return nil, errNotOK("Error parsing command line arguments: fs %q is not implemented by fakekeybase", args[0])
	}
}

// kbfsLocation is a resolved path: where it lives on disk, and whether it is a KBFS path.
type kbfsLocation struct {
	arg    string // as given
	local  string
	inKBFS bool
	folder string // "private", "public" or "team" for KBFS paths
}

// resolve maps /keybase/... and keybase://... under $FAKEKEYBASE_KBFS_ROOT and leaves other paths
// local. A KBFS path that would climb out of the root is refused.
func (p *proc) resolve(arg string) (kbfsLocation, error) {
	for _, prefix := range kbfsPrefixes() {
		if !strings.HasPrefix(arg, prefix) {
			continue
		}
		root := p.getenv("FAKEKEYBASE_KBFS_ROOT")
		if root == "" {
			return kbfsLocation{}, errNotOK("fakekeybase: FAKEKEYBASE_KBFS_ROOT is not set, so %s cannot be served", arg)
		}
		rel := path.Clean("/" + strings.TrimPrefix(arg, prefix))
		folder, _, _ := strings.Cut(strings.TrimPrefix(rel, "/"), "/")
		return kbfsLocation{arg: arg, local: filepath.Join(root, filepath.FromSlash(rel)), inKBFS: true, folder: folder}, nil
	}
	return kbfsLocation{arg: arg, local: arg}, nil
}

// locate resolves arg and, when it is in KBFS, checks that SimpleFS can serve it.
func (p *proc) locate(paths statePaths, arg string) (kbfsLocation, error) {
	loc, err := p.resolve(arg)
	if err != nil {
		return loc, err
	}
	return loc, requireKBFS(paths, loc)
}

// requireKBFS checks what SimpleFS needs when one of locs is in KBFS: a running service with KBFS
// connected, and a session for private and team folders. Local paths need nothing.
func requireKBFS(paths statePaths, locs ...kbfsLocation) error {
	if !slices.ContainsFunc(locs, func(l kbfsLocation) bool { return l.inKBFS }) {
		return nil
	}
	st, err := statusOf(paths.socket)
	if err != nil {
		return err
	}
	if !st.KBFS {
		return errNotOK("KBFS client wasn't found (start kbfsfuse and wait with `keybase ctl wait --include-kbfs`)")
	}
	for _, l := range locs {
		if l.inKBFS && l.folder != "public" && !st.LoggedIn {
			return errNotOK("Login required")
		}
	}
	return nil
}

// fsCopy is `fs cp`: like cp(1), a destination that is an existing directory receives the source
// under its base name; directories need -r; symlinks inside a tree are copied as symlinks.
func (p *proc) fsCopy(paths statePaths, srcArg, dstArg string, recursive bool) error {
	src, err := p.resolve(srcArg)
	if err != nil {
		return err
	}
	dst, err := p.resolve(dstArg)
	if err != nil {
		return err
	}
	if err := requireKBFS(paths, src, dst); err != nil {
		return err
	}
	info, err := os.Stat(src.local)
	if err != nil {
		return errNotOK("%s does not exist", src.arg)
	}
	target := dst.local
	if di, err := os.Stat(target); err == nil && di.IsDir() {
		target = filepath.Join(target, filepath.Base(src.local))
	}
	if info.IsDir() {
		if !recursive {
			return errNotOK("%s is a directory; use -r to copy it", src.arg)
		}
		return copyTree(src.local, target)
	}
	return copyFile(src.local, target, info.Mode())
}

// copyTree copies a directory, following the top-level path (a renamed repo may be a symlink) but
// keeping symlinks inside it.
func copyTree(src, dst string) error {
	root, err := filepath.EvalSymlinks(src)
	if err != nil {
		return errNotOK("resolve %s: %v", src, err)
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return errNotOK("walk %s: %v", p, err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return errNotOK("walk %s: %v", p, err)
		}
		out := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return errNotOK("stat %s: %v", p, err)
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(out, info.Mode().Perm()|0o700); err != nil {
				return errNotOK("mkdir %s: %v", out, err)
			}
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return errNotOK("readlink %s: %v", p, err)
			}
			if err := os.Symlink(link, out); err != nil {
				return errNotOK("symlink %s: %v", out, err)
			}
		default:
			return copyFile(p, out, info.Mode())
		}
		return nil
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return errNotOK("open %s: %v", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode.Perm())
	if err != nil {
		return errNotOK("create %s: %v", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return errNotOK("copy %s: %v", src, err)
	}
	if err := out.Close(); err != nil {
		return errNotOK("close %s: %v", dst, err)
	}
	return nil
}

// fsList is `fs ls`: one name per line, sorted, dot files only with -a.
func (p *proc) fsList(paths statePaths, arg string, all bool) error {
	loc, err := p.locate(paths, arg)
	if err != nil {
		return err
	}
	info, err := os.Stat(loc.local)
	if err != nil {
		return errNotOK("%s does not exist", arg)
	}
	if !info.IsDir() {
		fmt.Fprintln(p.stdout, filepath.Base(loc.local))
		return nil
	}
	entries, err := os.ReadDir(loc.local)
	if err != nil {
		return errNotOK("read %s: %v", arg, err)
	}
	var names []string
	for _, e := range entries {
		if !all && strings.HasPrefix(e.Name(), ".") {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintln(p.stdout, n)
	}
	return nil
}

// fsRead is `fs read`: the file's bytes on stdout.
func (p *proc) fsRead(paths statePaths, arg string) error {
	loc, err := p.locate(paths, arg)
	if err != nil {
		return err
	}
	f, err := os.Open(loc.local)
	if err != nil {
		return errNotOK("%s does not exist", arg)
	}
	defer f.Close()
	if _, err := io.Copy(p.stdout, f); err != nil {
		return errNotOK("read %s: %v", arg, err)
	}
	return nil
}
