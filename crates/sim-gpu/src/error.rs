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
    /// An environment index is out of range.
    #[error("environment index {id} is out of range: there are {num_envs} environments")]
    EnvId {
        /// The index that was given.
        id: usize,
        /// Number of environments in the batch.
        num_envs: usize,
    },
    /// An environment index was given twice.
    #[error("environment index {id} is given twice")]
    DuplicateEnvId {
        /// The repeated index.
        id: usize,
    },
    /// A robot model is malformed.
    #[error("model `{model}`: {what}")]
    Model {
        /// The robot's name.
        model: String,
        /// What is wrong, naming the link or joint.
        what: String,
    },
    /// A URDF file could not be read or holds something the simulator cannot take.
    #[error("URDF `{path}`: {what}")]
    Urdf {
        /// The file (or `<string>` for text given directly).
        path: String,
        /// What is wrong, naming the element.
        what: String,
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
    /// A simulation setting or a state given to the simulator is invalid.
    #[error("physics: {0}")]
    Physics(String),
    /// A shape or argument error from the shared environment types.
    #[error(transparent)]
    Core(#[from] rl_core::Error),
}

/// Result with the error type of sim-gpu.
pub type Result<T, E = Error> = std::result::Result<T, E>;
