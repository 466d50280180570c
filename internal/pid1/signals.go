package pid1

import (
	"os"
	"syscall"
)

// Relayable lists every signal an init must catch and pass on: all of 1–64 except those that
// cannot be caught (KILL, STOP), SIGCHLD (the init's own business), SIGURG (the Go runtime's
// preemption signal, ~60 a second: forwarding it would flood the child) and 32/33, which libc
// reserves for its threads. signal.Notify needs this explicit list: with no list it would deliver
// SIGURG too.
func Relayable() []os.Signal {
	var sigs []os.Signal
	for n := 1; n <= 64; n++ {
		switch syscall.Signal(n) {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGCHLD, syscall.SIGURG, syscall.SIGPROF, 32, 33, 34:
			continue
		}
		sigs = append(sigs, syscall.Signal(n))
	}
	return sigs
}
