//! The error type of `rl-modules`.

/// Everything that can go wrong in `rl-modules`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range or inconsistent.
    #[error("invalid config field `{field}`: {message}")]
    Config {
        /// The field path, for example `policy.min_std`.
        field: String,
        /// What was expected and what was found.
        message: String,
    },

    /// An activation was asked for by a name that is not known.
    #[error("unknown activation `{name}`; valid names are: {valid}")]
    UnknownActivation {
        /// The name that was given.
        name: String,
        /// The valid names, comma separated.
        valid: String,
    },

    /// Two sizes that must agree do not.
    #[error("dimension mismatch in {what}: expected {expected}, got {got}")]
    DimensionMismatch {
        /// What was being checked, for example `"normalizer state mean"`.
        what: String,
        /// The size this object has.
        expected: usize,
        /// The size that was given.
        got: usize,
    },

    /// An observation group is missing or a tensor has the wrong shape.
    #[error(transparent)]
    Core(#[from] rl_core::Error),

    /// A network's weights could not be serialised or read back.
    #[error("{0}")]
    Record(String),

    /// Reading a tensor back to the host failed.
    #[error("could not read {what} back from the device: {reason}")]
    Readback {
        /// Which tensor was being read.
        what: String,
        /// Why it failed, as reported by the backend.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
