package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// runKBFSFuse is `kbfsfuse`: it accepts the real binary's common flags (Go flag syntax), supports
// only -mount-type=none (containers are unprivileged; SimpleFS is what the entrypoint uses),
// registers with the service as "KBFS running" and stays up until SIGTERM/SIGINT (exit 0).
func (p *proc) runKBFSFuse() int {
	fset := flag.NewFlagSet("kbfsfuse", flag.ContinueOnError)
	fset.SetOutput(p.stderr)
	fset.Bool("debug", false, "enable debug logging")
	mountType := fset.String("mount-type", "default", "default, force, required or none")
	fset.Bool("log-to-file", false, "log to the default log file")
	fset.String("log-file", "", "log file")
	runtimeDir := fset.String("runtime-dir", "", "directory of the service socket (default $HOME/.config/keybase)")
	fset.String("label", "", "label")
	fset.String("localuser", "", "local user (testing)")
	fset.String("bserver", "", "block server")
	fset.String("mdserver", "", "metadata server")
	fset.String("server-root", "", "local server root")
	fset.String("cpuprofile", "", "cpu profile path")
	fset.String("memprofile", "", "memory profile path")
	fset.String("mount-dir", "", "mount directory")
	fset.Bool("use-default-log-file", false, "log to the default log file")
	if err := fset.Parse(p.args); err != nil {
		return exitNotOK
	}
	if *mountType != "none" {
		fmt.Fprintf(p.stderr, "kbfsfuse: -mount-type=%s needs FUSE, which fakekeybase does not provide; use -mount-type=none\n", *mountType)
		return 1
	}
	socket := filepath.Join(p.getenv("HOME"), ".config", "keybase", "keybased.sock")
	if *runtimeDir != "" {
		socket = filepath.Join(*runtimeDir, "keybased.sock")
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	lost, err := registerKBFS(socket)
	if err != nil {
		// libfs InitError from KBFSContext.CheckService: fatal at start.
		fmt.Fprintln(p.stderr, "Keybase isn't running. Try `run_keybase`.")
		return 1
	}
	for {
		select {
		case <-sigs:
			return exitOK
		case <-lost:
			// The service went away: like KBFS, keep running and reconnect when it is back.
			lost = p.reconnectKBFS(socket, sigs)
			if lost == nil {
				return exitOK
			}
		}
	}
}

// registerKBFS connects to the service and registers; the returned channel closes when the
// service drops the connection.
func registerKBFS(socket string) (<-chan struct{}, error) {
	c, err := dialService(socket)
	if err != nil {
		return nil, err
	}
	if _, err := c.call(request{Op: "kbfs-register"}); err != nil {
		c.close()
		return nil, err
	}
	lost := make(chan struct{})
	go func() {
		defer close(lost)
		defer c.close()
		var discard any
		for c.dec.Decode(&discard) == nil {
		}
	}()
	return lost, nil
}

// reconnectKBFS retries registration until it succeeds (new lost channel) or a signal arrives
// (nil).
func (p *proc) reconnectKBFS(socket string, sigs <-chan os.Signal) <-chan struct{} {
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-sigs:
			return nil
		case <-ticker.C:
			if lost, err := registerKBFS(socket); err == nil {
				return lost
			}
		}
	}
}
