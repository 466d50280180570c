#!/bin/sh
# install-keybase.sh MODE URL SHA256 — Keybase in the image, run once by the Dockerfile.
#
#   MODE install: the Debian package from URL (checked against SHA256 when that is not empty), with
#                 its dependencies from the base's apt sources. It brings `keybase` (the service and
#                 CLI), `kbfsfuse` and `git-remote-keybase`; the entrypoint runs kbfsfuse with
#                 -mount-type=none, so no FUSE device or privilege is needed at run time.
#   MODE skip:    nothing (keybase:// config repositories and chat notifications are then unavailable).
set -eu

mode=${1:-install}
url=${2:-https://prerelease.keybase.io/keybase_amd64.deb}
sha256=${3:-}

case "$mode" in
skip)
	echo "install-keybase: skipped (KEYBASE=skip)"
	exit 0
	;;
install) ;;
*)
	echo "install-keybase: KEYBASE must be install or skip, not \"$mode\"" >&2
	exit 64
	;;
esac

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-keybase: the base image has no apt-get; build with --build-arg KEYBASE=skip" >&2
	exit 69
fi

export DEBIAN_FRONTEND=noninteractive
deb=/tmp/keybase_amd64.deb

# The package's postinst adds Keybase's apt repository (Chrome's scheme) unless told not to: an
# image is rebuilt, never upgraded in place, and a third-party source would only slow later builds.
mkdir -p /etc/default
printf 'repo_add_once="false"\nrepo_reenable_on_distupgrade="false"\n' >/etc/default/keybase

apt-get update -q
fetch_tools=""
command -v curl >/dev/null 2>&1 || fetch_tools="curl ca-certificates"
if [ -n "$fetch_tools" ]; then
	# shellcheck disable=SC2086 # two package names
	apt-get install -y -q --no-install-recommends $fetch_tools
fi
curl -fsSL --retry 3 -o "$deb" "$url"
if [ -n "$sha256" ]; then
	echo "$sha256  $deb" | sha256sum -c -
fi
apt-get install -y -q --no-install-recommends "$deb"
rm -f "$deb" /etc/apt/sources.list.d/keybase.list
apt-get clean
rm -rf /var/lib/apt/lists/*

for tool in keybase kbfsfuse; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "install-keybase: $tool is missing after installing $url" >&2
		exit 1
	}
done
# The CLI refuses root without KEYBASE_ALLOW_ROOT; this one call only prints the version.
KEYBASE_ALLOW_ROOT=1 keybase version -S || true
