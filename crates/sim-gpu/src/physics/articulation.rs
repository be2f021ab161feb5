//! [`Articulation`]: `N` copies of a [`Model`] stepped together as tensor ops.
//!
//! One sub-step of length `h`:
//! 1. Forward kinematics, one depth level of the tree at a time (all links of a level in one
//!    batch): link rotations, positions, velocities, and the accelerations that the current
//!    velocities alone produce (the velocity-product, or "bias", terms).
//! 2. Link Jacobians in the world frame. With `S` the rows `sqrt(m) J_v` and `sqrt(D) P^T J_w`
//!    of every link (`P` its principal axes, `D` its principal moments), the mass matrix is
//!    the Gram matrix `M = S S^T`, and the bias force `C = S w` with `w` the Newton-Euler
//!    wrench of every link (`m (a - g)`, `I alpha + w x I w`) scaled alike.
//! 3. Forces of the form `f = f0 - A qdd`: every spring and damper (joint damping, PD drives
//!    below their torque limit, joint limits, ground contact with friction) is evaluated at
//!    the end of the step, `x + h v'`, `v'` with `v' = v + h qdd`, and linearised; the `A`
//!    terms join the mass matrix. This is implicit Euler in the stiff terms, stable for any
//!    gain, while gravity and Coriolis forces stay explicit.
//! 4. `(M + A) qdd = f0 - C` is solved by the `L^T D L` factorisation of Featherstone
//!    (Rigid Body Dynamics Algorithms, section 6.5), which touches only the entries that the
//!    tree couples (a joint and its ancestors), so the legs of a robot add no fill-in.
//! 5. Semi-implicit Euler: `v' = v + h qdd`, then `q' = q + h v'` (the base orientation by
//!    the exponential map of its angular velocity).
//!
//! Generalised velocities are `[v, w, qd]` for a floating base (the base origin's linear and
//! angular velocity in the world frame, then the joint speeds) and `[qd]` for a fixed one.
//! Vectors are stored one component per `[N, K]` tensor ([`V3`], [`M3`]); nothing is read
//! back to the host inside a step.

use burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};

use super::config::SimConfig;
use super::model::{BaseKind, JointKind, Model, principal_axes};
use super::soa::{M3, V3, normalize, quat_exp, quat_mul, quat_rotate_inverse, row};
use crate::common::{check_shape, scatter_rows};
use crate::{Error, Result};

/// A joint limit that stands for "none", finite so that the arithmetic stays finite.
const NO_LIMIT: f32 = 1e6;

type T<B> = Tensor<B, 2>;

/// The links of one depth of the tree, side by side: links `start..start + count`, moved by
/// joints `start - 1..start - 1 + count`.
#[derive(Debug, Clone)]
struct Level<B: Backend> {
    start: usize,
    count: usize,
    /// Parent link of each, `[n]`.
    parents: Tensor<B, 1, Int>,
    /// Child frame rotation in the parent frame at angle `q`: `e0 + sin q e1 + (1 - cos q) e2`
    /// (the joint origin's rotation `R` times Rodrigues' `I`, `K`, `K^2`), `[1, n]` each.
    e0: M3<B>,
    e1: M3<B>,
    e2: M3<B>,
    /// Joint origin `[1, n]` and axis `[1, n]`, both in the parent frame.
    origin: V3<B>,
    axis: V3<B>,
    /// 1 for revolute (prismatic) joints, else 0, `[1, n]`.
    is_rev: T<B>,
    is_pri: T<B>,
}

/// Tensors built once from the model.
#[derive(Debug, Clone)]
struct Consts<B: Backend> {
    levels: Vec<Level<B>>,
    /// Link masses and their square roots `[1, L]`.
    mass: T<B>,
    sqrt_mass: T<B>,
    /// Centres of mass in the link frame `[1, L]`.
    com: V3<B>,
    /// Principal axes of the link inertias in the link frame, principal moments, their square
    /// roots, and the inverse square roots (zero for a zero moment), `[1, L]`.
    principal: M3<B>,
    moments: V3<B>,
    sqrt_moments: V3<B>,
    inv_sqrt_moments: V3<B>,
    /// Per joint: 1 on the links (contact points) it moves, `[1, L]` (`[1, K]`); the link
    /// mask times `sqrt(m)`.
    moves_links: Vec<T<B>>,
    moves_links_sqrt_mass: Vec<T<B>>,
    moves_points: Vec<T<B>>,
    /// Joint kinds.
    revolute: Vec<bool>,
    /// Contact points: link `[K]`, centre in the link frame `[1, K]`, radius `[1, K]`, and the
    /// one-hot map to links `[K, L]`.
    contact_link: Tensor<B, 1, Int>,
    contact_local: V3<B>,
    contact_radius: T<B>,
    contact_to_link: T<B>,
    /// Joint parameters `[1, nj]`.
    armature: T<B>,
    damping: T<B>,
    lower: T<B>,
    upper: T<B>,
    has_limit: T<B>,
    velocity_limit: T<B>,
    /// Gravity.
    gravity: [f64; 3],
    /// Parent of every degree of freedom in the tree of degrees of freedom (the base's six
    /// form a chain), for the sparse factorisation.
    dof_parent: Vec<Option<usize>>,
}

/// The kinematics of every link at the current state, world frame, `[N, L]` components.
#[derive(Debug, Clone)]
struct Kinematics<B: Backend> {
    /// Link rotations and origins.
    rot: M3<B>,
    pos: V3<B>,
    /// Angular velocities and origin velocities.
    omega: V3<B>,
    vel: V3<B>,
    /// Angular and origin accelerations with zero generalised acceleration.
    alpha_bias: V3<B>,
    acc_bias: V3<B>,
    /// World joint axes `[N, nj]` (none when there are no joints).
    axis: Option<V3<B>>,
}

/// Per-link quantities derived from the kinematics, `[N, L]` components.
struct Bodies<B: Backend> {
    /// Centres of mass, world frame, and their offsets from the link origins.
    com: V3<B>,
    com_offset: V3<B>,
    /// Principal axes (columns) in the world frame.
    principal: M3<B>,
    /// Angular velocity in the principal frame.
    omega_p: V3<B>,
}

