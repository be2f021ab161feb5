//! Runs that go wrong: non-finite values from the environment or the update, a stop
//! request, damaged or mismatched checkpoints, and checkpoint pruning. Each must end with a
//! clear error and leave the last good checkpoint intact.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Tensor, TensorData};
use rl_core::{EnvSnapshot, EnvSpec, Observations, StepOutput, VecEnv};
use rl_logger::{ConsoleMode, Logger};
use rl_runner::{
    Checkpoint, Error, OnPolicyRunner, TrainConfig, TrainRequest, checkpoint_path,
    resolve_checkpoint, train,
};

use crate::common::checkpoint_weights;

type B = Autodiff<NdArray>;
type I = NdArray;

const CONFIG: &str = r#"
seed = 3
[env]
task = "cartpole"
num_envs = 8
[algorithm]
class = "ppo"
num_mini_batches = 2
num_learning_epochs = 1
[policy]
actor_hidden_dims = [16]
critic_hidden_dims = [16]
[runner]
num_steps_per_env = 8
max_iterations = 6
save_interval = 1
"#;

/// A change made to the output of one step: `(global step, output) -> output`.
type Hook = Box<dyn FnMut(usize, StepOutput<I>) -> StepOutput<I>>;

/// Cart-pole whose step outputs pass through a hook.
struct Tampered {
    inner: Box<dyn VecEnv<I>>,
    steps: usize,
    hook: Hook,
}

impl VecEnv<I> for Tampered {
    fn spec(&self) -> &EnvSpec {
        self.inner.spec()
    }
    fn device(&self) -> &burn::tensor::Device<I> {
        self.inner.device()
    }
    fn observations(&self) -> Observations<I> {
        self.inner.observations()
    }
    fn step(&mut self, actions: Tensor<I, 2>) -> rl_core::Result<StepOutput<I>> {
        let out = self.inner.step(actions)?;
        let out = (self.hook)(self.steps, out);
        self.steps += 1;
        Ok(out)
    }
    fn reset(&mut self) -> Observations<I> {
        self.inner.reset()
    }
    fn save_state(&self) -> rl_core::Result<EnvSnapshot> {
        self.inner.save_state()
    }
    fn load_state(&mut self, snapshot: &EnvSnapshot) -> rl_core::Result<()> {
        self.inner.load_state(snapshot)
    }
}

fn config() -> TrainConfig {
    TrainConfig::parse(CONFIG, "robustness.toml", &[]).expect("valid config")
}

/// Trains `cfg` on cart-pole with `hook` applied to every step, into `run_dir`.
fn run_tampered(cfg: TrainConfig, run_dir: &Path, hook: Hook) -> Result<(), Error> {
    let device = Default::default();
    let inner = sim_gpu::make_env::<I>(
        "cartpole",
        cfg.env.num_envs,
        7,
        &cfg.env.settings,
        sim_gpu::Purpose::Training,
        &device,
    )?;
    let env = Tampered {
        inner,
        steps: 0,
        hook,
    };
    let mut runner = OnPolicyRunner::<B>::with_env(cfg, Box::new(env), run_dir.into(), &device)?;
    let mut logger = Logger::for_run(run_dir, 6, ConsoleMode::Off)?;
    let result = runner.learn(&mut logger).map(|_| ());
    logger.finish()?;
    result
}

/// `t` with `value` written at `[row, col]`.
fn poke(t: Tensor<I, 2>, row: usize, col: usize, value: f32) -> Tensor<I, 2> {
    let [n, d] = t.dims();
    let mut v: Vec<f32> = t.into_data().to_vec().expect("f32");
    v[row * d + col] = value;
    Tensor::from_data(TensorData::new(v, [n, d]), &Default::default())
}

