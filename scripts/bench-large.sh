#!/usr/bin/env bash
# The web service's list-updatable and latest-pass endpoints on an empty database and on one holding
# 1,000,000 members with 2,000,000 registrations (scripts/seed-large.sh), on SQLite and on PostgreSQL,
# and the instance's resident memory while it serves them.
#
# For each back end: builds the release binary, starts `tessera serve` on a throw-away database (for
# PostgreSQL, a throw-away cluster from the installed `postgresql` package), creates one member and
# registers one device for it through the web service, then runs wrk twice, on
#   GET /v1/devices/{device}/registrations/{passType}?passesUpdatedSince=<its tag>   (204: nothing new)
#   GET /v1/passes/{passType}/{serial}                                                (200: the signed pass)
# seeds the database while the server runs, and runs the same two again. Compare p50/p99 of each pair.
#
# Usage: scripts/bench-large.sh [sqlite|postgres]...   (default: both; needs curl, wrk, python3, sqlite3, psql)
# Settings (environment): MEMBERS (1000000), WRK_DURATION (10s), WRK_CONNECTIONS (16).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOKEN="bench-admin-token-0123456789abcdef"
MEMBERS="${MEMBERS:-1000000}"
DURATION="${WRK_DURATION:-10s}"
CONNECTIONS="${WRK_CONNECTIONS:-16}"
BACKENDS=("$@")
[[ ${#BACKENDS[@]} -gt 0 ]] || BACKENDS=(sqlite postgres)

die() { echo "bench-large: $*" >&2; exit 1; }
for tool in curl wrk python3; do command -v "$tool" >/dev/null || die "$tool is missing"; done

echo "== building the release binary"
cargo build --release
BIN="${CARGO_TARGET_DIR:-target}/release/tessera"

source "$(dirname "${BASH_SOURCE[0]}")/bench-postgres.sh"

measure() { # measure LABEL: wrk on both endpoints, printing requests/s and the latency distribution
    echo "-- $1: list-updatable (204)"
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "${BASE}/v1/devices/bench-device/registrations/${PT}?passesUpdatedSince=${TAG}" \
        | grep -E "Requests/sec|^ +(50|90|99)%"
    echo "-- $1: latest pass (200)"
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: ApplePass ${AUTH}" "${BASE}/v1/passes/${PT}/${SERIAL}" \
        | grep -E "Requests/sec|^ +(50|90|99)%"
    echo "-- $1: server resident memory $(awk '/VmRSS/ {print $2, $3}' "/proc/${SERVER_PID}/status")"
}

for backend in "${BACKENDS[@]}"; do
    echo
    echo "=================== ${backend} ==================="
    DATABASE_URL=""
    [[ "$backend" == postgres ]] && start_postgres
    (
        source "$(dirname "${BASH_SOURCE[0]}")/bench-server.sh"
        [[ -n "$DATABASE_URL" ]] || DATABASE_URL="sqlite://${WORK}/bench.db"
        MEMBER="$(curl -sS --fail -X PUT -H "Authorization: Bearer ${TOKEN}" -H 'content-type: application/json' \
            "${BASE}/api/v1/members/BENCH-L" -d '{"name":"Bench","tier":"gold","points":1250}')"
        APPLE="$(printf '%s' "$MEMBER" | python3 -c 'import json,sys; print(json.load(sys.stdin)["links"]["apple"])')"
        curl -sS --fail -o "${WORK}/p.pkpass" "$APPLE"
        read -r PT SERIAL AUTH < <(python3 -c 'import json,sys,zipfile; p=json.loads(zipfile.ZipFile(sys.argv[1]).read("pass.json")); print(p["passTypeIdentifier"], p["serialNumber"], p["authenticationToken"])' "${WORK}/p.pkpass")
        curl -sS --fail -o /dev/null -X POST -H "Authorization: ApplePass ${AUTH}" -H 'content-type: application/json' \
            "${BASE}/v1/devices/bench-device/registrations/${PT}/${SERIAL}" -d "{\"pushToken\":\"$(printf 'ab%.0s' {1..32})\"}"
        TAG="$(curl -sS --fail "${BASE}/v1/devices/bench-device/registrations/${PT}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lastUpdated"])')"
        [[ "$(curl -s -o /dev/null -w '%{http_code}' "${BASE}/v1/devices/bench-device/registrations/${PT}?passesUpdatedSince=${TAG}")" == 204 ]] \
            || die "the list with the current tag is not 204"
        measure "empty database (1 member)"
        echo "-- seeding ${MEMBERS} members and $((MEMBERS * 2)) registrations"
        time scripts/seed-large.sh "$DATABASE_URL" "$MEMBERS" 2
        measure "${MEMBERS} members, $((MEMBERS * 2)) registrations"
    ) || { stop_postgres; die "the ${backend} run failed"; }
    stop_postgres
done
echo
echo "note: the server, the database and wrk shared this machine's $(nproc) cores"
