//! The error type of rl-core.

/// Errors raised by environments and the shared types.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// Any other invalid argument.
    #[error("{0}")]
    Invalid(String),
}

/// Result with the error type of rl-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
