//! A manager-based legged locomotion task (IsaacLab style, legged_gym's terms), batched.
//!
//! A task is assembled from small named terms that read one [`terms::TermContext`] per
//! policy step; managers weight, sum, noise, clip and scale them as a [`LeggedConfig`]
//! (the `[env]` table of a training config) lists them.
//!
//! - [`env`]: [`LeggedEnv`], the environment: actions, decimation, terminations, rewards,
//!   resets, commands, events and observations in IsaacLab's step order.
//! - [`config`]: [`LeggedConfig`] and its sections, with legged_gym's flat-ground defaults.
//! - [`terms`]: the reward and termination terms, their registries by name with
//!   legged_gym's default weights, and the feet air-time update.
//! - [`observations`]: the observation terms and their registry.
//!
//! Adding a reward (observation) term is one function in `terms.rs` (`observations.rs`)
//! plus its name in the registry's `match` and name list.

pub mod config;
pub mod env;
pub mod observations;
pub mod terms;

pub use config::LeggedConfig;
pub use env::LeggedEnv;
