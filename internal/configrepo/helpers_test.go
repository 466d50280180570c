package configrepo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

// deleteFile as a file's content in a commit removes the file.
const deleteFile = "\x00delete"

// symlinkPrefix as the start of a file's content in a commit makes it a symlink to the rest.
const symlinkPrefix = "\x00symlink:"

// testRepo is a working repository authored with go-git.
type testRepo struct {
	t    testing.TB
	dir  string
	repo *git.Repository
	n    int
}

// newTestRepo initialises a repository on branch main with one commit of files.
func newTestRepo(t testing.TB, files map[string]string) *testRepo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := &testRepo{t: t, dir: dir, repo: r}
	tr.commit(files)
	return tr
}

// commit writes files (see deleteFile, symlinkPrefix) and commits them, returning the commit id.
func (r *testRepo) commit(files map[string]string) string {
	r.t.Helper()
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(r.dir, filepath.FromSlash(name))
		if content == deleteFile {
			if _, err := wt.Remove(name); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		_ = os.Remove(p)
		if target, ok := strings.CutPrefix(content, symlinkPrefix); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			r.t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			r.t.Fatal(err)
		}
	}
	r.n++
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: time.Unix(1700000000+int64(r.n), 0)}
	h, err := wt.Commit(fmt.Sprintf("commit %d", r.n), &git.CommitOptions{Author: sig, AllowEmptyCommits: true})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

// tag creates an annotated tag on HEAD.
func (r *testRepo) tag(name string) string {
	r.t.Helper()
	head, err := r.repo.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: time.Unix(1700000000, 0)}
	if _, err := r.repo.CreateTag(name, head.Hash(), &git.CreateTagOptions{Tagger: sig, Message: name}); err != nil {
		r.t.Fatal(err)
	}
	return head.Hash().String()
}

// branch creates a branch at HEAD.
func (r *testRepo) branch(name string) {
	r.t.Helper()
	head, err := r.repo.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(name), head.Hash())); err != nil {
		r.t.Fatal(err)
	}
}

// bareCopy makes a bare clone of the repository at dst with the real git CLI.
func (r *testRepo) bareCopy(dst string) {
	r.t.Helper()
	runGit(r.t, "", "clone", "-q", "--bare", r.dir, dst)
}

// runGit runs the real git CLI.
func runGit(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+os.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// baseConfig is a Config with a fresh target, quick retries and a test logger.
func baseConfig(t testing.TB, url string) Config {
	t.Helper()
	return Config{
		URL:            url,
		Target:         filepath.Join(t.TempDir(), "data"),
		NetworkTimeout: 20 * time.Second,
		RetryBudget:    2 * time.Second,
		RetryInitial:   20 * time.Millisecond,
	}
}

// testLogger logs through the test.
func testLogger(t testing.TB) *zap.Logger { return zaptest.NewLogger(t) }

// readLive reads a file through the public path an operator's SDL uses.
func readLive(t testing.TB, target, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(target, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// requireKind fails unless err is an *Error of the given kind (nil means "neither kind").
func requireKind(t testing.TB, err, kind error, wantInMsg ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error of kind %v, got nil", kind)
	}
	t.Logf("error (exit %d): %v", ExitCode(err), err)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error, got %T: %v", err, err)
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Fatalf("want kind %v, got %v (%q)", kind, e.Kind, err)
	}
	for _, s := range wantInMsg {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not mention %q", err, s)
		}
	}
}

// --- https through the real git http-backend ---

const httpBackend = "/usr/lib/git-core/git-http-backend"

// gitHTTPServer serves every repository under root through git http-backend behind basic auth.
type gitHTTPServer struct {
	*httptest.Server
	root      string
	user, pw  string
	fail503   atomic.Int32 // answer this many requests with 503 first
	hangPack  atomic.Bool  // block upload-pack POSTs until the client goes away
	packSeen  chan struct{}
	infoCalls atomic.Int32
}

// newGitHTTPServer starts the server on a free loopback port.
func newGitHTTPServer(t testing.TB, root, user, pw string) *gitHTTPServer {
	t.Helper()
	return startGitHTTPServer(t, root, user, pw, false)
}

