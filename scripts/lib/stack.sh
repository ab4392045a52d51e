#!/usr/bin/env bash
# The throwaway stack the demo, the benchmark and the integration tests run against: a PostgreSQL whose
# socket, data and log live in one directory, and the Store + Entra emulator. Run as root, PostgreSQL's
# tools run as the postgres user.
#
# Called:   stack.sh pg-init DIR             initdb into DIR/data (trust, UTF8, C locale)
#           stack.sh pg-start DIR [OPTS...]  start it, socket in DIR, log in DIR/server.log; OPTS are
#                                            postgres options (-c name=value ...)
#           stack.sh pg-stop DIR             stop it (fast)
#           stack.sh createdb DIR NAME
#           stack.sh emulator DIR [ARGS...]  becomes the emulator (exec: same pid, same output), listening on
#                                            127.0.0.1; writes DIR/client_secret, DIR/ca.pem and, once it
#                                            listens, its https URL in DIR/url
# Sourced:  the same as stack_pg_init, stack_pg_start, stack_pg_stop, stack_createdb, stack_emulator, plus
#           stack_emulator_start DIR LOG [ARGS...] (in the background; sets STACK_EMULATOR_PID and
#           STACK_EMULATOR_URL once it listens), stack_pg_url DIR NAME and stack_stop DIR.
# Environment: STACK_PG_PORT (5432), PG_BIN (the newest /usr/lib/postgresql/*/bin), ESD_EMULATOR (the
#           emulator binary; build/entitlement-store-emulator of this tree), STACK_CLIENT_SECRET (what
#           the emulator's Entra takes as the client secret).

STACK_PG_PORT=${STACK_PG_PORT:-5432}
STACK_TENANT_ID=00000000-0000-0000-0000-000000000000
STACK_CLIENT_ID=11111111-1111-1111-1111-111111111111
_stack_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

stack_pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [ -n "$bin" ] || { echo "stack.sh: PostgreSQL server binaries not found under /usr/lib/postgresql" >&2; return 1; }
  echo "$bin"
}

# PostgreSQL refuses to run as root.
stack_as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stack_pg_init() {
  local dir=$1 bin out
  bin=$(stack_pg_bin) || return 1
  mkdir -p "$dir"
  chmod 0777 "$dir"  # the postgres user writes its data, socket and log here
  stack_as_pg test -w "$dir" ||
    { echo "stack.sh: the postgres user cannot write to $dir (is a directory above it private?)" >&2; return 1; }
  out=$(stack_as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres --nosync -E UTF8 --locale=C 2>&1) ||
    { echo "$out" >&2; return 1; }
}

stack_pg_start() {
  local dir=$1 bin
  shift
  bin=$(stack_pg_bin) || return 1
  stack_as_pg "$bin/pg_ctl" -w -t 60 -D "$dir/data" -l "$dir/server.log" \
    -o "-k $dir -c listen_addresses='' -p $STACK_PG_PORT $*" start >/dev/null ||
    { echo "stack.sh: PostgreSQL did not start:" >&2; tail -n 20 "$dir/server.log" >&2; return 1; }
}

stack_pg_stop() {
  local bin
  bin=$(stack_pg_bin) || return 1
  stack_as_pg "$bin/pg_ctl" -w -D "$1/data" -m fast stop >/dev/null
}

stack_createdb() {
  local bin
  bin=$(stack_pg_bin) || return 1
  stack_as_pg "$bin/createdb" -h "$1" -p "$STACK_PG_PORT" -U postgres "$2"
}

stack_pg_url() { echo "postgresql:///$2?host=$1&port=$STACK_PG_PORT&user=postgres"; }

stack_emulator() {
  local dir=$1
  shift
  mkdir -p "$dir"
  printf '%s\n' "${STACK_CLIENT_SECRET:-stack-client-secret}" > "$dir/client_secret"
  rm -f "$dir/url"
  exec "${ESD_EMULATOR:-$_stack_root/build/entitlement-store-emulator}" --listen 127.0.0.1:0 \
    --ready-file "$dir/url" --cert-out "$dir/ca.pem" --tenant-id "$STACK_TENANT_ID" \
    --client-id "$STACK_CLIENT_ID" --client-secret-file "$dir/client_secret" "$@"
}

stack_emulator_start() {
  local dir=$1 log=$2 i
  shift 2
  mkdir -p "$dir"
  rm -f "$dir/url"
  (stack_emulator "$dir" "$@") > "$log" 2>&1 &
  STACK_EMULATOR_PID=$!
  # Seeding many players takes a while before it listens.
  for i in $(seq 1 6000); do
    [ -s "$dir/url" ] && break
    kill -0 "$STACK_EMULATOR_PID" 2>/dev/null || { echo "stack.sh: the emulator exited:" >&2; cat "$log" >&2; return 1; }
    sleep 0.1
  done
  [ -s "$dir/url" ] || { echo "stack.sh: the emulator did not start" >&2; return 1; }
  STACK_EMULATOR_URL=$(cat "$dir/url")
}

# Stops what stack_emulator_start and stack_pg_start started in DIR (before a bare `wait`, which would
# otherwise wait for the emulator).
stack_stop() {
  if [ -n "${STACK_EMULATOR_PID:-}" ]; then
    kill "$STACK_EMULATOR_PID" 2>/dev/null || true
    wait "$STACK_EMULATOR_PID" 2>/dev/null || true
  fi
  [ -f "$1/data/postmaster.pid" ] && stack_pg_stop "$1" 2>/dev/null
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cmd=${1:-}
  shift || true
  case "$cmd" in
    pg-init) stack_pg_init "$@" ;;
    pg-start) stack_pg_start "$@" ;;
    pg-stop) stack_pg_stop "$@" ;;
    createdb) stack_createdb "$@" ;;
    emulator) stack_emulator "$@" ;;
    *) sed -n '2,/^$/p' "$0" >&2; exit 2 ;;
  esac
fi
