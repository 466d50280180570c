package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serviceConfig holds the switches the service reads once, at start, from its own environment.
type serviceConfig struct {
	delay      time.Duration   // FAKEKEYBASE_SERVICE_DELAY: time before the socket exists
	crashAfter time.Duration   // FAKEKEYBASE_SERVICE_CRASH_AFTER: exit 1 this long after ready
	paperKey   string          // FAKEKEYBASE_PAPERKEY, normalised; "" accepts any key
	users      map[string]bool // FAKEKEYBASE_USERS; nil accepts any username
	revoked    bool            // FAKEKEYBASE_REVOKED: the right key belongs to a revoked device
}

func loadServiceConfig(getenv func(string) string) (serviceConfig, error) {
	var cfg serviceConfig
	var err error
	if cfg.delay, err = envDuration(getenv, "FAKEKEYBASE_SERVICE_DELAY"); err != nil {
		return cfg, err
	}
	if cfg.crashAfter, err = envDuration(getenv, "FAKEKEYBASE_SERVICE_CRASH_AFTER"); err != nil {
		return cfg, err
	}
	cfg.paperKey = normalizePaperKey(getenv("FAKEKEYBASE_PAPERKEY"))
	if u := getenv("FAKEKEYBASE_USERS"); u != "" {
		cfg.users = map[string]bool{}
		for _, name := range strings.Split(u, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
				cfg.users[name] = true
			}
		}
	}
	cfg.revoked = envBool(getenv, "FAKEKEYBASE_REVOKED")
	return cfg, nil
}

// normalizePaperKey does what libkb.NewPaperKeyPhrase does: lower case, single spaces.
func normalizePaperKey(k string) string {
	return strings.Join(strings.Fields(strings.ToLower(k)), " ")
}

// fakeUID derives a stable Keybase-shaped user id (32 hex digits ending in 19) from a username.
func fakeUID(username string) string {
	sum := sha256.Sum256([]byte("fakekeybase-uid:" + username))
	return hex.EncodeToString(sum[:15]) + "19"
}

// fakeKID is the key id reported for a revoked paper key.
func fakeKID(username string) string {
	sum := sha256.Sum256([]byte("fakekeybase-kid:" + username))
	return "0120" + hex.EncodeToString(sum[:]) + "0a"
}

// service is the daemon's in-memory state: the session lives here and nowhere on disk, like the
// real oneshot device.
type service struct {
	cfg   serviceConfig
	paths statePaths
	pid   int

	mu             sync.Mutex
	loggedIn       bool
	username       string
	uid            string
	deviceName     string
	kbfsClients    int
	typingDisabled bool
	messages       []sentMessage

	stopOnce sync.Once
	stopped  chan struct{}
}

// runService is `keybase service`: lock the pid file, wait out the configured delay, serve the
// socket until SIGTERM/SIGINT or `ctl stop` (exit 0), or until the configured crash (exit 1,
// leaving a stale socket behind as a real crash does).
func (p *proc) runService(g parsedFlags, args []string) error {
	// Handle signals from the first moment, so an early SIGTERM is a clean exit 0, never the
	// default action.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	spec := flagSpec{
		bools:  []string{"auto-forked", "watchdog-forked", "launchd-forked"},
		values: []string{"chdir"},
	}
	sf, err := spec.parse(args)
	if err != nil {
		return errNotOK("Error parsing command line arguments: %v", err)
	}
	if len(sf.rest) > 0 {
		return errNotOK("Error parsing command line arguments: service takes no arguments")
	}
	cfg, err := loadServiceConfig(p.getenv)
	if err != nil {
		return errNotOK("%v", err)
	}
	s := &service{cfg: cfg, paths: pathsFor(g, p.getenv), pid: p.pid, stopped: make(chan struct{})}
	if err := os.MkdirAll(s.paths.dir, 0o700); err != nil {
		return errNotOK("create %s: %v", s.paths.dir, err)
	}
	lock, err := lockPIDFile(s.paths.pidFile, p.pid)
	if err != nil {
		return err
	}
	defer lock.Close()

	if cfg.delay > 0 {
		timer := time.NewTimer(cfg.delay)
		select {
		case <-timer.C:
		case <-sigs:
			timer.Stop()
			_ = os.Remove(s.paths.pidFile)
			return nil
		}
	}

	_ = os.Remove(s.paths.socket) // a stale socket from a crashed predecessor
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.paths.socket, Net: "unix"})
	if err != nil {
		return errNotOK("listen on %s: %v", s.paths.socket, err)
	}
	if err := os.Chmod(s.paths.socket, 0o600); err != nil {
		return errNotOK("chmod %s: %v", s.paths.socket, err)
	}
	go s.serve(l)

	var crash <-chan time.Time
	if cfg.crashAfter > 0 {
		crash = time.After(cfg.crashAfter)
	}
	select {
	case <-sigs:
	case <-s.stopped:
	case <-crash:
		l.SetUnlinkOnClose(false)
		return &cliError{code: 1, msg: "fakekeybase: simulated service crash (FAKEKEYBASE_SERVICE_CRASH_AFTER)"}
	}
	_ = l.Close() // removes the socket
	_ = os.Remove(s.paths.pidFile)
	return nil
}

