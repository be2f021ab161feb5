//! The terrain manager: rough terrain for the legged task (legged_gym's `Terrain` with its
//! curriculum, IsaacLab's `TerrainImporter` and `terrain_levels_vel`).
//!
//! The generated terrain ([`sim_physics::Terrain`]) is one height field shared by every
//! environment, laid out as a grid of sub-terrains: rows are difficulty levels, columns are
//! kinds (slopes, stairs, obstacles). Each environment lives on one sub-terrain, `(level,
//! column)`: it spawns at that sub-terrain's origin plus a random offset of up to 1 m in x
//! and y. With the curriculum, at every reset a robot that walked farther than half a
//! sub-terrain from its origin moves up a level, one that walked less than half the distance
//! its command asked for (over a whole episode) moves down, and one that clears the top
//! level goes to a random level; the columns never change (legged_gym's rule). The height
//! scan reads the field on a grid of points around the base, in its yaw frame.

use burn::tensor::{Bool, Tensor, TensorData, backend::Backend};
use rl_core::EnvRng;
use sim_physics::{DeviceHeightField, SubTerrain, Terrain, TerrainConfig};

use super::choose;
use super::commands::heading_xy;
use super::config::HeightScanConfig;
use crate::Result;
use crate::common::column;

/// Rough terrain: the field, the sub-terrain origins and every environment's place on them.
#[derive(Debug, Clone)]
pub struct TerrainManager<B: Backend> {
    terrain: Terrain,
    field: DeviceHeightField<B>,
    /// Origin of every sub-terrain `[rows * cols, 3]`, row-major.
    origins: Tensor<B, 2>,
    /// Every environment's level (row) `[N, 1]`, a whole number stored as a float.
    pub(crate) level: Tensor<B, 2>,
    /// Every environment's column `[N, 1]` (fixed).
    pub(crate) column: Tensor<B, 2>,
    /// The kind of every environment's column `[N, 1]`, its index in [`SubTerrain::ALL`].
    pub(crate) kind: Tensor<B, 2>,
    /// Every environment's spawn origin `[N, 3]`: its sub-terrain's origin.
    pub(crate) origin: Tensor<B, 2>,
    curriculum: bool,
    /// Walking farther than this from the origin in an episode moves a robot up (m).
    promote_distance: f64,
    /// The episode's length (s): the commanded distance is `|cmd_xy|` times it.
    episode_length_s: f64,
}

impl<B: Backend> TerrainManager<B> {
    /// Generates the terrain of `cfg`, or `None` for a plane. Robots start spread evenly
    /// over the columns, on random levels up to `max_init_terrain_level` (with the
    /// curriculum; on any level without it), drawn from `rng`.
    ///
    /// # Errors
    /// An invalid terrain config.
    pub fn new(
        cfg: &TerrainConfig,
        n: usize,
        episode_length_s: f64,
        rng: &mut EnvRng,
        device: &B::Device,
    ) -> Result<Option<Self>> {
        let Some(terrain) = cfg.generate()? else {
            return Ok(None);
        };
        let (rows, cols) = (terrain.num_rows, terrain.num_cols);
        let origins: Vec<f32> = terrain
            .origins
            .iter()
            .flat_map(|o| o.map(|v| v as f32))
            .collect();
        let origins = Tensor::from_data(TensorData::new(origins, [rows * cols, 3]), device);
        let top = if cfg.curriculum {
            cfg.max_init_terrain_level.min(rows - 1)
        } else {
            rows - 1
        };
        let level = rng
            .uniform::<B>(&[0.0], &[(top + 1) as f32], device)
            .floor()
            .clamp(0.0, top as f64);
        // legged_gym: environment i on column floor(i / (N / cols)).
        let columns: Vec<usize> = (0..n).map(|i| (i * cols / n).min(cols - 1)).collect();
        let kind: Vec<f32> = columns
            .iter()
            .map(|&c| {
                let k = terrain.column_kinds[c];
                SubTerrain::ALL.iter().position(|&a| a == k).unwrap_or(0) as f32
            })
            .collect();
        let column: Vec<f32> = columns.iter().map(|&c| c as f32).collect();
        let column = Tensor::from_data(TensorData::new(column, [n, 1]), device);
        let kind = Tensor::from_data(TensorData::new(kind, [n, 1]), device);
        let mut manager = Self {
            field: DeviceHeightField::new(&terrain.field, device),
            origins,
            origin: Tensor::zeros([n, 3], device),
            level,
            column,
            kind,
            curriculum: cfg.curriculum,
            promote_distance: cfg.terrain_length / 2.0,
            episode_length_s,
            terrain,
        };
        manager.origin = manager.origins_of(&manager.level);
        Ok(Some(manager))
    }