/// Joint-space forces of one sub-step `[N, nj]`.
struct JointForces<B: Backend> {
    /// Every joint force (drive, damping, limits) at the start of the step, `f0`.
    tau: T<B>,
    /// Their implicit part `A` (added to the mass matrix's diagonal).
    implicit: T<B>,
    /// The drive's own torque after the limit, and its implicit part.
    drive: T<B>,
    drive_implicit: T<B>,
}

/// Ground contact of one sub-step: Jacobian rows scaled by `sqrt(A)` per degree of freedom
/// `[N, 3K]` (x of every point, then y, then z), forces `f0` and `f0 / sqrt(A)`, `sqrt(A)`.
struct Contacts<B: Backend> {
    rows: Vec<T<B>>,
    f0: T<B>,
    f0_scaled: T<B>,
    sqrt_a: T<B>,
}

/// `N` copies of a robot on one device, stepped together.
///
/// Joint order is the model's (breadth-first); quaternions are `(w, x, y, z)`; velocities
/// are in the world frame unless a method says otherwise.
#[derive(Debug, Clone)]
pub struct Articulation<B: Backend> {
    model: Model,
    config: SimConfig,
    num_envs: usize,
    device: B::Device,
    consts: Consts<B>,
    root_pos: T<B>,
    root_quat: T<B>,
    root_lin_vel: T<B>,
    root_ang_vel: T<B>,
    joint_pos: T<B>,
    joint_vel: T<B>,
    pos_target: T<B>,
    vel_target: T<B>,
    effort: T<B>,
    stiffness: T<B>,
    drive_damping: T<B>,
    effort_limit: T<B>,
    contact_force: Tensor<B, 3>,
    contact_flag: Tensor<B, 2, Bool>,
    applied_torque: T<B>,
}

fn flag(b: bool) -> f32 {
    f32::from(u8::from(b))
}

impl<B: Backend> Consts<B> {
    fn new(model: &Model, config: &SimConfig, device: &B::Device) -> Self {
        let l = model.links.len();
        let nj = model.num_joints();
        let depths = model.depths();
        let mut levels = Vec::new();
        let mut start = 1;
        while start < l {
            let depth = depths[start];
            let count = depths[start..].iter().take_while(|&&d| d == depth).count();
            let joints = &model.joints[start - 1..start - 1 + count];
            let parents: Vec<i64> = joints.iter().map(|j| j.parent as i64).collect();
            let k: Vec<_> = joints.iter().map(|j| skew(j.axis)).collect();
            let rot = |j: usize| &joints[j].origin.rotation;
            let e1: Vec<_> = (0..count)
                .map(|j| super::model::mat_mul(rot(j), &k[j]))
                .collect();
            let e2: Vec<_> = (0..count)
                .map(|j| super::model::mat_mul(rot(j), &super::model::mat_mul(&k[j], &k[j])))
                .collect();
            let e0: Vec<_> = (0..count).map(|j| *rot(j)).collect();
            let axis: Vec<_> = joints
                .iter()
                .map(|j| super::model::mat_vec(&j.origin.rotation, j.axis))
                .collect();
            let origin: Vec<_> = joints.iter().map(|j| j.origin.xyz).collect();
            let kind = |want: JointKind| {
                row(
                    joints.iter().map(|j| flag(j.kind == want)).collect(),
                    device,
                )
            };
            levels.push(Level {
                start,
                count,
                parents: Tensor::from_data(TensorData::new(parents, [count]), device),
                e0: M3::constant(&e0, device),
                e1: M3::constant(&e1, device),
                e2: M3::constant(&e2, device),
                origin: V3::constant(&origin, device),
                axis: V3::constant(&axis, device),
                is_rev: kind(JointKind::Revolute),
                is_pri: kind(JointKind::Prismatic),
            });
            start += count;
        }
        let (moments, axes): (Vec<_>, Vec<_>) = model
            .links
            .iter()
            .map(|link| principal_axes(&link.inertia))
            .unzip();
        let moments: Vec<[f64; 3]> = moments.iter().map(|d| d.map(|v| v.max(0.0))).collect();
        let moves = model.joint_moves_link();
        let points = model.contact_points();
        let kp = points.len();
        let mut to_link = vec![0.0f32; kp * l];
        for (k, p) in points.iter().enumerate() {
            to_link[k * l + p.link] = 1.0;
        }
        let per_joint = |mask: &dyn Fn(usize, usize) -> f32, items: usize| -> Vec<T<B>> {
            (0..nj)
                .map(|j| row((0..items).map(|i| mask(j, i)).collect(), device))
                .collect()
        };
        let joint_param = |f: &dyn Fn(&super::model::Joint) -> f32| -> T<B> {
            row(model.joints.iter().map(f).collect(), device)
        };
        let offset: usize = if model.base == BaseKind::Floating {
            6
        } else {
            0
        };
        let mut dof_parent: Vec<Option<usize>> = (0..offset).map(|i| i.checked_sub(1)).collect();
        for joint in &model.joints {
            dof_parent.push(if joint.parent == 0 {
                offset.checked_sub(1)
            } else {
                Some(offset + joint.parent - 1)
            });
        }
        Self {
            levels,
            mass: row(model.links.iter().map(|k| k.mass as f32).collect(), device),
            sqrt_mass: row(
                model.links.iter().map(|k| k.mass.sqrt() as f32).collect(),
                device,
            ),
            com: V3::constant(
                &model.links.iter().map(|k| k.com).collect::<Vec<_>>(),
                device,
            ),
            principal: M3::constant(&axes, device),
            moments: V3::constant(&moments, device),
            sqrt_moments: V3::constant(
                &moments.iter().map(|d| d.map(f64::sqrt)).collect::<Vec<_>>(),
                device,
            ),
            inv_sqrt_moments: V3::constant(
                &moments
                    .iter()
                    .map(|d| d.map(|v| if v > 0.0 { 1.0 / v.sqrt() } else { 0.0 }))
                    .collect::<Vec<_>>(),
                device,
            ),
            moves_links: per_joint(&|j, i| flag(moves[i][j]), l),
            moves_links_sqrt_mass: per_joint(
                &|j, i| flag(moves[i][j]) * model.links[i].mass.sqrt() as f32,
                l,
            ),
            moves_points: per_joint(&|j, k| flag(moves[points[k].link][j]), kp),
            revolute: model
                .joints
                .iter()
                .map(|j| j.kind == JointKind::Revolute)
                .collect(),
            contact_link: Tensor::from_data(
                TensorData::new(points.iter().map(|p| p.link as i64).collect(), [kp]),
                device,
            ),
            contact_local: V3::constant(
                &points.iter().map(|p| p.position).collect::<Vec<_>>(),
                device,
            ),
            contact_radius: row(points.iter().map(|p| p.radius as f32).collect(), device),
            contact_to_link: Tensor::from_data(TensorData::new(to_link, [kp, l]), device),
            armature: joint_param(&|j| j.armature as f32),
            damping: joint_param(&|j| j.damping as f32),
            lower: joint_param(&|j| j.limits.map_or(-NO_LIMIT, |(lo, _)| lo as f32)),
            upper: joint_param(&|j| j.limits.map_or(NO_LIMIT, |(_, hi)| hi as f32)),
            has_limit: joint_param(&|j| flag(j.limits.is_some())),
            velocity_limit: joint_param(&|j| (j.velocity_limit as f32).min(NO_LIMIT)),
            gravity: config.gravity,
            dof_parent,
        }
    }
}

