#!/usr/bin/env bash
# Pass downloads over HTTP: distinct members (each download a fresh build and signature) against the same
# pass again and again (served from the signed-pass cache), and the 304 path, measured in one run.
#
# Builds the release binary, starts `tessera serve` on a free 127.0.0.1 port with a throw-away SQLite
# database, creates MEMBERS members with signed ledger batches, downloads each pass once through its link
# to learn what a device knows (pass type, serial, authenticationToken), then runs wrk on the web service's
# `GET /v1/passes/{passType}/{serial}` (where devices fetch) and on the member link:
#   1. distinct: every request a different member's pass (wrk cycles the passes, each thread from its own
#      offset; MEMBERS is far above what the cache holds, so each request is a signature: the server's
#      counters before and after say how many were);
#   2. same pass: one pass again and again (cache hits);
#   3. 304: the same pass with If-Modified-Since = its Last-Modified;
#   4. and 5. distinct and same on the member link (its member lookup cached like the web service's).
# The server is stopped on exit, whatever happens.
#
# Note: the server and wrk share the machine's cores; the figures are a lower bound of the server alone.
#
# Usage: scripts/bench-downloads.sh        (needs curl, wrk, python3)
# Settings (environment): MEMBERS (20000), WRK_THREADS (2), WRK_CONNECTIONS (32), WRK_DURATION (15s),
# BENCH_PORT (a free one), TESSERA_PASS_CACHE_MB (the server's default, 64).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOKEN="bench-admin-token-0123456789abcdef"
SECRET="bench-webhook-secret-0123456789abcdef"
MEMBERS="${MEMBERS:-20000}"
THREADS="${WRK_THREADS:-2}"
CONNECTIONS="${WRK_CONNECTIONS:-32}"
DURATION="${WRK_DURATION:-15s}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

die() { echo "bench-downloads: $*" >&2; exit 1; }

command -v curl >/dev/null || die "curl is missing"
command -v python3 >/dev/null || die "python3 is missing"
if ! command -v wrk >/dev/null; then
    echo "wrk is missing; installing it with apt-get" >&2
    apt-get install -y wrk >/dev/null || die "wrk is missing and apt-get install -y wrk failed; install wrk"
fi

echo "== building the release binary"
cargo build --release
BIN="${BIN:-${TARGET_DIR}/release/tessera}"
[[ -x "$BIN" ]] || die "$BIN was not built"

WEBHOOK_SECRET="$SECRET"
source "$(dirname "${BASH_SOURCE[0]}")/bench-server.sh"

echo "== creating ${MEMBERS} members through the ledger webhook, downloading each pass once"
python3 - "$BASE" "$TOKEN" "$SECRET" "$MEMBERS" "${WORK}/paths.txt" "${WORK}/device.txt" <<'PY'
import concurrent.futures, hashlib, hmac, io, json, sys, time, urllib.request, zipfile
base, token, secret, members, out, device_out = sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4]), sys.argv[5], sys.argv[6]
for start in range(0, members, 1000):
    events = [{"id": f"bench-{n}", "member_id": f"BENCH-{n}", "sequence": 1, "points": n, "tier": "gold"}
              for n in range(start, min(start + 1000, members))]
    body = json.dumps({"events": events}).encode()
    t = str(int(time.time()))
    sig = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(base + "/webhooks/ledger", data=body,
                                 headers={"content-type": "application/json", "tessera-signature": f"t={t},v1={sig}"})
    urllib.request.urlopen(req).read()
def link(n):
    req = urllib.request.Request(f"{base}/api/v1/members/BENCH-{n}", headers={"authorization": f"Bearer {token}"})
    url = json.load(urllib.request.urlopen(req))["links"]["apple"]
    pass_json = json.loads(zipfile.ZipFile(io.BytesIO(urllib.request.urlopen(url).read())).read("pass.json"))
    device = f"/v1/passes/{pass_json['passTypeIdentifier']}/{pass_json['serialNumber']} {pass_json['authenticationToken']}"
    return url[len(base):], device
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    found = list(pool.map(link, range(members)))
open(out, "w").write("\n".join(p for p, _ in found) + "\n")
open(device_out, "w").write("\n".join(d for _, d in found) + "\n")
PY
echo "$(wc -l <"${WORK}/paths.txt") links, $(wc -l <"${WORK}/device.txt") passes as devices know them"

cat >"${WORK}/cycle.lua" <<'LUA'
-- Each thread walks the list of paths from its own offset, so no two threads ask for one pass together.
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
-- A line is "path" or "path token"; with a token the request carries Authorization: ApplePass <token>.
function init(args)
  paths, tokens = {}, {}
  for line in io.lines(os.getenv("PATHS_FILE")) do
    local path, token = line:match("^(%S+) ?(%S*)$")
    paths[#paths + 1] = path
    tokens[#tokens + 1] = token
  end
  i = math.floor(#paths * id / 8)
end
function request()
  i = i % #paths + 1
  if tokens[i] ~= "" then
    return wrk.format("GET", paths[i], { ["Authorization"] = "ApplePass " .. tokens[i] })
  end
  return wrk.format("GET", paths[i])
end
LUA

counter() { curl -s "${BASE}/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }

read -r SAME_PATH SAME_TOKEN < <(head -1 "${WORK}/device.txt")
SAME_URL="${BASE}${SAME_PATH}"
AUTH="Authorization: ApplePass ${SAME_TOKEN}"
HEADERS="$(curl -sS --fail -D - -o "${WORK}/bench.pkpass" -H "$AUTH" "$SAME_URL")" || die "fetching the pass failed"
LAST_MODIFIED="$(printf '%s' "$HEADERS" | tr -d '\r' | sed -n 's/^[Ll]ast-[Mm]odified: //p')"
[[ -n "$LAST_MODIFIED" ]] || die "the pass response has no Last-Modified"
echo "pass: $(wc -c <"${WORK}/bench.pkpass") bytes, Last-Modified: ${LAST_MODIFIED}"
CODE_304="$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" -H "If-Modified-Since: ${LAST_MODIFIED}" "$SAME_URL")"
[[ "$CODE_304" == 304 ]] || die "If-Modified-Since: ${LAST_MODIFIED} answered ${CODE_304}, not 304"

run() { # run LABEL PATHS_FILE wrk-args...
    local label="$1" paths="$2"; shift 2
    local built_before hits_before
    built_before="$(counter tessera_passes_built_total)"; hits_before="$(counter tessera_pass_cache_hits_total)"
    echo
    echo "== ${label}: wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} --latency $*"
    PATHS_FILE="$paths" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@"
    echo "signed during the run: $(( $(counter tessera_passes_built_total) - built_before )), cache hits: $(( $(counter tessera_pass_cache_hits_total) - hits_before ))"
}

DEVICE="${WORK}/device.txt" LINKS="${WORK}/paths.txt"
run "1. web service, distinct members (a signature each)" "$DEVICE" -s "${WORK}/cycle.lua" "$BASE"
run "2. web service, the same pass again (cache hits)" "$DEVICE" -H "$AUTH" "$SAME_URL"
run "3. web service, not modified (304)" "$DEVICE" -H "$AUTH" -H "If-Modified-Since: ${LAST_MODIFIED}" "$SAME_URL"
run "4. member link, distinct members" "$LINKS" -s "${WORK}/cycle.lua" "$BASE"
run "5. member link, the same pass again" "$LINKS" "${BASE}$(head -1 "$LINKS")"

echo
echo "server resident memory: $(awk '/VmRSS/ {print $2, $3}' "/proc/${SERVER_PID}/status")"
echo "note: server and wrk shared this machine's $(nproc) cores"
