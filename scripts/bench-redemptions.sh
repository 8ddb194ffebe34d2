#!/usr/bin/env bash
# Redemptions under wrk, the server in its own process (issue 14; goal: p99 under 10 ms at 2,000/s or
# more on SQLite). Builds the release binary, starts `tessera serve` on a throw-away SQLite database with a
# known staff token and the per-credential limit lifted (one wrk is one credential), creates
# BENCH_MEMBERS members [60,000] with signed ledger batches, grants them one offer, reads the coupon codes
# from the database, then runs wrk posting each code once (`POST /api/v1/redemptions`) and compares wrk's
# count of answers with the coupons marked redeemed.
#
# Usage: scripts/bench-redemptions.sh   (needs curl, wrk, python3, sqlite3)
# Settings: WRK_THREADS (2), WRK_CONNECTIONS (8), WRK_DURATION (10s), BENCH_MEMBERS (60000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOKEN="bench-admin-token-0123456789abcdef"
WEBHOOK_SECRET="bench-webhook-secret-0123456789abcdef"
export TESSERA_STAFF_TOKEN="bench-staff-token-0123456789abcdef"
export TESSERA_SCAN_RATE=1000000
THREADS="${WRK_THREADS:-2}"
CONNECTIONS="${WRK_CONNECTIONS:-8}"
DURATION="${WRK_DURATION:-10s}"
MEMBERS="${BENCH_MEMBERS:-60000}"

die() { echo "bench-redemptions: $*" >&2; exit 1; }
for tool in curl wrk python3 sqlite3; do command -v "$tool" >/dev/null || die "$tool is missing"; done

echo "== building the release binary"
cargo build --release
BIN="${CARGO_TARGET_DIR:-target}/release/tessera"
source "$(dirname "${BASH_SOURCE[0]}")/bench-server.sh"
DB="${WORK}/bench.db"

python3 - "$BASE" "$WEBHOOK_SECRET" "$TOKEN" "$MEMBERS" <<'PY' || die "seeding members and the offer failed"
import hashlib, hmac, json, sys, time, urllib.request
base, secret, token, members = sys.argv[1], sys.argv[2].encode(), sys.argv[3], int(sys.argv[4])
ids = [f"RD-{m:06d}" for m in range(members)]
def call(method, path, body, headers):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/json", **headers})
    return json.load(urllib.request.urlopen(req))
for i in range(0, members, 1000):
    events = [{"id": f"rd-{m}", "member_id": m, "sequence": 1, "points": 100, "tier": "gold"} for m in ids[i:i + 1000]]
    body = json.dumps({"events": events}).encode()
    t = str(int(time.time()))
    sig = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(base + "/webhooks/ledger", data=body, method="POST",
        headers={"Content-Type": "application/json", "Tessera-Signature": f"t={t},v1={sig}"})
    urllib.request.urlopen(req).read()
now = int(time.time())
rfc = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))
auth = {"Authorization": f"Bearer {token}"}
call("PUT", "/api/v1/offers/bench", {"template": "free-drink", "valid_from": rfc(now - 60), "valid_until": rfc(now + 86400)}, auth)
for i in range(0, members, 10000):
    assert call("POST", "/api/v1/offers/bench/grants", {"member_ids": ids[i:i + 10000]}, auth)["granted"] == len(ids[i:i + 10000])
PY
sqlite3 "$DB" "SELECT code FROM coupons ORDER BY coupon_id" >"${WORK}/codes.txt"
echo "-- $(wc -l <"${WORK}/codes.txt") coupons granted"

LUA="${WORK}/redeem.lua"
cat >"$LUA" <<LUA
local codes = {}
for line in io.lines("${WORK}/codes.txt") do codes[#codes + 1] = line end
local threads = 0
setup = function(thread) thread:set("id", threads); threads = threads + 1 end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${TESSERA_STAFF_TOKEN}"
local k = 0
request = function()
  -- Each thread takes every THREADS-th code, so no code is redeemed twice.
  k = k + 1
  local i = (k - 1) * ${THREADS} + id + 1
  return wrk.format(nil, nil, nil, string.format('{"code": "%s", "location": "bench"}', codes[i] or "CPN-AAAAAAAAAAAAAAAA"))
end
LUA
echo "-- wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} --latency -s <each code once> POST /api/v1/redemptions"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$LUA" "${BASE}/api/v1/redemptions" | tee "${WORK}/wrk.txt" \
    | grep -E "Requests/sec|requests in|Non-2xx|Socket errors|^ +(50|75|90|99)%"
SENT="$(awk '/requests in/ {print $1}' "${WORK}/wrk.txt")"
REDEEMED="$(sqlite3 "$DB" "SELECT COUNT(*) FROM coupons WHERE state = 'redeemed'")"
echo "-- answered by wrk's count: ${SENT}; coupons redeemed: ${REDEEMED}"
echo "note: the server and wrk shared this machine's $(nproc) cores"
