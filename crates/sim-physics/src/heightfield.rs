//! [`HeightField`]: ground heights on a regular grid, the surface that rough terrain is made
//! of, and the one rule by which every part of the simulator reads it.
//!
//! Between samples the surface is bilinear: inside the cell with corners `h00, h10, h01, h11`
//! at fractions `u` (along x) and `v` (along y),
//! `h = (1-u)(1-v) h00 + u (1-v) h10 + (1-u) v h01 + u v h11`, and its slope is that
//! expression's gradient. A point outside the grid reads the nearest edge sample's height (the
//! generated terrains end in a flat border) and a flat slope. The contact step (tensor path
//! and kernel), the height scan and the renderer all use this rule, so what a robot feels is
//! what it sees.

use crate::{Error, Result};

/// Ground heights on a regular grid over the xy-plane, z up.
#[derive(Debug, Clone, PartialEq)]
pub struct HeightField {
    /// Heights (m), row-major: sample `(i, j)` at `i * cols + j` lies at
    /// `origin + (i spacing, j spacing)`. Rows run along x, columns along y.
    pub heights: Vec<f32>,
    /// Samples along x (at least 2).
    pub rows: usize,
    /// Samples along y (at least 2).
    pub cols: usize,
    /// Distance between neighbouring samples (m), legged_gym's `horizontal_scale`.
    pub spacing: f64,
    /// World xy of sample `(0, 0)` (m).
    pub origin: [f64; 2],
}

/// Where a point falls on the grid: the lower corner of its cell and the fractions inside it,
/// with whether it lies inside the grid along x and along y.
struct Cell {
    i: usize,
    j: usize,
    u: f64,
    v: f64,
    inside_x: bool,
    inside_y: bool,
}

impl HeightField {
    /// A height field, checked: at least 2 x 2 samples, `heights.len() == rows * cols`,
    /// finite heights, a positive spacing.
    ///
    /// # Errors
    /// [`Error::Physics`] naming what is wrong.
    pub fn new(
        heights: Vec<f32>,
        rows: usize,
        cols: usize,
        spacing: f64,
        origin: [f64; 2],
    ) -> Result<Self> {
        if rows < 2 || cols < 2 {
            return Err(Error::Physics(format!(
                "a height field needs at least 2 x 2 samples, got {rows} x {cols}"
            )));
        }
        if heights.len() != rows * cols {
            return Err(Error::Physics(format!(
                "a height field of {rows} x {cols} samples needs {} heights, got {}",
                rows * cols,
                heights.len()
            )));
        }
        if !(spacing.is_finite() && spacing > 0.0) {
            return Err(Error::Physics(format!(
                "a height field's spacing must be > 0, got {spacing}"
            )));
        }
        if let Some(k) = heights.iter().position(|h| !h.is_finite()) {
            return Err(Error::Physics(format!(
                "height field sample {k} is not finite ({})",
                heights[k]
            )));
        }
        if !origin.iter().all(|o| o.is_finite()) {
            return Err(Error::Physics(format!(
                "a height field's origin must be finite, got {origin:?}"
            )));
        }
        Ok(Self {
            heights,
            rows,
            cols,
            spacing,
            origin,
        })
    }

    /// Sample `(i, j)` (m).
    pub fn sample(&self, i: usize, j: usize) -> f64 {
        f64::from(self.heights[i * self.cols + j])
    }

    /// World extent `[x_min, x_max, y_min, y_max]` (m).
    pub fn extent(&self) -> [f64; 4] {
        [
            self.origin[0],
            self.origin[0] + (self.rows - 1) as f64 * self.spacing,
            self.origin[1],
            self.origin[1] + (self.cols - 1) as f64 * self.spacing,
        ]
    }

    fn cell(&self, x: f64, y: f64) -> Cell {
        let axis = |p: f64, o: f64, n: usize| {
            let g = (p - o) / self.spacing;
            let last = (n - 1) as f64;
            let inside = (0.0..=last).contains(&g);
            let g = g.clamp(0.0, last);
            let i = (g.floor() as usize).min(n - 2);
            (i, g - i as f64, inside)
        };
        let (i, u, inside_x) = axis(x, self.origin[0], self.rows);
        let (j, v, inside_y) = axis(y, self.origin[1], self.cols);
        Cell {
            i,
            j,
            u,
            v,
            inside_x,
            inside_y,
        }
    }

    /// Height of the surface at world `(x, y)` (m).
    pub fn height_at(&self, x: f64, y: f64) -> f64 {
        let c = self.cell(x, y);
        let [h00, h10, h01, h11] = self.corners(&c);
        (1.0 - c.u) * (1.0 - c.v) * h00
            + c.u * (1.0 - c.v) * h10
            + (1.0 - c.u) * c.v * h01
            + c.u * c.v * h11
    }

