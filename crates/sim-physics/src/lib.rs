//! Articulated rigid-body physics, batched over environments as Burn tensor ops.
//!
//! - [`Model`]: a kinematic tree of links and revolute or prismatic joints on a fixed or
//!   floating base, with collision shapes; [`load_urdf`] reads one from a URDF file.
//! - [`Articulation`]: `N` copies of a model stepped together: reduced coordinates, the mass
//!   matrix from link Jacobians and a batched LDL^T solve, joint damping, PD drives, limits
//!   and soft ground contact treated implicitly, semi-implicit Euler integration.

mod articulation;
mod config;
mod model;
pub mod robots;
pub(crate) mod soa;
mod trace;
mod urdf;
#[cfg(test)]
mod validation;

pub use articulation::Articulation;
pub use config::{ContactConfig, SimConfig};
pub use model::{
    BaseKind, Collision, ContactPoint, IDENTITY, Joint, JointKind, Link, Mat3, Model, Pose, Shape,
    Vec3,
};
pub use trace::{TraceRecord, TraceRequest, trace};
pub use urdf::{UrdfOptions, load_urdf, parse_urdf};
