//! The configs under `configs/` load, name registered tasks and train end to end; a discrete
//! and a continuous task train from the same config with only the task changed.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use rl_runner::{ConsoleMode, TrainConfig, TrainRequest, train};

type B = Autodiff<NdArray>;

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

fn shipped_configs() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(configs_dir())
        .expect("configs/ exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
}

/// Trains `config` for two tiny iterations (few environments and steps, the config's own
/// networks and algorithm settings) with `extra` overrides; returns the metrics rows.
fn train_tiny(config: &Path, log_dir: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut overrides: Vec<String> = [
        "env.num_envs=8",
        "runner.num_steps_per_env=4",
        "algorithm.num_mini_batches=2",
        "runner.max_iterations=2",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    overrides.push(format!(
        "logger.log_dir={:?}",
        log_dir.display().to_string()
    ));
    let request = TrainRequest {
        config: Some(config.to_path_buf()),
        overrides,
        console: Some(ConsoleMode::Off),
        ..Default::default()
    };
    let summary = train::<B>(&request, &Default::default(), |_| {})
        .unwrap_or_else(|e| panic!("{}: {e}", config.display()));
    assert_eq!(summary.iterations, 2, "{}", config.display());
    std::fs::read_to_string(summary.run_dir.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json row"))
        .collect()
}

#[test]
fn every_shipped_config_loads_and_names_a_registered_task() {
    let paths = shipped_configs();
    let names: Vec<String> = paths
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_string))
        .collect();
    for task in sim_gpu::TASKS {
        assert!(
            names.iter().any(|n| n == task),
            "no config for `{task}`: {names:?}"
        );
    }
    for path in &paths {
        let cfg = TrainConfig::load(path, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            sim_gpu::TASKS.contains(&cfg.env.task.as_str()),
            "{}: task `{}`",
            path.display(),
            cfg.env.task
        );
    }
}

#[test]
fn every_shipped_config_trains() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for path in shipped_configs() {
        // A robot file is named relative to the workspace root, where `cargo xtask` runs;
        // the tests run in the crate's folder.
        let cfg = TrainConfig::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
        let robot = cfg
            .env
            .settings
            .get("robot")
            .and_then(|r| r.get("urdf"))
            .and_then(|u| u.as_str())
            .map(|u| {
                let abs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(u);
                format!("env.robot.urdf={:?}", abs.display().to_string())
            });
        let extra: Vec<&str> = robot.iter().map(String::as_str).collect();
        let rows = train_tiny(&path, tmp.path(), &extra);
        for row in &rows {
            assert!(
                row["Loss/value"].as_f64().is_some_and(f64::is_finite),
                "{}: {row}",
                path.display()
            );
        }
    }
}

#[test]
fn discrete_and_continuous_cartpole_train_from_one_config() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = configs_dir().join("cartpole.toml");
    let continuous = train_tiny(&config, tmp.path(), &[r#"logger.run_name="box""#]);
    let discrete = train_tiny(
        &config,
        tmp.path(),
        &[
            r#"env.task="cartpole_discrete""#,
            r#"logger.run_name="discrete""#,
        ],
    );
    // The Gaussian policy logs its std; the categorical one has none.
    assert!(continuous[1]["Policy/mean_std"].as_f64().is_some());
    assert!(discrete[1].get("Policy/mean_std").is_none());
    // A categorical policy over 2 choices starts near the uniform distribution's entropy
    // ln 2 = 0.693; the Gaussian's entropy is that of a unit normal, 1.419.
    let entropy = |rows: &[serde_json::Value]| rows[0]["Loss/entropy"].as_f64().expect("entropy");
    assert!(
        (entropy(&discrete) - 2f64.ln()).abs() < 0.05,
        "{discrete:?}"
    );
    assert!((entropy(&continuous) - 1.419).abs() < 0.1, "{continuous:?}");
}
