package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// runner is a parsed command, ready to run. Parsing and running are separate because the real CLI
// reports argument errors before it refuses root (go/keybase/main.go: Parse, then checkSystemUser).
type runner func() error

// runKeybase is the `keybase` binary: global flags, subcommand, root check, run.
func (p *proc) runKeybase() int {
	if len(p.args) == 2 && p.args[0] == "version" && p.args[1] == "-S" {
		fmt.Fprintln(p.stdout, fakeVersion) // handleQuickVersion: before anything else
		return exitOK
	}
	g, err := globalFlagSpec().parse(p.args)
	if err != nil {
		return p.fail(errNotOK("Error parsing command line arguments: %v", err))
	}
	if len(g.rest) == 0 || g.rest[0] == "help" || g.rest[0] == "h" {
		fmt.Fprintln(p.stdout, "NAME:\n   keybase - Keybase command line client (fakekeybase).\n\nUSAGE:\n   keybase [global options] command [command options] [arguments...]")
		return exitOK
	}
	name, args := g.rest[0], g.rest[1:]
	run, err := p.parseCommand(g, name, args)
	if err != nil {
		return p.fail(err)
	}
	if p.euid == 0 && !envBool(p.getenv, "KEYBASE_ALLOW_ROOT") {
		return p.fail(errNotOK("Oops, you are trying to run as an admin user (Uid: 0). This isn't supported."))
	}
	if name != "service" {
		// Registered before the command runs, so a signal can never find the default action.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		go p.exitOnSignal(sigs)
	}
	return p.fail(run())
}

// exitOnSignal mirrors the real CLI's HandleSignals for ordinary commands: on SIGINT/SIGTERM it
// logs "interrupted" and exits 3 (the service handles its own signals and exits 0).
func (p *proc) exitOnSignal(sigs <-chan os.Signal) {
	<-sigs
	code := p.fail(errInterrupted())
	p.record(code)
	os.Exit(code)
}

// parseCommand turns a subcommand and its arguments into a runner, or an argument error worded
// like the real CLI's.
func (p *proc) parseCommand(g parsedFlags, name string, args []string) (runner, error) {
	paths := pathsFor(g, p.getenv)
	parseErr := func(err error) error {
		return errNotOK("Error parsing command line arguments: %v", err)
	}
	parse := func(spec flagSpec, args []string, maxArgs int) (parsedFlags, error) {
		f, err := spec.parse(args)
		if err != nil {
			return f, parseErr(err)
		}
		if len(f.rest) > maxArgs {
			return f, parseErr(fmt.Errorf("%s: unexpected arguments %q", name, f.rest))
		}
		return f, nil
	}
	switch name {
	case "service":
		return func() error { return p.runService(g, args) }, nil
	case "ctl":
		return p.parseCtl(paths, args, parse)
	case "status":
		f, err := parse(flagSpec{bools: []string{"json,j"}}, args, 0)
		if err != nil {
			return nil, err
		}
		return func() error { return p.status(paths, f.bool("json")) }, nil
	case "whoami":
		f, err := parse(flagSpec{bools: []string{"uid", "json,j"}}, args, 0)
		if err != nil {
			return nil, err
		}
		return func() error { return p.whoami(paths, f.bool("json"), f.bool("uid")) }, nil
	case "logout":
		if _, err := parse(flagSpec{bools: []string{"force,f"}}, args, 0); err != nil {
			return nil, err
		}
		return func() error { _, err := callOnce(paths.socket, request{Op: "logout"}); return err }, nil
	case "oneshot":
		return p.parseOneshot(g, paths, args)
	case "chat":
		return p.parseChat(paths, args, parse)
	case "fs":
		return p.parseFS(paths, args, parse)
	case "version":
		f, err := parse(flagSpec{bools: []string{"S", "no-service"}, values: []string{"format,f"}}, args, 0)
		if err != nil {
			return nil, err
		}
		return func() error { return p.version(paths, f.bool("S"), f.bool("no-service")) }, nil
	case "log":
		if len(args) == 0 || args[0] != "send" {
			return nil, parseErr(fmt.Errorf("log: want 'send'"))
		}
		if _, err := parse(flagSpec{bools: []string{"no-confirm"}, values: []string{"feedback", "n"}}, args[1:], 0); err != nil {
			return nil, err
		}
		return func() error { return nil }, nil
	default:
		return nil, parseErr(fmt.Errorf("unknown command %q (fakekeybase implements only what the entrypoint and kbchat use)", name))
	}
}

