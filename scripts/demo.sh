#!/usr/bin/env bash
# The demo: installs what is missing, builds, starts a throwaway PostgreSQL and the Store emulator with
# demo players, runs entitlement-syncd against them, uploads the players' keys the way a game backend
# would, and shows the synced entitlements. Interactive: keeps everything running until Ctrl-C so you
# can explore with psql. Non-interactive (or DEMO_EXIT=1): stops after showing the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
./scripts/install-deps.sh
./scripts/build.sh build

players=${DEMO_PLAYERS:-5}
items=${DEMO_ITEMS:-20}
work=$(mktemp -d /tmp/entitlement-syncd-demo.XXXXXX)
. scripts/lib/stack.sh
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  stack_stop "$work"
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== PostgreSQL (throwaway, socket in $work)"
stack_pg_init "$work"
stack_pg_start "$work" -c fsync=off
stack_createdb "$work" entitlements
db_url=$(stack_pg_url "$work" entitlements)
psql_cmd=(psql -h "$work" -p "$STACK_PG_PORT" -U postgres -d entitlements)

echo "== Store emulator ($players players, $items items each)"
STACK_CLIENT_SECRET=demo-client-secret stack_emulator_start "$work" "$work/emulator.log" \
  --generate-players "$players" --items-per-player "$items" --player-prefix demo-player- \
  --keys-out "$work/keys.csv"
emu=$STACK_EMULATOR_URL
echo "   listening at $emu (certificate: $work/ca.pem)"

cat > "$work/entitlement-syncd.conf" <<CONF
[database]
url = $db_url

[entra]
tenant_id = $STACK_TENANT_ID
client_id = $STACK_CLIENT_ID
client_secret_file = $work/client_secret
token_url = $emu/$STACK_TENANT_ID/oauth2/v2.0/token

[store]
collections_url = $emu
purchase_url = $emu
ca_file = $work/ca.pem
CONF

echo "== entitlement-syncd migrate"
build/entitlement-syncd --config "$work/entitlement-syncd.conf" migrate
echo "== entitlement-syncd run (log: $work/daemon.log)"
build/entitlement-syncd --config "$work/entitlement-syncd.conf" run > "$work/daemon.log" 2>&1 &
pids+=($!)
daemon_pid=$!

echo "== the game backend uploads each player's key"
tail -n +2 "$work/keys.csv" | while IFS=, read -r user ckey pkey; do
  # psql variables (:'u') are quoted safely, and interpolated only in statements read from input.
  echo "INSERT INTO entitlement_sync.key_uploads (user_id, collections_key, purchase_key) VALUES (:'u', :'c', :'p');" |
    "${psql_cmd[@]}" -q -v ON_ERROR_STOP=1 -v u="$user" -v c="$ckey" -v p="$pkey"
done
for _ in $(seq 1 200); do
  left=$("${psql_cmd[@]}" -tAq -c "SELECT count(*) FROM entitlement_sync.key_uploads WHERE state IN ('pending','running')")
  [ "$left" = "0" ] && break
  sleep 0.05
done
kill -0 "$daemon_pid" 2>/dev/null || { echo "the daemon stopped:"; cat "$work/daemon.log"; exit 1; }

echo
echo "== SELECT ... FROM entitlement_sync.entitlements (first 12 rows)"
"${psql_cmd[@]}" -c "SELECT user_id, item_id, product_id, product_type, status, end_date, modified_date
                     FROM entitlement_sync.entitlements ORDER BY user_id, item_id LIMIT 12"
echo "== SELECT * FROM entitlement_sync.user_status"
"${psql_cmd[@]}" -c "SELECT user_id, last_synced_at, last_error, collections_key_expires_at, pending, items
                     FROM entitlement_sync.user_status ORDER BY user_id"
echo
echo "== a free product granted, a subscription read (the purchase side)"
curl -sS --fail --cacert "$work/ca.pem" -X PUT "$emu/_emulator/catalog" -H 'Content-Type: application/json' \
  -d '[{"productId":"9NDEMOGIFT01","skuId":"0010","availabilityId":"9DEMOAVAIL01","productType":"Durable","title":"Login reward"}]' >/dev/null
curl -sS --fail --cacert "$work/ca.pem" -X PUT "$emu/_emulator/players/demo-player-1/subscriptions" \
  -H 'Content-Type: application/json' -d '[{"productId":"CFQ7TTC0DEMO","skuId":"0001","recurrenceState":"Active","autoRenew":true}]' >/dev/null
"${psql_cmd[@]}" -qc "INSERT INTO entitlement_sync.grant_requests (user_id, product_id, sku_id, availability_id)
                      VALUES ('demo-player-1', '9NDEMOGIFT01', '0010', '9DEMOAVAIL01')"
for _ in $(seq 1 200); do
  left=$("${psql_cmd[@]}" -tAq -c "SELECT count(*) FROM entitlement_sync.key_uploads WHERE state IN ('pending','running')")
  [ "$left" = "0" ] && break
  sleep 0.05
done
"${psql_cmd[@]}" -c "SELECT request_id, user_id, product_id, state, order_id, order_state, completed_at
                     FROM entitlement_sync.grant_requests"
"${psql_cmd[@]}" -c "SELECT user_id, product_id, status FROM entitlement_sync.entitlements WHERE product_id = '9NDEMOGIFT01'"
"${psql_cmd[@]}" -c "SELECT user_id, recurrence_id, product_id, state, auto_renew, expiration_time
                     FROM entitlement_sync.subscriptions"
echo "== daemon log"
cat "$work/daemon.log"

if [ -t 0 ] && [ "${DEMO_EXIT:-0}" != 1 ]; then
  echo
  echo "Everything keeps running. Explore in another terminal:"
  echo "  ${psql_cmd[*]}"
  echo "  e.g.  SELECT entitlement_sync.request_resync('demo-player-1', true);"
  echo "Press Ctrl-C to stop and remove the demo."
  wait "$daemon_pid" || true
fi
