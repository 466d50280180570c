package synapsert

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Root returns a fresh, writable root filesystem for one test: an overlay whose lower layer is the
// cached runtime tree (never modified) and whose upper layer is the test's own, with /proc
// mounted so that a process chrooted into it can re-execute itself and read its mount table, as
// in a container. Everything is unmounted and removed when the test ends.
func Root(t testing.TB) string {
	t.Helper()
	tree := Tree(t)
	base := t.TempDir()
	upper, work, root := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "root")
	for _, d := range []string{upper, work, root} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + tree + ",upperdir=" + upper + ",workdir=" + work
	if err := syscall.Mount("overlay", root, "overlay", 0, opts); err != nil {
		t.Fatalf("overlay over the Synapse runtime: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(root, syscall.MNT_DETACH) })
	proc := filepath.Join(root, "proc")
	if err := os.MkdirAll(proc, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("proc", proc, "proc", 0, ""); err != nil {
		t.Fatalf("mount proc in the test root: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(proc, syscall.MNT_DETACH) })
	return root
}

// Install copies the executable at src into root at dst (an absolute path inside root), mode 0755.
func Install(t testing.TB, root, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, dst)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
