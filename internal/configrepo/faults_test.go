package configrepo

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

func TestConnectionRefusedRetriesThenUnavailable(t *testing.T) {
	port := testutil.FreePort(t)
	cfg := baseConfig(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/conf.git")
	cfg.Username, cfg.Password = "alice", "hunter2"
	cfg.RetryBudget = 300 * time.Millisecond
	_, err := Ensure(context.Background(), cfg, testLogger(t))
	requireKind(t, err, ErrUnavailable, "clone http://***@127.0.0.1:", "unreachable after", "connection refused")
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("password in error: %v", err)
	}
	if ExitCode(err) != 69 {
		t.Fatalf("exit code %d", ExitCode(err))
	}
	// The attempt is recoverable: nothing live, but the directory is ours for the next try.
	if _, err := os.Lstat(filepath.Join(cfg.Target, "config")); !os.IsNotExist(err) {
		t.Fatalf("config link after a failed clone: %v", err)
	}
}

func TestHTTP5xxIsRetried(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	root := t.TempDir()
	src.bareCopy(filepath.Join(root, "conf.git"))
	srv := newGitHTTPServer(t, root, "", "")
	srv.fail503.Store(2)
	cfg := baseConfig(t, srv.url("conf.git"))
	if _, err := Ensure(context.Background(), cfg, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if n := srv.infoCalls.Load(); n != 3 {
		t.Fatalf("%d ref advertisements, want 3 (two 503s, then success)", n)
	}
}

func TestHTTPWrongCredentialsNotRetried(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	root := t.TempDir()
	src.bareCopy(filepath.Join(root, "conf.git"))
	srv := newGitHTTPServer(t, root, "alice", "right")
	cfg := baseConfig(t, srv.url("conf.git"))
	cfg.Username, cfg.Password = "alice", "wrong-password"
	_, err := Ensure(context.Background(), cfg, testLogger(t))
	requireKind(t, err, ErrConfig, "clone http://***@127.0.0.1:", "authentication required")
	if !errors.Is(err, transport.ErrAuthenticationRequired) {
		t.Fatalf("cause lost: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("password in error: %v", err)
	}
	if n := srv.infoCalls.Load(); n != 1 {
		t.Fatalf("auth failure retried: %d requests", n)
	}
	if ExitCode(err) != 78 {
		t.Fatalf("exit code %d", ExitCode(err))
	}
}

func TestMissingRepo(t *testing.T) {
	t.Run("http", func(t *testing.T) {
		srv := newGitHTTPServer(t, t.TempDir(), "", "")
		cfg := baseConfig(t, srv.url("nope.git"))
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "clone "+srv.url("nope.git"), "repository not found")
	})
	t.Run("local", func(t *testing.T) {
		cfg := baseConfig(t, filepath.Join(t.TempDir(), "nope"))
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "repository not found")
	})
}

func TestMissingRef(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	for _, ref := range []string{"no-such-branch", strings.Repeat("ab", 20)} {
		cfg := baseConfig(t, src.dir)
		cfg.Ref = ref
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "ref not found")
	}
}

func TestSSHHostKeyChecks(t *testing.T) {
	srv := startSSHD(t)
	src := newTestRepo(t, baseFiles)
	bare := filepath.Join(t.TempDir(), "conf.git")
	src.bareCopy(bare)
	url := "ssh://root@127.0.0.1:" + strconv.Itoa(srv.port) + bare

	t.Run("missing known_hosts setting", func(t *testing.T) {
		cfg := baseConfig(t, url)
		cfg.SSHKeyFile = srv.keyFile
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "known_hosts")
	})
	t.Run("missing known_hosts file", func(t *testing.T) {
		cfg := baseConfig(t, url)
		cfg.SSHKeyFile, cfg.KnownHostsFile = srv.keyFile, filepath.Join(t.TempDir(), "absent")
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "known_hosts")
	})
	t.Run("host not in known_hosts", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		other := writeKey(t, filepath.Join(t.TempDir(), "k"))
		line := knownhosts.Line([]string{"[example.org]:22"}, other)
		if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(t, url)
		cfg.SSHKeyFile, cfg.KnownHostsFile = srv.keyFile, kh
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "clone ssh://root@127.0.0.1", "key is unknown")
	})
	t.Run("wrong host key", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		other := writeKey(t, filepath.Join(t.TempDir(), "k"))
		line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.port)))}, other)
		if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(t, url)
		cfg.SSHKeyFile, cfg.KnownHostsFile = srv.keyFile, kh
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "clone ssh://root@127.0.0.1")
	})
	t.Run("key not authorized", func(t *testing.T) {
		key := filepath.Join(t.TempDir(), "stranger")
		writeKey(t, key)
		cfg := baseConfig(t, url)
		cfg.SSHKeyFile, cfg.KnownHostsFile = key, srv.knownHosts
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "unable to authenticate")
	})
	t.Run("missing repo", func(t *testing.T) {
		cfg := baseConfig(t, "ssh://root@127.0.0.1:"+strconv.Itoa(srv.port)+"/nonexistent/repo.git")
		cfg.SSHKeyFile, cfg.KnownHostsFile = srv.keyFile, srv.knownHosts
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "repository not found")
	})
}

