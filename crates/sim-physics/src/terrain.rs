//! Rough terrain: legged_gym's grid of sub-terrains of rising difficulty (slopes, stairs,
//! obstacles, stepping stones, gaps, pits), generated into a [`HeightField`].
//!
//! Source: legged_gym's `utils/terrain.py` (`Terrain` with `curriculum = True`, its
//! `make_terrain`, `gap_terrain` and `pit_terrain`) and isaacgym's `terrain_utils.py` (the
//! other sub-terrain functions). [`TerrainConfig::generate`] works in five steps:
//!
//! 1. Sizes in samples, truncated as Python's `int()`: a sub-terrain is
//!    `int(terrain_length / horizontal_scale)` samples along x by
//!    `int(terrain_width / horizontal_scale)` along y, the border `int(border_size /
//!    horizontal_scale)` on every side, so the field is `num_rows * length + 2 border` by
//!    `num_cols * width + 2 border` samples (1300 x 2100 by default).
//! 2. Column `col` gets the kind that `choice = col / num_cols + 0.001` falls in among the
//!    cumulative [`TerrainProportions`]; row `row` the difficulty `d = row / num_rows`.
//! 3. Each sub-terrain is built in whole units of `vertical_scale` (legged_gym's int16
//!    `height_field_raw`) by the function of its kind, with its own random generator
//!    (ChaCha8 seeded from `(seed, row, col)`).
//! 4. It is copied into the field at `(border + row * length, border + col * width)`, and its
//!    spawn origin taken: the sub-terrain's centre, at the height of the highest sample
//!    within 1 m of it.
//! 5. Heights become metres (`units * vertical_scale`) in a [`HeightField`] whose sample
//!    `(0, 0)` lies at `(-border_size, -border_size)`, so sub-terrain `(0, 0)` starts at the
//!    world origin.
//!
//! The formulas, sizes and their integer truncations follow the originals, quirks included
//! (each is named where it is built). Where this differs:
//! - Random numbers come from ChaCha8, not numpy's global generator: the same distributions
//!   drawn in the same order within a sub-terrain, but not the same numbers; and a
//!   sub-terrain's draws do not depend on the others.
//! - legged_gym builds every sub-terrain `terrain_width` square (it passes the width for both
//!   sides) and fails when `terrain_length != terrain_width`; here a sub-terrain is length by
//!   width, each function measuring x along the length.
//! - Sizes that would crash the originals (a zero step or stone width, empty ranges to
//!   draw from, blocks starting before the sub-terrain's edge, which numpy would wrap to
//!   the other side) are clamped to the smallest valid value instead. None occurs at the
//!   defaults.
//! - The gap's depth is 5 m whatever the vertical scale (legged_gym writes -1000 units, 5 m
//!   at 0.005 m); the 4 m platform of stepping stones and pits is `platform_size + 1`.
//!
//! Run against the Python originals (numpy, with a bilinear stand-in for scipy's
//! `interp2d`) at the defaults, the deterministic kinds and the origins agree sample for
//! sample; the random kinds agree in their sets of values and statistics.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, HeightField, Result};

/// The ground of a task. serde: `type = "plane" | "heightfield"`, default plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerrainKind {
    /// A flat plane at height 0 (no field is generated).
    #[default]
    Plane,
    /// legged_gym's rough terrain on a height field.
    Heightfield,
}

/// The kinds of sub-terrain, one per column of the grid. At difficulty `d` (legged_gym's
/// `make_terrain`):
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubTerrain {
    /// A pyramid of slope `0.4 d` around a flat top (`pyramid_sloped_terrain`); in the first
    /// half of its share of columns the slope is negated, a pit with a flat floor.
    SmoothSlope,
    /// The pyramid of slope `0.4 d` with uniform noise of +-0.05 m on a 0.2 m grid
    /// (`random_uniform_terrain`).
    RoughSlope,
    /// Pyramid stairs going down into the sub-terrain, steps of `0.05 + 0.18 d` and 0.31 m
    /// (`pyramid_stairs_terrain` with a negated height): a robot leaving the centre climbs.
    StairsUp,
    /// Pyramid stairs rising to the centre, steps of `0.05 + 0.18 d` and 0.31 m: a robot
    /// leaving the centre walks down.
    StairsDown,
    /// 20 rectangles of 1 to 2 m at heights `+-h, +-h/2`, `h = 0.05 + 0.2 d`
    /// (`discrete_obstacles_terrain`).
    Discrete,
    /// Square stones of `1.5 (1.05 - d)` m in rows, 0.1 m apart (0.05 m at `d = 0`), over
    /// holes 10 m deep (`stepping_stones_terrain`).
    SteppingStones,
    /// A square trench `d` m wide and 5 m deep around the platform (`gap_terrain`).
    Gaps,
    /// The platform sunk `d` m into the ground (`pit_terrain`).
    Pit,
}

impl SubTerrain {
    /// Every kind, in the order of [`TerrainProportions`] (pits last).
    pub const ALL: [SubTerrain; 8] = [
        SubTerrain::SmoothSlope,
        SubTerrain::RoughSlope,
        SubTerrain::StairsUp,
        SubTerrain::StairsDown,
        SubTerrain::Discrete,
        SubTerrain::SteppingStones,
        SubTerrain::Gaps,
        SubTerrain::Pit,
    ];

    /// The kind's name in snake case, as in [`TerrainProportions`] (`"stairs_up"`).
    pub fn name(self) -> &'static str {
        match self {
            SubTerrain::SmoothSlope => "smooth_slope",
            SubTerrain::RoughSlope => "rough_slope",
            SubTerrain::StairsUp => "stairs_up",
            SubTerrain::StairsDown => "stairs_down",
            SubTerrain::Discrete => "discrete",
            SubTerrain::SteppingStones => "stepping_stones",
            SubTerrain::Gaps => "gaps",
            SubTerrain::Pit => "pit",
        }
    }

    /// The kind of the column whose `choice` (`col / num_cols + 0.001`) falls in the
    /// cumulative proportions `cumulative`, as legged_gym's `make_terrain` branches.
    fn for_choice(choice: f64, cumulative: &[f64; 7]) -> SubTerrain {
        if choice < cumulative[0] {
            SubTerrain::SmoothSlope
        } else if choice < cumulative[1] {
            SubTerrain::RoughSlope
        } else if choice < cumulative[3] {
            if choice < cumulative[2] {
                SubTerrain::StairsUp
            } else {
                SubTerrain::StairsDown
            }
        } else if choice < cumulative[4] {
            SubTerrain::Discrete
        } else if choice < cumulative[5] {
            SubTerrain::SteppingStones
        } else if choice < cumulative[6] {
            SubTerrain::Gaps
        } else {
            SubTerrain::Pit
        }
    }
}

