# shellcheck shell=bash
# Sourced by the benchmark scripts in scripts/bench.d. Each sets title (its section's heading)
# before sourcing this.

# skip prints the section with why it was skipped, and ends the script without failing make bench.
skip() {
	printf '%s\n\nSkipped: %s.\n' "$title" "$*"
	exit 0
}

# bench_require TOOL...: skip unless every tool is on PATH.
bench_require() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || skip "$tool is not installed (make test-deps)"
	done
}

# bench_runtime_tree: set tree to the cached Synapse runtime tree (not printed: skip must run in
# the script's own shell to end it). Building one takes minutes of downloads, which `make test`
# does anyway: a benchmark only builds it with BENCH_BUILD_RUNTIME=1.
bench_runtime_tree() {
	if ! tree=$(bash scripts/synapse-runtime.sh --cached 2>/dev/null); then
		[[ ${BENCH_BUILD_RUNTIME:-0} == 1 ]] || skip "no cached Synapse runtime (make test builds it, or set BENCH_BUILD_RUNTIME=1)"
		tree=$(bash scripts/synapse-runtime.sh 2>/dev/null) || skip "no Synapse runtime (scripts/synapse-runtime.sh failed)"
	fi
	[[ -x "$tree/usr/bin/python3" ]] || skip "no python3 in the Synapse runtime $tree"
	if [[ ! -x bin/entrypoint ]]; then
		make build >&2 || skip "make build failed"
	fi
}
