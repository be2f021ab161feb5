//! The on-policy runner: collect a rollout, update, log, checkpoint; and resume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use rl_core::{Algorithm, VecEnv};
use rl_logger::{IterationRecord, Logger, tags};
use rl_ppo::Ppo;

use crate::Error;
use crate::checkpoint::{Checkpoint, CheckpointHeader, checkpoint_path};
use crate::config::TrainConfig;
use crate::stats::{EpisodeStats, episode_rows, read_finished_episodes};

type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// What a finished (or stopped) training run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Iterations completed (including those before a resume).
    pub iterations: usize,
    /// Environment steps taken.
    pub total_steps: u64,
    /// Wall seconds of training (including those before a resume).
    pub wall_s: f64,
    /// `Train/mean_reward` at the end, if any episode finished.
    pub mean_reward: Option<f64>,
    /// `Train/mean_episode_length` at the end.
    pub mean_episode_length: Option<f64>,
    /// The last checkpoint written.
    pub checkpoint: PathBuf,
}

/// Runs PPO on a batch of environments, as rsl_rl's `OnPolicyRunner`.
pub struct OnPolicyRunner<B: AutodiffBackend> {
    cfg: TrainConfig,
    env: Box<dyn VecEnv<Inner<B>>>,
    alg: Ppo<B>,
    run_dir: PathBuf,
    iteration: usize,
    total_steps: u64,
    wall_s: f64,
    episodes: EpisodeStats,
}

impl<B: AutodiffBackend> OnPolicyRunner<B> {
    /// A new run writing into `run_dir`.
    pub fn new(cfg: TrainConfig, run_dir: PathBuf, device: &B::Device) -> Result<Self, Error> {
        Self::build(cfg, run_dir, 0, device)
    }

    fn build(
        cfg: TrainConfig,
        run_dir: PathBuf,
        env_seed_offset: usize,
        device: &B::Device,
    ) -> Result<Self, Error> {
        cfg.validate()?;
        // Environments get their own seed stream; a resumed run starts them on a new one.
        let env_seed = cfg
            .seed
            .wrapping_add(0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(env_seed_offset as u64 + 1));
        let env = sim_gpu::make_env::<Inner<B>>(&cfg.env.task, cfg.env.num_envs, env_seed, device)?;
        let alg = Ppo::<B>::new(
            cfg.ppo().clone(),
            cfg.policy.clone(),
            env.spec(),
            cfg.runner.num_steps_per_env,
            cfg.seed,
            device,
        )?;
        Ok(Self {
            cfg,
            env,
            alg,
            run_dir,
            iteration: 0,
            total_steps: 0,
            wall_s: 0.0,
            episodes: EpisodeStats::new(),
        })
    }