fn skew(a: [f64; 3]) -> [[f64; 3]; 3] {
    [[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]]
}

/// Solves `H x = b` in place by Featherstone's `L^T D L` factorisation: `h[i][j]` (for `j` an
/// ancestor of `i`, or `j == i`) are the entries of the symmetric `H` `[N, 1]`, `parent` the
/// tree of degrees of freedom; returns `x` as `[N, 1]` entries.
fn solve_ltdl<B: Backend>(
    mut h: Vec<Vec<Option<T<B>>>>,
    mut b: Vec<T<B>>,
    parent: &[Option<usize>],
) -> Vec<T<B>> {
    let n = b.len();
    let Some(zero) = b.first().map(|b| b.zeros_like()) else {
        return b;
    };
    let entry = |h: &Vec<Vec<Option<T<B>>>>, i: usize, j: usize| -> T<B> {
        h[i][j].clone().unwrap_or_else(|| zero.clone())
    };
    // Factorise: H = L^T D L, L unit lower triangular stored below the diagonal.
    for k in (0..n).rev() {
        let mut i = parent[k];
        while let Some(ii) = i {
            let a = entry(&h, k, ii) / entry(&h, k, k);
            let mut j = Some(ii);
            while let Some(jj) = j {
                h[ii][jj] = Some(entry(&h, ii, jj) - a.clone() * entry(&h, k, jj));
                j = parent[jj];
            }
            h[k][ii] = Some(a);
            i = parent[ii];
        }
    }
    // L^T y = b, from the leaves up.
    for i in (0..n).rev() {
        let mut j = parent[i];
        while let Some(jj) = j {
            b[jj] = b[jj].clone() - entry(&h, i, jj) * b[i].clone();
            j = parent[jj];
        }
    }
    // D z = y.
    for (i, bi) in b.iter_mut().enumerate() {
        *bi = bi.clone() / entry(&h, i, i);
    }
    // L x = z, from the root down.
    for i in 0..n {
        let mut j = parent[i];
        while let Some(jj) = j {
            b[i] = b[i].clone() - entry(&h, i, jj) * b[jj].clone();
            j = parent[jj];
        }
    }
    b
}

impl<B: Backend> Articulation<B> {
    /// `num_envs` copies of `model`, all at the zero joint position with zero velocity; a
    /// floating base starts at the origin, upright. Drives start with zero gains and zero
    /// commands, and the torque limits are the model's effort limits.
    ///
    /// # Errors
    /// [`Error::NoEnvs`] for zero environments, [`Error::Physics`] for an invalid config or
    /// a model without degrees of freedom.
    pub fn new(
        model: Model,
        config: SimConfig,
        num_envs: usize,
        device: &B::Device,
    ) -> Result<Self> {
        config.validate()?;
        if num_envs == 0 {
            return Err(Error::NoEnvs {
                task: model.name.clone(),
            });
        }
        if model.num_dofs() == 0 {
            return Err(Error::Physics(format!(
                "model `{}` has a fixed base and no joints: nothing moves",
                model.name
            )));
        }
        let n = num_envs;
        let nj = model.num_joints();
        let l = model.links.len();
        let consts = Consts::new(&model, &config, device);
        let zeros = |k: usize| T::<B>::zeros([n, k], device);
        let effort_limit: Vec<f32> = model
            .joints
            .iter()
            .map(|j| (j.effort_limit as f32).min(NO_LIMIT))
            .collect();
        let effort_limit = row::<B>(effort_limit, device).repeat_dim(0, n);
        let root_quat = row::<B>(vec![1.0, 0.0, 0.0, 0.0], device).repeat_dim(0, n);
        Ok(Self {
            num_envs,
            device: device.clone(),
            consts,
            root_pos: zeros(3),
            root_quat,
            root_lin_vel: zeros(3),
            root_ang_vel: zeros(3),
            joint_pos: zeros(nj),
            joint_vel: zeros(nj),
            pos_target: zeros(nj),
            vel_target: zeros(nj),
            effort: zeros(nj),
            stiffness: zeros(nj),
            drive_damping: zeros(nj),
            effort_limit,
            contact_force: Tensor::zeros([n, l, 3], device),
            contact_flag: T::<B>::zeros([n, l], device).greater_elem(0.0),
            applied_torque: zeros(nj),
            model,
            config,
        })
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The settings.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Number of environments.
    pub fn num_envs(&self) -> usize {
        self.num_envs
    }

    /// The device the state lives on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    fn floating(&self) -> bool {
        self.model.base == BaseKind::Floating
    }

    /// Advances every environment by `dt`, in `substeps` sub-steps.
    pub fn step(&mut self) {
        let h = self.config.dt / self.config.substeps as f64;
        for _ in 0..self.config.substeps {
            self.substep(h);
        }
    }

