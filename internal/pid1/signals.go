package pid1

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
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

// ResetIgnoredReserved puts signals 32–34 back to their default action when this process
// inherited them ignored, as GNU make 4.3 starts its recipes. Go never installs handlers for these,
// so without this every child would inherit SIG_IGN for them, and children are promised default
// dispositions. A signal with a handler (glibc's, in a cgo build) is left alone.
func ResetIgnoredReserved() {
	const sigIgn = 1
	for sig := uintptr(32); sig <= 34; sig++ {
		// struct sigaction as the kernel takes it: handler, flags, (restorer,) mask; all zero is
		// SIG_DFL with no flags and an empty mask on every architecture.
		var old, dfl [4]uint64
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, sig, 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 || old[0] != sigIgn {
			continue
		}
		unix.RawSyscall6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
	}
}
