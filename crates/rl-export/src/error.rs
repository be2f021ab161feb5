//! Errors of export and of the ONNX runtime.

/// What went wrong exporting or running a policy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy's weights or statistics could not be read or written.
    #[error("{0}")]
    Policy(String),
    /// The policy does not fit the task (action columns, observation width).
    #[error("{0}")]
    Mismatch(String),
    /// An ONNX file that cannot be read or run, or is not a cross-gym policy graph.
    #[error("{origin}: {message}")]
    Onnx {
        /// The file (or `exported graph`).
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The inputs given to an ONNX policy do not have the sizes its graph takes.
    #[error("{0}")]
    Input(String),
    /// The safetensors store failed.
    #[error("cannot write the safetensors weights: {0}")]
    Safetensors(String),
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