// parseCtl handles `ctl wait [-d DUR] [--include-kbfs]` and `ctl stop [--shutdown]`.
func (p *proc) parseCtl(paths statePaths, args []string, parse func(flagSpec, []string, int) (parsedFlags, error)) (runner, error) {
	if len(args) == 0 {
		return nil, errNotOK("Error parsing command line arguments: ctl needs a subcommand (wait, stop)")
	}
	switch args[0] {
	case "wait":
		f, err := parse(flagSpec{bools: []string{"include-kbfs"}, values: []string{"duration,d"}}, args[1:], 0)
		if err != nil {
			return nil, err
		}
		d := 10 * time.Second
		if v := f.value("duration"); v != "" {
			if d, err = time.ParseDuration(v); err != nil {
				return nil, errNotOK("Error parsing command line arguments: bad duration %q: %v", v, err)
			}
		}
		return func() error { return ctlWait(paths.socket, d, f.bool("include-kbfs")) }, nil
	case "stop":
		if _, err := parse(flagSpec{bools: []string{"shutdown"}}, args[1:], 0); err != nil {
			return nil, err
		}
		return func() error { _, err := callOnce(paths.socket, request{Op: "stop"}); return err }, nil
	default:
		return nil, errNotOK("Error parsing command line arguments: unknown ctl command %q", args[0])
	}
}

