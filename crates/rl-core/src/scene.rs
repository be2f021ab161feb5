//! What an environment looks like, for rendering: [`Scene`], the shapes of one
//! environment's bodies at one instant, read back to the host.

use serde::{Deserialize, Serialize};

/// One drawn shape, world frame (metres, `z` up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SceneShape {
    /// A sphere.
    Sphere {
        /// Centre.
        center: [f32; 3],
        /// Radius.
        radius: f32,
    },
    /// A capsule: the segment `a`-`b` swept by a sphere of `radius` (a thin limb is a
    /// capsule of small radius).
    Capsule {
        /// One end of the segment.
        a: [f32; 3],
        /// The other end.
        b: [f32; 3],
        /// Radius.
        radius: f32,
    },
    /// A box: its eight corners, in the order `(-,-,-), (+,-,-), (-,+,-), (+,+,-), (-,-,+),
    /// (+,-,+), (-,+,+), (+,+,+)` of the box's own axes.
    Box {
        /// The corners.
        corners: [[f32; 3]; 8],
    },
}

/// The bodies of one environment at one instant, for a renderer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Scene {
    /// Shapes to draw.
    pub shapes: Vec<SceneShape>,
    /// The point a following camera looks at (the robot's base).
    pub focus: [f32; 3],
    /// Height of the ground plane (`z`), if there is one.
    pub ground: Option<f32>,
    /// Seconds of simulated time since the previous scene of the same recording.
    pub dt: f32,
}
