//! The error type of sim-gpu.

/// Errors raised when building or driving the batched environments.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The task name is not in the registry.
    #[error("unknown task `{task}`; valid tasks are: {valid}")]
    UnknownTask {
        /// The name that was asked for.
        task: String,
        /// The registered task names, comma-separated.
        valid: String,
    },
    /// An environment batch was asked for with no environments.
    #[error("task `{task}`: num_envs must be at least 1, got 0")]
    NoEnvs {
        /// The task being built.
        task: String,
    },
    /// A task's configuration (the `[env]` table of a training config) is invalid.
    #[error("task `{task}`: env.{field}: {what}")]
    TaskConfig {
        /// The task being built.
        task: String,
        /// The field, as a dotted path under `env`.
        field: String,
        /// What is wrong.
        what: String,
    },
    /// A robot, a simulation setting or a state given to the simulator is invalid.
    #[error(transparent)]
    Sim(#[from] sim_physics::Error),
    /// A shape or argument error from the shared environment types.
    #[error(transparent)]
    Core(#[from] rl_core::Error),
}

/// Result with the error type of sim-gpu.
pub type Result<T, E = Error> = std::result::Result<T, E>;
