#!/usr/bin/env bash
# The benchmark: starts a throwaway PostgreSQL and the Store emulator, seeds PLAYERS players with ITEMS items
# each, enqueues all their uploads at once (one COPY, as a login storm), runs entitlement-syncd until the
# queue is empty, and prints what it took. Then the same pages fetched by a plain client (the Store side's
# limit on this machine) and the same rows written by one bulk upsert (the database's limit).
#
#   bench/run.sh                          # 10,000 players x 20 items at 0 ms and at 100 ms Store latency
#   PLAYERS=100000 bench/run.sh           # bigger
#   SCENARIOS="0:64 100:256 1000:1000" bench/run.sh   # latency_ms:syncs_in_flight, one run each
#   DAEMONS=2 bench/run.sh                # several daemons sharing the queue (CPU summed, RSS of the first)
#   EXTRA_CONF=$'[store]\nsubscriptions = off' PG_OPTS='-c synchronous_commit=off' bench/run.sh
#   DAEMON_WRAPPER="heaptrack -o /tmp/ht" bench/run.sh   # run the daemon under a profiler
#   LOG_LEVEL=info KEEP=1 TOP_STATEMENTS=1 bench/run.sh  # daemon logs kept in the work directory; busiest SQL
#   MODE=drain PLAYERS=1000 SCENARIOS=0:64 bench/run.sh  # the backlog queued first, then `run --drain` until
#                                         # it exits: events, time and the daemon's peak RSS (no idle or limits)
#
# Figures: events/s and items/s; upload-to-visible latency (key_uploads.created_at, the INSERT's
# transaction time, to finished_at, set in the transaction that commits the entitlements) p50/p95/p99
# under the storm, and idle (single uploads one at a time); daemon CPU seconds per 1,000 events; peak RSS;
# Store requests and TLS handshakes per event; database statements and transactions per event.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
players=${PLAYERS:-10000}
items=${ITEMS:-20}
scenarios=${SCENARIOS:-"0:64 100:256"}
idle_samples=${IDLE_SAMPLES:-50}
daemons=${DAEMONS:-1}
mode=${MODE:-run}
case "$mode" in run|drain) ;; *) echo "MODE must be run or drain"; exit 2 ;; esac
# The plain client asks for what the daemon asks for: subscriptions too, unless the config turns them off.
subscriptions=on
if grep -Eq '^[[:space:]]*subscriptions[[:space:]]*=[[:space:]]*off' <<<"${EXTRA_CONF:-}"; then subscriptions=off; fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  ./scripts/install-deps.sh >/dev/null
  ./scripts/build.sh build >/dev/null
fi
needed="build/entitlement-syncd build/entitlement-store-emulator"
[ "$mode" = drain ] || needed="$needed build/bench/esd-bench-store-limit"
for b in $needed; do
  [ -x "$b" ] || { echo "missing $b: build first (./scripts/build.sh)"; exit 1; }
done

work=$(mktemp -d /tmp/entitlement-syncd-bench.XXXXXX)
. scripts/lib/stack.sh
pgbin=$(stack_pg_bin)
pids=()
groups=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Each daemon runs in its own process group (with DAEMON_WRAPPER the daemon is a child of the wrapper).
  for g in "${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  stack_stop "$work"
  wait 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

# PostgreSQL as a small production server would run it (fsync on), with pg_stat_statements for counting.
stack_pg_init "$work"
stack_pg_start "$work" -c shared_preload_libraries=pg_stat_statements -c max_connections=200 \
  -c shared_buffers=256MB ${PG_OPTS:-}
psql_db() { local db=$1; shift; "$pgbin/psql" -X -h "$work" -p "$STACK_PG_PORT" -U postgres -d "$db" -v ON_ERROR_STOP=1 "$@"; }

STACK_CLIENT_SECRET=bench-client-secret stack_emulator_start "$work" "$work/emulator.log" \
  --generate-players "$players" --items-per-player "$items" --player-prefix bench- \
  --keys-out "$work/keys.csv" --user-budget 1000000/1
