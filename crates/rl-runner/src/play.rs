//! Evaluation: run the deterministic (mean-action) policy of a checkpoint on a fixed set of
//! whole episodes.
//!
//! Which episodes are counted matters as much as how many. Environments that start together
//! end their short episodes first, so "the first N episodes to finish" are the shortest ones
//! (a legged robot's falls, acrobot's quick successes), not a sample of the policy's
//! episodes. An evaluation therefore fixes its set before it starts ([`EvalPlan`]): `E`
//! environments, all reset together, each contributing its first `k` episodes, counted
//! whenever they end. Every counted episode is then a fair draw of the policy's episode,
//! whatever its length.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use rl_core::{Observations, Scene, StepOutput, VecEnv};
use rl_export::OnnxRuntime;
use rl_modules::Policy;
use serde::Serialize;

use crate::Error;
use crate::algorithms::load_policy;
use crate::checkpoint::{Checkpoint, resolve_checkpoint};
use crate::config::TrainConfig;
use crate::export::{MANIFEST_FILE, PolicyManifest, host_dones, host_observations};
use crate::render::{RenderOptions, check_target, write_gif};
use crate::stats::{FinishedEpisode, StepRecord, read_finished_episodes, read_floats};
use sim_gpu::legged::env::{TERRAIN_KIND, TERRAIN_LEVEL};

/// What an evaluation runs: actions for observations, told after every step where
/// episodes ended (a recurrent policy forgets those environments' memories there).
pub(crate) trait Actor<B: Backend> {
    /// Actions for `obs`, `[N, A]`.
    fn act(&mut self, obs: &Observations<B>) -> Result<Tensor<B, 2>, Error>;
    /// The environments' answer to the last actions.
    fn stepped(&mut self, step: &StepOutput<B>) -> Result<(), Error>;
    /// Every environment was reset: a new batch of episodes starts.
    fn restart(&mut self) {}
}

impl<B: Backend> Actor<B> for Policy<B> {
    fn act(&mut self, obs: &Observations<B>) -> Result<Tensor<B, 2>, Error> {
        Ok(Policy::act(self, obs)?)
    }

    fn stepped(&mut self, step: &StepOutput<B>) -> Result<(), Error> {
        if self.state().is_some() {
            self.reset(&step.dones());
        }
        Ok(())
    }

    fn restart(&mut self) {
        self.clear();
    }
}

/// A policy without memory, as a function of the observations.
impl<B: Backend, F: FnMut(&Observations<B>) -> Result<Tensor<B, 2>, Error>> Actor<B> for F {
    fn act(&mut self, obs: &Observations<B>) -> Result<Tensor<B, 2>, Error> {
        self(obs)
    }

    fn stepped(&mut self, _step: &StepOutput<B>) -> Result<(), Error> {
        Ok(())
    }
}

/// Optional outputs of [`play`].
#[derive(Debug, Clone, Default)]
pub struct PlayOptions {
    /// `--render`: write environment 0's first episode to this animated GIF.
    pub render: Option<PathBuf>,
    /// How the GIF is drawn.
    pub render_options: RenderOptions,
    /// `--set`: overrides of the run's stored config (`section.key=value`, TOML values).
    pub overrides: Vec<String>,
}

/// Which episodes an evaluation counts: the first `episodes_per_env` episodes of each of
/// `num_envs` environments started together, however long each one lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EvalPlan {
    /// Environments evaluated (all of those stepped).
    pub num_envs: usize,
    /// Whole episodes each environment contributes.
    pub episodes_per_env: usize,
}

impl EvalPlan {
    /// At least `episodes` episodes on at most `max_envs` parallel environments (both taken
    /// as at least 1): `k = ceil(episodes / max_envs)` episodes on each of
    /// `ceil(episodes / k)` environments. The total `k * E` is `episodes` rounded up to a
    /// multiple of `E`, so that every environment contributes the same number: 100 episodes
    /// on up to 1024 environments are 100 x 1, on up to 64 they are 50 x 2, and 10 on up to 4
    /// are 4 x 3 = 12.
    pub fn new(episodes: usize, max_envs: usize) -> Self {
        let episodes = episodes.max(1);
        let episodes_per_env = episodes.div_ceil(max_envs.max(1));
        Self {
            num_envs: episodes.div_ceil(episodes_per_env),
            episodes_per_env,
        }
    }

    /// Episodes counted, `num_envs * episodes_per_env`.
    pub fn episodes(&self) -> usize {
        self.num_envs * self.episodes_per_env
    }
}

