//! The on-policy runner: collect a rollout, update, log, checkpoint; and resume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use rl_core::{Algorithm, AlgorithmError, Communicator, VecEnv};
use rl_logger::{IterationRecord, Logger, tags};

use crate::Error;
use crate::checkpoint::{
    Checkpoint, CheckpointHeader, RunState, WorkerState, checkpoint_path, prune_checkpoints,
    write_latest_marker,
};
use crate::config::TrainConfig;
use crate::distributed::{
    WORKER_STREAM, agree_on_episodes, agree_on_stop, check_workers_agree, collective_error,
    worker_env_seed,
};
use crate::launches::LaunchCounter;
use crate::stats::{EpisodeStats, StepRecord, guard_names, read_steps};

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

/// Runs an on-policy algorithm (built by name from `[algorithm]`) on a batch of
/// environments, as rsl_rl's `OnPolicyRunner`.
pub struct OnPolicyRunner<B: AutodiffBackend> {
    cfg: TrainConfig,
    env: Box<dyn VecEnv<Inner<B>>>,
    alg: Box<dyn Algorithm<B>>,
    run_dir: PathBuf,
    iteration: usize,
    total_steps: u64,
    wall_s: f64,
    episodes: EpisodeStats,
    /// Whether the environments have been reset by `learn` (or restored from a checkpoint),
    /// so that training continues from their current state.
    env_started: bool,
    /// Set from outside (a signal handler) to stop after the current iteration.
    stop: Option<Arc<AtomicBool>>,
    /// The newest checkpoint this run wrote or resumed from.
    last_checkpoint: Option<PathBuf>,
    /// Counts each iteration's kernel launches, when asked to.
    launches: Option<LaunchCounter<Inner<B>>>,
    /// The other workers of a data-parallel run (`None`: training alone).
    comm: Option<Arc<dyn Communicator>>,
    /// The mean return and length over every worker's window, after the last iteration of
    /// a data-parallel run.
    agreed_means: Option<(Option<f64>, Option<f64>)>,
}

impl<B: AutodiffBackend> OnPolicyRunner<B> {
    /// A new run of a registered task, writing into `run_dir`.
    pub fn new(cfg: TrainConfig, run_dir: PathBuf, device: &B::Device) -> Result<Self, Error> {
        cfg.validate()?;
        let env = Self::make_env(&cfg, device, 0)?;
        Self::build(cfg, env, run_dir, device)
    }

    /// A new run as one worker of a data-parallel run on `comm`: its own environments (and
    /// action noise) from its own seeds, the same initial weights as the others (checked
    /// with the config when the workers meet). Every worker must call this, then
    /// [`OnPolicyRunner::learn`]; only rank 0 writes to `run_dir`.
    pub fn new_worker(
        cfg: TrainConfig,
        run_dir: PathBuf,
        device: &B::Device,
        comm: Arc<dyn Communicator>,
    ) -> Result<Self, Error> {
        cfg.validate()?;
        let rank = comm.rank();
        let env = Self::make_env(&cfg, device, rank)?;
        let mut runner = Self::build(cfg, env, run_dir, device)?;
        if rank > 0 {
            runner
                .alg
                .reseed(runner.cfg.seed, WORKER_STREAM + rank as u64)?;
        }
        runner.join(comm)?;
        Ok(runner)
    }

    /// Joins the other workers: checks that they agree, then makes the algorithm a worker.
    fn join(&mut self, comm: Arc<dyn Communicator>) -> Result<(), Error> {
        check_workers_agree(comm.as_ref(), &self.cfg, self.alg.shared_state_checksum()?)?;
        self.alg.set_communicator(comm.clone())?;
        self.comm = Some(comm);
        Ok(())
    }

    /// This worker's rank (0 when training alone).
    pub fn rank(&self) -> usize {
        self.comm.as_ref().map_or(0, |c| c.rank())
    }

    /// The number of workers (1 when training alone).
    pub fn world_size(&self) -> usize {
        self.comm.as_ref().map_or(1, |c| c.world_size())
    }

    /// A new run on environments built by the caller (a task outside the registry, or a
    /// wrapped one); `cfg.env.task` should name them. The config is checked as for
    /// [`OnPolicyRunner::new`], except that the task need not be registered.
    pub fn with_env(
        cfg: TrainConfig,
        env: Box<dyn VecEnv<Inner<B>>>,
        run_dir: PathBuf,
        device: &B::Device,
    ) -> Result<Self, Error> {
        cfg.validate_values()?;
        Self::build(cfg, env, run_dir, device)
    }

