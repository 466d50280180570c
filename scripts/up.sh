#!/usr/bin/env bash
# make up: a real Synapse behind the entrypoint on this machine, no Docker engine needed.
#
# The Synapse runtime (Debian sid's matrix-synapse, built and cached by synapse-runtime.sh) is
# overlaid with a persistent writable layer under $UP_DIR, and the entrypoint runs as PID 1 of a
# new PID namespace chrooted into it, exactly as in the image: embedded default config for server
# name localhost, sqlite in /data. Data survives between runs; `rm -rf $UP_DIR` starts afresh.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "make up: run as root (chroot, PID namespace, overlay mount)" >&2
	exit 1
fi
UP_DIR=${UP_DIR:-/var/lib/synapse-entrypoint/up}
SERVER_NAME=${SYNAPSE_SERVER_NAME:-localhost}

# A port that is free now: 8008 when it is, else one the kernel picks (other work shares this
# machine).
free_port() {
	python3 - "$1" <<'PY'
import socket, sys
want = int(sys.argv[1])
for port in (want, 0):
    s = socket.socket()
    try:
        s.bind(("0.0.0.0", port))
        print(s.getsockname()[1])
        break
    except OSError:
        pass
    finally:
        s.close()
PY
}
PORT=${SYNAPSE_HTTP_PORT:-$(free_port 8008)}
STATUS_PORT=$(free_port 8080)

tree=$(scripts/synapse-runtime.sh)
root=$UP_DIR/root
mkdir -p "$UP_DIR/upper" "$UP_DIR/work" "$root"
cleanup() {
	umount -l "$root/proc" 2>/dev/null || true
	umount -l "$root" 2>/dev/null || true
}
trap cleanup EXIT
cleanup
# The upper layer belongs to one tree: a rebuilt runtime starts a fresh layer (data kept aside).
if [ -e "$UP_DIR/tree" ] && [ "$(cat "$UP_DIR/tree")" != "$tree" ]; then
	mv "$UP_DIR/upper" "$UP_DIR/upper.$(date +%s)"
	rm -rf "$UP_DIR/work"
	mkdir -p "$UP_DIR/upper" "$UP_DIR/work"
fi
echo "$tree" >"$UP_DIR/tree"
mount -t overlay overlay -o "lowerdir=$tree,upperdir=$UP_DIR/upper,workdir=$UP_DIR/work" "$root"
mkdir -p "$root/proc" "$root/usr/local/bin"
mount -t proc proc "$root/proc"
install -m 0755 bin/entrypoint "$root/usr/local/bin/entrypoint"

cat <<MSG

  Synapse for "$SERVER_NAME" is starting behind the entrypoint (PID 1 of a new PID namespace).

    Matrix client URL:  http://localhost:$PORT   (try http://localhost:$PORT/_matrix/client/versions)
    Status:             http://127.0.0.1:$STATUS_PORT/readyz   and /metrics
    Add a user:         chroot $root synapse_register_new_matrix_user -c /data/homeserver.yaml http://localhost:$PORT
    Data:               $UP_DIR/upper/data
    Stop:               Ctrl-C (or kill -TERM the entrypoint); it stops Synapse cleanly.

MSG
set +e
env -i PATH=/usr/local/bin:/usr/bin:/bin \
	SYNAPSE_SERVER_NAME="$SERVER_NAME" SYNAPSE_HTTP_PORT="$PORT" STATUS_ADDR="127.0.0.1:$STATUS_PORT" \
	LOG_LEVEL="${LOG_LEVEL:-info}" LOG_FORMAT="${LOG_FORMAT:-auto}" \
	unshare --pid --fork --kill-child=SIGTERM --root="$root" /usr/local/bin/entrypoint "$@"
code=$?
set -e
echo "make up: the entrypoint exited with $code"
exit "$code"
