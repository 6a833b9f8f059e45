# Shared helpers for the benchmark scripts: build, a runway server in a temp state dir, cleanup.
# Sourced, not run. Everything listens on 127.0.0.1 only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNWAY="$ROOT/target/release/runway"
WORK="$(mktemp -d /tmp/runway-bench.XXXXXX)"
export RUNWAY_STATE_DIR="$WORK/state"
PIDS=()

need() {
  local missing=()
  for pair in "$@"; do command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  for tag in "${IMAGE_TAGS[@]}"; do docker rmi -f "$tag" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

build() { (cd "$ROOT" && cargo build --release -q -p runway); }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() {
  "$RUNWAY" server --state-dir "$RUNWAY_STATE_DIR" 2>"$WORK/server.log" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 100); do [ -f "$RUNWAY_STATE_DIR/server.json" ] && return; sleep 0.1; done
  echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1
}

# What every benchmark's runway.toml ends with: health and a one-at-a-time rolling update.
config_tail() {
  cat <<TOML

[health]
path = "/health/ready"
interval = "1s"
deadline = "30s"

[strategy]
kind = "rolling"
max_surge = 1
max_unavailable = 0
TOML
}

# write_config FILE LISTEN REPLICAS EXTRA_ARGS...
write_config() {
  local file=$1 listen=$2 replicas=$3; shift 3
  local extra=""
  for a in "$@"; do extra+=", \"$a\""; done
  cat >"$file" <<TOML
[service]
name = "bench"
listen = "$listen"

[run]
command = ["$RUNWAY", "demo-app", "--port", "{port}", "--version", "{version}"$extra]
replicas = $replicas
drain_timeout = "10s"
TOML
  config_tail >>"$file"
}

# build_image "v1 v2 ...": the release binary (its demo-app) and the libraries it links,
# imported as the image runway-bench:<each version>; removed again at exit.
IMAGE_TAGS=()
build_image() {
  local root="$WORK/rootfs"
  mkdir -p "$root/tmp"
  cp "$RUNWAY" "$root/runway"
  for lib in $(ldd "$RUNWAY" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  tar -C "$root" -cf "$WORK/rootfs.tar" .
  local first=""
  for v in $1; do
    if [ -z "$first" ]; then
      first="runway-bench:$v"
      docker import "$WORK/rootfs.tar" "$first" >/dev/null
    else
      docker tag "$first" "runway-bench:$v"
    fi
    IMAGE_TAGS+=("runway-bench:$v")
  done
}

# write_docker_config FILE LISTEN REPLICAS EXTRA_ARGS...: as write_config, as containers.
write_docker_config() {
  local file=$1 listen=$2 replicas=$3; shift 3
  local extra=""
  for a in "$@"; do extra+=", \"$a\""; done
  cat >"$file" <<TOML
[service]
name = "bench"
listen = "$listen"

[docker]
image = "runway-bench:{version}"
port = 8000
pull = "never"
command = ["/runway", "demo-app", "--host", "0.0.0.0", "--port", "8000", "--version", "{version}"$extra]
replicas = $replicas
drain_timeout = "10s"
TOML
  config_tail >>"$file"
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

machine() {
  echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr))"
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); runway $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
}

# need_oha: the load generator of the fixed-rate and instruction benchmarks.
need_oha() {
  if ! command -v oha >/dev/null; then
    echo "installing oha (cargo install oha --locked)" >&2
    cargo install oha --locked >&2
  fi
}

# write_nginx_conf BACKEND_PORT [PROCESSES]: the reference proxy's configuration, nginx as a
# keep-alive reverse proxy to 127.0.0.1:BACKEND_PORT, in $WORK/nginx/nginx.conf; PROCESSES
# (default "worker_processes auto;") sets its processes. Sets NGINX_PORT.
write_nginx_conf() {
  NGINX_PORT=$(free_port)
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<CONF
${2:-worker_processes auto;}
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server 127.0.0.1:$1; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CONF
}

# start_nginx BACKEND_PORT: nginx as a keep-alive reverse proxy to 127.0.0.1:BACKEND_PORT (the
# reference of the proxy benchmarks); sets NGINX_PORT and NGINX_PID.
start_nginx() {
  write_nginx_conf "$1"
  nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  sleep 0.5
}

# start_proxied_backend: one replica of the demo app deployed by runway (LISTEN is its
# service's address, BACKEND_PORT the replica's own port), and nginx in front of that same
# replica (NGINX_PORT): the three targets of the proxy benchmarks.
start_proxied_backend() {
  LISTEN="127.0.0.1:$(free_port)"
  write_config "$WORK/runway.toml" "$LISTEN" 1
  "$RUNWAY" -f "$WORK/runway.toml" deploy v1 >/dev/null
  BACKEND_PORT=$("$RUNWAY" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["services"][0]["replicas"][0]["port"])')
  start_nginx "$BACKEND_PORT"
}
