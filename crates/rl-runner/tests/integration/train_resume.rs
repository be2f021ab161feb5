//! A few iterations of training on the CPU, a checkpoint, and a resume that continues the
//! iteration count, the learning rate and the run's files.

use std::path::Path;

use burn::backend::{Autodiff, NdArray};
use rl_runner::{Checkpoint, ConsoleMode, PlayOptions, TrainRequest, checkpoint_path, train};

type B = Autodiff<NdArray>;

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("tiny.toml");
    let text = format!(
        r#"
seed = 5
[env]
task = "cartpole"
num_envs = 16
[algorithm]
class = "ppo"
num_mini_batches = 2
num_learning_epochs = 2
[policy]
actor_hidden_dims = [32]
critic_hidden_dims = [32]
[runner]
num_steps_per_env = 8
max_iterations = 3
save_interval = 2
[logger]
log_dir = "{}"
experiment_name = "it"
run_name = "run"
"#,
        dir.join("logs").display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

fn metrics_iterations(run_dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json row");
            assert!(v["Loss/value"].as_f64().is_some_and(f64::is_finite), "{l}");
            assert!(v["Perf/total_fps"].as_f64().is_some(), "{l}");
            v["iteration"].as_u64().expect("iteration")
        })
        .collect()
}

#[test]
fn train_checkpoint_resume_continues_iterations_and_learning_rate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = write_config(tmp.path());
    let device = Default::default();

    let mut started = None;
    let request = TrainRequest {
        config: Some(config.clone()),
        console: Some(ConsoleMode::Off),
        ..Default::default()
    };
    let first = train::<B>(&request, &device, |d| started = Some(d.to_path_buf())).expect("train");
    let run_dir = started.expect("on_start called");
    assert_eq!(run_dir, first.run_dir);
    assert_eq!(first.iterations, 3);
    assert_eq!(first.total_steps, 3 * 16 * 8);
    assert!(
        checkpoint_path(&run_dir, 2).is_file(),
        "save_interval checkpoint"
    );
    assert!(checkpoint_path(&run_dir, 3).is_file(), "final checkpoint");
    assert!(run_dir.join("config.toml").is_file());
    assert_eq!(metrics_iterations(&run_dir), vec![0, 1, 2]);
    let saved = Checkpoint::read(&checkpoint_path(&run_dir, 3)).expect("checkpoint");
    assert_eq!(saved.header.iteration, 3);
    // The adaptive schedule has moved the learning rate away from its initial 1e-3.
    assert_ne!(saved.header.learning_rate, 1e-3);

    // A second run with the same name must not overwrite the first.
    let again = train::<B>(&request, &device, |_| {});
    assert!(
        again.is_err(),
        "a run directory with checkpoints must not be reused silently"
    );

    // Resume from the run directory up to 5 iterations, with no config file.
    let resume = TrainRequest {
        resume: Some(run_dir.clone()),
        max_iterations: Some(5),
        console: Some(ConsoleMode::Off),
        ..Default::default()
    };
    let second = train::<B>(&resume, &device, |d| assert_eq!(d, run_dir)).expect("resume");
    assert_eq!(second.iterations, 5);
    assert_eq!(second.total_steps, 5 * 16 * 8);
    assert!(second.wall_s > first.wall_s);
    assert_eq!(metrics_iterations(&run_dir), vec![0, 1, 2, 3, 4]);
    let last = Checkpoint::read(&checkpoint_path(&run_dir, 5)).expect("checkpoint 5");
    assert_eq!(last.header.iteration, 5);

    // The first logged iteration after the resume starts from the checkpoint's rate.
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let lr_before = rows[2]["Loss/learning_rate"].as_f64().expect("lr");
    assert_eq!(lr_before, saved.header.learning_rate);
    let lr_after = rows[3]["Loss/learning_rate"].as_f64().expect("lr");
    let ratio = lr_after / lr_before;
    // Each mini-batch changes the rate by at most 1.5x (4 mini-batch steps per update),
    // so a rate restarted from 1e-3 would show up as a jump outside this range.
    assert!(
        (1.0 / 1.5f64.powi(4) - 1e-9..=1.5f64.powi(4) + 1e-9).contains(&ratio),
        "{lr_before} -> {lr_after}"
    );
}

