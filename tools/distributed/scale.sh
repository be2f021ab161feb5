#!/bin/bash
# Throughput of data-parallel training on this machine (docs/distributed.md, "Measured"):
# one process with both cores and 2E environments against two single-threaded workers with
# E environments each (and the single worker, and oversubscribed workers, for reference).
# Run it on a quiet machine, after `cargo build --release -p xtask`.
#
# usage: tools/distributed/scale.sh CONFIG ENVS_PER_WORKER ITERATIONS
set -euo pipefail
config=$1
envs=$2
iterations=$3
xtask=${XTASK:-target/release/xtask}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# Mean Perf/total_fps (every worker's steps) of iterations 2..last, and the mean times.
report() {
  python3 - "$1/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
timed = rows[2:]
mean = lambda key: sum(r[key] for r in timed) / len(timed)
print("%.0f fps (iterations 2..%d), collection %.3f s, learning %.3f s"
      % (mean("Perf/total_fps"), len(rows) - 1, mean("Perf/collection_time"), mean("Perf/learning_time")))
PY
}

run() {
  local name=$1
  shift
  "$@" --config "$config" --max-iterations "$iterations" --log-dir "$dir" --run-name "$name" \
    --quiet >/dev/null 2>&1
  report "$dir"/*/"$name"
}

echo "1 process x 2 threads, $((2 * envs)) envs:"
run one2 "$xtask" train --num-envs $((2 * envs))
echo "2 processes x 1 thread, $envs envs each:"
run two1 "$xtask" train --num-envs "$envs" --world-size 2
echo "1 process x 1 thread, $envs envs:"
run one1 env RAYON_NUM_THREADS=1 "$xtask" train --num-envs "$envs"
echo "2 processes x 2 threads (oversubscribed), $envs envs each:"
run two2 env RAYON_NUM_THREADS=2 "$xtask" train --num-envs "$envs" --world-size 2