    /// The generated terrain (host copy).
    pub fn terrain(&self) -> &Terrain {
        &self.terrain
    }

    /// The height field on the device.
    pub fn field(&self) -> &DeviceHeightField<B> {
        &self.field
    }

    /// The origins `[N, 3]` of the sub-terrains at `level` `[N, 1]` in each environment's
    /// column.
    fn origins_of(&self, level: &Tensor<B, 2>) -> Tensor<B, 2> {
        let cols = self.terrain.num_cols as f64;
        let flat = level.clone().mul_scalar(cols) + self.column.clone();
        let n = flat.dims()[0];
        self.origins.clone().select(0, flat.reshape([n]).int())
    }

    /// The curriculum at a reset of the environments in `mask` `[N]`: from where each base
    /// is `root_pos` `[N, 3]` at the end of its episode and what it was commanded,
    /// `commands` `[N, 3]`, moves robots up or down a level; `u` `[N, 1]` in `[0, 1)` picks
    /// the level of a robot that cleared the top one. Then every reset robot's origin is its
    /// new sub-terrain's.
    pub fn update(
        &mut self,
        mask: &Tensor<B, 1, Bool>,
        root_pos: &Tensor<B, 2>,
        commands: &Tensor<B, 2>,
        u: Tensor<B, 2>,
    ) {
        if self.curriculum {
            let walked = (root_pos.clone().narrow(1, 0, 2) - self.origin.clone().narrow(1, 0, 2))
                .square()
                .sum_dim(1)
                .sqrt();
            let asked = commands
                .clone()
                .narrow(1, 0, 2)
                .square()
                .sum_dim(1)
                .sqrt()
                .mul_scalar(self.episode_length_s * 0.5);
            let up = walked.clone().greater_elem(self.promote_distance);
            let down = walked.lower(asked).bool_and(up.clone().bool_not());
            let rows = self.terrain.num_rows as f64;
            let moved = self.level.clone() + up.float() - down.float();
            let random = u.mul_scalar(rows).floor().clamp(0.0, rows - 1.0);
            let over = moved.clone().greater_equal_elem(rows);
            let next = moved.clamp_min(0.0).mask_where(over, random);
            self.level = choose(mask, self.level.clone(), next);
        }
        self.origin = choose(mask, self.origin.clone(), self.origins_of(&self.level));
    }

    /// Where the environments in a reset spawn `[N, 3]`: their origin plus `offset` `[N, 2]`
    /// in x and y.
    pub fn spawn(&self, offset: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = offset.dims()[0];
        self.origin.clone()
            + Tensor::cat(
                vec![offset, Tensor::zeros([n, 1], &self.origin.device())],
                1,
            )
    }

    /// Ground height under every base `[N]`.
    pub fn height_under(&self, root_pos: &Tensor<B, 2>) -> Tensor<B, 1> {
        let x = root_pos.clone().narrow(1, 0, 1);
        let y = root_pos.clone().narrow(1, 1, 1);
        column(&self.field.height(x, y), 0)
    }

    /// The mean level over every environment `[N]` (each row the same), for the log.
    pub fn mean_level(&self) -> Tensor<B, 1> {
        let n = self.level.dims()[0];
        self.level.clone().mean().reshape([1]).expand([n])
    }
}

