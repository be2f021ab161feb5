//! Batched environments written as Burn tensor ops, with a task registry.
//!
//! Every environment holds the state of `N` copies as tensors `[N, K]` on one device and
//! steps them together with batched tensor ops (no loop over environments, no read-back to
//! the host inside `step`). Finished environments are reset inside `step` (auto-reset). On
//! the CubeCL backends (features `wgpu`, `cuda`) a classic task's whole step runs instead as
//! one hand-written kernel, with the tensor ops as the reference (module `cube`).
//!
//! - [`CartPole`]: Gymnasium CartPole-v1 with a continuous force `F = 10 clamp(a, -1, 1)`.
//! - [`CartPoleDiscrete`]: Gymnasium CartPole-v1 exactly (push left or right).
//! - [`Pendulum`]: Gymnasium Pendulum-v1.
//! - [`Acrobot`]: Gymnasium Acrobot-v1 (three discrete torques).
//! - [`MountainCarContinuous`]: Gymnasium MountainCarContinuous-v0.
//! - [`make_env`] and [`TASKS`]: build an environment batch by task name, for training or
//!   evaluation ([`Purpose`]); [`validate_settings`] checks a task's settings; [`make_classic`]
//!   builds a classic-control task with access to its internal state ([`ClassicEnv`]).
//! - [`Observe`]: partial observability (the setting `env.observe`): the policy sees chosen
//!   columns of a task's observation, a `critic` group the whole of it.
//! - [`DynamicsStep`]: one step of a task's pure dynamics (`CartPole::dynamics`,
//!   `Acrobot::dynamics`, ...), before time limits and auto-reset.
//! - [`Error`]: the error type of this crate.
//!
//! All of them implement [`rl_core::VecEnv`] and [`ClassicEnv`]; their dynamics match
//! Gymnasium step by step (the unit tests compare them with transitions and whole episodes
//! recorded from Gymnasium itself, see `tools/gymnasium/make_fixtures.py`). Discrete tasks
//! take `[N, 1]` float actions holding the index, rounded to the nearest one and clamped
//! into range.

mod acrobot;
mod cartpole;
mod cartpole_discrete;
mod classic;
mod common;
#[cfg(feature = "cube")]
mod cube;
mod error;
pub mod legged;
mod math;
mod mountain_car_continuous;
mod observe;
mod pendulum;
mod registry;
#[cfg(test)]
mod testing;

pub use acrobot::Acrobot;
pub use cartpole::CartPole;
pub use cartpole_discrete::CartPoleDiscrete;
pub use classic::ClassicEnv;
pub use common::DynamicsStep;
pub use error::{Error, Result};
pub use mountain_car_continuous::MountainCarContinuous;
pub use observe::Observe;
pub use pendulum::Pendulum;
pub use registry::{
    Purpose, TASKS, classic_tasks, legged_config, make_classic, make_env, validate_settings,
};
