#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests: loopback only, random free port, durability off,
# data in a temporary directory that is removed when the server stops.
#
#   scripts/pg_ephemeral.sh run CMD [ARGS...]   start, run CMD with DATABASE_URL set, stop, clean up
#   scripts/pg_ephemeral.sh start               start and print `export DATABASE_URL=...` and `export PG_EPHEMERAL_DIR=...`
#   scripts/pg_ephemeral.sh stop DIR            stop the server started in DIR and remove DIR
#
# Debian's PostgreSQL refuses to run as root, so as root the server runs as the `postgres`
# system user; otherwise it runs as the current user. Either way the database superuser is
# called `postgres` and loopback connections are trusted.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "$0")" && pwd)"

pg_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -z "$dir" || ! -x "$dir/initdb" ]]; then
        "$SCRIPT_DIR/ensure_system_deps.sh" postgresql >&2
        dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    fi
    if [[ -z "$dir" || ! -x "$dir/initdb" ]]; then
        echo "pg_ephemeral: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin" >&2
        exit 1
    fi
    echo "$dir"
}

# Runs a PostgreSQL binary as the user that owns the data directory.
# Runs from / because the postgres user may not be allowed into the caller's directory.
as_pg_user() {
    if [[ "$(id -u)" -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts a server; prints "<dir> <port>" on stdout, everything else goes to stderr.
pg_start() {
    local bindir dir port attempt
    bindir="$(pg_bindir)"
    # mktemp picks the random part; the suffix marks the folder as ours for pg_stop.
    dir="$(mktemp -d --tmpdir=/tmp --suffix=.dispatch-pg)"
    chmod 700 "$dir"
    if [[ "$(id -u)" -eq 0 ]]; then
        chown postgres: "$dir"
    fi
    if ! as_pg_user "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust \
            --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        echo "pg_ephemeral: initdb failed" >&2
        exit 1
    fi
    # The port is picked before the server binds it, so another process can take it in
    # between; a second or third pick almost always wins.
    for attempt in 1 2 3; do
        port="$(free_port)"
        if as_pg_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
                -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir \
                    -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                    -c max_connections=200" start >&2; then
            echo "$dir $port"
            return 0
        fi
        echo "pg_ephemeral: start on port $port failed (attempt $attempt)" >&2
    done
    cat "$dir/server.log" >&2 || true
    rm -rf "$dir"
    exit 1
}

pg_stop() {
    local dir="$1" bindir
    [[ -n "$dir" && -d "$dir" ]] || return 0
    case "$dir" in
        /tmp/*.dispatch-pg) ;;
        *) echo "pg_ephemeral: refusing to remove $dir (not made by this script)" >&2; return 1 ;;
    esac
    bindir="$(pg_bindir)"
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        # Immediate shutdown: the data is thrown away, so there is nothing to flush.
        as_pg_user "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

database_url() {
    echo "postgres://postgres@127.0.0.1:$1/postgres"
}

cmd="${1:-}"
case "$cmd" in
    run)
        shift
        if [[ $# -eq 0 ]]; then
            echo "usage: $0 run CMD [ARGS...]" >&2
            exit 2
        fi
        read -r PG_DIR PG_PORT < <(pg_start)
        [[ -n "${PG_DIR:-}" ]] || { echo "pg_ephemeral: server did not start" >&2; exit 1; }
        trap 'pg_stop "$PG_DIR"' EXIT
        echo "pg_ephemeral: PostgreSQL on 127.0.0.1:$PG_PORT (data in $PG_DIR)" >&2
        # CMD runs in the background so that a signal sent to this script alone (not to its
        # process group) still reaches it: bash runs traps only between commands, and a
        # foreground CMD would keep the server alive until it finished on its own.
        DATABASE_URL="$(database_url "$PG_PORT")" "$@" &
        child=$!
        forward() {
            kill -TERM "$child" 2>/dev/null || true
            wait "$child" 2>/dev/null || true
            exit "$1"
        }
        trap 'forward 130' INT
        trap 'forward 143' TERM
        status=0
        wait "$child" || status=$?
        exit "$status"
        ;;
    start)
        read -r PG_DIR PG_PORT < <(pg_start)
        [[ -n "${PG_DIR:-}" ]] || { echo "pg_ephemeral: server did not start" >&2; exit 1; }
        echo "export DATABASE_URL=$(database_url "$PG_PORT")"
        echo "export PG_EPHEMERAL_DIR=$PG_DIR"
        ;;
    stop)
        pg_stop "${2:-${PG_EPHEMERAL_DIR:-}}"
        ;;
    *)
        echo "usage: $0 run CMD [ARGS...] | start | stop DIR" >&2
        exit 2
        ;;
esac
