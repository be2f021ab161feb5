"""Run our benchmark and the rsl_rl anchor one after the other on the same settings and print the ratios.

Usage (from the repository root, on a machine nobody else is using; Python 3 standard library only):

    cargo build --release -p xtask
    python3 tools/side_by_side.py --env cartpole,pendulum --num-envs 256,1024 --repeats 3

Procedure, for each (env, num_envs, repeat) in that order:

1. Wait for a quiet machine with the anchor's ``wait_quiet.py`` (other processes <= 0.15 core for 3 windows
   of 3 s); give up after ``--quiet-timeout`` s.
2. rsl_rl: ``$VENV/bin/python train.py --env E --num-envs N --seed S --threads 2 --max-iterations M
   --stop-at-threshold --max-wall-s 600 --summary-json F``, run in the anchors directory. This is the command
   of ``run_matrix.sh``; its per-iteration stdout is kept as a log, from which the median collection and learn
   seconds per iteration are taken (iterations during which other processes used <= 0.1 core, as in
   ``summarize.py``), since the summary JSON only holds their totals.
3. Wait for a quiet machine again, then ours: ``<xtask> bench --config configs/E.toml --backend B --num-envs N
   --seed S --solve --max-iterations M --json F2``, run in the repository root.

Compared per (env, num_envs), each quantity the median over repeats:

* end-to-end env steps/s, ours / rsl_rl: our ``solve.env_steps_per_s`` against rsl_rl's ``steps_per_s``
  (total steps / wall time of its whole run, logging included); also our fixed-iteration
  ``train.env_steps_per_s`` against the same rsl_rl number.
* learn seconds per iteration, rsl_rl / ours: rsl_rl's median learn s/iter against our
  ``train.update_s_per_iter`` (above 1 means our update is faster).
* wall time to the threshold, ours / rsl_rl: our ``solve.wall_s`` against rsl_rl's ``threshold_wall_s``
  (its own Train/mean_reward metric, cartpole >= 475, pendulum >= -200); null if either side did not reach it.
* iterations to the threshold of each side.

Writes every raw summary and log under ``<out without .json>/`` and the summaries plus the ratios to ``--out``
(rewritten after each run, so a failed sweep keeps what it measured), then prints a Markdown table for
docs/performance.md. Exits non-zero if a command fails, a path is missing or the machine never becomes quiet.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVS = ("cartpole", "pendulum")
STEPS_PER_ENV = 24  # rsl_rl anchor's num_steps_per_env
CLEAN_OTHER_CORES = 0.1  # an iteration counts as clean if other processes used at most this many cores


def parse_args(argv=None):
    """Parse the command line; list options accept repeats and comma lists. Defaults are resolved against REPO."""
    p = argparse.ArgumentParser(
        description="Run our bench and the rsl_rl anchor side by side and print the ratios.",
        epilog="Example: python3 tools/side_by_side.py --env cartpole --num-envs 256,1024 --repeats 3",
    )
    p.add_argument("--env", action="append", help="cartpole, pendulum (repeatable or comma list; default both)")
    p.add_argument("--num-envs", action="append", help="repeatable or comma list (default 256,1024)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--backend", default="flex", help="our backend (default flex)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--max-iterations", type=int, default=300)
    p.add_argument("--max-wall-s", type=float, default=600.0, help="rsl_rl's --max-wall-s (default 600)")
    p.add_argument("--quiet-timeout", type=float, default=900.0, help="seconds to wait for a quiet machine")
    p.add_argument("--out", help="JSON results file (default target/side_by_side/<timestamp>.json)")
    p.add_argument("--xtask", help="our release binary (default target/release/xtask)")
    p.add_argument("--venv", help="anchor venv (default $VENV or /tmp/anchor-venv)")
    p.add_argument("--anchors", help="rsl_rl anchor directory (default ../shared/anchors/rsl_rl)")
    p.add_argument("--skip-rsl-rl", action="store_true", help="run ours only")
    p.add_argument("--skip-ours", action="store_true", help="run rsl_rl only")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    a = p.parse_args(argv)

    a.env = split_list(a.env) or list(ENVS)
    bad = [e for e in a.env if e not in ENVS]
    if bad:
        p.error(f"--env: unknown {', '.join(bad)} (choose from {', '.join(ENVS)})")
    try:
        a.num_envs = [int(n) for n in split_list(a.num_envs) or ["256", "1024"]]
    except ValueError as e:
        p.error(f"--num-envs: {e}")
    if a.skip_ours and a.skip_rsl_rl:
        p.error("--skip-ours and --skip-rsl-rl together leave nothing to run")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    a.out = os.path.abspath(a.out or os.path.join(REPO, "target", "side_by_side", f"{stamp}.json"))
    a.xtask = os.path.abspath(a.xtask or os.path.join(REPO, "target", "release", "xtask"))
    a.venv = os.path.abspath(a.venv or os.environ.get("VENV") or "/tmp/anchor-venv")
    a.anchors = os.path.abspath(a.anchors or os.path.join(REPO, "..", "shared", "anchors", "rsl_rl"))
    return a


def split_list(values):
    """Flatten ["a,b", "c"] into ["a", "b", "c"]; None stays empty."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def check_paths(a):
    """Return the problems with the paths this run needs (empty if none)."""
    problems = []
    if not os.path.isfile(os.path.join(a.anchors, "wait_quiet.py")):
        problems.append(f"anchors directory {a.anchors} has no wait_quiet.py (pass --anchors)")
    if not a.skip_rsl_rl:
        if not os.path.isfile(os.path.join(a.anchors, "train.py")):
            problems.append(f"anchors directory {a.anchors} has no train.py (pass --anchors)")
        if not os.access(os.path.join(a.venv, "bin", "python"), os.X_OK):
            problems.append(f"no venv at {a.venv} (set VENV or --venv; create it with {a.anchors}/setup.sh)")
    if not a.skip_ours:
        if not os.access(a.xtask, os.X_OK):
            problems.append(f"no binary at {a.xtask}: build it with `cargo build --release -p xtask`")
        for env in a.env:
            if not os.path.isfile(os.path.join(REPO, "configs", f"{env}.toml")):
                problems.append(f"no config configs/{env}.toml in {REPO}")
    return problems


