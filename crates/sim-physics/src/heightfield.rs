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

use burn::tensor::{Tensor, TensorData, backend::Backend};

use crate::{Error, Result};

type T<B> = Tensor<B, 2>;

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

    /// The field of heights `h(x, y)` sampled every `spacing` m over `x` = `[x0, x1]` and `y`
    /// = `[y0, y1]` (the ends rounded to whole samples).
    ///
    /// # Errors
    /// As [`HeightField::new`]: fewer than 2 x 2 samples, a bad spacing, non-finite heights.
    pub fn from_fn(
        h: impl Fn(f64, f64) -> f64,
        x: [f64; 2],
        y: [f64; 2],
        spacing: f64,
    ) -> Result<Self> {
        let count = |r: [f64; 2]| {
            let n = ((r[1] - r[0]) / spacing).round();
            if n.is_finite() && n >= 0.0 {
                n as usize + 1
            } else {
                0
            }
        };
        let (rows, cols) = (count(x), count(y));
        let heights = (0..rows * cols)
            .map(|k| {
                let (i, j) = (k / cols, k % cols);
                h(x[0] + i as f64 * spacing, y[0] + j as f64 * spacing) as f32
            })
            .collect();
        Self::new(heights, rows, cols, spacing, [x[0], y[0]])
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

/// A [`HeightField`] on a device, read at many points at once by the same rule (four
/// gathers and the bilinear blend). The contact step and the tasks' height scan use it.
#[derive(Debug, Clone)]
pub struct DeviceHeightField<B: Backend> {
    heights: Tensor<B, 1>,
    rows: usize,
    cols: usize,
    spacing: f64,
    origin: [f64; 2],
}

/// Where points fall on one axis: the cell's lower index (as a float), the fraction inside
/// it, and 1 where the point lies on the grid (else 0).
struct Axis<B: Backend> {
    index: T<B>,
    frac: T<B>,
    inside: T<B>,
}

impl<B: Backend> DeviceHeightField<B> {
    /// Uploads `field` to `device`.
    pub fn new(field: &HeightField, device: &B::Device) -> Self {
        let n = field.heights.len();
        Self {
            heights: Tensor::from_data(TensorData::new(field.heights.clone(), [n]), device),
            rows: field.rows,
            cols: field.cols,
            spacing: field.spacing,
            origin: field.origin,
        }
    }

    /// The heights, row-major `[rows * cols]`.
    pub fn heights(&self) -> Tensor<B, 1> {
        self.heights.clone()
    }

    /// `(rows, cols, spacing, origin)`.
    pub fn layout(&self) -> (usize, usize, f64, [f64; 2]) {
        (self.rows, self.cols, self.spacing, self.origin)
    }

    fn axis(&self, p: T<B>, origin: f64, n: usize) -> Axis<B> {
        let last = (n - 1) as f64;
        let g = p.sub_scalar(origin).div_scalar(self.spacing);
        let inside = g
            .clone()
            .greater_equal_elem(0.0)
            .bool_and(g.clone().lower_equal_elem(last))
            .float();
        let g = g.clamp(0.0, last);
        let index = g.clone().floor().clamp_max((n - 2) as f64);
        let frac = g - index.clone();
        Axis {
            index,
            frac,
            inside,
        }
    }

    /// The four corner heights of every point's cell: `[h00, h10, h01, h11]`.
    fn corners(&self, ax: &Axis<B>, ay: &Axis<B>) -> [T<B>; 4] {
        let dims = ax.index.dims();
        let flat = ax.index.clone().mul_scalar(self.cols as f64) + ay.index.clone();
        let flat = flat.reshape([dims[0] * dims[1]]);
        let gather = |offset: usize| {
            let idx = flat.clone().add_scalar(offset as f64).int();
            self.heights.clone().select(0, idx).reshape(dims)
        };
        [
            gather(0),
            gather(self.cols),
            gather(1),
            gather(self.cols + 1),
        ]
    }

    /// Height at world `(x, y)`, both `[N, K]`.
    pub fn height(&self, x: T<B>, y: T<B>) -> T<B> {
        let ax = self.axis(x, self.origin[0], self.rows);
        let ay = self.axis(y, self.origin[1], self.cols);
        let [h00, h10, h01, h11] = self.corners(&ax, &ay);
        let (u, v) = (ax.frac, ay.frac);
        let low = h00.clone() + (h10 - h00) * u.clone();
        let high = h01.clone() + (h11 - h01) * u;
        low.clone() + (high - low) * v
    }

    /// Height and slope `(h, dh/dx, dh/dy)` at world `(x, y)`, all `[N, K]`.
    pub fn height_and_slope(&self, x: T<B>, y: T<B>) -> (T<B>, T<B>, T<B>) {
        let ax = self.axis(x, self.origin[0], self.rows);
        let ay = self.axis(y, self.origin[1], self.cols);
        let [h00, h10, h01, h11] = self.corners(&ax, &ay);
        let (u, v) = (ax.frac, ay.frac);
        let (dx0, dx1) = (h10 - h00.clone(), h11 - h01.clone());
        let low = h00 + dx0.clone() * u.clone();
        let high = h01 + dx1.clone() * u;
        // h = low + (high - low) v: dh/dy = (high - low) / s, dh/dx = ((1-v) dx0 + v dx1) / s.
        let rise = high - low.clone();
        let h = low + rise.clone() * v.clone();
        let hx = (dx0.clone() + (dx1 - dx0) * v).div_scalar(self.spacing);
        let hy = rise.div_scalar(self.spacing);
        (h, hx * ax.inside, hy * ay.inside)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> HeightField {
        // h = 0.5 x + 0.25 y on a 4 x 3 grid of 0.5 m from (-1, 2).
        let hf = HeightField::from_fn(|x, y| 0.5 * x + 0.25 * y, [-1.0, 0.5], [2.0, 3.0], 0.5)
            .expect("valid");
        assert_eq!((hf.rows, hf.cols, hf.origin), (4, 3, [-1.0, 2.0]));
        hf
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

    #[test]
    fn the_device_field_reads_what_the_host_field_reads() {
        type B = burn::backend::Flex;
        let device = Default::default();
        // A bumpy 5 x 4 field, read inside, on edges and outside.
        let heights = (0..20)
            .map(|k| ((k * 7 % 5) as f32) * 0.03 - 0.05)
            .collect();
        let hf = HeightField::new(heights, 5, 4, 0.2, [-0.3, 0.1]).expect("valid");
        let points = [
            (-0.3, 0.1),
            (-0.21, 0.33),
            (0.0, 0.5),
            (0.45, 0.62),
            (0.5, 0.7),
            (-1.0, 0.3),
            (0.2, 5.0),
            (3.0, -2.0),
        ];
        let col = |f: fn(&(f64, f64)) -> f64| {
            let v: Vec<f32> = points.iter().map(|p| f(p) as f32).collect();
            Tensor::<B, 2>::from_data(TensorData::new(v, [2, 4]), &device)
        };
        let dev = DeviceHeightField::<B>::new(&hf, &device);
        let (h, hx, hy) = dev.height_and_slope(col(|p| p.0), col(|p| p.1));
        let only_h = dev.height(col(|p| p.0), col(|p| p.1));
        let read = |t: T<B>| t.into_data().to_vec::<f32>().expect("f32");
        let (h, hx, hy, only_h) = (read(h), read(hx), read(hy), read(only_h));
        for (k, &(x, y)) in points.iter().enumerate() {
            let [sx, sy] = hf.slope_at(x, y);
            assert!(
                (f64::from(h[k]) - hf.height_at(x, y)).abs() < 1e-6,
                "h at ({x}, {y})"
            );
            assert!((f64::from(only_h[k]) - hf.height_at(x, y)).abs() < 1e-6);
            assert!((f64::from(hx[k]) - sx).abs() < 1e-5, "dh/dx at ({x}, {y})");
            assert!((f64::from(hy[k]) - sy).abs() < 1e-5, "dh/dy at ({x}, {y})");
        }
    }
}
