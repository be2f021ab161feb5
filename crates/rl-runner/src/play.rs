//! Evaluation: run the deterministic (mean-action) policy of a checkpoint.

use std::path::Path;

use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use rl_core::Algorithm;
use rl_ppo::Ppo;
use serde::Serialize;

use crate::Error;
use crate::checkpoint::{Checkpoint, resolve_checkpoint};
use crate::config::TrainConfig;

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
    alg.load_state(&ckpt.payload)
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
            rows.push(Tensor::stack::<2>(
                vec![
                    step.dones().float(),
                    step.episode.returns.clone(),
                    step.episode.lengths.clone(),
                ],
                0,
            ));
            obs = step.observations;
        }
        steps += chunk;
        let data: Vec<f32> = Tensor::cat(rows, 0) // [chunk * 3, N]
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| Error::Readback {
                what: "evaluation episodes",
                reason: format!("{e:?}"),
            })?;
        for rows in data.chunks(3 * n) {
            for env_i in 0..n {
                if rows[env_i] > 0.5 && finished.len() < episodes {
                    finished.push((f64::from(rows[n + env_i]), f64::from(rows[2 * n + env_i])));
                }
            }
        }
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
