#!/usr/bin/env bash
# Trains every config of tools/baselines/ on flex and checks that metrics.jsonl matches the
# recorded baseline bit for bit (timings and memory aside; see tools/compare_metrics.py).
#   tools/check_baselines.sh [path/to/xtask-binary]   (default: cargo xtask)
# Takes about two minutes on two cores; the runs go to a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -ge 1 ]]; then xtask=("$1"); else xtask=(cargo xtask); fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
for baseline in tools/baselines/*.jsonl; do
  task=$(basename "$baseline" .jsonl)
  extra=()
  # quadruped_flat trains for 1,500 iterations; its first 30 are the check.
  [[ $task == quadruped_flat ]] && extra=(--max-iterations 30)
  "${xtask[@]}" train --config "configs/$task.toml" --backend flex "${extra[@]}" \
    --log-dir "$out" --run-name "$task" --quiet >"$out/$task.out" 2>&1 ||
    { echo "$task: training failed"; tail -5 "$out/$task.out"; status=1; continue; }
  run_dir=$(head -1 "$out/$task.out")
  printf '%s: ' "$task"
  python3 tools/compare_metrics.py "$baseline" "$run_dir" || status=1
done
exit $status
