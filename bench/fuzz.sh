#!/usr/bin/env bash
# Runs every cargo fuzz target (fuzz/) for a set time and reports executions, corpus and
# crashes. Exit status 1 when any target crashed (its input is in fuzz/artifacts/TARGET/;
# turn it into a regression test, see docs/benchmarks.md).
#
#   bench/fuzz.sh                 each target 600 s, two at a time
#   FUZZ_SECONDS=60 FUZZ_JOBS=1 bench/fuzz.sh spec_reader
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain the sanitizer flags
# need RUSTC_BOOTSTRAP=1, which this script sets for cargo fuzz only.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-600}"
jobs="${FUZZ_JOBS:-2}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(spec_reader duration condition upstream_response)
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O "${targets[@]/#/}" >/dev/null 2>&1 || cargo fuzz build -O
logs="$(mktemp -d)"
run() {
  local target="$1"
  mkdir -p "corpus/$target"
  cargo fuzz run -O "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    >"$logs/$target.log" 2>&1 || true
}
running=0
for target in "${targets[@]}"; do
  run "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait
crashed=0
printf '%-18s %8s %14s %10s %8s %s\n' target seconds executions exec/s corpus crashes
for target in "${targets[@]}"; do
  log="$logs/$target.log"
  execs=$(grep -oE 'stat::number_of_executed_units: +[0-9]+' "$log" | awk '{print $2}' | tail -1 || true)
  speed=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | awk '{print $2}' | tail -1 || true)
  corpus=$(find "corpus/$target" -type f | wc -l)
  crashes=$(find "artifacts/$target" -type f 2>/dev/null | wc -l)
  if grep -qE '^==[0-9]+==ERROR|panicked at|deadly signal' "$log"; then
    crashes=$((crashes > 0 ? crashes : 1))
  fi
  printf '%-18s %8s %14s %10s %8s %s\n' "$target" "$seconds" "${execs:-?}" "${speed:-?}" "$corpus" "$crashes"
  if [ "$crashes" -gt 0 ]; then
    crashed=1
    echo "--- $target's log: $log"
    grep -E 'panicked at|ERROR|SUMMARY|Test unit written' "$log" | head -20
  fi
done
exit "$crashed"
