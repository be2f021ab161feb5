//! The error type of rl-storage.

/// Errors of the rollout storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// More transitions were added than the rollout has steps.
    #[error(
        "rollout storage overflow: it holds {num_steps} steps per environment; call `clear` after each update"
    )]
    Overflow {
        /// Steps per environment the storage holds.
        num_steps: usize,
    },
    /// The rollout was used before it was complete.
    #[error("rollout incomplete: {have} of {num_steps} steps stored")]
    Incomplete {
        /// Steps stored so far.
        have: usize,
        /// Steps expected.
        num_steps: usize,
    },
    /// A transition's tensor has the wrong shape.
    #[error("transition field `{field}`: expected shape {expected:?}, got {got:?}")]
    Shape {
        /// The field.
        field: &'static str,
        /// Expected shape.
        expected: Vec<usize>,
        /// Actual shape.
        got: Vec<usize>,
    },
    /// Mini-batch settings that cannot split the batch.
    #[error(
        "cannot split a batch of {batch_size} samples into {num_mini_batches} mini-batches: {reason}"
    )]
    MiniBatches {
        /// Samples in the rollout (`T * N`).
        batch_size: usize,
        /// Requested number of mini-batches.
        num_mini_batches: usize,
        /// Why not.
        reason: &'static str,
    },
    /// A recurrent update splits the environments into mini-batches.
    #[error(
        "a recurrent update splits the {num_envs} environments into mini-batches of whole \
         trajectories: num_mini_batches ({num_mini_batches}) must divide num_envs"
    )]
    EnvMiniBatches {
        /// Environments in the rollout.
        num_envs: usize,
        /// Requested number of mini-batches.
        num_mini_batches: usize,
    },
    /// A recurrent mini-batch was asked of a rollout stored without hidden states.
    #[error("the rollout holds no hidden states: a recurrent mini-batch needs a model with memory")]
    NoMemory,
    /// The rollout's `dones` could not be read to the host.
    #[error("cannot read the rollout's dones: {0}")]
    Readback(String),
}

/// Result with the error type of rl-storage.
pub type Result<T, E = Error> = std::result::Result<T, E>;
