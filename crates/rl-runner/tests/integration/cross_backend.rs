//! One seed, one run on every backend: the initial weights and every other random number
//! are drawn on the host, so a seeded run starts from the same network on `flex` and
//! `ndarray` and its first iteration logs the same numbers (to float rounding: the backends'
//! matrix products sum in different orders); a checkpoint written on one backend resumes
//! and plays on the other.

use std::path::Path;

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::AutodiffBackend;
use rl_runner::{ConsoleMode, PlayOptions, TrainRequest, checkpoint_path, train};
use serde_json::Value;

use crate::common::{checkpoint_weights, close_within, request};

type F = Autodiff<Flex>;
type N = Autodiff<NdArray>;

/// Continuous cart-pole with both normalisers; 32 steps, so that episodes end in the first
/// iteration and its mean reward is logged.
const CARTPOLE: &str = r#"
[env]
task = "cartpole"
num_envs = 16
[algorithm]
class = "ppo"
num_mini_batches = 2
num_learning_epochs = 2
[policy]
actor_hidden_dims = [32, 32]
critic_hidden_dims = [32, 32]
actor_obs_normalization = true
critic_obs_normalization = true
[runner]
num_steps_per_env = 32
save_interval = 2
"#;

/// Trains `iterations` of [`CARTPOLE`] with `seed` on `B` and returns the run directory.
fn train_on<B: AutodiffBackend>(
    dir: &Path,
    run: &str,
    iterations: usize,
    seed: u64,
) -> std::path::PathBuf {
    let config = dir.join("cartpole.toml");
    std::fs::write(&config, CARTPOLE).expect("config");
    let mut request = request(&config, &dir.join("logs"), run, iterations);
    request.seed = Some(seed);
    train::<B>(&request, &Default::default(), |_| {})
        .expect("train")
        .run_dir
}

/// The rows of `metrics.jsonl` without the keys that measure time.
fn metric_rows(run_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("json");
            let row = v.as_object_mut().expect("object");
            row.retain(|k, _| !k.starts_with("Perf/") && k != "wall_s");
            v
        })
        .collect()
}

/// Iteration 0 of one seed on flex and on ndarray: the same rollout (rewards, episode
/// lengths) and the same update to float rounding. Every number agrees to a relative 1e-4;
/// the absolute 1e-5 is for the surrogate loss, a mean of terms of order one (normalised
/// advantages times probability ratios) that cancel to about 1e-3, where the backends'
/// rounding (about 1e-6 here) is a larger relative part.
#[test]
fn a_seeded_run_logs_the_same_first_iteration_on_flex_and_ndarray() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let flex = metric_rows(&train_on::<F>(tmp.path(), "flex", 1, 3));
    let ndarray = metric_rows(&train_on::<N>(tmp.path(), "ndarray", 1, 3));
    assert_eq!(flex.len(), 1);
    for key in [
        "Train/mean_reward",
        "Loss/value",
        "Loss/surrogate",
        "Loss/entropy",
    ] {
        assert!(
            flex[0][key].as_f64().is_some(),
            "{key} logged: {:?}",
            flex[0]
        );
    }
    for key in ["Train/mean_reward", "Train/mean_episode_length"] {
        assert_eq!(flex[0][key], ndarray[0][key], "{key}: the same episodes");
    }
    assert!(
        close_within(&flex, &ndarray, 1e-4, 1e-5),
        "one seed, two backends: iteration 0 differs\nflex    {:?}\nndarray {:?}",
        flex[0],
        ndarray[0]
    );
    // The tolerance is far tighter than what another start gives.
    let other = metric_rows(&train_on::<N>(tmp.path(), "other", 1, 4));
    assert!(!close_within(&flex, &other, 1e-4, 1e-5), "{other:?}");
}

#[test]
fn a_checkpoint_written_on_flex_resumes_and_plays_on_ndarray() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = train_on::<F>(tmp.path(), "run", 2, 3);
    let saved = checkpoint_path(&run_dir, 2);
    // The weights load bit for bit on either backend.
    let weights = checkpoint_weights::<F>(&saved);
    assert!(!weights.is_empty());
    assert_eq!(checkpoint_weights::<N>(&saved), weights);

    // Resume on ndarray for one more iteration.
    let resume = TrainRequest {
        resume: Some(run_dir.clone()),
        max_iterations: Some(3),
        console: Some(ConsoleMode::Off),
        ..Default::default()
    };
    let device = Default::default();
    let summary = train::<N>(&resume, &device, |d| assert_eq!(d, run_dir)).expect("resume");
    assert_eq!(summary.iterations, 3);
    let rows = metric_rows(&run_dir);
    let iterations: Vec<u64> = rows
        .iter()
        .map(|r| r["iteration"].as_u64().expect("iteration"))
        .collect();
    assert_eq!(iterations, vec![0, 1, 2]);
    assert!(
        rows[2]["Loss/value"].as_f64().is_some_and(f64::is_finite),
        "{:?}",
        rows[2]
    );
    // The ndarray checkpoint reads back on flex, and training moved the weights.
    let resumed = checkpoint_path(&run_dir, 3);
    let trained = checkpoint_weights::<F>(&resumed);
    assert_eq!(checkpoint_weights::<N>(&resumed), trained);
    assert_ne!(trained, weights, "the resumed iteration trained");

    // Play the flex checkpoint on ndarray: 8 episodes on 4 environments.
    let options = PlayOptions::default();
    let result =
        rl_runner::play::<N>(&saved, 8, Some(4), Some(1), &options, &device).expect("play");
    let eval = &result.evaluation;
    assert_eq!((eval.episodes, eval.num_envs), (8, 4));
    // Cart-pole's return equals its length, between 1 and 500.
    assert_eq!(eval.mean_return, eval.mean_episode_length);
    assert!((1.0..=500.0).contains(&eval.mean_return), "{result:?}");
}