/// Fractions of the columns per kind (legged_gym's `terrain_proportions`, named). The rest
/// of the columns (`1 - sum`) are pits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TerrainProportions {
    /// Smooth pyramid slopes (default 0.1), half of them sunk.
    pub smooth_slope: f64,
    /// Pyramid slopes with noise (default 0.1).
    pub rough_slope: f64,
    /// Stairs that a robot leaving the centre climbs (default 0.35).
    pub stairs_up: f64,
    /// Stairs that a robot leaving the centre walks down (default 0.25).
    pub stairs_down: f64,
    /// Discrete obstacles (default 0.2).
    pub discrete: f64,
    /// Stepping stones (default 0).
    pub stepping_stones: f64,
    /// Gaps (default 0).
    pub gaps: f64,
}

impl Default for TerrainProportions {
    fn default() -> Self {
        Self {
            smooth_slope: 0.1,
            rough_slope: 0.1,
            stairs_up: 0.35,
            stairs_down: 0.25,
            discrete: 0.2,
            stepping_stones: 0.0,
            gaps: 0.0,
        }
    }
}

impl TerrainProportions {
    /// Each field with its name, in the order of [`SubTerrain::ALL`].
    fn named(&self) -> [(&'static str, f64); 7] {
        [
            ("smooth_slope", self.smooth_slope),
            ("rough_slope", self.rough_slope),
            ("stairs_up", self.stairs_up),
            ("stairs_down", self.stairs_down),
            ("discrete", self.discrete),
            ("stepping_stones", self.stepping_stones),
            ("gaps", self.gaps),
        ]
    }

    /// Running sums, legged_gym's `self.proportions` (summed left to right as numpy does for
    /// so few numbers, so the column boundaries fall where they fall there).
    fn cumulative(&self) -> [f64; 7] {
        let mut sum = 0.0;
        self.named().map(|(_, p)| {
            sum += p;
            sum
        })
    }
}

/// `[env.terrain]` in a task config: the ground, and legged_gym's rough-terrain grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TerrainConfig {
    /// `type`: a plane (default) or a generated height field.
    #[serde(rename = "type")]
    pub kind: TerrainKind,
    /// Seed of the random sub-terrains (default 0): the terrain is a function of the config
    /// alone.
    pub seed: u64,
    /// Length of one sub-terrain along x (m, default 8).
    pub terrain_length: f64,
    /// Width of one sub-terrain along y (m, default 8).
    pub terrain_width: f64,
    /// Rows of sub-terrains along x, the difficulty levels (default 10).
    pub num_rows: usize,
    /// Columns of sub-terrains along y, the kinds (default 20).
    pub num_cols: usize,
    /// Width of the flat border around the grid (m, default 25).
    pub border_size: f64,
    /// Distance between samples of the field (m, default 0.1).
    pub horizontal_scale: f64,
    /// Height resolution (m, default 0.005): every height is a whole multiple of it, as in
    /// legged_gym's int16 field.
    pub vertical_scale: f64,
    /// Side of the flat platform at the centre of a sub-terrain (m, default 3), legged_gym's
    /// `platform_size=3.` of slopes, stairs, obstacles and gaps. Stepping stones and pits,
    /// which legged_gym gives 4 m, get `platform_size + 1`.
    pub platform_size: f64,
    /// Fractions of the columns per kind.
    pub proportions: TerrainProportions,
    /// Whether robots move between difficulty levels as they succeed or fail (default true;
    /// read by the tasks).
    pub curriculum: bool,
    /// Highest level a robot starts on (default 5; read by the tasks).
    pub max_init_terrain_level: usize,
}

impl Default for TerrainConfig {
    fn default() -> Self {
        Self {
            kind: TerrainKind::Plane,
            seed: 0,
            terrain_length: 8.0,
            terrain_width: 8.0,
            num_rows: 10,
            num_cols: 20,
            border_size: 25.0,
            horizontal_scale: 0.1,
            vertical_scale: 0.005,
            platform_size: 3.0,
            proportions: TerrainProportions::default(),
            curriculum: true,
            max_init_terrain_level: 5,
        }
    }
}

/// A spawn origin is the highest sample within this distance (m) of a sub-terrain's centre
/// along x and along y (legged_gym's `env_length / 2 +- 1`).
const SPAWN_HALF_WINDOW: f64 = 1.0;
/// Most samples a field may have (1 GiB of heights): a guard against a mistyped scale.
const MAX_SAMPLES: f64 = (1u64 << 28) as f64;

