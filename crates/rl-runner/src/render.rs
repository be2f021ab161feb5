//! Animated GIFs of recorded [`Scene`]s: a side view and a top view that follow the robot.
//!
//! A small software renderer: orthographic views, shapes filled back to front (painter's
//! order), a fixed palette. Each frame is two panels side by side, both centred on the
//! scene's `focus` (a following camera) at a fixed scale:
//! - left, the side view: `x` to the right, `z` up, looking along `+y`, with the ground;
//! - right, the top view: `x` to the right, `y` up, looking down.
//!
//! On rough terrain (the scene's [`HeightPatch`]) the side view's ground is the terrain's
//! profile along the line `y = focus.y`, and the top view is shaded by the terrain's height
//! relative to the ground under the focus, in bands of [`TERRAIN_BAND`] metres.
//!
//! World-fixed grid lines show the robot moving over the ground although the camera
//! follows it. Shapes on the near side of the focus (`y` below it) are orange, those on the
//! far side blue, those level with it (the body) slate, in both views.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rl_core::{HeightPatch, Scene, SceneShape};

use crate::Error;

/// How [`write_gif`] draws.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// Width of each of the two panels, pixels (the GIF is twice as wide).
    pub panel_width: u16,
    /// Height of the panels, pixels.
    pub panel_height: u16,
    /// Metres across the width of a panel: the scale of both views.
    pub metres_across: f32,
    /// Spacing of the world-fixed grid lines, metres.
    pub grid_spacing: f32,
    /// Highest frame rate, at most 50: scenes closer in time than `1 / max_fps` to the
    /// previous frame are skipped. (GIF delays are whole centiseconds, and viewers slow
    /// delays under 2 cs down.)
    pub max_fps: u32,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            panel_width: 320,
            panel_height: 240,
            metres_across: 2.5,
            grid_spacing: 0.5,
            max_fps: 50,
        }
    }
}

impl RenderOptions {
    /// Errors naming the first option out of range.
    fn check(&self) -> Result<(), String> {
        if self.panel_width < 8 || self.panel_height < 8 {
            return Err(format!(
                "panels of {}x{} pixels are too small (at least 8x8)",
                self.panel_width, self.panel_height
            ));
        }
        if u32::from(self.panel_width) * 2 > u32::from(u16::MAX) {
            return Err(format!(
                "panel_width {} is too large: a GIF is at most {} pixels wide",
                self.panel_width,
                u16::MAX
            ));
        }
        if !(self.metres_across.is_finite() && self.metres_across > 0.0) {
            return Err(format!(
                "metres_across must be positive, got {}",
                self.metres_across
            ));
        }
        if !(self.grid_spacing.is_finite() && self.grid_spacing > 0.0) {
            return Err(format!(
                "grid_spacing must be positive, got {}",
                self.grid_spacing
            ));
        }
        if !(1..=50).contains(&self.max_fps) {
            return Err(format!("max_fps must be in 1..=50, got {}", self.max_fps));
        }
        Ok(())
    }
}

/// How long the last frame stays before the animation loops, centiseconds.
const END_PAUSE_CS: u16 = 50;

/// Renders `scenes` (one recording, in time order) to an animated GIF at `path` and returns
/// the number of frames. Scenes are skipped so that the GIF runs in real time (each
/// scene's `dt` is the time since the previous one) at no more than `options.max_fps`.
///
/// The file is written atomically (a temporary file in the same directory, renamed over
/// `path`), so an existing file is never left half-written; the directory must exist.
pub fn write_gif(path: &Path, scenes: &[Scene], options: &RenderOptions) -> Result<usize, Error> {
    let fail = |message: String| Error::Render {
        path: path.to_path_buf(),
        message,
    };
    options.check().map_err(fail)?;
    if scenes.is_empty() {
        return Err(fail("no scenes were recorded".into()));
    }
    for (k, scene) in scenes.iter().enumerate() {
        check_scene(scene, k > 0).map_err(|m| fail(format!("scene {k}: {m}")))?;
    }
    let schedule = frame_schedule(scenes, options.max_fps);

    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".render-").suffix(".gif.tmp");
    #[cfg(unix)]
    {
        // The default of a temporary file is 0600; a GIF is for sharing (the umask applies).
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    // Dropped on any error below, which deletes it.
    let mut tmp = builder.tempfile_in(&dir).map_err(|e| {
        fail(format!(
            "cannot create a temporary file in `{}`: {e}",
            dir.display()
        ))
    })?;

    let width = options.panel_width * 2;
    let height = options.panel_height;
    let encode_err = |e: gif::EncodingError| fail(format!("cannot encode the GIF: {e}"));
    {
        let mut encoder =
            gif::Encoder::new(BufWriter::new(tmp.as_file_mut()), width, height, &palette())
                .map_err(encode_err)?;
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .map_err(encode_err)?;
        for &(k, delay) in &schedule {
            let mut frame = gif::Frame::from_indexed_pixels(
                width,
                height,
                render_frame(&scenes[k], options),
                None,
            );
            frame.delay = delay;
            encoder.write_frame(&frame).map_err(encode_err)?;
        }
        let mut writer = encoder.into_inner().map_err(encode_err)?;
        writer
            .flush()
            .map_err(|e| fail(format!("cannot write the GIF: {e}")))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| fail(format!("cannot flush the GIF to disk: {e}")))?;
    tmp.persist(path).map_err(|e| {
        fail(format!(
            "cannot rename the temporary file onto it: {}",
            e.error
        ))
    })?;
    Ok(schedule.len())
}

