package keybase

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/keybase/go-keybase-chat-bot/kbchat"
	"go.uber.org/zap"
)

// EventKind is what a notification is about.
type EventKind string

// The events the entrypoint reports to the chat channel.
const (
	EventStart          EventKind = "start"
	EventReady          EventKind = "ready"
	EventConfigApplied  EventKind = "config-applied"
	EventConfigRejected EventKind = "config-rejected"
	EventSynapseCrash   EventKind = "synapse-crash"
	EventSynapseRestart EventKind = "synapse-restart"
	EventShutdown       EventKind = "shutdown"
)

// Notify queues a chat message "[kind] text" for the configured team channel and returns at once:
// it never blocks and never fails, so a slow or broken Keybase cannot affect Synapse. Messages are
// rate-limited by a token bucket (cfg.NotifyBurst at once, then one per cfg.NotifyEvery); a message
// over the limit, or arriving while the queue (cfg.NotifyQueue) is full, is dropped and counted, and
// the next message sent says how many were dropped. EventShutdown bypasses the bucket (it is the
// last word). Without cfg.Notify, Notify does nothing.
func (k *Keybase) Notify(ctx context.Context, kind EventKind, text string) {
	if k == nil || k.notifier == nil || ctx.Err() != nil {
		return
	}
	k.notifier.enqueue(kind, text)
}

// NotifyStats counts notifications: sent, failed (send error or timeout) and dropped (rate limit,
// full queue, or after Stop).
type NotifyStats struct{ Sent, Failed, Dropped int64 }

// NotifyStats returns the notification counters.
func (k *Keybase) NotifyStats() NotifyStats {
	if k == nil || k.notifier == nil {
		return NotifyStats{}
	}
	n := k.notifier
	return NotifyStats{Sent: n.sent.Load(), Failed: n.failed.Load(), Dropped: n.droppedTotal.Load()}
}

// chatAPI is the part of *kbchat.API the notifier uses.
type chatAPI interface {
	SendMessageByTeamName(team string, channel *string, body string, args ...any) (kbchat.SendResponse, error)
	Shutdown() error
}

type message struct {
	kind EventKind
	body string
	// dropped is how many messages were dropped since the previous one was queued.
	dropped int64
}

// notifier sends queued messages one at a time from a single goroutine through kbchat.
type notifier struct {
	team, channel string
	log           *zap.Logger
	bucket        *bucket
	queue         chan message
	connectTimeout,
	sendTimeout time.Duration
	connect func() (chatAPI, error)
	kill    func() int // ends kbchat's keybase children; returns how many

	mu      sync.Mutex
	closing bool
	quit    chan struct{} // closed by close: drain the queue, then exit
	abort   chan struct{} // closed when the flush deadline passed: stop sending
	exited  chan struct{}

	api          chatAPI
	stale        atomic.Bool  // the pipes talk to a dead service: reconnect before the next send
	dropped      atomic.Int64 // since the last queued message
	droppedTotal atomic.Int64
	sent, failed atomic.Int64
}

func newNotifier(cfg Config, team, channel, wrapper string, log *zap.Logger) *notifier {
	n := &notifier{
		team: team, channel: channel, log: log.Named("notify"),
		bucket:         newBucket(cfg.NotifyBurst, cfg.NotifyEvery, cfg.Now),
		queue:          make(chan message, cfg.NotifyQueue),
		connectTimeout: cfg.LoginTimeout, sendTimeout: cfg.SendTimeout,
		quit: make(chan struct{}), abort: make(chan struct{}), exited: make(chan struct{}),
	}
	n.connect = func() (chatAPI, error) {
		// HomeDir stays empty: the wrapper adds --home itself, with --no-auto-fork.
		return kbchat.Start(kbchat.RunOptions{KeybaseLocation: wrapper})
	}
	n.kill = func() int { return killChatChildren(wrapper) }
	return n
}

// enqueue applies the rate limit and queues without blocking.
func (n *notifier) enqueue(kind EventKind, text string) {
	n.mu.Lock()
	closing := n.closing
	n.mu.Unlock()
	if closing || (kind != EventShutdown && !n.bucket.take()) {
		n.drop(kind, "rate limit")
		return
	}
	body := "[" + string(kind) + "]"
	if text != "" {
		body += " " + text
	}
	// The queue has one writer slot per caller; take the drop count only if the message is queued.
	n.mu.Lock()
	defer n.mu.Unlock()
	m := message{kind: kind, body: body, dropped: n.dropped.Load()}
	select {
	case n.queue <- m:
		n.dropped.Add(-m.dropped)
	default:
		n.drop(kind, "queue full")
	}
}

func (n *notifier) drop(kind EventKind, why string) {
	n.dropped.Add(1)
	n.droppedTotal.Add(1)
	n.log.Debug("notification dropped", zap.String("kind", string(kind)), zap.String("why", why))
}

// run is the sender goroutine: it sends until close, then drains what is queued.
func (n *notifier) run() {
	defer close(n.exited)
	for {
		select {
		case m := <-n.queue:
			n.send(m)
		case <-n.quit:
			for {
				select {
				case m := <-n.queue:
					n.send(m)
				default:
					n.disconnect()
					return
				}
			}
		}
	}
}

