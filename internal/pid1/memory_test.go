package pid1

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
)

func rssFileKB(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "RssFile:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

func TestReleaseStartupPagesKeepsTheProcessWorking(t *testing.T) {
	before := rssFileKB(t)
	released := ReleaseStartupPages()
	after := rssFileKB(t)
	if released == 0 {
		t.Fatal("released nothing: the executable's mappings were not found")
	}
	if after >= before {
		t.Fatalf("file-backed RSS %d kB → %d kB: nothing was dropped", before, after)
	}
	// Code and constant data fault back in on use: the process keeps working.
	b, err := json.Marshal(map[string][]int{"x": {1, 2, 3}})
	if err != nil || string(b) != `{"x":[1,2,3]}` {
		t.Fatalf("after release: %s %v", b, err)
	}
}