fn metrics_rows(run_dir: &Path) -> usize {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Asserts the run stopped in iteration 2 with a non-finite value, having kept the
/// checkpoint of iteration 2 (the last good one) untouched, and returns the error text.
fn assert_stopped_in_iteration_2(result: Result<(), Error>, run_dir: &Path) -> String {
    let err = result.expect_err("a non-finite value must stop the run");
    let text = err.to_string();
    let Error::NonFinite {
        iteration,
        last_checkpoint,
        ..
    } = &err
    else {
        panic!("expected Error::NonFinite, got {text}");
    };
    assert_eq!(*iteration, 2, "{text}");
    let good = checkpoint_path(run_dir, 2);
    assert_eq!(last_checkpoint.as_deref(), Some(good.as_path()), "{text}");
    assert!(text.contains("model_2.ckpt"), "{text}");
    assert!(!text.contains('\n'), "one line: {text}");
    Checkpoint::read(&good).expect("the last good checkpoint loads");
    assert!(
        !checkpoint_path(run_dir, 3).exists(),
        "nothing is saved after the bad iteration"
    );
    assert_eq!(resolve_checkpoint(run_dir).expect("latest"), good);
    assert_eq!(metrics_rows(run_dir), 2, "iterations 0 and 1 are logged");
    text
}

#[test]
fn nan_observation_names_iteration_group_step_and_environment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("run");
    // Iteration 2 covers global steps 16..24: poison step 5 of it, environment 3.
    let hook: Hook = Box::new(|step, mut out| {
        if step == 21 {
            let obs = out.observations.get("policy").expect("policy");
            out.observations.insert("policy", poke(obs, 3, 1, f32::NAN));
        }
        out
    });
    let text = assert_stopped_in_iteration_2(run_tampered(config(), &run, hook), &run);
    assert!(text.contains("observation group `policy`"), "{text}");
    assert!(text.contains("step 5 of 8"), "{text}");
    assert!(text.contains("environment 3"), "{text}");
}

#[test]
fn infinite_reward_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("run");
    let hook: Hook = Box::new(|step, mut out| {
        if step == 16 {
            let r = out.rewards.clone().unsqueeze_dim::<2>(1);
            out.rewards = poke(r, 6, 0, f32::INFINITY).squeeze_dim::<1>(1);
        }
        out
    });
    let text = assert_stopped_in_iteration_2(run_tampered(config(), &run, hook), &run);
    assert!(text.contains("the reward"), "{text}");
    assert!(
        text.contains("step 0 of 8") && text.contains("environment 6"),
        "{text}"
    );
}

#[test]
fn overflowing_returns_stop_the_run_at_the_loss() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("run");
    // Finite rewards whose sum overflows: only the update can see it.
    let hook: Hook = Box::new(|step, mut out| {
        if (16..24).contains(&step) {
            out.rewards = out.rewards.mul_scalar(3.0e38);
        }
        out
    });
    let text = assert_stopped_in_iteration_2(run_tampered(config(), &run, hook), &run);
    assert!(text.contains("Loss/"), "{text}");
    assert!(text.contains("the update"), "{text}");
    assert!(
        checkpoint_weights::<B>(&checkpoint_path(&run, 2))
            .iter()
            .flatten()
            .all(|w| w.is_finite()),
        "the last good checkpoint holds the weights from before the bad update"
    );
}

#[test]
fn a_stop_request_finishes_the_iteration_and_saves_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("run");
    let flag = Arc::new(AtomicBool::new(false));
    let mut cfg = config();
    cfg.runner.save_interval = 100;
    let device = Default::default();
    let inner = sim_gpu::make_env::<I>(
        "cartpole",
        cfg.env.num_envs,
        7,
        &cfg.env.settings,
        sim_gpu::Purpose::Training,
        &device,
    )
    .expect("env");
    let raise = flag.clone();
    // The "signal" arrives in the middle of iteration 1.
    let env = Tampered {
        inner,
        steps: 0,
        hook: Box::new(move |step, out| {
            if step == 12 {
                raise.store(true, Ordering::SeqCst);
            }
            out
        }),
    };
    let mut runner =
        OnPolicyRunner::<B>::with_env(cfg, Box::new(env), run.clone(), &device).expect("runner");
    runner.set_stop_flag(flag);
    let mut logger = Logger::for_run(&run, 6, ConsoleMode::Off).expect("logger");
    let err = runner.learn(&mut logger).expect_err("stopped");
    logger.finish().expect("logs");
    let Error::Interrupted {
        iteration,
        checkpoint,
        run_dir,
    } = &err
    else {
        panic!("expected Error::Interrupted, got {err}");
    };
    assert_eq!(*iteration, 2, "iteration 1 is finished before stopping");
    assert_eq!(checkpoint, &checkpoint_path(&run, 2));
    assert_eq!(run_dir, &run);
    assert_eq!(metrics_rows(&run), 2);
    let ckpt = Checkpoint::read(checkpoint).expect("loads");
    assert_eq!(ckpt.header.iteration, 2);
    assert!(err.to_string().contains("--resume"), "{err}");
}

#[test]
fn old_checkpoints_are_pruned_to_keep_checkpoints() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("run");
    let mut cfg = config();
    cfg.runner.keep_checkpoints = 3;
    run_tampered(cfg, &run, Box::new(|_, out| out)).expect("clean run");
    let mut left: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec!["latest", "model_4.ckpt", "model_5.ckpt", "model_6.ckpt"]
    );
    assert_eq!(
        resolve_checkpoint(&run).expect("latest"),
        checkpoint_path(&run, 6)
    );
}

