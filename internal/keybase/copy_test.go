package keybase

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func strconvUID(s string) int { n, _ := strconv.Atoi(s); return n }

func assertCommit(t *testing.T, gitDir, commit string) {
	t.Helper()
	out, err := exec.Command("git", "--git-dir", gitDir, "rev-parse", "refs/heads/main").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != commit {
		t.Fatalf("copied repository: main is %q (%v), want %s", out, err, commit)
	}
	if out, err := exec.Command("git", "--git-dir", gitDir, "fsck", "--strict").CombinedOutput(); err != nil {
		t.Fatalf("git fsck of the copy: %v\n%s", err, out)
	}
}

func assertOwnedByUs(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, fi.Mode().Perm())
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
			t.Errorf("%s owned by uid %d, not us", p, st.Uid)
			return filepath.SkipAll
		}
		return nil
	})
}

func TestCopyBareRepo(t *testing.T) {
	h := newHarness(t)
	commit := h.gitRepo("team", "acme", "matrix-config")
	k := h.mustStart()

	// The name is lower-cased and a trailing .git dropped, as KBFS stores it.
	dst := filepath.Join(t.TempDir(), "repo.git")
	if err := k.CopyBareRepo(t.Context(), "team", "acme", "Matrix-Config.git", dst); err != nil {
		t.Fatalf("CopyBareRepo: %v", err)
	}
	assertCommit(t, dst, commit)
	assertOwnedByUs(t, dst)

	// An existing empty directory is fine too (replaced).
	empty := t.TempDir()
	if err := k.CopyBareRepo(t.Context(), "team", "acme", "matrix-config", empty); err != nil {
		t.Fatalf("CopyBareRepo into an empty directory: %v", err)
	}
	assertCommit(t, empty, commit)

	var cp *call
	for _, c := range h.calls() {
		if c.command() == "fs cp" {
			cp = &c
			break
		}
	}
	if cp == nil || !contains(cp.Args, "/keybase/team/acme/.kbfs_git/matrix-config") || !contains(cp.Args, "-r") || cp.Args[0] != "--no-auto-fork" {
		t.Fatalf("fs cp call: %+v", cp)
	}
}

func TestCopyBareRepoFailures(t *testing.T) {
	h := newHarness(t)
	k := h.mustStart()
	dst := filepath.Join(t.TempDir(), "x")

	err := k.CopyBareRepo(t.Context(), "team", "acme", "nope", dst)
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "keybase://team/acme/nope") ||
		!strings.Contains(err.Error(), "fs cp") {
		t.Fatalf("missing repository: %v", err)
	}
	if n := countCalls(h.calls(), "fs cp", 2); n != 1 {
		t.Fatalf("a missing repository was tried %d times, want 1 (not transient)", n)
	}
	if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed copy left %s behind", dst)
	}

	if err := k.CopyBareRepo(t.Context(), "group", "acme", "config", dst); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "team, private or public") {
		t.Fatalf("bad kind: %v", err)
	}
	if err := k.CopyBareRepo(t.Context(), "team", "..", "config", dst); !errors.Is(err, ErrConfig) {
		t.Fatalf("traversal: %v", err)
	}

	// Something that is not a bare repository.
	notRepo := filepath.Join(h.kbfsRoot, "private", "alice", ".kbfs_git", "junk")
	if err := os.MkdirAll(notRepo, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(notRepo, "README"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := k.CopyBareRepo(t.Context(), "private", "alice", "junk", dst); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "bare") {
		t.Fatalf("not a bare repository: %v", err)
	}

	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := k.CopyBareRepo(t.Context(), "team", "acme", "config", full); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("non-empty destination: %v", err)
	}
}

// flakyKeybase puts a script in front of the fake that fails the first `fails` `fs cp` calls with
// msg (the fake has no switch for KBFS hiccups) and counts the fs cp calls in a file.
func flakyKeybase(t *testing.T, h *harness, fails int, msg string) (count func() int) {
	t.Helper()
	dir := t.TempDir()
	counter := filepath.Join(dir, "count")
	script := filepath.Join(dir, "keybase")
	body := `#!/bin/sh
case " $* " in
*" fs cp "*)
	echo x >> ` + shellQuote(counter) + `
	n=$(wc -l < ` + shellQuote(counter) + `)
	if [ "$n" -le ` + strconv.Itoa(fails) + ` ]; then
		echo ` + shellQuote("▶ ERROR "+msg) + ` >&2
		exit 2
	fi;;
esac
exec ` + shellQuote(h.cfg.Binary) + ` "$@"
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	h.cfg.Binary = script
	return func() int {
		b, _ := os.ReadFile(counter)
		return strings.Count(string(b), "x")
	}
}

func TestCopyBareRepoRetriesTransientFailures(t *testing.T) {
	h := newHarness(t)
	count := flakyKeybase(t, h, 2, "API network error: doRequest failed: Post https://api-1.core.keybaseapi.com: EOF")
	commit := h.gitRepo("team", "acme", "config")
	k := h.mustStart()
	dst := filepath.Join(t.TempDir(), "c")
	if err := k.CopyBareRepo(t.Context(), "team", "acme", "config", dst); err != nil {
		t.Fatalf("CopyBareRepo: %v", err)
	}
	assertCommit(t, dst, commit)
	if n := count(); n != 3 {
		t.Fatalf("%d fs cp calls, want 3 (two transient failures, then success)", n)
	}
}

func TestCopyBareRepoGivesUpOnPersistentTransientFailures(t *testing.T) {
	h := newHarness(t)
	count := flakyKeybase(t, h, 100, "git-remote-keybase error: block does not exist")
	h.gitRepo("team", "acme", "config")
	k := h.mustStart()
	dst := filepath.Join(t.TempDir(), "c")
	err := k.CopyBareRepo(t.Context(), "team", "acme", "config", dst)
	if !errors.Is(err, ErrUnavailable) || !Transient(err) || !strings.Contains(err.Error(), "keybase://team/acme/config") ||
		!strings.Contains(err.Error(), "block does not exist") {
		t.Fatalf("got %v", err)
	}
	if n := count(); n != copyAttempts {
		t.Fatalf("%d attempts, want %d", n, copyAttempts)
	}
}
