//! The simulator's GPU path: hand-written CubeCL kernels for CubeCL backends (wgpu, cuda),
//! dispatched at run time from the generic code (see [`dispatch`]).

pub(crate) mod articulation;
pub(crate) mod dispatch;

pub use dispatch::{CubeProgram, empty_outputs, per_environment, run};

#[cfg(all(test, feature = "wgpu"))]
mod wgpu_tests;
