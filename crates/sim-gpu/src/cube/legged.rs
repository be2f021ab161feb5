//! The legged task's work after the physics as one CubeCL kernel (`LeggedEnv::step` on the
//! CubeCL backends): one thread per environment runs, on that environment's scalars,
//! 1. the clocks and the feet contact sensor (air time, touch-downs);
//! 2. the termination terms and the time limit;
//! 3. the reward terms (each weighted by `weight * dt`, summed, clipped at zero with
//!    `only_positive`, then the termination term), the per-episode sums and the command
//!    metrics;
//! 4. the episode log and the final observations (before the reset);
//! 5. the reset of a finished environment (reset events from the host-drawn uniform numbers),
//!    command resampling (and the heading controller), pushes;
//! 6. the observations of every group, with noise where the group has it.
//!
//! It follows the tensor path of `legged::env` term for term (`terms.rs`, the managers) and
//! consumes the same host-drawn random numbers in the same order, so both agree to float
//! rounding. The task's own state lives in one packed tensor `[N, S]` while the kernel runs
//! (the columns of `task_state!`, in its order); the program's constants (weights, term
//! codes, observation layout, links, limits) are packed once by [`LeggedProgram::new`].

use burn::tensor::TensorMetadata;
use burn_cubecl::CubeRuntime;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use sim_physics::cube::{CubeProgram, empty_outputs, per_environment};

use super::math::{clamp, sin_cos};

// Global slots at the start of the packed constants.
const DT: usize = 0;
const MAX_LEN: usize = 1;
const ONLY_POSITIVE: usize = 2;
const EPISODE_S: usize = 3;
const SIGMA: usize = 4;
const MAX_FORCE: usize = 5;
const HEIGHT_TARGET: usize = 6;
const GROUND: usize = 7;
const INIT_HEIGHT: usize = 8;
const MIN_SPEED: usize = 9;
const RESAMPLE_S: usize = 10;
const HEADING: usize = 11;
const HEADING_K: usize = 12;
const YAW_RATE_LO: usize = 13;
const YAW_RATE_HI: usize = 14;
const PUSH: usize = 15;
const NUM_REWARDS: usize = 16;
const TERMINATION_W: usize = 17;
const HAS_TERMINATION: usize = 18;
const NUM_TERMINATIONS: usize = 19;
const FOOT_FORCE: usize = 20;
const COLLISION_FORCE: usize = 21;
const STAND_STILL: usize = 22;
const AIR_OFFSET: usize = 23;
const OFF_REWARDS: usize = 24;
const OFF_TERMINATIONS: usize = 25;
const NUM_PENALISED: usize = 26;
const OFF_PENALISED: usize = 27;
const NUM_TERMINATION_LINKS: usize = 28;
const OFF_TERMINATION_LINKS: usize = 29;
const OFF_GROUP0: usize = 30;
const DRAW_YAW: usize = 32;
const DRAW_BASE_VEL: usize = 33;
const DRAW_JOINT_SCALE: usize = 34;
const DRAW_JOINT_VEL: usize = 35;
const DRAW_COMMAND: usize = 36;
const DRAW_HEADING: usize = 37;
const DRAW_PUSH_VEL: usize = 38;
const DRAW_PUSH_TIME: usize = 39;
// OFF_GROUP0 + 1 (31): group 1's section.
/// pi, and the period of the heading error's wrap into `[-pi, pi)`.
const PI: f32 = core::f32::consts::PI;
const TWO_PI: f32 = 2.0 * core::f32::consts::PI;
/// Number of global slots; the per-joint and per-foot arrays follow.
const GLOBALS: usize = 40;

/// Reward terms the kernel computes, by the name `terms::RewardTerm::ALL` gives them; the
/// code is the position. `termination` is handled apart (after the clip at zero).
pub(crate) const REWARD_CODES: [&str; 16] = [
    "tracking_lin_vel",
    "tracking_ang_vel",
    "lin_vel_z",
    "ang_vel_xy",
    "orientation",
    "base_height",
    "torques",
    "dof_vel",
    "dof_acc",
    "action_rate",
    "collision",
    "termination",
    "dof_pos_limits",
    "feet_air_time",
    "stand_still",
    "feet_contact_forces",
];

/// Termination terms, by name; the code is the position.
pub(crate) const TERMINATION_CODES: [&str; 2] = ["base_contact", "bad_orientation"];

