//! The [`Algorithm`] trait: what the on-policy runner needs from a learning algorithm.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::tensor::{Tensor, backend::AutodiffBackend};

use crate::{CollectiveError, Communicator, Observations, StepOutput};

/// Scalars an update reports, keyed by their TensorBoard tag (for example `Loss/value`).
pub type UpdateStats = BTreeMap<String, f64>;

/// Why an algorithm failed, as the runner sees it: a NaN or infinity (which the runner
/// reports with the last good checkpoint), or anything else, in the algorithm's own words.
#[derive(Debug, thiserror::Error)]
pub enum AlgorithmError {
    /// A quantity of the rollout or the update was NaN or infinite.
    #[error("iteration {iteration}: non-finite values in {quantity}")]
    NonFinite {
        /// The iteration (counted from 0) whose rollout or update produced it.
        iteration: usize,
        /// What was not finite, for example `Loss/value`.
        quantity: String,
    },
    /// A collective call with the other workers of a data-parallel run failed.
    #[error(transparent)]
    Collective(#[from] CollectiveError),
    /// Any other failure of the algorithm (its own error type, boxed).
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// Matrix FLOPs an algorithm spends per sample, for the benchmark's GFLOP/s figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ComputeCost {
    /// Forward passes of one environment step during the rollout.
    pub rollout_flop_per_sample: f64,
    /// Forward and backward passes spent on one stored sample by a whole update (every
    /// epoch).
    pub update_flop_per_sample: f64,
}

/// An on-policy learning algorithm.
///
/// Rollouts run on the inner (non-autodiff) backend `B::InnerBackend`; only [`update`]
/// records gradients. The runner drives it as:
/// `act -> env.step -> process_env_step` for `num_steps_per_env` steps, then
/// `compute_returns`, then `update`. The runner knows algorithms only through this trait
/// (they are built by name in `rl-runner`'s algorithm registry).
///
/// [`update`]: Algorithm::update
pub trait Algorithm<B: AutodiffBackend> {
    /// Samples actions `[N, A]` for the current observations and remembers what the
    /// update will need (values, log-probabilities, distribution parameters).
    fn act(
        &mut self,
        obs: &Observations<B::InnerBackend>,
    ) -> Result<Tensor<B::InnerBackend, 2>, AlgorithmError>;

    /// Stores the transition that `act` started, given what the environment returned.
    fn process_env_step(
        &mut self,
        step: &StepOutput<B::InnerBackend>,
    ) -> Result<(), AlgorithmError>;

    /// Computes returns and advantages of the stored rollout, bootstrapping from the
    /// observations after its last step.
    fn compute_returns(
        &mut self,
        last_obs: &Observations<B::InnerBackend>,
    ) -> Result<(), AlgorithmError>;

    /// Learns from the stored rollout and clears it; returns the scalars to log.
    fn update(&mut self) -> Result<UpdateStats, AlgorithmError>;

    /// The inference policy alone (the actor's weights, memory and input normaliser, no
    /// critic or optimiser; what evaluation runs), serialised as `rl_modules::Policy::to_bytes` writes it, for checkpoints
    /// that `play` and export read without building the algorithm.
    fn save_policy(&self) -> Result<Vec<u8>, AlgorithmError>;

    /// Tells the algorithm which iteration starts (schedules that depend on it).
    fn set_iteration(&mut self, iteration: usize);

    /// The learning rate in use now.
    fn learning_rate(&self) -> f64;

    /// Matrix FLOPs per sample of a rollout step and of an update.
    fn compute_cost(&self) -> ComputeCost;

    /// Serialises everything needed to continue training (weights, optimizer state,
    /// learning rate, normaliser statistics, random state).
    fn save_state(&self) -> Result<Vec<u8>, AlgorithmError>;

    /// Restores what [`Algorithm::save_state`] wrote.
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), AlgorithmError>;

    /// Makes this algorithm one worker of a data-parallel run: from now on every update
    /// agrees with the other workers (through `comm`) on everything they share, so that
    /// workers that start from the same state keep the same weights. An algorithm that
    /// cannot train this way says so (the default).
    fn set_communicator(&mut self, comm: Arc<dyn Communicator>) -> Result<(), AlgorithmError> {
        let _ = comm;
        Err(AlgorithmError::Other(
            "this algorithm does not support data-parallel training".into(),
        ))
    }

    /// A checksum of everything the workers of a data-parallel run must hold alike: the
    /// values of every trained parameter, the normalisers' statistics and the learning rate
    /// (not their serialised form, which carries per-process parameter ids).
    fn shared_state_checksum(&self) -> Result<u64, AlgorithmError> {
        Err(AlgorithmError::Other(
            "this algorithm does not support data-parallel training".into(),
        ))
    }

    /// Restarts the algorithm's own random stream (action noise, mini-batch order) as
    /// stream `stream` of `seed`, leaving the weights: the workers of a data-parallel run
    /// start from the same weights but must not draw the same noise.
    fn reseed(&mut self, seed: u64, stream: u64) -> Result<(), AlgorithmError> {
        let _ = (seed, stream);
        Err(AlgorithmError::Other(
            "this algorithm does not support data-parallel training".into(),
        ))
    }
}
