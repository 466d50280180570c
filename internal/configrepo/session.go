package configrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"golang.org/x/crypto/ssh"
)

// Why no client.InstallProtocol: go-git keeps its scheme → transport table in a package-level map
// without a lock, so registering "keybase" (or replacing "file") there is a data race with any other
// go-git user in the process and state shared by every caller. Instead every operation builds its
// own transport.Transport here and drives the upload-pack session itself (see fetch.go):
//   - keybase:// and local paths: server.NewClient over a loader that returns the storage of one
//     bare directory, i.e. go-git's in-process upload-pack (no git binary, no git-upload-pack);
//   - http(s): githttp.NewClient with our own *http.Client (CA bundle, no shared DefaultTransport);
//   - ssh: gitssh.NewClient with a complete ssh.ClientConfig (key, strict known_hosts, timeout).

// staticLoader serves one storage for whatever endpoint is asked: the per-operation server has a
// single repository, so there is nothing to look up.
type staticLoader struct{ st storer.Storer }

// Load implements server.Loader.
func (l staticLoader) Load(*transport.Endpoint) (storer.Storer, error) { return l.st, nil }

// session is one open upload-pack conversation plus what must be released after it.
type session struct {
	up      transport.UploadPackSession
	local   storer.Storer // set for in-process sources: the pack is encoded straight from it
	cleanup func()
}

// close ends the conversation and removes scratch copies.
func (s *session) close() {
	if s.up != nil {
		_ = s.up.Close()
	}
	if s.cleanup != nil {
		s.cleanup()
	}
}

// openSession builds the transport for src and opens an upload-pack session. scratch is a
// directory on the target's file system for keybase copies. Steps that ignore contexts in go-git
// (the ssh handshake) run under runCtx so cancellation still returns promptly.
func openSession(ctx context.Context, src *source, cfg Config, scratch string) (*session, error) {
	switch src.kind {
	case srcLocal:
		st, err := openLocalStorage(src.localPath)
		if err != nil {
			return nil, err
		}
		return inProcess(st, nil)
	case srcKeybase:
		return openKeybase(ctx, src, cfg, scratch)
	case srcHTTP:
		var auth transport.AuthMethod
		if src.httpUser != "" || src.httpPass != "" {
			auth = &githttp.BasicAuth{Username: src.httpUser, Password: src.httpPass}
		}
		up, err := githttp.NewClient(src.httpClient).NewUploadPackSession(src.ep, auth)
		if err != nil {
			return nil, err
		}
		return &session{up: up}, nil
	case srcSSH:
		return openSSH(ctx, src, cfg)
	}
	return nil, fmt.Errorf("unknown source kind %d", src.kind)
}

// inProcess serves st with go-git's in-process upload-pack.
func inProcess(st storer.Storer, cleanup func()) (*session, error) {
	ep := &transport.Endpoint{Protocol: "file", Path: "/"}
	up, err := server.NewClient(staticLoader{st}).NewUploadPackSession(ep, nil)
	if err != nil {
		if cleanup != nil {
			cleanup()
		}
		return nil, err
	}
	return &session{up: up, local: st, cleanup: cleanup}, nil
}

// openLocalStorage opens the git directory of a local repository: path/.git of a working clone
// or path itself when it is bare. Anything else is "repository not found".
func openLocalStorage(path string) (storer.Storer, error) {
	gitDir := filepath.Join(path, ".git")
	if fi, err := os.Stat(gitDir); err != nil || !fi.IsDir() {
		gitDir = path
	}
	if !isBareDir(gitDir) {
		return nil, transport.ErrRepositoryNotFound
	}
	return filesystem.NewStorage(osfs.New(gitDir), cache.NewObjectLRUDefault()), nil
}