#[test]
fn play_reports_mean_return_of_a_checkpoint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = write_config(tmp.path());
    let request = TrainRequest {
        config: Some(config),
        max_iterations: Some(1),
        console: Some(ConsoleMode::Off),
        ..Default::default()
    };
    let device = Default::default();
    let summary = train::<B>(&request, &device, |_| {}).expect("train");
    let options = PlayOptions::default();
    let result =
        rl_runner::play::<B>(&summary.run_dir, 10, Some(4), None, &options, &device).expect("play");
    // 10 episodes on 4 environments: 3 whole episodes of each.
    let eval = &result.evaluation;
    assert_eq!(
        (eval.episodes, eval.num_envs, eval.episodes_per_env),
        (12, 4, 3)
    );
    // Cart-pole's return equals its length, between 1 and 500.
    assert_eq!(eval.mean_return, eval.mean_episode_length);
    assert!((1.0..=500.0).contains(&eval.mean_return), "{result:?}");
    assert!(
        eval.return_std >= 0.0 && eval.return_ci95 >= 0.0,
        "{result:?}"
    );
    assert!(
        (0.0..=1.0).contains(&eval.terminated_fraction),
        "{result:?}"
    );
    // Cart-pole reports no per-episode terms, and wrote no GIF.
    assert!(eval.terms.is_empty(), "{result:?}");
    assert_eq!(result.render, None);

    // Cart-pole has no bodies to draw: `--render` fails before playing, naming the task.
    let gif = tmp.path().join("cartpole.gif");
    let render = PlayOptions {
        render: Some(gif.clone()),
        ..PlayOptions::default()
    };
    let err = rl_runner::play::<B>(&summary.run_dir, 10, Some(4), None, &render, &device)
        .expect_err("nothing to render");
    assert!(err.to_string().contains("task `cartpole`"), "{err}");
    assert!(err.is_usage(), "{err}");
    assert!(!gif.exists());

    let missing = rl_runner::play::<B>(&tmp.path().join("nope"), 10, None, None, &options, &device);
    assert!(missing.is_err());

    // `--set` overrides the stored config for the evaluation (here the number of
    // environments, which the plan then uses), and an unknown key is an error naming it.
    let two = PlayOptions {
        overrides: vec!["env.num_envs=2".into()],
        ..PlayOptions::default()
    };
    let eval = rl_runner::play::<B>(&summary.run_dir, 4, None, None, &two, &device)
        .expect("play")
        .evaluation;
    assert_eq!((eval.num_envs, eval.episodes_per_env), (2, 2));
    let typo = PlayOptions {
        overrides: vec!["algorithm.gamam=0.9".into()],
        ..PlayOptions::default()
    };
    let err = rl_runner::play::<B>(&summary.run_dir, 4, Some(4), None, &typo, &device)
        .expect_err("unknown key");
    assert!(err.to_string().contains("gamam"), "{err}");
}

#[test]
fn play_reads_the_stored_policy_and_older_checkpoints_without_one_alike() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = write_config(tmp.path());
    let request = TrainRequest {
        config: Some(config),
        max_iterations: Some(2),
        console: Some(ConsoleMode::Off),
        ..Default::default()
    };
    let device = Default::default();
    let summary = train::<B>(&request, &device, |_| {}).expect("train");
    let ckpt = Checkpoint::read(&summary.checkpoint).expect("checkpoint");
    assert!(
        ckpt.state.policy.is_some(),
        "a new checkpoint stores the policy"
    );
    let options = PlayOptions::default();
    let play = |path: &Path| {
        rl_runner::play::<B>(path, 8, Some(8), Some(3), &options, &device)
            .expect("play")
            .evaluation
    };
    let with_policy = play(&summary.checkpoint);

    // A checkpoint as written before the policy was stored on its own: play takes the
    // policy from the algorithm's state and measures the same episodes.
    let mut old = ckpt.clone();
    old.state.policy = None;
    let old_path = tmp.path().join("old.ckpt");
    old.write_atomic(&old_path).expect("write");
    let without = play(&old_path);
    assert_eq!(with_policy.mean_return, without.mean_return);
    assert_eq!(with_policy.mean_episode_length, without.mean_episode_length);

    // A stored policy that is not a policy is a checkpoint error naming the file.
    let mut bad = ckpt;
    bad.state.policy = Some(vec![1, 2, 3]);
    let bad_path = tmp.path().join("bad.ckpt");
    bad.write_atomic(&bad_path).expect("write");
    let err = rl_runner::play::<B>(&bad_path, 8, Some(8), None, &options, &device)
        .expect_err("unreadable policy");
    assert!(err.to_string().contains("bad.ckpt"), "{err}");
    assert!(err.to_string().contains("policy"), "{err}");
}
