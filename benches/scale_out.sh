#!/usr/bin/env bash
# Ingest rate of one `provdb serve` node vs two in one MQTT shared-subscription group behind
# one mosquitto, on the same simulated fleet, in one run; beside offline import of the same
# files.
#
#   benches/scale_out.sh [PROVDB_BINARY] [MACHINES] [DOCUMENTS_PER_MACHINE]
#
# Needs mosquitto. The rate is edges stored per second, from the first publish until every
# node together holds every edge of the fleet (counted by an offline import of the same
# files).
set -euo pipefail
provdb="$(realpath "${1:-target/release/provdb}")"
machines="${2:-10}"
documents="${3:-400}"
mosquitto="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
now() { date +%s.%N; }
edges_of() { "$provdb" --db "$1" stats --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["edges"])' 2>/dev/null || echo 0; }

"$provdb" simulate --seed 42 --machines "$machines" --documents "$documents" --records 200 --out "$work/fleet" > /dev/null
t0=$(now)
"$provdb" --db "$work/reference" import --quiet "$work"/fleet/* > /dev/null
t1=$(now)
expected=$(edges_of "$work/reference")
import_rate=$(python3 -c "import sys; print(f'{float(sys.argv[3]) / (float(sys.argv[2]) - float(sys.argv[1])):.0f}')" "$t0" "$t1" "$expected")
echo "fleet: $machines machines x $documents documents, $expected edges; machine: $(nproc) cores"
echo "offline import: $import_rate edges/s"

run_nodes() {
  local nodes=$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 1000\n' "$port" > "$work/mosquitto.conf"
  "$mosquitto" -c "$work/mosquitto.conf" > /dev/null 2>&1 &
  local broker=$!
  pids+=("$broker")
  sleep 0.5
  local dbs=() node_pids=()
  for n in $(seq 1 "$nodes"); do
    local db="$work/nodes$nodes-$n"
    dbs+=("$db")
    "$provdb" --db "$db" serve --broker "mqtt://127.0.0.1:$port" --share-group bench \
      --client-id "bench-$nodes-$n" > "$work/serve-$nodes-$n.log" 2>&1 &
    node_pids+=($!)
    pids+=($!)
  done
  for n in $(seq 1 "$nodes"); do
    until grep -q "subscribed" "$work/serve-$nodes-$n.log"; do sleep 0.1; done
  done
  local start
  start=$(now)
  "$provdb" publish --broker "mqtt://127.0.0.1:$port" "$work"/fleet/* > /dev/null 2>&1
  while :; do
    local total=0
    for db in "${dbs[@]}"; do total=$((total + $(edges_of "$db"))); done
    [ "$total" -ge "$expected" ] && break
    sleep 0.2
  done
  local end
  end=$(now)
  python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'{sys.argv[3]} node(s): {s:.1f} s, {int(sys.argv[4])/s:.0f} edges/s')" "$start" "$end" "$nodes" "$expected"
  for p in "${node_pids[@]}"; do kill -TERM "$p"; wait "$p" || true; done
  kill "$broker"; wait "$broker" 2>/dev/null || true
}

run_nodes 1
run_nodes 2
