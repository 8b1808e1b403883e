#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and the benches: initdb into a temp dir as an unprivileged
# user (postgres refuses to run as root), listening on a free loopback port only, trust auth (nothing but
# this machine can reach it, and it is deleted at the end).
#
#   .ci/postgres.sh install          # apt-get install postgresql when no PostgreSQL binaries are found
#   .ci/postgres.sh run CMD ARGS...  # start a cluster, run CMD with TAPEWATCH_TEST_DATABASE_URL set, stop it
#   .ci/postgres.sh start DIR        # start a cluster in the empty dir DIR; prints its SQLAlchemy URL
#   .ci/postgres.sh restart DIR      # stop it fast and start it again on the same port
#   .ci/postgres.sh down DIR / up DIR  # the two halves of a restart, for a longer outage
#   .ci/postgres.sh stop DIR         # stop it and delete DIR
#   .ci/postgres.sh bindir           # where PostgreSQL's binaries are (nothing when they are not)
#
# `run` without PostgreSQL binaries says so and runs CMD anyway (the tests then run on SQLite only).
set -euo pipefail

PG_USER=${TAPEWATCH_PG_USER:-tapewatch-pg}

pg_bindir() {
  local dir
  if command -v pg_config > /dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V -r); do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
  if command -v initdb > /dev/null; then dirname "$(command -v initdb)"; fi
}

# Run a command as the cluster's owner: ourselves, or an unprivileged system user when we are root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd_install() {
  if [ -n "$(pg_bindir)" ]; then
    echo "postgres.sh: PostgreSQL found in $(pg_bindir)"
    return
  fi
  echo "postgres.sh: no PostgreSQL binaries; installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql > /dev/null
  # Debian's package creates and starts a system cluster; the tests never use it.
  if command -v pg_lsclusters > /dev/null; then
    pg_lsclusters -h 2> /dev/null | while read -r version name _; do
      pg_ctlcluster "$version" "$name" stop 2> /dev/null || true
    done
  fi
  [ -n "$(pg_bindir)" ] || { echo "postgres.sh: postgresql installed but no initdb found" >&2; exit 1; }
}

cmd_start() {
  local dir=$1 bin port
  bin=$(pg_bindir)
  [ -n "$bin" ] || { echo "postgres.sh: no PostgreSQL binaries (run '$0 install')" >&2; exit 1; }
  if [ "$(id -u)" -eq 0 ] && ! id -u "$PG_USER" > /dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_USER"
  fi
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown "$PG_USER" "$dir"
  chmod 700 "$dir"
  port=$(free_port)
  echo "$port" > "$dir/port"
  as_owner "$bin/initdb" --pgdata "$dir/data" --username postgres --auth trust --encoding UTF8 --locale C.UTF-8 \
    --no-sync > "$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  # Loopback only, the socket in the cluster's own dir; fsync off: a throwaway cluster need not survive a
  # power cut (a clean restart keeps everything).
  cat >> "$dir/data/postgresql.conf" << EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  pg_start "$dir"
  echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
}

pg_start() {
  local dir=$1
  as_owner "$(pg_bindir)/pg_ctl" --pgdata "$dir/data" --log "$dir/server.log" --wait --timeout 60 start \
    > /dev/null || { cat "$dir/server.log" >&2; exit 1; }
}

cmd_down() {
  as_owner "$(pg_bindir)/pg_ctl" --pgdata "$1/data" --mode fast --wait stop > /dev/null
}

cmd_stop() {
  local dir=$1
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$(pg_bindir)/pg_ctl" --pgdata "$dir/data" --mode immediate --wait stop > /dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

cmd_run() {
  if [ -n "${TAPEWATCH_TEST_DATABASE_URL:-}" ]; then
    echo "postgres.sh: tests run on SQLite and on the PostgreSQL at TAPEWATCH_TEST_DATABASE_URL"
    exec "$@"
  fi
  if [ -z "$(pg_bindir)" ]; then
    echo "postgres.sh: PostgreSQL is not installed here, so the tests run on SQLite only" \
      "(install it, e.g. 'apt-get install postgresql', or set TAPEWATCH_TEST_DATABASE_URL)"
    exec "$@"
  fi
  local dir url status=0
  # In /tmp itself, whatever TMPDIR says: the cluster's owner must be able to reach it.
  dir=$(mktemp -d /tmp/tapewatch-pg.XXXXXX)
  trap 'cmd_stop "$dir"' EXIT
  trap 'exit 130' INT TERM
  url=$(cmd_start "$dir")
  echo "postgres.sh: tests run on SQLite and on a throwaway PostgreSQL $("$(pg_bindir)/postgres" --version \
    | awk '{print $3}') at ${url#*@}"
  TAPEWATCH_TEST_DATABASE_URL=$url "$@" || status=$?
  exit "$status"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start "$2" ;;
  restart) cmd_down "$2"; pg_start "$2" ;;
  down) cmd_down "$2" ;;
  up) pg_start "$2" ;;
  stop) cmd_stop "$2" ;;
  run) shift; cmd_run "$@" ;;
  bindir) pg_bindir ;;
  *) echo "usage: $0 install | run CMD... | start DIR | restart DIR | down DIR | up DIR | stop DIR" >&2; exit 2 ;;
esac
