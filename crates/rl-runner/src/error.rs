//! The error type of rl-runner.

use std::path::PathBuf;

/// Errors of a training or evaluation run. Each message is one line that names the file,
/// field or iteration concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The config text is not valid TOML for a `TrainConfig` (unknown field, wrong type, ...).
    #[error("{origin}{}: {}{message}", if *line == 0 { String::new() } else { format!(":{line}:{column}") }, if section.is_empty() { String::new() } else { format!("in `{section}`: ") })]
    Parse {
        /// The config file.
        origin: String,
        /// 1-based line (0 when unknown: then neither line nor column is shown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// The field path (`algorithm.gamma`) or the table the error is in; may be empty.
        section: String,
        /// What is wrong.
        message: String,
    },
    /// A config value is out of range, inconsistent or unknown.
    #[error("{}invalid `{field}`: {message}", if origin.is_empty() { String::new() } else { format!("{origin}: ") })]
    Invalid {
        /// The config file.
        origin: String,
        /// The field path, for example `algorithm.gamma`.
        field: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A command-line input (a flag's value or a file it names) is malformed.
    #[error("{origin}: {message}")]
    Input {
        /// The flag or file the value came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A `--set` override is malformed.
    #[error("--set {item}: {message}")]
    Override {
        /// The override as given.
        item: String,
        /// What is wrong.
        message: String,
    },
    /// A checkpoint could not be written or read.
    #[error("checkpoint `{}`: {message}", path.display())]
    Checkpoint {
        /// The checkpoint file or run directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A recording could not be rendered or its GIF written.
    #[error("render `{}`: {message}", path.display())]
    Render {
        /// The GIF file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The environment failed. (The wrapped errors show their own message only: with it in
    /// this one too, `anyhow`'s `{:#}`, which appends the source, would print it twice.)
    #[error(transparent)]
    Env(#[from] sim_gpu::Error),
    /// The environment rejected a call.
    #[error(transparent)]
    Core(#[from] rl_core::Error),
    /// The algorithm failed.
    #[error(transparent)]
    Algorithm(#[from] rl_core::AlgorithmError),
    /// A data-parallel run cannot go on: a worker left, stopped answering, failed, or
    /// disagrees with the others.
    #[error("data-parallel run: {error}; {}", match last_checkpoint { Some(p) => format!("the last checkpoint is `{}`", p.display()), None => "no checkpoint had been written yet".to_string() })]
    Distributed {
        /// What the collective call saw (it names the worker).
        error: rl_core::CollectiveError,
        /// The newest checkpoint of the run, which stays loadable.
        last_checkpoint: Option<PathBuf>,
    },
    /// The policy failed (an observation group it reads is missing).
    #[error(transparent)]
    Model(#[from] rl_modules::Error),
    /// Exporting a policy, or running an exported one, failed.
    #[error("{0}")]
    Export(#[from] rl_export::Error),
    /// Logging failed.
    #[error("logger: {0}")]
    Logger(#[from] rl_logger::Error),
    /// A NaN or infinity appeared; the run stopped without saving the bad state.
    #[error("iteration {iteration}: non-finite values in {quantity}{}; the run stopped without saving it, {}", if location.is_empty() { String::new() } else { format!(" ({location})") }, match last_checkpoint { Some(p) => format!("the last good checkpoint is `{}`", p.display()), None => "no checkpoint had been written yet".to_string() })]
    NonFinite {
        /// The iteration (counted from 0) whose rollout or update produced it.
        iteration: usize,
        /// What was not finite: an observation group, the reward, an episode term, a loss.
        quantity: String,
        /// Where, when known: the rollout step and the environment.
        location: String,
        /// The newest checkpoint on disk, which stays intact.
        last_checkpoint: Option<PathBuf>,
    },
    /// A stop was requested (SIGINT or SIGTERM); the run saved a checkpoint and stopped.
    #[error("interrupted after iteration {iteration}; saved `{}`; continue with --resume {}", checkpoint.display(), run_dir.display())]
    Interrupted {
        /// Iterations completed.
        iteration: usize,
        /// The checkpoint written on the way out.
        checkpoint: PathBuf,
        /// The run directory to resume.
        run_dir: PathBuf,
    },
    /// A value could not be read back from the device.
    #[error("could not read {what} back from the device: {reason}")]
    Readback {
        /// What was being read.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
}

impl Error {
    /// Whether this is a usage error (a bad config, flag or input file, an unknown task)
    /// rather than a failure of the run; the command line exits with status 2 on these.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Parse { .. }
                | Error::Invalid { .. }
                | Error::Override { .. }
                | Error::Input { .. }
                | Error::Export(
                    rl_export::Error::Onnx { .. }
                        | rl_export::Error::Input(_)
                        | rl_export::Error::Mismatch(_)
                )
                | Error::Env(
                    sim_gpu::Error::UnknownTask { .. }
                        | sim_gpu::Error::NoEnvs { .. }
                        | sim_gpu::Error::TaskConfig { .. }
                )
        )
    }
}
