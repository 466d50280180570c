package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keybase/go-keybase-chat-bot/kbchat"
)

// TestKBChat drives the fake with the real kbchat library: Start (whoami, logout, oneshot with the
// key in the environment, notification settings, a `chat api` child), a team message, shutdown.
// It pins down the argv kbchat runs, which the entrypoint inherits when it uses kbchat.
func TestKBChat(t *testing.T) {
	e := newFakeEnv(t)
	// kbchat starts its children with this process's environment.
	t.Setenv("KEYBASE_ALLOW_ROOT", "1")
	t.Setenv("FAKEKEYBASE_LOG", e.log)
	t.Setenv("HOME", e.home)
	// Unset, not empty: exec.Cmd keeps the last of duplicate variables, so an inherited
	// KEYBASE_PAPERKEY would override the one kbchat prepends for oneshot.
	t.Setenv("KEYBASE_PAPERKEY", "")
	os.Unsetenv("KEYBASE_PAPERKEY")

	svc, _ := e.startService(t)
	e.waitReady(t, false) // kbchat does not retry whoami: start it only once the service is up

	api, err := kbchat.Start(kbchat.RunOptions{
		KeybaseLocation: e.keybase,
		HomeDir:         e.home,
		Oneshot:         &kbchat.OneshotOptions{Username: "alice", PaperKey: testPaperKey},
	})
	if err != nil {
		t.Fatalf("kbchat.Start: %v", err)
	}
	if got := api.GetUsername(); got != "alice" {
		t.Errorf("kbchat username = %q", got)
	}
	channel := "matrix"
	resp, err := api.SendMessageByTeamName("acme", &channel, "synapse restarted")
	if err != nil {
		t.Fatalf("SendMessageByTeamName: %v", err)
	}
	if resp.Result.Message != "message sent" || resp.Result.MessageID == nil || *resp.Result.MessageID != 1 {
		t.Errorf("send response: %+v", resp.Result)
	}
	msgs := e.chatLog(t)
	want := chatChannel{Name: "acme", MembersType: "team", TopicName: "matrix"}
	if len(msgs) != 1 || msgs[0].Channel != want || msgs[0].Body != "synapse restarted" || msgs[0].Sender != "alice" {
		t.Errorf("recorded messages: %+v", msgs)
	}

	// Shutdown waits on its `chat api` children without closing their stdin: run it with a
	// deadline and end the children ourselves (they are this process's children, found by ppid).
	done := make(chan error, 1)
	go func() { done <- api.Shutdown() }()
	children := chatAPIChildren(t)
	if len(children) == 0 {
		t.Fatalf("no `chat api` child of this process found")
	}
	for _, pid := range children {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Errorf("signal chat api child %d: %v", pid, err)
		}
	}
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case err := <-done:
		// The interrupted child exits 3, so Shutdown returns that and skips its logout.
		t.Logf("kbchat Shutdown returned %v", err)
	case <-timer.C:
		t.Fatalf("kbchat Shutdown still blocked 15 s after its children were signalled")
	}

	if r := e.run(t, nil, "--no-auto-fork", "logout", "--force"); r.code != 0 {
		t.Errorf("logout: %d %s", r.code, r.stderr)
	}
	if r := e.run(t, nil, "--no-auto-fork", "ctl", "stop"); r.code != 0 {
		t.Errorf("ctl stop: %d %s", r.code, r.stderr)
	}
	if code := svc.Wait(t, 10*time.Second); code != 0 {
		t.Errorf("service exit = %d", code)
	}

	var seq [][]string
	for _, inv := range e.invocations(t) {
		if inv.PaperkeyInArgv {
			t.Errorf("kbchat put the paper key in argv: %q", inv.Args)
		}
		if inv.PaperkeyInEnv != (len(inv.Args) > 2 && inv.Args[2] == "oneshot") {
			t.Errorf("paperkey_in_env=%v for %q", inv.PaperkeyInEnv, inv.Args)
		}
		if len(inv.Args) > 2 && inv.Args[0] == "--home" {
			seq = append(seq, inv.Args[2:])
		}
	}
	wantSeq := [][]string{
		{"whoami", "-json"},
		{"logout", "-f"},
		{"oneshot", "--username", "alice"},
		{"chat", "notification-settings", "-disable-typing=true"},
		{"chat", "api"},
	}
	if !reflect.DeepEqual(seq, wantSeq) {
		t.Errorf("kbchat's invocations (after --home DIR) = %q\nwant %q", seq, wantSeq)
	}
	assertNoSecretOnDisk(t, e.home, e.log)
}

// chatAPIChildren lists this process's children running `keybase ... chat api`.
func chatAPIChildren(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	self := os.Getpid()
	var out []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command name: state ppid ...
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(self) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte("chat\x00api\x00")) {
			out = append(out, pid)
		}
	}
	return out
}
