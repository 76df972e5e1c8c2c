#!/usr/bin/env bash
# PostgreSQL for the metadata store of several replicas (issue #12), from Debian's postgresql package.
#
#   scripts/stack/postgres.sh start   initdb into the state dir, start postgres on 127.0.0.1:$PG_PORT (default 55432)
#                                     with its Unix socket in the state dir, create user and database "registry";
#                                     prints `export PG_CONNECTION_STRING=...` and writes it to <state dir>/env
#   scripts/stack/postgres.sh stop    stop the server named by the pid file (pg_ctl stop -m immediate, else kill), wipe
#
# State: ${REGISTRY_STACK_DIR:-/work/stack}/postgres/. The server runs as the `postgres` user (postgres refuses
# root), with fsync on: the durability the registry promises is the database's. Only the loopback address listens.
set -euo pipefail

command=${1:-}
state="${REGISTRY_STACK_DIR:-/work/stack}/postgres"
port="${PG_PORT:-55432}"
user=registry
database=registry
password=registry

bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
  echo "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2
  exit 1
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
  local bin pid
  if [ -f "$state/data/postmaster.pid" ]; then
    pid=$(head -n 1 "$state/data/postmaster.pid")
    bin=$(bindir)
    # immediate: the data is wiped next, so the shutdown checkpoint (seconds after a test run made dozens of
    # databases, longer than a test process waits at exit) would be wasted work.
    if ! as_postgres "$bin/pg_ctl" -D "$state/data" -m immediate -w -t 30 stop >/dev/null 2>&1; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Renamed first (instant), then deleted in the background: a caller that exits right after (a test process at its
  # end) cannot leave a half-wiped state dir behind, and a start right after finds none.
  if [ -d "$state" ]; then
    local trash="$state.wiped-$$-$RANDOM"
    mv "$state" "$trash"
    setsid rm -rf "$trash" </dev/null >/dev/null 2>&1 &
  fi
}

start() {
  local bin
  bin=$(bindir)
  if [ -f "$state/data/postmaster.pid" ]; then stop; fi
  rm -rf "$state"
  mkdir -p "$state/data" "$state/socket"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$state"; fi
  chmod 700 "$state/data"

  as_postgres "$bin/initdb" -D "$state/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    >"$state/initdb.log" 2>&1 || { cat "$state/initdb.log" >&2; exit 1; }
  # trust on the socket (owned by postgres, in a 700 state dir); passwords on loopback TCP.
  cat >"$state/data/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 scram-sha-256
EOF
  as_postgres "$bin/pg_ctl" -D "$state/data" -l "$state/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$state/socket -c fsync=on -c max_connections=200" \
    start >/dev/null || { cat "$state/postgres.log" >&2; exit 1; }

  as_postgres "$bin/psql" -h "$state/socket" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<EOF >/dev/null
CREATE ROLE $user LOGIN PASSWORD '$password' CREATEDB;
CREATE DATABASE $database OWNER $user;
EOF
  local line="export PG_CONNECTION_STRING='Host=127.0.0.1;Port=$port;Database=$database;Username=$user;Password=$password'"
  echo "$line" >"$state/env"
  echo "$line"
}

case "$command" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