impl TerrainConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Physics`] naming the field (`terrain.num_rows must be at least 1, got 0`):
    /// counts of at least 1, positive scales, sub-terrains of at least 2 m with at least 2
    /// samples across, room for the platforms, proportions `>= 0` summing to at most 1, a
    /// starting level below `num_rows`, and a field of at most 2^28 samples.
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::Physics(format!("terrain.{msg}")));
        for (field, n) in [("num_rows", self.num_rows), ("num_cols", self.num_cols)] {
            if n == 0 {
                return fail(format!("{field} must be at least 1, got 0"));
            }
        }
        for (field, v) in [
            ("horizontal_scale", self.horizontal_scale),
            ("vertical_scale", self.vertical_scale),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return fail(format!("{field} must be > 0, got {v}"));
            }
        }
        for (field, v) in [
            ("terrain_length", self.terrain_length),
            ("terrain_width", self.terrain_width),
        ] {
            if !(v.is_finite() && v >= 2.0 * SPAWN_HALF_WINDOW) {
                return fail(format!(
                    "{field} must be at least {} m (robots spawn within {SPAWN_HALF_WINDOW} m \
                     of a sub-terrain's centre), got {v}",
                    2.0 * SPAWN_HALF_WINDOW
                ));
            }
            if ((v / self.horizontal_scale) as usize) < 2 {
                return fail(format!(
                    "horizontal_scale must leave at least 2 samples across a sub-terrain \
                     ({field} {v} m), got {}",
                    self.horizontal_scale
                ));
            }
        }
        if !(self.border_size.is_finite() && self.border_size >= 0.0) {
            return fail(format!(
                "border_size must be >= 0, got {}",
                self.border_size
            ));
        }
        let side = self.terrain_length.min(self.terrain_width);
        if !(self.platform_size.is_finite()
            && self.platform_size >= 0.0
            && self.platform_size + 1.0 <= side)
        {
            return fail(format!(
                "platform_size must be >= 0 and leave room for the stepping stones' and pits' \
                 platform of platform_size + 1 m in a sub-terrain of {side} m, got {}",
                self.platform_size
            ));
        }
        for (name, p) in self.proportions.named() {
            if !(p.is_finite() && p >= 0.0) {
                return fail(format!("proportions.{name} must be >= 0, got {p}"));
            }
        }
        let sum = self.proportions.cumulative()[6];
        if sum > 1.0 + 1e-9 {
            return fail(format!(
                "proportions must sum to at most 1 (the rest of the columns are pits), got {sum}"
            ));
        }
        if self.max_init_terrain_level >= self.num_rows {
            return fail(format!(
                "max_init_terrain_level must be below num_rows ({}), got {}",
                self.num_rows, self.max_init_terrain_level
            ));
        }
        let (rows, cols) = self.samples();
        if rows as f64 * cols as f64 > MAX_SAMPLES {
            return fail(format!(
                "horizontal_scale {} gives a field of {rows} x {cols} samples, more than \
                 {MAX_SAMPLES}: make it larger or the grid smaller",
                self.horizontal_scale
            ));
        }
        Ok(())
    }

    /// The terrain, or `None` for a plane.
    ///
    /// # Errors
    /// [`Error::Physics`] if the config is invalid (see [`TerrainConfig::validate`]).
    pub fn generate(&self) -> Result<Option<Terrain>> {
        self.validate()?;
        match self.kind {
            TerrainKind::Plane => Ok(None),
            TerrainKind::Heightfield => Terrain::build(self).map(Some),
        }
    }

    /// Samples of one sub-terrain along x and along y, and of the border.
    fn sub_samples(&self) -> (usize, usize, usize) {
        let px = |m: f64| (m / self.horizontal_scale) as usize;
        (
            px(self.terrain_length),
            px(self.terrain_width),
            px(self.border_size),
        )
    }

    /// Samples of the whole field along x and along y (saturating: checked by `validate`).
    fn samples(&self) -> (usize, usize) {
        let (nx, ny, border) = self.sub_samples();
        let side = |n: usize, per: usize| {
            n.saturating_mul(per)
                .saturating_add(border.saturating_mul(2))
        };
        (side(self.num_rows, nx), side(self.num_cols, ny))
    }
}

/// A generated terrain: the field, and where each sub-terrain is and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Terrain {
    /// The heights (m), with `origin = [-border_size, -border_size]`: sub-terrain
    /// `(row, col)` covers x in `[row, row + 1) * terrain_length`, y in
    /// `[col, col + 1) * terrain_width`.
    pub field: HeightField,
    /// Rows of sub-terrains (difficulty levels, along x).
    pub num_rows: usize,
    /// Columns of sub-terrains (kinds, along y).
    pub num_cols: usize,
    /// Spawn origin (world x, y, z in m) of sub-terrain `(row, col)` at
    /// `row * num_cols + col`, legged_gym's `env_origins`: x = `(row + 0.5) *
    /// terrain_length`, y = `(col + 0.5) * terrain_width`, z the highest sample within 1 m of
    /// that centre along x and y.
    pub origins: Vec<[f64; 3]>,
    /// The kind of each column, `num_cols` of them.
    pub column_kinds: Vec<SubTerrain>,
}

impl Terrain {
    /// Difficulty of row `row`: `row / num_rows`, in `[0, 1)`.
    pub fn difficulty(&self, row: usize) -> f64 {
        row as f64 / self.num_rows as f64
    }

    /// Spawn origin (world x, y, z in m) of sub-terrain `(row, col)`; `None` outside the
    /// grid.
    pub fn origin(&self, row: usize, col: usize) -> Option<[f64; 3]> {
        (row < self.num_rows && col < self.num_cols)
            .then(|| self.origins[row * self.num_cols + col])
    }

    /// legged_gym's `Terrain.__init__` and `curiculum()`, on a validated config.
    fn build(cfg: &TerrainConfig) -> Result<Terrain> {
        let (nx, ny, border) = cfg.sub_samples();
        let (rows, cols) = cfg.samples();
        let vs = cfg.vertical_scale;
        let cumulative = cfg.proportions.cumulative();
        let choice = |col: usize| col as f64 / cfg.num_cols as f64 + 0.001;
        let column_kinds: Vec<SubTerrain> = (0..cfg.num_cols)
            .map(|col| SubTerrain::for_choice(choice(col), &cumulative))
            .collect();

        // The spawn window, in samples of a sub-terrain (legged_gym's x1..x2, y1..y2).
        let window = |side: f64| {
            let px = |m: f64| (m / cfg.horizontal_scale) as usize;
            px(side / 2.0 - SPAWN_HALF_WINDOW)..px(side / 2.0 + SPAWN_HALF_WINDOW)
        };
        let (wx, wy) = (window(cfg.terrain_length), window(cfg.terrain_width));

        let mut heights = vec![0.0f32; rows * cols];
        let mut origins = vec![[0.0; 3]; cfg.num_rows * cfg.num_cols];
        for row in 0..cfg.num_rows {
            let difficulty = row as f64 / cfg.num_rows as f64;
            for (col, &kind) in column_kinds.iter().enumerate() {
                let mut rng = sub_terrain_rng(cfg.seed, row, col);
                let sub = make_sub_terrain(cfg, kind, choice(col), difficulty, &mut rng);
                // Copy it into the map (`add_terrain_to_map`).
                for i in 0..nx {
                    let start = (border + row * nx + i) * cols + border + col * ny;
                    for (h, &raw) in heights[start..start + ny]
                        .iter_mut()
                        .zip(&sub.raw[i * ny..(i + 1) * ny])
                    {
                        *h = (raw as f64 * vs) as f32;
                    }
                }
                let top = wx
                    .clone()
                    .flat_map(|i| wy.clone().map(move |j| (i, j)))
                    .filter(|&(i, j)| i < nx && j < ny)
                    .map(|(i, j)| sub.at(i, j))
                    .max()
                    .unwrap_or(0);
                origins[row * cfg.num_cols + col] = [
                    (row as f64 + 0.5) * cfg.terrain_length,
                    (col as f64 + 0.5) * cfg.terrain_width,
                    top as f64 * vs,
                ];
            }
        }
        let field = HeightField::new(
            heights,
            rows,
            cols,
            cfg.horizontal_scale,
            [-cfg.border_size, -cfg.border_size],
        )?;
        Ok(Terrain {
            field,
            num_rows: cfg.num_rows,
            num_cols: cfg.num_cols,
            origins,
            column_kinds,
        })
    }
}

