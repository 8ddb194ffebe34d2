#!/usr/bin/env bash
# Seeds a tessera database (already migrated, e.g. by `tessera serve` or `tessera migrate`) with
# MEMBERS members, their passes, and DEVICES_PER_MEMBER registrations each, straight through SQL.
#
# Usage: scripts/seed-large.sh DATABASE_URL [MEMBERS] [DEVICES_PER_MEMBER]
#   DATABASE_URL: sqlite://FILE (needs the sqlite3 command) or postgres://… (needs psql)
#   MEMBERS: 1000000 by default; DEVICES_PER_MEMBER: 2 by default.
# The rows look like what the admin API writes (program `default`, tier gold, a random-looking public id,
# serial and token per member), with update tag 0, so they predate every change made afterwards.
set -euo pipefail

URL="${1:?usage: scripts/seed-large.sh DATABASE_URL [MEMBERS] [DEVICES_PER_MEMBER]}"
MEMBERS="${2:-1000000}"
DEVICES="${3:-2}"
PASS_TYPE="${PASS_TYPE:-pass.com.example.tessera}"
TEAM="${TEAM:-EXAMPLE123}"

case "$URL" in
sqlite:*)
    FILE="${URL#sqlite://}"
    FILE="${FILE%%\?*}"
    command -v sqlite3 >/dev/null || { echo "seed-large: sqlite3 is missing (apt-get install sqlite3)" >&2; exit 1; }
    sqlite3 -cmd ".timeout 60000" "$FILE" <<SQL
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${MEMBERS})
INSERT INTO members (program, member_id, public_id, name, tier, points, locale, attributes, retired, ledger_sequence, created_at, updated_at)
SELECT 'default', 'SEED-' || i, 'seed' || printf('%018d', i), 'Seed Member ' || i, 'gold', i, NULL, '{}', 0, NULL, 0, 0 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${MEMBERS})
INSERT INTO apple_passes (serial_number, program, member_id, pass_type_id, team_id, authentication_token, voided, update_tag, modified_at, created_at)
SELECT printf('5eed%028x', i), 'default', 'SEED-' || i, '${PASS_TYPE}', '${TEAM}', 'seed-token-' || printf('%022d', i), 0, 0, 0, 0 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${MEMBERS}),
     d(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM d WHERE k < ${DEVICES})
INSERT INTO registrations (device_library_id, pass_type_id, serial_number, push_token, registered_at)
SELECT 'seed-device-' || i || '-' || k, '${PASS_TYPE}', printf('5eed%028x', i), printf('%064x', i * 16 + k), 0 FROM n, d;
COMMIT;
SQL
    ;;
postgres://* | postgresql://*)
    command -v psql >/dev/null || { echo "seed-large: psql is missing (apt-get install postgresql-client)" >&2; exit 1; }
    psql -q -v ON_ERROR_STOP=1 "$URL" <<SQL
BEGIN;
INSERT INTO members (program, member_id, public_id, name, tier, points, locale, attributes, retired, ledger_sequence, created_at, updated_at)
SELECT 'default', 'SEED-' || i, 'seed' || lpad(i::text, 18, '0'), 'Seed Member ' || i, 'gold', i, NULL, '{}', 0, NULL, 0, 0
FROM generate_series(1, ${MEMBERS}) AS i;
INSERT INTO apple_passes (serial_number, program, member_id, pass_type_id, team_id, authentication_token, voided, update_tag, modified_at, created_at)
SELECT '5eed' || lpad(to_hex(i), 28, '0'), 'default', 'SEED-' || i, '${PASS_TYPE}', '${TEAM}', 'seed-token-' || lpad(i::text, 22, '0'), 0, 0, 0, 0
FROM generate_series(1, ${MEMBERS}) AS i;
INSERT INTO registrations (device_library_id, pass_type_id, serial_number, push_token, registered_at)
SELECT 'seed-device-' || i || '-' || k, '${PASS_TYPE}', '5eed' || lpad(to_hex(i), 28, '0'), lpad(to_hex(i * 16 + k), 64, '0'), 0
FROM generate_series(1, ${MEMBERS}) AS i, generate_series(1, ${DEVICES}) AS k;
COMMIT;
ANALYZE;
SQL
    ;;
*)
    echo "seed-large: $URL is neither sqlite://FILE nor postgres://…" >&2
    exit 1
    ;;
esac
echo "seeded ${MEMBERS} members, ${MEMBERS} passes and $((MEMBERS * DEVICES)) registrations"