func TestForeignTargetRefused(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	cfg := baseConfig(t, src.dir)
	if err := os.MkdirAll(cfg.Target, 0o755); err != nil {
		t.Fatal(err)
	}
	precious := filepath.Join(cfg.Target, "homeserver.db")
	if err := os.WriteFile(precious, []byte("sqlite"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Ensure(context.Background(), cfg, testLogger(t))
	requireKind(t, err, ErrConfig, "not empty", "homeserver.db")
	entries, _ := os.ReadDir(cfg.Target)
	if len(entries) != 1 {
		t.Fatalf("foreign target was modified: %v", entries)
	}

	t.Run("clone of another URL", func(t *testing.T) {
		other := newTestRepo(t, baseFiles)
		cfg := baseConfig(t, src.dir)
		if _, err := Ensure(context.Background(), cfg, testLogger(t)); err != nil {
			t.Fatal(err)
		}
		cfg.URL = other.dir
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "holds a clone of")
	})
}

func TestLocalModifications(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	cfg := baseConfig(t, src.dir)
	if _, err := Ensure(context.Background(), cfg, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	// The operator edits the live config through the public path and drops in a file.
	if err := os.WriteFile(filepath.Join(cfg.Target, "homeserver.yaml"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Target, "config", "notes.txt"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(cfg.Target, "config", "log.config")); err != nil {
		t.Fatal(err)
	}
	next := src.commit(map[string]string{"homeserver.yaml": "server_name: new\n"})

	_, err := Ensure(context.Background(), cfg, testLogger(t))
	requireKind(t, err, ErrConfig, "modified locally", "modified: homeserver.yaml", "added: notes.txt", "deleted: log.config")
	if got := readLive(t, cfg.Target, "homeserver.yaml"); got != "edited\n" {
		t.Fatalf("local edit destroyed: %q", got)
	}

	cfg.DiscardLocalChanges = true
	res, err := Ensure(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != next || readLive(t, cfg.Target, "homeserver.yaml") != "server_name: new\n" {
		t.Fatalf("not updated: %+v", res)
	}
}

func TestLocalModificationsSameCommit(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	cfg := baseConfig(t, src.dir)
	first, err := Ensure(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Target, "homeserver.yaml"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Ensure(context.Background(), cfg, testLogger(t))
	requireKind(t, err, ErrConfig, "modified: homeserver.yaml")
	cfg.DiscardLocalChanges = true
	res, err := Ensure(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != first.Commit || res.Tree == first.Tree || readLive(t, cfg.Target, "homeserver.yaml") != baseFiles["homeserver.yaml"] {
		t.Fatalf("pristine tree not restored: %+v", res)
	}
}

func TestSymlinkEscapeRefused(t *testing.T) {
	for name, target := range map[string]string{"relative": "../../../etc/passwd", "absolute": "/etc/passwd", "nested": "sub/../../x"} {
		t.Run(name, func(t *testing.T) {
			src := newTestRepo(t, map[string]string{"homeserver.yaml": "a\n", "dir/evil": symlinkPrefix + target})
			cfg := baseConfig(t, src.dir)
			_, err := Ensure(context.Background(), cfg, testLogger(t))
			requireKind(t, err, ErrConfig, "symlink points outside the repository", "dir/evil")
			if _, err := os.Lstat(filepath.Join(cfg.Target, "config")); !os.IsNotExist(err) {
				t.Fatalf("escaping tree went live: %v", err)
			}
		})
	}
}

func TestOversizedRefused(t *testing.T) {
	t.Run("pack", func(t *testing.T) {
		noise := make([]byte, 256<<10)
		_, _ = rand.Read(noise)
		src := newTestRepo(t, map[string]string{"homeserver.yaml": "a\n", "blob.bin": string(noise)})
		cfg := baseConfig(t, src.dir)
		cfg.MaxBytes = 64 << 10
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "exceeds the size limit", "fetched pack")
	})
	t.Run("checkout", func(t *testing.T) {
		// Compresses to almost nothing: the pack passes, the tree does not.
		src := newTestRepo(t, map[string]string{"homeserver.yaml": "a\n", "zeros.bin": string(make([]byte, 1<<20))})
		cfg := baseConfig(t, src.dir)
		cfg.MaxBytes = 256 << 10
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "exceeds the size limit", "checked-out tree")
	})
	t.Run("keybase copy", func(t *testing.T) {
		noise := make([]byte, 256<<10)
		_, _ = rand.Read(noise)
		src := newTestRepo(t, map[string]string{"blob.bin": string(noise)})
		cfg := baseConfig(t, "keybase://team/t/big")
		cfg.Copier = kbfsFixture(t, src, "t", "big")
		cfg.MaxBytes = 64 << 10
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "exceeds the size limit", "KBFS")
	})
}

func TestCancelDuringClone(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	root := t.TempDir()
	src.bareCopy(filepath.Join(root, "conf.git"))
	srv := newGitHTTPServer(t, root, "", "")
	srv.hangPack.Store(true)
	cfg := baseConfig(t, srv.url("conf.git"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Ensure(ctx, cfg, testLogger(t))
		done <- err
	}()
	select {
	case <-srv.packSeen: // the clone is now waiting for the pack
	case err := <-done:
		t.Fatalf("Ensure returned before the pack request: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("timed out waiting for the upload-pack request")
	}
	cancel() // what SIGTERM does in cmd/
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want context.Canceled, got %v", err)
		}
		requireKind(t, err, nil, "clone "+srv.url("conf.git"))
	case <-time.After(5 * time.Second):
		t.Fatal("Ensure did not return within 5s of cancellation")
	}
}

func TestParseSource(t *testing.T) {
	cases := []struct {
		url      string
		kind     sourceKind
		redacted string
	}{
		{"https://user:tok@example.com/x.git", srcHTTP, "https://***@example.com/x.git"},
		{"https://example.com/x.git", srcHTTP, "https://example.com/x.git"},
		{"git@github.com:org/conf.git", srcSSH, "ssh://git@github.com/org/conf.git"},
		{"ssh://git@example.com:2222/conf.git", srcSSH, "ssh://git@example.com:2222/conf.git"},
		{"keybase://private/alice/conf", srcKeybase, "keybase://private/alice/conf"},
		{"file:///srv/conf", srcLocal, "file:///srv/conf"},
		{"/srv/conf", srcLocal, "/srv/conf"},
	}
	for _, c := range cases {
		cfg := Config{URL: c.url, KnownHostsFile: "kh", SSHKeyFile: "k", Copier: &fixtureCopier{}}
		s, err := parseSource(cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		if s.kind != c.kind || s.redacted != c.redacted || strings.Contains(s.identity, "tok") {
			t.Errorf("%s: kind %d redacted %q identity %q", c.url, s.kind, s.redacted, s.identity)
		}
	}
	for _, bad := range []string{"", "git://example.com/x", "keybase://team/only", "ftp://x/y"} {
		if _, err := parseSource(Config{URL: bad, Copier: &fixtureCopier{}}); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: want ErrConfig, got %v", bad, err)
		}
	}
}

func TestSilentServerTimesOut(t *testing.T) {
	// Accepts connections and never answers: each attempt must end at NetworkTimeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	cfg := baseConfig(t, "http://"+ln.Addr().String()+"/conf.git")
	cfg.NetworkTimeout = 100 * time.Millisecond
	cfg.RetryBudget = 250 * time.Millisecond
	_, err = Ensure(context.Background(), cfg, testLogger(t))
	requireKind(t, err, ErrUnavailable, "clone http://127.0.0.1:", "no answer within 100ms")
}

func TestValidationFailureOnFirstClone(t *testing.T) {
	src := newTestRepo(t, map[string]string{"homeserver.yaml": "invalid\n"})
	cfg := baseConfig(t, src.dir)
	cfg.Validate = validHomeserver
	_, err := Ensure(context.Background(), cfg, testLogger(t))
	requireKind(t, err, ErrConfig, "validate ", "server_name is missing")
	if _, err := os.Lstat(filepath.Join(cfg.Target, "homeserver.yaml")); !os.IsNotExist(err) {
		t.Fatalf("invalid tree exposed: %v", err)
	}
	revs, _ := filepath.Glob(filepath.Join(cfg.Target, ".configrepo", "rev-*"))
	if len(revs) != 0 {
		t.Fatalf("rejected tree left behind: %v", revs)
	}
}

func TestMalformedURLRedacted(t *testing.T) {
	for _, url := range []string{"https://u:topsecret@host:99999999/x", "https://u:topsecret@ho st/x"} {
		_, err := Ensure(context.Background(), baseConfig(t, url), testLogger(t))
		requireKind(t, err, ErrConfig, "***@")
		if strings.Contains(err.Error(), "topsecret") {
			t.Fatalf("secret in error: %v", err)
		}
	}
}
