// Command stamp stands in for Synapse when bench/synapse times how long a start sequence takes to
// reach Synapse's exec: the first thing it does is write the wall clock (unix nanoseconds) to
// $STAMP_FILE (default /tmp/exec-stamp), then it exits 0. Its arguments (-c CONFIG) are ignored.
// Its own Go runtime start (well under a millisecond) is in every figure alike.
package main

import (
	"os"
	"strconv"
	"time"
)

func main() {
	now := time.Now().UnixNano()
	path := os.Getenv("STAMP_FILE")
	if path == "" {
		path = "/tmp/exec-stamp"
	}
	if err := os.WriteFile(path, []byte(strconv.FormatInt(now, 10)+"\n"), 0o644); err != nil {
		os.Stderr.WriteString("stamp: " + err.Error() + "\n")
		os.Exit(1)
	}
}