    /// Slope `(dh/dx, dh/dy)` of the surface at world `(x, y)`.
    pub fn slope_at(&self, x: f64, y: f64) -> [f64; 2] {
        let c = self.cell(x, y);
        let [h00, h10, h01, h11] = self.corners(&c);
        let s = self.spacing;
        let hx = ((1.0 - c.v) * (h10 - h00) + c.v * (h11 - h01)) / s;
        let hy = ((1.0 - c.u) * (h01 - h00) + c.u * (h11 - h10)) / s;
        [
            if c.inside_x { hx } else { 0.0 },
            if c.inside_y { hy } else { 0.0 },
        ]
    }

    /// Unit normal of the surface at world `(x, y)`, pointing up.
    pub fn normal_at(&self, x: f64, y: f64) -> [f64; 3] {
        let [hx, hy] = self.slope_at(x, y);
        let n = (hx * hx + hy * hy + 1.0).sqrt();
        [-hx / n, -hy / n, 1.0 / n]
    }

    fn corners(&self, c: &Cell) -> [f64; 4] {
        [
            self.sample(c.i, c.j),
            self.sample(c.i + 1, c.j),
            self.sample(c.i, c.j + 1),
            self.sample(c.i + 1, c.j + 1),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> HeightField {
        // h = 0.5 x + 0.25 y on a 4 x 3 grid of 0.5 m from (-1, 2).
        let (rows, cols, s, o) = (4, 3, 0.5, [-1.0, 2.0]);
        let heights = (0..rows * cols)
            .map(|k| {
                let (i, j) = (k / cols, k % cols);
                let (x, y) = (o[0] + i as f64 * s, o[1] + j as f64 * s);
                (0.5 * x + 0.25 * y) as f32
            })
            .collect();
        HeightField::new(heights, rows, cols, s, o).expect("valid")
    }

    #[test]
    fn a_plane_is_read_back_exactly_inside_the_grid() {
        let hf = ramp();
        for (x, y) in [(-1.0, 2.0), (-0.3, 2.7), (0.49, 2.01), (0.5, 3.0)] {
            let expected = 0.5 * x + 0.25 * y;
            assert!((hf.height_at(x, y) - expected).abs() < 1e-6, "({x}, {y})");
            let [hx, hy] = hf.slope_at(x, y);
            assert!((hx - 0.5).abs() < 1e-6 && (hy - 0.25).abs() < 1e-6);
        }
        let n = hf.normal_at(0.0, 2.5);
        let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
        assert!((len - 1.0).abs() < 1e-12 && n[0] < 0.0 && n[1] < 0.0 && n[2] > 0.0);
    }

    #[test]
    fn outside_the_grid_the_edge_height_continues_flat() {
        let hf = ramp();
        // Past x_max = 0.5 at y = 2.5: the edge's height, no slope along x.
        let edge = 0.5 * 0.5 + 0.25 * 2.5;
        assert!((hf.height_at(3.0, 2.5) - edge).abs() < 1e-6);
        let [hx, hy] = hf.slope_at(3.0, 2.5);
        assert_eq!(hx, 0.0);
        assert!((hy - 0.25).abs() < 1e-6);
    }

    #[test]
    fn a_step_is_a_ramp_one_cell_wide() {
        // Heights 0 for i <= 1 and 0.2 for i >= 2 (spacing 0.1): the ramp spans x in [0.1, 0.2].
        let heights = (0..4 * 2)
            .map(|k| if k / 2 >= 2 { 0.2 } else { 0.0 })
            .collect();
        let hf = HeightField::new(heights, 4, 2, 0.1, [0.0, 0.0]).expect("valid");
        assert!(hf.height_at(0.05, 0.05).abs() < 1e-7);
        assert!((hf.height_at(0.15, 0.05) - 0.1).abs() < 1e-6);
        assert!((hf.height_at(0.25, 0.05) - 0.2).abs() < 1e-6);
        assert!((hf.slope_at(0.15, 0.05)[0] - 2.0).abs() < 1e-5);
    }

    #[test]
    fn bad_fields_are_refused_with_what_is_wrong() {
        let err = |r: Result<HeightField>| r.expect_err("refused").to_string();
        assert!(err(HeightField::new(vec![0.0; 3], 1, 3, 0.1, [0.0; 2])).contains("2 x 2"));
        assert!(err(HeightField::new(vec![0.0; 3], 2, 2, 0.1, [0.0; 2])).contains("needs 4"));
        assert!(err(HeightField::new(vec![0.0; 4], 2, 2, 0.0, [0.0; 2])).contains("spacing"));
        let nan = vec![0.0, f32::NAN, 0.0, 0.0];
        assert!(err(HeightField::new(nan, 2, 2, 0.1, [0.0; 2])).contains("sample 1"));
    }
}
