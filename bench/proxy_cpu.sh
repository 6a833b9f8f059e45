#!/usr/bin/env bash
# Proxy figures that noise cannot flip: CPU time per request, and p99 latency at a fixed
# offered rate, for runway's proxy and nginx in the same run, against the same replica.
#
# 1. nginx's capacity: wrk -t2 -c64 for 5 s through nginx (the median of 3).
# 2. The fixed rate: half of it. oha offers exactly that rate (-q, with latency correction,
#    so a stalled response counts from when its request was due, not from when it was sent)
#    over 64 connections for DURATION, through nginx and through runway, alternating, ROUNDS
#    times.
# 3. CPU per request: the proxy's processes' CPU time (utime + stime from /proc, nginx's
#    master and workers, runway's server process) over the run, divided by the requests
#    answered. The replica and the load generator are the same for both.
# Usage: bench/proxy_cpu.sh [ROUNDS] [DURATION]   (defaults: 5 rounds of 10s)
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-5}
DURATION=${2:-10s}
need wrk:wrk nginx:nginx-light
if ! command -v oha >/dev/null; then
  echo "installing oha (cargo install oha --locked)" >&2
  cargo install oha --locked >&2
fi
build
start_server

start_proxied_backend

# CPU ticks of a process and its children's threads: nginx's master and workers.
ticks_of() {
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}
nginx_pids() { echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"; }

capacity=()
for _ in 1 2 3; do
  wrk -t2 -c64 -d5s "http://127.0.0.1:$NGINX_PORT/" >"$WORK/wrk.out" 2>&1
  capacity+=("$(awk '/Requests\/sec/ {printf "%d", $2}' "$WORK/wrk.out")")
done
CAPACITY=$(printf '%s\n' "${capacity[@]}" | median)
RATE=$((CAPACITY / 2))
echo "nginx capacity ${CAPACITY} req/s (${capacity[*]}); offered rate ${RATE} req/s" >&2

# run NAME URL PIDS... -> "requests p50_ms p99_ms cpu_us_per_request errors"
run() {
  local name=$1 url=$2; shift 2
  local before after
  before=$(ticks_of "$@")
  oha -z "$DURATION" -q "$RATE" -c 64 --latency-correction --no-tui --output-format json "$url" >"$WORK/oha.json" 2>/dev/null
  after=$(ticks_of "$@")
  python3 - "$WORK/oha.json" "$before" "$after" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
before, after = int(sys.argv[2]), int(sys.argv[3])
ok = sum(int(n) for code, n in r.get("statusCodeDistribution", {}).items() if code.startswith("2"))
total = sum(int(n) for n in r.get("statusCodeDistribution", {}).values())
errors = sum(int(n) for n in r.get("errorDistribution", {}).values()) + (total - ok)
p = r["latencyPercentiles"]
cpu_s = (after - before) / os.sysconf("SC_CLK_TCK")
print(f"{ok} {p['p50'] * 1000:.3f} {p['p99'] * 1000:.3f} {cpu_s / max(ok, 1) * 1e6:.2f} {errors}")
PY
}

declare -A P50 P99 CPU REQ ERR
RATIO_CPU=""; RATIO_P99=""
for round in $(seq "$ROUNDS"); do
  if (( round % 2 )); then order="nginx runway"; else order="runway nginx"; fi
  for target in $order; do
    if [ "$target" = nginx ]; then
      read -r req p50 p99 cpu err < <(run nginx "http://127.0.0.1:$NGINX_PORT/" $(nginx_pids))
    else
      read -r req p50 p99 cpu err < <(run runway "http://$LISTEN/" "$SERVER_PID")
    fi
    echo "round $round $target: $req requests, p50 ${p50}ms, p99 ${p99}ms, ${cpu}us CPU/request, errors $err" >&2
    P50[$target]+="$p50 "; P99[$target]+="$p99 "; CPU[$target]+="$cpu "; REQ[$target]+="$req "
    ERR[$target]=$(( ${ERR[$target]:-0} + err ))
    eval "LAST_CPU_$target=$cpu; LAST_P99_$target=$p99"
  done
  RATIO_CPU+="$(python3 -c "print($LAST_CPU_runway/$LAST_CPU_nginx)") "
  RATIO_P99+="$(python3 -c "print($LAST_P99_runway/$LAST_P99_nginx)") "
done

med() { tr ' ' '\n' <<<"$1" | grep -v '^$' | median; }
echo
echo "### Proxy at a fixed rate: oha -q $RATE (half of nginx's ${CAPACITY} req/s) -c64 -z$DURATION --latency-correction, $ROUNDS rounds, medians"
machine
echo
echo "| proxy | requests | p50 ms | p99 ms | CPU µs per request | errors |"
echo "|---|---|---|---|---|---|"
for target in nginx runway; do
  echo "| $target | $(med "${REQ[$target]}") | $(med "${P50[$target]}") | $(med "${P99[$target]}") | $(med "${CPU[$target]}") | ${ERR[$target]} |"
done
echo
fmt() { python3 -c "print(' '.join(f'{float(x):.2f}' for x in '$1'.split()))"; }
echo "Paired per round (runway / nginx in the same round): CPU per request ratio median $(python3 -c "print(f'{$(med "$RATIO_CPU"):.2f}')") (rounds: $(fmt "$RATIO_CPU")); p99 ratio median $(python3 -c "print(f'{$(med "$RATIO_P99"):.2f}')") (rounds: $(fmt "$RATIO_P99"))"
