#!/usr/bin/env bash
# Issue 6, with the real Synapse runtime: the entrypoint's own start-up overhead against the
# tutorial's shell sequence, READY=1 → /readyz, and resident memory beside Synapse's. Prints one
# markdown section on stdout (appended to docs/benchmarks.md by scripts/bench.sh); progress goes to
# stderr. Needs root (overlay mounts, chroot, PID namespaces), the cached Synapse runtime, go, git
# and sh; without them it prints the section with a one-line note and exits 0.
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly title="## Synapse start-up: entrypoint overhead, readiness and memory (issue 6)"
readonly runs=${SYNAPSE_BENCH_RUNS:-10}
readonly starts=${SYNAPSE_BENCH_STARTS:-5}

# shellcheck source=../lib/bench.sh
source scripts/lib/bench.sh

[[ $(id -u) -eq 0 ]] || skip "needs root (overlay mounts, chroot, PID namespaces)"
bench_require go git sh mount umount
bench_runtime_tree
version=$(cat "$tree/.synapse-version" 2>/dev/null || echo "?")

work=$(mktemp -d /tmp/bench-synapse.XXXXXX)
driver_pid=
cleanup() {
	if [[ -n "$driver_pid" ]]; then
		kill -TERM "$driver_pid" 2>/dev/null && wait "$driver_pid" 2>/dev/null || true
	fi
	# The driver unmounts what it mounted; this catches what a killed driver left, deepest first.
	awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/stamp" ./bench/synapse/stamp >&2 || skip "cannot build bench/synapse/stamp"
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/notifytap" ./bench/synapse/notifytap >&2 || skip "cannot build bench/synapse/notifytap"
CGO_ENABLED=0 go build -o "$work/driver" ./bench/synapse >&2 || skip "cannot build bench/synapse"

"$work/driver" -tree "$tree" -work "$work" -entrypoint bin/entrypoint -stamp "$work/stamp" \
	-notifytap "$work/notifytap" -runs "$runs" -starts "$starts" >"$work/table.md" &
driver_pid=$!
if ! wait "$driver_pid"; then
	driver_pid=
	skip "bench/synapse failed (see stderr)"
fi
driver_pid=

cat <<EOF
$title

Each run is PID 1 of a new PID namespace chrooted into a fresh overlay of the Synapse $version
runtime (plus the binaries, sh, git and a config repository at /repo made with \`entrypoint init
--server-name localhost\`). Overhead: spawn until Synapse's exec, with SYNAPSE_COMMAND (and the
shell's \`exec\`) pointing at a stamp program that records the wall clock as it starts;
the entrypoint (CONFIG_REPO=/repo: clone, validate, render, then exec) against the tutorial's
\`sh -c 'git clone \$CONFIG_REPO /data && exec ...'\`, alternating, after one warm-up each.
Readiness: the real Synapse on the embedded default config, behind a relay that timestamps READY=1
as Synapse sends it and passes it on to the entrypoint's NOTIFY_SOCKET (the relay hop is
included); /readyz and Synapse's own /health are polled every 1 ms, so figures carry up to
~1 ms of polling granularity (a negative figure: 200 before READY=1). Memory: VmRSS in a separate
start with the defaults, after 5 s idle.

$(cat "$work/table.md")
EOF