/// What an evaluation measured over the episodes of its [`EvalPlan`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Episodes counted (`num_envs * episodes_per_env`).
    pub episodes: usize,
    /// Environments evaluated, all started together.
    pub num_envs: usize,
    /// Whole episodes counted from each environment.
    pub episodes_per_env: usize,
    /// Mean undiscounted return.
    pub mean_return: f64,
    /// Standard deviation of the return over the episodes (`n - 1` in the denominator; 0
    /// for a single episode).
    pub return_std: f64,
    /// Half-width of the 95% confidence interval of `mean_return` (normal approximation,
    /// `1.96 * return_std / sqrt(episodes)`).
    pub return_ci95: f64,
    /// Mean length in steps.
    pub mean_episode_length: f64,
    /// Fraction of the episodes that ended in a terminal state (a fall, a success, leaving
    /// the track) rather than by the time limit.
    pub terminated_fraction: f64,
    /// Mean of each named per-episode term of the task (for example a legged task's
    /// `lin_vel_error`); empty for tasks without terms.
    pub terms: BTreeMap<String, f64>,
    /// Half-width of the 95% confidence interval of each term's mean, as for the return.
    pub terms_ci95: BTreeMap<String, f64>,
    /// On rough terrain: the episodes by the level they ran on, lowest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_terrain_level: Vec<GroupEvaluation>,
    /// On rough terrain: the episodes by the kind of terrain they ran on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_terrain_kind: Vec<GroupEvaluation>,
}

/// The episodes of one group of an [`Evaluation`]: those on one terrain level, or on one
/// kind of terrain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupEvaluation {
    /// The level (`"3"`) or kind (`"stairs_up"`).
    pub group: String,
    /// Episodes in the group.
    pub episodes: usize,
    /// Fraction of them that ended in a terminal state (a fall).
    pub terminated_fraction: f64,
    /// Means of the task's tracking errors over them (`lin_vel_error`, `ang_vel_error`).
    pub errors: BTreeMap<String, f64>,
}

/// What [`play`] measured, and what it read and wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PlayResult {
    /// The measurements.
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// The checkpoint (or, for [`play_onnx`], the ONNX file) evaluated.
    pub checkpoint: String,
    /// The GIF written with `--render`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render: Option<String>,
}

/// Runs the mean action of the policy in `checkpoint` (a file or a run directory) on the
/// episodes of `EvalPlan::new(episodes, num_envs)`, `num_envs` defaulting to the run's: at
/// least `episodes` whole episodes, the same number from every environment evaluated, all
/// started together and each counted whether it ends early or late.
///
/// With `options.render`, also records environment 0's scene after the reset and after
/// every step of its first episode and writes them as an animated GIF; a task with nothing
/// to draw is an error before anything runs.
pub fn play<B: AutodiffBackend>(
    checkpoint: &Path,
    episodes: usize,
    num_envs: Option<usize>,
    seed: Option<u64>,
    options: &PlayOptions,
    device: &B::Device,
) -> Result<PlayResult, Error> {
    check_request(episodes, num_envs, options)?;
    let (path, ckpt, cfg) = read_run(checkpoint, &options.overrides)?;
    let plan = EvalPlan::new(episodes, num_envs.unwrap_or(cfg.env.num_envs));
    let mut env =
        evaluation_env::<B::InnerBackend>(&cfg, plan.num_envs, seed.unwrap_or(cfg.seed), device)?;
    let mut policy = checkpoint_policy::<B>(&path, &ckpt, &cfg, env.spec(), device)?;
    run_play(&cfg, env.as_mut(), plan, &mut policy, &path, options)
}

/// The checkpoint that `checkpoint` (a file or a run directory) names, read, with its
/// stored config and `overrides`.
pub(crate) fn read_run(
    checkpoint: &Path,
    overrides: &[String],
) -> Result<(PathBuf, Checkpoint, TrainConfig), Error> {
    let path = resolve_checkpoint(checkpoint)?;
    let ckpt = Checkpoint::read(&path)?;
    let cfg = TrainConfig::parse(
        &ckpt.header.config,
        &format!("{} (stored config)", path.display()),
        overrides,
    )?;
    Ok((path, ckpt, cfg))
}