// startGitHTTPServer is newGitHTTPServer with a choice of TLS (httptest's own CA).
func startGitHTTPServer(t testing.TB, root, user, pw string, useTLS bool) *gitHTTPServer {
	t.Helper()
	if _, err := os.Stat(httpBackend); err != nil {
		t.Skipf("SKIPPED (needs %s): run make test-deps", httpBackend)
	}
	s := &gitHTTPServer{root: root, user: user, pw: pw, packSeen: make(chan struct{}, 16)}
	backend := &cgi.Handler{
		Path:   httpBackend,
		Env:    []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"},
		Stderr: io.Discard,
	}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/info/refs") {
			s.infoCalls.Add(1)
		}
		if u, p, ok := r.BasicAuth(); user != "" && (!ok || u != s.user || p != s.pw) {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if s.fail503.Load() > 0 {
			s.fail503.Add(-1)
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		if r.Method == http.MethodPost && s.hangPack.Load() {
			s.packSeen <- struct{}{}
			w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		backend.ServeHTTP(w, r)
	}))
	s.Server.Config.ErrorLog = log.New(io.Discard, "", 0) // expected TLS handshake failures
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// url returns the repository URL, without credentials.
func (s *gitHTTPServer) url(repo string) string { return s.Server.URL + "/" + repo }

// --- ssh through the real sshd ---

// sshServer is a private sshd on a free loopback port that lets one key log in as the current
// user and run the real git-upload-pack.
type sshServer struct {
	port       int
	keyFile    string // client private key
	knownHosts string
	hostKey    ssh.PublicKey
}

// startSSHD starts sshd with its own configuration and waits until it accepts connections.
func startSSHD(t testing.TB) *sshServer {
	t.Helper()
	testutil.RequireRoot(t)
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
		if _, err := os.Stat(sshd); err != nil {
			t.Skip("SKIPPED (needs sshd): run make test-deps (installs openssh-server)")
		}
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	hostPub := writeKey(t, filepath.Join(dir, "host_ed25519"))
	clientPub := writeKey(t, filepath.Join(dir, "client_ed25519"))
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		t.Fatal(err)
	}
	// Privilege separation directory Debian's sshd insists on.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t) // sshd must bind the port itself
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
StrictModes no
PermitRootLogin yes
LogLevel ERROR
`, port, filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"))
	confPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshd, "-D", "-e", "-f", confPath)
	var logs testutil.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	proc := testutil.Start(t, cmd)
	testutil.Eventually(t, 10*time.Second, "sshd to listen on port "+strconv.Itoa(port), func() bool {
		if proc.Exited() {
			t.Fatalf("sshd exited: %s", logs.String())
		}
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	kh := filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))}, hostPub)
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &sshServer{port: port, keyFile: filepath.Join(dir, "client_ed25519"), knownHosts: kh, hostKey: hostPub}
}

// writeKey generates an ed25519 key, writes the private half in OpenSSH format and returns the
// public half.
func writeKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// --- keybase:// through a fixture KBFS tree ---

// flakyCopier fails its first failures calls the way KBFS does under load, then copies.
type flakyCopier struct {
	*fixtureCopier
	failures atomic.Int32
}

// CopyBareRepo implements KeybaseCopier.
func (c *flakyCopier) CopyBareRepo(ctx context.Context, kind, tlf, repo, dst string) error {
	if c.failures.Add(-1) >= 0 {
		c.calls.Add(1)
		return errors.New("API network error: doRequest: EOF")
	}
	return c.fixtureCopier.CopyBareRepo(ctx, kind, tlf, repo, dst)
}

// fixtureCopier stands in for `keybase fs cp -r`: it copies <root>/<kind>/<tlf>/.kbfs_git/<repo>
// to dst like the real CLI copies out of KBFS.
type fixtureCopier struct {
	root  string
	calls atomic.Int32
}

// CopyBareRepo implements KeybaseCopier.
func (c *fixtureCopier) CopyBareRepo(ctx context.Context, kind, tlf, repo, dst string) error {
	c.calls.Add(1)
	src := filepath.Join(c.root, kind, tlf, ".kbfs_git", repo)
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("keybase fs cp: %s: %w", src, fs.ErrNotExist)
	}
	return copyTree(ctx, src, dst)
}

// copyTree copies a directory tree of regular files.
func copyTree(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, data, 0o644)
	})
}

// kbfsFixture puts a bare copy of r into a fake KBFS tree as keybase://team/<tlf>/<repo>.
func kbfsFixture(t testing.TB, r *testRepo, tlf, repo string) *fixtureCopier {
	t.Helper()
	root := filepath.Join(t.TempDir(), "keybase")
	dst := filepath.Join(root, "team", tlf, ".kbfs_git", repo)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	r.bareCopy(dst)
	if err := os.WriteFile(filepath.Join(dst, "kbfs_config"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &fixtureCopier{root: root}
}
