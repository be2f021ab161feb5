//! The error type of rl-ppo.

/// Errors of PPO: configuration, shapes, checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range or inconsistent.
    #[error("invalid config field `{field}`: {message}")]
    Config {
        /// The field path, for example `algorithm.gamma`.
        field: String,
        /// What was expected and what was found.
        message: String,
    },
    /// An environment or observation error.
    #[error(transparent)]
    Core(#[from] rl_core::Error),
    /// A rollout storage error.
    #[error(transparent)]
    Storage(#[from] rl_storage::Error),
    /// A network-module error (normaliser state, activation).
    #[error(transparent)]
    Modules(#[from] rl_modules::Error),
    /// A checkpoint could not be written or read.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A value could not be read back from the device.
    #[error("could not read values back from the device: {0}")]
    Readback(String),
    /// A quantity of the rollout or the update was NaN or infinite.
    #[error("iteration {iteration}: non-finite values in {quantity}")]
    NonFinite {
        /// The iteration (counted from 0) whose rollout or update produced it.
        iteration: usize,
        /// What was not finite, for example `Loss/value`.
        quantity: String,
    },
    /// A collective call with the other workers of a data-parallel run failed.
    #[error("{operation} with the other workers: {error}")]
    Collective {
        /// What was being done (`averaging the gradients`).
        operation: &'static str,
        /// The communicator's error (it names the worker).
        error: rl_core::CollectiveError,
    },
    /// Methods were called out of order (a bug in the caller).
    #[error("PPO used out of order: {0}")]
    Protocol(&'static str),
}

impl From<Error> for rl_core::AlgorithmError {
    fn from(e: Error) -> Self {
        match e {
            Error::NonFinite {
                iteration,
                quantity,
            } => rl_core::AlgorithmError::NonFinite {
                iteration,
                quantity,
            },
            Error::Collective { error, .. } => rl_core::AlgorithmError::Collective(error),
            other => rl_core::AlgorithmError::Other(Box::new(other)),
        }
    }
}