/// The name of the kind of terrain with index `index` in [`SubTerrain::ALL`] (as the
/// `terrain_kind` episode term gives it).
pub fn kind_name(index: f64) -> Option<&'static str> {
    let i = index.round();
    (i >= 0.0)
        .then(|| SubTerrain::ALL.get(i as usize))
        .flatten()
        .map(|k| k.name())
}

/// The height scan's points around the base, `[N, P]` each, in its yaw frame (x forward).
#[derive(Debug, Clone)]
pub struct ScanPoints<B: Backend> {
    x: Tensor<B, 2>,
    y: Tensor<B, 2>,
    offset: f64,
}

impl<B: Backend> ScanPoints<B> {
    /// legged_gym's grid from `cfg`, for `n` environments: `x` by `y`, x varying slowest.
    pub fn new(cfg: &HeightScanConfig, n: usize, device: &B::Device) -> Self {
        let (xs, ys) = (cfg.x_points(), cfg.y_points());
        let mut px = Vec::with_capacity(xs.len() * ys.len());
        let mut py = Vec::with_capacity(xs.len() * ys.len());
        for &x in &xs {
            for &y in &ys {
                px.push(x as f32);
                py.push(y as f32);
            }
        }
        let p = px.len();
        let rows =
            |v: Vec<f32>| Tensor::<B, 2>::from_data(TensorData::new(v.repeat(n), [n, p]), device);
        Self {
            x: rows(px),
            y: rows(py),
            offset: cfg.offset,
        }
    }

    /// Number of points.
    pub fn count(&self) -> usize {
        self.x.dims()[1]
    }

    /// The points in the world `([N, P] x, [N, P] y)` for bases at `root_pos` `[N, 3]` with
    /// orientation `root_quat` `[N, 4]` (their yaw only).
    pub fn world(
        &self,
        root_pos: &Tensor<B, 2>,
        root_quat: &Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        // The base's x axis in the world, projected on the plane: (cos yaw, sin yaw).
        let (fx, fy) = heading_xy(root_quat);
        let (fx, fy) = (fx.unsqueeze_dim::<2>(1), fy.unsqueeze_dim::<2>(1));
        let len = (fx.clone().square() + fy.clone().square())
            .sqrt()
            .clamp_min(1e-9);
        let (c, s) = (fx / len.clone(), fy / len);
        let bx = root_pos.clone().narrow(1, 0, 1);
        let by = root_pos.clone().narrow(1, 1, 1);
        let wx = self.x.clone() * c.clone() - self.y.clone() * s.clone() + bx;
        let wy = self.x.clone() * s + self.y.clone() * c + by;
        (wx, wy)
    }

    /// The scan `[N, P]`: base height minus the offset minus the ground height at each point
    /// (legged_gym's and IsaacLab's `height_scan` before clipping and scaling), over
    /// `field`, or over the plane at `ground` without one.
    pub fn scan(
        &self,
        field: Option<&DeviceHeightField<B>>,
        ground: f64,
        root_pos: &Tensor<B, 2>,
        root_quat: &Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let z = root_pos.clone().narrow(1, 2, 1).sub_scalar(self.offset);
        match field {
            Some(f) => {
                let (wx, wy) = self.world(root_pos, root_quat);
                f.height(wx, wy).neg() + z
            }
            None => self.x.zeros_like() + z.sub_scalar(ground),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use sim_physics::{HeightField, TerrainKind};

    type B = Flex;

    fn dev() -> burn::tensor::Device<B> {
        Default::default()
    }

    fn rows<const K: usize>(v: &[[f32; K]]) -> Tensor<B, 2> {
        let flat: Vec<f32> = v.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [v.len(), K]), &dev())
    }

    fn vals(t: Tensor<B, 2>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().expect("f32")
    }