// send delivers one message, connecting kbchat first when needed. A send that fails or exceeds
// sendTimeout is counted and logged, never retried; after a transport failure the kbchat pipes are
// torn down and the next message reconnects.
func (n *notifier) send(m message) {
	select {
	case <-n.abort:
		n.failed.Add(1)
		return
	default:
	}
	if n.stale.Swap(false) {
		n.disconnect()
	}
	if n.api == nil {
		api, err := n.withTimeout(n.connectTimeout, func() (chatAPI, error) { return n.connect() })
		if err != nil {
			n.failed.Add(1)
			n.log.Warn("keybase chat not connected, notification lost", zap.String("kind", string(m.kind)), zap.Error(err))
			n.kill()
			return
		}
		n.api = api
	}
	body := m.body
	if m.dropped > 0 {
		body += fmt.Sprintf(" (%d earlier notification(s) dropped by the rate limit)", m.dropped)
	}
	channel := n.channel
	var apiErr bool
	_, err := n.withTimeout(n.sendTimeout, func() (chatAPI, error) {
		resp, err := n.api.SendMessageByTeamName(n.team, &channel, "%s", body)
		apiErr = resp.Error != nil
		return nil, err
	})
	if err == nil {
		n.sent.Add(1)
		n.log.Debug("notification sent", zap.String("kind", string(m.kind)))
		return
	}
	n.failed.Add(1)
	n.log.Warn("notification failed", zap.String("kind", string(m.kind)), zap.String("team", n.team), zap.String("channel", n.channel),
		zap.Bool("rejected_by_api", apiErr), zap.Error(err))
	// Whatever failed, start from fresh pipes next time: an API error can also mean the `chat api`
	// child lost its service.
	n.disconnect()
}

// reconnect makes the next send start new kbchat pipes (the service was restarted).
func (n *notifier) reconnect() { n.stale.Store(true) }

// withTimeout runs f in a goroutine and gives up after d or on abort. kbchat has no deadlines of its
// own: a given-up call keeps its goroutine until its keybase child is killed, which the caller
// arranges (kill then disconnect).
func (n *notifier) withTimeout(d time.Duration, f func() (chatAPI, error)) (chatAPI, error) {
	type result struct {
		api chatAPI
		err error
	}
	ch := make(chan result, 1)
	go func() {
		api, err := f()
		ch <- result{api, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.api, r.err
	case <-t.C:
	case <-n.abort:
	}
	// Unblock f by ending the keybase children it waits on, then let it finish in the background.
	n.kill()
	go func() {
		if r := <-ch; r.api != nil {
			shutdownAPI(r.api, n.log)
		}
	}()
	return nil, fmt.Errorf("no answer from keybase within %v", d)
}

// disconnect ends the kbchat pipes: their `chat api` children are killed (kbchat's Shutdown waits on
// them without closing their stdin, so it would block forever otherwise), then Shutdown reaps them
// under a deadline.
func (n *notifier) disconnect() {
	if n.api == nil {
		return
	}
	api := n.api
	n.api = nil
	n.kill()
	shutdownAPI(api, n.log)
}

// shutdownAPI calls kbchat's Shutdown (which only waits now that its children are dead) with a
// deadline, logging when it did not return.
func shutdownAPI(api chatAPI, log *zap.Logger) {
	done := make(chan struct{})
	go func() {
		_ = api.Shutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		log.Warn("kbchat Shutdown did not return within 2s; leaving it behind")
	}
}

// close stops accepting messages, sends what is queued within timeout (or until ctx ends), then
// disconnects kbchat. Messages still queued after that are counted as failed.
func (n *notifier) close(ctx context.Context, timeout time.Duration) {
	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		<-n.exited
		return
	}
	n.closing = true
	close(n.quit)
	n.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-n.exited:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	n.log.Warn("notifications not flushed in time; abandoning the rest")
	close(n.abort)
	n.kill()
	<-n.exited
}

// killChatChildren ends this process's children that run kbchat's keybase commands (their argv
// or their script is the wrapper), found in /proc by parent pid: SIGTERM, up to a second to exit,
// then SIGKILL. Our own CLI calls never run `chat`, and kbchat's pids are the keybase processes
// themselves (the wrapper only execs). kbchat reaps them (Shutdown, or the Run/Wait it is in).
func killChatChildren(wrapper string) int {
	pids := chatChildren(wrapper)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(time.Second)
	for _, pid := range pids {
		for running(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // polling another process's exit; no event to wait on
		}
		if running(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return len(pids)
}

// chatChildren lists the pids of our kbchat children.
func chatChildren(wrapper string) []int {
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || parentPid(pid) != self {
			continue
		}
		argv, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if isKbchatCommand(strings.Split(strings.TrimRight(string(argv), "\x00"), "\x00"), wrapper) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	return i >= 0 && len(f) > 0 && f[0] != "Z"
}

// isKbchatCommand recognises a kbchat child at any point of the wrapper's exec chain:
// `sh WRAPPER chat ...`, `env -i ... sh WRAPPER chat ...`, `setpriv ... keybase ... chat ...`.
func isKbchatCommand(args []string, wrapper string) bool {
	hasWrapper, hasChat := false, false
	for _, a := range args {
		if a == wrapper {
			hasWrapper = true
		}
		if a == "chat" {
			hasChat = true
		}
	}
	return hasChat || hasWrapper
}

// parentPid reads the parent pid from /proc/<pid>/stat (the field after the command in parentheses).
func parentPid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// bucket is a token bucket: burst tokens, one more every `every`.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	burst  float64
	every  time.Duration
	last   time.Time
	now    func() time.Time
}

func newBucket(burst int, every time.Duration, now func() time.Time) *bucket {
	return &bucket{tokens: float64(burst), burst: float64(burst), every: every, last: now(), now: now}
}

// take spends a token if one is available.
func (b *bucket) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(b.burst, b.tokens+float64(el)/float64(b.every))
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}
