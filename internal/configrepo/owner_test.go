package configrepo

import (
	"os"
	"syscall"
	"testing"
)

// owner returns the uid and gid of p without following symlinks.
func owner(t *testing.T, p string) (int, int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}
