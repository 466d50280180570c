package keybase

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// copyAttempts is how many times one `fs cp` is tried when it fails transiently ("API network
// error", "block does not exist", service restarting).
const copyAttempts = 4

// CopyBareRepo copies the bare git repository of keybase://<kind>/<tlf>/<repo> out of KBFS into
// dst with `keybase --no-auto-fork fs cp -r /keybase/<kind>/<tlf>/.kbfs_git/<name> ...`, name being
// repo lower-cased without a trailing ".git" (how KBFS stores it). dst must not exist, or be an
// empty directory; its parent must exist. The result is a directory of mode 0700 owned by this
// process's user that holds HEAD, objects/ and refs/.
//
// The copy is made by the user Keybase runs as into a private staging directory, then handed over
// to us and moved into place: the Keybase user cannot write into our private directories, and a
// failed copy never leaves a half-written dst. Transient failures are retried a few times with
// back-off. A repository that is not there is an error wrapping fs.ErrNotExist (and ErrConfig);
// every error names the step and the keybase:// URL. It implements configrepo.KeybaseCopier.
func (k *Keybase) CopyBareRepo(ctx context.Context, kind, tlf, repo, dst string) error {
	url := "keybase://" + kind + "/" + tlf + "/" + repo
	fail := func(step string, kindErr error, hint string, err error) error {
		return &Error{Step: step, URL: url, Kind: kindErr, Hint: hint, Err: err}
	}
	if k.stopping.Load() {
		return fail("copy", ErrUnavailable, "Keybase is stopping", ErrNotRunning)
	}
	switch kind {
	case "team", "private", "public":
	default:
		return fail("copy", ErrConfig, fmt.Sprintf("kind %q is not team, private or public", kind), nil)
	}
	name := strings.TrimSuffix(strings.ToLower(repo), ".git")
	if !safeComponent(tlf) || !safeComponent(name) {
		return fail("copy", ErrConfig, "malformed team, folder or repository name", nil)
	}
	src := "/keybase/" + kind + "/" + tlf + "/.kbfs_git/" + name
	if err := checkDst(dst); err != nil {
		return fail("copy", nil, "destination "+dst, err)
	}

	staging, err := k.stagingDir()
	if err != nil {
		return fail("copy", nil, "staging directory", err)
	}
	defer os.RemoveAll(staging)
	out := filepath.Join(staging, name)

	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_ = os.RemoveAll(out)
		_, err = k.cli.run(ctx, k.cfg.CopyTimeout, nil, "fs", "cp", "-r", src, out)
		if err == nil {
			break
		}
		var e *Error
		if errors.As(err, &e) {
			e.URL = url
		}
		if !Transient(err) || attempt == copyAttempts || ctx.Err() != nil {
			return err
		}
		k.log.Warn("keybase fs cp failed, retrying", zap.String("url", url), zap.Int("attempt", attempt), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fail("fs cp", nil, "", ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
	if err := checkBare(out); err != nil {
		return fail("check", ErrConfig, "the KBFS copy is not a bare git repository", err)
	}
	if err := k.takeOver(out, dst); err != nil {
		return fail("move", nil, "into "+dst, err)
	}
	k.log.Info("copied repository out of KBFS", zap.String("url", url), zap.String("dst", dst))
	return nil
}

// safeComponent rejects names that would leave the intended KBFS directory.
func safeComponent(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// checkDst accepts a missing dst or an empty directory (which is removed, to be replaced).
func checkDst(dst string) error {
	entries, err := os.ReadDir(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s exists and is not empty", dst)
	}
	return os.Remove(dst)
}

// checkBare verifies the copy looks like a bare repository: HEAD, objects/ and refs/.
func checkBare(dir string) error {
	for _, p := range []struct {
		name string
		dir  bool
	}{{"HEAD", false}, {"objects", true}, {"refs", true}} {
		fi, err := os.Stat(filepath.Join(dir, p.name))
		if err != nil {
			return err
		}
		if fi.IsDir() != p.dir {
			return fmt.Errorf("%s: unexpected file type", p.name)
		}
	}
	return nil
}

// stagingDir makes a 0700 directory the Keybase user owns, for `fs cp` to write into.
func (k *Keybase) stagingDir() (string, error) {
	dir, err := os.MkdirTemp(k.cfg.TempDir, "keybase-copy-")
	if err != nil {
		return "", err
	}
	if k.cli.cred != nil {
		if err := os.Chown(dir, k.id.uid, k.id.gid); err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

// takeOver gives the copied tree to this process's user, moves it to dst (copying when dst is on
// another file system) and makes it private.
func (k *Keybase) takeOver(src, dst string) error {
	if k.cli.cred != nil {
		uid, gid := os.Geteuid(), os.Getegid()
		err := filepath.WalkDir(src, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			return err
		}
	}
	err := os.Rename(src, dst)
	if errors.Is(err, syscall.EXDEV) {
		if err = copyTree(src, dst); err != nil {
			_ = os.RemoveAll(dst)
		}
	}
	if err != nil {
		return err
	}
	return os.Chmod(dst, 0o700)
}

// copyTree copies directories, regular files and symlinks from src to dst (which must not exist).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(out, info.Mode().Perm()|0o700)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, out)
		case info.Mode().IsRegular():
			return copyFile(p, out, info.Mode().Perm())
		}
		return nil // sockets, fifos: nothing a git repository needs
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