/// The task's settings the kernel reads, gathered by the environment.
#[derive(Debug, Clone)]
pub(crate) struct LeggedSettings {
    pub(crate) dt: f64,
    pub(crate) max_episode_length: usize,
    pub(crate) only_positive: bool,
    pub(crate) episode_length_s: f64,
    pub(crate) tracking_sigma: f64,
    pub(crate) max_contact_force: f64,
    pub(crate) base_height_target: f64,
    pub(crate) ground_height: f64,
    pub(crate) init_height: f64,
    pub(crate) min_speed: f64,
    pub(crate) resampling_time_s: f64,
    pub(crate) heading_command: bool,
    pub(crate) heading_stiffness: f64,
    pub(crate) yaw_rate: [f64; 2],
    pub(crate) push: bool,
    pub(crate) foot_contact_force: f64,
    pub(crate) collision_force: f64,
    pub(crate) stand_still_speed: f64,
    pub(crate) air_time_offset: f64,
    /// `(name, weight * dt)` of the reward terms in the manager's order, `termination`
    /// excluded.
    pub(crate) rewards: Vec<(&'static str, f64)>,
    /// `weight * dt` of the `termination` reward, if it has one.
    pub(crate) termination_reward: Option<f64>,
    /// `(name, threshold)` of the termination terms.
    pub(crate) terminations: Vec<(String, f64)>,
    pub(crate) default_joint_pos: Vec<f32>,
    pub(crate) soft_lower: Vec<f32>,
    pub(crate) soft_upper: Vec<f32>,
    pub(crate) feet: Vec<usize>,
    pub(crate) penalised: Vec<usize>,
    pub(crate) termination_links: Vec<usize>,
    pub(crate) num_links: usize,
    /// The observation groups in order (one or two).
    pub(crate) groups: Vec<GroupLayout>,
    /// Start column of each part of the reset draw: base yaw, base velocity, joint position
    /// scale, joint velocity, command, heading, push velocity, push interval.
    pub(crate) draw_offsets: [usize; 8],
    pub(crate) draw_width: usize,
}

/// One observation group as the kernel writes it.
#[derive(Debug, Clone)]
pub(crate) struct GroupLayout {
    /// `(name, term clip)` of each term, in order.
    pub(crate) terms: Vec<(String, Option<f64>)>,
    /// Per column: scale and noise amplitude.
    pub(crate) scale: Vec<f32>,
    pub(crate) noise: Vec<f32>,
    pub(crate) clip: Option<f64>,
    /// Whether the group draws noise for its noisy observations.
    pub(crate) noisy: bool,
}

/// Observation terms the kernel leaves to the tensor path: the height scan reads the
/// terrain at hundreds of points per robot, which the managers do as gathers after the
/// physics kernel (a task that uses it does not take the step kernel).
pub(crate) const TENSOR_PATH_TERMS: &[&str] = &["height_scan"];

/// Where each observation term reads its columns in the kernel's feature row, and how many:
/// `None` for a term the kernel does not know.
fn feature(name: &str, nj: usize, nf: usize) -> Option<(usize, usize)> {
    let j = 12;
    Some(match name {
        "base_lin_vel" => (0, 3),
        "base_ang_vel" => (3, 3),
        "projected_gravity" => (6, 3),
        "velocity_commands" => (9, 3),
        "joint_pos_rel" => (j, nj),
        "joint_vel_rel" => (j + nj, nj),
        "last_action" => (j + 2 * nj, nj),
        "base_height" => (j + 3 * nj, 1),
        "friction" => (j + 3 * nj + 1, 1),
        "added_mass" => (j + 3 * nj + 2, 1),
        "feet_contact" => (j + 3 * nj + 3, nf),
        "feet_contact_forces" => (j + 3 * nj + 3 + nf, 3 * nf),
        _ => return None,
    })
}

/// The sizes the kernel is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct LeggedDims {
    pub(crate) joints: usize,
    pub(crate) feet: usize,
    pub(crate) links: usize,
    /// Columns of the per-episode reward sums.
    pub(crate) reward_sums: usize,
    pub(crate) groups: usize,
    pub(crate) widths: [usize; 2],
    pub(crate) noisy: [bool; 2],
    pub(crate) draw: usize,
}

impl LeggedDims {
    /// Columns of the packed task state (`task_state!`'s columns in order).
    pub(crate) fn state_width(&self) -> usize {
        3 * self.joints + 2 * self.feet + 3 + 5 + self.reward_sums + 3 + 2
    }

    /// Rows of the per-environment results: reward, terminated, time-out, return, length,
    /// then the episode terms (the reward sums, then `lin_vel_error` and `ang_vel_error`).
    pub(crate) fn rows(&self) -> usize {
        5 + self.reward_sums + 2
    }
}

/// The packed constants and dimensions of one task's kernel.
#[derive(Debug, Clone)]
pub(crate) struct LeggedProgram {
    pub(crate) consts: Vec<f32>,
    pub(crate) dims: LeggedDims,
}

/// The inputs of the kernel, in order: constants, root position `[N, 3]`, orientation
/// `[N, 4]`, world linear and angular velocity `[N, 3]`, joint positions, velocities and
/// applied torques `[N, J]`, contact forces `[N, L, 3]`, the packed task state `[N, S]`, this
/// step's clipped actions `[N, J]`, the reset draw `[N, D]`, and the observation noise of
/// groups 0 and 1 (uniform in `[-1, 1)`, `[N, W]`, or a placeholder).
pub(crate) const INPUTS: usize = 14;
/// The outputs, in order: root position, orientation, linear and angular velocity, joint
/// positions and velocities (after resets and pushes), the packed task state, the rows
/// `[R, N]` (see [`LeggedDims::rows`]), then for groups 0 and 1 the final observations and
/// the observations.
pub(crate) const OUTPUTS: usize = 12;

