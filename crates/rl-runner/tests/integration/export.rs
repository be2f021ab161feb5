//! `export` and `play --onnx`: a trained policy exported as ONNX and run by tract plays its
//! task as the checkpoint does, for an MLP, a recurrent policy and the quadruped; bad graphs
//! and mismatched configs are refused by name.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex};
use rl_runner::{
    MANIFEST_FILE, ONNX_FILE, PlayOptions, PlayResult, PolicyManifest, REFERENCE_FILE,
    SAFETENSORS_FILE, export, play, play_onnx, train,
};

use crate::common::request;

type F = Autodiff<Flex>;

/// Cart-pole with both normalisers.
const CARTPOLE: &str = r#"
[env]
task = "cartpole"
num_envs = 16
[algorithm]
class = "ppo"
num_mini_batches = 2
[policy]
actor_hidden_dims = [16, 16]
critic_hidden_dims = [16]
actor_obs_normalization = true
critic_obs_normalization = true
[runner]
num_steps_per_env = 16
save_interval = 2
"#;

/// Cart-pole without velocities, a 2-layer LSTM in front of the actor.
const CARTPOLE_LSTM: &str = r#"
[env]
task = "cartpole"
num_envs = 16
observe = [0, 2]
[algorithm]
class = "ppo"
num_mini_batches = 2
[policy]
class = "rnn"
rnn_type = "lstm"
rnn_hidden_dim = 8
rnn_num_layers = 2
actor_hidden_dims = [16]
critic_hidden_dims = [16]
actor_obs_normalization = true
obs_groups = { policy = ["policy"], critic = ["critic"] }
[runner]
num_steps_per_env = 16
save_interval = 2
"#;

/// The quadruped: 8 robots, 1 s episodes.
const QUADRUPED: &str = r#"
[env]
task = "quadruped_flat"
num_envs = 8
episode_length_s = 1.0
[algorithm]
class = "ppo"
num_mini_batches = 2
num_learning_epochs = 1
[policy]
actor_hidden_dims = [16]
critic_hidden_dims = [16]
actor_obs_normalization = true
obs_groups = { policy = ["policy"], critic = ["critic"] }
[runner]
num_steps_per_env = 8
save_interval = 2
"#;

/// Trains 2 iterations of `text` into `dir` and exports the run to `dir/exported`: the
/// run directory and the export directory.
fn trained_and_exported(dir: &Path, name: &str, text: &str) -> (PathBuf, PathBuf) {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, text).expect("config");
    let run = train::<F>(
        &request(&config, &dir.join("logs"), name, 2),
        &Default::default(),
        |_| {},
    )
    .expect("train")
    .run_dir;
    let out = dir.join(format!("{name}_exported"));
    let report = export::<F>(&run, &out, &Default::default()).expect("export");
    assert!(report.max_action_error <= 1e-5, "{report:?}");
    assert_eq!(report.checked_samples, 256);
    for file in [ONNX_FILE, SAFETENSORS_FILE, MANIFEST_FILE, REFERENCE_FILE] {
        assert!(out.join(file).is_file(), "{file} written");
    }
    (run, out)
}

fn manifest(out: &Path) -> PolicyManifest {
    let text = std::fs::read_to_string(out.join(MANIFEST_FILE)).expect("policy.json");
    serde_json::from_str(&text).expect("a policy manifest")
}

/// `play` of the checkpoint and `play --onnx` of the export, on the same episodes.
fn both(run: &Path, out: &Path, episodes: usize) -> (PlayResult, PlayResult) {
    let opts = PlayOptions::default();
    let dev = Default::default();
    let burn = play::<F>(run, episodes, Some(16), Some(5), &opts, &dev).expect("play");
    let config = run.join("config.toml");
    let onnx = play_onnx::<Flex>(
        &out.join(ONNX_FILE),
        &config,
        episodes,
        Some(16),
        Some(5),
        &opts,
        &dev,
    )
    .expect("play --onnx");
    (burn, onnx)
}

fn assert_same_evaluation(burn: &PlayResult, onnx: &PlayResult) {
    let (a, b) = (&burn.evaluation, &onnx.evaluation);
    assert_eq!(a.episodes, b.episodes);
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-4 * x.abs().max(1.0);
    assert!(close(a.mean_return, b.mean_return), "{a:?}\n{b:?}");
    assert!(
        close(a.mean_episode_length, b.mean_episode_length),
        "{a:?}\n{b:?}"
    );
    assert_eq!(
        a.terms.keys().collect::<Vec<_>>(),
        b.terms.keys().collect::<Vec<_>>()
    );
    for (k, v) in &a.terms {
        assert!(close(*v, b.terms[k]), "{k}: {v} vs {}", b.terms[k]);
    }
}

