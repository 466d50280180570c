package configrepo

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var baseFiles = map[string]string{
	"homeserver.yaml":          "server_name: example.com\n",
	"log.config":               "version: 1\n",
	"example.com.signing.key":  "ed25519 a_key secret\n",
	"tls/server.pem":           "-----BEGIN-----\n",
	"templates/notice.html":    "<p>hi</p>\n",
	"templates/link-to-notice": symlinkPrefix + "notice.html",
}

// checkClone asserts the live layout after a first clone at commit.
func checkClone(t *testing.T, res Result, target, commit string) {
	t.Helper()
	if res.Commit != commit {
		t.Fatalf("live commit %s, want %s", res.Commit, commit)
	}
	if res.Dir != filepath.Join(target, "config") {
		t.Fatalf("Dir %s", res.Dir)
	}
	if got := readLive(t, target, "homeserver.yaml"); got != baseFiles["homeserver.yaml"] {
		t.Fatalf("homeserver.yaml = %q", got)
	}
	if got := readLive(t, target, "config/templates/link-to-notice"); got != baseFiles["templates/notice.html"] {
		t.Fatalf("symlink inside repo = %q", got)
	}
	if _, err := os.Stat(filepath.Join(res.Tree, ".git")); !os.IsNotExist(err) {
		t.Fatalf("live tree has a .git: %v", err)
	}
	for name, want := range map[string]os.FileMode{
		"homeserver.yaml": 0o644, "example.com.signing.key": 0o600, "tls/server.pem": 0o600, "templates/notice.html": 0o644,
	} {
		fi, err := os.Stat(filepath.Join(target, "config", name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
}

func TestCloneLocalPath(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	head := src.commit(map[string]string{"extra.txt": "x\n"})
	cfg := baseConfig(t, src.dir)
	res, err := Ensure(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	checkClone(t, res, cfg.Target, head)
	if !res.Changed {
		t.Fatal("first clone not reported as a change")
	}
	// A second Ensure with nothing new is a no-op.
	res2, err := Ensure(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if res2.Changed || res2.Tree != res.Tree {
		t.Fatalf("second Ensure changed something: %+v vs %+v", res2, res)
	}
}

func TestCloneFileURLAndBare(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	bare := filepath.Join(t.TempDir(), "bare.git")
	src.bareCopy(bare)
	head, _ := src.repo.Head()
	for _, url := range []string{"file://" + src.dir, "file://" + bare, bare} {
		t.Run(url, func(t *testing.T) {
			cfg := baseConfig(t, url)
			res, err := Ensure(context.Background(), cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			checkClone(t, res, cfg.Target, head.Hash().String())
		})
	}
}

func TestRefKinds(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	first := src.commit(map[string]string{"homeserver.yaml": "v: tagged\n"})
	src.tag("v1.0")
	src.branch("stable")
	middle := src.commit(map[string]string{"homeserver.yaml": "v: middle\n"})
	src.commit(map[string]string{"homeserver.yaml": "v: head\n"})
	cases := []struct{ ref, want, content string }{
		{"", "", "v: head\n"},
		{"main", "", "v: head\n"},
		{"stable", first, "v: tagged\n"},
		{"v1.0", first, "v: tagged\n"},
		{"refs/tags/v1.0", first, "v: tagged\n"},
		{middle, middle, "v: middle\n"}, // a commit no ref points at
	}
	for _, c := range cases {
		t.Run("ref="+c.ref, func(t *testing.T) {
			cfg := baseConfig(t, src.dir)
			cfg.Ref = c.ref
			res, err := Ensure(context.Background(), cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if c.want != "" && res.Commit != c.want {
				t.Fatalf("commit %s, want %s", res.Commit, c.want)
			}
			if got := readLive(t, cfg.Target, "homeserver.yaml"); got != c.content {
				t.Fatalf("homeserver.yaml = %q, want %q", got, c.content)
			}
		})
	}
}

func TestCloneHTTPBasicAuth(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	root := t.TempDir()
	src.bareCopy(filepath.Join(root, "conf.git"))
	srv := newGitHTTPServer(t, root, "alice", "s3cret-token")
	head, _ := src.repo.Head()

	t.Run("config credentials", func(t *testing.T) {
		cfg := baseConfig(t, srv.url("conf.git"))
		cfg.Username, cfg.Password = "alice", "s3cret-token"
		res, err := Ensure(context.Background(), cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		checkClone(t, res, cfg.Target, head.Hash().String())
		state, err := os.ReadFile(filepath.Join(cfg.Target, ".configrepo", "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(state), "s3cret") {
			t.Fatalf("state.json holds the password: %s", state)
		}
	})
	t.Run("credentials in URL", func(t *testing.T) {
		url := strings.Replace(srv.url("conf.git"), "http://", "http://alice:s3cret-token@", 1)
		cfg := baseConfig(t, url)
		res, err := Ensure(context.Background(), cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		checkClone(t, res, cfg.Target, head.Hash().String())
	})
	t.Run("fetch update", func(t *testing.T) {
		cfg := baseConfig(t, srv.url("conf.git"))
		cfg.Username, cfg.Password = "alice", "s3cret-token"
		if _, err := Ensure(context.Background(), cfg, testLogger(t)); err != nil {
			t.Fatal(err)
		}
		next := src.commit(map[string]string{"homeserver.yaml": "server_name: changed\n"})
		runGit(t, src.dir, "push", "-q", filepath.Join(root, "conf.git"), "main")
		res, err := Ensure(context.Background(), cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if res.Commit != next || readLive(t, cfg.Target, "homeserver.yaml") != "server_name: changed\n" {
			t.Fatalf("update not applied: %+v", res)
		}
	})
}

func TestCloneSSH(t *testing.T) {
	srv := startSSHD(t)
	src := newTestRepo(t, baseFiles)
	bare := filepath.Join(t.TempDir(), "conf.git")
	src.bareCopy(bare)
	head, _ := src.repo.Head()
	user := "root"
	port := strconv.Itoa(srv.port)
	for _, url := range []string{
		"ssh://" + user + "@127.0.0.1:" + port + bare,
		user + "@127.0.0.1:" + port + ":" + bare, // scp-like, with go-git's host:port:path extension
	} {
		t.Run(url, func(t *testing.T) {
			cfg := baseConfig(t, url)
			cfg.SSHKeyFile, cfg.KnownHostsFile = srv.keyFile, srv.knownHosts
			res, err := Ensure(context.Background(), cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			checkClone(t, res, cfg.Target, head.Hash().String())
		})
	}
	t.Run("incremental fetch", func(t *testing.T) {
		cfg := baseConfig(t, "ssh://"+user+"@127.0.0.1:"+port+bare)
		cfg.SSHKeyFile, cfg.KnownHostsFile = srv.keyFile, srv.knownHosts
		if _, err := Ensure(context.Background(), cfg, testLogger(t)); err != nil {
			t.Fatal(err)
		}
		next := src.commit(map[string]string{"homeserver.yaml": "server_name: over-ssh\n"})
		runGit(t, src.dir, "push", "-q", bare, "main")
		res, err := Ensure(context.Background(), cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if res.Commit != next || readLive(t, cfg.Target, "homeserver.yaml") != "server_name: over-ssh\n" {
			t.Fatalf("not updated: %+v", res)
		}
	})
}

func TestCloneKeybase(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	copier := kbfsFixture(t, src, "dentacoin", "matrix")
	head, _ := src.repo.Head()
	cfg := baseConfig(t, "keybase://team/dentacoin/Matrix.git") // KBFS stores it lower-cased, no .git
	cfg.Copier = copier
	res, err := Ensure(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	checkClone(t, res, cfg.Target, head.Hash().String())
	if entries, _ := os.ReadDir(filepath.Join(cfg.Target, ".configrepo", "tmp")); len(entries) != 0 {
		t.Fatalf("keybase scratch copies left behind: %v", entries)
	}

	t.Run("sync", func(t *testing.T) {
		rec := &recorder{}
		s, err := NewSyncer(cfg, rec.opts(0), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		next := src.commit(map[string]string{"homeserver.yaml": "server_name: from-kbfs\n"})
		runGit(t, src.dir, "push", "-q", filepath.Join(copier.root, "team", "dentacoin", ".kbfs_git", "matrix"), "main")
		up, err := s.SyncOnce(context.Background())
		if err != nil || up == nil || up.To != next {
			t.Fatalf("SyncOnce = %+v, %v", up, err)
		}
		if got := readLive(t, cfg.Target, "homeserver.yaml"); got != "server_name: from-kbfs\n" {
			t.Fatalf("homeserver.yaml = %q", got)
		}
	})
	t.Run("missing repo", func(t *testing.T) {
		cfg := baseConfig(t, "keybase://team/dentacoin/nope")
		cfg.Copier = copier
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "clone keybase://team/dentacoin/nope", "repository not found")
	})
	t.Run("no copier", func(t *testing.T) {
		cfg := baseConfig(t, "keybase://team/dentacoin/matrix")
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "copier")
	})
	t.Run("bad kind", func(t *testing.T) {
		cfg := baseConfig(t, "keybase://teams/dentacoin/matrix")
		cfg.Copier = copier
		_, err := Ensure(context.Background(), cfg, testLogger(t))
		requireKind(t, err, ErrConfig, "not team, private or public")
	})
}

func TestChownAndEmptyVolume(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	cfg := baseConfig(t, src.dir)
	// An ext4 volume root: empty apart from lost+found.
	if err := os.MkdirAll(filepath.Join(cfg.Target, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg.Chown, cfg.UID, cfg.GID = true, 4242, 4343
	res, err := Ensure(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: ownership not checked")
		return
	}
	for _, p := range []string{res.Tree, filepath.Join(res.Tree, "homeserver.yaml"), filepath.Join(res.Tree, "tls"),
		filepath.Join(res.Tree, "tls/server.pem"), filepath.Join(cfg.Target, "homeserver.yaml"), filepath.Join(cfg.Target, "config")} {
		uid, gid := owner(t, p)
		if uid != 4242 || gid != 4343 {
			t.Errorf("%s owned by %d:%d", p, uid, gid)
		}
	}
}

func TestCloneHTTPSWithCABundle(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	root := t.TempDir()
	src.bareCopy(filepath.Join(root, "conf.git"))
	srv := startGitHTTPServer(t, root, "git", "tok", true)
	head, _ := src.repo.Head()

	cfg := baseConfig(t, srv.url("conf.git"))
	cfg.Password = "tok" // a token alone: sent as user "git"
	_, err := Ensure(context.Background(), cfg, testLogger(t))
	requireKind(t, err, ErrConfig, "clone https://***@127.0.0.1:", "certificate")

	cfg = baseConfig(t, srv.url("conf.git"))
	cfg.Password = "tok"
	cfg.CABundle = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	res, err := Ensure(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	checkClone(t, res, cfg.Target, head.Hash().String())
}

func TestKeybaseTransientCopyFailuresRetried(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	copier := &flakyCopier{fixtureCopier: kbfsFixture(t, src, "dentacoin", "matrix")}
	copier.failures.Store(2)
	cfg := baseConfig(t, "keybase://team/dentacoin/matrix")
	cfg.Copier = copier
	if _, err := Ensure(context.Background(), cfg, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if n := copier.calls.Load(); n != 3 {
		t.Fatalf("%d copies, want 3", n)
	}

	copier.failures.Store(1 << 20)
	cfg = baseConfig(t, "keybase://team/dentacoin/matrix")
	cfg.Copier = copier
	cfg.RetryBudget = 200 * time.Millisecond
	_, err := Ensure(context.Background(), cfg, testLogger(t))
	requireKind(t, err, ErrUnavailable, "clone keybase://team/dentacoin/matrix", "unreachable after", "API network error")
}

func TestResumeAfterFailedClone(t *testing.T) {
	src := newTestRepo(t, baseFiles)
	cfg := baseConfig(t, src.dir)
	cfg.Ref = "typo"
	_, err := Ensure(context.Background(), cfg, testLogger(t))
	requireKind(t, err, ErrConfig, "ref not found")
	cfg.Ref = "main" // the operator fixes the ref; the half-made directory is still ours
	if _, err := Ensure(context.Background(), cfg, testLogger(t)); err != nil {
		t.Fatal(err)
	}
}