    fn kinematics(&self) -> Kinematics<B> {
        let n = self.num_envs;
        let c = &self.consts;
        let zero = V3::zeros([n, 1], &self.device);
        let (mut rot, mut pos, mut omega, mut vel) = if self.floating() {
            (
                M3::from_quat(&self.root_quat),
                V3::from_columns(&self.root_pos),
                V3::from_columns(&self.root_ang_vel),
                V3::from_columns(&self.root_lin_vel),
            )
        } else {
            (
                M3::identity(n, &self.device),
                zero.clone(),
                zero.clone(),
                zero.clone(),
            )
        };
        let (mut alpha, mut acc) = (zero.clone(), zero);
        let mut axes = Vec::with_capacity(c.levels.len());
        for lv in &c.levels {
            let rot_p = rot.select(&lv.parents); // [N, n]
            let (pos_p, omega_p, vel_p) = (
                pos.select(&lv.parents),
                omega.select(&lv.parents),
                vel.select(&lv.parents),
            );
            let (alpha_p, acc_p) = (alpha.select(&lv.parents), acc.select(&lv.parents));
            let q = self.joint_pos.clone().narrow(1, lv.start - 1, lv.count); // [N, n]
            let qd = self.joint_vel.clone().narrow(1, lv.start - 1, lv.count); // [N, n]
            // Child frame in the parent frame: R_origin (I + sin q K + (1 - cos q) K^2).
            let angle = q.clone() * lv.is_rev.clone();
            let (s, one_minus_c) = (angle.clone().sin(), angle.cos().neg().add_scalar(1.0));
            let mut local = lv.e0.clone();
            for r in 0..3 {
                for col in 0..3 {
                    local.m[r][col] = s.clone() * lv.e1.m[r][col].clone()
                        + one_minus_c.clone() * lv.e2.m[r][col].clone()
                        + lv.e0.m[r][col].clone();
                }
            }
            let rot_c = rot_p.mul(&local);
            let axis = rot_p.mul_v(&lv.axis); // [N, n]
            let slide = q * lv.is_pri.clone();
            let r = rot_p.mul_v(&lv.origin).add(&axis.mul(&slide));
            let w_rel = axis.mul(&(qd.clone() * lv.is_rev.clone()));
            let v_rel = axis.mul(&(qd * lv.is_pri.clone()));
            let omega_c = omega_p.add(&w_rel);
            let vel_c = vel_p.add(&r.rcross(&omega_p)).add(&v_rel);
            let alpha_c = alpha_p.add(&w_rel.rcross(&omega_p));
            let acc_c = acc_p
                .add(&r.rcross(&alpha_p))
                .add(&r.rcross(&omega_p).rcross(&omega_p))
                .add(&v_rel.rcross(&omega_p).scale(2.0));
            rot = M3::cat(vec![rot, rot_c]);
            pos = V3::cat(vec![pos, pos_p.add(&r)]);
            omega = V3::cat(vec![omega, omega_c]);
            vel = V3::cat(vec![vel, vel_c]);
            alpha = V3::cat(vec![alpha, alpha_c]);
            acc = V3::cat(vec![acc, acc_c]);
            axes.push(axis);
        }
        Kinematics {
            rot,
            pos,
            omega,
            vel,
            alpha_bias: alpha,
            acc_bias: acc,
            axis: (!axes.is_empty()).then(|| V3::cat(axes)),
        }
    }

    fn bodies(&self, kin: &Kinematics<B>) -> Bodies<B> {
        let c = &self.consts;
        let com_offset = kin.rot.mul_v(&c.com);
        let principal = kin.rot.mul(&c.principal);
        Bodies {
            com: kin.pos.add(&com_offset),
            omega_p: principal.t_mul_v(&kin.omega),
            com_offset,
            principal,
        }
    }

    /// Linear Jacobian columns of world points `x` `[N, P]`, one per degree of freedom, times
    /// `weight` `[1, P]` (or `[N, P]`); `moves[j]` masks the points that joint `j` moves
    /// (already folded into `weight_moves[j]` when given).
    fn linear_columns(
        &self,
        kin: &Kinematics<B>,
        x: &V3<B>,
        weight: &T<B>,
        weight_moves: &dyn Fn(usize) -> T<B>,
    ) -> Vec<V3<B>> {
        let [n, p] = x.x.dims();
        let mut cols = Vec::with_capacity(self.model.num_dofs());
        if self.floating() {
            let w = T::<B>::zeros([n, p], &self.device) + weight.clone();
            let zero = T::<B>::zeros([n, p], &self.device);
            // v = v_base + w_base x (x - p_base).
            cols.push(V3::new(w.clone(), zero.clone(), zero.clone()));
            cols.push(V3::new(zero.clone(), w.clone(), zero.clone()));
            cols.push(V3::new(zero.clone(), zero.clone(), w.clone()));
            let r = x.sub(&kin.pos.narrow(0, 1)).mul(weight);
            cols.push(V3::new(zero.clone(), r.z.clone().neg(), r.y.clone()));
            cols.push(V3::new(r.z.clone(), zero.clone(), r.x.clone().neg()));
            cols.push(V3::new(r.y.clone().neg(), r.x.clone(), zero));
        }
        if let Some(axes) = &kin.axis {
            for (j, revolute) in self.consts.revolute.iter().enumerate() {
                let a = axes.narrow(j, 1); // [N, 1]
                let mask = weight_moves(j);
                cols.push(if *revolute {
                    let arm = x.sub(&kin.pos.narrow(j + 1, 1));
                    arm.rcross(&a).mul(&mask)
                } else {
                    let ones = T::<B>::ones([n, p], &self.device) * mask;
                    V3::new(
                        ones.clone() * a.x.clone(),
                        ones.clone() * a.y.clone(),
                        ones * a.z.clone(),
                    )
                });
            }
        }
        cols
    }

