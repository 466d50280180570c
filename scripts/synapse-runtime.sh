#!/usr/bin/env bash
# synapse-runtime.sh — build (once) and print the path of a chroot tree that runs the real Synapse.
#
# PyPI is not reachable from the machines this repository is tested on, Debian's archive is: the tree
# is made from Debian sid's matrix-synapse package and its dependencies, unpacked with `dpkg -x` (no
# maintainer scripts run, the host's apt/dpkg state is never touched). Run Synapse in it as root:
#
#   chroot "$(scripts/synapse-runtime.sh)" python3 -m synapse.app.homeserver -c /path/in/tree.yaml
#
# Output: the tree's path on stdout (nothing else); progress on stderr.
# Cache:  ${SYNAPSE_RUNTIME_DIR:-/var/cache/synapse-entrypoint}/runtime-<hash>, <hash> being the
#         sha256 of this script and lib/sid-download.sh: change the recipe and a new tree is built
#         next to the old one.
# Safety: the tree is built in a temporary directory next to its final place and renamed into place
#         only when complete (a killed build never leaves a half tree); an flock serialises builders
#         of the same recipe, so parallel test processes wait for one build instead of racing.
# Needs:  root (mknod, chroot), apt-get, dpkg, flock, sha256sum, network access to deb.debian.org.
set -euo pipefail

readonly KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
readonly LOCK_WAIT_SECONDS=1200

