#!/usr/bin/env bash
# The whole signed pass against the RSA-2048 ceiling, on one pinned core, in interleaved rounds:
# each round runs `openssl speed rsa2048` and then criterion's `pass/build` (benches/pass_build.rs) on
# core 0, so both see the same machine at nearly the same moment (this kind of host drifts by ±15 %
# between runs). Prints one line per round and the share of the ceiling.
#
#   scripts/bench-pass-ratio.sh            # three rounds
#   ROUNDS=5 SECONDS_PER_RUN=10 scripts/bench-pass-ratio.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
seconds=${SECONDS_PER_RUN:-5}
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed" >&2; exit 1; }

bench=$(cargo bench --locked --bench pass_build --no-run 2>&1 | grep -o 'target/release/deps/pass_build-[0-9a-f]*' | tail -1)
[ -x "$bench" ] || { echo "could not build benches/pass_build.rs" >&2; exit 1; }

# criterion's middle throughput estimate, in elements (passes) a second.
per_second() {
  awk '/thrpt:/ {
    gsub(/[\[\]]/, "");
    for (i = 1; i <= NF; i++) if ($i ~ /elem\/s$/) { n++; if (n == 2) { v = $(i-1); u = $i } }
    m = 1; if (u ~ /^K/) m = 1e3; if (u ~ /^M/) m = 1e6;
    printf "%.0f\n", v * m; exit
  }'
}

echo "round  openssl-rsa2048-sign/s  pass/build-passes/s  share"
total_ratio=0
for round in $(seq 1 "$rounds"); do
  ceiling=$(taskset -c 0 openssl speed -seconds "$seconds" rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6; exit}')
  passes=$(taskset -c 0 "$bench" --bench 'pass/build$' --warm-up-time 1 --measurement-time "$seconds" 2>/dev/null | per_second)
  share=$(awk -v p="$passes" -v c="$ceiling" 'BEGIN { printf "%.1f", 100 * p / c }')
  total_ratio=$(awk -v t="$total_ratio" -v s="$share" 'BEGIN { print t + s }')
  printf "%5d  %22s  %19s  %5s %%\n" "$round" "$ceiling" "$passes" "$share"
done
awk -v t="$total_ratio" -v n="$rounds" 'BEGIN { printf "mean share of the ceiling: %.1f %%\n", t / n }'