/// A finished run of [`CONFIG`] (2 iterations) through `train`; returns its directory.
fn finished_run(dir: &Path) -> PathBuf {
    let config = dir.join("run.toml");
    std::fs::write(&config, CONFIG).expect("config");
    let request = TrainRequest {
        config: Some(config),
        max_iterations: Some(2),
        log_dir: Some(dir.join("logs")),
        run_name: Some("run".into()),
        console: Some(ConsoleMode::Off),
        ..Default::default()
    };
    train::<B>(&request, &Default::default(), |_| {})
        .expect("train")
        .run_dir
}

fn resume_error(resume: &Path, config: Option<&Path>, overrides: &[&str]) -> String {
    let request = TrainRequest {
        resume: Some(resume.to_path_buf()),
        config: config.map(Path::to_path_buf),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
        max_iterations: Some(3),
        console: Some(ConsoleMode::Off),
        ..Default::default()
    };
    let err = train::<B>(&request, &Default::default(), |_| {})
        .expect_err("the resume must fail")
        .to_string();
    assert!(!err.contains('\n'), "one line: {err}");
    err
}

#[test]
fn damaged_or_mismatched_checkpoints_are_clear_errors_and_stay_untouched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = finished_run(tmp.path());
    let good = checkpoint_path(&run, 2);
    let bytes = std::fs::read(&good).expect("bytes");
    let damaged = tmp.path().join("damaged");
    std::fs::create_dir_all(&damaged).expect("dir");
    let write = |name: &str, b: &[u8]| {
        let p = damaged.join(name);
        std::fs::write(&p, b).expect("write");
        p
    };

    let missing = tmp.path().join("nope.ckpt");
    let e = resume_error(&missing, None, &[]);
    assert!(e.contains("nope.ckpt") && e.contains("no such file"), "{e}");

    let e = resume_error(&write("empty.ckpt", &[]), None, &[]);
    assert!(e.contains("empty.ckpt") && e.contains("empty"), "{e}");

    let e = resume_error(&write("cut.ckpt", &bytes[..bytes.len() / 2]), None, &[]);
    assert!(e.contains("cut.ckpt") && e.contains("truncated"), "{e}");

    let mut flipped = bytes.clone();
    let at = flipped.len() - 100;
    flipped[at] ^= 0x20;
    let e = resume_error(&write("flipped.ckpt", &flipped), None, &[]);
    assert!(e.contains("flipped.ckpt") && e.contains("checksum"), "{e}");

    let e = resume_error(&write("text.ckpt", b"not a checkpoint at all"), None, &[]);
    assert!(e.contains("text.ckpt") && e.contains("magic"), "{e}");

    let empty_run = tmp.path().join("empty_run");
    std::fs::create_dir_all(empty_run.join("checkpoints")).expect("dir");
    let e = resume_error(&empty_run, None, &[]);
    assert!(e.contains("no checkpoints"), "{e}");

    // Another task or network than the checkpoint's.
    let config = tmp.path().join("run.toml");
    let e = resume_error(&run, Some(&config), &["env.task=\"pendulum\""]);
    assert!(e.contains("task") && e.contains("pendulum"), "{e}");
    let e = resume_error(&run, Some(&config), &["policy.actor_hidden_dims=[64]"]);
    assert!(e.contains("[policy]"), "{e}");

    // A checkpoint whose stored config does not describe its weights.
    let mut forged = Checkpoint::read(&good).expect("read");
    forged.header.config = forged
        .header
        .config
        .replace("actor_hidden_dims = [16]", "actor_hidden_dims = [24]");
    assert!(
        forged.header.config.contains("[24]"),
        "the config was edited"
    );
    let forged_path = damaged.join("forged.ckpt");
    forged.write_atomic(&forged_path).expect("write");
    let e = resume_error(&forged_path, None, &[]);
    assert!(
        e.contains("forged.ckpt") && e.contains("parameter shapes"),
        "{e}"
    );

    // None of this touched the run's own checkpoint, which still resumes.
    assert_eq!(std::fs::read(&good).expect("bytes"), bytes);
    let request = TrainRequest {
        resume: Some(run.clone()),
        max_iterations: Some(3),
        console: Some(ConsoleMode::Off),
        ..Default::default()
    };
    let summary = train::<B>(&request, &Default::default(), |_| {}).expect("resume");
    assert_eq!(summary.iterations, 3);
}
