//! The error type of rl-core.

/// Errors raised by environments and the shared types.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An environment-specific failure (a simulator setting the environment could not
    /// apply), with the environment's message.
    #[error("environment: {0}")]
    Env(String),
    /// A tensor passed to an environment or algorithm has the wrong shape.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    Shape {
        /// What the tensor is (for example "actions").
        what: String,
        /// The shape that was expected.
        expected: Vec<usize>,
        /// The shape that was passed.
        got: Vec<usize>,
    },
    /// An observation group was asked for that the environment does not provide.
    #[error("unknown observation group `{name}`; this environment provides: {available}")]
    UnknownObsGroup {
        /// The group that was asked for.
        name: String,
        /// The groups that exist, comma-separated.
        available: String,
    },
    /// A value read back from the device could not be converted.
    #[error("could not read {what} back from the device: {reason}")]
    Readback {
        /// What was being read.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// An environment snapshot was taken of another task.
    #[error(
        "environment snapshot is of task `{got}`, but this environment is `{expected}`; load a checkpoint of the same task"
    )]
    SnapshotTask {
        /// The task of the environment it is loaded into.
        expected: String,
        /// The task of the snapshot.
        got: String,
    },
    /// An environment snapshot was taken with another number of environments.
    #[error(
        "environment snapshot holds {got} environments, but this batch has {expected}; resume with the same num_envs"
    )]
    SnapshotNumEnvs {
        /// Number of environments of the batch it is loaded into.
        expected: usize,
        /// Number of environments in the snapshot.
        got: usize,
    },
    /// An environment snapshot lacks an entry.
    #[error("environment snapshot has no entry `{name}` (it has: {available})")]
    SnapshotMissing {
        /// The entry that was looked for.
        name: String,
        /// The entries of that kind it has, comma-separated.
        available: String,
    },
    /// An entry of an environment snapshot has the wrong shape or size.
    #[error("environment snapshot entry `{name}` is ill-formed: {reason}")]
    SnapshotEntry {
        /// The entry.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other invalid argument.
    #[error("{0}")]
    Invalid(String),
}

/// Result with the error type of rl-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
