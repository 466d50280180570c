package configrepo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

// validHomeserver accepts a tree whose homeserver.yaml does not say "invalid".
func validHomeserver(_ context.Context, dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "homeserver.yaml"))
	if err != nil {
		return err
	}
	if strings.Contains(string(data), "invalid") {
		return errors.New("homeserver.yaml: server_name is missing")
	}
	return nil
}

// recorder collects a Syncer's callbacks.
type recorder struct {
	mu      sync.Mutex
	updates []Update
	rejects []Reject
}

func (r *recorder) opts(interval time.Duration) SyncOptions {
	return SyncOptions{
		Interval: interval,
		OnUpdate: func(u Update) { r.mu.Lock(); r.updates = append(r.updates, u); r.mu.Unlock() },
		OnReject: func(j Reject) { r.mu.Lock(); r.rejects = append(r.rejects, j); r.mu.Unlock() },
	}
}

func (r *recorder) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.updates), len(r.rejects)
}

func TestSyncRejectsInvalidCommit(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	cfg := baseConfig(t, src.dir)
	cfg.Validate = validHomeserver
	first, err := Ensure(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s, err := NewSyncer(cfg, rec.opts(0), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	bad := src.commit(map[string]string{"homeserver.yaml": "invalid\n"})
	up, err := s.SyncOnce(context.Background())
	if err != nil || up != nil {
		t.Fatalf("SyncOnce = %v, %v; want a rejection reported through OnReject", up, err)
	}
	if _, n := rec.counts(); n != 1 || rec.rejects[0].Commit != bad || !errors.Is(rec.rejects[0].Err, ErrConfig) ||
		!strings.Contains(rec.rejects[0].Err.Error(), "server_name is missing") {
		t.Fatalf("rejects = %+v", rec.rejects)
	}
	if got := readLive(t, cfg.Target, "homeserver.yaml"); got != baseFiles["homeserver.yaml"] {
		t.Fatalf("invalid commit went live: %q", got)
	}
	if _, live, _ := (layout{cfg.Target}).live(); live != first.Commit {
		t.Fatalf("live commit %s, want %s", live, first.Commit)
	}
	// Not retried while the remote stays there.
	if _, err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, n := rec.counts(); n != 1 {
		t.Fatalf("rejection repeated: %d", n)
	}
	// The remote moves to a valid commit: applied.
	good := src.commit(map[string]string{"homeserver.yaml": "server_name: fixed\n", "log.config": deleteFile, "new.yaml": "x: 1\n"})
	up, err = s.SyncOnce(context.Background())
	if err != nil || up == nil {
		t.Fatalf("SyncOnce = %v, %v", up, err)
	}
	if up.From != first.Commit || up.To != good || up.Dir != filepath.Join(cfg.Target, "config") {
		t.Fatalf("update %+v", up)
	}
	if want := []string{"homeserver.yaml", "log.config", "new.yaml"}; !slices.Equal(up.Changed, want) {
		t.Fatalf("changed %v, want %v", up.Changed, want)
	}
	// Top-level links follow the tree: new.yaml appears, log.config goes.
	if got := readLive(t, cfg.Target, "new.yaml"); got != "x: 1\n" {
		t.Fatalf("new.yaml = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(cfg.Target, "log.config")); !os.IsNotExist(err) {
		t.Fatalf("vanished top-level link kept: %v", err)
	}
}

func TestSyncKeepsSynapseDataAndRefusesShadowing(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	cfg := baseConfig(t, src.dir)
	if _, err := Ensure(context.Background(), cfg, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	// Synapse's own files appear in /data.
	db := filepath.Join(cfg.Target, "homeserver.db")
	if err := os.WriteFile(db, []byte("sqlite"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Target, "media_store", "local"), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s, err := NewSyncer(cfg, rec.opts(0), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		src.commit(map[string]string{"homeserver.yaml": fmt.Sprintf("v: %d\n", i)})
		if up, err := s.SyncOnce(context.Background()); err != nil || up == nil {
			t.Fatalf("SyncOnce = %v, %v", up, err)
		}
	}
	// Only the live and the previous tree are kept.
	revs, _ := filepath.Glob(filepath.Join(cfg.Target, ".configrepo", "rev-*"))
	if len(revs) != 2 {
		t.Fatalf("trees kept: %v", revs)
	}
	// A commit whose top-level name would shadow Synapse's data is rejected, the data untouched.
	bad := src.commit(map[string]string{"homeserver.db": "from git\n"})
	if _, err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, n := rec.counts(); n != 1 || rec.rejects[0].Commit != bad || !strings.Contains(rec.rejects[0].Err.Error(), "shadow") {
		t.Fatalf("rejects %+v", rec.rejects)
	}
	if data, _ := os.ReadFile(db); string(data) != "sqlite" {
		t.Fatalf("Synapse data touched: %q", data)
	}
	if fi, err := os.Lstat(filepath.Join(cfg.Target, "media_store")); err != nil || !fi.IsDir() {
		t.Fatalf("media_store touched: %v", err)
	}
}

// TestSyncSwapIsAtomic has a reader read /data/homeserver.yaml as fast as it can while the Syncer
// swaps in new versions: every read must be one complete version, never a mix and never missing.
func TestSyncSwapIsAtomic(t *testing.T) {
	const versions = 8
	content := func(v int) string { // large enough that a torn read would show
		return fmt.Sprintf("version: %d\n", v) + strings.Repeat(fmt.Sprintf("# filler %d\n", v), 20000)
	}
	src := newTestRepo(t, map[string]string{"homeserver.yaml": content(0), "other.yaml": "a\n"})
	cfg := baseConfig(t, src.dir)
	cfg.Validate = validHomeserver
	if _, err := Ensure(context.Background(), cfg, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	valid := map[string]int{content(0): 0}
	for v := 1; v <= versions; v++ {
		valid[content(v)] = v
	}

	var reads atomic.Int64
	var bad atomic.Value
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, p := range []string{filepath.Join(cfg.Target, "homeserver.yaml"), filepath.Join(cfg.Target, "config", "homeserver.yaml")} {
				data, err := os.ReadFile(p)
				if err != nil {
					bad.Store(fmt.Sprintf("read %s: %v", p, err))
					return
				}
				if _, ok := valid[string(data)]; !ok {
					bad.Store(fmt.Sprintf("read %s: a mix of versions (%d bytes)", p, len(data)))
					return
				}
				reads.Add(1)
			}
		}
	}()

	rec := &recorder{}
	s, err := NewSyncer(cfg, rec.opts(5*time.Millisecond), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(ctx) }()
	for v := 1; v <= versions; v++ {
		src.commit(map[string]string{"homeserver.yaml": content(v)})
		testutil.Eventually(t, 20*time.Second, fmt.Sprintf("version %d to go live", v), func() bool {
			u, _ := rec.counts()
			return u >= v || bad.Load() != nil
		})
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Fatalf("Run: %v", err)
	}
	close(stop)
	<-readerDone
	if msg := bad.Load(); msg != nil {
		t.Fatal(msg)
	}
	if got := readLive(t, cfg.Target, "homeserver.yaml"); valid[got] != versions {
		t.Fatalf("final version %d, want %d", valid[got], versions)
	}
	t.Logf("%d consistent reads across %d swaps", reads.Load(), versions)
	if reads.Load() == 0 {
		t.Fatal("reader never read")
	}
}

func TestSyncDisabled(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	cfg := baseConfig(t, src.dir)
	s, err := NewSyncer(cfg, SyncOptions{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Run(ctx); err != nil { // returns at once: the caller decides whether to sync
		t.Fatal(err)
	}
}
