package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// notRunningMsg is the real Linux wording (go/kbfs/libkbfs KBFSContext.CheckService) for a
// missing or dead service socket.
const notRunningMsg = "keybase isn't running; try `run_keybase`"

// statePaths is where one service keeps its state. Like the real client without XDG_RUNTIME_DIR,
// everything lives in <home>/.config/keybase, home being --home or $HOME (XDG_RUNTIME_DIR is
// ignored on purpose so tests stay inside their temp HOME).
type statePaths struct {
	dir     string // <home>/.config/keybase
	socket  string // keybased.sock (or --socket-file)
	pidFile string // keybased.pid (or --pid-file), flock-ed by the running service
	chatLog string // fakekeybase-chat.jsonl: every message sent through `chat api`
}

// pathsFor derives the state paths from the global flags and environment.
func pathsFor(g parsedFlags, getenv func(string) string) statePaths {
	home := g.value("home")
	if home == "" {
		home = getenv("HOME")
	}
	dir := filepath.Join(home, ".config", "keybase")
	sp := statePaths{
		dir:     dir,
		socket:  filepath.Join(dir, "keybased.sock"),
		pidFile: filepath.Join(dir, "keybased.pid"),
		chatLog: filepath.Join(dir, "fakekeybase-chat.jsonl"),
	}
	if s := g.value("socket-file"); s != "" {
		sp.socket = s
	}
	if s := g.value("pid-file"); s != "" {
		sp.pidFile = s
	}
	return sp
}

// chatChannel is the channel object of the chat JSON API (keys matched case-insensitively by
// encoding/json, as the real decoder does).
type chatChannel struct {
	Name        string `json:"name"`
	Public      bool   `json:"public,omitempty"`
	MembersType string `json:"members_type,omitempty"`
	TopicType   string `json:"topic_type,omitempty"`
	TopicName   string `json:"topic_name,omitempty"`
}

// sentMessage is one line of the chat log and one entry of `read`.
type sentMessage struct {
	TS      string      `json:"ts"`
	ID      int         `json:"id"`
	Sender  string      `json:"sender"`
	Channel chatChannel `json:"channel"`
	Body    string      `json:"body"`
}

// request is one call from a CLI process to the service over the socket (one JSON per line).
type request struct {
	Op       string          `json:"op"`
	Username string          `json:"username,omitempty"`
	PaperKey string          `json:"paperkey,omitempty"` // travels in memory only, never logged
	Channel  *chatChannel    `json:"channel,omitempty"`
	Body     string          `json:"body,omitempty"`
	Settings map[string]bool `json:"settings,omitempty"`
}

// response is the service's answer. Error carries the real CLI's message for the failure.
type response struct {
	Error    string         `json:"error,omitempty"`
	Status   *serviceStatus `json:"status,omitempty"`
	MsgID    int            `json:"msg_id,omitempty"`
	Messages []sentMessage  `json:"messages,omitempty"`
}

// serviceStatus is the service state the CLI commands render.
type serviceStatus struct {
	PID        int    `json:"pid"`
	Version    string `json:"version"`
	LoggedIn   bool   `json:"logged_in"`
	Username   string `json:"username,omitempty"`
	UID        string `json:"uid,omitempty"`
	DeviceName string `json:"device_name,omitempty"`
	KBFS       bool   `json:"kbfs"`
}

// client is one connection to the service.
type client struct {
	conn net.Conn
	enc  *json.Encoder
	dec  *json.Decoder
}

// dialService connects to the service socket. A missing socket or a refused connection (stale
// socket of a crashed service) is the real "isn't running" error.
func dialService(socket string) (*client, error) {
	conn, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return nil, errNotOK("%s", notRunningMsg)
	}
	return &client{conn: conn, enc: json.NewEncoder(conn), dec: json.NewDecoder(bufio.NewReader(conn))}, nil
}

// call sends req and waits for the answer. A connection that breaks mid-call means the service
// went away: the same error as not running.
func (c *client) call(req request) (response, error) {
	var resp response
	if err := c.enc.Encode(req); err != nil {
		return resp, errNotOK("%s", notRunningMsg)
	}
	if err := c.dec.Decode(&resp); err != nil {
		return resp, errNotOK("%s", notRunningMsg)
	}
	if resp.Error != "" {
		return resp, errNotOK("%s", resp.Error)
	}
	return resp, nil
}

func (c *client) close() { _ = c.conn.Close() }

// callOnce dials, makes one call and hangs up: what most CLI commands do.
func callOnce(socket string, req request) (response, error) {
	c, err := dialService(socket)
	if err != nil {
		return response{}, err
	}
	defer c.close()
	return c.call(req)
}

// statusOf asks the service for its state.
func statusOf(socket string) (serviceStatus, error) {
	resp, err := callOnce(socket, request{Op: "status"})
	if err != nil {
		return serviceStatus{}, err
	}
	if resp.Status == nil {
		return serviceStatus{}, fmt.Errorf("service answered status without a status")
	}
	return *resp.Status, nil
}