impl LeggedProgram {
    /// Packs `s`; `None` when a term is one the kernel does not know (the task then takes
    /// the tensor path).
    pub(crate) fn new(s: &LeggedSettings) -> Option<Self> {
        let nj = s.default_joint_pos.len();
        let nf = s.feet.len();
        if s.groups.is_empty() || s.groups.len() > 2 {
            return None;
        }
        let mut c = vec![0.0f32; GLOBALS];
        let flag = |b: bool| f32::from(u8::from(b));
        let globals = [
            (DT, s.dt as f32),
            (MAX_LEN, s.max_episode_length as f32),
            (ONLY_POSITIVE, flag(s.only_positive)),
            (EPISODE_S, s.episode_length_s as f32),
            (SIGMA, s.tracking_sigma as f32),
            (MAX_FORCE, s.max_contact_force as f32),
            (HEIGHT_TARGET, s.base_height_target as f32),
            (GROUND, s.ground_height as f32),
            (INIT_HEIGHT, s.init_height as f32),
            (MIN_SPEED, s.min_speed as f32),
            (RESAMPLE_S, s.resampling_time_s as f32),
            (HEADING, flag(s.heading_command)),
            (HEADING_K, s.heading_stiffness as f32),
            (YAW_RATE_LO, s.yaw_rate[0] as f32),
            (YAW_RATE_HI, s.yaw_rate[1] as f32),
            (PUSH, flag(s.push)),
            (NUM_REWARDS, s.rewards.len() as f32),
            (TERMINATION_W, s.termination_reward.unwrap_or(0.0) as f32),
            (HAS_TERMINATION, flag(s.termination_reward.is_some())),
            (NUM_TERMINATIONS, s.terminations.len() as f32),
            (FOOT_FORCE, s.foot_contact_force as f32),
            (COLLISION_FORCE, s.collision_force as f32),
            (STAND_STILL, s.stand_still_speed as f32),
            (AIR_OFFSET, s.air_time_offset as f32),
            (NUM_PENALISED, s.penalised.len() as f32),
            (NUM_TERMINATION_LINKS, s.termination_links.len() as f32),
        ];
        for (slot, value) in globals {
            c[slot] = value;
        }
        for (slot, &offset) in (DRAW_YAW..=DRAW_PUSH_TIME).zip(&s.draw_offsets) {
            c[slot] = offset as f32;
        }
        c.extend(&s.default_joint_pos);
        c.extend(&s.soft_lower);
        c.extend(&s.soft_upper);
        c.extend(s.feet.iter().map(|&l| l as f32));
        let section = |c: &mut Vec<f32>, slot: usize, values: Vec<f32>| {
            c[slot] = c.len() as f32;
            c.extend(values);
        };
        let mut rewards = Vec::new();
        for (name, weight) in &s.rewards {
            let code = REWARD_CODES.iter().position(|n| n == name)?;
            if *name == "termination" {
                return None;
            }
            rewards.extend([code as f32, *weight as f32]);
        }
        section(&mut c, OFF_REWARDS, rewards);
        let mut terminations = Vec::new();
        for (name, threshold) in &s.terminations {
            let code = TERMINATION_CODES.iter().position(|n| n == name)?;
            terminations.extend([code as f32, *threshold as f32]);
        }
        section(&mut c, OFF_TERMINATIONS, terminations);
        section(
            &mut c,
            OFF_PENALISED,
            s.penalised.iter().map(|&l| l as f32).collect(),
        );
        section(
            &mut c,
            OFF_TERMINATION_LINKS,
            s.termination_links.iter().map(|&l| l as f32).collect(),
        );
        let mut widths = [1usize; 2];
        let mut noisy = [false; 2];
        for (g, group) in s.groups.iter().enumerate() {
            // Header: number of terms, has clip, clip; then per term: feature start,
            // column start, width, has clip, clip; then the scales and noise amplitudes.
            let mut values = vec![
                group.terms.len() as f32,
                flag(group.clip.is_some()),
                group.clip.unwrap_or(0.0) as f32,
            ];
            let mut start = 0;
            for (name, clip) in &group.terms {
                let (at, width) = feature(name, nj, nf)?;
                values.extend([
                    at as f32,
                    start as f32,
                    width as f32,
                    flag(clip.is_some()),
                    clip.unwrap_or(0.0) as f32,
                ]);
                start += width;
            }
            if start != group.scale.len() || start != group.noise.len() {
                return None;
            }
            values.extend(&group.scale);
            values.extend(&group.noise);
            section(&mut c, OFF_GROUP0 + g, values);
            widths[g] = start;
            noisy[g] = group.noisy;
        }
        let dims = LeggedDims {
            joints: nj,
            feet: nf,
            links: s.num_links,
            reward_sums: s.rewards.len() + usize::from(s.termination_reward.is_some()),
            groups: s.groups.len(),
            widths,
            noisy,
            draw: s.draw_width,
        };
        Some(Self { consts: c, dims })
    }
}

