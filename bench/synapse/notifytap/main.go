// Command notifytap runs a command (Synapse) behind its own NOTIFY_SOCKET, records the wall clock
// (unix nanoseconds) at which the first READY=1 datagram arrives in $NOTIFYTAP_OUT (default
// /tmp/notifytap-ready), and relays every datagram unchanged to the NOTIFY_SOCKET it was given
// (the entrypoint's). bench/synapse uses it to time READY=1 → /readyz from the sender's side
// rather than from the supervisor's log; the relay hop (tens of microseconds) is part of what is
// measured. It stays the process-group leader the entrypoint started, so the entrypoint still
// accepts the relayed datagrams; signals it receives are passed to the command.
//
//	notifytap CMD [ARGS...]
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: notifytap CMD [ARGS...]")
		os.Exit(64)
	}
	out := os.Getenv("NOTIFYTAP_OUT")
	if out == "" {
		out = "/tmp/notifytap-ready"
	}
	upstream := os.Getenv("NOTIFY_SOCKET")
	path := filepath.Join(os.TempDir(), "notifytap-"+strconv.Itoa(os.Getpid())+".sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "notifytap: listen %s: %v\n", path, err)
		os.Exit(70)
	}
	defer os.Remove(path)
	var up *net.UnixConn
	if upstream != "" {
		if up, err = net.DialUnix("unixgram", nil, &net.UnixAddr{Name: upstream, Net: "unixgram"}); err != nil {
			fmt.Fprintf(os.Stderr, "notifytap: dial %s: %v\n", upstream, err)
			os.Exit(70)
		}
	}
	go relay(conn, up, out)

	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	env := []string{"NOTIFY_SOCKET=" + path}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, "NOTIFYTAP_OUT=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "notifytap: start %s: %v\n", os.Args[1], err)
		os.Exit(127)
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			os.Exit(128 + int(ws.Signal()))
		}
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		os.Exit(70)
	}
}

// relay forwards each datagram upstream and records when the first READY=1 arrived.
func relay(conn, up *net.UnixConn, out string) {
	buf := make([]byte, 4096)
	stamped := false
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		now := time.Now().UnixNano()
		if up != nil { // forward first: the file write is not part of the path being timed
			up.Write(buf[:n])
		}
		if !stamped && ready(string(buf[:n])) {
			stamped = true
			os.WriteFile(out, []byte(strconv.FormatInt(now, 10)+"\n"), 0o644)
		}
	}
}

func ready(msg string) bool {
	for _, l := range strings.Split(msg, "\n") {
		if l == "READY=1" {
			return true
		}
	}
	return false
}