def fail(msg):
    """Print msg to stderr and exit with status 1."""
    print(f"side_by_side: error: {msg}", file=sys.stderr)
    sys.exit(1)


def tail(path, n=30):
    """Last n lines of a text file, or '' if it cannot be read."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def run(cmd, cwd, log_base, dry_run):
    """Run cmd in cwd with stdout/stderr in <log_base>.out/.err; exit with the stderr tail if it fails."""
    print(f"$ (cd {cwd} && {' '.join(cmd)})", flush=True)
    if dry_run:
        return
    with open(log_base + ".out", "w") as out, open(log_base + ".err", "w") as err:
        rc = subprocess.call(cmd, cwd=cwd, stdout=out, stderr=err)
    if rc != 0:
        out_tail = tail(log_base + ".out", 5)
        fail(f"exit status {rc} from {cmd[0]} (logs: {log_base}.out/.err); stderr tail:\n{tail(log_base + '.err')}"
             + (f"stdout tail:\n{out_tail}" if out_tail else ""))


def wait_quiet(a):
    """Block until the machine is quiet (anchor's wait_quiet.py); exit if it never becomes quiet."""
    cmd = [sys.executable, os.path.join(a.anchors, "wait_quiet.py"), "--timeout", str(a.quiet_timeout)]
    print(f"$ {' '.join(cmd)}", flush=True)
    if a.dry_run:
        return
    rc = subprocess.call(cmd)
    if rc == 3:
        fail(f"the machine did not become quiet within {a.quiet_timeout:.0f} s (see `top`; raise --quiet-timeout)")
    if rc != 0:
        fail(f"wait_quiet.py exited with status {rc}")


def iteration_rows(log_path):
    """Per-iteration (collect_s, learn_s, other_cores) from train.py's stdout table (15 columns, first = iter)."""
    rows = []
    with open(log_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 15 and parts[0].isdigit():
                rows.append((float(parts[7]), float(parts[8]), float(parts[14])))
    return rows


def read_rsl_rl(summary_path, log_path):
    """rsl_rl's summary JSON plus median collect/learn s per iteration over its clean iterations (all if none)."""
    with open(summary_path) as f:
        s = json.load(f)
    rows = iteration_rows(log_path)
    clean = [r for r in rows if r[2] <= CLEAN_OTHER_CORES]
    used = clean or rows
    s["median_collect_s_per_iter"] = median(r[0] for r in used)
    s["median_learn_s_per_iter"] = median(r[1] for r in used)
    s["median_over_clean_iters"] = len(clean)  # 0: no clean iteration, the medians use all of them
    return s


def read_ours(path):
    """Our bench JSON, checked for the keys the ratios need."""
    with open(path) as f:
        s = json.load(f)
    for section, key in [("train", "env_steps_per_s"), ("train", "update_s_per_iter"),
                         ("solve", "env_steps_per_s"), ("solve", "reached")]:
        if key not in s.get(section, {}):
            fail(f"{path}: missing {section}.{key}")
    return s


def median(xs):
    """Median of the non-None values, or None if there are none."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def median_if_all(xs):
    """Median if no value is None (every repeat reached the threshold), else None."""
    xs = list(xs)
    return None if not xs or any(x is None for x in xs) else statistics.median(xs)


def ratio(num, den):
    """num / den, or None if either is missing or den is 0."""
    return None if num is None or not den else num / den


def compare(runs):
    """One row of medians and ratios for the repeats (list of {'rsl_rl': dict|None, 'ours': dict|None})."""
    R = [r["rsl_rl"] for r in runs if r.get("rsl_rl")]
    O = [r["ours"] for r in runs if r.get("ours")]
    # to-threshold numbers are null unless every repeat of that side reached the threshold
    solved = [s["solve"] if s["solve"].get("reached") else {} for s in O]
    rsl_wall = median_if_all(s.get("threshold_wall_s") for s in R)
    ours_wall = median_if_all(s.get("wall_s") for s in solved)
    row = {
        "rsl_rl_repeats": len(R),
        "ours_repeats": len(O),
        "rsl_rl_iters_to_threshold": median_if_all(s.get("threshold_iter") for s in R),
        "ours_iters_to_threshold": median_if_all(s.get("iterations") for s in solved),
        "rsl_rl_steps_to_threshold": median_if_all(s.get("threshold_steps") for s in R),
        "ours_steps_to_threshold": median_if_all(s.get("env_steps") for s in solved),
        "rsl_rl_wall_to_threshold_s": rsl_wall,
        "ours_wall_to_threshold_s": ours_wall,
        "rsl_rl_steps_per_s": median(s.get("steps_per_s") for s in R),
        "ours_solve_steps_per_s": median(s["solve"]["env_steps_per_s"] for s in O),
        "ours_train_steps_per_s": median(s["train"]["env_steps_per_s"] for s in O),
        "rsl_rl_learn_s_per_iter": median(s.get("median_learn_s_per_iter") for s in R),
        "ours_update_s_per_iter": median(s["train"]["update_s_per_iter"] for s in O),
        "rsl_rl_collect_s_per_iter": median(s.get("median_collect_s_per_iter") for s in R),
        "ours_collect_s_per_iter": median(s["train"].get("collect_s_per_iter") for s in O),
    }
    row["steps_per_s_ours_over_rsl_rl"] = ratio(row["ours_solve_steps_per_s"], row["rsl_rl_steps_per_s"])
    row["train_steps_per_s_ours_over_rsl_rl"] = ratio(row["ours_train_steps_per_s"], row["rsl_rl_steps_per_s"])
    row["learn_s_per_iter_rsl_rl_over_ours"] = ratio(row["rsl_rl_learn_s_per_iter"], row["ours_update_s_per_iter"])
    row["wall_to_threshold_ours_over_rsl_rl"] = ratio(ours_wall, rsl_wall)
    return row


def fmt(x, spec):
    """Format a number for the table; '-' for None. spec 'k' prints thousands with one decimal."""
    if x is None:
        return "-"
    if spec == "k":
        return f"{x / 1000:.1f}k"
    if spec == "x":
        return f"{x:.2f}x"
    return format(x, spec)


def markdown(a, rows):
    """Markdown table of the comparison rows, with a caption line giving the settings."""
    lines = [
        f"Seed {a.seed}, backend {a.backend}, up to {a.max_iterations} iterations, {STEPS_PER_ENV} steps per env, "
        f"rsl_rl with 2 threads; medians over {a.repeats} repeat(s); {time.strftime('%Y-%m-%d')}.",
        "",
        "| env | num_envs | iters to thr (ours / rsl_rl) | wall to thr s (ours / rsl_rl) | wall to thr ours/rsl_rl"
        " | env steps/s, solve run (ours / rsl_rl) | ours/rsl_rl | env steps/s, fixed iters (ours) | ours/rsl_rl"
        " | learn s/iter (ours / rsl_rl) | rsl_rl/ours |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['env']} | {r['num_envs']} "
            f"| {fmt(r['ours_iters_to_threshold'], 'g')} / {fmt(r['rsl_rl_iters_to_threshold'], 'g')} "
            f"| {fmt(r['ours_wall_to_threshold_s'], '.1f')} / {fmt(r['rsl_rl_wall_to_threshold_s'], '.1f')} "
            f"| {fmt(r['wall_to_threshold_ours_over_rsl_rl'], 'x')} "
            f"| {fmt(r['ours_solve_steps_per_s'], 'k')} / {fmt(r['rsl_rl_steps_per_s'], 'k')} "
            f"| {fmt(r['steps_per_s_ours_over_rsl_rl'], 'x')} "
            f"| {fmt(r['ours_train_steps_per_s'], 'k')} | {fmt(r['train_steps_per_s_ours_over_rsl_rl'], 'x')} "
            f"| {fmt(r['ours_update_s_per_iter'], '.3f')} / {fmt(r['rsl_rl_learn_s_per_iter'], '.3f')} "
            f"| {fmt(r['learn_s_per_iter_rsl_rl_over_ours'], 'x')} |"
        )
    return "\n".join(lines)


def write_results(a, runs):
    """Write settings, raw per-run summaries and the comparison rows to a.out; return the rows."""
    rows = []
    for env in a.env:
        for n in a.num_envs:
            mine = [r for r in runs if r["env"] == env and r["num_envs"] == n]
            if mine:
                rows.append({"env": env, "num_envs": n, **compare(mine)})
    settings = {k: getattr(a, k) for k in ("env", "num_envs", "seed", "backend", "repeats", "max_iterations",
                                           "max_wall_s", "xtask", "venv", "anchors", "skip_rsl_rl", "skip_ours")}
    with open(a.out, "w") as f:
        json.dump({"settings": settings, "runs": runs, "ratios": rows}, f, indent=1)
    return rows


def main(argv=None):
    """Run the sweep (see the module docstring)."""
    a = parse_args(argv)
    problems = check_paths(a)
    if problems and not a.dry_run:
        fail("\n  ".join(["cannot run:"] + problems))
    for p in problems:
        print(f"# warning: {p}")
    raw_dir = os.path.splitext(a.out)[0]
    if not a.dry_run:
        os.makedirs(raw_dir, exist_ok=True)
    py = os.path.join(a.venv, "bin", "python")

    runs = []
    for env in a.env:
        for n in a.num_envs:
            for k in range(1, a.repeats + 1):
                base = os.path.join(raw_dir, f"{env}_{n}_s{a.seed}.r{k}")
                record = {"env": env, "num_envs": n, "seed": a.seed, "repeat": k, "rsl_rl": None, "ours": None}
                print(f"# {env} num_envs {n} seed {a.seed} repeat {k}/{a.repeats}", flush=True)
                if not a.skip_rsl_rl:
                    wait_quiet(a)
                    cmd = [py, "train.py", "--env", env, "--num-envs", str(n), "--seed", str(a.seed),
                           "--threads", "2", "--max-iterations", str(a.max_iterations), "--stop-at-threshold",
                           "--max-wall-s", f"{a.max_wall_s:g}", "--summary-json", base + ".rsl_rl.json"]
                    run(cmd, a.anchors, base + ".rsl_rl", a.dry_run)
                    if not a.dry_run:
                        s = record["rsl_rl"] = read_rsl_rl(base + ".rsl_rl.json", base + ".rsl_rl.out")
                        print(f"#   rsl_rl: {s['iterations']} iterations, threshold at {s['threshold_iter']}, "
                              f"{s['steps_per_s']} steps/s, other processes {s['other_procs_cpu_cores']} cores")
                        if s["other_procs_cpu_cores"] > 0.15:
                            print("#   warning: other processes disturbed this rsl_rl run; its timings are suspect")
                if not a.skip_ours:
                    wait_quiet(a)
                    cmd = [a.xtask, "bench", "--config", f"configs/{env}.toml", "--backend", a.backend,
                           "--num-envs", str(n), "--seed", str(a.seed), "--solve",
                           "--max-iterations", str(a.max_iterations), "--json", base + ".ours.json"]
                    run(cmd, REPO, base + ".ours", a.dry_run)
                    if not a.dry_run:
                        s = record["ours"] = read_ours(base + ".ours.json")
                        print(f"#   ours: solve reached {s['solve']['reached']} at {s['solve'].get('iterations')}, "
                              f"{s['solve']['env_steps_per_s']:.0f} steps/s")
                runs.append(record)
                if not a.dry_run:
                    write_results(a, runs)
    if a.dry_run:
        return 0
    rows = write_results(a, runs)
    print(f"\n# raw summaries and logs: {raw_dir}/\n# results: {a.out}\n")
    print(markdown(a, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
