#!/usr/bin/env bash
# runway on one host at scale: SERVICES services of REPLICAS replicas each on one server.
# Reports the server's idle CPU and memory, the time of `status` and `history` (the CLI end
# to end, and the API alone), then the same with HISTORY deployments in the history (rows
# copied in SQLite from the real ones, with their journals: a real deployment takes seconds),
# and the state database's size per deployment.
# Usage: bench/scale.sh [SERVICES] [REPLICAS] [HISTORY]   (defaults: 50 3 10000)
source "$(dirname "$0")/lib.sh"
SERVICES=${1:-50}
REPLICAS=${2:-3}
HISTORY=${3:-10000}
IDLE_SECONDS=${IDLE_SECONDS:-30}
need curl:curl
build

start_kept() {
  "$RUNWAY" server --state-dir "$RUNWAY_STATE_DIR" --keep-replicas 2>>"$WORK/server.log" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 300); do
    if [ -f "$RUNWAY_STATE_DIR/server.json" ] && "$RUNWAY" status >/dev/null 2>&1; then return; fi
    sleep 0.1
  done
  echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1
}
start_kept

echo "deploying $SERVICES services of $REPLICAS replicas" >&2
for i in $(seq -w 1 "$SERVICES"); do
  mkdir -p "$WORK/svc-$i"
  write_config "$WORK/svc-$i/runway.toml" "127.0.0.1:$(free_port)" "$REPLICAS"
  sed -i "s/^name = \"bench\"/name = \"svc-$i\"/" "$WORK/svc-$i/runway.toml"
done
deployed=$(date +%s.%N)
seq -w 1 "$SERVICES" | xargs -P 8 -I{} sh -c \
  'cd "$0/svc-{}" && "$1" deploy v1 >/dev/null 2>&1 || { echo "svc-{} failed"; exit 1; }' "$WORK" "$RUNWAY"
deploy_seconds=$(python3 -c "import time; print(f'{time.time() - $deployed:.1f}')")
replicas=$("$RUNWAY" status --json | python3 -c 'import json,sys; print(sum(len(s["replicas"]) for s in json.load(sys.stdin)["services"]))')

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
idle() {
  sleep 5
  local before after
  before=$(ticks "$SERVER_PID")
  sleep "$IDLE_SECONDS"
  after=$(ticks "$SERVER_PID")
  python3 -c "import os; t=os.sysconf('SC_CLK_TCK'); print(f'{100*($after-$before)/t/$IDLE_SECONDS:.2f}')"
}

# time_cli ARGS...: median and max wall ms of 21 runs of the CLI.
time_cli() {
  python3 - "$RUNWAY" "$@" <<'PY'
import statistics, subprocess, sys, time
times = []
for _ in range(21):
    t = time.perf_counter()
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
    times.append((time.perf_counter() - t) * 1000)
print(f"{statistics.median(times):.1f} {max(times):.1f}")
PY
}
# time_api PATH: median and max ms of 51 GETs of the API (curl's time_total).
time_api() {
  local api token
  api=$(python3 -c "import json; print(json.load(open('$RUNWAY_STATE_DIR/server.json'))['api'])")
  token=$(python3 -c "import json; print(json.load(open('$RUNWAY_STATE_DIR/server.json'))['token'])")
  for _ in $(seq 51); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" "http://$api$1"
  done | python3 -c 'import statistics,sys; t=[float(x)*1000 for x in sys.stdin]; print(f"{statistics.median(t):.1f} {max(t):.1f}")'
}

measure() {
  local label=$1
  local cpu rss status history api_status api_history
  cpu=$(idle)
  rss=$(rss_kib "$SERVER_PID")
  status=$(time_cli status --json)
  history=$(time_cli history --json)
  api_status=$(time_api /v1/status)
  api_history=$(time_api "/v1/deployments?limit=20")
  echo "| $label | $cpu | $((rss / 1024)) | ${status% *} (${status#* }) | ${history% *} (${history#* }) | ${api_status% *} (${api_status#* }) | ${api_history% *} (${api_history#* }) |"
}

rows=()
rows+=("$(measure "$SERVICES services, $SERVICES deployments")")

# The history: each service's deployment copied, with its journal, until HISTORY in all.
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
python3 - "$RUNWAY_STATE_DIR/state.db" "$HISTORY" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
want = int(sys.argv[2])
cols = [r[1] for r in db.execute("PRAGMA table_info(deployments)")]
jcols = [r[1] for r in db.execute("PRAGMA table_info(journal)")]
have = db.execute("SELECT count(*) FROM deployments").fetchone()[0]
sources = db.execute("SELECT id FROM deployments ORDER BY id").fetchall()
other = [c for c in cols if c != "id"]
jother = [c for c in jcols if c not in ("id", "deployment_id")]
n = 0
while have + n < want:
    for (src,) in sources:
        if have + n >= want:
            break
        cur = db.execute(
            f"INSERT INTO deployments ({','.join(other)}) SELECT {','.join(other)} FROM deployments WHERE id = ?",
            (src,),
        )
        new = cur.lastrowid
        db.execute(
            f"INSERT INTO journal (deployment_id, {','.join(jother)}) SELECT ?, {','.join(jother)} FROM journal WHERE deployment_id = ? ORDER BY id",
            (new, src),
        )
        n += 1
db.commit()
print(db.execute("SELECT count(*) FROM deployments").fetchone()[0], db.execute("SELECT count(*) FROM journal").fetchone()[0], file=sys.stderr)
PY
start_kept
rows+=("$(measure "$SERVICES services, $HISTORY deployments")")
db_bytes=$(stat -c %s "$RUNWAY_STATE_DIR/state.db")
journal_rows=$(python3 -c "import sqlite3; print(sqlite3.connect('$RUNWAY_STATE_DIR/state.db').execute('select count(*) from journal').fetchone()[0])")
logs_kib=$(du -sk "$RUNWAY_STATE_DIR/logs" | awk '{print $1}')

echo
echo "### Scale: $SERVICES services × $REPLICAS replicas on one server"
machine
echo "- deployed in ${deploy_seconds}s (8 at a time); $replicas replicas running"
echo
echo "| state | server CPU idle % (${IDLE_SECONDS}s) | server RSS MiB | \`runway status --json\` ms median (max) | \`runway history --json\` ms | GET /v1/status ms | GET /v1/deployments?limit=20 ms |"
echo "|---|---|---|---|---|---|---|"
for row in "${rows[@]}"; do echo "$row"; done
echo
echo "- state.db: $((db_bytes / 1024)) KiB for $HISTORY deployments and $journal_rows journal entries ($((db_bytes / HISTORY)) bytes a deployment); replica logs: ${logs_kib} KiB"
echo "- CLI times include starting the CLI process; the API times are the server's answer alone."