    /// A new run on `env` with a checked `cfg`.
    fn build(
        cfg: TrainConfig,
        env: Box<dyn VecEnv<Inner<B>>>,
        run_dir: PathBuf,
        device: &B::Device,
    ) -> Result<Self, Error> {
        if env.num_envs() != cfg.env.num_envs {
            return Err(Error::Invalid {
                origin: String::new(),
                field: "env.num_envs".into(),
                message: format!(
                    "the config asks for {} environments, the environment batch has {}",
                    cfg.env.num_envs,
                    env.num_envs()
                ),
            });
        }
        let alg = cfg.algorithm.build::<B>(
            &cfg.policy,
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
            env_started: false,
            stop: None,
            last_checkpoint: None,
            launches: None,
            comm: None,
            agreed_means: None,
        })
    }

    /// The registered task of `cfg`, seeded from the run's seed (and the worker's rank).
    fn make_env(
        cfg: &TrainConfig,
        device: &B::Device,
        rank: usize,
    ) -> Result<Box<dyn VecEnv<Inner<B>>>, Error> {
        // The environments get their own seed stream, apart from the algorithm's.
        let env_seed = worker_env_seed(cfg.seed.wrapping_add(0x9e37_79b9_7f4a_7c15), rank);
        Ok(sim_gpu::make_env::<Inner<B>>(
            &cfg.env.task,
            cfg.env.num_envs,
            env_seed,
            &cfg.env.settings,
            sim_gpu::Purpose::Training,
            device,
        )?)
    }

    /// Logs the CubeCL kernels that each iteration's collection and update launch
    /// (`Perf/collection_launches`, `Perf/learning_launches`). Counting waits for the device
    /// at the end of the collection, so that the work it queued is launched (and timed) there
    /// rather than in the update.
    pub fn count_launches(&mut self, counter: LaunchCounter<Inner<B>>) {
        self.launches = Some(counter);
    }

    /// Stops training after the current iteration (with a checkpoint) once `flag` is set,
    /// for example by a SIGINT or SIGTERM handler.
    pub fn set_stop_flag(&mut self, flag: Arc<AtomicBool>) {
        self.stop = Some(flag);
    }

    fn stop_requested(&self) -> bool {
        self.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Continues the run of a checkpoint exactly where it stopped: weights, optimizer
    /// moments and step counts, learning rate, normalisers, every random stream, the
    /// environments' state and episode counters, the episode statistics window, and the
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
        let run_dir = run_dir_of(checkpoint);
        cfg.validate()?;
        let env = Self::make_env(&cfg, device, 0)?;
        Self::restore(cfg, env, ckpt, checkpoint, run_dir, device)
    }

    /// [`OnPolicyRunner::resume`] as one worker of a data-parallel run on `comm` (every
    /// worker passes the same checkpoint, which rank 0 read): each worker continues from
    /// its own saved environments, random streams and episode window. A worker that the
    /// checkpoint has no state for (the run had fewer workers) starts fresh environments and
    /// its own noise from rank 0's weights.
    pub fn resume_worker(
        cfg: TrainConfig,
        mut ckpt: Checkpoint,
        checkpoint: &Path,
        device: &B::Device,
        comm: Arc<dyn Communicator>,
    ) -> Result<Self, Error> {
        let rank = comm.rank();
        let saved = 1 + ckpt.state.workers.len();
        if rank == 0 && saved > comm.world_size() {
            tracing::warn!(
                saved,
                now = comm.world_size(),
                "the checkpoint holds more workers than this run: their environments are dropped"
            );
        }
        let mut fresh = false;
        if rank > 0 {
            match ckpt.state.workers.get(rank - 1).cloned() {
                Some(own) => {
                    ckpt.state.algorithm = own.algorithm;
                    ckpt.state.env = own.env;
                    ckpt.state.episodes = own.episodes;
                }
                None => {
                    tracing::warn!(
                        rank,
                        saved,
                        "the checkpoint has no state for this worker: it starts fresh                          environments, and the run will not repeat an uninterrupted one exactly"
                    );
                    ckpt.state.env = None;
                    ckpt.state.episodes = EpisodeStats::new();
                    fresh = true;
                }
            }
        }
        ckpt.state.workers.clear();
        let run_dir = run_dir_of(checkpoint);
        cfg.validate()?;
        let env = Self::make_env(&cfg, device, rank)?;
        let mut runner = Self::restore(cfg, env, ckpt, checkpoint, run_dir, device)?;
        if fresh {
            runner
                .alg
                .reseed(runner.cfg.seed, WORKER_STREAM + rank as u64)?;
        }
        runner.join(comm)?;
        Ok(runner)
    }

    /// [`OnPolicyRunner::resume`] on environments built by the caller, continuing in
    /// `run_dir`.
    pub fn resume_with_env(
        cfg: TrainConfig,
        env: Box<dyn VecEnv<Inner<B>>>,
        ckpt: Checkpoint,
        checkpoint: &Path,
        run_dir: PathBuf,
        device: &B::Device,
    ) -> Result<Self, Error> {
        cfg.validate_values()?;
        Self::restore(cfg, env, ckpt, checkpoint, run_dir, device)
    }

    /// The run of `ckpt` continued on `env` with a checked `cfg`.
    fn restore(
        cfg: TrainConfig,
        env: Box<dyn VecEnv<Inner<B>>>,
        ckpt: Checkpoint,
        checkpoint: &Path,
        run_dir: PathBuf,
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
        let bad = |message: String| Error::Checkpoint {
            path: checkpoint.to_path_buf(),
            message,
        };
        let mut runner = Self::build(cfg, env, run_dir, device)?;
        runner
            .alg
            .load_state(&ckpt.state.algorithm)
            .map_err(|e| bad(e.to_string()))?;
        match &ckpt.state.env {
            Some(snapshot) if snapshot.num_envs == runner.cfg.env.num_envs => {
                runner
                    .env
                    .load_state(snapshot)
                    .map_err(|e| bad(format!("cannot restore the environments: {e}")))?;
                runner.env_started = true;
            }
            Some(snapshot) => tracing::warn!(
                saved = snapshot.num_envs,
                now = runner.cfg.env.num_envs,
                "the number of environments changed: they start from fresh episodes, and the \
                 run will not repeat an uninterrupted one exactly"
            ),
            None => {}
        }
        runner.episodes = ckpt.state.episodes;
        runner.iteration = ckpt.header.iteration;
        runner.total_steps = ckpt.header.total_steps;
        runner.wall_s = ckpt.header.wall_s;
        runner.last_checkpoint = Some(checkpoint.to_path_buf());
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
    pub fn algorithm(&self) -> &dyn Algorithm<B> {
        self.alg.as_ref()
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

    /// Writes a checkpoint of the current state (atomically), points the run's `latest`
    /// marker at it and deletes checkpoints beyond `runner.keep_checkpoints`; returns its
    /// path. In a data-parallel run every worker calls it: rank 0 gathers the others'
    /// states, checks that their policies are its own, and writes the one file.
    pub fn save(&mut self) -> Result<PathBuf, Error> {
        let path = checkpoint_path(&self.run_dir, self.iteration);
        let env = if self.env_started {
            Some(self.env.save_state().map_err(|e| Error::Checkpoint {
                path: path.clone(),
                message: format!("cannot save the environments' state: {e}"),
            })?)
        } else {
            None
        };
        let algorithm = self.alg.save_state()?;
        let workers = match self.comm.clone() {
            None => Vec::new(),
            Some(comm) => {
                let own = WorkerState {
                    algorithm: algorithm.clone(),
                    env: env.clone(),
                    episodes: self.episodes.clone(),
                };
                let checksum = self.alg.shared_state_checksum()?;
                let bytes =
                    rmp_serde::to_vec_named(&(own, checksum)).map_err(|e| Error::Checkpoint {
                        path: path.clone(),
                        message: format!("cannot serialise this worker's state: {e}"),
                    })?;
                let gathered = comm
                    .gather(bytes, "gathering the workers' states for a checkpoint")
                    .map_err(|e| collective_error(e, self.last_checkpoint.clone()))?;
                let Some(gathered) = gathered else {
                    // Rank 0 writes the file.
                    self.last_checkpoint = Some(path.clone());
                    return Ok(path);
                };
                self.workers_of(gathered, checksum, &path)?
            }
        };
        // Only the file's writer needs the policy alone.
        let policy = self.alg.save_policy()?;
        let ckpt = Checkpoint {
            header: CheckpointHeader {
                iteration: self.iteration,
                total_steps: self.total_steps,
                wall_s: self.wall_s,
                learning_rate: self.alg.learning_rate(),
                config: self.cfg.to_toml()?,
            },
            state: RunState {
                algorithm,
                policy: Some(policy),
                env,
                episodes: self.episodes.clone(),
                workers,
            },
        };
        ckpt.write_atomic(&path)?;
        write_latest_marker(&path)?;
        self.last_checkpoint = Some(path.clone());
        for old in prune_checkpoints(&path, self.cfg.runner.keep_checkpoints)? {
            tracing::debug!(path = %old.display(), "deleted an old checkpoint");
        }
        Ok(path)
    }

    /// Rank 0's reading of the states that [`OnPolicyRunner::save`] gathered: every other
    /// worker's, whose shared state must have rank 0's `checksum` (the workers hold the same
    /// weights, normalisers and learning rate at every checkpoint, or the run stops).
    fn workers_of(
        &self,
        gathered: Vec<Vec<u8>>,
        checksum: u64,
        path: &Path,
    ) -> Result<Vec<WorkerState>, Error> {
        let mut workers = Vec::with_capacity(gathered.len().saturating_sub(1));
        for (rank, bytes) in gathered.iter().enumerate().skip(1) {
            let (state, theirs): (WorkerState, u64) =
                rmp_serde::from_slice(bytes).map_err(|e| Error::Checkpoint {
                    path: path.to_path_buf(),
                    message: format!("worker {rank} sent an unreadable state: {e}"),
                })?;
            if theirs != checksum {
                let error = rl_core::CollectiveError::Mismatch {
                    rank,
                    message: format!(
                        "its weights differ from rank 0's after iteration {}: the workers \
                         went out of step (the checkpoint was not written)",
                        self.iteration
                    ),
                };
                return Err(collective_error(error, self.last_checkpoint.clone()));
            }
            workers.push(state);
        }
        Ok(workers)
    }

    /// Trains until `runner.max_iterations` iterations are done (or the reward threshold is
    /// reached), logging every iteration and checkpointing every `save_interval`.
    ///
    /// In a data-parallel run every worker calls it; they stop together (at the same
    /// iteration, or on the first failure of any of them, which the others are told of).
    pub fn learn(&mut self, logger: &mut Logger) -> Result<TrainSummary, Error> {
        let result = self.learn_steps(logger);
        if let (Err(e), Some(comm)) = (&result, &self.comm)
            && !matches!(e, Error::Interrupted { .. })
        {
            // Release the other workers, who would wait for this one (a no-op when a
            // collective call failed: they know already).
            comm.abort(&e.to_string());
        }
        result
    }

    fn learn_steps(&mut self, logger: &mut Logger) -> Result<TrainSummary, Error> {
        // Steps of every worker.
        let steps_per_iteration =
            (self.cfg.runner.num_steps_per_env * self.cfg.env.num_envs * self.world_size()) as u64;
        // A resumed run continues its environments where the checkpoint left them.
        let mut obs = if self.env_started {
            self.env.observations()
        } else {
            self.env_started = true;
            self.env.reset()
        };
        let mut last_checkpoint = None;
        while self.iteration < self.cfg.runner.max_iterations {
            let stop = match &self.comm {
                None => self.stop_requested(),
                Some(comm) => agree_on_stop(comm.as_ref(), self.stop_requested())
                    .map_err(|e| collective_error(e, self.last_checkpoint.clone()))?,
            };
            if stop {
                return Err(self.interrupt(logger));
            }
            let it = self.iteration;
            self.alg.set_iteration(it);
            if let Some(counter) = &mut self.launches {
                counter.start()?;
            }
            let start = Instant::now();

            // Rollout: no autodiff, no host read until the episode statistics and the
            // finiteness checks at the end; each step keeps its own tensors (and one
            // reduction per observation group), read back together in one transaction
            let mut records = Vec::with_capacity(self.cfg.runner.num_steps_per_env);
            let mut term_names = Vec::new();
            let mut checked = Vec::new();
            for _ in 0..self.cfg.runner.num_steps_per_env {
                let actions = self.alg.act(&obs)?;
                let step = self.env.step(actions)?;
                if records.is_empty() {
                    term_names = step.episode.terms.keys().cloned().collect();
                    checked = guard_names(&step);
                }
                records.push(StepRecord::guarded(&step));
                self.alg.process_env_step(&step)?;
                obs = step.observations;
            }
            self.read_rollout(it, records, &term_names, &checked)?;
            self.alg.compute_returns(&obs)?;
            let collection_launches = self.launches.as_mut().map(|c| c.lap()).transpose()?;
            let collection_time = start.elapsed().as_secs_f64();

            // Update
            let learn_start = Instant::now();
            let stats = self.alg.update().map_err(|e| self.non_finite(e))?;
            let learning_time = learn_start.elapsed().as_secs_f64();
            let learning_launches = self.launches.as_ref().map(|c| c.count()).transpose()?;

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
            for (tag, launches) in [
                (tags::COLLECTION_LAUNCHES, collection_launches),
                (tags::LEARNING_LAUNCHES, learning_launches),
            ] {
                if let Some(n) = launches {
                    scalars.insert(tag.into(), n as f64);
                }
            }
            if let Some(usage) = memory_stats::memory_stats() {
                scalars.insert(
                    tags::RESIDENT_MEMORY.into(),
                    usage.physical_mem as f64 / (1024.0 * 1024.0),
                );
            }
            let (mean_reward, mean_length, terms) = match &self.comm {
                None => (
                    self.episodes.mean_return(),
                    self.episodes.mean_length(),
                    self.episodes.take_iteration_terms(),
                ),
                Some(comm) => {
                    let agreed = agree_on_episodes(comm.as_ref(), &mut self.episodes, &term_names)
                        .map_err(|e| collective_error(e, self.last_checkpoint.clone()))?;
                    self.agreed_means = Some((agreed.mean_return, agreed.mean_length));
                    (agreed.mean_return, agreed.mean_length, agreed.terms)
                }
            };
            if let Some(r) = mean_reward {
                scalars.insert(tags::MEAN_REWARD.into(), r);
            }
            if let Some(l) = mean_length {
                scalars.insert(tags::MEAN_EPISODE_LENGTH.into(), l);
            }
            for (name, value) in terms {
                // `Episode/<name>`, unless the name has a group of its own.
                let tag = if name.contains('/') {
                    name
                } else {
                    format!("{}{name}", tags::EPISODE_PREFIX)
                };
                scalars.insert(tag, value);
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
        let (mean_reward, mean_episode_length) = self
            .agreed_means
            .unwrap_or_else(|| (self.episodes.mean_return(), self.episodes.mean_length()));
        Ok(TrainSummary {
            run_dir: self.run_dir.clone(),
            iterations: self.iteration,
            total_steps: self.total_steps,
            wall_s: self.wall_s,
            mean_reward,
            mean_episode_length,
            checkpoint,
        })
    }

    /// Reads the rollout's episode data and finiteness checks back in one transaction;
    /// stops on a non-finite value, otherwise feeds the window in the order episodes
    /// finished (by step, then environment index), as rsl_rl does.
    fn read_rollout(
        &mut self,
        iteration: usize,
        records: Vec<StepRecord<Inner<B>>>,
        term_names: &[String],
        guard_names: &[String],
    ) -> Result<(), Error> {
        let readout = read_steps(records, term_names, guard_names, "episode statistics")?;
        if let Some(at) = readout.non_finite {
            return Err(Error::NonFinite {
                iteration,
                quantity: at.quantity,
                location: format!(
                    "rollout step {} of {}, environment {}{}",
                    at.step,
                    self.cfg.runner.num_steps_per_env,
                    at.env,
                    if at.num_envs > 1 {
                        format!(" and {} more", at.num_envs - 1)
                    } else {
                        String::new()
                    }
                ),
                last_checkpoint: self.last_checkpoint.clone(),
            });
        }
        for e in readout.episodes {
            self.episodes.push(e.episode_return, e.length, e.terms);
        }
        Ok(())
    }

    /// The runner's error for an algorithm error: a non-finite loss names the last good
    /// checkpoint.
    fn non_finite(&self, e: AlgorithmError) -> Error {
        match e {
            AlgorithmError::NonFinite {
                iteration,
                quantity,
            } => Error::NonFinite {
                iteration,
                quantity,
                location: "the update".into(),
                last_checkpoint: self.last_checkpoint.clone(),
            },
            AlgorithmError::Collective(source) => {
                collective_error(source, self.last_checkpoint.clone())
            }
            other => Error::Algorithm(other),
        }
    }

    /// Stops on request: a checkpoint of the last finished iteration (unless one was just
    /// written), the logs flushed, and the error that says so.
    fn interrupt(&mut self, logger: &mut Logger) -> Error {
        let written = checkpoint_path(&self.run_dir, self.iteration);
        let checkpoint = if self.last_checkpoint.as_deref() == Some(written.as_path()) {
            // Already on disk (just saved, or the checkpoint this run resumed from): point
            // the marker at it, so that `--resume <run_dir>` continues from it.
            write_latest_marker(&written).map(|()| written)
        } else {
            self.save()
        };
        if let Err(e) = logger.flush() {
            tracing::warn!(error = %e, "could not flush the logs");
        }
        match checkpoint {
            Ok(checkpoint) => Error::Interrupted {
                iteration: self.iteration,
                checkpoint,
                run_dir: self.run_dir.clone(),
            },
            Err(e) => e,
        }
    }
}

/// The run directory of a checkpoint file (`<run>/checkpoints/model_<i>.ckpt`).
fn run_dir_of(checkpoint: &Path) -> PathBuf {
    checkpoint
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
