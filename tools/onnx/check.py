#!/usr/bin/env python3
"""Checks policies exported by `cargo xtask export` in another runtime than cross-gym's.

For each export directory given: the ONNX checker (with shape inference) passes on
`policy.onnx`, and onnxruntime, replaying `reference.json` step by step (the recurrent
state fed back and zeroed where episodes ended), gives the actions cross-gym computed,
within the file's tolerance (relative to the action's size where it is above 1).

    pip install onnx onnxruntime numpy
    python3 tools/onnx/check.py EXPORT_DIR [EXPORT_DIR ...]

Prints one line per directory; exits with status 1 if any check fails.
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort


def check(directory: Path) -> float:
    """The largest action difference of the export in `directory` (raises if invalid)."""
    manifest = json.loads((directory / "policy.json").read_text())
    reference = json.loads((directory / "reference.json").read_text())
    model_path = directory / manifest["onnx"]["file"]
    onnx.checker.check_model(onnx.load(str(model_path)), full_check=True)

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    recurrent = manifest.get("recurrent")
    pairs = [tuple(p) for p in recurrent["state"]] if recurrent else []
    outputs = ["actions"] + [out for _, out in pairs]
    state = {}
    worst = 0.0
    for step in reference["steps"]:
        obs = np.asarray(step["obs"], dtype=np.float32)
        if not state and recurrent:
            shape = (recurrent["num_layers"], obs.shape[0], recurrent["hidden_dim"])
            state = {name: np.zeros(shape, dtype=np.float32) for name, _ in pairs}
        feeds = {"obs": obs, **state}
        results = session.run(outputs, feeds)
        got = results[0].astype(np.float64)
        want = np.asarray(step["actions"], dtype=np.float64)
        if got.shape != want.shape:
            raise ValueError(f"actions of shape {got.shape}, expected {want.shape}")
        error = np.abs(got - want) / np.maximum(np.abs(want), 1.0)
        worst = max(worst, float(error.max(initial=0.0)))
        done = np.asarray(step["dones"], dtype=bool)
        for (name, _), value in zip(pairs, results[1:]):
            value = value.copy()
            value[:, done, :] = 0.0
            state[name] = value
    return worst


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    failed = False
    for arg in sys.argv[1:]:
        directory = Path(arg)
        try:
            tolerance = json.loads((directory / "reference.json").read_text())["tolerance"]
            worst = check(directory)
        except Exception as e:  # noqa: BLE001 - report every directory, then fail
            print(f"{directory}: FAILED: {e}")
            failed = True
            continue
        ok = worst <= tolerance
        failed |= not ok
        verdict = "ok" if ok else "FAILED"
        print(
            f"{directory}: onnx checker passed; onnxruntime {ort.__version__} "
            f"largest action difference {worst:.2e} (tolerance {tolerance:.0e}): {verdict}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