/// The generator of sub-terrain `(row, col)`: its 32-byte seed holds `seed`, `row` and `col`,
/// so every sub-terrain draws its own numbers.
fn sub_terrain_rng(seed: u64, row: usize, col: usize) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(row as u64).to_le_bytes());
    key[16..24].copy_from_slice(&(col as u64).to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// legged_gym's `make_terrain`: sub-terrain of kind `kind` at `difficulty`, for the column
/// whose `choice` decides the sign of a smooth slope.
fn make_sub_terrain(
    cfg: &TerrainConfig,
    kind: SubTerrain,
    choice: f64,
    difficulty: f64,
    rng: &mut ChaCha8Rng,
) -> SubField {
    let (nx, ny, _) = cfg.sub_samples();
    let mut f = SubField::new(nx, ny, cfg.horizontal_scale, cfg.vertical_scale);
    let platform = cfg.platform_size;
    // The parameters as legged_gym computes them (same operations, same rounding).
    let slope = difficulty * 0.4;
    let step_height = 0.05 + 0.18 * difficulty;
    let obstacle_height = 0.05 + difficulty * 0.2;
    let stone_size = 1.5 * (1.05 - difficulty);
    let stone_distance = if difficulty == 0.0 { 0.05 } else { 0.1 };
    let gap_size = difficulty;
    let pit_depth = difficulty;
    match kind {
        SubTerrain::SmoothSlope => {
            let sunk = choice < cfg.proportions.smooth_slope / 2.0;
            f.pyramid_sloped(if sunk { -slope } else { slope }, platform);
        }
        SubTerrain::RoughSlope => {
            f.pyramid_sloped(slope, platform);
            f.random_uniform(rng, -0.05, 0.05, 0.005, 0.2);
        }
        SubTerrain::StairsUp => f.pyramid_stairs(0.31, -step_height, platform),
        SubTerrain::StairsDown => f.pyramid_stairs(0.31, step_height, platform),
        SubTerrain::Discrete => f.discrete_obstacles(rng, obstacle_height, 1.0, 2.0, 20, platform),
        SubTerrain::SteppingStones => {
            f.stepping_stones(rng, stone_size, stone_distance, 0.0, platform + 1.0, -10.0);
        }
        SubTerrain::Gaps => f.gap(gap_size, platform),
        SubTerrain::Pit => f.pit(pit_depth, platform + 1.0),
    }
    f
}

/// Python's `a // b` for `b > 0`: rounds towards minus infinity.
fn floor_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b)
}

/// One sub-terrain being built, terrain_utils' `SubTerrain`: heights in whole units of
/// `vertical_scale`, `nx` samples along x by `ny` along y, row-major.
struct SubField {
    nx: usize,
    ny: usize,
    horizontal_scale: f64,
    vertical_scale: f64,
    raw: Vec<i64>,
}

impl SubField {
    fn new(nx: usize, ny: usize, horizontal_scale: f64, vertical_scale: f64) -> Self {
        Self {
            nx,
            ny,
            horizontal_scale,
            vertical_scale,
            raw: vec![0; nx * ny],
        }
    }

    fn at(&self, i: usize, j: usize) -> i64 {
        self.raw[i * self.ny + j]
    }

    /// Metres along the ground to whole samples, Python's `int(m / horizontal_scale)`.
    fn px(&self, metres: f64) -> i64 {
        (metres / self.horizontal_scale) as i64
    }

    /// Metres of height to whole units, Python's `int(m / vertical_scale)`.
    fn units(&self, metres: f64) -> i64 {
        (metres / self.vertical_scale) as i64
    }

    /// Sets the block `[x0, x1) x [y0, y1)` to `height`, as numpy's slice assignment but
    /// clipped to the sub-terrain at both ends.
    fn fill(&mut self, x: (i64, i64), y: (i64, i64), height: i64) {
        let clip = |(a, b): (i64, i64), n: usize| {
            let n = n as i64;
            (a.clamp(0, n) as usize, b.clamp(0, n) as usize)
        };
        let ((x0, x1), (y0, y1)) = (clip(x, self.nx), clip(y, self.ny));
        if y0 >= y1 {
            return;
        }
        for i in x0..x1 {
            self.raw[i * self.ny + y0..i * self.ny + y1].fill(height);
        }
    }

    /// `[start, end)` of a centred platform of `p` samples on a side of `n`, as terrain_utils
    /// writes it: `(n - p) // 2 .. (n + p) // 2`.
    fn centred(n: usize, p: i64) -> (i64, i64) {
        let n = n as i64;
        (floor_div(n - p, 2), floor_div(n + p, 2))
    }

    /// terrain_utils' `pyramid_sloped_terrain`: heights `max_height * fx * fy`, where `fx`
    /// falls linearly from 1 at the centre to 0 at the edges (0 at the first sample, `1/c`
    /// at the last, `c = nx / 2`) and `max_height = slope * nx/2 * horizontal_scale`, cut
    /// to the height of the platform's corner `(nx/2 - p, ny/2 - p)`, `p = platform / 2`.
    /// Along a centre line the slope is exactly `slope` until the cut, which at a 3 m
    /// platform on 8 m lies (1 - 0.625^2) 4 m = 2.44 m from the edge.
    fn pyramid_sloped(&mut self, slope: f64, platform_size: f64) {
        let (nx, ny) = (self.nx, self.ny);
        let (cx, cy) = ((nx / 2) as i64, (ny / 2) as i64);
        let ramp = |k: usize, c: i64| (c - (c - k as i64).abs()) as f64 / c as f64;
        let max_height =
            (slope * (self.horizontal_scale / self.vertical_scale) * (nx as f64 / 2.0)) as i64;
        for i in 0..nx {
            let hx = max_height as f64 * ramp(i, cx);
            for j in 0..ny {
                self.raw[i * ny + j] += (hx * ramp(j, cy)) as i64;
            }
        }
        let p = (platform_size / self.horizontal_scale / 2.0) as i64;
        let corner = |c: i64, n: usize| (c - p).clamp(0, n as i64 - 1) as usize;
        let top = self.at(corner(cx, nx), corner(cy, ny));
        let (lo, hi) = (top.min(0), top.max(0));
        for h in &mut self.raw {
            *h = (*h).clamp(lo, hi);
        }
    }

