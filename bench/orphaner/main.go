// Command orphaner starts -n short-lived children without waiting for them and exits, so they
// all become orphans of the namespace's init at once. Before exiting it writes the time in unix
// ns to -stamp: the moment the init's reaping work begins.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 10000, "orphans to make")
	stamp := flag.String("stamp", "", "file for the exit time")
	flag.Parse()
	attr := &syscall.ProcAttr{Env: []string{}, Files: []uintptr{0, 1, 2}}
	for i := 0; i < *n; i++ {
		if _, err := syscall.ForkExec("/bin/true", []string{"true"}, attr); err != nil {
			fmt.Fprintln(os.Stderr, "orphaner:", err)
			os.Exit(1)
		}
	}
	// Let the children finish so the init inherits zombies, not running processes: the bench
	// measures reaping, not how long /bin/true takes.
	for !allZombies(children()) {
		time.Sleep(time.Millisecond)
	}
	os.WriteFile(*stamp, []byte(strconv.FormatInt(time.Now().UnixNano(), 10)), 0o644)
}

// children lists this process's children: each thread has its own list in /proc.
func children() string {
	tasks, _ := os.ReadDir("/proc/self/task")
	var all []byte
	for _, t := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		all = append(all, b...)
	}
	return string(all)
}

// allZombies reports whether every pid in the space-separated list is a zombie.
func allZombies(pids string) bool {
	start := 0
	for i := 0; i <= len(pids); i++ {
		if i == len(pids) || pids[i] == ' ' {
			if i > start {
				b, err := os.ReadFile("/proc/" + pids[start:i] + "/stat")
				if err == nil && !isZombie(b) {
					return false
				}
			}
			start = i + 1
		}
	}
	return true
}

func isZombie(stat []byte) bool {
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' {
			return i+2 < len(stat) && stat[i+2] == 'Z'
		}
	}
	return false
}