/// Errors (a usage error of `--render`) if `path` cannot be a [`write_gif`] target because
/// its directory is missing; lets `play --render` fail before it plays rather than after.
pub(crate) fn check_target(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(Error::Input {
            origin: "--render".into(),
            message: format!(
                "cannot write `{}`: the directory `{}` does not exist",
                path.display(),
                dir.display()
            ),
        })
    }
}

/// What is wrong with a scene's numbers, if anything (`check_dt`: whether its `dt` is used).
fn check_scene(scene: &Scene, check_dt: bool) -> Result<(), String> {
    let finite = |p: &[f32; 3]| p.iter().all(|v| v.is_finite());
    if check_dt && !(scene.dt.is_finite() && scene.dt >= 0.0) {
        return Err(format!(
            "dt must be finite and not negative, got {}",
            scene.dt
        ));
    }
    if !finite(&scene.focus) {
        return Err(format!("the focus {:?} is not finite", scene.focus));
    }
    if scene.ground.is_some_and(|g| !g.is_finite()) {
        return Err(format!(
            "the ground height {:?} is not finite",
            scene.ground
        ));
    }
    if let Some(t) = &scene.terrain {
        if t.rows == 0 || t.cols == 0 || t.rows.checked_mul(t.cols) != Some(t.heights.len()) {
            return Err(format!(
                "the terrain patch of {} x {} samples has {} heights",
                t.rows,
                t.cols,
                t.heights.len()
            ));
        }
        if !(t.spacing.is_finite() && t.spacing > 0.0) {
            return Err(format!(
                "the terrain patch's spacing must be positive, got {}",
                t.spacing
            ));
        }
        if !t.origin.iter().chain(&t.heights).all(|v| v.is_finite()) {
            return Err("the terrain patch has a non-finite origin or height".into());
        }
    }
    for (i, shape) in scene.shapes.iter().enumerate() {
        let ok = match shape {
            SceneShape::Sphere { center, radius } => {
                finite(center) && radius.is_finite() && *radius >= 0.0
            }
            SceneShape::Capsule { a, b, radius } => {
                finite(a) && finite(b) && radius.is_finite() && *radius >= 0.0
            }
            SceneShape::Box { corners } => corners.iter().all(finite),
        };
        if !ok {
            return Err(format!(
                "shape {i} has a non-finite coordinate or a negative radius: {shape:?}"
            ));
        }
    }
    Ok(())
}

/// The scenes drawn and each frame's delay in centiseconds: the first scene, then every
/// scene at least `ceil(100 / max_fps)` cs after the previous frame, in accumulated `dt`.
fn frame_schedule(scenes: &[Scene], max_fps: u32) -> Vec<(usize, u16)> {
    let min_delay = 100u32.div_ceil(max_fps.max(1)).max(2);
    let mut time = 0.0f64;
    let mut frames: Vec<(usize, u64)> = vec![(0, 0)];
    let mut last_cs = 0u64;
    for (k, scene) in scenes.iter().enumerate().skip(1) {
        time += f64::from(scene.dt);
        let cs = (time * 100.0).round() as u64;
        if cs >= last_cs + u64::from(min_delay) {
            frames.push((k, cs));
            last_cs = cs;
        }
    }
    let mut schedule = Vec::with_capacity(frames.len());
    for (i, &(k, cs)) in frames.iter().enumerate() {
        let delay = match frames.get(i + 1) {
            Some(&(_, next)) => u16::try_from(next - cs).unwrap_or(u16::MAX),
            None => END_PAUSE_CS,
        };
        schedule.push((k, delay));
    }
    schedule
}

