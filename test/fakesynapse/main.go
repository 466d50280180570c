// Command fakesynapse is a small stand-in for Synapse in the supervisor's fast edge-case tests
// (the real Synapse is used everywhere else). It keeps the behaviours a supervisor must respect:
//
//   - for -startup it has no signal handlers (Synapse's imports and migrations): SIGTERM or
//     SIGHUP kill it outright;
//   - then it listens on -port, answers GET /health, and sends READY=1 to $NOTIFY_SOCKET;
//   - afterwards SIGHUP is a reload (RELOADING=1, READY=1, a line in -log) and SIGTERM a clean
//     exit 0 (STOPPING=1);
//   - the file -unhealthy, while it exists, makes /health answer 500; -crash-after makes it exit 1.
//
// Every event is appended to -log as one line.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	port := flag.Int("port", 0, "port for /health")
	startup := flag.Duration("startup", 0, "time without signal handlers before READY")
	logPath := flag.String("log", "", "event log")
	unhealthy := flag.String("unhealthy", "", "while this file exists, /health fails")
	crashAfter := flag.Duration("crash-after", 0, "exit 1 this long after READY")
	noNotify := flag.Bool("no-notify", false, "never use NOTIFY_SOCKET, like an old Synapse")
	flag.Parse()
	if *noNotify {
		os.Unsetenv("NOTIFY_SOCKET")
	}
	logf := func(format string, a ...any) {
		f, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
		if err == nil {
			fmt.Fprintf(f, format+"\n", a...)
			f.Close()
		}
	}
	logf("start pid=%d", os.Getpid())
	time.Sleep(*startup) // "migrating": default dispositions, as Synapse before its reactor runs
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		logf("listen: %v", err)
		os.Exit(1)
	}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.Stat(*unhealthy); *unhealthy != "" && err == nil {
			http.Error(w, "unhealthy", 500)
			return
		}
		fmt.Fprint(w, "OK")
	}))
	notify("READY=1")
	logf("ready")
	var crash <-chan time.Time
	if *crashAfter > 0 {
		crash = time.After(*crashAfter)
	}
	for {
		select {
		case <-crash:
			logf("crash")
			os.Exit(1)
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				notify("RELOADING=1")
				logf("reload")
				notify("READY=1")
			default:
				notify("STOPPING=1")
				logf("stop %v", s)
				os.Exit(0)
			}
		}
	}
}

// notify sends one sd_notify datagram, as Synapse's sdnotify does.
func notify(msg string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	c, err := net.Dial("unixgram", addr)
	if err != nil {
		return
	}
	c.Write([]byte(msg))
	c.Close()
}
