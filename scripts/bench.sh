#!/usr/bin/env bash
# make bench: every benchmark, each against its peer measured in the same run, written to
# docs/benchmarks.md (and printed). Needs root for PID namespaces and the Synapse chroot.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
CGO_ENABLED=0 go build -o "$tools/orphaner" ./bench/orphaner
CGO_ENABLED=0 go build -o "$tools/sigrecorder" ./test/sigrecorder

out=docs/benchmarks.md.new
{
	echo "# Benchmarks"
	echo
	echo "Produced by \`make bench\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(go version | cut -d' ' -f3),"
	echo "kernel $(uname -r). Every figure is compared with its peer measured in the same run,"
	echo "interleaved, on a machine shared with other work: read the ratios, not the absolute times."
	echo
	echo "## PID 1: entrypoint vs tini and dumb-init"
	echo
	echo "Each init runs as PID 1 of a new PID namespace. Reaping: a child leaves 10,000 zombie"
	echo "orphans at once; wall time from its exit (the kernel reparenting them dominates) until the"
	echo "init has none left, and the CPU time the init itself spent (schedstat). Relay: SIGUSR1 sent to"
	echo "PID 1 until the child timestamps it. Memory: VmRSS while idle; the entrypoint's figure is its"
	echo "init plus its supervisor, the two processes of its design."
	echo
	go run ./bench/pid1 -entrypoint bin/entrypoint -orphaner "$tools/orphaner" -sigrecorder "$tools/sigrecorder"
	for extra in scripts/bench.d/*.sh; do
		[ -e "$extra" ] || continue
		echo
		bash "$extra"
	done
} | tee "$out"
mv "$out" docs/benchmarks.md
