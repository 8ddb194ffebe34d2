#!/usr/bin/env bash
# Pass downloads over HTTP: full .pkpass downloads (each a fresh build and signature) and the 304 path.
#
# Builds the release binary, starts `tessera serve` on a free 127.0.0.1 port with a throw-away SQLite database,
# creates one member through the admin API, then runs wrk against the member's Apple link twice: once
# plain (200, full pass) and once with If-Modified-Since equal to the pass's Last-Modified (304).
# The server is stopped on exit, whatever happens.
#
# Note: the server and wrk run on the same machine and share its cores; the figures are a lower bound of
# what the server alone would do.
#
# Usage: scripts/bench-downloads.sh        (needs curl, wrk, and jq or python3)
# Settings (environment): WRK_THREADS (2), WRK_CONNECTIONS (32), WRK_DURATION (15s), BENCH_PORT (a free one).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOKEN="bench-admin-token-0123456789abcdef"
THREADS="${WRK_THREADS:-2}"
CONNECTIONS="${WRK_CONNECTIONS:-32}"
DURATION="${WRK_DURATION:-15s}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

die() { echo "bench-downloads: $*" >&2; exit 1; }

command -v curl >/dev/null || die "curl is missing"
if ! command -v wrk >/dev/null; then
    echo "wrk is missing; installing it with apt-get" >&2
    apt-get install -y wrk >/dev/null || die "wrk is missing and apt-get install -y wrk failed; install wrk"
fi

json_get() { # json_get FILTER (jq syntax, a plain .a.b path) < JSON
    if command -v jq >/dev/null; then
        jq -er "$1"
    else
        python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].strip(".").split("."): v=v[k]
print(v)' "$1"
    fi
}

echo "== building the release binary"
cargo build --release
BIN="${TARGET_DIR}/release/tessera"
[[ -x "$BIN" ]] || die "$BIN was not built"

source "$(dirname "${BASH_SOURCE[0]}")/bench-server.sh"

echo "== creating member BENCH-1"
MEMBER_JSON="$(curl -sS --fail-with-body -X PUT \
    -H "Authorization: Bearer ${TOKEN}" -H 'content-type: application/json' \
    "${BASE}/api/v1/members/BENCH-1" \
    -d '{"name":"Bench Member","tier":"gold","points":1250}')" || die "creating the member failed: ${MEMBER_JSON:-}"
PASS_URL="$(printf '%s' "$MEMBER_JSON" | json_get .links.apple)" || die "no links.apple in: $MEMBER_JSON"
echo "pass URL: ${PASS_URL}"

HEADERS="$(curl -sS --fail -D - -o "${WORK}/bench.pkpass" "$PASS_URL")" || die "downloading the pass failed"
LAST_MODIFIED="$(printf '%s' "$HEADERS" | tr -d '\r' | sed -n 's/^[Ll]ast-[Mm]odified: //p')"
[[ -n "$LAST_MODIFIED" ]] || die "the pass response has no Last-Modified"
echo "pass: $(wc -c <"${WORK}/bench.pkpass") bytes, Last-Modified: ${LAST_MODIFIED}"
CODE_304="$(curl -s -o /dev/null -w '%{http_code}' -H "If-Modified-Since: ${LAST_MODIFIED}" "$PASS_URL")"
[[ "$CODE_304" == 304 ]] || die "If-Modified-Since: ${LAST_MODIFIED} answered ${CODE_304}, not 304"

echo
echo "== full downloads (200, build + sign each): wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} --latency ${PASS_URL}"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$PASS_URL"

echo
echo "== not modified (304): wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} --latency -H \"If-Modified-Since: ${LAST_MODIFIED}\" ${PASS_URL}"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "If-Modified-Since: ${LAST_MODIFIED}" "$PASS_URL"

echo
echo "== server counters after the runs"
curl -s "${BASE}/metrics" | grep -E '^tessera_(passes_built|pass_build_failures|pass_build_duration_seconds_(sum|count)|http_requests_total)' || true
echo "note: server and wrk shared this machine's $(nproc) cores"
