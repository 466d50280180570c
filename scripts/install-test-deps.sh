#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks use, only those missing, so it is fast
# on a machine that has them and complete on a fresh one (CI).
set -euo pipefail

# command:package pairs.
want=(
	git:git
	sshd:openssh-server
	tini:tini
	dumb-init:dumb-init
	unshare:util-linux
	setsid:util-linux
	hyperfine:hyperfine
	dockerd:docker.io
)
missing=()
for pair in "${want[@]}"; do
	cmd=${pair%%:*} pkg=${pair#*:}
	if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ]; then
		missing+=("$pkg")
	fi
done
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
[ -e /usr/lib/git-core/git-http-backend ] || missing+=(git)

# Debian's sshd (started by the config repository tests) refuses to start without this.
[ "$(id -u)" != 0 ] || mkdir -p /run/sshd

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-test-deps: missing ${missing[*]}; run as root to install them (tests that need them will skip)" >&2
	exit 0
fi
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "install-test-deps: installing ${pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
