#!/usr/bin/env bash
# The master's CPU over a window (default 30 s) with 8 idle fixture workers: without
# --http, with --http and the console on but no page open, and with one page open (a
# server-sent event stream connected, as a browser keeps it). Reads utime+stime of the
# master's threads from /proc/PID/task/*/schedstat (ns on a CPU). Needs a release build (cargo build --release) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
bin="${CARGO_TARGET_DIR:-target}/release"
tmp="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
hash="$(printf 'pw\n' | "$bin/clutch" passwd)"
printf '{"users":[{"name":"ann","role":"viewer","hash":"%s"}]}' "$hash" > "$tmp/users.json"

cpu_of() { cat /proc/"$1"/task/*/schedstat | awk '{ns += $1} END {printf "%d", ns}'; }

run() {
  local label="$1" page="$2"; shift 2
  "$bin/clutch" start -w 8 --no-agent --no-control "$@" -- "$bin/clutch-fixture" 2> "$tmp/log" &
  local pid=$!
  for _ in $(seq 100); do grep -q "cluster ready\|ready" "$tmp/log" 2>/dev/null && break; sleep 0.1; done
  sleep 2
  local sse=""
  if [ "$page" = yes ]; then
    local port
    port="$(grep -o 'http on 127.0.0.1:[0-9]*' "$tmp/log" | head -1 | cut -d: -f2)"
    curl -s -c "$tmp/jar" -H 'Content-Type: application/json' \
      -d '{"user":"ann","password":"pw"}' "http://127.0.0.1:$port/login" > /dev/null
    # The password check ran on a blocking-pool thread, which exits after 10 s idle: let it
    # go first, or its CPU time would leave the sum over the threads mid-window.
    sleep 11
    curl -s -N -b "$tmp/jar" "http://127.0.0.1:$port/api/events" > "$tmp/sse" &
    sse=$!
    sleep 1
  fi
  local a b
  a="$(cpu_of "$pid")"
  sleep "$secs"
  b="$(cpu_of "$pid")"
  local events=0
  if [ -n "$sse" ]; then events="$(grep -c '^event:' "$tmp/sse" || true)"; kill "$sse"; fi
  kill -TERM "$pid"; wait "$pid" || true
  awk -v l="$label" -v d="$((b - a))" -v s="$secs" -v e="$events" \
    'BEGIN { printf "%-36s %8.1f ms CPU in %d s = %6.3f%% of a core (%d SSE messages)\n", l, d/1e6, s, 100*d/1e9/s, e }'
}

run "no --http" no
run "--http, console on, no page open" no --http 127.0.0.1:0 --http-users "$tmp/users.json"
run "--http, console on, one page open" yes --http 127.0.0.1:0 --http-users "$tmp/users.json"
