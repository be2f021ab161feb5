//! What an environment looks like, for rendering: [`Scene`], the shapes of one
//! environment's bodies at one instant, read back to the host, with the ground around them
//! ([`HeightPatch`]) on rough terrain.

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
    /// The ground around the focus when it is not a plane (then `ground` is `None`).
    /// Recordings from before rough terrain read as `None`.
    #[serde(default)]
    pub terrain: Option<HeightPatch>,
    /// Seconds of simulated time since the previous scene of the same recording.
    pub dt: f32,
}

/// Ground heights on a regular grid around the robot: a window of the simulator's height
/// field, read by its rule (bilinear between samples, the nearest edge outside the grid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeightPatch {
    /// World xy of sample `(0, 0)` (m).
    pub origin: [f32; 2],
    /// Distance between neighbouring samples (m).
    pub spacing: f32,
    /// Samples along x (at least 1).
    pub rows: usize,
    /// Samples along y (at least 1).
    pub cols: usize,
    /// Heights (m), row-major: sample `(i, j)` at `i * cols + j` lies at
    /// `origin + (i spacing, j spacing)`; `rows * cols` of them.
    pub heights: Vec<f32>,
}

impl HeightPatch {
    /// Height of the ground at world `(x, y)` (m): inside the cell with corners
    /// `h00, h10, h01, h11` at fractions `u` (along x) and `v` (along y),
    /// `(1-u)(1-v) h00 + u (1-v) h10 + (1-u) v h01 + u v h11`; outside the grid, the point
    /// is clamped onto its edge (`sim_physics::HeightField`'s rule).
    ///
    /// # Panics
    /// If `rows` or `cols` is 0 or there are fewer than `rows * cols` heights.
    pub fn height_at(&self, x: f32, y: f32) -> f32 {
        // The lower sample of the cell along one axis and the fraction inside it.
        let axis = |p: f32, o: f32, n: usize| {
            let last = n - 1;
            let g = ((p - o) / self.spacing).clamp(0.0, last as f32);
            let i = (g.floor() as usize).min(last.saturating_sub(1));
            (i, g - i as f32)
        };
        let (i, u) = axis(x, self.origin[0], self.rows);
        let (j, v) = axis(y, self.origin[1], self.cols);
        // A grid one sample wide along an axis has no second sample: reuse the first.
        let h = |i: usize, j: usize| {
            self.heights[i.min(self.rows - 1) * self.cols + j.min(self.cols - 1)]
        };
        (1.0 - u) * (1.0 - v) * h(i, j)
            + u * (1.0 - v) * h(i + 1, j)
            + (1.0 - u) * v * h(i, j + 1)
            + u * v * h(i + 1, j + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3 x 2 samples of 0.5 m from (1, -1): heights `i + 10 j`, but 15 at `(1, 1)` so that
    /// the surface is no plane (0, 10; 1, 15; 2, 12).
    fn patch() -> HeightPatch {
        HeightPatch {
            origin: [1.0, -1.0],
            spacing: 0.5,
            rows: 3,
            cols: 2,
            heights: vec![0.0, 10.0, 1.0, 15.0, 2.0, 12.0],
        }
    }

    #[test]
    fn height_at_is_bilinear_inside_and_clamped_outside() {
        let p = patch();
        let close = |x: f32, y: f32, want: f32| {
            let h = p.height_at(x, y);
            assert!((h - want).abs() < 1e-5, "({x}, {y}): {h}, want {want}");
        };
        // On samples.
        close(1.0, -1.0, 0.0);
        close(1.5, -0.5, 15.0);
        close(2.0, -1.0, 2.0);
        // Inside cell (0, 0) at u = 0.5, v = 0.2: 0.4 * 1 + 0.1 * 10 + 0.1 * 15.
        close(1.25, -0.9, 2.9);
        // Cell (1, 0) at u = 0.8, v = 0.6: 0.08 * 1 + 0.32 * 2 + 0.12 * 15 + 0.48 * 12.
        close(1.9, -0.7, 8.28);
        // Outside: onto the edge (x past the last row, y before the first column; both).
        close(5.0, -0.75, 7.0);
        close(1.25, -3.0, 0.5);
        close(-4.0, 2.0, 10.0);
    }

    #[test]
    fn a_patch_one_sample_wide_reads_that_sample() {
        let p = HeightPatch {
            origin: [0.0, 0.0],
            spacing: 0.1,
            rows: 1,
            cols: 2,
            heights: vec![1.0, 3.0],
        };
        assert!((p.height_at(0.3, 0.05) - 2.0).abs() < 1e-6);
        assert!((p.height_at(-0.3, 0.2) - 3.0).abs() < 1e-6);
    }
}
