//! Core traits and types of cross-gym, shared by every other crate.
//!
//! - [`VecEnv`]: a batch of `N` environments stepped together on one device, with its
//!   [`EnvSpec`], named [`Observations`] groups and the [`StepOutput`] of a step.
//! - [`EnvSnapshot`] and [`HostTensor`]: a [`VecEnv`]'s whole state on the host, for
//!   checkpoints that resume bit for bit.
//! - [`Algorithm`]: what the on-policy runner needs from a learning algorithm.
//! - [`EnvRng`] and [`HostRng`]: seeded, serialisable random streams, so that the same seed
//!   gives the same run on every backend.
//! - [`Sequences`]: padded trajectories of a rollout, what a recurrent model reads in an
//!   update.
//! - [`Scene`]: the shapes of one environment at one instant, with the ground around it
//!   ([`HeightPatch`]), for rendering.
//! - [`EnvLayout`]: what each observation and action column means, for deployment.
//! - [`Communicator`]: a data-parallel worker's collective calls (all-reduce, broadcast,
//!   gather) with the other workers of its run, and their [`CollectiveError`].
//! - [`Error`]: the error type of this crate.

mod algorithm;
mod collective;
mod env;
mod error;
mod layout;
mod scene;
mod seeding;
mod sequences;
mod snapshot;

pub use algorithm::{Algorithm, AlgorithmError, ComputeCost, UpdateStats};
pub use collective::{CollectiveError, Communicator};
pub use env::{ActionSpace, EnvSpec, EpisodeInfo, Observations, StepOutput, VecEnv};
pub use error::{Error, Result};
pub use layout::{ActionLayout, EnvLayout, ObsGroupLayout, ObsTermLayout, RobotLayout};
pub use scene::{HeightPatch, Scene, SceneShape};
pub use seeding::{EnvRng, HostRng};
pub use sequences::Sequences;
pub use snapshot::{EnvSnapshot, HostTensor};