impl CubeProgram for LeggedDims {
    fn run<R: CubeRuntime>(self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
        let i = &inputs;
        let n = i[1].shape()[0];
        let d = self;
        let nj = d.joints;
        let [w0, w1] = d.widths;
        let outputs = empty_outputs(
            &i[1],
            vec![
                vec![n, 3],
                vec![n, 4],
                vec![n, 3],
                vec![n, 3],
                vec![n, nj],
                vec![n, nj],
                vec![n, d.state_width()],
                vec![d.rows(), n],
                vec![n, w0],
                vec![n, w0],
                vec![n, w1],
                vec![n, w1],
            ],
        );
        let (cube_count, cube_dim) = per_environment(n);
        let client = i[1].client.clone();
        let arg = |t: &CubeTensor<R>| t.clone().into_array_arg();
        let o = &outputs;
        legged_kernel::launch::<R>(
            &client,
            cube_count,
            cube_dim,
            arg(&i[0]),
            arg(&i[1]),
            arg(&i[2]),
            arg(&i[3]),
            arg(&i[4]),
            arg(&i[5]),
            arg(&i[6]),
            arg(&i[7]),
            arg(&i[8]),
            arg(&i[9]),
            arg(&i[10]),
            arg(&i[11]),
            arg(&i[12]),
            arg(&i[13]),
            arg(&o[0]),
            arg(&o[1]),
            arg(&o[2]),
            arg(&o[3]),
            arg(&o[4]),
            arg(&o[5]),
            arg(&o[6]),
            arg(&o[7]),
            arg(&o[8]),
            arg(&o[9]),
            arg(&o[10]),
            arg(&o[11]),
            nj,
            d.feet,
            d.links,
            d.reward_sums,
            d.groups,
            w0,
            w1,
            d.draw,
            d.noisy[0],
            d.noisy[1],
        );
        outputs
    }
}

/// `R^T v` for the rotation of the unit quaternion `root[3..7]` (`w, x, y, z`), with the
/// tensor path's formulas (`soa::M3::from_quat`, `t_mul_v`).
#[cube]
fn rotate_inverse(root: &Array<f32>, vx: f32, vy: f32, vz: f32) -> (f32, f32, f32) {
    let w = root[3usize];
    let x = root[4usize];
    let y = root[5usize];
    let z = root[6usize];
    let xx = x * x;
    let yy = y * y;
    let zz = z * z;
    let xy = x * y;
    let xz = x * z;
    let yz = y * z;
    let wx = w * x;
    let wy = w * y;
    let wz = w * z;
    let m00 = (yy + zz) * -2.0 + 1.0;
    let m01 = (xy - wz) * 2.0;
    let m02 = (xz + wy) * 2.0;
    let m10 = (xy + wz) * 2.0;
    let m11 = (xx + zz) * -2.0 + 1.0;
    let m12 = (yz - wx) * 2.0;
    let m20 = (xz - wy) * 2.0;
    let m21 = (yz + wx) * 2.0;
    let m22 = (xx + yy) * -2.0 + 1.0;
    (
        m00 * vx + m10 * vy + m20 * vz,
        m01 * vx + m11 * vy + m21 * vz,
        m02 * vx + m12 * vy + m22 * vz,
    )
}

/// Norm of the contact force on link `link` of environment `env`.
#[cube]
fn force_norm(force: &Array<f32>, env: usize, link: usize, #[comptime] nl: usize) -> f32 {
    let b = env * comptime!(nl * 3usize) + link * 3usize;
    let x = force[b];
    let y = force[b + 1usize];
    let z = force[b + 2usize];
    (x * x + y * y + z * z).sqrt()
}