// Palette indices. Shapes use `SHADED + tint * SHADES + shade`, shade 0 darkest.
const BACKGROUND: u8 = 0;
const GRID: u8 = 1;
const GROUND: u8 = 2;
const GROUND_GRID: u8 = 3;
const GROUND_LINE: u8 = 4;
const SEPARATOR: u8 = 5;
const SHADED: u8 = 8;
const SHADES: u8 = 4;
/// The top view's terrain bands, lowest first (`TERRAIN_BANDS` of them, the middle one level
/// with the ground under the focus), then the same with a grid line on them.
const TERRAIN: u8 = SHADED + 3 * SHADES;
const TERRAIN_BANDS: u8 = 9;
const TERRAIN_GRID: u8 = TERRAIN + TERRAIN_BANDS;
/// Height of one terrain band in the top view, metres.
const TERRAIN_BAND: f32 = 0.05;

/// Shape colours: near side of the focus, level with it, far side.
const TINTS: [[u8; 3]; 3] = [[235, 125, 45], [85, 100, 125], [110, 150, 215]];

/// The global palette, `[r, g, b, ...]`.
fn palette() -> Vec<u8> {
    let mut colours: Vec<[u8; 3]> = vec![
        [246, 246, 242], // background
        [218, 218, 212], // grid
        [214, 200, 172], // ground
        [188, 172, 142], // grid on the ground
        [95, 80, 62],    // ground line
        [60, 60, 60],    // separator
        [0, 0, 0],
        [0, 0, 0],
    ];
    for tint in TINTS {
        for shade in 0..SHADES {
            let f = 0.5 + 0.2 * f32::from(shade);
            colours.push(tint.map(|c| (f32::from(c) * f).min(255.0) as u8));
        }
    }
    // Terrain bands from a dark grey-green (low) to a pale one (high), then with the grid.
    let (low, high) = ([128.0, 146.0, 118.0], [236.0, 238.0, 222.0]);
    let band = |k: u8| {
        let t = f32::from(k) / f32::from(TERRAIN_BANDS - 1);
        std::array::from_fn::<f32, 3, _>(|c| low[c] + t * (high[c] - low[c]))
    };
    for k in 0..TERRAIN_BANDS {
        colours.push(band(k).map(|c| c as u8));
    }
    for k in 0..TERRAIN_BANDS {
        colours.push(band(k).map(|c| (c * 0.88) as u8));
    }
    colours.into_iter().flatten().collect()
}

/// A view direction; coordinates are relative to the focus.
#[derive(Debug, Clone, Copy, PartialEq)]
enum View {
    /// `x` right, `z` up, looking along `+y`.
    Side,
    /// `x` right, `y` up, looking along `-z`.
    Top,
}

impl View {
    /// `(right, up, toward the viewer)` of a world vector.
    fn project(self, p: [f32; 3]) -> [f32; 3] {
        match self {
            View::Side => [p[0], p[2], -p[1]],
            View::Top => [p[0], p[1], p[2]],
        }
    }
}

/// One panel being drawn: palette indices, row-major, `width * height`.
struct Panel {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
    /// Pixels per metre.
    scale: f32,
    focus: [f32; 3],
    view: View,
}

impl Panel {
    fn new(options: &RenderOptions, focus: [f32; 3], view: View) -> Self {
        let (width, height) = (
            usize::from(options.panel_width),
            usize::from(options.panel_height),
        );
        Self {
            width,
            height,
            pixels: vec![BACKGROUND; width * height],
            scale: f32::from(options.panel_width) / options.metres_across,
            focus,
            view,
        }
    }

    /// Screen position (pixels, `y` down) and nearness (larger is nearer) of a world point.
    fn to_screen(&self, p: [f32; 3]) -> ([f32; 2], f32) {
        let [u, v, near] = self.view.project([
            p[0] - self.focus[0],
            p[1] - self.focus[1],
            p[2] - self.focus[2],
        ]);
        (
            [
                self.width as f32 / 2.0 + u * self.scale,
                self.height as f32 / 2.0 - v * self.scale,
            ],
            near,
        )
    }

    /// Pixel indices `lo..hi` covering `[min, max]` (pixel centres inside), clamped to `n`.
    fn span(min: f32, max: f32, n: usize) -> std::ops::Range<usize> {
        let lo = (min - 0.5).ceil().max(0.0);
        let hi = (max - 0.5).floor() + 1.0;
        let hi = hi.clamp(0.0, n as f32);
        (lo as usize).min(n)..(hi as usize).max(lo as usize).min(n)
    }

    /// World offset from the focus (metres, screen right and up) of a pixel's centre.
    fn offset_of(&self, col: usize, row: usize) -> [f32; 2] {
        [
            (col as f32 + 0.5 - self.width as f32 / 2.0) / self.scale,
            (self.height as f32 / 2.0 - row as f32 - 0.5) / self.scale,
        ]
    }

