//! Evaluation: run the deterministic (mean-action) policy of a checkpoint.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use rl_core::Algorithm;
use rl_ppo::Ppo;
use serde::Serialize;

use crate::Error;
use crate::checkpoint::{Checkpoint, resolve_checkpoint};
use crate::config::TrainConfig;
use crate::stats::{episode_rows, read_finished_episodes};

/// What an evaluation measured.
#[derive(Debug, Clone, Serialize)]
pub struct PlayResult {
    /// Mean undiscounted return of the evaluated episodes.
    pub mean_return: f64,
    /// Mean length in steps of the evaluated episodes.
    pub mean_episode_length: f64,
    /// Number of episodes evaluated.
    pub episodes: usize,
    /// The checkpoint evaluated.
    pub checkpoint: String,
}

/// Runs the mean action of the policy in `checkpoint` (a file or a run directory) until
/// `episodes` episodes have finished, on `num_envs` environments (default: the run's).
pub fn play<B: AutodiffBackend>(
    checkpoint: &Path,
    episodes: usize,
    num_envs: Option<usize>,
    seed: Option<u64>,
    device: &B::Device,
) -> Result<PlayResult, Error> {
    if episodes == 0 {
        return Err(Error::Invalid {
            origin: "--episodes".into(),
            field: "episodes".into(),
            message: "expected at least 1".into(),
        });
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
    // Evaluation episodes start from other states than training's.
    let env_seed = seed.unwrap_or(cfg.seed).wrapping_add(0x005e_ed0f_e7a1);
    let mut env =
        sim_gpu::make_env::<B::InnerBackend>(&cfg.env.task, cfg.env.num_envs, env_seed, device)?;
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
    let mut finished: Vec<(f64, f64)> = Vec::with_capacity(episodes);
    let mut obs = env.reset();
    let mut steps = 0;
    while finished.len() < episodes && steps < max_steps {
        let mut rows = Vec::with_capacity(chunk);
        for _ in 0..chunk {
            let actions = alg.act_inference(&obs)?;
            let step = env.step(actions)?;
            rows.push(episode_rows(&step));
            obs = step.observations;
        }
        steps += chunk;
        let episodes_done = read_finished_episodes(rows, &[], "evaluation episodes")?;
        finished.extend(
            episodes_done
                .into_iter()
                .take(episodes - finished.len())
                .map(|e| (e.episode_return, e.length)),
        );
    }
    if finished.is_empty() {
        return Err(Error::Invalid {
            origin: "play".into(),
            field: "episodes".into(),
            message: format!("no episode finished within {max_steps} steps"),
        });
    }
    let count = finished.len() as f64;
    Ok(PlayResult {
        mean_return: finished.iter().map(|e| e.0).sum::<f64>() / count,
        mean_episode_length: finished.iter().map(|e| e.1).sum::<f64>() / count,
        episodes: finished.len(),
        checkpoint: path.display().to_string(),
    })
}
