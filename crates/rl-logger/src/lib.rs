//! TensorBoard, metrics.jsonl and console logging of training runs.
//!
//! The runner builds one [`IterationRecord`] per learning iteration (scalars keyed by their
//! TensorBoard tag, see [`tags`]) and hands it to a [`Logger`], which fans it out to every
//! [`MetricWriter`]:
//!
//! - [`TensorBoardWriter`]: event files readable by TensorBoard, same tags as rsl_rl, plus the
//!   `Train/mean_reward/time` and `Train/mean_episode_length/time` variants;
//! - [`JsonlWriter`]: `<run_dir>/metrics.jsonl`, one flat JSON object per iteration, appended
//!   and flushed line by line (a resumed run continues the same file);
//! - [`ConsoleLogger`]: a progress bar with ETA and an rsl_rl-style summary per iteration
//!   ([`format_summary`]), as chosen by [`ConsoleMode`].
//!
//! [`Logger::for_run`] builds all three for a run directory. Errors are [`Error`].

mod atomic;
mod console;
mod error;
mod jsonl;
mod logger;
mod tensorboard;

pub use atomic::write_atomic;
pub use console::{ConsoleLogger, ConsoleMode, format_summary};
pub use error::Error;
pub use jsonl::{JsonlWriter, METRICS_FILE_NAME, drop_rows_from};
pub use logger::{IterationRecord, Logger, MetricWriter};
pub use tensorboard::TensorBoardWriter;

/// The TensorBoard tags the runner logs (the same names as rsl_rl, so dashboards carry over).
///
/// Environment-provided per-episode terms are logged as [`EPISODE_PREFIX`](crate::tags::EPISODE_PREFIX) followed by
/// their name, for example `Episode/rew_tracking`.
pub mod tags {
    /// Mean value-function loss of the update.
    pub const LOSS_VALUE: &str = "Loss/value";
    /// Mean clipped surrogate (policy) loss of the update.
    pub const LOSS_SURROGATE: &str = "Loss/surrogate";
    /// Mean entropy of the policy during the update.
    pub const LOSS_ENTROPY: &str = "Loss/entropy";
    /// Learning rate after the update (it changes with the adaptive schedule).
    pub const LEARNING_RATE: &str = "Loss/learning_rate";
    /// Mean standard deviation of the Gaussian policy's action noise.
    pub const MEAN_STD: &str = "Policy/mean_std";
    /// Environment steps per second over collection and learning.
    pub const TOTAL_FPS: &str = "Perf/total_fps";
    /// Seconds spent collecting the rollout.
    pub const COLLECTION_TIME: &str = "Perf/collection_time";
    /// Seconds spent in the update.
    pub const LEARNING_TIME: &str = "Perf/learning_time";
    /// CubeCL kernels launched while collecting the rollout (only where they are counted:
    /// `cargo xtask bench` on the wgpu and cuda backends).
    pub const COLLECTION_LAUNCHES: &str = "Perf/collection_launches";
    /// CubeCL kernels launched by the update (where they are counted).
    pub const LEARNING_LAUNCHES: &str = "Perf/learning_launches";
    /// Resident memory of the process in MiB at the end of the iteration (where the
    /// platform reports it).
    pub const RESIDENT_MEMORY: &str = "Perf/resident_memory_mb";
    /// Mean return over the last 100 finished episodes.
    pub const MEAN_REWARD: &str = "Train/mean_reward";
    /// Mean length over the last 100 finished episodes.
    pub const MEAN_EPISODE_LENGTH: &str = "Train/mean_episode_length";
    /// Prefix of environment-provided per-episode terms.
    pub const EPISODE_PREFIX: &str = "Episode/";
    /// Suffix of the wall-clock variants of [`MEAN_REWARD`] and [`MEAN_EPISODE_LENGTH`].
    pub const TIME_SUFFIX: &str = "/time";
}
