package keybase

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

func TestNotificationsReachTheTeamChannelInOrder(t *testing.T) {
	// The container's own environment holds the key (cmd/ may not have scrubbed it): kbchat's
	// children inherit os.Environ, so the wrapper must keep it from them.
	t.Setenv("KEYBASE_PAPERKEY", testKey)
	h := newHarness(t)
	h.cfg.Notify = "acme.ops#alerts"
	k := h.mustStart()
	events := []struct {
		kind EventKind
		text string
	}{
		{EventStart, "synapse-entrypoint starting"},
		{EventReady, "Synapse is ready"},
		{EventConfigApplied, "applied 0123abc"},
		{EventConfigRejected, `rejected 4567def: "bad" yaml & <stuff> 100%s`},
	}
	for _, e := range events {
		k.Notify(t.Context(), e.kind, e.text)
	}
	msgs := h.waitChat(len(events))
	for i, e := range events {
		m := msgs[i]
		if m.Channel.Name != "acme.ops" || m.Channel.MembersType != "team" || m.Channel.TopicName != "alerts" {
			t.Errorf("message %d channel %+v", i, m.Channel)
		}
		if want := "[" + string(e.kind) + "] " + e.text; m.Body != want {
			t.Errorf("message %d body %q, want %q", i, m.Body, want)
		}
		if m.Sender != "alice" {
			t.Errorf("message %d sender %q", i, m.Sender)
		}
	}
	assertNoKeyInProcesses(t, k)
	h.stop(k)
	// kbchat's whoami, notification-settings and chat api went through the wrapper.
	cmds := strings.Join(commands(h.calls()), ",")
	for _, want := range []string{"chat notification-settings", "chat api"} {
		if !strings.Contains(cmds, want) {
			t.Errorf("no %q call: %s", want, cmds)
		}
	}
	assertKeyOnlyInOneshot(t, h.calls())
	assertGlobalFlags(t, h.calls())
	assertNoKeyInLogs(t, h)
	if st := k.NotifyStats(); st.Sent != int64(len(events)) || st.Failed != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestNotificationDefaultChannelIsGeneral(t *testing.T) {
	h := newHarness(t)
	h.cfg.Notify = "acme"
	k := h.mustStart()
	k.Notify(t.Context(), EventShutdown, "")
	m := h.waitChat(1)[0]
	if m.Channel.Name != "acme" || m.Channel.TopicName != "general" || m.Body != "[shutdown]" {
		t.Fatalf("got %+v", m)
	}
}

// fakeClock is a settable clock for the rate limiter.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestNotificationsAreRateLimited(t *testing.T) {
	h := newHarness(t)
	h.cfg.Notify = "acme"
	h.cfg.NotifyBurst = 2
	h.cfg.NotifyEvery = time.Minute
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	h.cfg.Now = clock.Now
	k := h.mustStart()
	for i := 1; i <= 5; i++ {
		k.Notify(t.Context(), EventSynapseCrash, "crash "+strconv.Itoa(i))
	}
	h.waitChat(2)
	if st := k.NotifyStats(); st.Dropped != 3 {
		t.Fatalf("stats %+v, want 3 dropped", st)
	}
	// The shutdown message is never rate-limited.
	k.Notify(t.Context(), EventShutdown, "bye")
	msgs := h.waitChat(3)
	if !strings.HasPrefix(msgs[2].Body, "[shutdown] bye") || !strings.Contains(msgs[2].Body, "3 earlier notification(s) dropped") {
		t.Fatalf("third message %q", msgs[2].Body)
	}
	// Still limited, until a token has been earned.
	k.Notify(t.Context(), EventSynapseRestart, "too soon")
	clock.Add(time.Minute)
	k.Notify(t.Context(), EventSynapseRestart, "later")
	msgs = h.waitChat(4)
	if msgs[3].Body != "[synapse-restart] later (1 earlier notification(s) dropped by the rate limit)" {
		t.Fatalf("fourth message %q", msgs[3].Body)
	}
	if got := len(msgs); got != 4 {
		t.Fatalf("%d messages", got)
	}
	if msgs[0].Body != "[synapse-crash] crash 1" || msgs[1].Body != "[synapse-crash] crash 2" {
		t.Fatalf("first messages %q, %q", msgs[0].Body, msgs[1].Body)
	}
}

// TestNotifyNeverBlocks: with the chat pipes wedged (a service that never answers would do the same),
// Notify returns at once and the queue bound drops the excess.
func TestNotifyNeverBlocks(t *testing.T) {
	n := &notifier{
		team: "acme", channel: "general", log: newHarness(t).logger(),
		bucket: newBucket(1000, time.Second, time.Now), queue: make(chan message, 3),
		connectTimeout: time.Second, sendTimeout: 200 * time.Millisecond,
		quit: make(chan struct{}), abort: make(chan struct{}), exited: make(chan struct{}),
	}
	block := make(chan struct{})
	n.connect = func() (chatAPI, error) { <-block; return nil, os.ErrDeadlineExceeded }
	n.kill = func() int { return 0 }
	go n.run()
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			n.enqueue(EventSynapseCrash, "x")
		}
		close(done)
	}()
	if !testutil.WaitFor(5*time.Second, func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}) {
		t.Fatal("Notify blocked")
	}
	if n.droppedTotal.Load() < 90 {
		t.Fatalf("dropped %d, want most of 100 with a queue of 3", n.droppedTotal.Load())
	}
	close(block)
	n.close(t.Context(), 5*time.Second)
}

// assertNoKeyInProcesses scans every process on the machine: no argv holds the key, and only a
// oneshot (none should be running now) may hold it in its environment. The daemons and kbchat's
// chat api are checked explicitly.
func assertNoKeyInProcesses(t *testing.T, k *Keybase) {
	t.Helper()
	self := strconv.Itoa(os.Getpid())
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var checked []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == self {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, []byte(testKey)) {
			t.Errorf("paper key in the argv of pid %s: %q", e.Name(), cmdline)
		}
		if parentPid(mustAtoi(e.Name())) != os.Getpid() {
			continue
		}
		environ, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		checked = append(checked, strings.ReplaceAll(string(cmdline), "\x00", " "))
		if bytes.HasPrefix(environ, []byte("KEYBASE_PAPERKEY=")) || bytes.Contains(environ, []byte("\x00KEYBASE_PAPERKEY=")) {
			t.Errorf("paper key in the environment of pid %s: %q", e.Name(), cmdline)
		}
	}
	joined := strings.Join(checked, "\n")
	for _, want := range []string{" service", "kbfsfuse", "chat api"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no running %q among our children to check:\n%s", want, joined)
		}
	}
}

func mustAtoi(s string) int { n, _ := strconv.Atoi(s); return n }