/// The inference policy of `ckpt` (read from `path`, a run with config `cfg`) for the task
/// `spec`; errors name the checkpoint.
pub(crate) fn checkpoint_policy<B: AutodiffBackend>(
    path: &Path,
    ckpt: &Checkpoint,
    cfg: &TrainConfig,
    spec: &rl_core::EnvSpec,
    device: &B::Device,
) -> Result<Policy<B::InnerBackend>, Error> {
    load_policy::<B>(
        &cfg.algorithm,
        &cfg.policy,
        spec,
        ckpt.state.policy.as_deref(),
        &ckpt.state.algorithm,
        device,
    )
    .map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Runs the exported policy `onnx` (a `policy.onnx` of `cargo xtask export`) with tract in
/// the task of the config file `config`, on the episodes [`play`] would evaluate, and
/// measures the same quantities. Observations go to the host and actions come back every
/// step, as on a robot's computer.
///
/// A `policy.json` beside the graph is checked against the config (task and observation
/// groups).
///
/// # Errors
/// As [`play`]; also a graph that tract cannot run, or whose inputs or outputs do not fit
/// the task.
pub fn play_onnx<B: Backend>(
    onnx: &Path,
    config: &Path,
    episodes: usize,
    num_envs: Option<usize>,
    seed: Option<u64>,
    options: &PlayOptions,
    device: &B::Device,
) -> Result<PlayResult, Error> {
    check_request(episodes, num_envs, options)?;
    let cfg = TrainConfig::load(config, &options.overrides)?;
    let groups = cfg.policy.obs_groups.policy.clone();
    if let Some(manifest) = read_manifest(onnx)? {
        let theirs = manifest.observation.groups.iter().map(|g| &g.name);
        if manifest.task != cfg.env.task || !theirs.eq(groups.iter()) {
            return Err(Error::Input {
                origin: onnx.display().to_string(),
                message: format!(
                    "the policy was exported from task `{}` reading {:?}; the config `{}` runs \
                     task `{}` reading {groups:?}",
                    manifest.task,
                    manifest
                        .observation
                        .groups
                        .iter()
                        .map(|g| g.name.as_str())
                        .collect::<Vec<_>>(),
                    config.display(),
                    cfg.env.task
                ),
            });
        }
    }
    let plan = EvalPlan::new(episodes, num_envs.unwrap_or(cfg.env.num_envs));
    let mut env = evaluation_env::<B>(&cfg, plan.num_envs, seed.unwrap_or(cfg.seed), device)?;
    let runtime = OnnxRuntime::from_file(onnx, env.num_envs())?;
    let spec = env.spec();
    let sig = runtime.signature();
    let obs_dim = spec.obs_dim(&groups)?;
    let discrete = spec.action_space.is_discrete();
    if sig.obs_dim != obs_dim
        || sig.num_actions != spec.num_actions()
        || sig.choices.is_some() != discrete
    {
        return Err(Error::Input {
            origin: onnx.display().to_string(),
            message: format!(
                "the graph takes {} observation columns and gives {} {} action columns; \
                 task `{}` with policy groups {groups:?} has {obs_dim} and {} {}",
                sig.obs_dim,
                sig.num_actions,
                if sig.choices.is_some() {
                    "discrete"
                } else {
                    "continuous"
                },
                spec.task,
                spec.num_actions(),
                if discrete { "discrete" } else { "continuous" },
            ),
        });
    }
    let mut actor = OnnxActor::<B> {
        runtime,
        groups,
        device: device.clone(),
    };
    run_play(&cfg, env.as_mut(), plan, &mut actor, onnx, options)
}

/// The `policy.json` beside `onnx`, if there is one.
fn read_manifest(onnx: &Path) -> Result<Option<PolicyManifest>, Error> {
    let path = onnx.with_file_name(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path,
                action: "read",
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Input {
            origin: path.display().to_string(),
            message: format!("not a policy.json of cargo xtask export: {e}"),
        })
}

/// An exported policy run by tract: the observations of its groups go to the host, the
/// actions come back to the device.
struct OnnxActor<B: Backend> {
    runtime: OnnxRuntime,
    groups: Vec<String>,
    device: B::Device,
}

impl<B: Backend> Actor<B> for OnnxActor<B> {
    fn act(&mut self, obs: &Observations<B>) -> Result<Tensor<B, 2>, Error> {
        let x = host_observations(obs, &self.groups)?; // [N * D]
        let actions = self.runtime.act(&x)?; // [N * A]
        let n = self.runtime.batch();
        let a = actions.len() / n.max(1);
        Ok(Tensor::from_data(
            TensorData::new(actions, [n, a]),
            &self.device,
        ))
    }

    fn stepped(&mut self, step: &StepOutput<B>) -> Result<(), Error> {
        if self.runtime.signature().memory.is_some() {
            self.runtime.reset(&host_dones(step)?);
        }
        Ok(())
    }

    fn restart(&mut self) {
        self.runtime.clear();
    }
}

/// Checks the arguments shared by [`play`] and [`play_onnx`].
fn check_request(
    episodes: usize,
    num_envs: Option<usize>,
    options: &PlayOptions,
) -> Result<(), Error> {
    if episodes == 0 {
        return Err(Error::Invalid {
            origin: "--episodes".into(),
            field: "episodes".into(),
            message: "expected at least 1".into(),
        });
    }
    if num_envs == Some(0) {
        return Err(Error::Invalid {
            origin: "--num-envs".into(),
            field: "env.num_envs".into(),
            message: "expected at least 1, got 0".into(),
        });
    }
    if let Some(render) = &options.render {
        check_target(render)?;
    }
    Ok(())
}

/// Evaluates `actor` on `plan` in `env` (of config `cfg`), writes the GIF of `options`,
/// and reports what `source` (the checkpoint or graph) did.
fn run_play<B: Backend>(
    cfg: &TrainConfig,
    env: &mut dyn VecEnv<B>,
    plan: EvalPlan,
    actor: &mut impl Actor<B>,
    source: &Path,
    options: &PlayOptions,
) -> Result<PlayResult, Error> {
    let record = options.render.as_ref().map(|_| cfg.env.task.as_str());
    let (evaluation, scenes) = evaluate(env, plan, actor, record)?;
    let render = match &options.render {
        Some(path) => {
            write_gif(path, &scenes, &options.render_options)?;
            Some(path.display().to_string())
        }
        None => None,
    };
    Ok(PlayResult {
        evaluation,
        checkpoint: source.display().to_string(),
        render,
    })
}

/// The environments of an evaluation of a run with config `cfg`: `num_envs` of the run's
/// task, seeded apart from training (evaluation episodes start from other states than
/// training's), with whole episodes (a legged task's counters start at zero, not spread
/// over the episode as in training).
pub(crate) fn evaluation_env<B: Backend>(
    cfg: &TrainConfig,
    num_envs: usize,
    seed: u64,
    device: &B::Device,
) -> Result<Box<dyn VecEnv<B>>, Error> {
    let env_seed = seed.wrapping_add(0x005e_ed0f_e7a1);
    Ok(sim_gpu::make_env::<B>(
        &cfg.env.task,
        num_envs,
        env_seed,
        &cfg.env.settings,
        sim_gpu::Purpose::Evaluation,
        device,
    )?)
}

/// Resets every environment of `env` (and `policy`'s memory), runs `policy` until environments `0..plan.num_envs`
/// have each finished `plan.episodes_per_env` episodes, and measures exactly those: the
/// first `episodes_per_env` episodes of each of those environments, whenever they end.
/// Episodes after those, and those of environments past `plan.num_envs` (`env` is built
/// with exactly that many where it can be), run with the batch but are not counted.
///
/// With `record` (the task's name, for the error when it has nothing to draw), also returns
/// environment 0's scenes after the reset and after every step of its first episode.
pub(crate) fn evaluate<B: Backend>(
    env: &mut dyn VecEnv<B>,
    plan: EvalPlan,
    policy: &mut impl Actor<B>,
    record: Option<&str>,
) -> Result<(Evaluation, Vec<Scene>), Error> {
    let n = plan.num_envs.max(1);
    if env.num_envs() < n {
        return Err(Error::Invalid {
            origin: "play".into(),
            field: "env.num_envs".into(),
            message: format!(
                "{n} environments to evaluate, but the batch has {}",
                env.num_envs()
            ),
        });
    }
    let k = plan.episodes_per_env.max(1);
    let wanted = n * k;
    let max_len = env.spec().max_episode_length.max(1);
    // Every episode ends by its time limit, so k episodes take at most k * max_len steps;
    // one more episode's worth covers the recording.
    let max_steps = max_len * (k + 1);
    let chunk = max_len.min(256);
    let mut counted: Vec<FinishedEpisode> = Vec::with_capacity(wanted);
    let mut per_env = vec![0usize; n];
    let mut term_names: Vec<String> = Vec::new();
    let mut obs = env.reset();
    policy.restart();
    let mut scenes: Vec<Scene> = Vec::new();
    // The task's name while environment 0's first episode is being recorded.
    let mut recording = record;
    if let Some(task) = recording {
        scenes.push(scene_of_env_0(&*env, task)?);
    }
    let mut steps = 0;
    while (counted.len() < wanted || recording.is_some()) && steps < max_steps {
        let mut rows = Vec::with_capacity(chunk);
        for _ in 0..chunk {
            let actions = policy.act(&obs)?;
            let step = env.step(actions)?;
            policy.stepped(&step)?;
            if term_names.len() != step.episode.terms.len() {
                term_names = step.episode.terms.keys().cloned().collect();
            }
            rows.push(StepRecord::episodes(&step));
            if let Some(task) = recording {
                // After env 0's episode ends, its scene is the next episode's start.
                if env_0_done(&step)? {
                    recording = None;
                } else {
                    scenes.push(scene_of_env_0(&*env, task)?);
                    recording = recording.filter(|_| scenes.len() <= max_len);
                }
            }
            obs = step.observations;
        }
        steps += chunk;
        for episode in read_finished_episodes(rows, &term_names, "evaluation episodes")? {
            if let Some(count) = per_env.get_mut(episode.env).filter(|c| **c < k) {
                *count += 1;
                counted.push(episode);
            }
        }
    }
    if counted.len() < wanted {
        return Err(Error::Invalid {
            origin: "play".into(),
            field: "episodes".into(),
            message: format!(
                "only {} of {wanted} evaluation episodes ended within {steps} steps, \
                 though the task's episodes last at most {max_len} steps",
                counted.len()
            ),
        });
    }
    Ok((summarize(&counted, plan), scenes))
}

/// The statistics of the counted `episodes` of `plan`.
fn summarize(episodes: &[FinishedEpisode], plan: EvalPlan) -> Evaluation {
    let returns: Vec<f64> = episodes.iter().map(|e| e.episode_return).collect();
    let lengths: Vec<f64> = episodes.iter().map(|e| e.length).collect();
    let returns = Sample::of(&returns);
    let mut terms: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for episode in episodes {
        for (name, value) in &episode.terms {
            terms.entry(name).or_default().push(*value);
        }
    }
    let terms: BTreeMap<String, Sample> = terms
        .into_iter()
        .map(|(name, values)| (name.to_string(), Sample::of(&values)))
        .collect();
    let terminated = episodes.iter().filter(|e| e.terminated).count();
    let level_name = |v: f64| Some(format!("{}", v.round()));
    let kind_name = |v: f64| sim_gpu::legged::terrain::kind_name(v).map(str::to_string);
    Evaluation {
        by_terrain_level: breakdown(episodes, TERRAIN_LEVEL, level_name),
        by_terrain_kind: breakdown(episodes, TERRAIN_KIND, kind_name),
        episodes: episodes.len(),
        num_envs: plan.num_envs,
        episodes_per_env: plan.episodes_per_env,
        mean_return: returns.mean,
        return_std: returns.std,
        return_ci95: returns.ci95(),
        mean_episode_length: Sample::of(&lengths).mean,
        terminated_fraction: terminated as f64 / episodes.len().max(1) as f64,
        terms_ci95: terms.iter().map(|(k, s)| (k.clone(), s.ci95())).collect(),
        terms: terms.into_iter().map(|(k, s)| (k, s.mean)).collect(),
    }
}

/// The `episodes` grouped by the value of their term `key` (none without it), each group
/// named by `name` and ordered by the value.
fn breakdown(
    episodes: &[FinishedEpisode],
    key: &str,
    name: impl Fn(f64) -> Option<String>,
) -> Vec<GroupEvaluation> {
    let mut groups: BTreeMap<i64, Vec<&FinishedEpisode>> = BTreeMap::new();
    for episode in episodes {
        if let Some(&(_, v)) = episode.terms.iter().find(|(t, _)| t == key) {
            groups.entry(v.round() as i64).or_default().push(episode);
        }
    }
    groups
        .into_iter()
        .map(|(value, members)| {
            let mut errors: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for e in &members {
                for (term, v) in e.terms.iter().filter(|(t, _)| t.ends_with("_error")) {
                    errors.entry(term.clone()).or_default().push(*v);
                }
            }
            let count = members.len();
            GroupEvaluation {
                group: name(value as f64).unwrap_or_else(|| value.to_string()),
                episodes: count,
                terminated_fraction: members.iter().filter(|e| e.terminated).count() as f64
                    / count as f64,
                errors: errors
                    .into_iter()
                    .map(|(k, v)| (k, Sample::of(&v).mean))
                    .collect(),
            }
        })
        .collect()
}

/// Mean and standard deviation of a sample.
struct Sample {
    n: usize,
    mean: f64,
    std: f64,
}

impl Sample {
    fn of(values: &[f64]) -> Self {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n.max(1) as f64;
        let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        let std = if n > 1 {
            (ss / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Self { n, mean, std }
    }

    /// Half-width of the normal-approximation 95% confidence interval of the mean.
    fn ci95(&self) -> f64 {
        1.96 * self.std / (self.n.max(1) as f64).sqrt()
    }
}

/// Environment 0's scene now; an error naming the task when it has nothing to draw.
fn scene_of_env_0<B: Backend>(env: &dyn VecEnv<B>, task: &str) -> Result<Scene, Error> {
    env.scene(0)?.ok_or_else(|| Error::Input {
        origin: "--render".into(),
        message: format!(
            "task `{task}` has nothing to render (it describes no bodies to draw); \
             leave out --render for it"
        ),
    })
}

/// Whether environment 0's episode ended on `step` (reads one flag back).
fn env_0_done<B: Backend>(step: &StepOutput<B>) -> Result<bool, Error> {
    let done = step.dones().float().slice(0..1); // [1]
    let done = read_floats(done, "environment 0's done flag")?;
    Ok(done.first().is_some_and(|&d| d > 0.5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::{Bool, TensorData};
    use rl_core::{ActionSpace, EnvSnapshot, EnvSpec, EpisodeInfo};

    type B = Flex;

    /// Episodes of known, varied length: environment `i`'s episode `j` is short (it
    /// terminates after `SHORT` steps) when `i + j` is even and long (it times out after
    /// `LONG`) when odd. Half the environments start with a short episode, half with a long
    /// one, and every environment alternates; a step's reward is 1, so a return is the
    /// length. Its `episode_id` term is `1000 * i + j`, naming each episode.
    struct Alternating {
        spec: EnvSpec,
        device: burn::tensor::Device<B>,
        /// Steps into the current episode and episodes finished, per environment.
        t: Vec<usize>,
        j: Vec<usize>,
    }

    const SHORT: usize = 3;
    const LONG: usize = 20;

    impl Alternating {
        fn new(num_envs: usize) -> Self {
            Self {
                spec: EnvSpec {
                    task: "alternating".into(),
                    num_envs,
                    obs_groups: [("policy".to_string(), 1)].into(),
                    action_space: ActionSpace::Discrete { n: 2 },
                    max_episode_length: LONG,
                    step_dt: 0.02,
                },
                device: Default::default(),
                t: vec![0; num_envs],
                j: vec![0; num_envs],
            }
        }

        fn length(i: usize, j: usize) -> usize {
            if (i + j).is_multiple_of(2) {
                SHORT
            } else {
                LONG
            }
        }

        fn floats(&self, values: Vec<f32>) -> Tensor<B, 1> {
            let n = values.len();
            Tensor::from_data(TensorData::new(values, [n]), &self.device)
        }

        fn flags(&self, values: Vec<bool>) -> Tensor<B, 1, Bool> {
            let n = values.len();
            Tensor::from_data(TensorData::new(values, [n]), &self.device)
        }
    }

    impl VecEnv<B> for Alternating {
        fn spec(&self) -> &EnvSpec {
            &self.spec
        }

        fn device(&self) -> &burn::tensor::Device<B> {
            &self.device
        }

        fn observations(&self) -> Observations<B> {
            let t = self.t.iter().map(|&t| t as f32).collect::<Vec<_>>();
            let n = t.len();
            let obs = Tensor::from_data(TensorData::new(t, [n, 1]), &self.device);
            Observations::new().with("policy", obs)
        }

        fn step(&mut self, _actions: Tensor<B, 2>) -> rl_core::Result<StepOutput<B>> {
            let final_observations = self.observations();
            let n = self.spec.num_envs;
            let (mut terminated, mut time_outs) = (vec![false; n], vec![false; n]);
            let (mut lengths, mut ids) = (vec![0.0; n], vec![0.0; n]);
            for i in 0..n {
                self.t[i] += 1;
                let length = Self::length(i, self.j[i]);
                if self.t[i] == length {
                    terminated[i] = length == SHORT;
                    time_outs[i] = length == LONG;
                    lengths[i] = length as f32;
                    ids[i] = (1000 * i + self.j[i]) as f32;
                    self.t[i] = 0;
                    self.j[i] += 1;
                }
            }
            Ok(StepOutput {
                observations: self.observations(),
                rewards: self.floats(vec![1.0; n]),
                terminated: self.flags(terminated),
                time_outs: self.flags(time_outs),
                final_observations,
                episode: EpisodeInfo {
                    returns: self.floats(lengths.clone()),
                    lengths: self.floats(lengths),
                    terms: [("episode_id".to_string(), self.floats(ids))].into(),
                },
            })
        }

        fn reset(&mut self) -> Observations<B> {
            self.t.fill(0);
            self.j.fill(0);
            self.observations()
        }

        fn save_state(&self) -> rl_core::Result<EnvSnapshot> {
            Err(rl_core::Error::Invalid("not saved in this test".into()))
        }

        fn load_state(&mut self, _snapshot: &EnvSnapshot) -> rl_core::Result<()> {
            Err(rl_core::Error::Invalid("not loaded in this test".into()))
        }
    }

    /// Evaluates `episodes` on a run with `max_envs` environments. The batch is as large as
    /// the run's, so that the environments that finish first have others to overtake.
    fn evaluate_alternating(episodes: usize, max_envs: usize) -> (EvalPlan, Evaluation) {
        let plan = EvalPlan::new(episodes, max_envs);
        let mut env = Alternating::new(max_envs);
        let device = Default::default();
        let (evaluation, scenes) = evaluate(
            &mut env,
            plan,
            &mut |obs: &Observations<B>| {
                Ok(Tensor::<B, 2>::zeros(
                    [obs.get("policy")?.dims()[0], 1],
                    &device,
                ))
            },
            None,
        )
        .expect("evaluate");
        assert!(scenes.is_empty());
        (plan, evaluation)
    }

    #[test]
    fn plans_cover_the_episodes_asked_for_with_the_same_number_per_environment() {
        let cases = [
            // (episodes, max envs) -> (envs, episodes each)
            ((20, 1024), (20, 1)),
            ((256, 256), (256, 1)),
            ((100, 64), (50, 2)),
            ((10, 4), (4, 3)),
            ((101, 64), (51, 2)),
            ((1, 1), (1, 1)),
            ((7, 1), (1, 7)),
            ((0, 0), (1, 1)),
        ];
        for ((episodes, max_envs), (num_envs, per_env)) in cases {
            let plan = EvalPlan::new(episodes, max_envs);
            assert_eq!(
                (plan.num_envs, plan.episodes_per_env),
                (num_envs, per_env),
                "{episodes} episodes on up to {max_envs} environments"
            );
            assert!(plan.num_envs <= max_envs.max(1));
            // At least what was asked for, and less than one more episode per environment.
            assert!(plan.episodes() >= episodes);
            assert!(plan.episodes() < episodes.max(1) + plan.num_envs);
        }
    }

    /// The first N episodes to finish are the short ones: counting them, as `play` did,
    /// reports a mean return of 3 here, where the true mean is 11.5.
    #[test]
    fn the_mean_is_the_true_mean_for_any_episodes_and_num_envs() {
        let true_mean = (SHORT + LONG) as f64 / 2.0;
        for episodes in [1, 2, 7, 20, 64, 100, 101] {
            for max_envs in [1, 3, 20, 64, 256] {
                let (plan, eval) = evaluate_alternating(episodes, max_envs);
                let what = format!("--episodes {episodes} --num-envs {max_envs}: {eval:?}");
                assert_eq!(eval.episodes, plan.episodes(), "{what}");
                assert_eq!(eval.num_envs, plan.num_envs, "{what}");
                assert_eq!(eval.episodes_per_env, plan.episodes_per_env, "{what}");
                // Exactly the first k episodes of every environment were counted: their
                // ids sum to sum_i sum_j (1000 i + j).
                let (e, k) = (plan.num_envs as f64, plan.episodes_per_env as f64);
                let ids = 1000.0 * k * e * (e - 1.0) / 2.0 + e * k * (k - 1.0) / 2.0;
                let id_sum = eval.terms["episode_id"] * eval.episodes as f64;
                assert!((id_sum - ids).abs() <= 1e-9 * ids.max(1.0), "{what}");
                // Half of the counted episodes are short, give or take the one left over
                // when their number is odd: the mean is the true mean, up to that one.
                let shorts = (0..plan.num_envs)
                    .flat_map(|i| (0..plan.episodes_per_env).map(move |j| (i, j)))
                    .filter(|&(i, j)| Alternating::length(i, j) == SHORT)
                    .count();
                let n = eval.episodes as f64;
                let exact = (shorts * SHORT) as f64 / n + (n - shorts as f64) * LONG as f64 / n;
                assert!((eval.mean_return - exact).abs() < 1e-9, "{what}");
                let slack = (LONG - SHORT) as f64 / (2.0 * n);
                assert!(
                    (eval.mean_return - true_mean).abs() <= slack + 1e-9,
                    "{what}: true mean {true_mean}"
                );
                assert_eq!(eval.mean_episode_length, eval.mean_return, "{what}");
                assert!((eval.terminated_fraction - shorts as f64 / n).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn the_spread_and_the_terminations_are_reported() {
        // 4 environments x 1 episode: lengths 3, 20, 3, 20.
        let (_, eval) = evaluate_alternating(4, 4);
        assert_eq!(eval.mean_return, 11.5);
        // Sample standard deviation: sqrt(4 * 8.5^2 / 3).
        let std = (4.0 * 8.5f64.powi(2) / 3.0).sqrt();
        assert!((eval.return_std - std).abs() < 1e-9, "{eval:?}");
        assert!(
            (eval.return_ci95 - 1.96 * std / 2.0).abs() < 1e-9,
            "{eval:?}"
        );
        assert_eq!(eval.terminated_fraction, 0.5);
        assert!(eval.terms_ci95["episode_id"] > 0.0);
        // One episode has no spread.
        let (_, one) = evaluate_alternating(1, 1);
        assert_eq!((one.mean_return, one.return_std), (SHORT as f64, 0.0));
        assert_eq!(one.terminated_fraction, 1.0);
    }

    #[test]
    fn a_batch_smaller_than_the_plan_is_an_error() {
        let mut env = Alternating::new(2);
        let device = Default::default();
        let err = evaluate(
            &mut env,
            EvalPlan::new(3, 3),
            &mut |_: &Observations<B>| Ok(Tensor::<B, 2>::zeros([2, 1], &device)),
            None,
        )
        .expect_err("3 environments asked of 2");
        assert!(err.to_string().contains("3 environments"), "{err}");
    }

    #[test]
    fn terms_are_averaged_over_the_episodes() {
        let episode = |error: f64| FinishedEpisode {
            env: 0,
            terminated: false,
            episode_return: 0.0,
            length: 1.0,
            terms: vec![
                ("lin_vel_error".to_string(), error),
                ("rew_alive".to_string(), 1.0),
            ],
        };
        let plan = EvalPlan::new(3, 3);
        let eval = summarize(&[episode(0.5), episode(0.25), episode(0.0)], plan);
        assert_eq!(eval.terms.len(), 2);
        assert_eq!(eval.terms["lin_vel_error"], 0.25);
        assert_eq!(eval.terms["rew_alive"], 1.0);
        assert_eq!(eval.terms_ci95["rew_alive"], 0.0);
        assert!(summarize(&[], plan).terms.is_empty());
    }

    #[test]
    fn rough_terrain_episodes_are_broken_down_by_level_and_kind() {
        let episode = |level: f64, kind: f64, error: f64, fell: bool| FinishedEpisode {
            env: 0,
            terminated: fell,
            episode_return: 0.0,
            length: 1.0,
            terms: vec![
                ("lin_vel_error".to_string(), error),
                ("rew_alive".to_string(), 1.0),
                (TERRAIN_LEVEL.to_string(), level),
                (TERRAIN_KIND.to_string(), kind),
            ],
        };
        // Levels 0, 0, 3 and kinds 2 (stairs_up), 4 (discrete), 2.
        let episodes = [
            episode(0.0, 2.0, 0.1, false),
            episode(0.0, 4.0, 0.3, true),
            episode(3.0, 2.0, 0.5, false),
        ];
        let eval = summarize(&episodes, EvalPlan::new(3, 3));
        let levels: Vec<(&str, usize, f64, f64)> = eval
            .by_terrain_level
            .iter()
            .map(|g| {
                (
                    g.group.as_str(),
                    g.episodes,
                    g.terminated_fraction,
                    g.errors["lin_vel_error"],
                )
            })
            .collect();
        assert_eq!(levels, [("0", 2, 0.5, 0.2), ("3", 1, 0.0, 0.5)]);
        let kinds: Vec<(&str, usize)> = eval
            .by_terrain_kind
            .iter()
            .map(|g| (g.group.as_str(), g.episodes))
            .collect();
        assert_eq!(kinds, [("stairs_up", 2), ("discrete", 1)]);
        assert!(!eval.by_terrain_level[0].errors.contains_key("rew_alive"));
        // Without the terms (a plane, a classic task) there is no breakdown.
        let plain = FinishedEpisode {
            terms: vec![("lin_vel_error".to_string(), 0.1)],
            ..episode(0.0, 0.0, 0.0, false)
        };
        assert!(
            summarize(&[plain], EvalPlan::new(1, 1))
                .by_terrain_level
                .is_empty()
        );
    }

    #[test]
    fn a_recurrent_policy_forgets_the_environments_whose_episode_ended() {
        use burn::backend::Autodiff;
        use rl_modules::{ActorCriticModel, ModelClass, PolicyConfig, RnnModel};
        let device = Default::default();
        let spec = EnvSpec {
            task: "test".into(),
            num_envs: 3,
            obs_groups: BTreeMap::from([("policy".to_string(), 2)]),
            action_space: ActionSpace::Box {
                low: vec![-1.0],
                high: vec![1.0],
            },
            max_episode_length: 10,
            step_dt: 0.1,
        };
        let cfg = PolicyConfig {
            class: ModelClass::Rnn,
            rnn_hidden_dim: Some(4),
            actor_hidden_dims: vec![4],
            critic_hidden_dims: vec![4],
            ..Default::default()
        };
        let model = RnnModel::<Autodiff<B>>::new(&cfg, &spec, 1, &device).expect("model");
        let mut policy = model.policy();
        let obs = Observations::new().with("policy", Tensor::<B, 2>::ones([3, 2], &device));
        Actor::act(&mut policy, &obs).expect("act");
        let flags =
            |v: Vec<bool>| Tensor::<B, 1, Bool>::from_data(TensorData::new(v, [3]), &device);
        let step = StepOutput {
            observations: obs.clone(),
            rewards: Tensor::zeros([3], &device),
            terminated: flags(vec![false, true, false]),
            time_outs: flags(vec![false, false, true]),
            final_observations: obs,
            episode: EpisodeInfo {
                returns: Tensor::zeros([3], &device),
                lengths: Tensor::zeros([3], &device),
                terms: BTreeMap::new(),
            },
        };
        policy.stepped(&step).expect("stepped");
        let state = policy.state().expect("a state").clone(); // [1, 3, 8]
        let rows: Vec<f32> = state.into_data().to_vec().expect("f32");
        let (kept, ended) = (&rows[..8], &rows[8..]);
        assert!(kept.iter().any(|&v| v != 0.0), "{rows:?}");
        assert!(
            ended.iter().all(|&v| v == 0.0),
            "terminated and timed out: {rows:?}"
        );
        policy.restart();
        assert!(policy.state().is_none());
    }
}
