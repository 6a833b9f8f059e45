#!/usr/bin/env bash
# Proxy throughput and latency: wrk against the same backend directly, through nginx (a
# keep-alive reverse proxy, the reference) and through runway's built-in proxy.
# Usage: bench/proxy.sh [ROUNDS] [DURATION]   (defaults: 3 rounds of 10s per target)
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3}
DURATION=${2:-10s}
CONNECTIONS=${CONNECTIONS:-64}
need wrk:wrk nginx:nginx-light
build
start_server

start_proxied_backend

# run TARGET_URL -> "req/s p50_ms p99_ms errors"
run() {
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$1" >"$WORK/wrk.out" 2>&1
  python3 - "$WORK/wrk.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(v):
    n, unit = re.match(r"([\d.]+)([a-z]+)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors += int(m.group(1)) if m else 0
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {errors}")
PY
}

declare -A RPS P50 P99 ERR
for target in direct nginx runway; do RPS[$target]=""; P50[$target]=""; P99[$target]=""; ERR[$target]=0; done
# Paired rounds: nginx and runway run back to back in every round, in alternating order, so a
# change in the machine's load (it is shared) hits both alike; each round gives one ratio.
RATIO_RPS=""; RATIO_P99=""
for round in $(seq "$ROUNDS"); do
  if (( round % 2 )); then order="direct nginx runway"; else order="direct runway nginx"; fi
  for target in $order; do
    case $target in
      direct) url="http://127.0.0.1:$BACKEND_PORT/" ;;
      nginx) url="http://127.0.0.1:$NGINX_PORT/" ;;
      runway) url="http://$LISTEN/" ;;
    esac
    read -r rps p50 p99 err < <(run "$url")
    echo "round $round $target: $rps req/s, p50 ${p50}ms, p99 ${p99}ms, errors $err" >&2
    RPS[$target]+="$rps "; P50[$target]+="$p50 "; P99[$target]+="$p99 "; ERR[$target]=$((ERR[$target] + err))
    eval "LAST_RPS_$target=$rps; LAST_P99_$target=$p99"
  done
  RATIO_RPS+="$(python3 -c "print($LAST_RPS_runway/$LAST_RPS_nginx)") "
  RATIO_P99+="$(python3 -c "print($LAST_P99_runway/$LAST_P99_nginx)") "
done

med() { tr ' ' '\n' <<<"$1" | grep -v '^$' | median; }
echo
echo "### Proxy: wrk -t2 -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, medians"
machine
echo
echo "| target | req/s | p50 ms | p99 ms | errors | req/s vs nginx | p99 vs nginx |"
echo "|---|---|---|---|---|---|---|"
NR=$(med "${RPS[nginx]}"); NP=$(med "${P99[nginx]}")
for target in direct nginx runway; do
  r=$(med "${RPS[$target]}"); p=$(med "${P99[$target]}")
  echo "| $target | $r | $(med "${P50[$target]}") | $p | ${ERR[$target]} | $(python3 -c "print(f'{$r/$NR:.2f}')") | $(python3 -c "print(f'{$p/$NP:.2f}')") |"
done
echo
echo "Paired per round (runway / nginx in the same round): req/s ratio median $(python3 -c "print(f'{$(med "$RATIO_RPS"):.2f}')") (rounds: $(python3 -c "print(' '.join(f'{float(x):.2f}' for x in '$RATIO_RPS'.split()))")); p99 ratio median $(python3 -c "print(f'{$(med "$RATIO_P99"):.2f}')") (rounds: $(python3 -c "print(' '.join(f'{float(x):.2f}' for x in '$RATIO_P99'.split()))"))"
