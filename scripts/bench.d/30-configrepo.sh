#!/usr/bin/env bash
# Issue 4: clone and checkout of a typical config repository (10 files and homeserver.yaml, 200
# commits) by the entrypoint (go-git, internal/configrepo) against the `git clone` CLI, in the same
# run: time and peak memory, from a local path and over https. Prints one markdown section on
# stdout (appended to docs/benchmarks.md by scripts/bench.sh); progress goes to stderr. Needs go,
# git and git-http-backend; without them it prints the section with a one-line note and exits 0.
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly title="## Config repository: entrypoint (go-git) vs git clone (issue 4)"
readonly runs=${CONFIGREPO_RUNS:-15}

# shellcheck source=../lib/bench.sh
source scripts/lib/bench.sh

bench_require go git
[[ -x /usr/lib/git-core/git-http-backend ]] || skip "git-http-backend is not installed (make test-deps)"

tools=$(mktemp -d /tmp/bench-configrepo-tools.XXXXXX)
trap 'rm -rf "$tools"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# The clone program is built like bin/entrypoint (static, stripped), so its pages are comparable.
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$tools/clone" ./bench/configrepo/clone >&2 ||
	skip "cannot build bench/configrepo/clone"
CGO_ENABLED=0 go build -o "$tools/configrepo" ./bench/configrepo >&2 || skip "cannot build bench/configrepo"

# In-process figures first (go test's own benchmarks), then one process per clone.
go test -run '^$' -bench 'Clone' -benchmem -count 3 ./internal/configrepo >"$tools/gotest.txt" 2>&1 ||
	{ cat "$tools/gotest.txt" >&2; skip "go test -bench Clone ./internal/configrepo failed"; }
cat "$tools/gotest.txt" >&2
table=$("$tools/configrepo" -clone "$tools/clone" -runs "$runs" -gotest "$tools/gotest.txt") ||
	skip "bench/configrepo failed (see stderr)"

cat <<EOF
$title

One clone and checkout per process, $runs per tool and transport, alternating order: wall time
from spawn to exit, CPU time and peak RSS (ru_maxrss of the reaped child; for git that is its
largest process among git, git-remote-https and index-pack, for the entrypoint the one Go process
running internal/configrepo's Ensure). https goes through git http-backend behind a TLS server in
the benchmark (not counted for either). From a local path \`git clone\` hardlinks the source's
object files, while the entrypoint fetches a pack from an in-process upload-pack server: the
"local" rows compare what each actually does, with the source's objects in one pack (a repository
that was cloned or pushed to) and loose (after 200 \`git commit\`s). The go test rows are
\`go test -bench Clone -benchmem -count 3 ./internal/configrepo\` (its repository has loose objects
made by go-git, http is plain there, and the git CLI column includes the exec from the test).

$table
EOF