    /// terrain_utils' `random_uniform_terrain`: adds noise drawn uniformly from
    /// `min_height, min_height + step, .., max_height` on a coarse grid of
    /// `int(side / downsampled_scale)` points spanning the sub-terrain, read bilinearly at
    /// every sample (scipy's `interp2d(kind='linear')`, whose grid and samples both run from
    /// the first to the last position) and rounded half to even (`np.rint`). The positions
    /// are exact fractions here; scipy's spline may differ in the last bit, which would
    /// change a rounding only at an exact half unit.
    fn random_uniform(
        &mut self,
        rng: &mut ChaCha8Rng,
        min_height: f64,
        max_height: f64,
        step: f64,
        downsampled_scale: f64,
    ) {
        let (nx, ny) = (self.nx, self.ny);
        let (lo, hi, step) = (
            self.units(min_height),
            self.units(max_height),
            self.units(step).max(1),
        );
        let values: Vec<i64> = (0..)
            .map(|k| lo + k * step)
            .take_while(|&v| v < hi + step)
            .collect();
        let coarse_side =
            |n: usize| ((n as f64 * self.horizontal_scale / downsampled_scale) as usize).max(2);
        let (mx, my) = (coarse_side(nx), coarse_side(ny));
        let coarse: Vec<f64> = (0..mx * my)
            .map(|_| values[rng.random_range(0..values.len())] as f64)
            .collect();
        // Sample k of n lies at k (m - 1) / (n - 1) in coarse points: cell and fraction.
        let locate = |k: usize, n: usize, m: usize| {
            if n < 2 {
                return (0, 0.0);
            }
            let t = k * (m - 1);
            let cell = t / (n - 1);
            if cell >= m - 1 {
                (m - 2, 1.0)
            } else {
                (cell, (t % (n - 1)) as f64 / (n - 1) as f64)
            }
        };
        let cells_y: Vec<(usize, f64)> = (0..ny).map(|j| locate(j, ny, my)).collect();
        for i in 0..nx {
            let (a, u) = locate(i, nx, mx);
            let (r0, r1) = (
                &coarse[a * my..(a + 1) * my],
                &coarse[(a + 1) * my..(a + 2) * my],
            );
            for (j, &(b, v)) in cells_y.iter().enumerate() {
                let z = (1.0 - u) * ((1.0 - v) * r0[b] + v * r0[b + 1])
                    + u * ((1.0 - v) * r1[b] + v * r1[b + 1]);
                self.raw[i * ny + j] += z.round_ties_even() as i64;
            }
        }
    }

    /// terrain_utils' `pyramid_stairs_terrain`: from the edges inwards, rings of
    /// `int(step_width / horizontal_scale)` samples (3 for 0.31 m), each `step_height` above
    /// the last, while the part left is wider than the platform; with 80 samples and a 3 m
    /// platform, 9 steps and a top of 26 samples.
    fn pyramid_stairs(&mut self, step_width: f64, step_height: f64, platform_size: f64) {
        let w = self.px(step_width).max(1);
        let dh = self.units(step_height);
        let p = self.px(platform_size);
        let (mut x, mut y) = ((0, self.nx as i64), (0, self.ny as i64));
        let mut height = 0;
        while x.1 - x.0 > p && y.1 - y.0 > p {
            x = (x.0 + w, x.1 - w);
            y = (y.0 + w, y.1 - w);
            height += dh;
            self.fill(x, y, height);
        }
    }

    /// terrain_utils' `discrete_obstacles_terrain`: `num_rects` rectangles with sides drawn
    /// from `min_size, min_size + 4, .. < max_size` samples (10, 14, 18), corners from every
    /// 4th sample, heights from `-h, -h // 2, h // 2, h`; then the platform is set to 0.
    fn discrete_obstacles(
        &mut self,
        rng: &mut ChaCha8Rng,
        max_height: f64,
        min_size: f64,
        max_size: f64,
        num_rects: usize,
        platform_size: f64,
    ) {
        let h = self.units(max_height);
        let heights = [-h, floor_div(-h, 2), floor_div(h, 2), h];
        let (min_size, max_size) = (self.px(min_size), self.px(max_size));
        let mut sizes: Vec<i64> = (min_size..max_size).step_by(4).collect();
        if sizes.is_empty() {
            sizes.push(min_size.max(1));
        }
        // One of 0, 4, 8, .. < n - side (0 where there is no room).
        let corner = |rng: &mut ChaCha8Rng, n: usize, side: i64| {
            let count = (n as i64 - side + 3).div_euclid(4).max(1) as usize;
            4 * rng.random_range(0..count) as i64
        };
        for _ in 0..num_rects {
            let sx = sizes[rng.random_range(0..sizes.len())];
            let sy = sizes[rng.random_range(0..sizes.len())];
            let x0 = corner(rng, self.nx, sx);
            let y0 = corner(rng, self.ny, sy);
            let height = heights[rng.random_range(0..heights.len())];
            self.fill((x0, x0 + sx), (y0, y0 + sy), height);
        }
        let p = self.px(platform_size);
        self.fill(Self::centred(self.nx, p), Self::centred(self.ny, p), 0);
    }

    /// terrain_utils' `stepping_stones_terrain` (the branch for `ny >= nx`, and its
    /// transpose): the sub-terrain at `depth`, then bands of stones `stone_size` wide and
    /// `stone_distance` apart along y, each band a row of stones with a random offset along
    /// x (the stone cut by the edge filled too), heights drawn from `-max_height - 1 ..
    /// max_height` units (so -1 unit at `max_height = 0`, as in legged_gym); then the
    /// platform at 0.
    fn stepping_stones(
        &mut self,
        rng: &mut ChaCha8Rng,
        stone_size: f64,
        stone_distance: f64,
        max_height: f64,
        platform_size: f64,
        depth: f64,
    ) {
        let size = self.px(stone_size).max(1);
        let gap = self.px(stone_distance);
        let h = self.units(max_height);
        let heights: Vec<i64> = (-h - 1..h.max(0)).collect();
        let height = |rng: &mut ChaCha8Rng| heights[rng.random_range(0..heights.len())];
        let bottom = self.units(depth);
        self.raw.fill(bottom);
        let (nx, ny) = (self.nx as i64, self.ny as i64);
        // Bands along the longer side (y when square), stones within a band along the other.
        let along_y = ny >= nx;
        let (n_band, n_stone) = if along_y { (ny, nx) } else { (nx, ny) };
        let mut band = 0;
        while band < n_band {
            let band_end = n_band.min(band + size);
            let mut start = rng.random_range(0..size);
            let put = |f: &mut Self, s: (i64, i64), rng: &mut ChaCha8Rng| {
                let v = height(rng);
                if along_y {
                    f.fill(s, (band, band_end), v);
                } else {
                    f.fill((band, band_end), s, v);
                }
            };
            put(self, (0, (start - gap).max(0)), rng);
            while start < n_stone {
                put(self, (start, n_stone.min(start + size)), rng);
                start += size + gap;
            }
            band += size + gap;
        }
        let p = self.px(platform_size);
        self.fill(Self::centred(self.nx, p), Self::centred(self.ny, p), 0);
    }

    /// legged_gym's `gap_terrain`: a square ring `gap_size` wide and 5 m deep (its -1000
    /// units) from `c - x1 - gap` to `c + x1 + gap`, around a flat square from `c - x1` to
    /// `c + x1`, `c = n // 2`, `x1 = (n - platform) // 2`. As in legged_gym, `x1` (half of
    /// what the platform leaves) is taken as the half-width, so the flat square is `n -
    /// platform` samples wide: 5 m for a 3 m platform on 8 m.
    fn gap(&mut self, gap_size: f64, platform_size: f64) {
        let g = self.px(gap_size);
        let p = self.px(platform_size);
        let ring = |n: usize, extra: i64| {
            let (c, half) = ((n / 2) as i64, floor_div(n as i64 - p, 2));
            (c - half - extra, c + half + extra)
        };
        let depth = self.units(-5.0);
        self.fill(ring(self.nx, g), ring(self.ny, g), depth);
        self.fill(ring(self.nx, 0), ring(self.ny, 0), 0);
    }

