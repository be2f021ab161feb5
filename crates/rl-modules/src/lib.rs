//! Neural-network building blocks: MLP, activations, distributions, normalisers.
//!
//! Everything is generic over Burn's [`Backend`](burn::tensor::backend::Backend):
//!
//! - [`Activation`]: element-wise activations chosen by name (`"elu"`, `"tanh"`, ...).
//! - [`MlpConfig`] and [`Mlp`]: the multi-layer perceptron used for actor and critic, with
//!   PyTorch's default initialisation.
//! - [`PolicyConfig`]: the model's settings, the `[policy]` table of a training config.
//! - [`ObsInput`]: what a network reads (its observation groups and its own normaliser).
//! - [`ActorCritic`]: actor and critic MLPs and the learnable action std (the weights);
//!   [`MlpModel`]: those networks with their inputs, an [`ActorCriticModel`] (what an
//!   algorithm trains: a recurrent model is a second implementation).
//! - [`Policy`]: the inference policy (actor weights and input, no critic, no optimiser)
//!   that `play`, benchmarks and export run.
//! - [`DiagGaussian`]: the Gaussian policy distribution (sample, log-probability, entropy,
//!   KL divergence), summed over action dimensions.
//! - [`Categorical`]: the discrete policy distribution over `n` choices (logits in;
//!   log-probability, entropy and KL in closed form; Gumbel-max sampling).
//! - [`ActionDistribution`]: either of the two, so that an algorithm is written once for
//!   continuous and discrete actions.
//! - [`EmpiricalNormalizer`] and [`NormalizerState`]: rsl_rl's running observation
//!   normaliser and its checkpoint state.
//! - [`masked_mean`] and [`masked_sum`]: reductions that skip padded entries.
//! - [`Error`]: the error type of this crate.

mod action;
mod activation;
mod actor_critic;
mod categorical;
mod config;
mod distribution;
mod error;
mod fused;
mod input;
mod masked;
mod mlp;
mod model;
mod normalizer;
mod policy;
mod precision;

pub use action::ActionDistribution;
pub use activation::Activation;
pub use actor_critic::{ActorCritic, StdSettings, parameter_shapes};
pub use categorical::Categorical;
pub use config::{NoiseStdSchedule, NoiseStdType, ObsGroups, PolicyConfig};
pub use distribution::DiagGaussian;
pub use error::{Error, Result};
pub use fused::{linear_act, reference as linear_act_reference};
pub use input::ObsInput;
pub use masked::{masked_mean, masked_sum};
pub use mlp::{Mlp, MlpConfig};
pub use model::{ActOutput, ActorCriticModel, InputsState, MlpModel};
pub use normalizer::{EmpiricalNormalizer, NormalizerState};
pub use policy::Policy;
pub use precision::Precision;