    /// The rows `S` `[N, 6L]` of every degree of freedom (`sqrt(m) J_v` then `sqrt(D) P^T
    /// J_w` of every link), and the scaled Newton-Euler wrenches `w` `[N, 6L]`: `M = S S^T`,
    /// `C = S w`.
    fn link_rows(&self, kin: &Kinematics<B>, bodies: &Bodies<B>) -> (Vec<T<B>>, T<B>) {
        let c = &self.consts;
        let [n, l] = kin.pos.x.dims();
        let lin = self.linear_columns(kin, &bodies.com, &c.sqrt_mass, &|j| {
            c.moves_links_sqrt_mass[j].clone()
        });
        let zero = T::<B>::zeros([n, l], &self.device);
        let mut rows = Vec::with_capacity(lin.len());
        for (dof, col) in lin.into_iter().enumerate() {
            // Angular part: P^T J_w scaled by sqrt(D).
            let ang = if self.floating() && dof < 3 {
                V3::new(zero.clone(), zero.clone(), zero.clone())
            } else if self.floating() && dof < 6 {
                // J_w = e_m: P^T e_m is row m of P.
                let m = dof - 3;
                let p = &bodies.principal.m[m];
                V3::new(p[0].clone(), p[1].clone(), p[2].clone()).hadamard(&c.sqrt_moments)
            } else {
                let j = dof + self.model.num_joints() - self.model.num_dofs();
                match (&kin.axis, c.revolute[j]) {
                    (Some(axes), true) => bodies
                        .principal
                        .t_mul_v(&axes.narrow(j, 1))
                        .hadamard(&c.sqrt_moments)
                        .mul(&c.moves_links[j]),
                    _ => V3::new(zero.clone(), zero.clone(), zero.clone()),
                }
            };
            let [lx, ly, lz] = col.parts();
            let [ax, ay, az] = ang.parts();
            rows.push(Tensor::cat(vec![lx, ly, lz, ax, ay, az], 1));
        }
        // Newton-Euler wrench of every link with zero generalised acceleration, scaled to
        // match the rows: sqrt(m) (a_com - g) and, in the principal frame,
        // sqrt(D) alpha' + (w' x D w') / sqrt(D).
        let acc_com = kin
            .acc_bias
            .add(&bodies.com_offset.rcross(&kin.alpha_bias))
            .add(&bodies.com_offset.rcross(&kin.omega).rcross(&kin.omega));
        let g = c.gravity;
        let w_lin = V3::new(
            acc_com.x.sub_scalar(g[0]),
            acc_com.y.sub_scalar(g[1]),
            acc_com.z.sub_scalar(g[2]),
        )
        .mul(&c.sqrt_mass);
        let alpha_p = bodies.principal.t_mul_v(&kin.alpha_bias);
        let spin = bodies.omega_p.hadamard(&c.moments);
        let w_ang = alpha_p
            .hadamard(&c.sqrt_moments)
            .add(&bodies.omega_p.cross(&spin).hadamard(&c.inv_sqrt_moments));
        let [a, b, cc] = w_lin.parts();
        let [d, e, f] = w_ang.parts();
        (rows, Tensor::cat(vec![a, b, cc, d, e, f], 1))
    }

    fn substep(&mut self, h: f64) {
        let n = self.num_envs;
        let l = self.model.links.len();
        let nj = self.model.num_joints();
        let nv = self.model.num_dofs();
        let kin = self.kinematics();
        let bodies = self.bodies(&kin);
        let (rows, wrench) = self.link_rows(&kin, &bodies);
        let contacts = (self.consts.contact_to_link.dims()[0] > 0).then(|| self.contacts(&kin, h));

        // The entries of M + contact terms that the tree couples, and the bias force.
        let parent = &self.consts.dof_parent;
        let mut entries: Vec<Vec<Option<T<B>>>> = vec![vec![None; nv]; nv];
        let dot = |a: &T<B>, b: &T<B>| (a.clone() * b.clone()).sum_dim(1); // [N, 1]
        for i in 0..nv {
            let mut j = Some(i);
            while let Some(jj) = j {
                let mut e = dot(&rows[i], &rows[jj]);
                if let Some(ct) = &contacts {
                    e = e + dot(&ct.rows[i], &ct.rows[jj]);
                }
                entries[i][jj] = Some(e);
                j = parent[jj];
            }
        }
        let bias: Vec<T<B>> = rows.iter().map(|r| dot(r, &wrench)).collect();

        // Joint forces: damping, drives, limits; their implicit part joins the diagonal.
        let mut rhs: Vec<T<B>> = bias.iter().map(|b| b.clone().neg()).collect();
        let mut drive_implicit = None;
        if nj > 0 {
            let off = nv - nj;
            let diagonal: Vec<T<B>> = (off..nv)
                .map(|i| {
                    entries[i][i]
                        .clone()
                        .unwrap_or_else(|| bias[i].zeros_like())
                })
                .collect();
            let f = self.joint_forces(
                h,
                Tensor::cat(bias[off..].to_vec(), 1),
                Tensor::cat(diagonal, 1),
            );
            for j in 0..nj {
                let i = off + j;
                rhs[i] = rhs[i].clone() + f.tau.clone().narrow(1, j, 1);
                entries[i][i] = entries[i][i]
                    .take()
                    .map(|e| e + f.implicit.clone().narrow(1, j, 1));
            }
            drive_implicit = Some((f.drive, f.drive_implicit));
        }
        if let Some(ct) = &contacts {
            for (i, r) in rhs.iter_mut().enumerate() {
                *r = r.clone() + dot(&ct.rows[i], &ct.f0_scaled);
            }
        }

        let qdd_parts = solve_ltdl(entries, rhs, parent);

        // What the implicit forces came to, for reporting.
        if let Some(ct) = contacts {
            let k = ct.f0.dims()[1] / 3;
            // sqrt(A) J qdd, then f = f0 - sqrt(A) (sqrt(A) J qdd).
            let mut scaled_acc = ct.rows[0].clone() * qdd_parts[0].clone();
            for (r, q) in ct.rows.iter().zip(&qdd_parts).skip(1) {
                scaled_acc = scaled_acc + r.clone() * q.clone();
            }
            let force = ct.f0 - ct.sqrt_a.clone() * scaled_acc; // [N, 3K]
            let per_link = force
                .reshape([n * 3, k])
                .matmul(self.consts.contact_to_link.clone()); // [3N, L]
            self.contact_force = per_link.reshape([n, 3, l]).swap_dims(1, 2);
            let touching = ct.sqrt_a.narrow(1, 2 * k, k).greater_elem(0.0).float(); // [N, K]
            self.contact_flag = touching
                .matmul(self.consts.contact_to_link.clone())
                .greater_elem(0.0);
        }
        let qdd = Tensor::cat(qdd_parts, 1); // [N, nv]
        if let Some((drive, a_drive)) = drive_implicit {
            self.applied_torque = drive - a_drive * qdd.clone().narrow(1, nv - nj, nj);
        }

        // Semi-implicit Euler.
        let u_dot = qdd.mul_scalar(h);
        if self.floating() {
            self.root_lin_vel = self.root_lin_vel.clone() + u_dot.clone().narrow(1, 0, 3);
            self.root_ang_vel = self.root_ang_vel.clone() + u_dot.clone().narrow(1, 3, 3);
            self.root_pos = self.root_pos.clone() + self.root_lin_vel.clone().mul_scalar(h);
            let turn = quat_exp(self.root_ang_vel.clone(), h);
            self.root_quat = normalize(quat_mul(&turn, &self.root_quat));
        }
        if nj > 0 {
            let mut qd = self.joint_vel.clone() + u_dot.narrow(1, nv - nj, nj);
            if self.config.enforce_velocity_limits {
                let limit = self.consts.velocity_limit.clone();
                qd = qd
                    .min_pair(limit.clone().expand([n, nj]))
                    .max_pair(limit.neg().expand([n, nj]));
            }
            self.joint_pos = self.joint_pos.clone() + qd.clone().mul_scalar(h);
            self.joint_vel = qd;
        }
    }

