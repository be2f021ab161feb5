#!/usr/bin/env python3
"""Checks that two training runs logged the same numbers, timings and memory aside.

A refactoring that should not change behaviour must leave every logged loss, return,
learning rate and std identical, bit for bit, on the same backend and seed. This script
compares the `metrics.jsonl` of two runs after dropping what depends on the machine and
its load: `wall_s` and every `Perf/*` key (collection and learning time, frames per second,
resident memory).

Usage:
    tools/compare_metrics.py BEFORE AFTER
    tools/compare_metrics.py --strip RUN > baseline.jsonl

BEFORE and AFTER are run directories (holding `metrics.jsonl`), `metrics.jsonl` files, or
baselines written by `--strip`. Exit status 0 when identical; 1 with the first difference
printed otherwise. `tools/baselines/` holds the stripped records of the shipped configs
(see tools/baselines/README.md for when they were taken).
"""

import json
import sys
from pathlib import Path

MACHINE_DEPENDENT_PREFIXES = ("Perf/",)
MACHINE_DEPENDENT_KEYS = {"wall_s"}


def metrics_path(arg: str) -> Path:
    path = Path(arg)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        sys.exit(f"{arg}: no metrics.jsonl there")
    return path


def deterministic_rows(arg: str) -> list[dict]:
    rows = []
    path = metrics_path(arg)
    with path.open() as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{line_no}: not JSON: {e}")
            rows.append(
                {
                    k: v
                    for k, v in row.items()
                    if k not in MACHINE_DEPENDENT_KEYS
                    and not k.startswith(MACHINE_DEPENDENT_PREFIXES)
                }
            )
    return rows


def compare(before: list[dict], after: list[dict]) -> str | None:
    """The first difference, described, or None when the runs agree."""
    for i, (a, b) in enumerate(zip(before, after)):
        if a == b:
            continue
        keys = sorted(set(a) | set(b))
        diffs = [f"  {k}: {a.get(k, '<missing>')!r} -> {b.get(k, '<missing>')!r}"
                 for k in keys if a.get(k) != b.get(k)]
        return f"row {i} (iteration {a.get('iteration')}) differs:\n" + "\n".join(diffs)
    if len(before) != len(after):
        return f"{len(before)} rows before, {len(after)} after"
    return None


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--strip":
        for row in deterministic_rows(args[1]):
            print(json.dumps(row, sort_keys=True))
        return
    if len(args) != 2:
        sys.exit(__doc__)
    before, after = (deterministic_rows(a) for a in args)
    difference = compare(before, after)
    if difference is not None:
        print(f"DIFFERENT: {args[0]} vs {args[1]}\n{difference}")
        sys.exit(1)
    print(f"identical: {len(before)} rows, {len(before[0]) if before else 0} keys each")


if __name__ == "__main__":
    main()