    /// The side view's ground: for every pixel column, the screen row of the ground below
    /// its centre (rounded, may lie outside the panel), or `None` without a ground. On
    /// terrain, the profile along `y = focus.y`; else the plane at `ground`.
    fn ground_rows(&self, ground: Option<f32>, terrain: Option<&HeightPatch>) -> Option<Vec<f32>> {
        (0..self.width)
            .map(|col| {
                let x = self.focus[0] + self.offset_of(col, 0)[0];
                let z = match terrain {
                    Some(t) => t.height_at(x, self.focus[1]),
                    None => ground?,
                };
                Some(self.to_screen([x, self.focus[1], z]).0[1].round())
            })
            .collect()
    }

    /// The top view's ground: every pixel the band of the terrain's height below it,
    /// relative to the ground under the focus.
    fn shade_terrain(&mut self, terrain: &HeightPatch) {
        let reference = terrain.height_at(self.focus[0], self.focus[1]);
        let middle = f32::from(TERRAIN_BANDS / 2);
        for row in 0..self.height {
            for col in 0..self.width {
                let [dx, dy] = self.offset_of(col, row);
                let h = terrain.height_at(self.focus[0] + dx, self.focus[1] + dy);
                let band = ((h - reference) / TERRAIN_BAND).round() + middle;
                let band = band.clamp(0.0, f32::from(TERRAIN_BANDS - 1)) as u8;
                self.pixels[row * self.width + col] = TERRAIN + band;
            }
        }
    }

    /// The ground (fill below the ground line in the side view, terrain bands in the top
    /// view), world-fixed grid lines, and the ground line. Terrain, when there is some, is
    /// drawn instead of the plane at `ground`.
    fn draw_background(
        &mut self,
        ground: Option<f32>,
        terrain: Option<&HeightPatch>,
        spacing: f32,
    ) {
        let (w, h) = (self.width, self.height);
        // Per column, the first row under the ground.
        let ground_rows = match self.view {
            View::Side => self.ground_rows(ground, terrain),
            View::Top => {
                if let Some(t) = terrain {
                    self.shade_terrain(t);
                }
                None
            }
        };
        for (col, &row) in ground_rows.iter().flatten().enumerate() {
            let first = row.clamp(0.0, h as f32) as usize;
            for r in first..h {
                self.pixels[r * w + col] = GROUND;
            }
        }
        // Grid lines closer than 3 pixels would be a grey wash.
        if spacing * self.scale >= 3.0 {
            let on_terrain = TERRAIN..TERRAIN_GRID;
            let mark = |px: &mut u8| {
                *px = match *px {
                    GROUND => GROUND_GRID,
                    p if on_terrain.contains(&p) => p + TERRAIN_BANDS,
                    p if p >= TERRAIN_GRID => p,
                    _ => GRID,
                }
            };
            // Vertical lines: world x = k * spacing in both views.
            for col in self.grid_lines(0, w, spacing) {
                for row in 0..h {
                    mark(&mut self.pixels[row * w + col]);
                }
            }
            // Horizontal lines: world z (side) or y (top).
            let axis = match self.view {
                View::Side => 2,
                View::Top => 1,
            };
            for row in self.grid_lines(axis, h, spacing) {
                self.pixels[row * w..(row + 1) * w]
                    .iter_mut()
                    .for_each(mark);
            }
        }
        // Two pixels thick, across the boundary, and up to a higher neighbour's boundary so
        // that the walls of steps are drawn too.
        if let Some(rows) = &ground_rows {
            for (col, &row) in rows.iter().enumerate() {
                let left = rows[col.saturating_sub(1)];
                let right = rows[(col + 1).min(w - 1)];
                let top = row.min(left).min(right) - 1.0;
                let (lo, hi) = (top.clamp(0.0, h as f32), (row + 1.0).clamp(0.0, h as f32));
                for r in lo as usize..hi as usize {
                    self.pixels[r * w + col] = GROUND_LINE;
                }
            }
        }
    }

    /// Pixel columns (`axis` 0) or rows (`axis` 1 or 2) of the world lines `k * spacing`.
    fn grid_lines(&self, axis: usize, n: usize, spacing: f32) -> Vec<usize> {
        let half = n as f32 / 2.0 / self.scale;
        let centre = self.focus[axis];
        let first = ((centre - half) / spacing).floor() as i64;
        let last = ((centre + half) / spacing).ceil() as i64;
        (first..=last)
            .filter_map(|k| {
                let offset = (k as f32 * spacing - centre) * self.scale;
                let pos = if axis == 0 {
                    n as f32 / 2.0 + offset
                } else {
                    n as f32 / 2.0 - offset
                };
                let pos = pos.floor();
                (pos >= 0.0 && pos < n as f32).then_some(pos as usize)
            })
            .collect()
    }

