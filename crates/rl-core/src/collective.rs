//! [`Communicator`]: what a data-parallel worker needs from the other workers of its run.
//!
//! A data-parallel run has `world_size` workers, ranks `0..world_size`, each with its own
//! environments; rank 0 writes the logs and checkpoints. Every collective call must be made
//! by every worker, in the same order, with buffers of the same length: a call is a
//! rendezvous. An implementation fails (rather than waiting forever) when a worker leaves
//! or stops answering, naming it.

use std::time::Duration;

/// Why a collective call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CollectiveError {
    /// A worker closed its connection or its process ended.
    #[error("worker {rank} of {world_size} left the run ({reason})")]
    WorkerLost {
        /// The worker that left.
        rank: usize,
        /// The number of workers.
        world_size: usize,
        /// What was seen: the connection closed, reset, or the error it reported.
        reason: String,
    },
    /// A worker did not answer in time (it hangs, or never joined).
    #[error(
        "worker {rank} of {world_size} did not answer within {:.0} s while {during} \
         (--dist-timeout)",
        timeout.as_secs_f64()
    )]
    Timeout {
        /// The worker that was waited for.
        rank: usize,
        /// The number of workers.
        world_size: usize,
        /// What the call was doing.
        during: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// Another worker stopped the run, for the reason given (rank 0 tells every worker).
    #[error("the run was stopped by worker {rank}: {reason}")]
    Aborted {
        /// The worker whose failure stopped the run.
        rank: usize,
        /// Its error, in its own words.
        reason: String,
    },
    /// The workers disagree (different calls, lengths, configs or world sizes).
    #[error("worker {rank} is out of step with the others: {message}")]
    Mismatch {
        /// The worker that disagrees.
        rank: usize,
        /// What differs.
        message: String,
    },
    /// The network could not be set up (an address that does not resolve, a port in use).
    #[error("{address}: {message}")]
    Address {
        /// The address as given.
        address: String,
        /// What went wrong.
        message: String,
    },
}

/// One worker's view of a data-parallel run: its rank, the run's size, and the collective
/// calls (all blocking; every worker makes the same calls in the same order).
pub trait Communicator: Send + Sync {
    /// This worker's rank, `0..world_size`; rank 0 logs and checkpoints.
    fn rank(&self) -> usize;

    /// The number of workers.
    fn world_size(&self) -> usize;

    /// Replaces `values` by their element-wise sum over the workers. Every worker gets the
    /// same bits (the sum is taken once, in rank order). `what` names the call in errors.
    fn all_reduce_sum_f32(&self, values: &mut [f32], what: &str) -> Result<(), CollectiveError>;

    /// [`Communicator::all_reduce_sum_f32`] in double precision (counters, statistics).
    fn all_reduce_sum_f64(&self, values: &mut [f64], what: &str) -> Result<(), CollectiveError>;

    /// Rank 0's `bytes`, on every worker (the others pass anything; it is ignored).
    fn broadcast(&self, bytes: Vec<u8>, what: &str) -> Result<Vec<u8>, CollectiveError>;

    /// Every worker's `bytes`, in rank order, on rank 0; `None` on the others.
    fn gather(&self, bytes: Vec<u8>, what: &str) -> Result<Option<Vec<Vec<u8>>>, CollectiveError>;

    /// Tells the other workers that this one fails with `reason`, so that they stop with
    /// [`CollectiveError::Aborted`] instead of waiting for it. Best effort; after it the
    /// communicator should not be used.
    fn abort(&self, reason: &str);
}
