//! [`crate::Articulation::step`] as one CubeCL kernel: one thread per environment runs every
//! sub-step of the tensor path (`crate::articulation`) on that environment's scalars.
//!
//! The maths is the tensor path's, term for term and in the same order where that is cheap
//! (the subtree sums run leaves-to-root instead of as matrix products, so results agree to
//! float rounding, not bit for bit). Model constants are packed once on the host by
//! [`StepProgram::new`]: floats in one array, the tree in another. The ground is the plane or,
//! compiled in when one is set, a height field read by `HeightField`'s rule.

use burn::tensor::TensorMetadata;
use burn_cubecl::CubeRuntime;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::dispatch::{CubeProgram, empty_outputs, per_environment};
use crate::model::{BaseKind, JointKind, Model, mat_mul, mat_vec, principal_axes};
use crate::{HeightField, SimConfig};

/// Floats per joint in the packed constants.
const JS: usize = 41;
/// Floats per link.
const LS: usize = 15;
/// Floats per contact point.
const PS: usize = 4;
/// Global floats at the start.
const GS: usize = 16;

/// A joint limit that stands for "none" (as in the tensor path).
const NO_LIMIT: f32 = 1e6;

/// The sizes of a model that the kernel is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Dims {
    links: usize,
    joints: usize,
    points: usize,
    floating: bool,
    substeps: usize,
    limits: bool,
    velocity_limits: bool,
    /// The ground is a height field (inputs `heights` and `layout`), not the plane.
    terrain: bool,
}

/// The packed model and settings, and what one step needs to launch.
#[derive(Debug, Clone)]
pub(crate) struct StepProgram {
    dims: Dims,
    consts: Vec<f32>,
    topology: Vec<f32>,
}

fn skew(a: [f64; 3]) -> [[f64; 3]; 3] {
    [[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]]
}

fn flag(b: bool) -> f32 {
    f32::from(u8::from(b))
}

impl StepProgram {
    /// Packs `model` and `config` (validated by the caller).
    pub(crate) fn new(model: &Model, config: &SimConfig) -> Self {
        let h = config.dt / config.substeps as f64;
        let cc = &config.contact;
        let (k, d) = (cc.stiffness, cc.damping);
        let (kl, dl) = (config.limit_stiffness, config.limit_damping);
        let mut consts = vec![0.0f32; GS];
        let globals = [
            config.gravity[0],
            config.gravity[1],
            config.gravity[2],
            h,
            cc.ground_height,
            k,
            d + h * k,
            cc.slip_velocity,
            h * (d + h * k),
            h * h,
            -kl,
            h * kl + dl,
            h * h * kl + h * dl,
            0.5 * h,
            2.0,
            0.0,
        ];
        for (slot, value) in consts.iter_mut().zip(globals) {
            *slot = value as f32;
        }
        for j in &model.joints {
            let rot = &j.origin.rotation;
            let kx = skew(j.axis);
            let e1 = mat_mul(rot, &kx);
            let e2 = mat_mul(rot, &mat_mul(&kx, &kx));
            for m in [rot, &e1, &e2] {
                consts.extend(m.iter().flatten().map(|&v| v as f32));
            }
            consts.extend(j.origin.xyz.map(|v| v as f32));
            consts.extend(mat_vec(rot, j.axis).map(|v| v as f32));
            consts.extend([
                flag(j.kind == JointKind::Revolute),
                flag(j.kind == JointKind::Prismatic),
                j.armature as f32,
                j.damping as f32,
                j.limits.map_or(-NO_LIMIT, |(lo, _)| lo as f32),
                j.limits.map_or(NO_LIMIT, |(_, hi)| hi as f32),
                flag(j.limits.is_some()),
                (j.velocity_limit as f32).min(NO_LIMIT),
            ]);
        }
        for link in &model.links {
            let (moments, axes) = principal_axes(&link.inertia);
            consts.extend(link.com.map(|v| v as f32));
            consts.extend(axes.iter().flatten().map(|&v| v as f32));
            consts.extend(moments.map(|v| v.max(0.0) as f32));
        }
        let points = model.contact_points();
        for p in &points {
            consts.extend(p.position.map(|v| v as f32));
            consts.push(p.radius as f32);
        }
        let floating = model.base == BaseKind::Floating;
        let off: usize = if floating { 6 } else { 0 };
        let mut topology: Vec<f32> = model.joints.iter().map(|j| j.parent as f32).collect();
        topology.extend(points.iter().map(|p| p.link as f32));
        // Parent + 1 of every degree of freedom (0: none), as in the tensor path.
        topology.extend((0..off).map(|i| i as f32));
        for joint in &model.joints {
            let parent = if joint.parent == 0 {
                off
            } else {
                off + joint.parent
            };
            topology.push(parent as f32);
        }
        Self {
            dims: Dims {
                links: model.links.len(),
                joints: model.num_joints(),
                points: points.len(),
                floating,
                substeps: config.substeps,
                limits: kl > 0.0 || dl > 0.0,
                velocity_limits: config.enforce_velocity_limits,
                terrain: false,
            },
            consts,
            topology,
        }
    }
}

// The inputs of one step, in this order: the packed constants and tree
// ([`StepProgram::constants`]), root position `[N, 3]`, orientation `[N, 4]`,
// linear and angular velocity `[N, 3]`, joint positions and velocities `[N, nj]`, position
// and velocity targets, efforts, stiffness, drive damping, effort limits `[N, nj]`, link
// masses `[1 or N, L]`, friction `[N, 1]`, then the ground: a height field's heights
// `[rows * cols]` and its layout ([`field_layout`]), both unread (any array) on the plane.

/// The outputs, in this order: the six state tensors as above, the applied drive torques
/// `[N, nj]`, the contact forces `[N, 3 L]` and the contact flags (0 or 1) `[N, L]`.
pub(crate) const OUTPUTS: usize = 9;

impl StepProgram {
    /// The packed constants and the tree (indices as floats), to be uploaded once.
    pub(crate) fn constants(&self) -> (&[f32], &[f32]) {
        (&self.consts, &self.topology)
    }

    /// What the kernel is compiled for: the program run by each step.
    pub(crate) fn dims(&self) -> Dims {
        self.dims
    }
}