    /// Ground contact at the current state: per contact point a spring-damper along the
    /// normal (z) and regularised Coulomb friction, both evaluated at the end of the step.
    fn contacts(&self, kin: &Kinematics<B>, h: f64) -> Contacts<B> {
        let c = &self.consts;
        let cc = &self.config.contact;
        let index = &c.contact_link;
        let (rot, pos) = (kin.rot.select(index), kin.pos.select(index)); // [N, K]
        let (omega, vel) = (kin.omega.select(index), kin.vel.select(index));
        // The lowest point of each contact sphere.
        let centre = pos.add(&rot.mul_v(&c.contact_local));
        let x = V3::new(centre.x, centre.y, centre.z - c.contact_radius.clone());
        let v = vel.add(&x.sub(&pos).rcross(&omega));
        let depth = x.z.clone().neg().add_scalar(cc.ground_height); // [N, K]
        // Normal: spring-damper at the end of the step, only while it pushes.
        let (k, d) = (cc.stiffness, cc.damping);
        let normal = depth.clone().mul_scalar(k) - v.z.clone().mul_scalar(d + h * k);
        let active = depth.greater_elem(0.0).float() * normal.clone().greater_elem(0.0).float();
        let normal = normal * active.clone();
        // Friction: viscous below the slip speed, Coulomb above, with the coefficient lagged.
        let slip = (v.x.clone().square() + v.y.clone().square())
            .sqrt()
            .clamp_min(cc.slip_velocity);
        let b = normal.clone().mul_scalar(cc.friction) / slip; // [N, K]
        // A = h b (tangential), h (d + h k) (normal); f0 / sqrt(A) without dividing by zero.
        let sqrt_t = b.clone().mul_scalar(h).sqrt();
        let sqrt_n = active.mul_scalar((h * (d + h * k)).sqrt());
        let scaled_t = (b.clone() / h).sqrt().neg(); // f0_t / sqrt(A_t) = -sqrt(b / h) v_t
        let f0 = Tensor::cat(
            vec![
                v.x.clone() * b.clone().neg(),
                v.y.clone() * b.neg(),
                normal.clone(),
            ],
            1,
        );
        let f0_scaled = Tensor::cat(
            vec![
                v.x.clone() * scaled_t.clone(),
                v.y.clone() * scaled_t,
                normal / sqrt_n.clone().clamp_min(1e-12),
            ],
            1,
        );
        let cols = self.linear_columns(
            kin,
            &x,
            &T::<B>::ones([1, x.x.dims()[1]], &self.device),
            &|j| c.moves_points[j].clone(),
        );
        let rows = cols
            .into_iter()
            .map(|col| {
                Tensor::cat(
                    vec![
                        col.x * sqrt_t.clone(),
                        col.y * sqrt_t.clone(),
                        col.z * sqrt_n.clone(),
                    ],
                    1,
                )
            })
            .collect();
        Contacts {
            rows,
            f0,
            f0_scaled,
            sqrt_a: Tensor::cat(vec![sqrt_t.clone(), sqrt_t, sqrt_n], 1),
        }
    }

    /// Joint torques `f0` `[N, nj]`, their implicit part `A` `[N, nj]`, and the drive's own
    /// torque with its implicit part (for reporting what it applied). `bias` and `diagonal`
    /// are the joints' entries of `C` and of the mass matrix's diagonal `[N, nj]`.
    fn joint_forces(&self, h: f64, bias: Tensor<B, 2>, diagonal: Tensor<B, 2>) -> JointForces<B> {
        let c = &self.consts;
        let (q, qd) = (self.joint_pos.clone(), self.joint_vel.clone());
        // PD drive at the end of the step: kp (q* - q - h qd) + kd (qd* - qd) + tau_ff.
        let command = self.stiffness.clone()
            * (self.pos_target.clone() - q.clone() - qd.clone().mul_scalar(h))
            + self.drive_damping.clone() * (self.vel_target.clone() - qd.clone())
            + self.effort.clone();
        let limit = self.effort_limit.clone();
        let saturated = command.clone().abs().greater(limit.clone());
        let drive = command.min_pair(limit.clone()).max_pair(limit.neg());
        let a_drive = (self.drive_damping.clone().mul_scalar(h)
            + self.stiffness.clone().mul_scalar(h * h))
        .mask_fill(saturated, 0.0);
        // Viscous joint damping and rotor inertia.
        let mut tau = drive.clone() - c.damping.clone() * qd.clone();
        let mut a = a_drive.clone() + c.armature.clone() + c.damping.clone().mul_scalar(h);
        // Joint limits: a stiff spring-damper past either end, at the end of the step. It acts
        // where the joint would end the step past the limit: the prediction takes the joint's
        // own acceleration from the other forces (the diagonal of M, ignoring coupling), so
        // that a joint held at its limit by a torque stays held instead of being let go every
        // other step.
        let (kl, dl) = (self.config.limit_stiffness, self.config.limit_damping);
        if kl > 0.0 || dl > 0.0 {
            let free_acc = (tau.clone() - bias) / (diagonal + a.clone());
            let next = q.clone() + (qd.clone() + free_acc.mul_scalar(h)).mul_scalar(h);
            let push = |end: Tensor<B, 2>| {
                (q.clone() - end).mul_scalar(-kl) - qd.clone().mul_scalar(h * kl + dl)
            };
            let upper = push(c.upper.clone());
            let lower = push(c.lower.clone());
            let on_upper = next
                .clone()
                .greater(c.upper.clone().expand(next.dims()))
                .float()
                * c.has_limit.clone();
            let on_lower =
                next.lower(c.lower.clone().expand(q.dims())).float() * c.has_limit.clone();
            tau = tau + upper * on_upper.clone() + lower * on_lower.clone();
            a = a + (on_upper + on_lower).mul_scalar(h * h * kl + h * dl);
        }
        JointForces {
            tau,
            implicit: a,
            drive,
            drive_implicit: a_drive,
        }
    }
}

