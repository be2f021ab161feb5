//! On-device rollout storage for on-policy algorithms.
//!
//! - [`RolloutStorage`]: collects one [`Transition`] per environment step and, at the end of
//!   the rollout, stacks them into a [`Rollout`] of tensors shaped `[T, N, ...]`.
//! - [`Rollout::compute_returns`]: generalised advantage estimation (GAE) with
//!   terminations and time-outs, exactly as rsl_rl.
//! - [`MiniBatchSchedule`]: shuffled mini-batch indices, each sample exactly once per epoch,
//!   and [`Rollout::mini_batch`] to gather one [`MiniBatch`].
//! - [`TrajectoryPlan`], [`env_schedule`] and [`Rollout::recurrent_mini_batch`]: mini-batches
//!   of whole environments for recurrent models, their rollouts cut at episode ends and
//!   padded, with the hidden state of each trajectory's first step.

mod error;
mod minibatch;
mod recurrent;
mod rollout;

pub use error::{Error, Result};
pub use minibatch::{MiniBatchSchedule, Shuffle};
pub use recurrent::{TrajectoryPlan, env_schedule};
pub use rollout::{MiniBatch, Rollout, RolloutStorage, Transition, gae, normalize};
