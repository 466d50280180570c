#!/usr/bin/env bash
# image.sh — build the ovrclk/synapse image (the Dockerfile at the repository root).
#
#   scripts/image.sh [--tag T] [--base runtime|IMAGE] [--keybase install|skip] [--fake-keybase]
#                    [--entrypoint-bin PATH]
#
#   --tag T             image name (default ovrclk/synapse:latest); printed on stdout when built.
#   --base runtime      (default) a base imported from the cached Synapse runtime tree
#                       (scripts/synapse-runtime.sh: Debian sid's matrix-synapse, python3 in /usr/bin),
#                       for machines that reach Debian's archive but no registry. The tree has no
#                       shell, coreutils or setpriv, which the Dockerfile's RUN steps and the
#                       entrypoint's Keybase wrapper need: Debian's dash, coreutils and util-linux are
#                       added from the same archive. Imported as ovrclk/synapse-base:<tree>-tools-<hash>,
#                       only when that tag is missing (a changed tree has a new name, so a new tag).
#   --base IMAGE        any Synapse image, e.g. matrixdotorg/synapse:v1.160.0 (the Dockerfile's
#                       default, needs a registry).
#   --keybase MODE      install (Keybase's Debian package; the default with --base IMAGE) or skip (the
#                       default with the runtime base: prerelease.keybase.io is not reachable here).
#   --fake-keybase      add test/fakekeybase as /usr/local/bin/keybase and kbfsfuse (tests only).
#   --entrypoint-bin P  the static entrypoint to put in (default: `make build`, then bin/entrypoint).
#
# Talks to whatever daemon the docker CLI does: set DOCKER_HOST=unix:///path/docker.sock for a private
# one. Uses the classic builder (DOCKER_BUILDKIT=0): no buildx here. Progress goes to stderr, the
# build time and the image size are reported there too.
# Needs: docker (client and a daemon), go (for --fake-keybase), make, tar; for the runtime base also
# root, apt-get, dpkg, flock, sha256sum and network access to deb.debian.org (once, then cached).
set -euo pipefail
shopt -s inherit_errexit

log() { printf 'image: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 64
}

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
# shellcheck source=lib/sid-download.sh
source "$root/scripts/lib/sid-download.sh"
tag=ovrclk/synapse:latest
base=runtime
keybase=""
fake_keybase=0
entrypoint_bin=""

while (($#)); do
	case "$1" in
	--tag) tag=${2:?--tag needs a value}; shift 2 ;;
	--tag=*) tag=${1#*=}; shift ;;
	--base) base=${2:?--base needs a value}; shift 2 ;;
	--base=*) base=${1#*=}; shift ;;
	--keybase) keybase=${2:?--keybase needs a value}; shift 2 ;;
	--keybase=*) keybase=${1#*=}; shift ;;
	--fake-keybase) fake_keybase=1; shift ;;
	--entrypoint-bin) entrypoint_bin=${2:?--entrypoint-bin needs a value}; shift 2 ;;
	--entrypoint-bin=*) entrypoint_bin=${1#*=}; shift ;;
	-h | --help) usage ;;
	*) log "unknown argument: $1"; usage ;;
	esac
done
if [[ -z "$keybase" ]]; then
	if [[ "$base" == runtime ]]; then keybase=skip; else keybase=install; fi
fi
[[ "$keybase" == install || "$keybase" == skip ]] || die "--keybase must be install or skip, not $keybase"

export DOCKER_BUILDKIT=0
command -v docker >/dev/null || die "no docker client on PATH"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
	die "no docker daemon answers at ${DOCKER_HOST:-the default socket}; set DOCKER_HOST"

start_seconds=$SECONDS

# --- tools for the runtime base -------------------------------------------------------------------
# What the Debian tree lacks for an image: sh (RUN steps, the Keybase wrapper), env, mkdir/chown
# (coreutils), setpriv (util-linux). Bump TOOLS_RECIPE when the list or the method changes.
readonly TOOLS_RECIPE="v2: dash coreutils util-linux via lib/sid-download.sh"
readonly TOOLS_PACKAGES=(dash coreutils util-linux)

