//! Evaluation: run the deterministic (mean-action) policy of a checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::{AutodiffBackend, Backend};
use rl_core::{Algorithm, Scene, StepOutput, VecEnv};
use rl_ppo::Ppo;
use serde::Serialize;

use crate::Error;
use crate::checkpoint::{Checkpoint, resolve_checkpoint};
use crate::config::TrainConfig;
use crate::render::{RenderOptions, check_target, write_gif};
use crate::stats::{FinishedEpisode, episode_rows, read_finished_episodes, read_floats};

/// Optional outputs of [`play`].
#[derive(Debug, Clone, Default)]
pub struct PlayOptions {
    /// `--render`: write environment 0's first episode to this animated GIF.
    pub render: Option<PathBuf>,
    /// How the GIF is drawn.
    pub render_options: RenderOptions,
}

/// What an evaluation measured.
#[derive(Debug, Clone, Serialize)]
pub struct PlayResult {
    /// Mean undiscounted return of the evaluated episodes.
    pub mean_return: f64,
    /// Mean length in steps of the evaluated episodes.
    pub mean_episode_length: f64,
    /// Number of episodes evaluated.
    pub episodes: usize,
    /// Mean of each named per-episode term of the task over the evaluated episodes (for
    /// example a legged task's `lin_vel_error`); empty for tasks without terms.
    pub terms: BTreeMap<String, f64>,
    /// The checkpoint evaluated.
    pub checkpoint: String,
    /// The GIF written with `--render`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render: Option<String>,
}

/// Runs the mean action of the policy in `checkpoint` (a file or a run directory) until
/// `episodes` episodes have finished, on `num_envs` environments (default: the run's).
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
    if episodes == 0 {
        return Err(Error::Invalid {
            origin: "--episodes".into(),
            field: "episodes".into(),
            message: "expected at least 1".into(),
        });
    }
    if let Some(render) = &options.render {
        check_target(render)?;
    }
    let path = resolve_checkpoint(checkpoint)?;
    let ckpt = Checkpoint::read(&path)?;
    let mut cfg = TrainConfig::parse(
        &ckpt.header.config,
        &format!("{} (stored config)", path.display()),
        &[],
    )?;
    if let Some(n) = num_envs {
        if n == 0 {
            return Err(Error::Invalid {
                origin: "--num-envs".into(),
                field: "env.num_envs".into(),
                message: "expected at least 1, got 0".into(),
            });
        }
        cfg.env.num_envs = n;
    }
    // Evaluated episodes are whole: a legged task's counters start at zero, not spread
    // over the episode as in training.
    if sim_gpu::LEGGED_TASKS.contains(&cfg.env.task.as_str()) {
        cfg.env
            .settings
            .insert("random_episode_start".into(), toml::Value::Boolean(false));
    }
    // Evaluation episodes start from other states than training's.
    let env_seed = seed.unwrap_or(cfg.seed).wrapping_add(0x005e_ed0f_e7a1);
    let mut env = sim_gpu::make_env::<B::InnerBackend>(
        &cfg.env.task,
        cfg.env.num_envs,
        env_seed,
        &cfg.env.settings,
        device,
    )?;
    let mut alg = Ppo::<B>::new(
        cfg.ppo().clone(),
        cfg.policy.clone(),
        env.spec(),
        1,
        cfg.seed,
        device,
    )?;
    alg.load_state(&ckpt.state.algorithm)
        .map_err(|e| Error::Checkpoint {
            path: path.clone(),
            message: e.to_string(),
        })?;

    let n = cfg.env.num_envs;
    let max_len = env.spec().max_episode_length.max(1);
    // Enough steps for every environment to finish the episodes asked for, twice over.
    let max_steps = max_len * (episodes.div_ceil(n) + 1) * 2;
    let chunk = max_len.min(256);
    let mut finished: Vec<FinishedEpisode> = Vec::with_capacity(episodes);
    let mut term_names: Vec<String> = Vec::new();
    let mut obs = env.reset();
    // Environment 0's first episode, while `recording`.
    let mut scenes: Vec<Scene> = Vec::new();
    let mut recording = options.render.is_some();
    if recording {
        scenes.push(scene_of_env_0(env.as_ref(), &cfg.env.task)?);
    }
    let mut steps = 0;
    while (finished.len() < episodes || recording) && steps < max_steps {
        let mut rows = Vec::with_capacity(chunk);
        for _ in 0..chunk {
            let actions = alg.act_inference(&obs)?;
            let step = env.step(actions)?;
            if term_names.len() != step.episode.terms.len() {
                term_names = step.episode.terms.keys().cloned().collect();
            }
            rows.push(episode_rows(&step));
            if recording {
                // After env 0's episode ends, its scene is the next episode's start.
                if env_0_done(&step)? {
                    recording = false;
                } else {
                    scenes.push(scene_of_env_0(env.as_ref(), &cfg.env.task)?);
                    recording = scenes.len() <= max_len;
                }
            }
            obs = step.observations;
        }
        steps += chunk;
        let episodes_done = read_finished_episodes(rows, &term_names, "evaluation episodes")?;
        let wanted = episodes.saturating_sub(finished.len());
        finished.extend(episodes_done.into_iter().take(wanted));
    }
    let render = match &options.render {
        Some(path) => {
            write_gif(path, &scenes, &options.render_options)?;
            Some(path.display().to_string())
        }
        None => None,
    };
    if finished.is_empty() {
        return Err(Error::Invalid {
            origin: "play".into(),
            field: "episodes".into(),
            message: format!("no episode finished within {max_steps} steps"),
        });
    }
    let count = finished.len() as f64;
    Ok(PlayResult {
        mean_return: finished.iter().map(|e| e.episode_return).sum::<f64>() / count,
        mean_episode_length: finished.iter().map(|e| e.length).sum::<f64>() / count,
        episodes: finished.len(),
        terms: mean_terms(&finished),
        checkpoint: path.display().to_string(),
        render,
    })
}

/// The mean of each named term over `episodes` (a term missing from an episode counts
/// over the episodes that have it).
fn mean_terms(episodes: &[FinishedEpisode]) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for episode in episodes {
        for (name, value) in &episode.terms {
            let e = sums.entry(name).or_insert((0.0, 0));
            e.0 += value;
            e.1 += 1;
        }
    }
    sums.into_iter()
        .map(|(name, (sum, n))| (name.to_string(), sum / n.max(1) as f64))
        .collect()
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

    #[test]
    fn terms_are_averaged_over_the_episodes() {
        let episode = |error: f64| FinishedEpisode {
            episode_return: 0.0,
            length: 1.0,
            terms: vec![
                ("lin_vel_error".to_string(), error),
                ("rew_alive".to_string(), 1.0),
            ],
        };
        let terms = mean_terms(&[episode(0.5), episode(0.25), episode(0.0)]);
        assert_eq!(terms.len(), 2);
        assert_eq!(terms["lin_vel_error"], 0.25);
        assert_eq!(terms["rew_alive"], 1.0);
        assert!(mean_terms(&[]).is_empty());
    }
}
