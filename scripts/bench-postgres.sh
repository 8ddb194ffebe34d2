# Sourced by the bench scripts: start_postgres makes a throw-away cluster from the installed `postgresql`
# package on a free port (as the postgres user when run as root) and sets DATABASE_URL; stop_postgres
# removes it. Expects a die() function.
as_postgres() { if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_postgres() { # sets DATABASE_URL and PG_DIR
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
    [[ -x "$bin/initdb" ]] || die "PostgreSQL is not installed (apt-get install postgresql)"
    PG_DIR="$(mktemp -d /tmp/tessera-bench-pg.XXXXXX)"
    [[ "$(id -u)" == 0 ]] && chown postgres "$PG_DIR"
    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_postgres "$bin/initdb" -U postgres --auth=trust -E UTF8 --no-instructions -D "$PG_DIR/data" >/dev/null
    as_postgres "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
        -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c shared_buffers=256MB" start >/dev/null
    PG_CTL="$bin/pg_ctl"
    DATABASE_URL="postgres://postgres@127.0.0.1:${port}/postgres"
}

stop_postgres() {
    [[ -n "${PG_DIR:-}" ]] || return 0
    as_postgres "$PG_CTL" -D "$PG_DIR/data" -m fast stop >/dev/null || true
    rm -rf "$PG_DIR"
    PG_DIR=""
}
