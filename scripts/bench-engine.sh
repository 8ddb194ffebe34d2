#!/usr/bin/env bash
# The delivery engine against the build before it, in one run: pushes per second to the APNs stand-in
# with one and three instances on PostgreSQL (benches/postgres.rs, runs with devices), and Google object
# PATCHes per second with the rate lifted (benches/google.rs, part 2), for the build at BEFORE and for
# this checkout, interleaved round by round so both see the same machine.
#
#   scripts/bench-engine.sh                 # BEFORE=d67dd95 (the last commit with two workers), 2 rounds
#   BEFORE=<commit> ROUNDS=3 scripts/bench-engine.sh
#
# Needs the postgresql package (initdb, pg_ctl, postgres). The BEFORE build goes to its own worktree and
# target folder under target/bench-engine/, so this checkout's build is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
before=${BEFORE:-d67dd95}
rounds=${ROUNDS:-2}
work="$repo/target/bench-engine"
tree="$work/tree-$before"
mkdir -p "$work"

if [ ! -d "$tree" ]; then
  git worktree add --detach "$tree" "$before" >/dev/null
fi

build() { # dir target-dir -> prints the paths of the tessera binary and the google bench
  local dir=$1 target=$2
  (cd "$dir" && CARGO_TARGET_DIR="$target" cargo build --release --locked --quiet --bin tessera)
  local google
  google=$(cd "$dir" && CARGO_TARGET_DIR="$target" cargo bench --locked --bench google --no-run 2>&1 |
    grep -o "[^ (]*release/deps/google-[0-9a-f]*" | tail -1)
  echo "$target/release/tessera $google"
}

echo "building $before and this checkout (release)…" >&2
read -r before_bin before_google < <(build "$tree" "$work/target-before")
read -r after_bin after_google < <(build "$repo" "$repo/target")
postgres_bench=$(cargo bench --locked --bench postgres --no-run 2>&1 | grep -o "[^ (]*release/deps/postgres-[0-9a-f]*" | tail -1)
# The Google bench finds the templates and certificates relative to its own checkout.
google_in() { (cd "$1" && "$2" --bench 2>/dev/null | grep '^RESULT round' | grep 'PATCHes'); }

for round in $(seq 1 "$rounds"); do
  for build_name in before after; do
    if [ "$build_name" = before ]; then bin=$before_bin google=$before_google dir=$tree; else bin=$after_bin google=$after_google dir=$repo; fi
    BENCH_PUSHES_ONLY=1 BENCH_TESSERA_BINARY="$bin" "$postgres_bench" --bench 2>/dev/null |
      grep '^RESULT' | sed "s/^RESULT/round $round, $build_name:/"
    google_in "$dir" "$google" | sed "s/^RESULT round [0-9]*:/round $round, $build_name: google/"
  done
done