/// State access: reading, setting for chosen environments, and commands.
impl<B: Backend> Articulation<B> {
    /// Root (base) position `[N, 3]`, world frame.
    pub fn root_pos(&self) -> Tensor<B, 2> {
        self.root_pos.clone()
    }

    /// Root orientation `[N, 4]`, a unit quaternion `(w, x, y, z)` from base to world.
    pub fn root_quat(&self) -> Tensor<B, 2> {
        self.root_quat.clone()
    }

    /// Root linear velocity `[N, 3]` (of the base origin), world frame.
    pub fn root_lin_vel_w(&self) -> Tensor<B, 2> {
        self.root_lin_vel.clone()
    }

    /// Root angular velocity `[N, 3]`, world frame.
    pub fn root_ang_vel_w(&self) -> Tensor<B, 2> {
        self.root_ang_vel.clone()
    }

    /// Root linear velocity `[N, 3]` in the base frame.
    pub fn root_lin_vel_b(&self) -> T<B> {
        quat_rotate_inverse(&self.root_quat, &self.root_lin_vel)
    }

    /// Root angular velocity `[N, 3]` in the base frame.
    pub fn root_ang_vel_b(&self) -> T<B> {
        quat_rotate_inverse(&self.root_quat, &self.root_ang_vel)
    }

    /// The unit gravity direction `[N, 3]` seen from the base frame (`(0, 0, -1)` upright).
    pub fn projected_gravity_b(&self) -> T<B> {
        let down = row::<B>(vec![0.0, 0.0, -1.0], &self.device).repeat_dim(0, self.num_envs);
        quat_rotate_inverse(&self.root_quat, &down)
    }

    /// Joint positions `[N, nj]` (rad or m).
    pub fn joint_pos(&self) -> Tensor<B, 2> {
        self.joint_pos.clone()
    }

    /// Joint velocities `[N, nj]`.
    pub fn joint_vel(&self) -> Tensor<B, 2> {
        self.joint_vel.clone()
    }

    /// Torque (or force) the drives applied in the last sub-step `[N, nj]`, after the torque
    /// limit and including their implicit part; joint damping and limits not included.
    pub fn applied_torque(&self) -> Tensor<B, 2> {
        self.applied_torque.clone()
    }

    /// Net ground-contact force on every link in the last sub-step `[N, L, 3]`, world frame
    /// (zero for links without collision shapes).
    pub fn contact_forces(&self) -> Tensor<B, 3> {
        self.contact_force.clone()
    }

    /// Whether any contact point of a link pressed on the ground in the last sub-step `[N, L]`.
    pub fn contact_flags(&self) -> Tensor<B, 2, Bool> {
        self.contact_flag.clone()
    }

    /// Link frame origins `[N, L, 3]` and rotations `[N, L, 3, 3]` (link to world).
    pub fn link_poses(&self) -> (Tensor<B, 3>, Tensor<B, 4>) {
        let kin = self.kinematics();
        let rows = kin.rot.m.map(|r| Tensor::stack::<3>(r.to_vec(), 2)); // [N, L, 3] each
        (stack(&kin.pos), Tensor::stack(rows.to_vec(), 2))
    }