    /// legged_gym's `pit_terrain`: the square `n // 2 -+ int(platform / 2)` samples sunk to
    /// `-int(depth / vertical_scale)` units.
    fn pit(&mut self, depth: f64, platform_size: f64) {
        let d = self.units(depth);
        let p = (platform_size / self.horizontal_scale / 2.0) as i64;
        let square = |n: usize| ((n / 2) as i64 - p, (n / 2) as i64 + p);
        self.fill(square(self.nx), square(self.ny), -d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples of a sub-terrain's side and of the border in the test configs (8 m, 2 m at
    /// 0.1 m).
    const N: usize = 80;
    const BORDER: usize = 20;

    fn config(num_cols: usize, proportions: TerrainProportions) -> TerrainConfig {
        TerrainConfig {
            kind: TerrainKind::Heightfield,
            num_cols,
            border_size: 2.0,
            proportions,
            ..TerrainConfig::default()
        }
    }

    /// Proportions that are zero but for what `set` sets (pits where nothing is set).
    fn only(set: impl Fn(&mut TerrainProportions)) -> TerrainProportions {
        let mut p = TerrainProportions {
            smooth_slope: 0.0,
            rough_slope: 0.0,
            stairs_up: 0.0,
            stairs_down: 0.0,
            discrete: 0.0,
            stepping_stones: 0.0,
            gaps: 0.0,
        };
        set(&mut p);
        p
    }

    fn generate(cfg: &TerrainConfig) -> Terrain {
        cfg.generate()
            .expect("a valid config")
            .expect("a height field, not a plane")
    }

    /// Sample `(i, j)` of sub-terrain `(row, col)` in whole units of the 0.005 m scale.
    fn unit(t: &Terrain, row: usize, col: usize, i: usize, j: usize) -> i64 {
        let h = t.field.sample(BORDER + row * N + i, BORDER + col * N + j) / 0.005;
        assert!((h - h.round()).abs() < 1e-3, "{h} units is not whole");
        h.round() as i64
    }

    /// Every sample of sub-terrain `(row, col)`, row-major, in units.
    fn block(t: &Terrain, row: usize, col: usize) -> Vec<i64> {
        (0..N * N)
            .map(|k| unit(t, row, col, k / N, k % N))
            .collect()
    }

    fn inside(k: usize, (a, b): (usize, usize)) -> bool {
        (a..b).contains(&k)
    }

    #[test]
    fn smooth_slopes_are_pyramids_of_slope_0_4_d_cut_at_the_platform_corner() {
        // Column 0 (choice 0.001 < 0.5 / 2) is sunk, column 1 (0.501) raised.
        let t = generate(&config(2, only(|p| p.smooth_slope = 1.0)));
        assert_eq!(t.column_kinds, [SubTerrain::SmoothSlope; 2]);
        // Row 5: d = 0.5, slope 0.2, max_height int(0.2 * 20 * 40) = 160 units.
        for (col, sign) in [(0, -1), (1, 1)] {
            // On the centre line, 3 m and 3.5 m from the centre: slope x (4 m - r).
            assert_eq!(unit(&t, 5, col, 10, 40), sign * 40, "0.2 m at r = 3 m");
            assert_eq!(unit(&t, 5, col, 5, 40), sign * 20, "0.1 m at r = 3.5 m");
            assert_eq!(unit(&t, 5, col, 40, 75), sign * 20, "along y too");
            assert_eq!(unit(&t, 5, col, 0, 40), 0, "the edge");
            // Off the centre line the two ramps multiply: 160 x 0.25 x 0.25.
            assert_eq!(unit(&t, 5, col, 10, 10), sign * 10);
            // Cut at the platform's corner (25, 25): 160 x 0.625^2 = 62.5 -> 62 (0.31 m).
            assert_eq!(
                unit(&t, 5, col, 20, 40),
                sign * 62,
                "cut 2 m from the centre"
            );
            for i in 25..55 {
                for j in 25..55 {
                    assert_eq!(unit(&t, 5, col, i, j), sign * 62, "platform ({i}, {j})");
                }
            }
        }
        // Difficulty 0 is flat; difficulty 0.9: 288 units, cut at 288 x 0.625^2 = 112.
        assert!(block(&t, 0, 1).iter().all(|&h| h == 0));
        assert_eq!(unit(&t, 9, 1, 10, 40), 72);
        assert_eq!(unit(&t, 9, 1, 40, 40), 112);
        assert_eq!(t.origin(5, 0).expect("inside")[2], -62.0 * 0.005);
        assert_eq!(t.origin(5, 1).expect("inside")[2], 62.0 * 0.005);
    }

    #[test]
    fn rough_slopes_are_the_pyramid_plus_noise_of_5_cm_on_a_20_cm_grid() {
        let rough = generate(&config(1, only(|p| p.rough_slope = 1.0)));
        let smooth = generate(&config(2, only(|p| p.smooth_slope = 1.0)));
        assert_eq!(rough.column_kinds, [SubTerrain::RoughSlope]);
        for row in [0, 5, 9] {
            let noise: Vec<i64> = block(&rough, row, 0)
                .iter()
                .zip(block(&smooth, row, 1))
                .map(|(r, s)| r - s)
                .collect();
            // +-0.05 m in steps of 0.005 m, spread over most of that range.
            assert!(noise.iter().all(|n| n.abs() <= 10), "row {row}");
            let mut levels = noise.clone();
            levels.sort_unstable();
            levels.dedup();
            assert!(levels.len() >= 15, "row {row}: only {levels:?}");
            let mean = noise.iter().sum::<i64>() as f64 / noise.len() as f64;
            assert!(mean.abs() < 2.0, "row {row}: mean {mean}");
            // Read bilinearly from points 2.03 samples apart, neighbours differ by at most
            // 20 / 2.03 units plus the rounding; noise drawn per sample would not.
            let step = |a: usize, b: usize| (noise[a] - noise[b]).abs();
            for i in 0..N - 1 {
                for j in 0..N - 1 {
                    let k = i * N + j;
                    assert!(step(k, k + N) <= 10 && step(k, k + 1) <= 10, "({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn stairs_are_rings_of_0_3_m_stepping_0_05_plus_0_18_d() {
        // Column 0 (choice 0.001) goes up from the centre outwards, column 1 down.
        let t = generate(&config(
            2,
            only(|p| {
                p.stairs_up = 0.5;
                p.stairs_down = 0.5;
            }),
        ));
        assert_eq!(
            t.column_kinds,
            [SubTerrain::StairsUp, SubTerrain::StairsDown]
        );
        // Row 5: int(0.14 / 0.005) = 28 units a step; int(0.31 / 0.1) = 3 samples a ring,
        // rings while more than 30 samples are left: 9 steps, a top of 26 samples.
        for (col, sign) in [(0, -1), (1, 1)] {
            for i in 0..N {
                for j in 0..N {
                    let ring = [i / 3, (N - 1 - i) / 3, j / 3, (N - 1 - j) / 3, 9];
                    let steps = *ring.iter().min().expect("five") as i64;
                    assert_eq!(unit(&t, 5, col, i, j), sign * 28 * steps, "({i}, {j})");
                }
            }
            assert!((t.origin(5, col).expect("inside")[2] - sign as f64 * 9.0 * 0.14).abs() < 1e-9);
        }
        // Row 0: 10 units (0.05 m) a step; row 9: int(0.212 / 0.005) = 42.
        assert_eq!(unit(&t, 0, 1, 40, 40), 90);
        assert_eq!(unit(&t, 9, 1, 4, 40), 42);
    }

    #[test]
    fn obstacles_take_legged_gyms_heights_around_a_flat_platform() {
        let t = generate(&config(3, only(|p| p.discrete = 1.0)));
        assert_eq!(t.column_kinds, [SubTerrain::Discrete; 3]);
        // h = int((0.05 + 0.2 d) / 0.005): 10, 30, 46 units at rows 0, 5, 9.
        for (row, h) in [(0, 10), (5, 30), (9, 46)] {
            for col in 0..3 {
                let heights = block(&t, row, col);
                let allowed = [-h, -h / 2, 0, h / 2, h];
                assert!(
                    heights.iter().all(|v| allowed.contains(v)),
                    "({row}, {col})"
                );
                let mut seen: Vec<i64> = heights.clone();
                seen.sort_unstable();
                seen.dedup();
                assert!(seen.len() >= 4, "({row}, {col}): only {seen:?}");
                // The 3 m platform: samples (80 - 30) // 2 = 25 to (80 + 30) // 2 = 55.
                for i in 25..55 {
                    for j in 25..55 {
                        assert_eq!(heights[i * N + j], 0, "({row}, {col}) at ({i}, {j})");
                    }
                }
                assert_eq!(t.origin(row, col).expect("inside")[2], 0.0);
            }
        }
    }

    #[test]
    fn stepping_stones_stand_in_bands_over_10_m_holes() {
        let t = generate(&config(1, only(|p| p.stepping_stones = 1.0)));
        assert_eq!(t.column_kinds, [SubTerrain::SteppingStones]);
        let platform = (20, 60); // 4 m: (80 -+ 40) // 2
        let on_platform = |i, j| inside(i, platform) && inside(j, platform);
        // Difficulty 0: stones of int(1.575 / 0.1) = 15 samples, int(0.05 / 0.1) = 0 apart,
        // so no holes; legged_gym's max_height 0 puts every stone at -1 unit.
        for i in 0..N {
            for j in 0..N {
                let want = if on_platform(i, j) { 0 } else { -1 };
                assert_eq!(unit(&t, 0, 0, i, j), want, "({i}, {j})");
            }
        }
        // Difficulty 0.5: stones of int(0.825 / 0.1) = 8 samples, 1 apart, in bands along y
        // (columns 0..8, 9..17, ..) with holes of -2000 units (-10 m) between.
        let h = block(&t, 5, 0);
        assert!(h.iter().all(|v| [-2000, -1, 0].contains(v)));
        for i in 0..N {
            assert_eq!(h[i * N + 8], -2000, "the hole between the first two bands");
            assert_eq!(h[i * N + 17], -2000);
        }
        for i in 20..60 {
            for j in 20..60 {
                assert_eq!(h[i * N + j], 0, "platform ({i}, {j})");
            }
        }
        // Within the first band the holes along x are the same in every column, 9 apart.
        let holes: Vec<usize> = (0..N).filter(|&i| h[i * N] == -2000).collect();
        assert!((8..=9).contains(&holes.len()), "{holes:?}");
        assert!(holes.windows(2).all(|w| w[1] - w[0] == 9), "{holes:?}");
        for j in 1..8 {
            assert!((0..N).all(|i| h[i * N + j] == h[i * N]), "column {j}");
        }
        assert_eq!(t.origin(5, 0).expect("inside")[2], 0.0);
    }

    #[test]
    fn gaps_and_pits_have_their_depth_and_width() {
        // Column 0 (choice 0.001) gaps, column 1 (0.501) the rest: pits.
        let t = generate(&config(2, only(|p| p.gaps = 0.5)));
        assert_eq!(t.column_kinds, [SubTerrain::Gaps, SubTerrain::Pit]);
        // Row 5, d = 0.5. Gap: a ring int(0.5 / 0.1) = 5 samples wide and 5 m (1000 units)
        // deep around legged_gym's flat square of 40 -+ (80 - 30) // 2 = 15..65.
        // Pit: 40 -+ int(4 / 0.1 / 2) = 20..60 sunk int(0.5 / 0.005) = 100 units.
        for i in 0..N {
            for j in 0..N {
                let gap = if inside(i, (15, 65)) && inside(j, (15, 65)) {
                    0
                } else if inside(i, (10, 70)) && inside(j, (10, 70)) {
                    -1000
                } else {
                    0
                };
                assert_eq!(unit(&t, 5, 0, i, j), gap, "gap ({i}, {j})");
                let pit = if inside(i, (20, 60)) && inside(j, (20, 60)) {
                    -100
                } else {
                    0
                };
                assert_eq!(unit(&t, 5, 1, i, j), pit, "pit ({i}, {j})");
            }
        }
        assert_eq!(t.origin(5, 0).expect("inside")[2], 0.0);
        assert!((t.origin(5, 1).expect("inside")[2] + 0.5).abs() < 1e-9);
        // Difficulty 0: no gap, no pit.
        assert!(
            block(&t, 0, 0)
                .iter()
                .chain(&block(&t, 0, 1))
                .all(|&h| h == 0)
        );
    }

    #[test]
    fn the_default_grid_is_laid_out_as_legged_gyms() {
        let cfg = TerrainConfig {
            kind: TerrainKind::Heightfield,
            ..TerrainConfig::default()
        };
        let t = generate(&cfg);
        let f = &t.field;
        assert_eq!((f.rows, f.cols), (10 * 80 + 2 * 250, 20 * 80 + 2 * 250));
        assert_eq!((f.spacing, f.origin), (0.1, [-25.0, -25.0]));
        assert_eq!((t.num_rows, t.num_cols), (10, 20));
        use SubTerrain::*;
        let mut kinds = vec![SmoothSlope; 2];
        kinds.extend([RoughSlope; 2]);
        kinds.extend([StairsUp; 7]);
        kinds.extend([StairsDown; 5]);
        kinds.extend([Discrete; 4]);
        assert_eq!(t.column_kinds, kinds);
        // The border is flat at 0.
        for i in 0..f.rows {
            for j in 0..f.cols {
                let in_grid = inside(i, (250, f.rows - 250)) && inside(j, (250, f.cols - 250));
                if !in_grid {
                    assert_eq!(f.sample(i, j), 0.0, "border ({i}, {j})");
                }
            }
        }
        // Origins: sub-terrain centres at the top of their spawn window.
        let close = |a: [f64; 3], b: [f64; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9);
        for (row, col, want) in [
            (0, 0, [4.0, 4.0, 0.0]),
            (5, 0, [44.0, 4.0, -0.31]),
            (5, 1, [44.0, 12.0, 0.31]),
            (5, 4, [44.0, 36.0, -1.26]),
            (5, 11, [44.0, 92.0, 1.26]),
            (9, 19, [76.0, 156.0, 0.0]),
        ] {
            let got = t.origin(row, col).expect("inside");
            assert!(close(got, want), "({row}, {col}): {got:?}, want {want:?}");
            assert_eq!(got, t.origins[row * 20 + col]);
        }
        assert_eq!(t.origin(10, 0), None);
        assert_eq!(t.origin(0, 20), None);
        // The field is where the origins say: on the platform of (5, 1), 0.31 m.
        assert!((f.height_at(44.0, 12.0) - 0.31).abs() < 1e-6);
        assert!((f.height_at(44.0, 92.5) - 1.26).abs() < 1e-6);
        assert_eq!(t.difficulty(0), 0.0);
        assert_eq!(t.difficulty(5), 0.5);
    }

    #[test]
    fn the_seed_alone_decides_the_random_sub_terrains() {
        let cfg = config(
            4,
            only(|p| {
                p.rough_slope = 0.5;
                p.discrete = 0.5;
            }),
        );
        let a = generate(&cfg);
        assert_eq!(a, generate(&cfg), "same seed, same terrain");
        // Each sub-terrain draws its own numbers.
        assert_ne!(block(&a, 5, 2), block(&a, 5, 3));
        let other = generate(&TerrainConfig {
            seed: 1,
            ..cfg.clone()
        });
        assert_ne!(a.field.heights, other.field.heights);
        for (row, col) in [(5, 0), (5, 3)] {
            assert_ne!(
                block(&a, row, col),
                block(&other, row, col),
                "({row}, {col})"
            );
        }
        // Deterministic sub-terrains do not depend on the seed.
        let stairs = config(1, only(|p| p.stairs_down = 1.0));
        assert_eq!(
            generate(&stairs),
            generate(&TerrainConfig {
                seed: 7,
                ..stairs.clone()
            })
        );
    }

    #[test]
    fn a_sub_terrain_keeps_its_shape_when_other_columns_change_kind() {
        let a_cfg = config(20, TerrainProportions::default());
        // Column 15 turns from stairs down into obstacles; 16..19 stay obstacles.
        let b_cfg = config(
            20,
            TerrainProportions {
                stairs_down: 0.2,
                discrete: 0.25,
                ..TerrainProportions::default()
            },
        );
        let (a, b) = (generate(&a_cfg), generate(&b_cfg));
        assert_eq!(a.column_kinds[15], SubTerrain::StairsDown);
        assert_eq!(b.column_kinds[15], SubTerrain::Discrete);
        for col in 16..20 {
            assert_eq!(b.column_kinds[col], SubTerrain::Discrete);
            for row in [3, 9] {
                assert_eq!(block(&a, row, col), block(&b, row, col), "({row}, {col})");
            }
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert!(TerrainConfig::default().validate().is_ok());
        type Break = fn(&mut TerrainConfig);
        let cases: Vec<(Break, &str)> = vec![
            (
                |c| c.num_rows = 0,
                "terrain.num_rows must be at least 1, got 0",
            ),
            (|c| c.num_cols = 0, "terrain.num_cols must be at least 1"),
            (
                |c| c.horizontal_scale = 0.0,
                "terrain.horizontal_scale must be > 0",
            ),
            (
                |c| c.vertical_scale = f64::NAN,
                "terrain.vertical_scale must be > 0",
            ),
            (
                |c| c.terrain_length = 1.5,
                "terrain.terrain_length must be at least 2 m",
            ),
            (
                |c| c.terrain_width = -8.0,
                "terrain.terrain_width must be at least 2 m",
            ),
            (
                |c| c.horizontal_scale = 5.0,
                "terrain.horizontal_scale must leave",
            ),
            (|c| c.border_size = -1.0, "terrain.border_size must be >= 0"),
            (
                |c| c.platform_size = 7.5,
                "terrain.platform_size must be >= 0",
            ),
            (
                |c| c.proportions.gaps = -0.1,
                "terrain.proportions.gaps must be >= 0",
            ),
            (
                |c| c.proportions.discrete = 0.5,
                "terrain.proportions must sum to at most 1",
            ),
            (
                |c| c.max_init_terrain_level = 10,
                "terrain.max_init_terrain_level must be below",
            ),
            (
                |c| c.horizontal_scale = 0.001,
                "terrain.horizontal_scale 0.001 gives a field",
            ),
        ];
        for (break_it, want) in cases {
            let mut cfg = TerrainConfig::default();
            break_it(&mut cfg);
            let err = cfg.generate().expect_err(want).to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn the_config_reads_from_serde_with_defaults_and_a_plane_generates_nothing() {
        let cfg: TerrainConfig = serde_json::from_str("{}").expect("defaults");
        assert_eq!(cfg, TerrainConfig::default());
        assert_eq!(cfg.generate().expect("valid"), None);
        let cfg: TerrainConfig =
            serde_json::from_str(r#"{"type": "heightfield", "proportions": {"gaps": 0.0}}"#)
                .expect("heightfield");
        assert_eq!(cfg.kind, TerrainKind::Heightfield);
        assert_eq!(cfg.proportions, TerrainProportions::default());
        assert!(serde_json::from_str::<TerrainConfig>(r#"{"num_row": 3}"#).is_err());
        assert!(serde_json::from_str::<TerrainConfig>(r#"{"type": "trimesh"}"#).is_err());
        let names: Vec<&str> = SubTerrain::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(
            names,
            [
                "smooth_slope",
                "rough_slope",
                "stairs_up",
                "stairs_down",
                "discrete",
                "stepping_stones",
                "gaps",
                "pit"
            ]
        );
    }
}
