#!/usr/bin/env bash
# The scan API under wrk (issue 9; goal on SQLite: p99 under 5 ms at 5,000 scans/s or more, each scan
# recorded). For each back end (SQLite file; PostgreSQL, a throw-away cluster from the installed
# `postgresql` package): builds the release binary, starts `tessera serve` with a known staff token and
# the per-credential limit lifted (TESSERA_SCAN_RATE=1000000, since one wrk is one credential), creates
# 1,000 members with one signed ledger batch, checks one scan with curl, then runs wrk posting
# `{"barcode": "SCAN-<n>"}` round-robin over the members, and compares wrk's request count with the rows
# in the `scans` table (every answered scan recorded).
#
# Usage: scripts/bench-scans.sh [sqlite|postgres]...   (default: both; needs curl, wrk, python3, sqlite3, psql)
# Settings: WRK_THREADS (2), WRK_CONNECTIONS (8), WRK_DURATION (15s).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOKEN="bench-admin-token-0123456789abcdef"
WEBHOOK_SECRET="bench-webhook-secret-0123456789abcdef"
export TESSERA_STAFF_TOKEN="bench-staff-token-0123456789abcdef"
export TESSERA_SCAN_RATE=1000000
THREADS="${WRK_THREADS:-2}"
CONNECTIONS="${WRK_CONNECTIONS:-8}"
DURATION="${WRK_DURATION:-15s}"
BACKENDS=("$@")
[[ ${#BACKENDS[@]} -gt 0 ]] || BACKENDS=(sqlite postgres)

die() { echo "bench-scans: $*" >&2; exit 1; }
for tool in curl wrk python3; do command -v "$tool" >/dev/null || die "$tool is missing"; done

echo "== building the release binary"
cargo build --release
BIN="${CARGO_TARGET_DIR:-target}/release/tessera"

source "$(dirname "${BASH_SOURCE[0]}")/bench-postgres.sh"

LUA="$(mktemp /tmp/tessera-scan.XXXXXX.lua)"
cat >"$LUA" <<LUA
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${TESSERA_STAFF_TOKEN}"
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format('{"barcode": "SCAN-%05d", "location": "bench"}', n % 1000))
end
LUA

for backend in "${BACKENDS[@]}"; do
    echo
    echo "=================== ${backend} ==================="
    DATABASE_URL=""
    [[ "$backend" == postgres ]] && start_postgres
    (
        source "$(dirname "${BASH_SOURCE[0]}")/bench-server.sh"
        [[ -n "$DATABASE_URL" ]] || DATABASE_URL="sqlite://${WORK}/bench.db"
        python3 - "$BASE" "$WEBHOOK_SECRET" <<'PY' || die "creating the members failed"
import hashlib, hmac, json, sys, time, urllib.request
base, secret = sys.argv[1], sys.argv[2].encode()
events = [{"id": f"scan-{m}", "member_id": f"SCAN-{m:05d}", "sequence": 1, "points": 100 + m, "tier": "gold"} for m in range(1000)]
body = json.dumps({"events": events}).encode()
t = str(int(time.time()))
sig = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
req = urllib.request.Request(base + "/webhooks/ledger", data=body, method="POST",
    headers={"Content-Type": "application/json", "Tessera-Signature": f"t={t},v1={sig}"})
assert len(json.load(urllib.request.urlopen(req))["results"]) == 1000
PY
        ONE="$(curl -sS --fail -H "Authorization: Bearer ${TESSERA_STAFF_TOKEN}" -H 'content-type: application/json' \
            "${BASE}/api/v1/scans" -d '{"barcode": "SCAN-00001"}')" || die "one scan failed"
        echo "one scan: ${ONE}"
        echo "-- wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} --latency -s <round-robin POST /api/v1/scans>"
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$LUA" "${BASE}/api/v1/scans" | tee "${WORK}/wrk.txt" \
            | grep -E "Requests/sec|requests in|Non-2xx|Socket errors|^ +(50|75|90|99)%"
        if [[ "$backend" == postgres ]]; then
            RECORDED="$(psql -At "$DATABASE_URL" -c 'SELECT COUNT(*) FROM scans')"
        else
            RECORDED="$(sqlite3 "${DATABASE_URL#sqlite://}" 'SELECT COUNT(*) FROM scans')"
        fi
        SENT="$(awk '/requests in/ {print $1}' "${WORK}/wrk.txt")"
        echo "-- scans answered by wrk's count: ${SENT} (+1 by curl); rows in scans: ${RECORDED}"
    ) || { stop_postgres; die "the ${backend} run failed"; }
    stop_postgres
done
rm -f "$LUA"
echo
echo "note: the server, the database and wrk shared this machine's $(nproc) cores"
