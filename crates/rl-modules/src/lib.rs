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
//!   algorithm trains).
//! - [`Memory`]: LSTM or GRU layers with PyTorch's equations ([`RnnType`], [`MemoryConfig`]);
//!   [`RecurrentActorCritic`] and [`RnnModel`]: the recurrent actor-critic (`class = "rnn"`),
//!   a memory in front of each MLP, with the rollout's hidden states.
//! - [`Policy`]: the inference policy (actor input, memory and weights, no critic, no
//!   optimiser) that `play`, benchmarks and export run; a recurrent one carries its hidden
//!   state and is reset where episodes end.
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
mod recurrent;
mod rnn_model;

pub use action::ActionDistribution;
pub use activation::Activation;
pub use actor_critic::{ActorCritic, StdSettings, parameter_shapes};
pub use categorical::Categorical;
pub use config::{
    ModelClass, NoiseStdSchedule, NoiseStdType, ObsGroups, PolicyConfig, RnnSettings,
};
pub use distribution::DiagGaussian;
pub use error::{Error, Result};
pub use fused::{linear_act, reference as linear_act_reference};
pub use input::ObsInput;
pub use masked::{masked_mean, masked_sum};
pub use mlp::{Mlp, MlpConfig};
pub use model::{ActOutput, ActorCriticModel, Batch, InputsState, MlpModel};
pub use normalizer::{EmpiricalNormalizer, NormalizerState};
pub use policy::Policy;
pub use precision::Precision;
pub use recurrent::{Memory, MemoryConfig, RnnLayer, RnnType, reset_state};
pub use rnn_model::{RecurrentActorCritic, RnnModel};
