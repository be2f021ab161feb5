//! The crate's error type: every variant names the file or directory and what failed.

use std::path::PathBuf;

/// Errors from writing training logs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The run directory could not be created or is not writable.
    #[error(
        "cannot create or write to the run directory {path}: {source}; check that the parent exists and is writable"
    )]
    RunDir {
        /// The run directory.
        path: PathBuf,
        /// The underlying IO error.
        #[source]
        source: std::io::Error,
    },

    /// Opening, reading, writing or flushing a log file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done, for example "append a row to".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying IO error.
        #[source]
        source: std::io::Error,
    },

    /// A scalar tag collides with one of the fixed `metrics.jsonl` keys.
    #[error(
        "scalar tag {tag:?} (iteration {iteration}) collides with a fixed key of {path}; \
         rename the tag (TensorBoard tags look like \"Loss/value\")"
    )]
    ReservedTag {
        /// The offending tag.
        tag: String,
        /// The iteration whose record carried it.
        iteration: usize,
        /// The `metrics.jsonl` file.
        path: PathBuf,
    },

    /// The TensorBoard writer failed (its writer thread stopped, for example on a full disk).
    ///
    /// The writer is disabled after this error; the other writers keep working.
    #[error(
        "TensorBoard writer for {path} failed while {action}; TensorBoard logging is disabled \
         for the rest of the run (check free disk space and permissions)"
    )]
    TensorBoard {
        /// The directory the event file is written to.
        path: PathBuf,
        /// What was being done, for example "writing iteration 12".
        action: String,
    },
}
