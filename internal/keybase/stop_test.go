package keybase

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStopIsBoundedWhenLogoutHangs: the fake has no switch for a hanging logout, so a wrapper script
// in front of it turns `logout` into a process that never ends. Stop must kill it after StopTimeout
// and go on with `ctl stop` and the daemons.
func TestStopIsBoundedWhenLogoutHangs(t *testing.T) {
	h := newHarness(t)
	script := filepath.Join(t.TempDir(), "keybase")
	body := "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = logout ] && exec sleep 3600; done\nexec " + shellQuote(h.cfg.Binary) + " \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	h.cfg.Binary = script
	h.cfg.StopTimeout = time.Second
	h.cfg.Notify = "acme"
	k := h.mustStart()
	k.Notify(t.Context(), EventReady, "up")
	h.waitChat(1)
	svc := k.service.sup.Current().Pid()

	// The caller's last word, sent right before Stop: Stop flushes it before logging out.
	k.Notify(t.Context(), EventShutdown, "stopping")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- k.Stop(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second): // a hang detector, far above the ~3 s budget
		t.Fatal("Stop hung on a hanging logout")
	}
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "logout") {
		t.Fatalf("Stop: %v, want the logout timeout reported", err)
	}
	if alive(svc) {
		t.Fatal("service survived Stop")
	}
	if msgs := h.chat(); len(msgs) != 2 || msgs[1].Body != "[shutdown] stopping" {
		t.Fatalf("shutdown notification not flushed by Stop: %+v", msgs)
	}
	if err := k.CopyBareRepo(t.Context(), "team", "acme", "config", t.TempDir()+"/x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("CopyBareRepo after Stop: %v", err)
	}
	cmds := commands(h.calls())
	if !contains(cmds, "ctl stop") {
		t.Fatalf("no ctl stop after the hanging logout: %q", cmds)
	}
	for _, pid := range chatChildren("") {
		t.Errorf("child %d left behind", pid)
	}
	for _, e := range mustReadDir(t, "/proc") {
		if cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && string(cmd) == "sleep\x003600\x00" && alive(mustAtoi(e.Name())) {
			t.Errorf("the hanging logout (pid %s) was not killed", e.Name())
		}
	}
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	e, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestStopWithAnExpiredContextKillsTheDaemons(t *testing.T) {
	h := newHarness(t)
	h.cfg.StopTimeout = time.Second
	k := h.mustStart()
	svc, kbfs := k.service.sup.Current().Pid(), k.kbfs.sup.Current().Pid()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = k.Stop(ctx)
	// Stop returned ctx.Err() at once or after killing; either way the daemons go.
	<-k.stopDone
	if alive(svc) || alive(kbfs) {
		t.Fatal("daemons survived a Stop with an expired context")
	}
	if err := k.Stop(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("second Stop: %v", err)
	}
}