emu_pid=$STACK_EMULATOR_PID
emu=$STACK_EMULATOR_URL
ctl() { curl -sS --fail --cacert "$work/ca.pem" -X "$1" "$emu/_emulator/$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
stat() { ctl GET stats | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

echo "entitlement-syncd benchmark: $players players x $items items, $(nproc) cores, $(git describe --always --dirty 2>/dev/null || echo '?')"
echo "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') (fsync on), emulator, daemon on one machine"
echo

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
daemons_ticks() { local t=0; for p in "${dpids[@]}"; do t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)
# CPU of every PostgreSQL process (backends come and go; those of the daemon live through the storm).
pg_ticks() { local t=0; for p in $(pgrep -u postgres postgres); do t=$((t + $(cpu_ticks "$p" 2>/dev/null || echo 0))); done; echo "$t"; }
# Events left: counted through the two partial indexes (waiting, leases), not by scanning the queue, so that
# watching the storm costs PostgreSQL next to nothing.
left_sql="SELECT (SELECT count(*) FROM entitlement_sync.key_uploads WHERE state = 'pending')
             + (SELECT count(*) FROM entitlement_sync.key_uploads WHERE state = 'running')"
results=()

for sc in $scenarios; do
  latency=${sc%%:*}
  inflight=${sc##*:}
  db="bench_${latency}_${inflight}"
  stack_createdb "$work" "$db"
  url=$(stack_pg_url "$work" "$db")
  conns=$(( inflight < 1024 ? inflight : 1024 ))
  cat > "$work/$db.conf" <<CONF
[database]
url = $url
[entra]
tenant_id = $STACK_TENANT_ID
client_id = $STACK_CLIENT_ID
client_secret_file = $work/client_secret
token_url = $emu/$STACK_TENANT_ID/oauth2/v2.0/token
[store]
collections_url = $emu
purchase_url = $emu
ca_file = $work/ca.pem
max_connections_per_host = $conns
[sync]
concurrency = $inflight
[log]
level = ${LOG_LEVEL:-warning}
${EXTRA_CONF:-}
CONF
  build/entitlement-syncd --config "$work/$db.conf" migrate >/dev/null
  ctl POST settings "{\"latencyMs\":$latency}" >/dev/null
  ctl POST stats/reset >/dev/null
  psql_db "$db" -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
  if [ "$mode" = drain ]; then
    # The whole backlog waits before the daemon starts; its peak RSS comes from the kernel's accounting
    # of the exited process (GNU time's %M, in KB), so no moment is missed.
    tail -n +2 "$work/keys.csv" | psql_db "$db" -qc \
      "\\copy entitlement_sync.key_uploads (user_id, collections_key, purchase_key) FROM STDIN WITH (FORMAT csv)"
    t0=$(date +%s.%N)
    /usr/bin/time -f %M -o "$work/$db.maxrss" ${DAEMON_WRAPPER:-} build/entitlement-syncd --config "$work/$db.conf" \
      run --drain > "$work/$db.1.log" 2>&1 || { echo "the daemon failed:"; tail "$work/$db.1.log"; exit 1; }
    t1=$(date +%s.%N)
    read -r events done failed < <(psql_db "$db" -qAt -F ' ' -c "SELECT count(*), count(*) FILTER (WHERE state = 'done'),
      count(*) FILTER (WHERE state = 'failed') FROM entitlement_sync.key_uploads")
    secs=$(python3 -c "print(round($t1 - $t0, 2))")
    echo "== drain: $players queued, Store latency ${latency} ms, ${inflight} syncs in flight"
    echo "   events            $events ($done done, $failed failed) in $secs s, daemon start to exit"
    echo "   throughput        $(python3 -c "print(round($events / max($t1 - $t0, 0.001)))") events/s"
    echo "   peak RSS          $(( $(tail -n1 "$work/$db.maxrss") / 1024 )) MB (maximum resident set of the exited daemon)"
    echo
    continue
  fi
  dpids=()
  dgroups=()
  for d in $(seq 1 "$daemons"); do
    setsid ${DAEMON_WRAPPER:-} build/entitlement-syncd --config "$work/$db.conf" run > "$work/$db.$d.log" 2>&1 &
    dgroups+=($!)
    groups+=($!)
  done
  sleep 1
  # The daemon itself, not a wrapper around it: its CPU, its RSS, and the one that gets SIGTERM.
  for g in "${dgroups[@]}"; do
    p=$(pgrep -s "$g" '^entitlement-syn' | head -n1)
    [ -n "$p" ] || { cat "$work/$db".*.log; exit 1; }
    dpids+=("$p")
  done
  dpid=${dpids[0]}
  psql_db "$db" -qAtc "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset()" >/dev/null
  xact0=$(psql_db "$db" -qAtc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$db'")
  cpu0=$(daemons_ticks)
  emu0=$(cpu_ticks "$emu_pid")
  pg0=$(pg_ticks)

  # The storm: every player's keys in one COPY.
  tail -n +2 "$work/keys.csv" | psql_db "$db" -qc \
    "\\copy entitlement_sync.key_uploads (user_id, collections_key, purchase_key) FROM STDIN WITH (FORMAT csv)"
  rss_max=0
  rss_half=
  while :; do
    left=$(psql_db "$db" -qAtc "$left_sql")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$dpid/status")
    [ "$rss" -gt "$rss_max" ] && rss_max=$rss
    [ -z "$rss_half" ] && [ "$left" -le $((players / 2)) ] && rss_half=$rss
    [ "$left" = 0 ] && break
    kill -0 "$dpid" || { echo "the daemon stopped:"; tail "$work/$db.1.log"; exit 1; }
    sleep 0.5
  done
  cpu1=$(daemons_ticks)
  emu1=$(cpu_ticks "$emu_pid")
  pg1=$(pg_ticks)
  xact1=$(psql_db "$db" -qAtc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$db'")
  read -r events failed span eps ips p50 p95 p99 < <(psql_db "$db" -qAt -F ' ' -c "
    SELECT count(*), count(*) FILTER (WHERE state = 'failed'),
           round(extract(epoch FROM max(finished_at) - min(created_at))::numeric, 2),
           round((count(*) / extract(epoch FROM max(finished_at) - min(created_at)))::numeric, 0),
           round(((SELECT sum(items) FROM entitlement_sync.users) / extract(epoch FROM max(finished_at) - min(created_at)))::numeric, 0),
           round(1000 * percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))::numeric, 0),
           round(1000 * percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))::numeric, 0),
           round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))::numeric, 0)
      FROM entitlement_sync.key_uploads")
  statements=$(psql_db "$db" -qAtc "SELECT sum(calls) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
     WHERE d.datname = '$db' AND query NOT LIKE '%pg_stat%' AND query NOT LIKE 'SELECT (SELECT count(*) FROM entitlement_sync.key_uploads%'
       AND query NOT LIKE '%copy%' AND query NOT LIKE '%COPY%'")
  store_requests=$(stat "sum(d['requestsByPath'].values())")
  handshakes=$(stat "d['tlsHandshakes']")
  if [ "${TOP_STATEMENTS:-0}" = 1 ]; then
    psql_db "$db" -qc "SELECT calls, round(total_exec_time::numeric, 0) AS ms, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
      FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '$db'
      ORDER BY total_exec_time DESC LIMIT 12" > "$work/top.txt"
  fi
  items_stored=$(psql_db "$db" -qAtc "SELECT count(*) FROM entitlement_sync.entitlements")

  # Idle: one upload at a time, the daemon woken by NOTIFY.
  head -n $((idle_samples + 1)) "$work/keys.csv" | tail -n +2 > "$work/idle.csv"
  psql_db "$db" -qAtc "DELETE FROM entitlement_sync.key_uploads" >/dev/null
  while IFS=, read -r user ckey pkey; do
    echo "INSERT INTO entitlement_sync.key_uploads (user_id, collections_key, purchase_key) VALUES (:'u', :'c', :'p');" |
      psql_db "$db" -q -v u="$user" -v c="$ckey" -v p="$pkey"
    sleep 0.1
  done < "$work/idle.csv"
  for _ in $(seq 1 200); do
    [ "$(psql_db "$db" -qAtc "$left_sql")" = 0 ] && break
    sleep 0.1
  done
  read -r i50 i99 < <(psql_db "$db" -qAt -F ' ' -c "
    SELECT round(1000 * percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))::numeric, 1),
           round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))::numeric, 1)
      FROM entitlement_sync.key_uploads WHERE state = 'done'")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$dpid/status")
  rss_end=$(awk '/VmRSS/ {print $2}' "/proc/$dpid/status")
  for p in "${dpids[@]}"; do kill -TERM "$p"; done
  for g in "${dgroups[@]}"; do wait "$g" || true; done

  # The limits: the same pages to a plain client, the same rows in one bulk upsert.
  store_line=$(build/bench/esd-bench-store-limit --url "$emu" --ca-file "$work/ca.pem" --keys "$work/keys.csv" \
    --client-secret-file "$work/client_secret" --concurrency "$inflight" --subscriptions "$subscriptions")
  store_pps=$(sed -n 's/.*players_per_s=\([0-9.]*\).*/\1/p' <<<"$store_line")
  pg_line=$(psql_db "$db" -qAt -F ' ' <<SQL
CREATE TEMP TABLE bench_rows AS SELECT * FROM entitlement_sync.entitlements;
CREATE TABLE entitlement_sync.bench_upsert (LIKE entitlement_sync.entitlements INCLUDING ALL);
SELECT set_config('bench.t0', clock_timestamp()::text, false);
INSERT INTO entitlement_sync.bench_upsert SELECT * FROM bench_rows;
INSERT INTO entitlement_sync.bench_upsert SELECT * FROM bench_rows
  ON CONFLICT (user_id, item_id) DO UPDATE SET status = EXCLUDED.status, modified_date = EXCLUDED.modified_date;
SELECT count(*), round(extract(epoch FROM clock_timestamp() - current_setting('bench.t0')::timestamptz)::numeric, 2)
  FROM bench_rows;
DROP TABLE entitlement_sync.bench_upsert;
SQL
)
  pg_line=$(tail -n1 <<<"$pg_line")
  pg_rows=${pg_line%% *}
  pg_secs=${pg_line##* }
  pg_pps=$(python3 -c "print(round(2 * $pg_rows / $items / max($pg_secs, 0.001)))")
  limit=$(python3 -c "print(round(min($store_pps, $pg_pps)))")
  cpu=$(python3 -c "print(round(($cpu1 - $cpu0) / $hz * 1000 / max($events, 1), 2))")

  echo "== Store latency ${latency} ms, ${inflight} syncs in flight per daemon, $daemons daemon(s)"
  echo "   events            $events ($failed failed), items stored $items_stored, in ${span} s"
  echo "   throughput        $eps events/s, $ips items/s"
  echo "   storm latency     p50 ${p50} ms, p95 ${p95} ms, p99 ${p99} ms (upload to visible, queue wait included)"
  echo "   idle latency      p50 ${i50} ms, p99 ${i99} ms (${idle_samples} single uploads)"
  echo "   daemon CPU        ${cpu} s per 1,000 events"
  echo "   CPU in the storm  daemon $(python3 -c "print(round(($cpu1 - $cpu0) / $hz, 2))") s, emulator $(python3 -c "print(round(($emu1 - $emu0) / $hz, 2))") s, PostgreSQL $(python3 -c "print(round(($pg1 - $pg0) / $hz, 2))") s (of $(python3 -c "print(round($(nproc) * $span, 2))") core-seconds)"
  echo "   peak RSS          $((hwm / 1024)) MB (VmHWM; $((rss_max / 1024)) MB at most while the storm ran, $(( ${rss_half:-0} / 1024 )) MB half-way, $((rss_end / 1024)) MB after the idle uploads)"
  echo "   Store requests    $(python3 -c "print(round($store_requests / $events, 2))") per event, TLS handshakes $handshakes in all"
  echo "   database          $(python3 -c "print(round($statements / $events, 2))") statements and $(python3 -c "print(round(($xact1 - $xact0) / $events, 2))") transactions per event"
  echo "   limits            Store side $store_pps players/s (plain client: $store_line)"
  echo "                     database $pg_pps players/s (insert + upsert of $pg_rows rows in $pg_secs s)"
  [ "${TOP_STATEMENTS:-0}" = 1 ] && cat "$work/top.txt"
  echo "   daemon / limit    $(python3 -c "print(round(100 * $eps / max($limit, 1)))")% of $limit players/s"
  echo
done
