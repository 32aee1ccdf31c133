#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server on loopback and exports its URL as
# CUSTODY_TEST_PG_URL. Installs PostgreSQL with apt when it is missing. The server lives in
# a temporary directory and is stopped (and the directory removed) when the command ends.
#
#   scripts/with-postgres.sh cargo nextest run --workspace
set -euo pipefail

find_pg_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
    return 1
}

if ! PG_BIN=$(find_pg_bin); then
    echo "with-postgres: PostgreSQL not found; installing it with apt" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    PG_BIN=$(find_pg_bin) || { echo "with-postgres: PostgreSQL install failed" >&2; exit 1; }
fi

PG_DIR=$(mktemp -d /tmp/custody-pg.XXXXXX)
chmod 0755 "$PG_DIR"
run_pg() {
    # initdb and postgres refuse to run as root.
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown -R postgres "$PG_DIR"
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
PORT=${CUSTODY_TEST_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
cleanup() {
    run_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
trap cleanup EXIT INT TERM

run_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U custody --auth=trust --no-sync -E UTF8 >/dev/null
run_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PG_DIR -c max_connections=400 -c fsync=on" start >/dev/null
export CUSTODY_TEST_PG_URL="postgres://custody@127.0.0.1:$PORT/postgres"
echo "with-postgres: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT" >&2
"$@"
