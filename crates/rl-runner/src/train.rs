//! `train`: from command-line options to a finished run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::tensor::backend::AutodiffBackend;
use rl_core::Communicator;
use rl_logger::{ConsoleMode, Logger};

use crate::Error;
use crate::checkpoint::{Checkpoint, resolve_checkpoint};
use crate::config::TrainConfig;
use crate::distributed::collective_error;
use crate::runner::{OnPolicyRunner, TrainSummary};

/// What `cargo xtask train` asks for.
#[derive(Debug, Clone, Default)]
pub struct TrainRequest {
    /// The config file; optional when resuming (the run's stored config is used).
    pub config: Option<PathBuf>,
    /// A run directory or checkpoint file to continue.
    pub resume: Option<PathBuf>,
    /// `section.key=value` overrides (TOML values).
    pub overrides: Vec<String>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--num-envs`.
    pub num_envs: Option<usize>,
    /// `--max-iterations`.
    pub max_iterations: Option<usize>,
    /// `--log-dir`.
    pub log_dir: Option<PathBuf>,
    /// `--run-name`.
    pub run_name: Option<String>,
    /// Console output.
    pub console: Option<ConsoleMode>,
    /// When set (by a SIGINT or SIGTERM handler, for example), training stops after the
    /// current iteration with a checkpoint and [`Error::Interrupted`].
    pub stop: Option<Arc<AtomicBool>>,
}

impl TrainRequest {
    /// Loads the config (file, or the checkpoint's when resuming without one) with every
    /// override applied and checked.
    pub fn resolve_config(&self, resume_from: Option<&Checkpoint>) -> Result<TrainConfig, Error> {
        let mut cfg = match (&self.config, resume_from) {
            (Some(path), _) => TrainConfig::load(path, &self.overrides)?,
            (None, Some(ckpt)) => {
                TrainConfig::parse(&ckpt.header.config, "checkpoint config", &self.overrides)?
            }
            (None, None) => {
                return Err(Error::Invalid {
                    origin: String::new(),
                    field: "--config".into(),
                    message: "a config file is required unless --resume is given".into(),
                });
            }
        };
        // The file was checked when it was parsed; check again only if a flag changed it.
        let parsed = cfg.clone();
        if let Some(s) = self.seed {
            cfg.seed = s;
        }
        if let Some(n) = self.num_envs {
            cfg.env.num_envs = n;
        }
        if let Some(m) = self.max_iterations {
            cfg.runner.max_iterations = m;
        }
        if let Some(d) = &self.log_dir {
            cfg.logger.log_dir = d.clone();
        }
        if let Some(r) = &self.run_name {
            cfg.logger.run_name = r.clone();
        }
        let origin = self
            .config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "checkpoint config".into());
        if cfg != parsed {
            cfg.validate_in(&origin)?;
        }
        Ok(cfg)
    }
}

/// The directory of a new run: `<log_dir>/<experiment_name>/<run_name or start time>`.
fn new_run_dir(cfg: &TrainConfig) -> Result<PathBuf, Error> {
    let name = if cfg.logger.run_name.is_empty() {
        chrono::Local::now().format("%Y-%m-%d_%H-%M-%S").to_string()
    } else {
        cfg.logger.run_name.clone()
    };
    let dir = cfg
        .logger
        .log_dir
        .join(&cfg.logger.experiment_name)
        .join(name);
    if dir.join("checkpoints").exists() {
        return Err(Error::Invalid {
            origin: String::new(),
            field: "logger.run_name".into(),
            message: format!(
                "the run directory `{}` already holds checkpoints; pass --resume {} to continue it, or another --run-name",
                dir.display(),
                dir.display()
            ),
        });
    }
    Ok(dir)
}

/// Runs a whole training: builds the run (or resumes it), calls `on_start` with the run
/// directory, trains, and returns the summary.
pub fn train<B: AutodiffBackend>(
    request: &TrainRequest,
    device: &B::Device,
    on_start: impl FnOnce(&Path),
) -> Result<TrainSummary, Error> {
    train_with::<B>(request, device, None, on_start)
}

/// [`train`] as one worker of a data-parallel run on `comm`. Every worker is given the same
/// request (config, flags, `--resume`); rank 0 alone reads the checkpoint to resume (and
/// hands it to the others), calls `on_start`, and writes the run directory: config, logs
/// and checkpoints.
pub fn train_worker<B: AutodiffBackend>(
    request: &TrainRequest,
    device: &B::Device,
    comm: Arc<dyn Communicator>,
    on_start: impl FnOnce(&Path),
) -> Result<TrainSummary, Error> {
    let result = train_with::<B>(request, device, Some(comm.clone()), on_start);
    if let Err(e) = &result
        && !matches!(e, Error::Interrupted { .. })
    {
        // A failure before training started (the others would wait for this worker).
        comm.abort(&e.to_string());
    }
    result
}

fn train_with<B: AutodiffBackend>(
    request: &TrainRequest,
    device: &B::Device,
    comm: Option<Arc<dyn Communicator>>,
    on_start: impl FnOnce(&Path),
) -> Result<TrainSummary, Error> {
    let rank = comm.as_ref().map_or(0, |c| c.rank());
    let console = request.console.unwrap_or(ConsoleMode::Full);
    let mut runner = match &request.resume {
        Some(resume) => {
            let (path, ckpt) = match &comm {
                None => {
                    let path = resolve_checkpoint(resume)?;
                    let ckpt = Checkpoint::read(&path)?;
                    (path, ckpt)
                }
                Some(comm) => shared_checkpoint(comm.as_ref(), resume)?,
            };
            let cfg = request.resolve_config(Some(&ckpt))?;
            let iteration = ckpt.header.iteration;
            let runner = match &comm {
                None => OnPolicyRunner::<B>::resume(cfg, ckpt, &path, device)?,
                Some(comm) => {
                    OnPolicyRunner::<B>::resume_worker(cfg, ckpt, &path, device, comm.clone())?
                }
            };
            if rank == 0 {
                // Rows logged after the checkpoint (by a run that was killed later) are
                // replaced by the resumed run's.
                let dropped = rl_logger::drop_rows_from(runner.run_dir(), iteration)?;
                if dropped > 0 {
                    tracing::info!(
                        rows = dropped,
                        iteration,
                        "dropped metrics.jsonl rows logged after the checkpoint"
                    );
                }
            }
            runner
        }
        None => {
            let cfg = request.resolve_config(None)?;
            match &comm {
                None => {
                    let dir = new_run_dir(&cfg)?;
                    OnPolicyRunner::<B>::new(cfg, dir, device)?
                }
                Some(comm) => {
                    // Rank 0 names the run directory (its clock, its file system).
                    let dir = if rank == 0 {
                        new_run_dir(&cfg)?.to_string_lossy().into_owned()
                    } else {
                        String::new()
                    };
                    let dir = comm
                        .broadcast(dir.into_bytes(), "naming the run directory")
                        .map_err(|e| collective_error(e, None))?;
                    let dir = PathBuf::from(String::from_utf8_lossy(&dir).into_owned());
                    OnPolicyRunner::<B>::new_worker(cfg, dir, device, comm.clone())?
                }
            }
        }
    };
    if let Some(flag) = &request.stop {
        runner.set_stop_flag(flag.clone());
    }
    let max_iterations = runner.max_iterations();
    let mut logger = if rank == 0 {
        on_start(runner.run_dir());
        runner.write_config()?;
        Logger::for_run(runner.run_dir(), max_iterations, console)?
    } else {
        // The other workers log nothing.
        Logger::new(Vec::new())
    };
    // Finish the logger even when training failed, so that what was logged is flushed.
    let summary = runner.learn(&mut logger);
    let finished = logger.finish();
    let summary = summary?;
    finished?;
    Ok(summary)
}

/// The checkpoint to resume, read by rank 0 and handed to every worker (which may be on
/// other machines): its path on rank 0, and its contents.
fn shared_checkpoint(
    comm: &dyn Communicator,
    resume: &Path,
) -> Result<(PathBuf, Checkpoint), Error> {
    let what = "handing out the checkpoint to resume";
    let payload = if comm.rank() == 0 {
        let path = resolve_checkpoint(resume)?;
        let bytes = std::fs::read(&path).map_err(|e| Error::Io {
            path: path.clone(),
            action: "read the checkpoint",
            source: e,
        })?;
        // Checked here, so that a bad file is rank 0's error, named once.
        Checkpoint::from_bytes(&bytes, &path)?;
        rmp_serde::to_vec(&(
            path.to_string_lossy().into_owned(),
            serde_bytes::ByteBuf::from(bytes),
        ))
        .map_err(|e| Error::Checkpoint {
            path: path.clone(),
            message: format!("cannot hand it to the other workers: {e}"),
        })?
    } else {
        Vec::new()
    };
    let payload = comm
        .broadcast(payload, what)
        .map_err(|e| collective_error(e, None))?;
    let (path, bytes): (String, serde_bytes::ByteBuf) =
        rmp_serde::from_slice(&payload).map_err(|e| Error::Checkpoint {
            path: resume.to_path_buf(),
            message: format!("rank 0 sent an unreadable checkpoint: {e}"),
        })?;
    let path = PathBuf::from(path);
    let ckpt = Checkpoint::from_bytes(&bytes, &path)?;
    Ok((path, ckpt))
}
