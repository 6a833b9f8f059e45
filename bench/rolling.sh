#!/usr/bin/env bash
# A rolling deploy of 3 replicas under steady load, and the server's memory.
#   - failed requests while deploying (wrk counts socket errors and non-2xx answers);
#   - the deploy's time beyond the replicas' own start-up (from the deployment journal: the
#     total minus, per replica, the time from spawn to passing its health check);
#   - the server's resident memory idle and under that load.
# Usage: bench/rolling.sh [DEPLOYS] [SLOW_START_MS] [process|docker]
#   (defaults: 3 deploys, 500 ms start-up, local processes). With `docker`, the replicas are
#   containers of an image built here from the release binary (no registry needed).
source "$(dirname "$0")/lib.sh"
DEPLOYS=${1:-3}
SLOW_START=${2:-500}
PLATFORM=${3:-process}
need wrk:wrk
build
start_server

LISTEN="127.0.0.1:$(free_port)"
if [ "$PLATFORM" = docker ]; then
  build_image "$(seq -f 'v%g' 1 $((DEPLOYS + 1)))"
  write_docker_config "$WORK/runway.toml" "$LISTEN" 3 --slow-start-ms "$SLOW_START"
else
  write_config "$WORK/runway.toml" "$LISTEN" 3 --slow-start-ms "$SLOW_START"
fi
"$RUNWAY" -f "$WORK/runway.toml" deploy v1 >/dev/null
sleep 2
IDLE_RSS=$(rss_kb "$SERVER_PID")

DURATION=$((DEPLOYS * 6 + 6))
wrk -t2 -c16 -d"${DURATION}s" --latency "http://$LISTEN/" >"$WORK/wrk.out" 2>&1 &
WRK=$!
PEAK_RSS=0
sample_rss() { local r; r=$(rss_kb "$SERVER_PID"); [ "$r" -gt "$PEAK_RSS" ] && PEAK_RSS=$r; true; }
sleep 2
for i in $(seq 2 $((DEPLOYS + 1))); do
  "$RUNWAY" -f "$WORK/runway.toml" deploy "v$i" >"$WORK/deploy-v$i.log" || { cat "$WORK/deploy-v$i.log"; exit 1; }
  sample_rss
done
while kill -0 "$WRK" 2>/dev/null; do sample_rss; sleep 0.2; done
wait "$WRK" || true

BENCH_PLATFORM="$PLATFORM" python3 - "$WORK/wrk.out" "$DEPLOYS" "$IDLE_RSS" "$PEAK_RSS" "$SLOW_START" <<'PY'
import json, os, re, sys, urllib.request
from datetime import datetime

wrk_text = open(sys.argv[1]).read()
deploys, idle, peak, slow = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
server = json.load(open(os.path.join(os.environ["RUNWAY_STATE_DIR"], "server.json")))

def api(path):
    req = urllib.request.Request(f"http://{server['api']}{path}", headers={"authorization": "Bearer " + server["token"]})
    return json.load(urllib.request.urlopen(req))

def ts(s):
    # RFC 3339 with nanoseconds; Python takes microseconds.
    base, _, frac = s.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{base}.{frac[:6].ljust(6, '0')}+00:00")

rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk_text).group(1))
total = int(re.search(r"(\d+) requests in", wrk_text).group(1))
errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", wrk_text))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk_text)
non2xx = int(m.group(1)) if m else 0

rows = []
for d in sorted(api("/v1/deployments"), key=lambda d: d["id"])[1:]:
    started, startup = {}, 0.0
    for e in api(f"/v1/deployments/{d['id']}")["journal"]:
        replica = e["detail"].get("replica")
        if e["event"] == "replica_starting":
            started[replica] = ts(e["at"])
        elif e["event"] == "replica_routed":
            startup += (ts(e["at"]) - started[replica]).total_seconds()
    took = (ts(d["finished_at"]) - ts(d["started_at"])).total_seconds()
    rows.append((d["version"], d["status"], took, startup, took - startup))

platform = os.environ.get("BENCH_PLATFORM", "process")
what = "containers" if platform == "docker" else "replicas"
print(f"### Rolling deploy of 3 {what} under load (wrk -t2 -c16, unthrottled), {deploys} deploys, replicas start in {slow} ms")
print()
print(f"- load: {rps:.0f} req/s on average, {total} requests; failed: {errors} socket errors, {non2xx} non-2xx")
print(f"- server RSS: idle {idle/1024:.1f} MiB, peak under load {peak/1024:.1f} MiB")
print()
print("| deploy | status | total s | replicas' start-up s | beyond start-up s |")
print("|---|---|---|---|---|")
for v, st, took, startup, beyond in rows:
    print(f"| {v} | {st} | {took:.2f} | {startup:.2f} | {beyond:.2f} |")
print(f"\nmedian time beyond start-up: {sorted(r[4] for r in rows)[len(rows) // 2]:.2f} s")
PY
machine
