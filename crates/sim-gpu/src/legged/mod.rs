//! A manager-based legged locomotion task (IsaacLab style, legged_gym's terms), batched.
//!
//! A task is assembled from small named terms that read one [`terms::TermContext`] per
//! policy step; managers weight, sum, noise, clip and scale them as a [`LeggedConfig`]
//! (the `[env]` table of a training config) lists them.
//!
//! - [`env`](mod@env): [`LeggedEnv`], the environment: it owns the simulator and the managers and
//!   calls them in IsaacLab's step order.
//! - [`actions`]: [`actions::ActionManager`], actions to joint targets.
//! - [`commands`]: [`commands::CommandManager`], velocity commands, heading and the tracking
//!   errors.
//! - [`events`]: [`events::EventManager`], startup, reset and interval events (pushes), and
//!   [`events::Draw`], a step's random numbers by name.
//! - [`rewards`]: [`rewards::RewardManager`], the weighted reward terms and their sums.
//! - [`terminations`]: [`terminations::TerminationManager`], terminations and time-outs.
//! - [`observations`]: [`observations::ObservationManager`], and the observation terms with
//!   their table.
//! - [`terms`]: the reward and termination terms with their tables (name, function,
//!   legged_gym's default), the context they read, and the feet air-time update.
//! - [`terrain`]: [`terrain::TerrainManager`], rough terrain, its curriculum and spawn
//!   points, and [`terrain::ScanPoints`], the height scan's grid.
//! - [`config`]: [`LeggedConfig`] and its sections, with legged_gym's flat-ground defaults.
//!
//! Adding a reward (termination) term is one function in `terms.rs` plus one row in the
//! table of [`terms::RewardTerm::ALL`] ([`terms::TerminationTerm::ALL`]): its name, the
//! function and its default weight (threshold). Adding an observation term is one function
//! in `observations.rs` plus one row in the table of [`observations::ObservationTerm::ALL`].

pub mod actions;
pub mod commands;
pub mod config;
pub mod env;
pub mod events;
pub mod observations;
pub mod rewards;
pub mod terminations;
pub mod terms;
pub mod terrain;

use burn::tensor::{Bool, Tensor, backend::Backend};

pub use config::LeggedConfig;
pub use env::LeggedEnv;

/// Keeps `old` `[N, K]` where `mask` `[N]` is false and takes `new` `[N, K]` where it is
/// true (the managers' resets).
fn choose<B: Backend>(
    mask: &Tensor<B, 1, Bool>,
    old: Tensor<B, 2>,
    new: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let [n, k] = old.dims();
    old.mask_where(mask.clone().unsqueeze_dim::<2>(1).expand([n, k]), new)
}

#[cfg(all(test, feature = "wgpu"))]
mod wgpu_tests;