// ctlWait polls until the service answers (and, with includeKBFS, until a kbfsfuse registered),
// each for up to d, like the real `ctl wait`.
func ctlWait(socket string, d time.Duration, includeKBFS bool) error {
	deadline := time.Now().Add(d)
	for {
		if _, err := statusOf(socket); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return errNotOK("timed out waiting for the keybase service to start after %v", d)
		}
		time.Sleep(50 * time.Millisecond) // the fake's own poll loop, not test synchronisation
	}
	if !includeKBFS {
		return nil
	}
	deadline = time.Now().Add(d)
	for {
		st, err := statusOf(socket)
		if err == nil && st.KBFS {
			return nil
		}
		if time.Now().After(deadline) {
			return errNotOK("timed out waiting for KBFS to start after %v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// parseOneshot reads username and paper key like CmdOneshot.ParseArgv: flag, else environment,
// else the real "Need a ..." error.
func (p *proc) parseOneshot(g parsedFlags, paths statePaths, args []string) (runner, error) {
	f, err := flagSpec{values: []string{"paperkey,p", "username,u"}}.parse(args)
	if err != nil {
		return nil, errNotOK("Error parsing command line arguments: %v", err)
	}
	if len(f.rest) != 0 {
		return nil, errNotOK("Error parsing command line arguments: didn't expect any arguments")
	}
	option := func(name string) (string, error) {
		if v := f.value(name); v != "" {
			return v, nil
		}
		env := "KEYBASE_" + strings.ToUpper(name)
		if v := p.getenv(env); v != "" {
			return v, nil
		}
		return "", errNotOK("Error parsing command line arguments: Need a --%s option or a %s environment variable", name, env)
	}
	username, err := option("username")
	if err != nil {
		return nil, err
	}
	paperKey, err := option("paperkey")
	if err != nil {
		return nil, err
	}
	return func() error {
		if g.bool("standalone") {
			return errNotOK("Can't run command in standalone mode")
		}
		c, err := dialService(paths.socket)
		if err != nil {
			return err
		}
		defer c.close()
		if envBool(p.getenv, "FAKEKEYBASE_ONESHOT_HANG") {
			select {} // the login RPC never returns; SIGINT/SIGTERM ends it with exit 3
		}
		_, err = c.call(request{Op: "oneshot", Username: username, PaperKey: paperKey})
		return err
	}, nil
}

// currentStatus is keybase1.CurrentStatus, what `whoami -json` prints and kbchat parses.
type currentStatus struct {
	Configured     bool    `json:"configured"`
	Registered     bool    `json:"registered"`
	LoggedIn       bool    `json:"loggedIn"`
	SessionIsValid bool    `json:"sessionIsValid"`
	User           *kbUser `json:"user,omitempty"`
	DeviceName     string  `json:"deviceName"`
}

// kbUser is keybase1.User.
type kbUser struct {
	UID      string `json:"uid"`
	Username string `json:"username"`
}

// whoami prints the session like cmd_whoami.go: indented CurrentStatus with -json (exit 0 even
// when logged out), else the username (or uid) or the error "logged out".
func (p *proc) whoami(paths statePaths, asJSON, uid bool) error {
	st, err := statusOf(paths.socket)
	if err != nil {
		return err
	}
	cs := currentStatus{Configured: true, Registered: st.LoggedIn, LoggedIn: st.LoggedIn, SessionIsValid: st.LoggedIn, DeviceName: st.DeviceName}
	if st.LoggedIn {
		cs.User = &kbUser{UID: st.UID, Username: st.Username}
	}
	if asJSON {
		b, err := json.MarshalIndent(cs, "", "    ")
		if err != nil {
			return err
		}
		fmt.Fprintln(p.stdout, string(b))
		return nil
	}
	if !st.LoggedIn {
		return errNotOK("logged out")
	}
	if uid {
		fmt.Fprintln(p.stdout, st.UID)
	} else {
		fmt.Fprintln(p.stdout, st.Username)
	}
	return nil
}

// status prints `keybase status` (the fields scripts grep: "Logged in:") or its -j JSON.
func (p *proc) status(paths statePaths, asJSON bool) error {
	st, err := statusOf(paths.socket)
	if err != nil {
		return err
	}
	if asJSON {
		type device struct {
			Name string `json:"name"`
			Type string `json:"type"`
		}
		out := map[string]any{
			"Username":       st.Username,
			"UserID":         st.UID,
			"LoggedIn":       st.LoggedIn,
			"SessionIsValid": st.LoggedIn,
			"Device":         nil,
			"Service":        map[string]any{"Version": st.Version, "Running": true, "Pid": fmt.Sprint(st.PID)},
			"KBFS":           map[string]any{"Version": fakeVersion, "Running": st.KBFS},
			"Client":         map[string]any{"Version": fakeVersion},
		}
		if st.LoggedIn {
			out["Device"] = device{Name: st.DeviceName, Type: "backup"}
		}
		b, err := json.MarshalIndent(out, "", "    ")
		if err != nil {
			return err
		}
		fmt.Fprintln(p.stdout, string(b))
		return nil
	}
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	kbfs := "not running"
	if st.KBFS {
		kbfs = "running"
	}
	fmt.Fprintf(p.stdout, "Username:      %s\nLogged in:     %s\n\nDevice:\n    name:      %s\n\nKeybase Service:\n    status:    running\n    version:   %s\n    pid:       %d\n\nKBFS:\n    status:    %s\n\nClient:\n    version:   %s\n",
		st.Username, yesNo(st.LoggedIn), st.DeviceName, st.Version, st.PID, kbfs, fakeVersion)
	return nil
}

// version prints the client's version and, when the service answers, the service's.
func (p *proc) version(paths statePaths, short, noService bool) error {
	if short {
		fmt.Fprintln(p.stdout, fakeVersion)
		return nil
	}
	fmt.Fprintf(p.stdout, "Client:  %s\n", fakeVersion)
	if noService {
		return nil
	}
	if st, err := statusOf(paths.socket); err == nil {
		fmt.Fprintf(p.stdout, "Service: %s\n", st.Version)
	}
	return nil
}