/// Fills the feature row every observation term reads from (see `feature`): base-frame
/// velocities and gravity, commands, joints relative to the default pose, joint velocities,
/// the last actions, base height, friction, added mass, feet contact flags and forces.
#[allow(clippy::too_many_arguments)]
#[cube]
fn features(
    mc: &Array<f32>,
    root: &Array<f32>,
    q: &Array<f32>,
    qd: &Array<f32>,
    st: &Array<f32>,
    force: &Array<f32>,
    env: usize,
    ft: &mut Array<f32>,
    #[comptime] nj: usize,
    #[comptime] nf: usize,
    #[comptime] nl: usize,
    #[comptime] o_cmd: usize,
    #[comptime] o_fr: usize,
) {
    let (lx, ly, lz) = rotate_inverse(root, root[7usize], root[8usize], root[9usize]);
    let (ax, ay, az) = rotate_inverse(root, root[10usize], root[11usize], root[12usize]);
    let (gx, gy, gz) = rotate_inverse(root, 0.0f32, 0.0f32, -1.0f32);
    ft[0usize] = lx;
    ft[1usize] = ly;
    ft[2usize] = lz;
    ft[3usize] = ax;
    ft[4usize] = ay;
    ft[5usize] = az;
    ft[6usize] = gx;
    ft[7usize] = gy;
    ft[8usize] = gz;
    for c in 0..3usize {
        ft[9usize + c] = st[o_cmd + c];
    }
    let j0 = 12usize;
    for j in 0..nj {
        ft[j0 + j] = q[j] - mc[GLOBALS + j];
        ft[j0 + nj + j] = qd[j];
        ft[j0 + comptime!(2usize * nj) + j] = st[j];
    }
    let e = comptime!(12usize + 3usize * nj);
    ft[e] = root[2usize] - mc[GROUND];
    ft[e + 1usize] = st[o_fr];
    ft[e + 2usize] = st[o_fr + 1usize];
    let feet = comptime!(GLOBALS + 3usize * nj);
    for f in 0..nf {
        let link = mc[feet + f] as usize;
        let b = env * comptime!(nl * 3usize) + link * 3usize;
        ft[e + 3usize + f] = select(force[b + 2usize] > mc[FOOT_FORCE], 1.0f32, 0.0f32);
        for c in 0..3usize {
            ft[e + 3usize + nf + f * 3usize + c] = force[b + c];
        }
    }
}

/// Writes observation group `g` of environment `env` from the feature row `ft`, with noise
/// `u * amplitude` when `noisy`.
#[cube]
fn observe(
    mc: &Array<f32>,
    ft: &Array<f32>,
    noise: &Array<f32>,
    out: &mut Array<f32>,
    env: usize,
    #[comptime] g: usize,
    #[comptime] w: usize,
    #[comptime] noisy: bool,
) {
    let b = mc[OFF_GROUP0 + g] as usize;
    let terms = mc[b] as usize;
    let group_clip = mc[b + 1usize] > 0.5;
    let gc = mc[b + 2usize];
    let scales = b + 3usize + terms * 5usize;
    let amps = scales + w;
    for t in 0..terms {
        let tb = b + 3usize + t * 5usize;
        let at = mc[tb] as usize;
        let start = mc[tb + 1usize] as usize;
        let width = mc[tb + 2usize] as usize;
        let clip = mc[tb + 3usize] > 0.5;
        let tc = mc[tb + 4usize];
        for k in 0..width {
            let col = start + k;
            let mut v = ft[at + k];
            if comptime!(noisy) {
                v += noise[env * w + col] * mc[amps + col];
            }
            if clip {
                v = clamp(v, -tc, tc);
            }
            v *= mc[scales + col];
            if group_clip {
                v = clamp(v, -gc, gc);
            }
            out[env * w + col] = v;
        }
    }
}

