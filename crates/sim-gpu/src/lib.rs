//! Batched environments written as Burn tensor ops, with a task registry.
//!
//! Every environment holds the state of `N` copies as tensors `[N, K]` on one device and
//! steps them together with batched tensor ops (no loop over environments, no read-back to
//! the host inside `step`). Finished environments are reset inside `step` (auto-reset).
//!
//! - [`CartPole`]: Gymnasium CartPole-v1 with a continuous force `F = 10 clamp(a, -1, 1)`.
//! - [`Pendulum`]: Gymnasium Pendulum-v1.
//! - [`make_env`] and [`TASKS`]: build an environment batch by task name; [`make_classic`]
//!   builds a classic-control task with access to its internal state ([`ClassicEnv`]).
//! - [`Transition`]: one step of a task's pure dynamics (`CartPole::dynamics`,
//!   `Pendulum::dynamics`), before time limits and auto-reset.
//! - [`Error`]: the error type of this crate.
//!
//! Both implement [`rl_core::VecEnv`]; their dynamics match Gymnasium step by step (the
//! unit tests compare them with transitions recorded from Gymnasium itself, see
//! `tools/gymnasium/make_fixtures.py`).

mod cartpole;
mod classic;
mod common;
mod error;
mod pendulum;
mod registry;
#[cfg(test)]
mod testing;

pub use cartpole::CartPole;
pub use classic::ClassicEnv;
pub use common::Transition;
pub use error::{Error, Result};
pub use pendulum::Pendulum;
pub use registry::{CLASSIC_TASKS, TASKS, make_classic, make_env};
