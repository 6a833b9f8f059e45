#!/usr/bin/env bash
# Time to roll back a bad canary, and what it costs, at a steady 2,000 requests/s.
#   1. errors: the canary answers 50% of its requests with 500;
#   2. latency only: the canary is 10x slower (20 ms vs 2 ms), with no errors.
# For each: the time from the canary's first bad response to the last response it served (all
# traffic back on stable), against the target failure_limit x interval + 0.5 s, and the failed
# requests over the whole run. The load (runway loadgen) records every response.
# Usage: bench/canary.sh [RPS]   (default 2000)
source "$(dirname "$0")/lib.sh"
RPS=${1:-2000}
INTERVAL=1
FAILURE_LIMIT=2
build
start_server
LISTEN="127.0.0.1:$(free_port)"

config() { # FILE EXTRA_ARGS...: runway.toml with the [strategy] (and [analysis]) read from stdin
  local file=$1; shift
  write_config "$file" "$LISTEN" 3 "$@"
  cat >"$file.strategy"
  python3 -c '
import sys
path, strategy = sys.argv[1], open(sys.argv[2]).read()
text = open(path).read()
open(path, "w").write(text[: text.index("[strategy]")] + strategy)
' "$file" "$file.strategy"
}

STABLE_ARGS=(--latency-ms 2)
config "$WORK/v1.toml" "${STABLE_ARGS[@]}" <<'TOML'
[strategy]
kind = "rolling"
TOML
"$RUNWAY" -f "$WORK/v1.toml" deploy v1 >/dev/null

run_case() { # NAME VERSION CANARY_ARGS...  (analysis metrics on stdin)
  local name=$1 version=$2; shift 2
  local metrics; metrics=$(cat)
  config "$WORK/$version.toml" "$@" <<TOML
[strategy]
kind = "canary"
steps = [{ weight = 10, pause = "60s" }, { weight = 100 }]

[analysis]
interval = "${INTERVAL}s"
failure_limit = $FAILURE_LIMIT
min_requests = 20
$metrics
TOML
  "$RUNWAY" loadgen "$LISTEN" --rps "$RPS" --workers 32 --duration 25s --timeline "$WORK/$version.csv" >"$WORK/$version.load.json" &
  local load=$!
  sleep 3
  "$RUNWAY" -f "$WORK/$version.toml" deploy "$version" >"$WORK/$version.deploy.log" 2>&1 || true
  wait "$load"
  grep -q "^[0-9.]*,$version," "$WORK/$version.csv" || { echo "no response from $version:" >&2; cat "$WORK/$version.deploy.log" >&2; return 1; }
  python3 - "$name" "$version" "$WORK/$version.csv" "$WORK/$version.load.json" "$INTERVAL" "$FAILURE_LIMIT" "$RUNWAY" <<'PY'
import json, subprocess, sys
name, version, csv, load, interval, limit, runway = sys.argv[1:8]
rows = [line.split(",") for line in open(csv).read().split()]
rows = [(float(t), v, int(s)) for t, v, s in rows]
canary = [r for r in rows if r[1] == version]
# An error regression starts with the canary's first 5xx; a latency one with its first response.
bad = [r for r in canary if r[2] >= 500] if name.startswith("errors") else canary
summary = json.load(open(load))
history = json.loads(subprocess.check_output([runway, "history", "--json", "-n", "1"]))[0]
first_bad, last_canary = bad[0][0], canary[-1][0]
target = int(limit) * float(interval) + 0.5
print(f"| {name} | {summary['rps']:.0f} | {len(canary)} | {last_canary - first_bad:.2f} | {target:.1f} | {summary['failed']} | {history['status']} |")
PY
}

echo "### Canary rollback at $RPS requests/s (interval ${INTERVAL}s, failure_limit $FAILURE_LIMIT, canary at 10%)"
echo
echo "| regression | load req/s | canary responses | first bad response -> last canary response (s) | target (s) | failed requests | outcome |"
echo "|---|---|---|---|---|---|---|"
run_case "errors (50% of canary requests)" v2 "${STABLE_ARGS[@]}" --error-rate 0.5 <<'TOML'
TOML
run_case "latency (10x slower, no errors)" v3 --latency-ms 20 <<'TOML'
[[analysis.metrics]]
name = "p99"
source = "proxy"
metric = "latency_p99"
fail_if = "> 2x stable"
TOML
echo
machine
