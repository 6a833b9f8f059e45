#!/usr/bin/env bash
# The proxy's user-space instructions per request, runway against nginx: a count that noise
# on a shared machine cannot flip (valgrind's callgrind counts instructions, not time).
#
# 1. One replica of the demo app, deployed by a runway server that is not measured.
# 2. nginx (one worker, as a keep-alive reverse proxy) in front of it, under callgrind; then a
#    second runway server, under callgrind, proxying its own replica of the same app.
# 3. For each: the counters are zeroed once the proxy serves (callgrind_control -z), oha sends
#    REQUESTS requests over 16 keep-alive connections, the counters are dumped
#    (callgrind_control -d), and the instructions executed in between are divided by the
#    requests answered. runway's count includes its server's background work in that window
#    (health probes once a second), a small overcount against it.
# Kernel time is not counted: callgrind sees user space only (system calls per request are in
# bench/proxy_cpu.sh). Under valgrind both run about 50 times slower, one thread at a time.
# Usage: [CALLGRIND_KEEP=DIR] bench/proxy_instructions.sh [REQUESTS]   (default 20000)
source "$(dirname "$0")/lib.sh"
REQUESTS=${1:-20000}
need valgrind:valgrind nginx:nginx-light
need_oha
build
start_server
LISTEN="127.0.0.1:$(free_port)"
write_config "$WORK/runway.toml" "$LISTEN" 1
"$RUNWAY" -f "$WORK/runway.toml" deploy v1 >/dev/null
BACKEND_PORT=$("$RUNWAY" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["services"][0]["replicas"][0]["port"])')

# load URL -> requests answered with 2xx
load() {
  oha -n "$REQUESTS" -c 16 --no-tui --output-format json "$1" >"$WORK/oha.json" 2>/dev/null
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(int(n) for c, n in r.get("statusCodeDistribution", {}).items() if c.startswith("2")))' "$WORK/oha.json"
}

# instructions OUT_FILE -> the instructions in the dump that `callgrind_control -d` wrote
# (OUT_FILE.1: the part after zeroing)
instructions() {
  local total=0 file n
  for file in "$1".1; do
    [ -f "$file" ] || continue
    n=$(awk '/^(summary|totals):/ {print $2; exit}' "$file")
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

wait_for() { for _ in $(seq 300); do eval "$1" && return 0; sleep 0.1; done; echo "timed out: $1" >&2; return 1; }
serves() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ]; }

# nginx: one process (master_process off) so that one callgrind file holds it all.
write_nginx_conf "$BACKEND_PORT" "worker_processes 1;
master_process off;"
valgrind --tool=callgrind --callgrind-out-file="$WORK/nginx.cg.%p" \
  nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx.valgrind" &
VG_NGINX=$!
PIDS+=("$VG_NGINX")
wait_for "serves http://127.0.0.1:$NGINX_PORT/"
callgrind_control -z "$VG_NGINX" >/dev/null
NGINX_OK=$(load "http://127.0.0.1:$NGINX_PORT/")
callgrind_control -d "$VG_NGINX" >/dev/null
NGINX_I=$(instructions "$WORK/nginx.cg.$VG_NGINX")
kill -TERM "$VG_NGINX"; wait "$VG_NGINX" 2>/dev/null || true

# runway: a second server on its own state dir, under callgrind, with its own replica.
STATE2="$WORK/state2"
LISTEN2="127.0.0.1:$(free_port)"
write_config "$WORK/runway2.toml" "$LISTEN2" 1
valgrind --tool=callgrind --callgrind-out-file="$WORK/runway.cg.%p" \
  "$RUNWAY" server --state-dir "$STATE2" 2>"$WORK/runway.valgrind" &
VG_RUNWAY=$!
PIDS+=("$VG_RUNWAY")
wait_for "[ -f $STATE2/server.json ]"
RUNWAY_STATE_DIR="$STATE2" "$RUNWAY" -f "$WORK/runway2.toml" deploy v1 >/dev/null
wait_for "serves http://$LISTEN2/"
callgrind_control -z "$VG_RUNWAY" >/dev/null
RUNWAY_OK=$(load "http://$LISTEN2/")
callgrind_control -d "$VG_RUNWAY" >/dev/null
RUNWAY_I=$(instructions "$WORK/runway.cg.$VG_RUNWAY")
# CALLGRIND_KEEP=DIR keeps both dumps, for callgrind_annotate.
if [ -n "${CALLGRIND_KEEP:-}" ]; then
  mkdir -p "$CALLGRIND_KEEP"
  cp "$WORK/runway.cg.$VG_RUNWAY.1" "$CALLGRIND_KEEP/runway.callgrind"
  cp "$WORK/nginx.cg.$VG_NGINX.1" "$CALLGRIND_KEEP/nginx.callgrind"
fi

echo
echo "### Proxy user-space instructions per request (callgrind), oha -n $REQUESTS -c 16"
machine
echo
echo "| proxy | requests answered | instructions | per request |"
echo "|---|---|---|---|"
echo "| nginx | $NGINX_OK | $NGINX_I | $((NGINX_I / (NGINX_OK > 0 ? NGINX_OK : 1))) |"
echo "| runway | $RUNWAY_OK | $RUNWAY_I | $((RUNWAY_I / (RUNWAY_OK > 0 ? RUNWAY_OK : 1))) |"
echo
python3 -c "print(f'runway / nginx: {($RUNWAY_I / max($RUNWAY_OK, 1)) / ($NGINX_I / max($NGINX_OK, 1)):.2f}')"
