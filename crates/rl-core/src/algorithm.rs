//! The [`Algorithm`] trait: what the on-policy runner needs from a learning algorithm.

use std::collections::BTreeMap;

use burn::tensor::{Tensor, backend::AutodiffBackend};

use crate::{Observations, StepOutput};

/// Scalars an update reports, keyed by their TensorBoard tag (for example `Loss/value`).
pub type UpdateStats = BTreeMap<String, f64>;

/// An on-policy learning algorithm.
///
/// Rollouts run on the inner (non-autodiff) backend `B::InnerBackend`; only [`update`]
/// records gradients. The runner drives it as:
/// `act -> env.step -> process_env_step` for `num_steps_per_env` steps, then
/// `compute_returns`, then `update`.
///
/// [`update`]: Algorithm::update
pub trait Algorithm<B: AutodiffBackend> {
    /// The algorithm's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Samples actions `[N, A]` for the current observations and remembers what the
    /// update will need (values, log-probabilities, distribution parameters).
    fn act(
        &mut self,
        obs: &Observations<B::InnerBackend>,
    ) -> Result<Tensor<B::InnerBackend, 2>, Self::Error>;

    /// Stores the transition that `act` started, given what the environment returned.
    fn process_env_step(&mut self, step: &StepOutput<B::InnerBackend>) -> Result<(), Self::Error>;

    /// Computes returns and advantages of the stored rollout, bootstrapping from the
    /// observations after its last step.
    fn compute_returns(
        &mut self,
        last_obs: &Observations<B::InnerBackend>,
    ) -> Result<(), Self::Error>;

    /// Learns from the stored rollout and clears it; returns the scalars to log.
    fn update(&mut self) -> Result<UpdateStats, Self::Error>;

    /// Deterministic actions (the mean of the policy) for evaluation, `[N, A]`.
    fn act_inference(
        &self,
        obs: &Observations<B::InnerBackend>,
    ) -> Result<Tensor<B::InnerBackend, 2>, Self::Error>;

    /// Tells the algorithm which iteration starts (schedules that depend on it).
    fn set_iteration(&mut self, iteration: usize);

    /// The learning rate in use now.
    fn learning_rate(&self) -> f64;

    /// Serialises everything needed to continue training (weights, optimizer state,
    /// learning rate, normaliser statistics, random state).
    fn save_state(&self) -> Result<Vec<u8>, Self::Error>;

    /// Restores what [`Algorithm::save_state`] wrote.
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
}
