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

    /// Spawn origin (world x, y, z in m) of sub-terrain `(row, col)`.
    ///
    /// # Panics
    /// If `row >= num_rows` or `col >= num_cols`.
    pub fn origin(&self, row: usize, col: usize) -> [f64; 3] {
        assert!(
            row < self.num_rows && col < self.num_cols,
            "sub-terrain ({row}, {col}) is outside the {} x {} grid",
            self.num_rows,
            self.num_cols
        );
        self.origins[row * self.num_cols + col]
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

