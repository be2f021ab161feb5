//! The legged task through the runner: its `[env]` settings, per-term episode logs in
//! metrics.jsonl and TensorBoard, an exact resume, `play` with its tracking error and a GIF,
//! and config errors that name the file and the field.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use rl_runner::{ConsoleMode, PlayOptions, TrainConfig, TrainRequest, train};

type B = Autodiff<NdArray>;

/// A tiny quadruped run: 8 robots, 10-step episodes, 2 iterations of 8 steps.
fn write_config(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        r#"
seed = 3
[env]
task = "quadruped_flat"
num_envs = 8
episode_length_s = 0.2
[env.commands]
lin_vel_x = [-0.5, 0.5]
{extra}
[algorithm]
class = "ppo"
num_mini_batches = 2
num_learning_epochs = 1
[policy]
actor_hidden_dims = [16]
critic_hidden_dims = [16]
obs_groups = {{ policy = ["policy"], critic = ["critic"] }}
[runner]
num_steps_per_env = 8
max_iterations = 2
save_interval = 1
[logger]
log_dir = "{}"
experiment_name = "legged"
run_name = "{name}"
"#,
        dir.join("logs").display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

fn metrics(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json row"))
        .collect()
}

fn request(config: PathBuf) -> TrainRequest {
    TrainRequest {
        config: Some(config),
        console: Some(ConsoleMode::Off),
        ..Default::default()
    }
}

#[test]
fn the_quadruped_trains_logs_its_terms_resumes_exactly_and_plays() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let device = Default::default();
    let whole = train::<B>(
        &request(write_config(tmp.path(), "whole", "")),
        &device,
        |_| {},
    )
    .expect("train");
    let rows = metrics(&whole.run_dir);
    assert_eq!(rows.len(), 2);
    for name in [
        "Episode/rew_tracking_lin_vel",
        "Episode/rew_feet_air_time",
        "Episode/lin_vel_error",
    ] {
        let v = rows[1][name].as_f64();
        assert!(v.is_some_and(f64::is_finite), "{name}: {}", rows[1]);
    }
    // TensorBoard has the same tags.
    let events: Vec<u8> = std::fs::read_dir(&whole.run_dir)
        .expect("run dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("tfevents"))
        .flat_map(|e| std::fs::read(e.path()).expect("event file"))
        .collect();
    let tag = b"Episode/rew_tracking_lin_vel";
    assert!(
        events.windows(tag.len()).any(|w| w == tag),
        "no reward term in TensorBoard"
    );

    // One iteration, then a resume to two: the same second iteration as the whole run.
    let mut first = request(write_config(tmp.path(), "split", ""));
    first.max_iterations = Some(1);
    let split = train::<B>(&first, &device, |_| {}).expect("first half");
    let resume = TrainRequest {
        resume: Some(split.run_dir.clone()),
        max_iterations: Some(2),
        console: Some(ConsoleMode::Off),
        ..Default::default()
    };
    train::<B>(&resume, &device, |_| {}).expect("resume");
    let resumed = metrics(&split.run_dir);
    for key in [
        "Loss/value",
        "Loss/surrogate",
        "Train/mean_reward",
        "Episode/lin_vel_error",
    ] {
        assert_eq!(resumed[1][key], rows[1][key], "{key}");
    }

    // play: the tracking error of whole episodes, and one episode drawn.
    let gif = tmp.path().join("walk.gif");
    let options = PlayOptions {
        render: Some(gif.clone()),
        ..PlayOptions::default()
    };
    let result =
        rl_runner::play::<B>(&whole.run_dir, 8, Some(4), None, &options, &device).expect("play");
    let eval = &result.evaluation;
    assert_eq!((eval.episodes, eval.num_envs), (8, 4));
    // Whole episodes: play does not start the counters at random points.
    assert_eq!(eval.mean_episode_length, 10.0);
    assert_eq!(eval.terminated_fraction, 0.0);
    let error = eval.terms["lin_vel_error"];
    assert!(error.is_finite() && error >= 0.0, "{result:?}");
    let bytes = std::fs::read(&gif).expect("gif written");
    assert!(bytes.starts_with(b"GIF89a"));
}

#[test]
fn bad_task_settings_name_the_file_and_the_field() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "[env.rewards.weights]\ntracking_lin_vl = 1.0",
            "env.rewards.weights.tracking_lin_vl",
        ),
        ("[env.actions]\nscael = 0.5", "env.actions.scael"),
        (
            "[env.events.startup]\nfriction = [1.0, 0.5]",
            "env.events.startup.friction",
        ),
    ];
    for (i, (extra, field)) in cases.into_iter().enumerate() {
        // The extra table goes after [env.commands], as a sibling.
        let config = write_config(tmp.path(), &format!("bad{i}"), extra);
        let err = TrainConfig::load(&config, &[])
            .expect_err(field)
            .to_string();
        assert!(err.contains(&config.display().to_string()), "{err}");
        assert!(err.contains(field), "{err}");
    }
    // Overrides reach the task's settings and are checked the same way.
    let config = write_config(tmp.path(), "set", "");
    let cfg = TrainConfig::load(&config, &["env.actions.scale=0.5".into()]).expect("valid");
    assert_eq!(cfg.env.settings["actions"]["scale"].as_float(), Some(0.5));
    let err = TrainConfig::load(&config, &["env.decimation=0".into()])
        .expect_err("decimation 0")
        .to_string();
    assert!(err.contains("env.decimation"), "{err}");
}
