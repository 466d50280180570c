// Package configrepo puts the homeserver's configuration repository (CONFIG_REPO) into /data and
// keeps it up to date, with go-git only: no git binary is needed at run time.
//
// # Sources
//
//   - keybase://team|private|public/<tlf>/<repo>: the bare repository is copied out of KBFS by an
//     injected KeybaseCopier (internal/keybase runs `keybase fs cp -r`) and served in-process.
//   - https:// and http://, with CONFIG_REPO_USERNAME/PASSWORD (or a token) as basic auth.
//   - ssh:// and scp-like user@host:path, with a key file and a mandatory known_hosts file.
//   - a local path or file://, served in-process (go-git's file transport would exec
//     git-upload-pack; we never do).
//
// go-git's scheme registry (client.InstallProtocol) is a process-global, unlocked map, so this
// package never registers anything: each operation builds its own transport (session.go) and
// drives the upload-pack session itself (fetch.go). That also lets it count the pack bytes as
// they arrive and ask the remote where the ref points before fetching anything.
//
// # Layout of the target directory (default /data)
//
//	/data/
//	  .configrepo/                 everything of ours except the links below
//	    state.json                 marker (source URL without credentials) + manifest of links
//	    repo.git/                  bare repository the fetches go into
//	    rev-<commit>-<rand>/       checked-out trees: the live one and the previous one
//	  config -> .configrepo/rev-<commit>-<rand>     the live tree; swapped with one rename(2)
//	  homeserver.yaml -> config/homeserver.yaml     one symlink per top-level entry of the repo
//	  log.config -> config/log.config
//	  homeserver.db, media_store/  Synapse's data: never read, moved or deleted
//
// An update checks the new commit out into a fresh rev directory (fsynced), runs the validation
// hook on it, creates links for new top-level names, then creates a temporary symlink to the new
// tree and renames it over /data/config. Every top-level link resolves through /data/config, so that
// single rename moves every exposed path at once: a reader of /data/homeserver.yaml or
// /data/config/... sees the old tree or the new tree, never a mix and never a missing file. Links
// for names the new tree no longer has are removed after the swap (only if they are still the
// symlinks we made, as recorded in the manifest); trees older than the previous one are deleted.
// The live commit is read from the /data/config symlink itself, so state.json cannot disagree with
// what readers see.
//
// The live tree is never changed in place. Before it is replaced it is compared with its commit;
// files an operator edited, added or deleted stop the update (listed in the error) unless
// Config.DiscardLocalChanges is set. A target that is neither missing, empty (a lost+found
// directory is allowed) nor our clone of the same URL is refused, and so is a top-level repository
// entry whose name is already taken in /data by something we did not create (e.g. media_store):
// nothing that is not ours is ever deleted or shadowed.
//
// # Safety
//
// Symlinks pointing outside the repository, unsafe path names and trees or packs larger than
// MaxBytes are refused. Secret-looking files (*.key, *.pem, *secret*) are written 0600, others
// 0644; with Chown (as root) everything we create is owned by UID:GID. Every network attempt
// has a timeout; connection failures, timeouts and 5xx answers are retried with exponential
// back-off within a budget, authentication failures and missing repositories or refs are not.
// Errors are *Error values naming the step and the redacted URL; errors.Is(err, ErrConfig) (exit
// 78) and errors.Is(err, ErrUnavailable) (exit 69) tell cmd/ how to exit (see ExitCode).
//
// Caveats: a top-level entry of the repository named "config" (or starting with ".git") gets no
// link of its own — it is reachable as /data/config/config. Config.Validate sees the new tree at
// its .configrepo/rev-... path before it goes live, not under /data/config. A keybase:// Syncer copies
// the whole bare repository out of KBFS on every poll (KBFS has no cheaper "ls-remote"), so poll
// keybase sources sparingly.
//
// One process writes a target at a time: call Ensure at start-up, then run one Syncer.
package configrepo
