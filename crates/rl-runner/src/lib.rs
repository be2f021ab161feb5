//! Training runs for cross-gym: configuration, the on-policy loop, checkpoints, evaluation.
//!
//! - [`TrainConfig`]: the whole TOML file (`seed`, `[env]`, `[algorithm]` with `class`,
//!   `[policy]`, `[runner]`, `[logger]`), with `--set` overrides and errors that name the
//!   file, line and field.
//! - [`OnPolicyRunner`]: rsl_rl's loop (collect, GAE, update, log, checkpoint) and resume.
//! - [`Checkpoint`]: checksummed checkpoint files written atomically.
//! - [`train`] and [`play`]: what `cargo xtask train` and `cargo xtask play` run.
//! - [`export`]: what `cargo xtask export` runs: a checkpoint's policy as ONNX, safetensors
//!   and a `policy.json` for deployment, checked in tract first.
//! - [`write_gif`]: an animated GIF of a recorded episode (`play --render`).
//! - [`rollout`]: what `cargo xtask rollout` runs: a classic task driven from a given state
//!   with given actions, one JSON line per step.
//! - [`bench()`] and [`LaunchCounter`]: what `cargo xtask bench` runs, and the count of CubeCL
//!   kernel launches it reports (with [`launch_layer`] in the subscriber).

mod algorithms;
mod bench;
mod checkpoint;
mod config;
mod distributed;
mod error;
mod export;
mod launches;
mod play;
mod render;
mod rollout;
mod runner;
mod stats;
mod train;

pub use bench::{
    BenchReport, BenchRequest, MatmulReport, MemoryReport, SimReport, SolveReport, TrainReport,
    bench,
};
pub use checkpoint::{
    Checkpoint, CheckpointHeader, EXTENSION, LATEST_MARKER, RunState, WorkerState, checkpoint_path,
    prune_checkpoints, resolve_checkpoint, write_latest_marker,
};
pub use config::{AlgorithmConfig, EnvConfig, LoggerConfig, RunnerConfig, TrainConfig};
pub use distributed::{WORKER_STREAM, worker_env_seed};
pub use error::Error;
pub use export::{
    ExportReport, MANIFEST_FILE, ONNX_FILE, PolicyManifest, REFERENCE_FILE, Reference,
    SAFETENSORS_FILE, TOLERANCE, default_export_dir, export,
};
pub use launches::{LaunchCounter, launch_layer};
pub use play::{EvalPlan, Evaluation, PlayOptions, PlayResult, play, play_onnx};
pub use render::{RenderOptions, write_gif};
pub use rl_logger::ConsoleMode;
pub use rollout::{RolloutRequest, StepLine, rollout};
pub use runner::{OnPolicyRunner, TrainSummary};
pub use stats::{EpisodeStats, WINDOW};
pub use train::{TrainRequest, train, train_worker};