// lockPIDFile takes the exclusive lock that marks the one running service, as the real service
// does on keybased.pid, and writes our pid into it.
func lockPIDFile(path string, pid int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errNotOK("open pid file %s: %v", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, errNotOK("error locking %s: server already running", path)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, errNotOK("truncate pid file %s: %v", path, err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0); err != nil {
		f.Close()
		return nil, errNotOK("write pid file %s: %v", path, err)
	}
	return f, nil
}

// serve accepts CLI connections until the listener closes.
func (s *service) serve(l *net.UnixListener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go s.handleConn(conn)
	}
}

// handleConn answers requests on one connection. A kbfsfuse process registers on its connection
// and counts as "KBFS running" for as long as that connection stays open.
func (s *service) handleConn(conn net.Conn) {
	defer conn.Close()
	dec := json.NewDecoder(bufio.NewReader(conn))
	enc := json.NewEncoder(conn)
	registered := false
	defer func() {
		if registered {
			s.mu.Lock()
			s.kbfsClients--
			s.mu.Unlock()
		}
	}()
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if !errors.Is(err, io.EOF) {
				_ = enc.Encode(response{Error: fmt.Sprintf("bad request: %v", err)})
			}
			return
		}
		if req.Op == "kbfs-register" && !registered {
			registered = true
			s.mu.Lock()
			s.kbfsClients++
			s.mu.Unlock()
		}
		resp := s.handle(req)
		if err := enc.Encode(resp); err != nil {
			return
		}
		if req.Op == "stop" {
			s.stopOnce.Do(func() { close(s.stopped) })
		}
	}
}

// handle executes one request against the service state.
func (s *service) handle(req request) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch req.Op {
	case "status", "kbfs-register", "stop":
		return response{Status: s.statusLocked()}
	case "oneshot":
		if err := s.oneshotLocked(req.Username, req.PaperKey); err != nil {
			return response{Error: err.Error()}
		}
		return response{Status: s.statusLocked()}
	case "logout":
		s.loggedIn, s.username, s.uid, s.deviceName = false, "", "", ""
		return response{Status: s.statusLocked()}
	case "notification-settings":
		s.typingDisabled = req.Settings["disable-typing"]
		return response{}
	case "chat-send":
		return s.sendLocked(req)
	case "chat-read":
		if !s.loggedIn {
			return response{Error: "Login required"}
		}
		var msgs []sentMessage
		for _, m := range s.messages {
			if req.Channel == nil || sameChannel(m.Channel, *req.Channel) {
				msgs = append(msgs, m)
			}
		}
		return response{Messages: msgs}
	default:
		return response{Error: fmt.Sprintf("unknown request %q", req.Op)}
	}
}

func (s *service) statusLocked() *serviceStatus {
	return &serviceStatus{
		PID:        s.pid,
		Version:    fakeVersion,
		LoggedIn:   s.loggedIn,
		Username:   s.username,
		UID:        s.uid,
		DeviceName: s.deviceName,
		KBFS:       s.kbfsClients > 0,
	}
}

// oneshotLocked follows engine.LoginOneshot: refuse when a device is active, resolve the user,
// derive the device from the paper key, refuse a revoked one. The messages are libkb's.
func (s *service) oneshotLocked(username, paperKey string) error {
	if s.loggedIn {
		return errors.New("You are already logged in as a different user; try logout first")
	}
	name := strings.ToLower(username)
	if s.cfg.users != nil && !s.cfg.users[name] {
		return fmt.Errorf("In resolving '%s': No resolution found", name)
	}
	if s.cfg.paperKey != "" && normalizePaperKey(paperKey) != s.cfg.paperKey {
		return errors.New("No device found no device found for paper key")
	}
	if s.cfg.revoked {
		return fmt.Errorf("Key revoked: %s", fakeKID(name))
	}
	s.loggedIn, s.username, s.uid, s.deviceName = true, name, fakeUID(name), "fakekeybase oneshot"
	return nil
}

// sendLocked records a chat message in memory and in the chat log tests read.
func (s *service) sendLocked(req request) response {
	if !s.loggedIn {
		return response{Error: "Login required"}
	}
	if req.Channel == nil {
		return response{Error: "invalid send v1 options: need channel or conversation_id"}
	}
	m := sentMessage{
		TS:      time.Now().UTC().Format(time.RFC3339Nano),
		ID:      len(s.messages) + 1,
		Sender:  s.username,
		Channel: *req.Channel,
		Body:    req.Body,
	}
	line, err := json.Marshal(m)
	if err != nil {
		return response{Error: fmt.Sprintf("encode message: %v", err)}
	}
	f, err := os.OpenFile(s.paths.chatLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return response{Error: fmt.Sprintf("open chat log: %v", err)}
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return response{Error: fmt.Sprintf("write chat log: %v", err)}
	}
	s.messages = append(s.messages, m)
	return response{MsgID: m.ID}
}

// sameChannel compares channels the way the chat server resolves them: name and topic,
// case-insensitively, "general" being a team's default topic.
func sameChannel(a, b chatChannel) bool {
	topic := func(c chatChannel) string {
		if c.TopicName == "" && c.MembersType == "team" {
			return "general"
		}
		return strings.ToLower(c.TopicName)
	}
	return strings.EqualFold(a.Name, b.Name) && topic(a) == topic(b)
}