impl Dims {
    /// The same model, on a height field (`true`) or on the plane.
    pub(crate) fn with_terrain(self, terrain: bool) -> Self {
        Self { terrain, ..self }
    }
}

/// A height field's layout as the kernel reads it: `[origin x, origin y, spacing, rows, cols]`.
pub(crate) fn field_layout(field: &HeightField) -> [f32; 5] {
    [
        field.origin[0] as f32,
        field.origin[1] as f32,
        field.spacing as f32,
        field.rows as f32,
        field.cols as f32,
    ]
}

impl CubeProgram for Dims {
    fn run<R: CubeRuntime>(self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
        let first = &inputs[2];
        let n = first.shape()[0];
        let d = self;
        let nj = d.joints;
        let outputs = empty_outputs(
            first,
            vec![
                vec![n, 3],
                vec![n, 4],
                vec![n, 3],
                vec![n, 3],
                vec![n, nj],
                vec![n, nj],
                vec![n, nj],
                vec![n, d.links * 3],
                vec![n, d.links],
            ],
        );
        let (cube_count, cube_dim) = per_environment(n);
        let client = first.client.clone();
        let arg = |t: &CubeTensor<R>| t.clone().into_array_arg();
        let i = &inputs;
        let o = &outputs;
        step_kernel::launch::<R>(
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
            arg(&i[14]),
            arg(&i[15]),
            arg(&i[16]),
            arg(&i[17]),
            arg(&o[0]),
            arg(&o[1]),
            arg(&o[2]),
            arg(&o[3]),
            arg(&o[4]),
            arg(&o[5]),
            arg(&o[6]),
            arg(&o[7]),
            arg(&o[8]),
            d.links,
            nj,
            d.points,
            d.floating,
            d.substeps,
            d.limits,
            d.velocity_limits,
            d.terrain,
        );
        outputs
    }
}

/// `a x b` of the 3-vectors at `a[i..]` and `b[j..]`, as a tuple.
#[cube]
fn cross(ax: f32, ay: f32, az: f32, bx: f32, by: f32, bz: f32) -> (f32, f32, f32) {
    (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx)
}

/// Index of entry `(i, j)` of a packed symmetric 6x6 matrix (the lower triangle by rows).
const fn sym(i: usize, j: usize) -> usize {
    if i >= j {
        i * (i + 1) / 2 + j
    } else {
        j * (j + 1) / 2 + i
    }
}

/// Where `p` falls on one axis of a height field with `n` samples from `origin`, `spacing`
/// apart (`HeightField`'s rule): the cell's lower index, the fraction inside the cell, and 1
/// where `p` lies on the grid (else 0).
#[cube]
fn field_axis(p: f32, origin: f32, spacing: f32, n: f32) -> (usize, f32, f32) {
    let last = n - 1.0;
    let g = (p - origin) / spacing;
    let inside = select(g >= 0.0 && g <= last, 1.0f32, 0.0f32);
    let g = select(g > 0.0, g, 0.0f32);
    let g = select(g < last, g, last);
    let i = g.floor();
    let i = select(i < n - 2.0, i, n - 2.0);
    (i as usize, g - i, inside)
}

/// Height and slope `(h, dh/dx, dh/dy)` of the height field (`heights`, `layout` as
/// [`field_layout`]) at world `(x, y)`, as `DeviceHeightField::height_and_slope` computes them.
#[cube]
fn field_height_and_slope(
    heights: &Array<f32>,
    layout: &Array<f32>,
    x: f32,
    y: f32,
) -> (f32, f32, f32) {
    let spacing = layout[2usize];
    let (i, u, inside_x) = field_axis(x, layout[0usize], spacing, layout[3usize]);
    let (j, v, inside_y) = field_axis(y, layout[1usize], spacing, layout[4usize]);
    let cols = layout[4usize] as usize;
    let f = i * cols + j;
    let h00 = heights[f];
    let h10 = heights[f + cols];
    let h01 = heights[f + 1usize];
    let h11 = heights[f + cols + 1usize];
    let dx0 = h10 - h00;
    let dx1 = h11 - h01;
    let low = h00 + dx0 * u;
    let high = h01 + dx1 * u;
    // h = low + (high - low) v: dh/dy = (high - low) / s, dh/dx = ((1-v) dx0 + v dx1) / s.
    let rise = high - low;
    let hx = (dx0 + (dx1 - dx0) * v) / spacing;
    let hy = rise / spacing;
    (low + rise * v, hx * inside_x, hy * inside_y)
}