#[test]
fn an_exported_mlp_plays_cartpole_as_its_checkpoint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (run, out) = trained_and_exported(tmp.path(), "mlp", CARTPOLE);
    let m = manifest(&out);
    assert_eq!(m.task, "cartpole");
    assert_eq!(m.observation.size, 4);
    assert!(m.observation.normalizer_in_graph);
    let names: Vec<&str> = m
        .observation
        .terms
        .iter()
        .map(|t| t.term.name.as_str())
        .collect();
    assert_eq!(names, ["x", "x_dot", "theta", "theta_dot"]);
    assert_eq!(
        (m.action.layout.kind.as_str(), m.action.output.as_str()),
        ("force", "mean")
    );
    assert!(m.recurrent.is_none() && m.robot.is_none());
    let (burn, onnx) = both(&run, &out, 32);
    assert_same_evaluation(&burn, &onnx);
    assert!(onnx.checkpoint.ends_with(ONNX_FILE));
}

#[test]
fn an_exported_lstm_carries_its_state_and_plays_as_its_checkpoint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (run, out) = trained_and_exported(tmp.path(), "lstm", CARTPOLE_LSTM);
    let m = manifest(&out);
    let recurrent = m.recurrent.expect("a recurrent section");
    assert_eq!(
        (recurrent.memory.num_layers, recurrent.memory.hidden_dim),
        (2, 8)
    );
    let inputs: Vec<&str> = m.onnx.inputs.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(inputs, ["obs", "h_in", "c_in"]);
    let outputs: Vec<&str> = m.onnx.outputs.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(outputs, ["actions", "h_out", "c_out"]);
    // The policy sees the cart's position and the pole's angle only.
    let names: Vec<&str> = m
        .observation
        .terms
        .iter()
        .map(|t| t.term.name.as_str())
        .collect();
    assert_eq!(names, ["x", "theta"]);
    // Several episodes per environment: the state is reset between them.
    let (burn, onnx) = both(&run, &out, 48);
    assert_eq!(burn.evaluation.episodes_per_env, 3);
    assert_same_evaluation(&burn, &onnx);
}

#[test]
fn an_exported_quadruped_policy_tracks_as_its_checkpoint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (run, out) = trained_and_exported(tmp.path(), "quadruped", QUADRUPED);
    let m = manifest(&out);
    let robot = m.robot.as_ref().expect("the robot");
    assert_eq!(robot.joint_names.len(), 12);
    assert_eq!(m.action.layout.offset, robot.default_joint_pos);
    assert_eq!(m.action.layout.names, robot.joint_names);
    assert_eq!(m.observation.size, 48);
    assert_eq!((m.control.dt, m.control.frequency_hz), (0.02, 50.0));
    let (burn, onnx) = both(&run, &out, 16);
    assert!(burn.evaluation.terms.contains_key("lin_vel_error"));
    assert_same_evaluation(&burn, &onnx);
}

#[test]
fn graphs_and_configs_that_do_not_fit_are_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (run, out) = trained_and_exported(tmp.path(), "mlp", CARTPOLE);
    let dev = Default::default();
    let opts = PlayOptions::default();
    let config = run.join("config.toml");

    let junk = tmp.path().join("junk.onnx");
    std::fs::write(&junk, b"not a graph").expect("junk");
    let err =
        play_onnx::<Flex>(&junk, &config, 4, Some(4), None, &opts, &dev).expect_err("junk graph");
    assert!(
        err.is_usage() && err.to_string().contains("junk.onnx"),
        "{err}"
    );

    // The cart-pole graph in the pendulum task: the policy.json beside it says so.
    let pendulum = tmp.path().join("pendulum.toml");
    std::fs::write(&pendulum, CARTPOLE.replace("\"cartpole\"", "\"pendulum\"")).expect("cfg");
    let err = play_onnx::<Flex>(
        &out.join(ONNX_FILE),
        &pendulum,
        4,
        Some(4),
        None,
        &opts,
        &dev,
    )
    .expect_err("other task");
    assert!(
        err.is_usage() && err.to_string().contains("task `cartpole`"),
        "{err}"
    );
    // Without the policy.json, the graph's width is checked against the task's.
    let lone = tmp.path().join("lone");
    std::fs::create_dir_all(&lone).expect("dir");
    std::fs::copy(out.join(ONNX_FILE), lone.join(ONNX_FILE)).expect("copy");
    let err = play_onnx::<Flex>(
        &lone.join(ONNX_FILE),
        &pendulum,
        4,
        Some(4),
        None,
        &opts,
        &dev,
    )
    .expect_err("other width");
    assert!(err.to_string().contains("4 observation columns"), "{err}");

    let missing = tmp.path().join("no_such_run");
    assert!(export::<F>(&missing, &out, &dev).is_err());
    // The failed export left the earlier files whole.
    assert!(manifest(&out).task == "cartpole");
}
