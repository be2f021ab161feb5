//! `cargo xtask bench`: a tiny benchmark prints its table and one JSON object (also written to
//! `--json`), with numbers that agree with each other; bad requests exit 2 before measuring.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A small config: cart-pole, 8 environments, one hidden layer of 16.
const CONFIG: &str = r#"[env]
task = "cartpole"
num_envs = 8

[policy]
actor_hidden_dims = [16]
critic_hidden_dims = [16]

[runner]
num_steps_per_env = 8
"#;

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the temp dir");
    dir
}

fn bench(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "--backend", "flex", "--config"])
        .arg(config)
        .args([
            "--iterations",
            "2",
            "--warmup",
            "1",
            "--sim-steps",
            "5",
            "--matmul-size",
            "64",
        ])
        .args(args)
        .output()
        .expect("run xtask")
}

#[test]
fn bench_prints_a_table_and_writes_consistent_json() {
    let dir = dir("ok");
    let config = dir.join("small.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let json_path = dir.join("out/bench.json");
    let out = bench(
        &config,
        &[
            "--solve",
            "--threshold",
            "-1000",
            "--json",
            json_path.to_str().expect("utf-8 path"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("end-to-end PPO"), "{stdout}");
    let last = stdout.lines().last().expect("a JSON line");
    let printed: serde_json::Value = serde_json::from_str(last).expect("JSON on the last line");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("--json file"))
            .expect("valid JSON");
    assert_eq!(printed, written);
    assert_eq!(printed["task"], "cartpole");
    assert_eq!(printed["backend"], "flex");
    assert_eq!(printed["num_envs"], 8);
    assert_eq!(printed["sim"]["env_steps"], 40);
    assert_eq!(printed["train"]["iterations"], 2);
    let steps_per_s = printed["train"]["env_steps_per_s"]
        .as_f64()
        .expect("number");
    assert!(steps_per_s > 0.0);
    // A threshold below every possible return is reached after the first iteration with
    // finished episodes
    assert_eq!(printed["solve"]["reached"], true, "{last}");
    // ... and its final policy evaluated on one episode of each environment, in both.
    assert_eq!(printed["solve"]["evaluation"]["episodes"], 8, "{last}");
    assert!(stdout.contains("final policy, deterministic"), "{stdout}");
    assert_eq!(printed["matmul"]["size"], 64);
    // Kernel launches are counted on the CubeCL backends only
    assert!(printed["sim"]["launches_per_env_step"].is_null(), "{last}");
    assert!(printed["train"]["launches_per_iter"].is_null(), "{last}");
    assert!(!stdout.contains("kernel launches"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// On wgpu (Mesa's lavapipe in CI) the report counts kernel launches, and its numbers add up.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_bench_counts_kernel_launches() {
    let dir = dir("wgpu");
    let config = dir.join("small.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "--backend", "wgpu", "--config"])
        .arg(&config)
        .args([
            "--iterations",
            "1",
            "--warmup",
            "1",
            "--sim-steps",
            "2",
            "--matmul-size",
            "16",
        ])
        .output()
        .expect("run xtask");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("kernel launches"), "{stdout}");
    let last = stdout.lines().last().expect("a JSON line");
    let r: serde_json::Value = serde_json::from_str(last).expect("JSON on the last line");
    let number = |v: &serde_json::Value| v.as_f64().unwrap_or_else(|| panic!("{v} in {last}"));
    let train = &r["train"];
    assert!(number(&r["sim"]["launches_per_env_step"]) >= 1.0, "{last}");
    let collection = number(&train["collection_launches_per_iter"]);
    let update = number(&train["update_launches_per_iter"]);
    assert!(collection >= 8.0 && update >= 1.0, "{last}");
    assert_eq!(number(&train["launches_per_iter"]), collection + update);
    assert_eq!(number(&train["launches_per_policy_step"]), collection / 8.0);
    let mini_batches = number(&train["mini_batches_per_update"]);
    assert_eq!(
        number(&train["update_launches_per_mini_batch"]),
        update / mini_batches
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_usage_errors_exit_2() {
    let dir = dir("bad");
    let config = dir.join("small.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    for (args, needle) in [
        (vec!["--solve"], "--threshold"),
        (vec!["--iterations", "0"], "--iterations"),
        (vec!["--set", "policy.precision=\"f8\""], "policy.precision"),
    ] {
        let out = bench(&config, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