#[allow(clippy::too_many_arguments)]
#[cube(launch)]
fn step_kernel(
    mc: &Array<f32>,
    tp: &Array<f32>,
    in_pos: &Array<f32>,
    in_quat: &Array<f32>,
    in_lin: &Array<f32>,
    in_ang: &Array<f32>,
    in_q: &Array<f32>,
    in_qd: &Array<f32>,
    pos_target: &Array<f32>,
    vel_target: &Array<f32>,
    effort: &Array<f32>,
    stiffness: &Array<f32>,
    drive_damping: &Array<f32>,
    effort_limit: &Array<f32>,
    link_mass: &Array<f32>,
    friction: &Array<f32>,
    heights: &Array<f32>,
    layout: &Array<f32>,
    out_pos: &mut Array<f32>,
    out_quat: &mut Array<f32>,
    out_lin: &mut Array<f32>,
    out_ang: &mut Array<f32>,
    out_q: &mut Array<f32>,
    out_qd: &mut Array<f32>,
    out_applied: &mut Array<f32>,
    out_force: &mut Array<f32>,
    out_touch: &mut Array<f32>,
    #[comptime] nl: usize,
    #[comptime] nj: usize,
    #[comptime] nk: usize,
    #[comptime] floating: bool,
    #[comptime] substeps: usize,
    #[comptime] limits: bool,
    #[comptime] velocity_limits: bool,
    #[comptime] terrain: bool,
) {
    let env = ABSOLUTE_POS;
    let num_envs = in_pos.len() / 3usize;
    if env >= num_envs {
        terminate!();
    }
    let off = comptime!(if floating { 6usize } else { 0usize });
    let nv = comptime!(nj + off);
    // Local arrays never have length zero.
    let njs = comptime!(if nj > 0usize { nj } else { 1usize });
    let nks = comptime!(if nk > 0usize { nk } else { 1usize });
    let jb = GS;
    let lb = comptime!(GS + nj * JS);
    let pb = comptime!(GS + nj * JS + nl * LS);
    let mass_stride = select(link_mass.len() > nl, nl, 0usize);

    let h = mc[3usize];

    // The state, carried through the sub-steps.
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

    // Per link: rotation (row-major), origin, angular and linear velocity, bias accelerations.
    let mut rot = Array::<f32>::new(comptime!(nl * 9usize));
    let mut pos = Array::<f32>::new(comptime!(nl * 3usize));
    let mut om = Array::<f32>::new(comptime!(nl * 3usize));
    let mut vel = Array::<f32>::new(comptime!(nl * 3usize));
    let mut alp = Array::<f32>::new(comptime!(nl * 3usize));
    let mut acc = Array::<f32>::new(comptime!(nl * 3usize));
    // World joint axes.
    let mut axw = Array::<f32>::new(comptime!(njs * 3usize));
    // Spatial inertia about the reference point (packed lower triangle) and wrench per link.
    let mut si = Array::<f32>::new(comptime!(nl * 21usize));
    let mut tq = Array::<f32>::new(comptime!(nl * 3usize));
    let mut fc = Array::<f32>::new(comptime!(nl * 3usize));
    // Per contact point: arm from the reference point, f0, implicit coefficients.
    let mut rho = Array::<f32>::new(comptime!(nks * 3usize));
    let mut f0 = Array::<f32>::new(comptime!(nks * 3usize));
    let mut a_t = Array::<f32>::new(nks);
    let mut a_n = Array::<f32>::new(nks);
    // The surface normal under every point, on a height field.
    let mut nrm = Array::<f32>::new(comptime!(if terrain { nks * 3usize } else { 1usize }));
    // Motion subspaces and F = I^c S per joint.
    let mut sw = Array::<f32>::new(comptime!(njs * 3usize));
    let mut sv = Array::<f32>::new(comptime!(njs * 3usize));
    let mut fw = Array::<f32>::new(comptime!(njs * 3usize));
    let mut fv = Array::<f32>::new(comptime!(njs * 3usize));
    let mut drive = Array::<f32>::new(njs);
    let mut a_drive = Array::<f32>::new(njs);
    // H = M + A (full, only the entries the tree couples are used) and the right-hand side.
    let mut hm = Array::<f32>::new(comptime!(nv * nv));
    let mut rhs = Array::<f32>::new(nv);
    // Spatial accelerations from qdd, for the contact report.
    let mut aw = Array::<f32>::new(comptime!(nl * 3usize));
    let mut av = Array::<f32>::new(comptime!(nl * 3usize));

    for _ in 0..substeps {
        // 1. Forward kinematics, root first; parents come before children.
        if comptime!(floating) {
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
            rot[0usize] = (yy + zz) * -2.0 + 1.0;
            rot[1usize] = (xy - wz) * 2.0;
            rot[2usize] = (xz + wy) * 2.0;
            rot[3usize] = (xy + wz) * 2.0;
            rot[4usize] = (xx + zz) * -2.0 + 1.0;
            rot[5usize] = (yz - wx) * 2.0;
            rot[6usize] = (xz - wy) * 2.0;
            rot[7usize] = (yz + wx) * 2.0;
            rot[8usize] = (xx + yy) * -2.0 + 1.0;
            for c in 0..3usize {
                pos[c] = root[c];
                om[c] = root[10usize + c];
                vel[c] = root[7usize + c];
            }
        } else {
            for e in 0..9usize {
                rot[e] = select(e % 4usize == 0usize, 1.0f32, 0.0f32);
            }
            for c in 0..3usize {
                pos[c] = 0.0;
                om[c] = 0.0;
                vel[c] = 0.0;
            }
        }
        for c in 0..3usize {
            alp[c] = 0.0;
            acc[c] = 0.0;
        }
        for j in 0..nj {
            let l = j + 1usize;
            let p = tp[j] as usize;
            let b = jb + j * JS;
            let is_rev = mc[b + 33usize];
            let is_pri = mc[b + 34usize];
            let angle = q[j] * is_rev;
            let s = angle.sin();
            let omc = -angle.cos() + 1.0;
            // local = e0 + s e1 + (1usize - cos) e2, then rot_c = rot_p local.
            let mut local = Array::<f32>::new(9usize);
            for e in 0..9usize {
                local[e] = s * mc[b + 9usize + e] + omc * mc[b + 18usize + e] + mc[b + e];
            }
            for r in 0..3usize {
                for c in 0..3usize {
                    rot[l * 9usize + r * 3usize + c] = rot[p * 9usize + r * 3usize] * local[c]
                        + rot[p * 9usize + r * 3usize + 1usize] * local[3usize + c]
                        + rot[p * 9usize + r * 3usize + 2usize] * local[6usize + c];
                }
            }
            // World axis and the joint's offset r from the parent origin.
            let mut ax = Array::<f32>::new(3usize);
            let mut rr = Array::<f32>::new(3usize);
            let slide = q[j] * is_pri;
            for r in 0..3usize {
                ax[r] = rot[p * 9usize + r * 3usize] * mc[b + 30usize]
                    + rot[p * 9usize + r * 3usize + 1usize] * mc[b + 31usize]
                    + rot[p * 9usize + r * 3usize + 2usize] * mc[b + 32usize];
                axw[j * 3usize + r] = ax[r];
            }
            for r in 0..3usize {
                let o = rot[p * 9usize + r * 3usize] * mc[b + 27usize]
                    + rot[p * 9usize + r * 3usize + 1usize] * mc[b + 28usize]
                    + rot[p * 9usize + r * 3usize + 2usize] * mc[b + 29usize];
                rr[r] = o + ax[r] * slide;
            }
            let wr = qd[j] * is_rev;
            let vr = qd[j] * is_pri;
            let wx = ax[0usize] * wr;
            let wy = ax[1usize] * wr;
            let wz = ax[2usize] * wr;
            let vx = ax[0usize] * vr;
            let vy = ax[1usize] * vr;
            let vz = ax[2usize] * vr;
            let opx = om[p * 3usize];
            let opy = om[p * 3usize + 1usize];
            let opz = om[p * 3usize + 2usize];
            let apx = alp[p * 3usize];
            let apy = alp[p * 3usize + 1usize];
            let apz = alp[p * 3usize + 2usize];
            // rcross(a, o) = o x a.
            let (v1x, v1y, v1z) = cross(opx, opy, opz, rr[0usize], rr[1usize], rr[2usize]);
            let (a1x, a1y, a1z) = cross(opx, opy, opz, wx, wy, wz);
            let (c1x, c1y, c1z) = cross(apx, apy, apz, rr[0usize], rr[1usize], rr[2usize]);
            let (c2x, c2y, c2z) = cross(opx, opy, opz, v1x, v1y, v1z);
            let (c3x, c3y, c3z) = cross(opx, opy, opz, vx, vy, vz);
            om[l * 3usize] = opx + wx;
            om[l * 3usize + 1usize] = opy + wy;
            om[l * 3usize + 2usize] = opz + wz;
            vel[l * 3usize] = vel[p * 3usize] + v1x + vx;
            vel[l * 3usize + 1usize] = vel[p * 3usize + 1usize] + v1y + vy;
            vel[l * 3usize + 2usize] = vel[p * 3usize + 2usize] + v1z + vz;
            alp[l * 3usize] = apx + a1x;
            alp[l * 3usize + 1usize] = apy + a1y;
            alp[l * 3usize + 2usize] = apz + a1z;
            acc[l * 3usize] = acc[p * 3usize] + c1x + c2x + c3x * 2.0;
            acc[l * 3usize + 1usize] = acc[p * 3usize + 1usize] + c1y + c2y + c3y * 2.0;
            acc[l * 3usize + 2usize] = acc[p * 3usize + 2usize] + c1z + c2z + c3z * 2.0;
            pos[l * 3usize] = pos[p * 3usize] + rr[0usize];
            pos[l * 3usize + 1usize] = pos[p * 3usize + 1usize] + rr[1usize];
            pos[l * 3usize + 2usize] = pos[p * 3usize + 2usize] + rr[2usize];
        }
        let refx = pos[0usize];
        let refy = pos[1usize];
        let refz = pos[2usize];

        // 2. Link inertias about the reference point and their Newton-Euler wrenches.
        for l in 0..nl {
            let b = lb + l * LS;
            let m = link_mass[env * mass_stride + l];
            // Principal axes in the world frame: P = rot * P_local.
            let mut pw = Array::<f32>::new(9usize);
            for r in 0..3usize {
                for c in 0..3usize {
                    pw[r * 3usize + c] = rot[l * 9usize + r * 3usize] * mc[b + 3usize + c]
                        + rot[l * 9usize + r * 3usize + 1usize] * mc[b + 6usize + c]
                        + rot[l * 9usize + r * 3usize + 2usize] * mc[b + 9usize + c];
                }
            }
            let mut co = Array::<f32>::new(3usize);
            for r in 0..3usize {
                co[r] = rot[l * 9usize + r * 3usize] * mc[b]
                    + rot[l * 9usize + r * 3usize + 1usize] * mc[b + 1usize]
                    + rot[l * 9usize + r * 3usize + 2usize] * mc[b + 2usize];
            }
            let d0 = mc[b + 12usize];
            let d1 = mc[b + 13usize];
            let d2 = mc[b + 14usize];
            let rx = pos[l * 3usize] + co[0usize] - refx;
            let ry = pos[l * 3usize + 1usize] + co[1usize] - refy;
            let rz = pos[l * 3usize + 2usize] + co[2usize] - refz;
            let rr2 = rx * rx + ry * ry + rz * rz;
            let mut rv = Array::<f32>::new(3usize);
            rv[0usize] = rx;
            rv[1usize] = ry;
            rv[2usize] = rz;
            // A = P D P^T + m (|r|^2usize 1usize - r r^T)
            for i in 0..3usize {
                for k in 0..3usize {
                    if k <= i {
                        let inertia = pw[i * 3usize] * pw[k * 3usize] * d0
                            + pw[i * 3usize + 1usize] * pw[k * 3usize + 1usize] * d1
                            + pw[i * 3usize + 2usize] * pw[k * 3usize + 2usize] * d2;
                        let mut e = inertia - rv[i] * rv[k] * m;
                        if i == k {
                            e += rr2 * m;
                        }
                        si[l * 21usize + i * (i + 1usize) / 2usize + k] = e;
                    }
                }
            }
            // Rows 3.. columns 0..3: -m r~ ; C = m 1.
            si[l * 21usize + comptime!(sym(3usize, 0usize))] = 0.0;
            si[l * 21usize + comptime!(sym(3usize, 1usize))] = rz * m;
            si[l * 21usize + comptime!(sym(3usize, 2usize))] = -ry * m;
            si[l * 21usize + comptime!(sym(4usize, 0usize))] = -rz * m;
            si[l * 21usize + comptime!(sym(4usize, 1usize))] = 0.0;
            si[l * 21usize + comptime!(sym(4usize, 2usize))] = rx * m;
            si[l * 21usize + comptime!(sym(5usize, 0usize))] = ry * m;
            si[l * 21usize + comptime!(sym(5usize, 1usize))] = -rx * m;
            si[l * 21usize + comptime!(sym(5usize, 2usize))] = 0.0;
            si[l * 21usize + comptime!(sym(3usize, 3usize))] = m;
            si[l * 21usize + comptime!(sym(4usize, 3usize))] = 0.0;
            si[l * 21usize + comptime!(sym(4usize, 4usize))] = m;
            si[l * 21usize + comptime!(sym(5usize, 3usize))] = 0.0;
            si[l * 21usize + comptime!(sym(5usize, 4usize))] = 0.0;
            si[l * 21usize + comptime!(sym(5usize, 5usize))] = m;
            // a_com = acc + w x ... (tensor path: acc + alpha x co + w x (w x co)).
            let ox = om[l * 3usize];
            let oy = om[l * 3usize + 1usize];
            let oz = om[l * 3usize + 2usize];
            let (t1x, t1y, t1z) = cross(
                alp[l * 3usize],
                alp[l * 3usize + 1usize],
                alp[l * 3usize + 2usize],
                co[0usize],
                co[1usize],
                co[2usize],
            );
            let (t2x, t2y, t2z) = cross(ox, oy, oz, co[0usize], co[1usize], co[2usize]);
            let (t3x, t3y, t3z) = cross(ox, oy, oz, t2x, t2y, t2z);
            let fx = (acc[l * 3usize] + t1x + t3x - mc[0usize]) * m;
            let fy = (acc[l * 3usize + 1usize] + t1y + t3y - mc[1usize]) * m;
            let fz = (acc[l * 3usize + 2usize] + t1z + t3z - mc[2usize]) * m;
            // Principal-frame angular velocity and acceleration.
            let wpx = pw[0usize] * ox + pw[3usize] * oy + pw[6usize] * oz;
            let wpy = pw[1usize] * ox + pw[4usize] * oy + pw[7usize] * oz;
            let wpz = pw[2usize] * ox + pw[5usize] * oy + pw[8usize] * oz;
            let ax_ = alp[l * 3usize];
            let ay_ = alp[l * 3usize + 1usize];
            let az_ = alp[l * 3usize + 2usize];
            let apx = pw[0usize] * ax_ + pw[3usize] * ay_ + pw[6usize] * az_;
            let apy = pw[1usize] * ax_ + pw[4usize] * ay_ + pw[7usize] * az_;
            let apz = pw[2usize] * ax_ + pw[5usize] * ay_ + pw[8usize] * az_;
            let (sx, sy, sz) = cross(wpx, wpy, wpz, wpx * d0, wpy * d1, wpz * d2);
            let tpx = apx * d0 + sx;
            let tpy = apy * d1 + sy;
            let tpz = apz * d2 + sz;
            let (rfx, rfy, rfz) = cross(rx, ry, rz, fx, fy, fz);
            tq[l * 3usize] = pw[0usize] * tpx + pw[1usize] * tpy + pw[2usize] * tpz + rfx;
            tq[l * 3usize + 1usize] = pw[3usize] * tpx + pw[4usize] * tpy + pw[5usize] * tpz + rfy;
            tq[l * 3usize + 2usize] = pw[6usize] * tpx + pw[7usize] * tpy + pw[8usize] * tpz + rfz;
            fc[l * 3usize] = fx;
            fc[l * 3usize + 1usize] = fy;
            fc[l * 3usize + 2usize] = fz;
        }

        // 3. Ground contact at every point: its wrench and implicit part join its link.
        let mu = friction[env];
        for k in 0..nk {
            let l = tp[nj + k] as usize;
            let b = pb + k * PS;
            let mut ce = Array::<f32>::new(3usize);
            for r in 0..3usize {
                ce[r] = pos[l * 3usize + r]
                    + (rot[l * 9usize + r * 3usize] * mc[b]
                        + rot[l * 9usize + r * 3usize + 1usize] * mc[b + 1usize]
                        + rot[l * 9usize + r * 3usize + 2usize] * mc[b + 2usize]);
            }
            if comptime!(terrain) {
                // The tangent plane of the field under the sphere's centre, normal n: as
                // `Articulation::terrain_contacts`.
                let radius = mc[b + 3usize];
                let (ground, hx, hy) =
                    field_height_and_slope(heights, layout, ce[0usize], ce[1usize]);
                let inv = 1.0f32 / (hx * hx + hy * hy + 1.0).sqrt();
                let nx = -hx * inv;
                let ny = -hy * inv;
                let nz = inv;
                let xx = ce[0usize] - nx * radius;
                let xy = ce[1usize] - ny * radius;
                let xz = ce[2usize] - nz * radius;
                let depth = radius - (ce[2usize] - ground) * inv;
                let (wvx, wvy, wvz) = cross(
                    om[l * 3usize],
                    om[l * 3usize + 1usize],
                    om[l * 3usize + 2usize],
                    xx - pos[l * 3usize],
                    xy - pos[l * 3usize + 1usize],
                    xz - pos[l * 3usize + 2usize],
                );
                let vx = vel[l * 3usize] + wvx;
                let vy = vel[l * 3usize + 1usize] + wvy;
                let vz = vel[l * 3usize + 2usize] + wvz;
                let vn = nx * vx + ny * vy + nz * vz;
                let push0 = depth * mc[5usize] - vn * mc[6usize];
                let active = select(depth > 0.0 && push0 > 0.0, 1.0f32, 0.0f32);
                let push = push0 * active;
                // Friction on the velocity's part in the tangent plane.
                let tx = vx - nx * vn;
                let ty = vy - ny * vn;
                let tz = vz - nz * vn;
                let speed = (tx * tx + ty * ty + tz * tz).sqrt();
                let slip = select(speed > mc[7usize], speed, mc[7usize]);
                let bb = push * mu / slip;
                let f0x = nx * push - tx * bb;
                let f0y = ny * push - ty * bb;
                let f0z = nz * push - tz * bb;
                let at = bb * h;
                let an = active * mc[8usize];
                let rx = xx - refx;
                let ry = xy - refy;
                let rz = xz - refz;
                rho[k * 3usize] = rx;
                rho[k * 3usize + 1usize] = ry;
                rho[k * 3usize + 2usize] = rz;
                f0[k * 3usize] = f0x;
                f0[k * 3usize + 1usize] = f0y;
                f0[k * 3usize + 2usize] = f0z;
                nrm[k * 3usize] = nx;
                nrm[k * 3usize + 1usize] = ny;
                nrm[k * 3usize + 2usize] = nz;
                a_t[k] = at;
                a_n[k] = an;
                // A = a_t I + (a_n - a_t) n n^T about p_ref: a_t times a unit point mass at
                // rho, plus (a_n - a_t) w w^T with w = (rho x n, n).
                let s = l * 21usize;
                si[s + comptime!(sym(0usize, 0usize))] += (ry * ry + rz * rz) * at;
                si[s + comptime!(sym(1usize, 1usize))] += (rx * rx + rz * rz) * at;
                si[s + comptime!(sym(2usize, 2usize))] += (rx * rx + ry * ry) * at;
                si[s + comptime!(sym(1usize, 0usize))] += -(rx * ry * at);
                si[s + comptime!(sym(2usize, 0usize))] += -(rx * rz * at);
                si[s + comptime!(sym(2usize, 1usize))] += -(ry * rz * at);
                si[s + comptime!(sym(3usize, 1usize))] += rz * at;
                si[s + comptime!(sym(3usize, 2usize))] += -ry * at;
                si[s + comptime!(sym(4usize, 0usize))] += -rz * at;
                si[s + comptime!(sym(4usize, 2usize))] += rx * at;
                si[s + comptime!(sym(5usize, 0usize))] += ry * at;
                si[s + comptime!(sym(5usize, 1usize))] += -rx * at;
                si[s + comptime!(sym(3usize, 3usize))] += at;
                si[s + comptime!(sym(4usize, 4usize))] += at;
                si[s + comptime!(sym(5usize, 5usize))] += at;
                let (wx, wy, wz) = cross(rx, ry, rz, nx, ny, nz);
                let extra = an - at;
                let mut six = Array::<f32>::new(6usize);
                six[0usize] = wx;
                six[1usize] = wy;
                six[2usize] = wz;
                six[3usize] = nx;
                six[4usize] = ny;
                six[5usize] = nz;
                for i in 0..6usize {
                    for j in 0..6usize {
                        if j <= i {
                            si[s + i * (i + 1usize) / 2usize + j] += six[i] * six[j] * extra;
                        }
                    }
                }
                let (cx, cy, cz) = cross(rx, ry, rz, f0x, f0y, f0z);
                tq[l * 3usize] -= cx;
                tq[l * 3usize + 1usize] -= cy;
                tq[l * 3usize + 2usize] -= cz;
                fc[l * 3usize] -= f0x;
                fc[l * 3usize + 1usize] -= f0y;
                fc[l * 3usize + 2usize] -= f0z;
            } else {
                let xx = ce[0usize];
                let xy = ce[1usize];
                let xz = ce[2usize] - mc[b + 3usize];
                let (wvx, wvy, wvz) = cross(
                    om[l * 3usize],
                    om[l * 3usize + 1usize],
                    om[l * 3usize + 2usize],
                    xx - pos[l * 3usize],
                    xy - pos[l * 3usize + 1usize],
                    xz - pos[l * 3usize + 2usize],
                );
                let vx = vel[l * 3usize] + wvx;
                let vy = vel[l * 3usize + 1usize] + wvy;
                let vz = vel[l * 3usize + 2usize] + wvz;
                let depth = -xz + mc[4usize];
                let normal0 = depth * mc[5usize] - vz * mc[6usize];
                let active = select(depth > 0.0 && normal0 > 0.0, 1.0f32, 0.0f32);
                let normal = normal0 * active;
                let speed = (vx * vx + vy * vy).sqrt();
                let slip = select(speed > mc[7usize], speed, mc[7usize]);
                let bb = normal * mu / slip;
                let f0x = vx * -bb;
                let f0y = vy * -bb;
                let at = bb * h;
                let an = active * mc[8usize];
                let rx = xx - refx;
                let ry = xy - refy;
                let rz = xz - refz;
                rho[k * 3usize] = rx;
                rho[k * 3usize + 1usize] = ry;
                rho[k * 3usize + 2usize] = rz;
                f0[k * 3usize] = f0x;
                f0[k * 3usize + 1usize] = f0y;
                f0[k * 3usize + 2usize] = normal;
                a_t[k] = at;
                a_n[k] = an;
                let s = l * 21usize;
                si[s + comptime!(sym(0usize, 0usize))] += rz * rz * at + ry * ry * an;
                si[s + comptime!(sym(1usize, 1usize))] += rz * rz * at + rx * rx * an;
                si[s + comptime!(sym(2usize, 2usize))] += (rx * rx + ry * ry) * at;
                si[s + comptime!(sym(1usize, 0usize))] += -(rx * ry * an);
                si[s + comptime!(sym(2usize, 0usize))] += -(rx * rz * at);
                si[s + comptime!(sym(2usize, 1usize))] += -(ry * rz * at);
                si[s + comptime!(sym(3usize, 1usize))] += rz * at;
                si[s + comptime!(sym(3usize, 2usize))] += -ry * at;
                si[s + comptime!(sym(4usize, 0usize))] += -rz * at;
                si[s + comptime!(sym(4usize, 2usize))] += rx * at;
                si[s + comptime!(sym(5usize, 0usize))] += ry * an;
                si[s + comptime!(sym(5usize, 1usize))] += -rx * an;
                si[s + comptime!(sym(3usize, 3usize))] += at;
                si[s + comptime!(sym(4usize, 4usize))] += at;
                si[s + comptime!(sym(5usize, 5usize))] += an;
                let (cx, cy, cz) = cross(rx, ry, rz, f0x, f0y, normal);
                tq[l * 3usize] -= cx;
                tq[l * 3usize + 1usize] -= cy;
                tq[l * 3usize + 2usize] -= cz;
                fc[l * 3usize] -= f0x;
                fc[l * 3usize + 1usize] -= f0y;
                fc[l * 3usize + 2usize] -= normal;
            }
        }

        // 4. Composite inertias and wrenches: every subtree summed into its root.
        for i in 0..nj {
            let l = nj - i;
            let p = tp[l - 1usize] as usize;
            for e in 0..21usize {
                si[p * 21usize + e] += si[l * 21usize + e];
            }
            for c in 0..3usize {
                tq[p * 3usize + c] += tq[l * 3usize + c];
                fc[p * 3usize + c] += fc[l * 3usize + c];
            }
        }

        // 5. H = M + A on the entries the tree couples, and f0 - C.
        for e in 0..comptime!(nv * nv) {
            hm[e] = 0.0;
        }
        if comptime!(floating) {
            // Base dofs [v, w] are spatial rows [3.., 0..3].
            for i in 0..6usize {
                for j in 0..6usize {
                    if j <= i {
                        let si_ = select(i < 3usize, i + 3usize, i - 3usize);
                        let sj_ = select(j < 3usize, j + 3usize, j - 3usize);
                        let a = select(si_ >= sj_, si_, sj_);
                        let b = select(si_ >= sj_, sj_, si_);
                        hm[i * nv + j] = si[a * (a + 1usize) / 2usize + b];
                    }
                }
            }
            for c in 0..3usize {
                rhs[c] = -fc[c];
                rhs[3usize + c] = -tq[c];
            }
        }
        for j in 0..nj {
            let l = j + 1usize;
            let b = jb + j * JS;
            let is_rev = mc[b + 33usize];
            let is_pri = mc[b + 34usize];
            let arx = pos[l * 3usize] - refx;
            let ary = pos[l * 3usize + 1usize] - refy;
            let arz = pos[l * 3usize + 2usize] - refz;
            let ax = axw[j * 3usize];
            let ay = axw[j * 3usize + 1usize];
            let az = axw[j * 3usize + 2usize];
            let (cx, cy, cz) = cross(arx, ary, arz, ax, ay, az);
            sw[j * 3usize] = ax * is_rev;
            sw[j * 3usize + 1usize] = ay * is_rev;
            sw[j * 3usize + 2usize] = az * is_rev;
            sv[j * 3usize] = cx * is_rev + ax * is_pri;
            sv[j * 3usize + 1usize] = cy * is_rev + ay * is_pri;
            sv[j * 3usize + 2usize] = cz * is_rev + az * is_pri;
            // F = I^c S.
            let mut s6 = Array::<f32>::new(6usize);
            for c in 0..3usize {
                s6[c] = sw[j * 3usize + c];
                s6[3usize + c] = sv[j * 3usize + c];
            }
            let mut f6 = Array::<f32>::new(6usize);
            for r in 0..6usize {
                let mut sum = 0.0f32;
                for c in 0..6usize {
                    let a = select(r >= c, r, c);
                    let bb = select(r >= c, c, r);
                    let v = si[l * 21usize + a * (a + 1usize) / 2usize + bb] * s6[c];
                    if c == 0usize {
                        sum = v;
                    } else {
                        sum += v;
                    }
                }
                f6[r] = sum;
            }
            for c in 0..3usize {
                fw[j * 3usize + c] = f6[c];
                fv[j * 3usize + c] = f6[3usize + c];
            }
        }
        for j in 0..nj {
            let l = j + 1usize;
            let b = jb + j * JS;
            let diagonal = sw[j * 3usize] * fw[j * 3usize]
                + sw[j * 3usize + 1usize] * fw[j * 3usize + 1usize]
                + sw[j * 3usize + 2usize] * fw[j * 3usize + 2usize]
                + (sv[j * 3usize] * fv[j * 3usize]
                    + sv[j * 3usize + 1usize] * fv[j * 3usize + 1usize]
                    + sv[j * 3usize + 2usize] * fv[j * 3usize + 2usize]);
            let bias = sw[j * 3usize] * tq[l * 3usize]
                + sw[j * 3usize + 1usize] * tq[l * 3usize + 1usize]
                + sw[j * 3usize + 2usize] * tq[l * 3usize + 2usize]
                + (sv[j * 3usize] * fc[l * 3usize]
                    + sv[j * 3usize + 1usize] * fc[l * 3usize + 1usize]
                    + sv[j * 3usize + 2usize] * fc[l * 3usize + 2usize]);
            // Coupling with every ancestor joint, and with the base.
            let mut a = tp[nj + nk + off + j] as usize;
            while a > off {
                let aj = a - 1usize - off;
                let v = fw[j * 3usize] * sw[aj * 3usize]
                    + fw[j * 3usize + 1usize] * sw[aj * 3usize + 1usize]
                    + fw[j * 3usize + 2usize] * sw[aj * 3usize + 2usize]
                    + (fv[j * 3usize] * sv[aj * 3usize]
                        + fv[j * 3usize + 1usize] * sv[aj * 3usize + 1usize]
                        + fv[j * 3usize + 2usize] * sv[aj * 3usize + 2usize]);
                hm[(off + j) * nv + a - 1usize] = v;
                a = tp[nj + nk + a - 1usize] as usize;
            }
            if comptime!(floating) {
                for c in 0..3usize {
                    hm[(off + j) * nv + c] = fv[j * 3usize + c];
                    hm[(off + j) * nv + 3usize + c] = fw[j * 3usize + c];
                }
            }
            // Joint forces: the PD drive at the end of the step, damping, armature, limits.
            let e = env * nj + j;
            let qj = q[j];
            let qdj = qd[j];
            let kp = stiffness[e];
            let kd = drive_damping[e];
            let command =
                kp * (pos_target[e] - qj - qdj * h) + kd * (vel_target[e] - qdj) + effort[e];
            let limit = effort_limit[e];
            let saturated = command.abs() > limit;
            let clipped = select(command < limit, command, limit);
            let dr = select(clipped > -limit, clipped, -limit);
            let ad = select(saturated, 0.0f32, kd * h + kp * mc[9usize]);
            let damping = mc[b + 36usize];
            let mut tau = dr - damping * qdj;
            let mut aa = ad + mc[b + 35usize] + damping * h;
            if comptime!(limits) {
                let free_acc = (tau - bias) / (diagonal + aa);
                let next = qj + (qdj + free_acc * h) * h;
                let upper = mc[b + 38usize];
                let lower = mc[b + 37usize];
                let has = mc[b + 39usize];
                let push_u = (qj - upper) * mc[10usize] - qdj * mc[11usize];
                let push_l = (qj - lower) * mc[10usize] - qdj * mc[11usize];
                let on_u = select(next > upper, 1.0f32, 0.0f32) * has;
                let on_l = select(next < lower, 1.0f32, 0.0f32) * has;
                tau = tau + push_u * on_u + push_l * on_l;
                aa += (on_u + on_l) * mc[12usize];
            }
            drive[j] = dr;
            a_drive[j] = ad;
            hm[(off + j) * nv + off + j] = diagonal + aa;
            rhs[off + j] = tau - bias;
        }

        // 6. Solve H qdd = rhs by L^T D L (Featherstone 6.5); rhs becomes qdd.
        for i in 0..nv {
            let k = nv - 1usize - i;
            let mut pi = tp[nj + nk + k] as usize;
            while pi > 0usize {
                let ii = pi - 1usize;
                let a = hm[k * nv + ii] / hm[k * nv + k];
                let mut pj = pi;
                while pj > 0usize {
                    let jj = pj - 1usize;
                    hm[ii * nv + jj] = hm[ii * nv + jj] - a * hm[k * nv + jj];
                    pj = tp[nj + nk + jj] as usize;
                }
                hm[k * nv + ii] = a;
                pi = tp[nj + nk + ii] as usize;
            }
        }
        for ii in 0..nv {
            let i = nv - 1usize - ii;
            let mut pj = tp[nj + nk + i] as usize;
            while pj > 0usize {
                let jj = pj - 1usize;
                rhs[jj] = rhs[jj] - hm[i * nv + jj] * rhs[i];
                pj = tp[nj + nk + jj] as usize;
            }
        }
        for i in 0..nv {
            rhs[i] = rhs[i] / hm[i * nv + i];
        }
        for i in 0..nv {
            let mut pj = tp[nj + nk + i] as usize;
            while pj > 0usize {
                let jj = pj - 1usize;
                rhs[i] = rhs[i] - hm[i * nv + jj] * rhs[jj];
                pj = tp[nj + nk + jj] as usize;
            }
        }

        // 7. What the contacts and drives applied in this sub-step.
        for l in 0..nl {
            for c in 0..3usize {
                out_force[(env * nl + l) * 3usize + c] = 0.0;
            }
            out_touch[env * nl + l] = 0.0;
        }
        if comptime!(nk > 0usize) {
            for c in 0..3usize {
                if comptime!(floating) {
                    aw[c] = rhs[3usize + c];
                    av[c] = rhs[c];
                } else {
                    aw[c] = 0.0;
                    av[c] = 0.0;
                }
            }
            // Every joint's S qdd reaches its whole subtree: children come after parents.
            for j in 0..nj {
                let l = j + 1usize;
                let p = tp[j] as usize;
                let a = rhs[off + j];
                for c in 0..3usize {
                    aw[l * 3usize + c] = aw[p * 3usize + c] + sw[j * 3usize + c] * a;
                    av[l * 3usize + c] = av[p * 3usize + c] + sv[j * 3usize + c] * a;
                }
            }
            for k in 0..nk {
                let l = tp[nj + k] as usize;
                let (pwx, pwy, pwz) = cross(
                    aw[l * 3usize],
                    aw[l * 3usize + 1usize],
                    aw[l * 3usize + 2usize],
                    rho[k * 3usize],
                    rho[k * 3usize + 1usize],
                    rho[k * 3usize + 2usize],
                );
                let pax = av[l * 3usize] + pwx;
                let pay = av[l * 3usize + 1usize] + pwy;
                let paz = av[l * 3usize + 2usize] + pwz;
                let o = (env * nl + l) * 3usize;
                if comptime!(terrain) {
                    // A = a_t I + (a_n - a_t) n n^T.
                    let nx = nrm[k * 3usize];
                    let ny = nrm[k * 3usize + 1usize];
                    let nz = nrm[k * 3usize + 2usize];
                    let along = (nx * pax + ny * pay + nz * paz) * (a_n[k] - a_t[k]);
                    out_force[o] += f0[k * 3usize] - pax * a_t[k] - nx * along;
                    out_force[o + 1usize] += f0[k * 3usize + 1usize] - pay * a_t[k] - ny * along;
                    out_force[o + 2usize] += f0[k * 3usize + 2usize] - paz * a_t[k] - nz * along;
                } else {
                    out_force[o] += f0[k * 3usize] - pax * a_t[k];
                    out_force[o + 1usize] += f0[k * 3usize + 1usize] - pay * a_t[k];
                    out_force[o + 2usize] += f0[k * 3usize + 2usize] - paz * a_n[k];
                }
                if a_n[k] > 0.0 {
                    out_touch[env * nl + l] = 1.0;
                }
            }
        }
        for j in 0..nj {
            out_applied[env * nj + j] = drive[j] - a_drive[j] * rhs[off + j];
        }

        // 8. Semi-implicit Euler.
        if comptime!(floating) {
            for c in 0..3usize {
                root[7usize + c] = root[7usize + c] + rhs[c] * h;
                root[10usize + c] = root[10usize + c] + rhs[3usize + c] * h;
            }
            for c in 0..3usize {
                root[c] = root[c] + root[7usize + c] * h;
            }
            let ox = root[10usize];
            let oy = root[11usize];
            let oz = root[12usize];
            let speed = (ox * ox + oy * oy + oz * oz).sqrt();
            let half = speed * mc[13usize];
            let tiny = select(speed > 1e-12f32, speed, 1e-12f32);
            let scale = select(half < 1e-6f32, mc[13usize], half.sin() / tiny);
            let tw = half.cos();
            let tx = ox * scale;
            let ty = oy * scale;
            let tz = oz * scale;
            let bw = root[3usize];
            let bx = root[4usize];
            let by = root[5usize];
            let bz = root[6usize];
            let (cx, cy, cz) = cross(tx, ty, tz, bx, by, bz);
            let nw = tw * bw - (tx * bx + ty * by + tz * bz);
            let nx = bx * tw + tx * bw + cx;
            let ny = by * tw + ty * bw + cy;
            let nz = bz * tw + tz * bw + cz;
            let norm = (nw * nw + nx * nx + ny * ny + nz * nz).sqrt();
            let norm = select(norm > 1e-12f32, norm, 1e-12f32);
            root[3usize] = nw / norm;
            root[4usize] = nx / norm;
            root[5usize] = ny / norm;
            root[6usize] = nz / norm;
        }
        for j in 0..nj {
            let mut v = qd[j] + rhs[off + j] * h;
            if comptime!(velocity_limits) {
                let lim = mc[jb + j * JS + 40usize];
                v = select(v < lim, v, lim);
                v = select(v > -lim, v, -lim);
            }
            q[j] = q[j] + v * h;
            qd[j] = v;
        }
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
}