    /// Continues the run of a checkpoint: weights, optimizer, learning rate, normalisers,
    /// iteration and step counters. The config must describe the same network and task.
    ///
    /// `ckpt` is the checkpoint read from the file `checkpoint`, whose run directory the run
    /// continues in.
    pub fn resume(
        cfg: TrainConfig,
        ckpt: Checkpoint,
        checkpoint: &Path,
        device: &B::Device,
    ) -> Result<Self, Error> {
        let saved = TrainConfig::parse(
            &ckpt.header.config,
            &format!("{} (stored config)", checkpoint.display()),
            &[],
        )?;
        let mismatch = |what: &str, a: String, b: String| Error::Checkpoint {
            path: checkpoint.to_path_buf(),
            message: format!("the checkpoint was trained with {what} {a}, the config asks for {b}"),
        };
        if saved.env.task != cfg.env.task {
            return Err(mismatch("task", saved.env.task, cfg.env.task));
        }
        if saved.policy != cfg.policy {
            return Err(mismatch(
                "a different [policy]:",
                format!("{:?}", saved.policy),
                format!("{:?}", cfg.policy),
            ));
        }
        let run_dir = checkpoint
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut runner = Self::build(cfg, run_dir, ckpt.header.iteration, device)?;
        runner
            .alg
            .load_state(&ckpt.payload)
            .map_err(|e| Error::Checkpoint {
                path: checkpoint.to_path_buf(),
                message: e.to_string(),
            })?;
        runner.iteration = ckpt.header.iteration;
        runner.total_steps = ckpt.header.total_steps;
        runner.wall_s = ckpt.header.wall_s;
        Ok(runner)
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Iterations completed so far.
    pub fn iteration(&self) -> usize {
        self.iteration
    }

    /// Total iterations the run trains for.
    pub fn max_iterations(&self) -> usize {
        self.cfg.runner.max_iterations
    }

    /// The resolved config.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The algorithm.
    pub fn algorithm(&self) -> &Ppo<B> {
        &self.alg
    }

    /// Writes `config.toml` into the run directory.
    pub fn write_config(&self) -> Result<(), Error> {
        let path = self.run_dir.join("config.toml");
        std::fs::create_dir_all(&self.run_dir).map_err(|e| Error::Io {
            path: self.run_dir.clone(),
            action: "create the run directory",
            source: e,
        })?;
        std::fs::write(&path, self.cfg.to_toml()?).map_err(|e| Error::Io {
            path,
            action: "write",
            source: e,
        })
    }

    /// Writes a checkpoint of the current state; returns its path.
    pub fn save(&self) -> Result<PathBuf, Error> {
        let path = checkpoint_path(&self.run_dir, self.iteration);
        let ckpt = Checkpoint {
            header: CheckpointHeader {
                iteration: self.iteration,
                total_steps: self.total_steps,
                wall_s: self.wall_s,
                learning_rate: self.alg.learning_rate(),
                config: self.cfg.to_toml()?,
            },
            payload: self.alg.save_state()?,
        };
        ckpt.write_atomic(&path)?;
        Ok(path)
    }

    /// Trains until `runner.max_iterations` iterations are done (or the reward threshold is
    /// reached), logging every iteration and checkpointing every `save_interval`.
    pub fn learn(&mut self, logger: &mut Logger) -> Result<TrainSummary, Error> {
        let steps_per_iteration =
            (self.cfg.runner.num_steps_per_env * self.cfg.env.num_envs) as u64;
        let mut obs = self.env.reset();
        let mut last_checkpoint = None;
        while self.iteration < self.cfg.runner.max_iterations {
            let it = self.iteration;
            self.alg.set_iteration(it);
            let start = Instant::now();

            // Rollout: no autodiff, no host read until the episode statistics at the end
            let mut rows = Vec::with_capacity(self.cfg.runner.num_steps_per_env);
            let mut term_names = Vec::new();
            for _ in 0..self.cfg.runner.num_steps_per_env {
                let actions = self.alg.act(&obs)?;
                let step = self.env.step(actions)?;
                self.alg.process_env_step(&step)?;
                rows.push(episode_rows(&step));
                term_names = step.episode.terms.keys().cloned().collect();
                obs = step.observations;
            }
            self.read_episodes(rows, &term_names)?;
            self.alg.compute_returns(&obs)?;
            let collection_time = start.elapsed().as_secs_f64();

            // Update
            let learn_start = Instant::now();
            let stats = self.alg.update()?;
            let learning_time = learn_start.elapsed().as_secs_f64();

            self.iteration += 1;
            self.total_steps += steps_per_iteration;
            self.wall_s += collection_time + learning_time;

            let mut scalars: BTreeMap<String, f64> = stats;
            scalars.insert(
                tags::TOTAL_FPS.into(),
                (steps_per_iteration as f64 / (collection_time + learning_time)).round(),
            );
            scalars.insert(tags::COLLECTION_TIME.into(), collection_time);
            scalars.insert(tags::LEARNING_TIME.into(), learning_time);
            let mean_reward = self.episodes.mean_return();
            if let Some(r) = mean_reward {
                scalars.insert(tags::MEAN_REWARD.into(), r);
            }
            if let Some(l) = self.episodes.mean_length() {
                scalars.insert(tags::MEAN_EPISODE_LENGTH.into(), l);
            }
            for (name, value) in self.episodes.take_iteration_terms() {
                scalars.insert(format!("{}{name}", tags::EPISODE_PREFIX), value);
            }
            logger.write(&IterationRecord {
                iteration: it,
                total_steps: self.total_steps,
                wall_s: self.wall_s,
                scalars,
            })?;

            let reached = matches!(
                (self.cfg.runner.stop_at_mean_reward, mean_reward),
                (Some(threshold), Some(r)) if r >= threshold
            );
            if self.iteration.is_multiple_of(self.cfg.runner.save_interval)
                || self.iteration == self.cfg.runner.max_iterations
                || reached
            {
                last_checkpoint = Some(self.save()?);
            }
            if reached {
                tracing::info!(
                    iteration = self.iteration,
                    "reached runner.stop_at_mean_reward"
                );
                break;
            }
        }
        logger.flush()?;
        let checkpoint = match last_checkpoint {
            Some(p) => p,
            None => self.save()?,
        };
        Ok(TrainSummary {
            run_dir: self.run_dir.clone(),
            iterations: self.iteration,
            total_steps: self.total_steps,
            wall_s: self.wall_s,
            mean_reward: self.episodes.mean_return(),
            mean_episode_length: self.episodes.mean_length(),
            checkpoint,
        })
    }

    /// Reads the rollout's episode data back in one transfer and feeds the window, in the
    /// order episodes finished (by step, then environment index), as rsl_rl does.
    fn read_episodes(
        &mut self,
        rows: Vec<Tensor<Inner<B>, 2>>,
        term_names: &[String],
    ) -> Result<(), Error> {
        for e in read_finished_episodes(rows, term_names, "episode statistics")? {
            self.episodes.push(e.episode_return, e.length, e.terms);
        }
        Ok(())
    }
}
