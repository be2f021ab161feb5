//! Padded trajectories: what a recurrent model reads in an update.

use burn::tensor::{Int, Tensor, backend::Backend};

use crate::Observations;

/// `K` trajectories of a rollout, each cut where an episode ended, padded to the longest
/// (`T` steps) and laid out time-major: row `t * K + k` of every tensor is step `t` of
/// trajectory `k`. A recurrent model runs its memory over the `T` steps from each
/// trajectory's stored first hidden state, then keeps the rows in `samples` (the real steps,
/// in the order of the mini-batch's other fields). Padding rows repeat a real row and are
/// never read into a loss.
#[derive(Debug, Clone)]
pub struct Sequences<B: Backend> {
    /// Observation groups of the padded trajectories, `[T * K, D_group]` each.
    pub observations: Observations<B>,
    /// The model's hidden state at each trajectory's first step, as it stored it, `[K, S]`.
    pub memory: Tensor<B, 2>,
    /// 1 where a row is a real step, 0 for padding, `[T, K]`.
    pub mask: Tensor<B, 2>,
    /// Rows of the padded layout that are real steps, `[M]`: sample `i` of the mini-batch
    /// is row `samples[i]`.
    pub samples: Tensor<B, 1, Int>,
    /// Steps of the longest trajectory (`T`).
    pub length: usize,
    /// Number of trajectories (`K`).
    pub count: usize,
}
