#!/usr/bin/env bash
# Exported policies in other runtimes than cross-gym's: trains one short iteration of an MLP
# (cart-pole), a discrete policy (acrobot), an LSTM (cart-pole without velocities), a GRU with
# an asymmetric critic (pendulum without velocity) and the quadruped, exports each with
# `cargo xtask export` (which checks the graph in tract), then runs tools/onnx/check.py on
# them: the ONNX checker, and onnxruntime replaying each export's reference.json.
#
# Usage: tools/onnx/check_exports.sh [WORK_DIR]   (needs pip for onnx, onnxruntime, numpy)
set -euo pipefail
cd "$(dirname "$0")/../.."

work="${1:-$(mktemp -d)}"
mkdir -p "$work"
venv="$work/venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check onnx onnxruntime numpy
fi

# The binary of the test build (`cargo test --workspace` builds it for xtask's own tests):
# building it through the tests resolves Burn's features as that build does (xtask's
# dev-dependencies add the GPU ones), so after the tests this builds nothing.
cargo test -p xtask --no-run --quiet
xtask=target/debug/xtask
exports=()
for config in cartpole acrobot cartpole_pos_only pendulum_pos_only quadruped_flat; do
  rm -rf "$work/logs/$config"
  # train prints the run directory on its first line of standard output.
  "$xtask" train --config "configs/$config.toml" --max-iterations 1 --num-envs 16 \
    --log-dir "$work/logs/$config" --run-name run --quiet > "$work/train.out"
  run_dir=$(head -n 1 "$work/train.out")
  "$xtask" export --checkpoint "$run_dir" --out "$work/exports/$config" > /dev/null
  exports+=("$work/exports/$config")
done
"$venv/bin/python" tools/onnx/check.py "${exports[@]}"
