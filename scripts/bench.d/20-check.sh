#!/usr/bin/env bash
# Issue 3: `entrypoint check` on the tutorial config, in-process and as a whole process, beside the
# real Synapse's own time to report its first configuration error on the same file. Prints one
# markdown section on stdout (appended to docs/benchmarks.md by scripts/bench.sh); progress and
# tool output go to stderr. Needs root (overlay mount, chroot), the cached Synapse runtime,
# hyperfine and jq; without them it prints the section with a one-line note and exits 0.
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly title="## entrypoint check vs Synapse on the tutorial config (issue 3)"
readonly config=internal/synapse/testdata/tutorial/homeserver.yaml
readonly tutorial_root=internal/synapse/testdata/tutorial/root
readonly rounds=${CHECK_ROUNDS:-5}       # Synapse runs (one per round)
readonly check_runs=${CHECK_RUNS:-6}     # check runs per round and variant: 30 in all

# shellcheck source=../lib/bench.sh
source scripts/lib/bench.sh

[[ $(id -u) -eq 0 ]] || skip "needs root (overlay mount and chroot into the Synapse runtime)"
bench_require go hyperfine jq chroot mount
bench_runtime_tree
synapse_version=$(cat "$tree/.synapse-version" 2>/dev/null || echo "?")

# --- (a) in-process: Load + Validate, as go test's benchmark measures it.
gobench=$(go test -run '^$' -bench '^BenchmarkCheckTutorial' -count 5 ./internal/synapse 2>&1) ||
	skip "go test -bench BenchmarkCheckTutorial failed"
printf '%s\n' "$gobench" >&2
# median_ns NAME: median ns/op of the benchmark lines for NAME (exact name, any -GOMAXPROCS suffix).
median_ns() {
	printf '%s\n' "$gobench" | awk -v n="$1" '$1 ~ "^"n"(-[0-9]+)?$" {for (i = 2; i <= NF; i++) if ($(i+1) == "ns/op") print $i}' |
		sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'
}
inproc_ns=$(median_ns BenchmarkCheckTutorial)
inproc_mi_ns=$(median_ns BenchmarkCheckTutorialWithMountinfo)
inproc_allocs=$(printf '%s\n' "$gobench" | awk '$1 ~ /^BenchmarkCheckTutorial(-[0-9]+)?$/ {for (i = 2; i <= NF; i++) if ($(i+1) == "B/op") b = $i} END {print b}')

# --- a writable root over the runtime, with the tutorial's config at /tmp/x/homeserver.yaml and
# its log config where it points (/data), so both programs see the very same files.
base=$(mktemp -d /tmp/bench-check.XXXXXX)
root="$base/root"
cleanup() {
	mountpoint -q "$root" && umount -l "$root"
	rm -rf "$base"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir "$base/upper" "$base/work" "$root"
mount -t overlay overlay -o "lowerdir=$tree,upperdir=$base/upper,workdir=$base/work" "$root" ||
	skip "cannot mount an overlay over the Synapse runtime"
mkdir -p "$root/tmp/x" "$root/data" "$root/usr/local/bin"
cp "$config" "$root/tmp/x/homeserver.yaml"
cp "$tutorial_root"/data/* "$root/data/"
cp bin/entrypoint "$root/usr/local/bin/entrypoint"

chroot_bin=$(command -v chroot)
clean_env="env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8"
check_chroot="$clean_env $chroot_bin $root /usr/local/bin/entrypoint check /tmp/x/homeserver.yaml"
check_host="$clean_env $PWD/bin/entrypoint check --root $PWD/$tutorial_root $PWD/$config"
synapse_cmd="$clean_env $chroot_bin $root python3 -m synapse.app.homeserver -c /tmp/x/homeserver.yaml"

# What each reports: check all its findings, Synapse its first error and exit.
summary=$($check_chroot 2>&1 >/dev/null | tail -n1) || true
errors=$(sed -n 's/^check: \([0-9]*\) error.*/\1/p' <<<"$summary")
warnings=$(sed -n 's/^check: [0-9]* error(s), \([0-9]*\) warning.*/\1/p' <<<"$summary")
synapse_out=$($synapse_cmd 2>&1) && skip "Synapse accepted the tutorial config (expected an error)"
synapse_first=$(awk '/^Error in configuration/ {getline; sub(/^ +/, ""); print; exit}' <<<"$synapse_out")
synapse_errors=$(grep -c '^Error in configuration' <<<"$synapse_out" || true)
rm -f "$root"/data/*.signing.key # Synapse writes one before it fails: every run starts equal

# --- (b)/(c): interleaved rounds; hyperfine times each process from spawn to exit.
json="$base/json"
mkdir "$json"
hf() { hyperfine -N -i --style none "$@" >&2; }
hf --warmup 2 --runs 2 --export-json "$json/warm-check.json" "$check_chroot"
for r in $(seq 1 "$rounds"); do
	hf --warmup 1 --runs "$check_runs" --export-json "$json/check-chroot-$r.json" "$check_chroot"
	hf --warmup 1 --runs "$check_runs" --export-json "$json/check-host-$r.json" "$check_host"
	rm -f "$root"/data/*.signing.key
	hf --runs 1 --export-json "$json/synapse-$r.json" "$synapse_cmd"
done
# median_s GLOB: median wall time (seconds) over every run in the JSON exports matching GLOB.
median_s() {
	jq -r '.results[0].times[]' "$json"/$1 | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
runs_of() { jq -r '.results[0].times[]' "$json"/$1 | wc -l; }
check_chroot_s=$(median_s 'check-chroot-*.json')
check_host_s=$(median_s 'check-host-*.json')
synapse_s=$(median_s 'synapse-*.json')
n_check=$(runs_of 'check-chroot-*.json')
n_synapse=$(runs_of 'synapse-*.json')

ms() { awk -v s="$1" 'BEGIN {printf "%.2f ms", s * 1000}'; }
msns() { awk -v n="$1" 'BEGIN {printf "%.3f ms", n / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f×", a / b}'; }

cat <<EOF
$title

\`entrypoint check\` validates the tutorial's homeserver.yaml offline (Synapse $synapse_version rules):
in-process, Load and Validate as timed by \`go test -bench BenchmarkCheckTutorial\` (median of 5);
as a whole process, wall time from spawn to exit by hyperfine, beside the real Synapse started on
the same file in the same chroot (overlay of the runtime), which exits after printing its first
configuration error. Rounds interleave $check_runs check runs with one Synapse run. check finds
$errors errors and $warnings warnings in one run; Synapse reports $synapse_errors error per run
("${synapse_first%%.*}"),
so fixing the config with Synapse alone takes one start per error.

| metric | entrypoint check | Synapse | Synapse ÷ check | target |
|---|---|---|---|---|
| in-process Load + Validate (median of 5) | $(msns "$inproc_ns") |  |  | < 5 ms |
| in-process, reading /proc/self/mountinfo too | $(msns "$inproc_mi_ns") |  |  | < 5 ms |
| heap allocated per check (in-process) | $(awk -v b="$inproc_allocs" 'BEGIN {printf "%.0f KiB", b / 1024}') |  |  |  |
| whole process, spawn → exit, both chrooted in the Synapse root (median of $n_check / $n_synapse) | $(ms "$check_chroot_s") | $(ms "$synapse_s") | $(ratio "$synapse_s" "$check_chroot_s") |  |
| check on the host instead (\`bin/entrypoint check --root\`, median of $n_check) | $(ms "$check_host_s") | $(ms "$synapse_s") | $(ratio "$synapse_s" "$check_host_s") |  |
| errors reported per run | $errors | $synapse_errors |  | all of them |
EOF