    /// The shapes, farthest first, coloured by their side of the focus.
    fn draw_shapes(&mut self, shapes: &[SceneShape]) {
        let mut order: Vec<(f32, &SceneShape)> = shapes
            .iter()
            .map(|s| (self.to_screen(shape_centre(s)).1, s))
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, shape) in order {
            let tint = tint_of(shape_centre(shape)[1] - self.focus[1]);
            match shape {
                SceneShape::Sphere { center, radius } => {
                    let (c, _) = self.to_screen(*center);
                    self.fill_capsule(c, c, radius * self.scale, tint);
                }
                SceneShape::Capsule { a, b, radius } => {
                    let (a, _) = self.to_screen(*a);
                    let (b, _) = self.to_screen(*b);
                    self.fill_capsule(a, b, radius * self.scale, tint);
                }
                SceneShape::Box { corners } => self.fill_box(corners, tint),
            }
        }
    }

    /// A 2-D capsule (a disc when `a == b`) shaded as a lit tube.
    fn fill_capsule(&mut self, a: [f32; 2], b: [f32; 2], radius: f32, tint: u8) {
        // Keep thin limbs visible.
        let r = radius.max(0.75);
        let cols = Self::span(a[0].min(b[0]) - r, a[0].max(b[0]) + r, self.width);
        let rows = Self::span(a[1].min(b[1]) - r, a[1].max(b[1]) + r, self.height);
        let d = [b[0] - a[0], b[1] - a[1]];
        let len2 = d[0] * d[0] + d[1] * d[1];
        for row in rows {
            let y = row as f32 + 0.5;
            for col in cols.clone() {
                let x = col as f32 + 0.5;
                let t = if len2 > 0.0 {
                    (((x - a[0]) * d[0] + (y - a[1]) * d[1]) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let off = [x - a[0] - t * d[0], y - a[1] - t * d[1]];
                let q = (off[0] * off[0] + off[1] * off[1]) / (r * r);
                if q <= 1.0 {
                    // The surface normal of the tube at this pixel; screen y is down.
                    let n = [off[0] / r, -off[1] / r, (1.0 - q).sqrt()];
                    self.pixels[row * self.width + col] = shade(tint, n);
                }
            }
        }
    }

    /// A box: its faces turned toward the viewer, each a filled convex quad.
    fn fill_box(&mut self, corners: &[[f32; 3]; 8], tint: u8) {
        const FACES: [[usize; 4]; 6] = [
            [0, 2, 6, 4],
            [1, 3, 7, 5],
            [0, 1, 5, 4],
            [2, 3, 7, 6],
            [0, 1, 3, 2],
            [4, 5, 7, 6],
        ];
        let centre = mean(corners.iter());
        for face in FACES {
            let face_centre = mean(face.iter().map(|&i| &corners[i]));
            let outward = self.view.project([
                face_centre[0] - centre[0],
                face_centre[1] - centre[1],
                face_centre[2] - centre[2],
            ]);
            let norm = outward.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm <= 0.0 || outward[2] <= 1e-3 * norm {
                continue; // faces away or edge-on
            }
            let quad = face.map(|i| self.to_screen(corners[i]).0);
            self.fill_quad(&quad, shade(tint, outward.map(|v| v / norm)));
        }
    }

    /// A convex quadrilateral (either winding).
    fn fill_quad(&mut self, quad: &[[f32; 2]; 4], colour: u8) {
        let cross = |o: [f32; 2], p: [f32; 2], x: f32, y: f32| {
            (p[0] - o[0]) * (y - o[1]) - (p[1] - o[1]) * (x - o[0])
        };
        let area: f32 = (0..4)
            .map(|i| {
                let (p, q) = (quad[i], quad[(i + 1) % 4]);
                p[0] * q[1] - q[0] * p[1]
            })
            .sum();
        if area.abs() < 1e-6 {
            return;
        }
        let sign = area.signum();
        let (xs, ys) = (quad.map(|p| p[0]), quad.map(|p| p[1]));
        let min = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min);
        let max = |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max);
        let cols = Self::span(min(xs), max(xs), self.width);
        for row in Self::span(min(ys), max(ys), self.height) {
            let y = row as f32 + 0.5;
            for col in cols.clone() {
                let x = col as f32 + 0.5;
                if (0..4).all(|i| sign * cross(quad[i], quad[(i + 1) % 4], x, y) >= 0.0) {
                    self.pixels[row * self.width + col] = colour;
                }
            }
        }
    }
}

/// The point a shape is sorted and coloured by.
fn shape_centre(shape: &SceneShape) -> [f32; 3] {
    match shape {
        SceneShape::Sphere { center, .. } => *center,
        SceneShape::Capsule { a, b, .. } => mean([a, b].into_iter()),
        SceneShape::Box { corners } => mean(corners.iter()),
    }
}

