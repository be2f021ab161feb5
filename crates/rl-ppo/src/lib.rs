//! Proximal Policy Optimization for cross-gym, generic over Burn's `AutodiffBackend`.
//!
//! - [`PpoConfig`] (`[algorithm]`, rsl_rl's names and defaults) and [`PolicyConfig`]
//!   (`[policy]`).
//! - [`Ppo`]: rollouts on the inner backend, the clipped-surrogate update with clipped value
//!   loss, entropy bonus, gradient-norm clipping and the KL-adaptive learning rate.
//! - [`DataParallel`]: workers that pool their observation statistics before every update
//!   and average their gradients and KL before every step (through an
//!   [`rl_core::Communicator`]), so that they keep identical weights.

pub mod config;
mod error;
mod parallel;
mod ppo;

pub use config::{
    GradNormClip, LearningRateSchedule, NoiseStdSchedule, NoiseStdType, ObsGroups, PolicyConfig,
    PpoConfig, TimeoutBootstrap,
};
pub use error::Error;
pub use parallel::DataParallel;
pub use ppo::{
    Ppo, adapt_learning_rate, clip_coefficient, clip_gradients, surrogate_loss, value_loss,
};
