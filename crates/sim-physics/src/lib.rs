//! Articulated rigid-body physics, batched over environments as Burn tensor ops.
//!
//! The simulator knows robots, not tasks: it depends on Burn and the URDF and XML parsers
//! only, and `sim-gpu` builds its legged environments on top of it.
//!
//! - [`Model`]: a kinematic tree of links and revolute or prismatic joints on a fixed or
//!   floating base, with collision shapes; [`load_urdf`] reads one from a URDF file,
//!   [`load_mjcf`] from an MJCF (MuJoCo XML) file with its keyframes and actuators
//!   ([`Robot`]), and [`load_robot`] either by the file's extension.
//! - [`Articulation`]: `N` copies of a model stepped together: reduced coordinates, the mass
//!   matrix from link Jacobians and a batched LDL^T solve, joint damping, PD drives, limits
//!   and soft ground contact treated implicitly, semi-implicit Euler integration.
//! - [`TerrainConfig`]: legged_gym's rough terrain, a grid of sub-terrains (slopes, stairs,
//!   obstacles, stepping stones, gaps, pits) of rising difficulty, generated into a
//!   [`HeightField`] ([`Terrain`]).
//! - [`robots`]: the robots that ship with the crate; [`trace`]: a recorded trajectory for
//!   comparisons with MuJoCo.
//! - [`scatter_rows`]: writes chosen environments' rows into a batch (also used by the tasks).
//! - `cube` (features `wgpu`, `cuda`): the GPU path, the step as one CubeCL kernel, and the
//!   dispatch that the tasks' kernels use too.
//! - [`Error`]: the error type of this crate.

mod articulation;
mod batch;
mod config;
#[cfg(feature = "cube")]
pub mod cube;
mod error;
mod export;
mod heightfield;
mod mesh;
mod mjcf;
mod model;
pub mod robots;
pub(crate) mod soa;
mod terrain;
mod trace;
mod urdf;
#[cfg(test)]
mod validation;

pub use articulation::Articulation;
pub use batch::{Scattered, scatter_rows};
pub use config::{ContactConfig, SimConfig};
pub use error::{Error, Result};
pub use export::to_urdf;
pub use heightfield::{DeviceHeightField, HeightField};
pub use mjcf::{
    Actuator, ActuatorKind, Keyframe, MjcfOptions, Robot, load_mjcf, load_robot, parse_mjcf,
};
pub use model::{
    BaseKind, Collision, ContactPoint, IDENTITY, Joint, JointKind, Link, Mat3, Model, Pose, Shape,
    Vec3,
};
pub use terrain::{SubTerrain, Terrain, TerrainConfig, TerrainKind, TerrainProportions};
pub use trace::{TraceRecord, TraceRequest, trace};
pub use urdf::{UrdfOptions, load_urdf, parse_urdf};
