//! The GPU path end to end on wgpu (in CI on Mesa's lavapipe, a software Vulkan device): a
//! seeded cart-pole run starts on wgpu as it does on flex (the same host-drawn weights and
//! noise), and its checkpoint resumes on flex.
#![cfg(feature = "wgpu")]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Trains `args`, checks it succeeded and returns the run directory (the first line).
fn train(args: &[&str]) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("train")
        .args(args)
        .arg("--quiet")
        .current_dir(root())
        .output()
        .expect("run xtask");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "train {args:?} failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().next().expect("the run directory").trim())
}

fn metrics(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The numeric entries of a metrics row, timings and memory aside.
fn numbers(row: &Value) -> Vec<(String, f64)> {
    row.as_object()
        .expect("an object")
        .iter()
        .filter(|(k, _)| !k.starts_with("Perf/") && k.as_str() != "wall_s")
        .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
        .collect()
}

#[test]
fn a_wgpu_cartpole_run_starts_like_flex_and_resumes_on_flex() {
    let dir = std::env::temp_dir().join(format!("xtask-wgpu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log_dir = dir.to_str().expect("utf-8 path");
    let common = [
        "--config",
        "configs/cartpole.toml",
        "--num-envs",
        "64",
        "--log-dir",
        log_dir,
    ];
    let run = |backend: &str, iterations: &str, name: &str| {
        let mut args = common.to_vec();
        args.extend(["--backend", backend, "--max-iterations", iterations]);
        args.extend(["--run-name", name]);
        train(&args)
    };
    let gpu = run("wgpu", "3", "gpu");
    let cpu = run("flex", "1", "cpu");
    let (g, c) = (metrics(&gpu), metrics(&cpu));
    assert_eq!(g.len(), 3, "three iterations on wgpu");
    // Iteration 0: the same rollout (rewards, episodes) and the same update to rounding.
    let (g0, c0) = (numbers(&g[0]), numbers(&c[0]));
    assert_eq!(
        g0.iter().map(|p| &p.0).collect::<Vec<_>>(),
        c0.iter().map(|p| &p.0).collect::<Vec<_>>(),
        "the same metrics"
    );
    for ((key, a), (_, b)) in g0.iter().zip(&c0) {
        let tol = 1e-4 * a.abs().max(b.abs()) + 1e-5;
        assert!(
            (a - b).abs() <= tol,
            "iteration 0, {key}: wgpu {a} vs flex {b}"
        );
    }
    // The wgpu checkpoint continues on flex.
    let gpu_dir = gpu.to_str().expect("utf-8 path");
    let resumed = train(&[
        "--resume",
        gpu_dir,
        "--backend",
        "flex",
        "--max-iterations",
        "4",
    ]);
    let r = metrics(&resumed);
    assert_eq!(r.len(), 4, "iterations 0-3 after the resume on flex: {r:?}");
    for row in &r {
        assert!(
            numbers(row).iter().all(|(_, v)| v.is_finite()),
            "finite metrics after the resume: {row}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
