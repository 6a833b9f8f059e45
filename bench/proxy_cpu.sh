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
#    answered, and its two parts (user space, kernel). The replica and the load generator
#    are the same for both.
# 4. System calls per request, counted by perf's raw_syscalls:sys_enter tracepoint when perf
#    can attach (a software event, so it works without hardware counters; counting costs
#    both proxies the same small amount per call).
# Usage: bench/proxy_cpu.sh [ROUNDS] [DURATION]   (defaults: 5 rounds of 10s)
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-5}
DURATION=${2:-10s}
need wrk:wrk nginx:nginx-light
need_oha
build
start_server

start_proxied_backend

# CPU ticks of processes (all their threads), in user space and in the kernel: "USER SYS".
ticks_of() {
  local user=0 sys=0 pid
  for pid in "$@"; do
    if [ -r "/proc/$pid/stat" ]; then
      read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat")
      user=$((user + u)); sys=$((sys + s))
    fi
  done
  echo "$user $sys"
}
# System calls are counted with perf's raw_syscalls tracepoint (a software event: it works
# on virtual machines without hardware counters) when perf can attach; else shown as "-".
PERF=""
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
  PERF=perf
fi
nginx_pids() { echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"; }

capacity=()
for _ in 1 2 3; do
  wrk -t2 -c64 -d5s "http://127.0.0.1:$NGINX_PORT/" >"$WORK/wrk.out" 2>&1
  capacity+=("$(awk '/Requests\/sec/ {printf "%d", $2}' "$WORK/wrk.out")")
done
CAPACITY=$(printf '%s\n' "${capacity[@]}" | median)
RATE=$((CAPACITY / 2))
echo "nginx capacity ${CAPACITY} req/s (${capacity[*]}); offered rate ${RATE} req/s" >&2

# run NAME URL PIDS... -> "requests p50_ms p99_ms cpu_us_per_request errors user_us sys_us syscalls"
run() {
  local name=$1 url=$2; shift 2
  local before after perf_pid=""
  rm -f "$WORK/perf.out"
  if [ -n "$PERF" ]; then
    perf stat -x, -e raw_syscalls:sys_enter -p "$(tr ' ' ',' <<<"$*" | sed 's/,*$//')" -o "$WORK/perf.out" &
    perf_pid=$!
    sleep 0.2
  fi
  before=$(ticks_of "$@")
  oha -z "$DURATION" -q "$RATE" -c 64 --latency-correction --no-tui --output-format json "$url" >"$WORK/oha.json" 2>/dev/null
  after=$(ticks_of "$@")
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid" 2>/dev/null || true; wait "$perf_pid" || true; fi
  python3 - "$WORK/oha.json" "$before" "$after" "$WORK/perf.out" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
(u0, s0), (u1, s1) = (map(int, a.split()) for a in sys.argv[2:4])
before, after = u0 + s0, u1 + s1
syscalls = None
try:
    for line in open(sys.argv[4]):
        fields = line.strip().split(",")
        if len(fields) > 2 and fields[2] == "raw_syscalls:sys_enter" and fields[0].isdigit():
            syscalls = int(fields[0])
except OSError:
    pass
ok = sum(int(n) for code, n in r.get("statusCodeDistribution", {}).items() if code.startswith("2"))
total = sum(int(n) for n in r.get("statusCodeDistribution", {}).values())
errors = sum(int(n) for n in r.get("errorDistribution", {}).values()) + (total - ok)
p = r["latencyPercentiles"]
cpu_s = (after - before) / os.sysconf("SC_CLK_TCK")
tick = os.sysconf("SC_CLK_TCK")
per = lambda ticks: ticks / tick / max(ok, 1) * 1e6
calls = f"{syscalls / max(ok, 1):.2f}" if syscalls is not None else "-"
print(f"{ok} {p['p50'] * 1000:.3f} {p['p99'] * 1000:.3f} {cpu_s / max(ok, 1) * 1e6:.2f} {errors} {per(u1 - u0):.2f} {per(s1 - s0):.2f} {calls}")
PY
}

declare -A P50 P99 CPU REQ ERR USR SYS CALLS
RATIO_CPU=""; RATIO_P99=""
for round in $(seq "$ROUNDS"); do
  if (( round % 2 )); then order="nginx runway"; else order="runway nginx"; fi
  for target in $order; do
    if [ "$target" = nginx ]; then
      read -r req p50 p99 cpu err usr sys calls < <(run nginx "http://127.0.0.1:$NGINX_PORT/" $(nginx_pids))
    else
      read -r req p50 p99 cpu err usr sys calls < <(run runway "http://$LISTEN/" "$SERVER_PID")
    fi
    echo "round $round $target: $req requests, p50 ${p50}ms, p99 ${p99}ms, ${cpu}us CPU/request (user $usr, kernel $sys), $calls system calls/request, errors $err" >&2
    P50[$target]+="$p50 "; P99[$target]+="$p99 "; CPU[$target]+="$cpu "; REQ[$target]+="$req "
    USR[$target]+="$usr "; SYS[$target]+="$sys "; CALLS[$target]+="$calls "
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
echo "| proxy | requests | p50 ms | p99 ms | CPU µs per request | of it in user space | in the kernel | system calls per request | errors |"
echo "|---|---|---|---|---|---|---|---|---|"
medc() { if grep -q -- '-' <<<"$1"; then echo "-"; else med "$1"; fi; }
for target in nginx runway; do
  echo "| $target | $(med "${REQ[$target]}") | $(med "${P50[$target]}") | $(med "${P99[$target]}") | $(med "${CPU[$target]}") | $(med "${USR[$target]}") | $(med "${SYS[$target]}") | $(medc "${CALLS[$target]}") | ${ERR[$target]} |"
done
echo
fmt() { python3 -c "print(' '.join(f'{float(x):.2f}' for x in '$1'.split()))"; }
echo "Paired per round (runway / nginx in the same round): CPU per request ratio median $(python3 -c "print(f'{$(med "$RATIO_CPU"):.2f}')") (rounds: $(fmt "$RATIO_CPU")); p99 ratio median $(python3 -c "print(f'{$(med "$RATIO_P99"):.2f}')") (rounds: $(fmt "$RATIO_P99"))"