# build_tools TREE DEST: unpack the tool packages (and whatever they need that TREE lacks) into DEST,
# keeping only paths TREE does not have, so the import never replaces a file of the tree.
build_tools() {
	local tree=$1 dest=$2 work apt_root
	work=$(mktemp -d "$(dirname "$dest")/.build-tools.XXXXXX")
	# shellcheck disable=SC2064 # expand now: $work is local
	trap "rm -rf '$work'" RETURN
	apt_root="$work/apt"
	log "downloading ${TOOLS_PACKAGES[*]} from Debian sid (private apt state)"
	sid_download "$apt_root" "${TOOLS_PACKAGES[@]}"

	local unpack="$work/tree" d deb
	mkdir -p "$unpack/usr"/{bin,lib,lib64,sbin}
	for d in bin lib lib64 sbin; do ln -s "usr/$d" "$unpack/$d"; done
	for deb in "$apt_root"/cache/archives/*.deb; do dpkg -x "$deb" "$unpack"; done
	for d in bin lib lib64 sbin; do
		if [[ ! -L "$unpack/$d" ]]; then
			cp -a "$unpack/$d/." "$unpack/usr/$d/"
			rm -rf "${unpack:?}/$d"
			ln -s "usr/$d" "$unpack/$d"
		fi
	done
	# No maintainer script ran: make /bin/sh the way dash's would.
	[[ -e "$unpack/usr/bin/sh" || -L "$unpack/usr/bin/sh" ]] || ln -s dash "$unpack/usr/bin/sh"
	# Keep only what the tree lacks (files and symlinks; directories follow their contents).
	(cd "$unpack" && find . ! -type d -print0) | while IFS= read -r -d '' p; do
		if [[ -e "$tree/$p" || -L "$tree/$p" ]]; then rm -f "$unpack/$p"; fi
	done
	find "$unpack" -depth -mindepth 1 -type d -empty -delete
	[[ -x "$unpack/usr/bin/dash" && -x "$unpack/usr/bin/setpriv" && -x "$unpack/usr/bin/env" ]] ||
		die "the tool packages did not provide dash, setpriv and env"
	rm -rf "$dest"
	mv -T "$unpack" "$dest"
}

# runtime_base: print the tag of the imported base, importing it first when it is missing.
runtime_base() {
	local tree name tools_hash cache tools base_tag
	tree=$("$root/scripts/synapse-runtime.sh") || die "scripts/synapse-runtime.sh failed"
	name=$(basename "$tree")
	tools_hash=$(printf '%s\n%s\n' "$TOOLS_RECIPE" "$name" | sha256sum | cut -c1-12)
	base_tag="ovrclk/synapse-base:$name-tools-$tools_hash"
	if docker image inspect "$base_tag" >/dev/null 2>&1; then
		log "base $base_tag is there"
		printf '%s\n' "$base_tag"
		return
	fi
	cache=$(dirname "$tree")
	tools="$cache/image-tools-$tools_hash"
	(
		# One builder per recipe at a time; a complete tools tree only ever appears by rename.
		flock -w 600 9 || die "another image.sh held $cache/.image-tools-$tools_hash.lock for 10 min"
		if [[ ! -d "$tools" ]]; then
			build_tools "$tree" "$tools"
		fi
	) 9>"$cache/.image-tools-$tools_hash.lock"
	log "importing $tree (+ $tools) as $base_tag"
	local t0=$SECONDS combined
	# One tree without duplicate paths (docker import refuses them): hard links into the cached tree,
	# cheap and on the same file system, plus the tools, which only add paths.
	combined=$(mktemp -d "$cache/.image-base.XXXXXX")
	# shellcheck disable=SC2064 # expand now: $combined is local
	trap "rm -rf '$combined'" RETURN
	cp -al "$tree/." "$combined/"
	cp -a "$tools/." "$combined/"
	tar --numeric-owner -C "$combined" -c . |
		docker import \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'ENV LANG=C.UTF-8' \
			--message "synapse runtime $name ($(cat "$tree/.synapse-version" 2>/dev/null || echo '?')) + ${TOOLS_PACKAGES[*]}" \
			- "$base_tag" >&2 || die "docker import of $combined failed"
	log "imported $base_tag in $((SECONDS - t0))s"
	printf '%s\n' "$base_tag"
}

# --- the build ---------------------------------------------------------------------------------------
if [[ -z "$entrypoint_bin" ]]; then
	log "make build"
	make -C "$root" build >&2
	entrypoint_bin="$root/bin/entrypoint"
fi
[[ -x "$entrypoint_bin" ]] || die "no executable entrypoint at $entrypoint_bin"

if [[ "$base" == runtime ]]; then
	base_image=$(runtime_base)
	# Never let the build fall back to pulling the imported name from a registry.
	docker image inspect "$base_image" >/dev/null 2>&1 || die "base $base_image is not in the daemon"
else
	base_image=$base
fi

# A private context: only what the Dockerfile copies, and a snapshot of the binary (another
# `make build` may rewrite bin/entrypoint while the context is sent).
ctx=$(mktemp -d "${TMPDIR:-/tmp}/synapse-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/bin" "$ctx/docker/image"
cp "$root/Dockerfile" "$root/.dockerignore" "$ctx/"
cp "$root"/docker/image/*.sh "$ctx/docker/image/"
cp "$entrypoint_bin" "$ctx/bin/entrypoint"

build_tag=$tag
if ((fake_keybase)); then
	build_tag="$tag-nokeybase"
fi
log "building $build_tag on $base_image (KEYBASE=$keybase)"
t0=$SECONDS
# --network host: RUN steps reach Debian's archive and Keybase's server through the host's network
# (a private engine has no bridge network).
docker build --network host --build-arg "BASE=$base_image" --build-arg "KEYBASE=$keybase" -t "$build_tag" "$ctx" >&2

if ((fake_keybase)); then
	# The stand-in for the keybase/kbfsfuse CLI (test/fakekeybase/README.md), static so it runs on
	# any base, as a layer on top of the real image.
	fake="$ctx/fake"
	mkdir -p "$fake"
	log "building test/fakekeybase"
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$fake/keybase" ./test/fakekeybase)
	cat >"$fake/Dockerfile" <<EOF
FROM $build_tag
COPY keybase /usr/local/bin/keybase
RUN ln -sf keybase /usr/local/bin/kbfsfuse
LABEL org.ovrclk.synapse.keybase=fake
EOF
	docker build --network host -t "$tag" "$fake" >&2
	docker rmi "$build_tag" >/dev/null
fi
build_seconds=$((SECONDS - t0))

size=$(docker image inspect -f '{{.Size}}' "$tag")
log "built $tag: $((size / 1000000)) MB, docker build ${build_seconds}s, total $((SECONDS - start_seconds))s"
printf '%s\n' "$tag"
