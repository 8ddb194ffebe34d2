#!/usr/bin/env bash
# The web service's 304 path: `GET /v1/passes/{passType}/{serial}` with `Authorization: ApplePass <token>`
# and `If-Modified-Since` equal to the pass's Last-Modified, which is what a device asks after a push when
# it already has the latest pass (issue 3; goal: at least 20,000 requests/s).
#
# Builds the release binary, starts `tessera serve` on a free port of 127.0.0.1 with a throw-away SQLite
# database and a known admin token, creates one member through the admin API, downloads its pass and reads
# serialNumber, passTypeIdentifier and authenticationToken from pass.json (python3), reads Last-Modified
# from one authenticated GET of the latest-pass endpoint, checks with curl that the conditional request
# really answers 304, then runs wrk against it. The server is stopped on exit, whatever happens.
#
# Note: the server and wrk run on the same machine and share its cores; the figures are a lower bound of
# what the server alone would do.
#
# Usage: scripts/bench-304.sh        (needs curl, wrk, python3)
# Settings (environment): WRK_THREADS (2), WRK_CONNECTIONS (64), WRK_DURATION (15s), BENCH_PORT (a free one).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOKEN="bench-admin-token-0123456789abcdef"
THREADS="${WRK_THREADS:-2}"
CONNECTIONS="${WRK_CONNECTIONS:-64}"
DURATION="${WRK_DURATION:-15s}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

die() { echo "bench-304: $*" >&2; exit 1; }

command -v curl >/dev/null || die "curl is missing"
command -v python3 >/dev/null || die "python3 is missing"
if ! command -v wrk >/dev/null; then
    echo "wrk is missing; installing it with apt-get" >&2
    apt-get install -y wrk >/dev/null || die "wrk is missing and apt-get install -y wrk failed; install wrk"
fi

echo "== building the release binary"
[[ -n "${BIN:-}" ]] || cargo build --release
BIN="${BIN:-${TARGET_DIR}/release/tessera}"
[[ -x "$BIN" ]] || die "$BIN was not built"

source "$(dirname "${BASH_SOURCE[0]}")/bench-server.sh"

echo "== creating member BENCH-304"
MEMBER_JSON="$(curl -sS --fail-with-body -X PUT \
    -H "Authorization: Bearer ${TOKEN}" -H 'content-type: application/json' \
    "${BASE}/api/v1/members/BENCH-304" \
    -d '{"name":"Bench Member","tier":"gold","points":1250}')" || die "creating the member failed: ${MEMBER_JSON:-}"
PASS_URL="$(printf '%s' "$MEMBER_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["links"]["apple"])')" \
    || die "no links.apple in: $MEMBER_JSON"

curl -sS --fail -o "${WORK}/bench.pkpass" "$PASS_URL" || die "downloading the pass failed"
read -r PASS_TYPE SERIAL AUTH < <(python3 - "${WORK}/bench.pkpass" <<'EOF'
import json, sys, zipfile
p = json.loads(zipfile.ZipFile(sys.argv[1]).read("pass.json"))
print(p["passTypeIdentifier"], p["serialNumber"], p["authenticationToken"])
EOF
) || die "reading pass.json from the pass failed"
[[ -n "$AUTH" ]] || die "the pass has no authenticationToken"
URL="${BASE}/v1/passes/${PASS_TYPE}/${SERIAL}"
echo "pass: ${PASS_TYPE} ${SERIAL}; latest-pass URL ${URL}"

HEADERS="$(curl -sS --fail -D - -o "${WORK}/latest.pkpass" -H "Authorization: ApplePass ${AUTH}" "$URL")" \
    || die "GET ${URL} with the pass's token failed"
LAST_MODIFIED="$(printf '%s' "$HEADERS" | tr -d '\r' | sed -n 's/^[Ll]ast-[Mm]odified: //p')"
[[ -n "$LAST_MODIFIED" ]] || die "the latest-pass response has no Last-Modified"
echo "latest pass: $(wc -c <"${WORK}/latest.pkpass") bytes, Last-Modified: ${LAST_MODIFIED}"

CODE_304="$(curl -s -o "${WORK}/304.body" -w '%{http_code}' \
    -H "Authorization: ApplePass ${AUTH}" -H "If-Modified-Since: ${LAST_MODIFIED}" "$URL")"
[[ "$CODE_304" == 304 ]] || die "If-Modified-Since: ${LAST_MODIFIED} answered ${CODE_304}, not 304"
[[ ! -s "${WORK}/304.body" ]] || die "the 304 answer has a body"
CODE_WRONG="$(curl -s -o /dev/null -w '%{http_code}' \
    -H "Authorization: ApplePass wrong-token" -H "If-Modified-Since: ${LAST_MODIFIED}" "$URL")"
[[ "$CODE_WRONG" == 401 ]] || die "a wrong ApplePass token answered ${CODE_WRONG}, not 401"
echo "checked with curl: 304 with the pass's token and If-Modified-Since, 401 with a wrong token"

echo
echo "== not modified (304): wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} --latency -H \"Authorization: ApplePass …\" -H \"If-Modified-Since: ${LAST_MODIFIED}\" ${URL}"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
    -H "Authorization: ApplePass ${AUTH}" -H "If-Modified-Since: ${LAST_MODIFIED}" "$URL"

echo
echo "== server counters after the run"
curl -s "${BASE}/metrics" | grep -E '^tessera_(http_requests_total|passes_built)' || true
echo "note: server and wrk shared this machine's $(nproc) cores"