fn mean<'a>(points: impl Iterator<Item = &'a [f32; 3]>) -> [f32; 3] {
    let mut sum = [0.0f32; 3];
    let mut n = 0.0f32;
    for p in points {
        for (s, v) in sum.iter_mut().zip(p) {
            *s += v;
        }
        n += 1.0;
    }
    sum.map(|s| s / n.max(1.0))
}

/// Tint of a shape `dy` metres beyond the focus along `y`: near, level, far.
fn tint_of(dy: f32) -> u8 {
    const LEVEL: f32 = 0.03;
    if dy < -LEVEL {
        0
    } else if dy > LEVEL {
        2
    } else {
        1
    }
}

/// Palette index of a surface of `tint` with unit normal `n` (right, up, toward the viewer)
/// under a fixed light from the upper left, in front.
fn shade(tint: u8, n: [f32; 3]) -> u8 {
    const LIGHT: [f32; 3] = [-0.45, 0.6, 0.66];
    let lit = (n[0] * LIGHT[0] + n[1] * LIGHT[1] + n[2] * LIGHT[2]).clamp(0.0, 1.0);
    let s = ((lit * f32::from(SHADES)) as u8).min(SHADES - 1);
    SHADED + tint * SHADES + s
}

/// One frame: the side view and the top view side by side, palette indices, row-major,
/// `2 * panel_width` by `panel_height`.
fn render_frame(scene: &Scene, options: &RenderOptions) -> Vec<u8> {
    let panels = [View::Side, View::Top].map(|view| {
        let mut panel = Panel::new(options, scene.focus, view);
        panel.draw_background(scene.ground, scene.terrain.as_ref(), options.grid_spacing);
        panel.draw_shapes(&scene.shapes);
        panel
    });
    let w = usize::from(options.panel_width);
    let h = usize::from(options.panel_height);
    let mut frame = Vec::with_capacity(2 * w * h);
    for row in 0..h {
        for panel in &panels {
            frame.extend_from_slice(&panel.pixels[row * w..(row + 1) * w]);
        }
        frame[row * 2 * w + w] = SEPARATOR;
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(dt: f32, x: f32) -> Scene {
        Scene {
            shapes: vec![
                SceneShape::Sphere {
                    center: [x, 0.0, 0.4],
                    radius: 0.1,
                },
                SceneShape::Capsule {
                    a: [x + 0.3, -0.15, 0.4],
                    b: [x + 0.3, -0.15, 0.05],
                    radius: 0.03,
                },
                SceneShape::Box {
                    corners: [
                        [x - 0.5, -0.1, 0.3],
                        [x - 0.3, -0.1, 0.3],
                        [x - 0.5, 0.1, 0.3],
                        [x - 0.3, 0.1, 0.3],
                        [x - 0.5, -0.1, 0.5],
                        [x - 0.3, -0.1, 0.5],
                        [x - 0.5, 0.1, 0.5],
                        [x - 0.3, 0.1, 0.5],
                    ],
                },
            ],
            focus: [x, 0.0, 0.4],
            ground: Some(0.0),
            terrain: None,
            dt,
        }
    }

    /// A patch of 41 x 41 samples of 0.1 m about the origin, heights `h(x)`.
    fn patch(h: impl Fn(f32) -> f32) -> HeightPatch {
        let (n, spacing, origin) = (41, 0.1, [-2.0, -2.0]);
        HeightPatch {
            origin,
            spacing,
            rows: n,
            cols: n,
            heights: (0..n * n)
                .map(|k| h(origin[0] + (k / n) as f32 * spacing))
                .collect(),
        }
    }

    struct Decoded {
        width: usize,
        height: usize,
        frames: Vec<(Vec<u8>, u16)>,
    }

    fn decode(path: &Path) -> Decoded {
        let file = fs::File::open(path).expect("open the GIF");
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::Indexed);
        let mut decoder = options.read_info(file).expect("a GIF header");
        let (width, height) = (usize::from(decoder.width()), usize::from(decoder.height()));
        let mut frames = Vec::new();
        while let Some(frame) = decoder.read_next_frame().expect("a frame") {
            assert_eq!((frame.width, frame.height), (width as u16, height as u16));
            frames.push((frame.buffer.to_vec(), frame.delay));
        }
        Decoded {
            width,
            height,
            frames,
        }
    }

    #[test]
    fn gif_has_the_subsampled_frames_and_shows_the_shapes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("episode.gif");
        // 11 scenes 10 ms apart: 50 fps keeps every other one.
        let scenes: Vec<Scene> = (0..11).map(|k| scene(0.01, 0.05 * k as f32)).collect();
        let options = RenderOptions::default();
        let frames = write_gif(&path, &scenes, &options).expect("write");
        assert_eq!(frames, 6);

        let gif = decode(&path);
        assert_eq!((gif.width, gif.height), (640, 240));
        assert_eq!(gif.frames.len(), 6);
        let delays: Vec<u16> = gif.frames.iter().map(|f| f.1).collect();
        assert_eq!(delays, [2, 2, 2, 2, 2, END_PAUSE_CS]);

        let at = |pixels: &[u8], x: usize, y: usize| pixels[y * gif.width + x];
        for (pixels, _) in &gif.frames {
            // The sphere sits at the focus: the centre of both panels.
            let side = at(pixels, 160, 120);
            let top = at(pixels, 320 + 160, 120);
            assert!(side >= SHADED, "side view centre is {side}");
            assert!(top >= SHADED, "top view centre is {top}");
            // The focus is level with the sphere: slate in both views.
            assert_eq!((side - SHADED) / SHADES, 1);
            // The top view's top right corner: between grid lines, away from the shapes.
            assert_eq!(at(pixels, 640 - 3, 2), BACKGROUND);
            // The side view's top left corner: sky (the 1 m line is 43 px below the top).
            assert_eq!(at(pixels, 2, 2), BACKGROUND);
            // Bottom left of the side view: under the ground.
            assert!(matches!(at(pixels, 2, 238), GROUND | GROUND_GRID));
        }
        // The capsule is on the near side (y < 0): orange, 0.3 m (38 px) right of the
        // centre, half-way down the leg in the side view.
        let (first, _) = &gif.frames[0];
        let leg = at(first, 160 + 38, 120 + 22);
        assert!(
            leg >= SHADED && (leg - SHADED) / SHADES == 0,
            "leg pixel {leg}"
        );
        // The box is the body (level with the focus), 0.4 m to the left.
        let body = at(first, 160 - 51, 120);
        assert!(
            body >= SHADED && (body - SHADED) / SHADES == 1,
            "box pixel {body}"
        );
        // The grid is world-fixed: it moves by 0.1 m (13 px) between frames and is back
        // in place after 0.5 m, one grid spacing.
        let row = |pixels: &[u8]| -> Vec<u8> { (0..320).map(|x| at(pixels, x, 5)).collect() };
        let (second, last) = (&gif.frames[1].0, &gif.frames[5].0);
        assert!(row(first) != row(second), "the grid did not move");
        assert!(row(first) == row(last), "the grid is not world-fixed");
    }

    #[test]
    fn a_step_is_drawn_in_both_views() {
        // Ground 0 for x < 0 and 0.2 m from x = 0 (a ramp over the cell before it), seen
        // from 0.4 m above the step's edge, with nothing else in the scene.
        let step = Scene {
            shapes: vec![],
            focus: [0.0, 0.0, 0.4],
            ground: None,
            terrain: Some(patch(|x| if x >= -1e-4 { 0.2 } else { 0.0 })),
            dt: 0.02,
        };
        check_scene(&step, true).expect("a valid scene");
        let options = RenderOptions::default();
        let frame = render_frame(&step, &options);
        let at = |x: usize, y: usize| frame[y * 640 + x];
        // The side view: the first ground-coloured row of a column, from the top.
        let top_of_ground = |col: usize| {
            (0..240)
                .find(|&row| matches!(at(col, row), GROUND | GROUND_GRID | GROUND_LINE))
                .expect("ground in the column")
        };
        // 128 px a metre: at x = -0.6 m (column 83) the ground is 0.4 m (51 px) below the
        // centre, at x = 0.6 m (column 236) 0.2 m; the line starts a pixel higher.
        let (low, high) = (top_of_ground(83), top_of_ground(236));
        assert!(
            low.abs_diff(170) <= 1,
            "ground at x = -0.6 m from row {low}"
        );
        assert!(
            high.abs_diff(145) <= 1,
            "ground at x = 0.6 m from row {high}"
        );
        // Above the low ground, on the step's height: sky.
        assert!(matches!(at(83, 150), BACKGROUND | GRID));
        // The top view at y = 0.3 m: the step (level with the ground under the focus) is
        // the middle band, the ground 0.2 m below it four bands lower.
        let (below, level) = (at(320 + 83, 81), at(320 + 236, 81));
        assert_eq!(level, TERRAIN + TERRAIN_BANDS / 2);
        assert_eq!(below, TERRAIN + TERRAIN_BANDS / 2 - 4);
    }

    #[test]
    fn flat_terrain_draws_the_side_view_of_the_plane() {
        let plane = scene(0.02, 0.3);
        let flat = Scene {
            ground: None,
            terrain: Some(patch(|_| 0.0)),
            ..plane.clone()
        };
        let options = RenderOptions::default();
        let (a, b) = (
            render_frame(&plane, &options),
            render_frame(&flat, &options),
        );
        let side = |f: &[u8]| -> Vec<u8> {
            (0..240)
                .flat_map(|r| f[r * 640..r * 640 + 320].to_vec())
                .collect()
        };
        let top = |f: &[u8]| -> Vec<u8> {
            (0..240)
                .flat_map(|r| f[r * 640 + 320..(r + 1) * 640].to_vec())
                .collect()
        };
        assert!(
            side(&a) == side(&b),
            "the profile of flat terrain is not the plane's"
        );
        // The top view of the plane has no bands; that of the terrain is the middle band
        // where no shape or grid line covers it.
        assert!(!top(&a).contains(&(TERRAIN + TERRAIN_BANDS / 2)));
        assert_eq!(top(&b)[2 * 320 + 317], TERRAIN + TERRAIN_BANDS / 2);
    }

    #[test]
    fn recordings_without_terrain_still_read() {
        let json = r#"{"shapes": [], "focus": [0, 0, 0.4], "ground": 0.0, "dt": 0.02}"#;
        let scene: Scene = serde_json::from_str(json).expect("an older scene");
        assert_eq!(scene.terrain, None);
        assert_eq!(scene.ground, Some(0.0));
    }

    #[test]
    fn frames_follow_accumulated_time() {
        let scenes: Vec<Scene> = (0..7).map(|_| scene(0.016, 0.0)).collect();
        // Times 0, 1.6, 3.2, 4.8, 6.4, 8, 9.6 cs, rounded 0, 2, 3, 5, 6, 8, 10: frames at
        // least 2 cs apart are scenes 0, 1, 3, 5 and 6.
        let schedule = frame_schedule(&scenes, 50);
        assert_eq!(
            schedule,
            [(0, 2), (1, 3), (3, 3), (5, 2), (6, END_PAUSE_CS)]
        );
        // Slow scenes each get a frame, with their own delay.
        let slow: Vec<Scene> = (0..3).map(|_| scene(0.1, 0.0)).collect();
        assert_eq!(
            frame_schedule(&slow, 50),
            [(0, 10), (1, 10), (2, END_PAUSE_CS)]
        );
        // A lower frame rate keeps fewer.
        let fast: Vec<Scene> = (0..11).map(|_| scene(0.01, 0.0)).collect();
        assert_eq!(frame_schedule(&fast, 20).len(), 3);
    }

    #[test]
    fn empty_recordings_and_bad_scenes_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("empty.gif");
        let err = write_gif(&path, &[], &RenderOptions::default()).expect_err("empty");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("no scenes"), "{msg}");

        let mut bad = vec![scene(0.02, 0.0), scene(0.02, 0.0)];
        bad[1].focus[2] = f32::NAN;
        let msg = write_gif(&path, &bad, &RenderOptions::default())
            .expect_err("NaN")
            .to_string();
        assert!(msg.contains("scene 1") && msg.contains("focus"), "{msg}");

        let mut short = scene(0.02, 0.0);
        let mut terrain = patch(|_| 0.0);
        terrain.heights.pop();
        short.terrain = Some(terrain);
        let msg = write_gif(&path, &[short], &RenderOptions::default())
            .expect_err("too few heights")
            .to_string();
        assert!(msg.contains("41 x 41 samples has 1680 heights"), "{msg}");

        let options = RenderOptions {
            max_fps: 100,
            ..RenderOptions::default()
        };
        let msg = write_gif(&path, &[scene(0.02, 0.0)], &options)
            .expect_err("fps")
            .to_string();
        assert!(msg.contains("max_fps"), "{msg}");
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 0);
    }

    #[test]
    fn a_missing_directory_is_an_error_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing").join("episode.gif");
        let early = check_target(&path).expect_err("missing directory");
        assert!(early.is_usage(), "{early}");
        assert!(
            early.to_string().contains(&path.display().to_string()),
            "{early}"
        );
        let err = write_gif(&path, &[scene(0.02, 0.0)], &RenderOptions::default())
            .expect_err("missing directory");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(!dir.path().join("missing").exists());
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 0);
    }

    #[test]
    fn an_existing_file_is_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("episode.gif");
        fs::write(&path, b"old").expect("write");
        check_target(&path).expect("the directory exists");
        write_gif(&path, &[scene(0.02, 0.0)], &RenderOptions::default()).expect("write");
        assert_eq!(decode(&path).frames.len(), 1);
        // Only the GIF: the temporary file was renamed onto it.
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}