/// The legged task's step after the physics for one environment per thread (module docs).
#[allow(clippy::too_many_arguments)]
#[cube(launch)]
fn legged_kernel(
    mc: &Array<f32>,
    in_pos: &Array<f32>,
    in_quat: &Array<f32>,
    in_lin: &Array<f32>,
    in_ang: &Array<f32>,
    in_q: &Array<f32>,
    in_qd: &Array<f32>,
    in_tau: &Array<f32>,
    in_force: &Array<f32>,
    in_state: &Array<f32>,
    in_action: &Array<f32>,
    in_draw: &Array<f32>,
    in_noise0: &Array<f32>,
    in_noise1: &Array<f32>,
    out_pos: &mut Array<f32>,
    out_quat: &mut Array<f32>,
    out_lin: &mut Array<f32>,
    out_ang: &mut Array<f32>,
    out_q: &mut Array<f32>,
    out_qd: &mut Array<f32>,
    out_state: &mut Array<f32>,
    out_rows: &mut Array<f32>,
    out_final0: &mut Array<f32>,
    out_obs0: &mut Array<f32>,
    out_final1: &mut Array<f32>,
    out_obs1: &mut Array<f32>,
    #[comptime] nj: usize,
    #[comptime] nf: usize,
    #[comptime] nl: usize,
    #[comptime] nt: usize,
    #[comptime] groups: usize,
    #[comptime] w0: usize,
    #[comptime] w1: usize,
    #[comptime] nd: usize,
    #[comptime] noisy0: bool,
    #[comptime] noisy1: bool,
) {
    let env = ABSOLUTE_POS;
    let n = in_pos.len() / 3usize;
    if env >= n {
        terminate!();
    }
    // Columns of the packed task state (`task_state!`'s order).
    let o_pa = nj;
    let o_ljv = comptime!(2usize * nj);
    let o_air = comptime!(3usize * nj);
    let o_lc = comptime!(3usize * nj + nf);
    let o_cmd = comptime!(3usize * nj + 2usize * nf);
    let o_head = comptime!(3usize * nj + 2usize * nf + 3usize);
    let o_ct = comptime!(3usize * nj + 2usize * nf + 4usize);
    let o_pt = comptime!(3usize * nj + 2usize * nf + 5usize);
    let o_el = comptime!(3usize * nj + 2usize * nf + 6usize);
    let o_ret = comptime!(3usize * nj + 2usize * nf + 7usize);
    let o_rs = comptime!(3usize * nj + 2usize * nf + 8usize);
    let o_es = comptime!(3usize * nj + 2usize * nf + 8usize + nt);
    let o_fr = comptime!(3usize * nj + 2usize * nf + 11usize + nt);
    let sw = comptime!(3usize * nj + 2usize * nf + 13usize + nt);
    let njs = comptime!(if nj > 0usize { nj } else { 1usize });
    let nfs = comptime!(if nf > 0usize { nf } else { 1usize });
    let nts = comptime!(if nt > 0usize { nt } else { 1usize });
    let nfeat = comptime!(12usize + 3usize * nj + 3usize + 4usize * nf);
    let lo = comptime!(GLOBALS + nj);
    let hi = comptime!(GLOBALS + 2usize * nj);
    let feet = comptime!(GLOBALS + 3usize * nj);

    let dt = mc[DT];
    let mut st = Array::<f32>::new(sw);
    for c in 0..sw {
        st[c] = in_state[env * sw + c];
    }
    let mut root = Array::<f32>::new(13usize);
    for c in 0..3usize {
        root[c] = in_pos[env * 3usize + c];
        root[7usize + c] = in_lin[env * 3usize + c];
        root[10usize + c] = in_ang[env * 3usize + c];
    }
    for c in 0..4usize {
        root[3usize + c] = in_quat[env * 4usize + c];
    }
    let mut q = Array::<f32>::new(njs);
    let mut qd = Array::<f32>::new(njs);
    for j in 0..nj {
        q[j] = in_q[env * nj + j];
        qd[j] = in_qd[env * nj + j];
    }

    // 1. Clocks, this step's actions, the contact sensor.
    st[o_el] += 1.0;
    st[o_pt] -= dt;
    let mut prev_action = Array::<f32>::new(njs);
    for j in 0..nj {
        prev_action[j] = st[o_pa + j];
        st[j] = in_action[env * nj + j];
    }
    let mut contact = Array::<f32>::new(nfs);
    let mut first = Array::<f32>::new(nfs);
    let mut air_new = Array::<f32>::new(nfs);
    for f in 0..nf {
        let link = mc[feet + f] as usize;
        let fz = in_force[env * comptime!(nl * 3usize) + link * 3usize + 2usize];
        let touch = fz > mc[FOOT_FORCE];
        let filt = touch || st[o_lc + f] > 0.5;
        let air = st[o_air + f];
        contact[f] = select(touch, 1.0f32, 0.0f32);
        first[f] = select(air > 0.0 && filt, 1.0f32, 0.0f32);
        air_new[f] = select(filt, 0.0f32, air + dt);
    }
    let (lx, ly, lz) = rotate_inverse(&root, root[7usize], root[8usize], root[9usize]);
    let (ax, ay, az) = rotate_inverse(&root, root[10usize], root[11usize], root[12usize]);
    let (gx, gy, _gz) = rotate_inverse(&root, 0.0f32, 0.0f32, -1.0f32);
    let cx = st[o_cmd];
    let cy = st[o_cmd + 1usize];
    let cz = st[o_cmd + 2usize];

    // 2. Terminations and the time limit.
    let mut terminated = false;
    let tb = mc[OFF_TERMINATIONS] as usize;
    let num_terminations = mc[NUM_TERMINATIONS] as usize;
    for k in 0..num_terminations {
        let code = mc[tb + k * 2usize] as u32;
        let threshold = mc[tb + k * 2usize + 1usize];
        if code == 0u32 {
            let lb = mc[OFF_TERMINATION_LINKS] as usize;
            let count = mc[NUM_TERMINATION_LINKS] as usize;
            for i in 0..count {
                let link = mc[lb + i] as usize;
                if force_norm(in_force, env, link, nl) > threshold {
                    terminated = true;
                }
            }
        } else {
            if (gx * gx + gy * gy).sqrt() > threshold {
                terminated = true;
            }
        }
    }
    let time_out = st[o_el] >= mc[MAX_LEN] && !terminated;

    // 3. Rewards, weighted; the per-episode sums; the command metrics.
    let speed = (cx * cx + cy * cy).sqrt();
    let mut values = Array::<f32>::new(nts);
    let mut reward = 0.0f32;
    let rb = mc[OFF_REWARDS] as usize;
    let num_rewards = mc[NUM_REWARDS] as usize;
    for r in 0..num_rewards {
        let code = mc[rb + r * 2usize] as u32;
        let weight = mc[rb + r * 2usize + 1usize];
        let mut value = 0.0f32;
        if code == 0u32 {
            let ex = cx - lx;
            let ey = cy - ly;
            value = ((ex * ex + ey * ey) / -mc[SIGMA]).exp();
        } else if code == 1u32 {
            let e = cz - az;
            value = ((e * e) / -mc[SIGMA]).exp();
        } else if code == 2u32 {
            value = lz * lz;
        } else if code == 3u32 {
            value = ax * ax + ay * ay;
        } else if code == 4u32 {
            value = gx * gx + gy * gy;
        } else if code == 5u32 {
            let e = root[2usize] - mc[GROUND] - mc[HEIGHT_TARGET];
            value = e * e;
        } else if code == 6u32 {
            for j in 0..nj {
                let t = in_tau[env * nj + j];
                value += t * t;
            }
        } else if code == 7u32 {
            for j in 0..nj {
                value += qd[j] * qd[j];
            }
        } else if code == 8u32 {
            for j in 0..nj {
                let a = (qd[j] - st[o_ljv + j]) / dt;
                value += a * a;
            }
        } else if code == 9u32 {
            for j in 0..nj {
                let a = st[j] - prev_action[j];
                value += a * a;
            }
        } else if code == 10u32 {
            let lb = mc[OFF_PENALISED] as usize;
            let count = mc[NUM_PENALISED] as usize;
            for i in 0..count {
                let link = mc[lb + i] as usize;
                if force_norm(in_force, env, link, nl) > mc[COLLISION_FORCE] {
                    value += 1.0;
                }
            }
        } else if code == 12u32 {
            for j in 0..nj {
                let below = f32::max(mc[lo + j] - q[j], 0.0f32);
                let above = f32::max(q[j] - mc[hi + j], 0.0f32);
                value += below + above;
            }
        } else if code == 13u32 {
            for f in 0..nf {
                value += (st[o_air + f] + mc[AIR_OFFSET]) * first[f];
            }
            value *= select(speed > mc[STAND_STILL], 1.0f32, 0.0f32);
        } else if code == 14u32 {
            for j in 0..nj {
                value += (q[j] - mc[GLOBALS + j]).abs();
            }
            value *= select(speed < mc[STAND_STILL], 1.0f32, 0.0f32);
        } else if code == 15u32 {
            for f in 0..nf {
                let link = mc[feet + f] as usize;
                value += f32::max(force_norm(in_force, env, link, nl) - mc[MAX_FORCE], 0.0f32);
            }
        }
        let weighted = value * weight;
        values[r] = weighted;
        reward += weighted;
    }
    if mc[ONLY_POSITIVE] > 0.5 {
        reward = f32::max(reward, 0.0f32);
    }
    if mc[HAS_TERMINATION] > 0.5 {
        let weighted = select(terminated, 1.0f32, 0.0f32) * mc[TERMINATION_W];
        reward += weighted;
        values[num_rewards] = weighted;
    }
    for i in 0..nt {
        st[o_rs + i] += values[i];
    }
    st[o_ret] += reward;
    let ex = cx - lx;
    let ey = cy - ly;
    st[o_es] += (ex * ex + ey * ey).sqrt();
    st[o_es + 1usize] += (cz - az).abs();
    st[o_es + 2usize] += 1.0;

    // The end of the step: what the next one compares with.
    for j in 0..nj {
        st[o_pa + j] = st[j];
        st[o_ljv + j] = qd[j];
    }
    for f in 0..nf {
        st[o_air + f] = air_new[f];
        st[o_lc + f] = contact[f];
    }

    // 4. The episode log and the final observations.
    out_rows[env] = reward;
    out_rows[n + env] = select(terminated, 1.0f32, 0.0f32);
    out_rows[2usize * n + env] = select(time_out, 1.0f32, 0.0f32);
    out_rows[3usize * n + env] = st[o_ret];
    out_rows[4usize * n + env] = st[o_el];
    for i in 0..nt {
        out_rows[(5usize + i) * n + env] = st[o_rs + i] / mc[EPISODE_S];
    }
    let steps = f32::max(st[o_es + 2usize], 1.0f32);
    out_rows[comptime!(5usize + nt) * n + env] = st[o_es] / steps;
    out_rows[comptime!(6usize + nt) * n + env] = st[o_es + 1usize] / steps;

    let mut ft = Array::<f32>::new(nfeat);
    features(
        mc, &root, &q, &qd, &st, in_force, env, &mut ft, nj, nf, nl, o_cmd, o_fr,
    );
    observe(mc, &ft, in_noise0, out_final0, env, 0usize, w0, false);
    if comptime!(groups > 1usize) {
        observe(mc, &ft, in_noise1, out_final1, env, 1usize, w1, false);
    }

    // 5. Reset of a finished environment from the draw, commands, pushes.
    let u = env * nd;
    let done = terminated || time_out;
    if done {
        let half = in_draw[u + mc[DRAW_YAW] as usize] * 0.5;
        root[0usize] = 0.0;
        root[1usize] = 0.0;
        root[2usize] = mc[INIT_HEIGHT];
        let (sin_half, cos_half) = sin_cos(half);
        root[3usize] = cos_half;
        root[4usize] = 0.0;
        root[5usize] = 0.0;
        root[6usize] = sin_half;
        let bv = u + mc[DRAW_BASE_VEL] as usize;
        for c in 0..6usize {
            root[7usize + c] = in_draw[bv + c];
        }
        let js = u + mc[DRAW_JOINT_SCALE] as usize;
        let jv = u + mc[DRAW_JOINT_VEL] as usize;
        for j in 0..nj {
            let target = mc[GLOBALS + j] * in_draw[js + j];
            q[j] = f32::min(f32::max(target, mc[lo + j]), mc[hi + j]);
            qd[j] = in_draw[jv + j];
            st[j] = 0.0;
            st[o_pa + j] = 0.0;
            st[o_ljv + j] = in_draw[jv + j];
        }
        st[o_pt] = in_draw[u + mc[DRAW_PUSH_TIME] as usize];
        st[o_ret] = 0.0;
        for i in 0..nt {
            st[o_rs + i] = 0.0;
        }
        for c in 0..3usize {
            st[o_es + c] = 0.0;
        }
        for f in 0..nf {
            st[o_air + f] = 0.0;
            st[o_lc + f] = 0.0;
        }
        st[o_el] = 0.0;
    }
    st[o_ct] -= dt;
    if st[o_ct] <= 0.0 || done {
        let cb = u + mc[DRAW_COMMAND] as usize;
        let x = in_draw[cb];
        let y = in_draw[cb + 1usize];
        let keep = select((x * x + y * y).sqrt() >= mc[MIN_SPEED], 1.0f32, 0.0f32);
        st[o_cmd] = x * keep;
        st[o_cmd + 1usize] = y * keep;
        st[o_cmd + 2usize] = in_draw[cb + 2usize];
        st[o_head] = in_draw[u + mc[DRAW_HEADING] as usize];
        st[o_ct] = mc[RESAMPLE_S];
    }
    if mc[HEADING] > 0.5 {
        let w = root[3usize];
        let x = root[4usize];
        let y = root[5usize];
        let z = root[6usize];
        let s = (w * z + x * y) * 2.0;
        let c = (y * y + z * z) * -2.0 + 1.0;
        let a = st[o_head] - s.atan2(c) + PI;
        let wrapped = a - TWO_PI * (a / TWO_PI).floor() - PI;
        st[o_cmd + 2usize] = clamp(wrapped * mc[HEADING_K], mc[YAW_RATE_LO], mc[YAW_RATE_HI]);
    }
    if mc[PUSH] > 0.5 && st[o_pt] <= 0.0 {
        let pv = u + mc[DRAW_PUSH_VEL] as usize;
        root[7usize] = in_draw[pv];
        root[8usize] = in_draw[pv + 1usize];
        st[o_pt] = in_draw[u + mc[DRAW_PUSH_TIME] as usize];
    }

    // 6. The observations of the new state, and every output.
    features(
        mc, &root, &q, &qd, &st, in_force, env, &mut ft, nj, nf, nl, o_cmd, o_fr,
    );
    observe(mc, &ft, in_noise0, out_obs0, env, 0usize, w0, noisy0);
    if comptime!(groups > 1usize) {
        observe(mc, &ft, in_noise1, out_obs1, env, 1usize, w1, noisy1);
    }
    for c in 0..3usize {
        out_pos[env * 3usize + c] = root[c];
        out_lin[env * 3usize + c] = root[7usize + c];
        out_ang[env * 3usize + c] = root[10usize + c];
    }
    for c in 0..4usize {
        out_quat[env * 4usize + c] = root[3usize + c];
    }
    for j in 0..nj {
        out_q[env * nj + j] = q[j];
        out_qd[env * nj + j] = qd[j];
    }
    for c in 0..sw {
        out_state[env * sw + c] = st[c];
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

    use super::*;
    use crate::legged::observations::ObservationTerm;
    use crate::legged::terms::{RewardTerm, TerminationTerm};

    /// A term added to the tensor path but not to the kernel would silently send the task
    /// back to the tensor path on a GPU: every term of the tables is one the kernel knows.
    #[test]
    fn the_wgpu_kernel_knows_every_term() {
        for term in RewardTerm::<Flex>::ALL {
            assert!(REWARD_CODES.contains(&term.name), "reward `{}`", term.name);
        }
        for term in TerminationTerm::<Flex>::ALL {
            assert!(
                TERMINATION_CODES.contains(&term.name),
                "termination `{}`",
                term.name
            );
        }
        for term in ObservationTerm::<Flex>::ALL {
            let left = TENSOR_PATH_TERMS.contains(&term.name);
            assert!(
                feature(term.name, 12, 4).is_some() != left,
                "observation `{}`: the kernel must know it unless it is left to the tensor path",
                term.name
            );
        }
    }
}
