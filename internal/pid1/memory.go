package pid1

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ReleaseStartupPages drops this process's resident pages of its own executable's read-only
// mappings (code and constant data). The init calls it once the supervisor runs, the supervisor
// once what it supervises is up.
//
// Why: the entrypoint is one binary, so every package's init function runs in both processes,
// faulting in most of an 18 MB executable; their idle loops afterwards touch a few pages of it. Those pages are clean and file-backed, so MADV_DONTNEED only removes them from this
// process's page tables: one it touches again is mapped back from the page cache (which the
// supervisor shares). Writable mappings are left alone, since dropping them would discard data.
// It returns the bytes released from the page tables (0 if /proc is unavailable).
func ReleaseStartupPages() int {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0
	}
	defer f.Close()
	released := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		start, end, ok := parseRange(fields[0])
		if !ok {
			continue
		}
		// The raw syscall takes the address as a number: no Go pointer to memory Go does not own.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_DONTNEED); errno == 0 {
			released += int(end - start)
		}
	}
	return released
}

func parseRange(s string) (start, end uintptr, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	x, err1 := strconv.ParseUint(a, 16, 64)
	y, err2 := strconv.ParseUint(b, 16, 64)
	return uintptr(x), uintptr(y), err1 == nil && err2 == nil && y > x
}