    /// A small grid: 4 levels x 2 columns of 4 m sub-terrains, a 2 m border.
    fn small(curriculum: bool) -> TerrainConfig {
        TerrainConfig {
            kind: TerrainKind::Heightfield,
            terrain_length: 4.0,
            terrain_width: 4.0,
            num_rows: 4,
            num_cols: 2,
            border_size: 2.0,
            platform_size: 2.0,
            max_init_terrain_level: 1,
            curriculum,
            ..TerrainConfig::default()
        }
    }

    #[test]
    fn robots_start_on_low_levels_spread_over_the_columns_at_their_origins() {
        let mut rng = EnvRng::new(3, 8);
        let m = TerrainManager::<B>::new(&small(true), 8, 20.0, &mut rng, &dev())
            .expect("valid")
            .expect("a height field");
        let (level, column) = (vals(m.level.clone()), vals(m.column.clone()));
        assert!(level.iter().all(|&l| l == 0.0 || l == 1.0), "{level:?}");
        assert!(level.contains(&0.0) && level.contains(&1.0), "{level:?}");
        assert_eq!(column, [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        let origin = vals(m.origin.clone());
        for i in 0..8 {
            let want = m
                .terrain()
                .origin(level[i] as usize, column[i] as usize)
                .expect("inside");
            for k in 0..3 {
                assert!((f64::from(origin[i * 3 + k]) - want[k]).abs() < 1e-5);
            }
        }
        let mut rng = EnvRng::new(3, 8);
        let plane = TerrainConfig::default();
        assert!(
            TerrainManager::<B>::new(&plane, 8, 20.0, &mut rng, &dev())
                .expect("valid")
                .is_none()
        );
    }

    #[test]
    fn the_curriculum_moves_robots_up_down_or_to_a_random_level_as_legged_gym_does() {
        let mut rng = EnvRng::new(0, 6);
        let mut m = TerrainManager::<B>::new(&small(true), 6, 20.0, &mut rng, &dev())
            .expect("valid")
            .expect("a height field");
        // Levels 1, 1, 0, 3, 2, 2; every robot starts at its origin.
        m.level = rows(&[[1.0], [1.0], [0.0], [3.0], [2.0], [2.0]]);
        m.origin = m.origins_of(&m.level);
        let start = vals(m.origin.clone());
        let at = |i: usize, dx: f32| [start[i * 3] + dx, start[i * 3 + 1], 0.5];
        // Walked: 2.5 m (> 2 m: up), 0.5 m with 1 m/s asked (< 10 m: down), 0.5 m with no
        // command (stays), 2.5 m from the top level (random: u 0.6 -> level 2), 1.5 m with
        // 0.1 m/s asked (> 1 m: stays), and 2.5 m but not reset (stays).
        let root = rows(&[
            at(0, 2.5),
            at(1, 0.5),
            at(2, -0.5),
            at(3, 2.5),
            at(4, 1.5),
            at(5, 2.5),
        ]);
        let commands = rows(&[
            [1.0, 0.0, 0.0],
            [0.6, 0.8, 0.0],
            [0.0, 0.0, 0.5],
            [1.0, 0.0, 0.0],
            [0.0, 0.1, 0.0],
            [1.0, 0.0, 0.0],
        ]);
        let u = rows(&[[0.0], [0.0], [0.0], [0.6], [0.0], [0.0]]);
        let mask = Tensor::<B, 1>::from_data(
            TensorData::new(vec![1.0f32, 1.0, 1.0, 1.0, 1.0, 0.0], [6]),
            &dev(),
        )
        .greater_elem(0.5);
        m.update(&mask, &root, &commands, u);
        assert_eq!(vals(m.level.clone()), [2.0, 0.0, 0.0, 2.0, 2.0, 2.0]);
        // The reset robots' origins follow their level; the others keep theirs.
        let origin = vals(m.origin.clone());
        let column = vals(m.column.clone());
        for (i, level) in [2usize, 0, 0, 2, 2].into_iter().enumerate() {
            let want = m
                .terrain()
                .origin(level, column[i] as usize)
                .expect("inside");
            assert!(
                (f64::from(origin[i * 3]) - want[0]).abs() < 1e-5,
                "robot {i}"
            );
        }
        assert_eq!(&origin[15..18], &start[15..18]);
        // Without the curriculum nobody moves.
        let mut rng = EnvRng::new(0, 6);
        let mut fixed = TerrainManager::<B>::new(&small(false), 6, 20.0, &mut rng, &dev())
            .expect("valid")
            .expect("a height field");
        let before = vals(fixed.level.clone());
        let root = rows(&[[50.0, 0.0, 0.5]; 6]);
        fixed.update(&mask, &root, &commands, rows(&[[0.9]; 6]));
        assert_eq!(vals(fixed.level.clone()), before);
    }

    #[test]
    fn the_height_scan_reads_the_ground_around_the_base_in_its_yaw_frame() {
        // Ground h = 0.1 x + 0.2 y (exact between samples).
        let (n, s) = (41, 0.25);
        let heights = (0..n * n)
            .map(|k| {
                let (x, y) = (-5.0 + (k / n) as f64 * s, -5.0 + (k % n) as f64 * s);
                (0.1 * x + 0.2 * y) as f32
            })
            .collect();
        let field = HeightField::new(heights, n, n, s, [-5.0, -5.0]).expect("valid");
        let field = DeviceHeightField::<B>::new(&field, &dev());
        let cfg = HeightScanConfig::default();
        let scan = ScanPoints::<B>::new(&cfg, 2, &dev());
        assert_eq!(scan.count(), 17 * 11);
        // Robot 0 at (1, 2, 0.6) turned 90 degrees left, also pitched (ignored); robot 1 at
        // (-1, 0, 0.4), level, facing +x.
        let (yaw, pitch) = (std::f32::consts::FRAC_PI_2, 0.3f32);
        let qz = [(yaw / 2.0).cos(), 0.0, 0.0, (yaw / 2.0).sin()];
        let qy = [(pitch / 2.0).cos(), 0.0, (pitch / 2.0).sin(), 0.0];
        // q = qz * qy (yaw, then pitch about the turned y axis).
        let q = [
            qz[0] * qy[0] - qz[3] * qy[3],
            qz[0] * qy[1] - qz[3] * qy[2],
            qz[0] * qy[2] + qz[3] * qy[1],
            qz[0] * qy[3] + qz[3] * qy[0],
        ];
        let pos = rows(&[[1.0, 2.0, 0.6], [-1.0, 0.0, 0.4]]);
        let quat = rows(&[q, [1.0, 0.0, 0.0, 0.0]]);
        let got = vals(scan.scan(Some(&field), 0.0, &pos, &quat));
        let (xs, ys) = (cfg.x_points(), cfg.y_points());
        let mut k = 0;
        for &x in &xs {
            for &y in &ys {
                // Robot 0: forward is +y, left is -x.
                let h0 = 0.1 * (1.0 - y) + 0.2 * (2.0 + x);
                let h1 = 0.1 * (-1.0 + x) + 0.2 * y;
                let want0 = 0.6 - 0.5 - h0;
                let want1 = 0.4 - 0.5 - h1;
                assert!(
                    (f64::from(got[k]) - want0).abs() < 1e-5,
                    "robot 0 at ({x}, {y})"
                );
                let p = xs.len() * ys.len();
                assert!(
                    (f64::from(got[p + k]) - want1).abs() < 1e-5,
                    "robot 1 at ({x}, {y})"
                );
                k += 1;
            }
        }
        // Over the plane: base height minus offset minus the plane's height everywhere.
        let flat = vals(scan.scan(None, 0.05, &pos, &quat));
        assert!((f64::from(flat[0]) - (0.6 - 0.5 - 0.05)).abs() < 1e-6);
        assert!((f64::from(flat[17 * 11]) - (0.4 - 0.5 - 0.05)).abs() < 1e-6);
    }
}