    /// Link origin linear velocities and angular velocities `[N, L, 3]`, world frame.
    pub fn link_velocities(&self) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let kin = self.kinematics();
        (stack(&kin.vel), stack(&kin.omega))
    }

    /// World positions `[N, K, 3]` of the contact points' centres, in the order of
    /// [`Model::contact_points`].
    pub fn contact_point_positions(&self) -> Tensor<B, 3> {
        let kin = self.kinematics();
        let index = &self.consts.contact_link;
        let centre = kin
            .pos
            .select(index)
            .add(&kin.rot.select(index).mul_v(&self.consts.contact_local));
        stack(&centre)
    }

    /// Kinetic and potential energy `[N]` (potential zero at world height 0).
    pub fn energy(&self) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let c = &self.consts;
        let kin = self.kinematics();
        let bodies = self.bodies(&kin);
        let v_com = kin.vel.add(&bodies.com_offset.rcross(&kin.omega));
        let kinetic = (v_com.dot(&v_com) * c.mass.clone()
            + bodies.omega_p.dot(&bodies.omega_p.hadamard(&c.moments)))
        .sum_dim(1)
        .mul_scalar(0.5);
        let g = c.gravity;
        let height = bodies.com.x.clone().mul_scalar(g[0])
            + bodies.com.y.clone().mul_scalar(g[1])
            + bodies.com.z.clone().mul_scalar(g[2]);
        let potential = (height * c.mass.clone()).sum_dim(1).neg();
        (
            kinetic.reshape([self.num_envs]),
            potential.reshape([self.num_envs]),
        )
    }

    /// Total linear momentum and angular momentum about the world origin `[N, 3]`.
    pub fn momentum(&self) -> (T<B>, T<B>) {
        let c = &self.consts;
        let kin = self.kinematics();
        let bodies = self.bodies(&kin);
        let p = kin
            .vel
            .add(&bodies.com_offset.rcross(&kin.omega))
            .mul(&c.mass);
        let spin = bodies.principal.mul_v(&bodies.omega_p.hadamard(&c.moments));
        let angular = bodies.com.cross(&p).add(&spin);
        let total = |v: &V3<B>| {
            V3::new(
                v.x.clone().sum_dim(1),
                v.y.clone().sum_dim(1),
                v.z.clone().sum_dim(1),
            )
            .to_columns()
        };
        (total(&p), total(&angular))
    }

    fn check(&self, what: &str, t: &Tensor<B, 2>, cols: usize, rows: usize) -> Result<()> {
        Ok(check_shape(what, t.dims(), [rows, cols])?)
    }

    /// Sets the root state of the environments `env_ids` (rows `[M, ..]` in that order):
    /// position `[M, 3]`, orientation `[M, 4]` (normalised here), linear and angular
    /// velocity `[M, 3]` in the world frame.
    ///
    /// # Errors
    /// A fixed-base model, a shape that does not fit, an id out of range or given twice.
    pub fn set_root_state(
        &mut self,
        env_ids: &[usize],
        pos: Tensor<B, 2>,
        quat: Tensor<B, 2>,
        lin_vel: Tensor<B, 2>,
        ang_vel: Tensor<B, 2>,
    ) -> Result<()> {
        if !self.floating() {
            return Err(Error::Physics(format!(
                "model `{}` has a fixed base: its root state cannot be set",
                self.model.name
            )));
        }
        let m = env_ids.len();
        self.check("root position", &pos, 3, m)?;
        self.check("root orientation", &quat, 4, m)?;
        self.check("root linear velocity", &lin_vel, 3, m)?;
        self.check("root angular velocity", &ang_vel, 3, m)?;
        let n = self.num_envs;
        let rows = Tensor::cat(vec![pos, normalize(quat), lin_vel, ang_vel], 1); // [M, 13]
        let Some((mask, full)) = scatter_rows(env_ids, rows.to_device(&self.device), n)? else {
            return Ok(());
        };
        self.set_root_state_where(mask, full);
        Ok(())
    }

    /// Sets the root state `[N, 13]` (position, unit quaternion, linear and angular velocity,
    /// world frame) where `mask` `[N]` is true, on the device: for resets inside a step.
    pub fn set_root_state_where(&mut self, mask: Tensor<B, 1, Bool>, state: Tensor<B, 2>) {
        let n = self.num_envs;
        let pick = |old: Tensor<B, 2>, start: usize, k: usize| {
            let mask = mask.clone().unsqueeze_dim::<2>(1).expand([n, k]);
            old.mask_where(mask, state.clone().narrow(1, start, k))
        };
        self.root_pos = pick(self.root_pos.clone(), 0, 3);
        self.root_quat = pick(self.root_quat.clone(), 3, 4);
        self.root_lin_vel = pick(self.root_lin_vel.clone(), 7, 3);
        self.root_ang_vel = pick(self.root_ang_vel.clone(), 10, 3);
    }

    /// Sets joint positions and velocities `[M, nj]` of the environments `env_ids`.
    ///
    /// # Errors
    /// A shape that does not fit, an id out of range or given twice.
    pub fn set_joint_state(
        &mut self,
        env_ids: &[usize],
        pos: Tensor<B, 2>,
        vel: Tensor<B, 2>,
    ) -> Result<()> {
        let (m, nj) = (env_ids.len(), self.model.num_joints());
        self.check("joint positions", &pos, nj, m)?;
        self.check("joint velocities", &vel, nj, m)?;
        let rows = Tensor::cat(vec![pos, vel], 1).to_device(&self.device); // [M, 2 nj]
        let Some((mask, full)) = scatter_rows(env_ids, rows, self.num_envs)? else {
            return Ok(());
        };
        self.set_joint_state_where(mask, full.clone().narrow(1, 0, nj), full.narrow(1, nj, nj));
        Ok(())
    }

    /// Sets joint positions and velocities `[N, nj]` where `mask` `[N]` is true, on the device.
    pub fn set_joint_state_where(
        &mut self,
        mask: Tensor<B, 1, Bool>,
        pos: Tensor<B, 2>,
        vel: Tensor<B, 2>,
    ) {
        let nj = self.model.num_joints();
        let mask = mask.unsqueeze_dim::<2>(1).expand([self.num_envs, nj]);
        self.joint_pos = self.joint_pos.clone().mask_where(mask.clone(), pos);
        self.joint_vel = self.joint_vel.clone().mask_where(mask, vel);
    }

    fn set_command(&mut self, what: &str, value: Tensor<B, 2>) -> Result<Tensor<B, 2>> {
        self.check(what, &value, self.model.num_joints(), self.num_envs)?;
        Ok(value.to_device(&self.device))
    }

    /// Joint position targets of the PD drives `[N, nj]`.
    ///
    /// # Errors
    /// A shape that does not fit.
    pub fn set_joint_position_target(&mut self, target: Tensor<B, 2>) -> Result<()> {
        self.pos_target = self.set_command("joint position targets", target)?;
        Ok(())
    }

    /// Joint velocity targets of the PD drives `[N, nj]`.
    ///
    /// # Errors
    /// A shape that does not fit.
    pub fn set_joint_velocity_target(&mut self, target: Tensor<B, 2>) -> Result<()> {
        self.vel_target = self.set_command("joint velocity targets", target)?;
        Ok(())
    }

    /// Feed-forward joint torques `[N, nj]`, added to the PD drive's before the torque limit
    /// (with zero gains this is plain torque control).
    ///
    /// # Errors
    /// A shape that does not fit.
    pub fn set_joint_effort(&mut self, effort: Tensor<B, 2>) -> Result<()> {
        self.effort = self.set_command("joint efforts", effort)?;
        Ok(())
    }

    /// PD gains `[N, nj]`: `tau = kp (q* - q) + kd (qd* - qd) + tau_ff`, clipped to the torque
    /// limit, evaluated at every sub-step and integrated implicitly below the limit.
    ///
    /// # Errors
    /// A shape that does not fit.
    pub fn set_drive_gains(
        &mut self,
        stiffness: Tensor<B, 2>,
        damping: Tensor<B, 2>,
    ) -> Result<()> {
        let stiffness = self.set_command("drive stiffness", stiffness)?;
        self.drive_damping = self.set_command("drive damping", damping)?;
        self.stiffness = stiffness;
        Ok(())
    }

    /// Torque limits of the drives `[N, nj]` (the model's effort limits by default).
    ///
    /// # Errors
    /// A shape that does not fit.
    pub fn set_effort_limit(&mut self, limit: Tensor<B, 2>) -> Result<()> {
        self.effort_limit = self.set_command("effort limits", limit)?;
        Ok(())
    }
}

/// `[N, K, 3]` from the components.
fn stack<B: Backend>(v: &V3<B>) -> Tensor<B, 3> {
    Tensor::stack(v.parts().to_vec(), 2)
}