// isBareDir reports whether dir has the layout of a git directory.
func isBareDir(dir string) bool {
	for _, name := range []string{"HEAD", "objects", "refs"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

// openKeybase copies the bare repository out of KBFS into a scratch directory (the network step
// for keybase://), checks its size, and serves it in-process.
func openKeybase(ctx context.Context, src *source, cfg Config, scratch string) (*session, error) {
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(scratch, "keybase-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { _ = os.RemoveAll(tmp) }
	dst := filepath.Join(tmp, src.kbRepo+".git")
	if err := src.kbCopy(ctx, cfg.Copier, dst); err != nil {
		cleanup()
		return nil, err
	}
	if !isBareDir(dst) {
		cleanup()
		return nil, fmt.Errorf("%w: KBFS copy of %s is not a git repository", transport.ErrRepositoryNotFound, src.kbRepo)
	}
	size, err := dirSize(dst)
	if err != nil {
		cleanup()
		return nil, err
	}
	if size > cfg.MaxBytes {
		cleanup()
		return nil, fmt.Errorf("%w: KBFS repository is %d bytes, limit %d", errOversized, size, cfg.MaxBytes)
	}
	return inProcess(filesystem.NewStorage(osfs.New(dst), cache.NewObjectLRUDefault()), cleanup)
}

// kbCopy runs the copier and classifies its error: "not there" and explicit configuration errors
// are the operator's problem; anything else (KBFS hiccups, "API network error") is transient.
func (src *source) kbCopy(ctx context.Context, c KeybaseCopier, dst string) error {
	err := c.CopyBareRepo(ctx, src.kbKind, src.kbTLF, src.kbRepo, dst)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %v", transport.ErrRepositoryNotFound, err)
	case errors.Is(err, ErrConfig):
		return err
	}
	return kindErrorf(ErrUnavailable, "copy from KBFS: %v", err)
}

// dirSize sums the sizes of regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// openSSH builds a complete ssh.ClientConfig — go-git's ssh client copies every field of the
// override config over its own, so a partial one would drop the auth — and opens the session.
// Host keys come only from cfg.KnownHostsFile; go-git's knownhosts DB also tells the handshake
// which host key algorithms to prefer, so a host with several keys matches the one we know.
func openSSH(ctx context.Context, src *source, cfg Config) (*session, error) {
	if _, err := os.Stat(cfg.KnownHostsFile); err != nil {
		return nil, kindErrorf(ErrConfig, "known_hosts file: %v", err)
	}
	db, err := gitssh.NewKnownHostsDb(cfg.KnownHostsFile)
	if err != nil {
		return nil, kindErrorf(ErrConfig, "known_hosts file %s: %v", cfg.KnownHostsFile, err)
	}
	pem, err := os.ReadFile(cfg.SSHKeyFile)
	if err != nil {
		return nil, kindErrorf(ErrConfig, "ssh key file: %v", err)
	}
	var signer ssh.Signer
	if cfg.SSHKeyPassphrase != "" {
		signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(cfg.SSHKeyPassphrase))
	} else {
		signer, err = ssh.ParsePrivateKey(pem)
	}
	if err != nil {
		return nil, kindErrorf(ErrConfig, "ssh key file %s: %v", cfg.SSHKeyFile, err)
	}
	port := src.ep.Port
	if port <= 0 {
		port = 22
	}
	hostPort := net.JoinHostPort(src.ep.Host, strconv.Itoa(port))
	cb := db.HostKeyCallback()
	clientCfg := &ssh.ClientConfig{
		User:              src.ep.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   cb,
		HostKeyAlgorithms: db.HostKeyAlgorithms(hostPort),
		Timeout:           cfg.NetworkTimeout,
	}
	auth := &gitssh.PublicKeys{User: src.ep.User, Signer: signer,
		HostKeyCallbackHelper: gitssh.HostKeyCallbackHelper{HostKeyCallback: cb}}
	up, err := runCtx(ctx, func() (transport.UploadPackSession, error) {
		return gitssh.NewClient(clientCfg).NewUploadPackSession(src.ep, auth)
	}, func(up transport.UploadPackSession) { _ = up.Close() })
	if err != nil {
		return nil, err
	}
	return &session{up: up}, nil
}

// runCtx runs f, which does not honour contexts, and returns early when ctx ends; a result that
// arrives after that is released with discard.
func runCtx[T any](ctx context.Context, f func() (T, error), discard func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil {
				discard(r.v)
			}
		}()
		var zero T
		return zero, ctx.Err()
	}
}

// sleepCtx waits d or until ctx ends, reporting whether the full wait happened.
func sleepCtx(ctx context.Context, clock Clock, d time.Duration) bool {
	select {
	case <-clock.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}
