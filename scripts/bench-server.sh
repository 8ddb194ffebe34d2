# Sourced by the bench scripts: picks a free port (or BENCH_PORT), starts "$BIN serve" there with a
# throw-away SQLite database, the admin token "$TOKEN" and the webhook secret "$WEBHOOK_SECRET", stops it on exit, and waits (with a deadline)
# until /healthz answers. Sets BASE, WORK and SERVER_PID. Expects BIN, TOKEN and a die() function.
if [[ -n "${BENCH_PORT:-}" ]]; then
    PORT="$BENCH_PORT"
else
    # A port the kernel says is free now (a tiny race with other programs is possible).
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
fi
BASE="http://127.0.0.1:${PORT}"
if curl -s -o /dev/null --max-time 1 "${BASE}/healthz"; then
    die "something already answers on ${BASE}; stop it or set BENCH_PORT"
fi

WORK="$(mktemp -d /tmp/tessera-bench.XXXXXX)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting ${BIN} serve on ${BASE} (database ${DATABASE_URL:-${WORK}/bench.db}, log ${WORK}/server.log)"
env -u TESSERA_CONFIG \
    TESSERA_LISTEN="127.0.0.1:${PORT}" \
    TESSERA_PUBLIC_URL="${BASE}" \
    TESSERA_DATABASE_URL="${DATABASE_URL:-sqlite://${WORK}/bench.db}" \
    TESSERA_ADMIN_TOKEN="${TOKEN}" \
    TESSERA_WEBHOOK_SECRET="${WEBHOOK_SECRET:-bench-webhook-secret-0123456789abcdef}" \
    "$BIN" serve >"${WORK}/server.log" 2>&1 &
SERVER_PID=$!

deadline=$((SECONDS + 60))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${BASE}/healthz" || true)" == 200 ]]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        cat "${WORK}/server.log" >&2
        die "the server exited before answering /healthz"
    fi
    if ((SECONDS >= deadline)); then
        cat "${WORK}/server.log" >&2
        die "GET /healthz did not answer 200 within 60 s"
    fi
    sleep 0.1
done
echo "server is up (pid ${SERVER_PID})"