log() { printf 'synapse-runtime: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

script_path=$(readlink -f "${BASH_SOURCE[0]}")
lib_path=$(dirname "$script_path")/lib/sid-download.sh
# shellcheck source=lib/sid-download.sh
source "$lib_path"
recipe_hash=$(cat "$script_path" "$lib_path" | sha256sum | cut -c1-16)
cache_dir=${SYNAPSE_RUNTIME_DIR:-/var/cache/synapse-entrypoint}
final="$cache_dir/runtime-$recipe_hash"

# A complete tree only ever appears by rename, so its existence is the cache hit.
cached() { [[ -d "$final" && -f "$final/.synapse-version" ]]; }

if cached; then
	printf '%s\n' "$final"
	exit 0
fi
# --cached: only answer whether the tree is there (benchmarks use a tree, they do not build one).
[[ ${1:-} != --cached ]] || exit 1

[[ $(id -u) -eq 0 ]] || die "needs root (mknod, chroot); run as root"
for tool in apt-get dpkg dpkg-deb flock chroot mknod sha256sum; do
	command -v "$tool" >/dev/null || die "missing host tool: $tool"
done

mkdir -p "$cache_dir"
exec 9>"$cache_dir/.runtime-$recipe_hash.lock"
log "waiting for build lock $cache_dir/.runtime-$recipe_hash.lock"
flock -w "$LOCK_WAIT_SECONDS" 9 || die "another build held the lock for more than ${LOCK_WAIT_SECONDS}s"

# Someone else may have finished the build while we waited.
if cached; then
	printf '%s\n' "$final"
	exit 0
fi
# --cached: only answer whether the tree is there (benchmarks use a tree, they do not build one).
[[ ${1:-} != --cached ]] || exit 1

# Builds of this recipe are serialised by the lock, so any leftover build directory for it belongs to
# a builder that was killed: remove it before starting over.
find "$cache_dir" -maxdepth 1 -name ".build-$recipe_hash.*" -exec rm -rf {} +

work=$(mktemp -d "$cache_dir/.build-$recipe_hash.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_seconds=$SECONDS

# The host must be able to verify sid's Release file.
if [[ ! -s "$KEYRING" ]]; then
	log "installing debian-archive-keyring on the host"
	apt-get update >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y debian-archive-keyring >&2
fi

log "downloading matrix-synapse and its dependencies (private apt state in $work/apt)"
sid_download "$work/apt" matrix-synapse
apt_root="$work/apt"

shopt -s nullglob
debs=("$apt_root"/cache/archives/*.deb)
shopt -u nullglob
((${#debs[@]} > 0)) || die "apt downloaded no packages"
log "downloaded ${#debs[@]} packages ($(du -sh "$apt_root/cache/archives" | cut -f1)) after $((SECONDS - start_seconds))s"

# --- the tree
tree="$work/tree"
mkdir -p "$tree/usr"/{bin,lib,lib64,sbin}
for d in bin lib lib64 sbin; do
	ln -s "usr/$d" "$tree/$d"
done

log "unpacking ${#debs[@]} packages"
for deb in "${debs[@]}"; do
	dpkg -x "$deb" "$tree"
done

# dpkg -x unpacks with tar, which may replace a directory symlink by a real directory when a package
# still ships files under /bin, /lib...: fold such a directory back into /usr and restore the link.
for d in bin lib lib64 sbin; do
	if [[ ! -L "$tree/$d" ]]; then
		log "restoring usr-merge link /$d"
		cp -a "$tree/$d/." "$tree/usr/$d/"
		rm -rf "${tree:?}/$d"
		ln -s "usr/$d" "$tree/$d"
	fi
done

# Device nodes: Twisted cannot listen without /dev/null; Python needs urandom.
mkdir -p "$tree/dev"
mknod -m 666 "$tree/dev/null" c 1 3
mknod -m 666 "$tree/dev/zero" c 1 5
mknod -m 666 "$tree/dev/random" c 1 8
mknod -m 666 "$tree/dev/urandom" c 1 9

# Users: no maintainer script ran, so write the account databases Synapse and Python look up.
mkdir -p "$tree/etc" "$tree/root" "$tree/var/lib/synapse"
cat >"$tree/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
synapse:x:991:991:Synapse:/var/lib/synapse:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$tree/etc/group" <<'EOF'
root:x:0:
synapse:x:991:
nogroup:x:65534:
EOF
cat >"$tree/etc/nsswitch.conf" <<'EOF'
passwd: files
group:  files
shadow: files
hosts:  files dns
EOF
cat >"$tree/etc/hosts" <<'EOF'
127.0.0.1 localhost
::1       localhost ip6-localhost ip6-loopback
EOF
chown 991:991 "$tree/var/lib/synapse"
install -d -m 1777 "$tree/tmp" "$tree/var/tmp"

# Byte-compile once, inside the chroot with the tree's own Python (the host's cannot load these
# packages). The host sets PYTHONDONTWRITEBYTECODE; without compiled files each start costs seconds.
log "byte-compiling"
# env -i runs on the host (the tree need not contain coreutils); chroot(1) then finds python3 on
# this PATH inside the tree.
clean_env=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)
py_dirs=()
for dir in "$tree"/usr/lib/python3 "$tree"/usr/lib/python3.[0-9]*; do
	[[ -d "$dir" ]] && py_dirs+=("${dir#"$tree"}")
done
# Single process: compileall -j needs POSIX semaphores (/dev/shm), which the tree does not have.
if ! "${clean_env[@]}" chroot "$tree" python3 -m compileall -q "${py_dirs[@]}" >&2; then
	# A handful of files (templates, tests) are not valid Python on purpose; the rest is compiled.
	log "warning: compileall reported files it could not compile"
fi
shopt -s nullglob
compiled=("$tree"/usr/lib/python3/dist-packages/synapse/app/__pycache__/homeserver.cpython-*.pyc)
shopt -u nullglob
((${#compiled[@]} > 0)) || die "byte-compiling did not reach synapse (see the errors above)"

version=$("${clean_env[@]}" chroot "$tree" python3 -c 'import synapse; print(synapse.__version__)') ||
	die "the tree cannot import synapse"
printf '%s\n' "$version" >"$tree/.synapse-version"
deb_version=$(dpkg-deb -f "$apt_root"/cache/archives/matrix-synapse_*.deb Version)

# A directory without the version file is not a tree this script finished: replace it.
if [[ -e "$final" ]]; then
	rm -rf "$final"
fi
mv -T "$tree" "$final"
log "built $final: Synapse $version (Debian $deb_version), ${#debs[@]} packages, $(du -sh "$final" | cut -f1), $((SECONDS - start_seconds))s"
printf '%s\n' "$final"
