//! [`Articulation`]: `N` copies of a [`Model`] stepped together as tensor ops.
//!
//! One sub-step of length `h`:
//! 1. Forward kinematics, one depth level of the tree at a time (all links of a level in one
//!    batch): link rotations, positions, velocities, and the accelerations that the current
//!    velocities alone produce (the velocity-product, or "bias", terms).
//! 2. Link Jacobians `J_v` (of the centres of mass) and `J_w`, in the world frame, for all
//!    links at once. The mass matrix is `M = sum_l m_l J_v^T J_v + J_w^T I_l J_w` and the bias
//!    force `C = sum_l J_v^T m_l (a_l - g) + J_w^T (I_l alpha_l + w_l x I_l w_l)` (Newton-Euler
//!    of every link pulled back through its Jacobian).
//! 3. Forces of the form `f = f0 - A qdd`: every spring and damper (joint damping, PD drives
//!    below their torque limit, joint limits, ground contact with friction) is evaluated at
//!    the end of the step, `x + h v' , v'` with `v' = v + h qdd`, and linearised; the `A`
//!    terms join the mass matrix. This is implicit Euler in the stiff terms, stable for any
//!    gain, while gravity and Coriolis forces stay explicit.
//! 4. `(M + A) qdd = f0 - C` is solved by a batched LDL^T factorisation.
//! 5. Semi-implicit Euler: `v' = v + h qdd`, then `q' = q + h v'` (the base orientation by
//!    the exponential map of its angular velocity).
//!
//! Generalised velocities are `[v, w, qd]` for a floating base (the base origin's linear and
//! angular velocity in the world frame, then the joint speeds) and `[qd]` for a fixed one.
//! Nothing is read back to the host inside a step.

use burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};

use super::config::SimConfig;
use super::model::{BaseKind, JointKind, Model};
use super::ops::{
    comp, cross, dot, mat_mul, mat_mul_t, mat_vec, normalize, quat_exp, quat_mul,
    quat_rotate_inverse, quat_to_mat, skew,
};
use super::solve::solve_spd;
use crate::common::{check_shape, scatter_rows};
use crate::{Error, Result};

/// A joint limit that stands for "none", finite so that the arithmetic stays finite.
const NO_LIMIT: f32 = 1e6;

/// The links of one depth of the tree, side by side: links `start..start + count`, moved by
/// joints `start - 1..start - 1 + count`.
#[derive(Debug, Clone)]
struct Level<B: Backend> {
    start: usize,
    count: usize,
    /// Parent link of each, `[n]`.
    parents: Tensor<B, 1, Int>,
    /// Joint origin rotation `[1, n, 3, 3]` and translation `[1, n, 3]` in the parent frame.
    origin_rot: Tensor<B, 4>,
    origin_xyz: Tensor<B, 3>,
    /// Joint axis in the joint frame `[1, n, 3]`, its skew matrix `K` and `K^2` `[1, n, 3, 3]`.
    axis: Tensor<B, 3>,
    k: Tensor<B, 4>,
    k2: Tensor<B, 4>,
    /// 1 for revolute (prismatic) joints, else 0, `[1, n]`.
    is_rev: Tensor<B, 2>,
    is_pri: Tensor<B, 2>,
}

/// Joint-space forces of one sub-step `[N, nj]`.
struct JointForces<B: Backend> {
    /// Every joint force (drive, damping, limits) at the start of the step, `f0`.
    tau: Tensor<B, 2>,
    /// Their implicit part `A` (added to the mass matrix's diagonal).
    implicit: Tensor<B, 2>,
    /// The drive's own torque after the limit, and its implicit part.
    drive: Tensor<B, 2>,
    drive_implicit: Tensor<B, 2>,
}

/// Tensors built once from the model.
#[derive(Debug, Clone)]
struct Consts<B: Backend> {
    levels: Vec<Level<B>>,
    /// Link masses `[1, L, 1]`, their square roots `[1, L, 1, 1]`.
    mass: Tensor<B, 3>,
    sqrt_mass: Tensor<B, 4>,
    /// Centres of mass `[1, L, 3]` and inertias about them `[1, L, 3, 3]`, link frame.
    com: Tensor<B, 3>,
    inertia: Tensor<B, 4>,
    /// 1 where joint `k` moves link `l`, `[1, L, nj, 1]`.
    link_moves: Tensor<B, 4>,
    /// 1 for revolute (prismatic) joints `[1, 1, nj, 1]`.
    joint_is_rev: Tensor<B, 4>,
    joint_is_pri: Tensor<B, 4>,
    /// Contact points: link `[K]`, centre in the link frame `[1, K, 3]`, radius `[1, K, 1]`,
    /// which joints move them `[1, K, nj, 1]`, and the one-hot map to links `[K, L]`.
    contact_link: Tensor<B, 1, Int>,
    contact_local: Tensor<B, 3>,
    contact_radius: Tensor<B, 3>,
    contact_moves: Tensor<B, 4>,
    contact_to_link: Tensor<B, 2>,
    /// Joint parameters `[1, nj]`.
    armature: Tensor<B, 2>,
    damping: Tensor<B, 2>,
    lower: Tensor<B, 2>,
    upper: Tensor<B, 2>,
    has_limit: Tensor<B, 2>,
    velocity_limit: Tensor<B, 2>,
    /// Gravity `[1, 1, 3]`.
    gravity: Tensor<B, 3>,
}

/// The kinematics of every link at the current state, world frame.
#[derive(Debug, Clone)]
struct Kinematics<B: Backend> {
    /// Link rotations `[N, L, 3, 3]` and origins `[N, L, 3]`.
    rot: Tensor<B, 4>,
    pos: Tensor<B, 3>,
    /// Angular velocities and origin velocities `[N, L, 3]`.
    omega: Tensor<B, 3>,
    vel: Tensor<B, 3>,
    /// Angular and origin accelerations with zero generalised acceleration `[N, L, 3]`.
    alpha_bias: Tensor<B, 3>,
    acc_bias: Tensor<B, 3>,
    /// World joint axes `[N, nj, 3]` (empty when there are no joints).
    axis: Option<Tensor<B, 3>>,
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
    root_pos: Tensor<B, 2>,
    root_quat: Tensor<B, 2>,
    root_lin_vel: Tensor<B, 2>,
    root_ang_vel: Tensor<B, 2>,
    joint_pos: Tensor<B, 2>,
    joint_vel: Tensor<B, 2>,
    pos_target: Tensor<B, 2>,
    vel_target: Tensor<B, 2>,
    effort: Tensor<B, 2>,
    stiffness: Tensor<B, 2>,
    drive_damping: Tensor<B, 2>,
    effort_limit: Tensor<B, 2>,
    contact_force: Tensor<B, 3>,
    contact_flag: Tensor<B, 2, Bool>,
    applied_torque: Tensor<B, 2>,
}

fn tensor<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn skew_host(a: [f64; 3]) -> [[f64; 3]; 3] {
    [[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]]
}

fn flat(m: &[[f64; 3]; 3]) -> impl Iterator<Item = f32> + '_ {
    m.iter().flatten().map(|&v| v as f32)
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
            let k: Vec<[[f64; 3]; 3]> = joints.iter().map(|j| skew_host(j.axis)).collect();
            let k2: Vec<[[f64; 3]; 3]> = k.iter().map(|k| super::model::mat_mul(k, k)).collect();
            let kind = |want: JointKind| -> Vec<f32> {
                joints
                    .iter()
                    .map(|j| f32::from(u8::from(j.kind == want)))
                    .collect()
            };
            levels.push(Level {
                start,
                count,
                parents: Tensor::from_data(TensorData::new(parents, [count]), device),
                origin_rot: tensor(
                    joints
                        .iter()
                        .flat_map(|j| flat(&j.origin.rotation))
                        .collect(),
                    [1, count, 3, 3],
                    device,
                ),
                origin_xyz: tensor(
                    joints
                        .iter()
                        .flat_map(|j| j.origin.xyz.map(|v| v as f32))
                        .collect(),
                    [1, count, 3],
                    device,
                ),
                axis: tensor(
                    joints
                        .iter()
                        .flat_map(|j| j.axis.map(|v| v as f32))
                        .collect(),
                    [1, count, 3],
                    device,
                ),
                k: tensor(k.iter().flat_map(flat).collect(), [1, count, 3, 3], device),
                k2: tensor(k2.iter().flat_map(flat).collect(), [1, count, 3, 3], device),
                is_rev: tensor(kind(JointKind::Revolute), [1, count], device),
                is_pri: tensor(kind(JointKind::Prismatic), [1, count], device),
            });
            start += count;
        }
        let moves = model.joint_moves_link();
        let points = model.contact_points();
        let kp = points.len();
        let joint_kind = |want: JointKind| -> Vec<f32> {
            model
                .joints
                .iter()
                .map(|j| f32::from(u8::from(j.kind == want)))
                .collect()
        };
        let joint_param = |f: &dyn Fn(&super::model::Joint) -> f32| -> Tensor<B, 2> {
            tensor(model.joints.iter().map(f).collect(), [1, nj], device)
        };
        let mut to_link = vec![0.0f32; kp * l];
        for (k, p) in points.iter().enumerate() {
            to_link[k * l + p.link] = 1.0;
        }
        let moves_of = |links: &mut dyn Iterator<Item = usize>| -> Vec<f32> {
            links
                .flat_map(|i| moves[i].iter().map(|&m| f32::from(u8::from(m))))
                .collect()
        };
        Self {
            levels,
            mass: tensor(
                model.links.iter().map(|k| k.mass as f32).collect(),
                [1, l, 1],
                device,
            ),
            sqrt_mass: tensor(
                model.links.iter().map(|k| k.mass.sqrt() as f32).collect(),
                [1, l, 1, 1],
                device,
            ),
            com: tensor(
                model
                    .links
                    .iter()
                    .flat_map(|k| k.com.map(|v| v as f32))
                    .collect(),
                [1, l, 3],
                device,
            ),
            inertia: tensor(
                model.links.iter().flat_map(|k| flat(&k.inertia)).collect(),
                [1, l, 3, 3],
                device,
            ),
            link_moves: tensor(moves_of(&mut (0..l)), [1, l, nj, 1], device),
            joint_is_rev: tensor(joint_kind(JointKind::Revolute), [1, 1, nj, 1], device),
            joint_is_pri: tensor(joint_kind(JointKind::Prismatic), [1, 1, nj, 1], device),
            contact_link: Tensor::from_data(
                TensorData::new(points.iter().map(|p| p.link as i64).collect(), [kp]),
                device,
            ),
            contact_local: tensor(
                points
                    .iter()
                    .flat_map(|p| p.position.map(|v| v as f32))
                    .collect(),
                [1, kp, 3],
                device,
            ),
            contact_radius: tensor(
                points.iter().map(|p| p.radius as f32).collect(),
                [1, kp, 1],
                device,
            ),
            contact_moves: tensor(
                moves_of(&mut points.iter().map(|p| p.link)),
                [1, kp, nj, 1],
                device,
            ),
            contact_to_link: tensor(to_link, [kp, l], device),
            armature: joint_param(&|j| j.armature as f32),
            damping: joint_param(&|j| j.damping as f32),
            lower: joint_param(&|j| j.limits.map_or(-NO_LIMIT, |(lo, _)| lo as f32)),
            upper: joint_param(&|j| j.limits.map_or(NO_LIMIT, |(_, hi)| hi as f32)),
            has_limit: joint_param(&|j| f32::from(u8::from(j.limits.is_some()))),
            velocity_limit: joint_param(&|j| (j.velocity_limit as f32).min(NO_LIMIT)),
            gravity: tensor(config.gravity.map(|g| g as f32).to_vec(), [1, 1, 3], device),
        }
    }
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
        let zeros = |k: usize| Tensor::<B, 2>::zeros([n, k], device);
        let effort_limit: Vec<f32> = model
            .joints
            .iter()
            .map(|j| (j.effort_limit as f32).min(NO_LIMIT))
            .collect();
        let effort_limit = tensor::<B, 2>(effort_limit, [1, nj], device).repeat_dim(0, n);
        let root_quat =
            Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 0.0], [1, 4]), device)
                .repeat_dim(0, n);
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
            contact_flag: Tensor::<B, 2>::zeros([n, l], device).greater_elem(0.0),
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
        let zero3 = Tensor::<B, 3>::zeros([n, 1, 3], &self.device);
        let eye = Tensor::<B, 2>::eye(3, &self.device).reshape([1, 1, 3, 3]);
        let (mut rot, mut pos, mut omega, mut vel) = if self.floating() {
            (
                quat_to_mat(&self.root_quat),
                self.root_pos.clone().unsqueeze_dim(1),
                self.root_ang_vel.clone().unsqueeze_dim(1),
                self.root_lin_vel.clone().unsqueeze_dim(1),
            )
        } else {
            (
                eye.clone().repeat_dim(0, n),
                zero3.clone(),
                zero3.clone(),
                zero3.clone(),
            )
        };
        let (mut alpha, mut acc) = (zero3.clone(), zero3);
        let mut axes = Vec::with_capacity(c.levels.len());
        for lv in &c.levels {
            let take = |t: &Tensor<B, 3>| t.clone().select(1, lv.parents.clone()); // [N, n, 3]
            let rot_p = rot.clone().select(1, lv.parents.clone()); // [N, n, 3, 3]
            let (pos_p, omega_p, vel_p) = (take(&pos), take(&omega), take(&vel));
            let (alpha_p, acc_p) = (take(&alpha), take(&acc));
            let q = self.joint_pos.clone().narrow(1, lv.start - 1, lv.count); // [N, n]
            let qd = self.joint_vel.clone().narrow(1, lv.start - 1, lv.count); // [N, n]
            let rot_j = mat_mul(rot_p.clone(), lv.origin_rot.clone()); // [N, n, 3, 3]
            let axis = mat_vec(rot_j.clone(), lv.axis.clone()); // [N, n, 3]
            // Rodrigues: R(q) = I + sin q K + (1 - cos q) K^2 (identity for prismatic joints).
            let angle = (q.clone() * lv.is_rev.clone()).reshape([n, lv.count, 1, 1]);
            let rq = eye.clone()
                + lv.k.clone() * angle.clone().sin()
                + lv.k2.clone() * (angle.cos().neg().add_scalar(1.0));
            let rot_c = mat_mul(rot_j, rq);
            let slide = (q * lv.is_pri.clone()).unsqueeze_dim::<3>(2); // [N, n, 1]
            let r = mat_vec(rot_p, lv.origin_xyz.clone()) + axis.clone() * slide; // [N, n, 3]
            let w_rel = axis.clone() * (qd.clone() * lv.is_rev.clone()).unsqueeze_dim::<3>(2);
            let v_rel = axis.clone() * (qd * lv.is_pri.clone()).unsqueeze_dim::<3>(2);
            let omega_c = omega_p.clone() + w_rel.clone();
            let vel_c = vel_p + cross(&omega_p, &r) + v_rel.clone();
            let alpha_c = alpha_p.clone() + cross(&omega_p, &w_rel);
            let acc_c = acc_p
                + cross(&alpha_p, &r)
                + cross(&omega_p, &cross(&omega_p, &r))
                + cross(&omega_p, &v_rel).mul_scalar(2.0);
            rot = Tensor::cat(vec![rot, rot_c], 1);
            pos = Tensor::cat(vec![pos, pos_p + r], 1);
            omega = Tensor::cat(vec![omega, omega_c], 1);
            vel = Tensor::cat(vec![vel, vel_c], 1);
            alpha = Tensor::cat(vec![alpha, alpha_c], 1);
            acc = Tensor::cat(vec![acc, acc_c], 1);
            axes.push(axis);
        }
        Kinematics {
            rot,
            pos,
            omega,
            vel,
            alpha_bias: alpha,
            acc_bias: acc,
            axis: (!axes.is_empty()).then(|| Tensor::cat(axes, 1)),
        }
    }

    /// Linear Jacobians `[N, P, 3, nv]` of world points `x` `[N, P, 3]`, each fixed on a link
    /// moved by the joints `moves` `[1, P, nj, 1]`.
    fn point_jacobian(
        &self,
        kin: &Kinematics<B>,
        x: &Tensor<B, 3>,
        moves: &Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        let [n, p, _] = x.dims();
        let mut parts = Vec::with_capacity(3);
        if self.floating() {
            // v = v_base + w_base x (x - p_base).
            let r = x.clone() - kin.pos.clone().narrow(1, 0, 1); // [N, P, 3]
            parts.push(
                Tensor::<B, 2>::eye(3, &self.device)
                    .reshape([1, 1, 3, 3])
                    .expand([n, p, 3, 3]),
            );
            parts.push(skew(&r.neg()));
        }
        if let Some(axis) = &kin.axis {
            let nj = self.model.num_joints();
            let axis = axis.clone().unsqueeze_dim::<4>(1); // [N, 1, nj, 3]
            let origin = kin.pos.clone().narrow(1, 1, nj).unsqueeze_dim::<4>(1); // [N, 1, nj, 3]
            let arm = x.clone().unsqueeze_dim::<4>(2) - origin; // [N, P, nj, 3]
            let col = cross(&axis, &arm) * self.consts.joint_is_rev.clone()
                + axis * self.consts.joint_is_pri.clone();
            parts.push((col * moves.clone()).swap_dims(2, 3)); // [N, P, 3, nj]
        }
        Tensor::cat(parts, 3)
    }

    /// Angular Jacobians `[N, L, 3, nv]` of the links.
    fn angular_jacobian(&self, kin: &Kinematics<B>) -> Tensor<B, 4> {
        let n = self.num_envs;
        let l = self.model.links.len();
        let mut parts = Vec::with_capacity(3);
        if self.floating() {
            parts.push(Tensor::zeros([n, l, 3, 3], &self.device));
            parts.push(
                Tensor::<B, 2>::eye(3, &self.device)
                    .reshape([1, 1, 3, 3])
                    .expand([n, l, 3, 3]),
            );
        }
        if let Some(axis) = &kin.axis {
            let col = axis.clone().unsqueeze_dim::<4>(1)
                * self.consts.joint_is_rev.clone()
                * self.consts.link_moves.clone(); // [N, L, nj, 3]
            parts.push(col.swap_dims(2, 3));
        }
        Tensor::cat(parts, 3)
    }

    /// Pads a joint-space `[N, nj]` tensor to the generalised velocity's size.
    fn pad_joint(&self, t: Tensor<B, 2>) -> Tensor<B, 2> {
        if self.floating() {
            Tensor::cat(vec![Tensor::zeros([self.num_envs, 6], &self.device), t], 1)
        } else {
            t
        }
    }

    fn substep(&mut self, h: f64) {
        let n = self.num_envs;
        let l = self.model.links.len();
        let nj = self.model.num_joints();
        let nv = self.model.num_dofs();
        let c = self.consts.clone();
        let kin = self.kinematics();

        // Link centres of mass, world inertias, and the Newton-Euler bias wrench of each link.
        let rc = mat_vec(kin.rot.clone(), c.com.clone()); // [N, L, 3]
        let com = kin.pos.clone() + rc.clone();
        let inertia = mat_mul_t(mat_mul(kin.rot.clone(), c.inertia.clone()), kin.rot.clone()); // [N, L, 3, 3]
        let acc_com = kin.acc_bias.clone()
            + cross(&kin.alpha_bias, &rc)
            + cross(&kin.omega, &cross(&kin.omega, &rc));
        let f_lin = (acc_com - c.gravity.clone()) * c.mass.clone(); // [N, L, 3]
        let spin = mat_vec(inertia.clone(), kin.omega.clone());
        let f_ang = mat_vec(inertia.clone(), kin.alpha_bias.clone()) + cross(&kin.omega, &spin);

        // Mass matrix and bias force from the link Jacobians.
        let jv = self.point_jacobian(&kin, &com, &c.link_moves); // [N, L, 3, nv]
        let jw = self.angular_jacobian(&kin); // [N, L, 3, nv]
        let jv_m = (jv.clone() * c.sqrt_mass.clone()).reshape([n, l * 3, nv]);
        let iw = (inertia.unsqueeze_dim::<5>(4) * jw.clone().unsqueeze_dim::<5>(2))
            .sum_dim(3)
            .reshape([n, l * 3, nv]); // I J_w
        let jw_flat = jw.clone().reshape([n, l * 3, nv]);
        let mut mass =
            jv_m.clone().swap_dims(1, 2).matmul(jv_m) + jw_flat.swap_dims(1, 2).matmul(iw); // [N, nv, nv]
        let bias = (jv * f_lin.unsqueeze_dim::<4>(3) + jw * f_ang.unsqueeze_dim::<4>(3))
            .sum_dims(&[1, 2])
            .reshape([n, nv]); // [N, nv]

        // Joint forces: damping, drives, limits; `a` is their implicit part.
        let (tau, a_joint, drive_implicit) = if nj > 0 {
            let joint_part = |t: Tensor<B, 2>| t.narrow(1, nv - nj, nj);
            let eye = Tensor::<B, 2>::eye(nv, &self.device).unsqueeze_dim::<3>(0);
            let diagonal = (mass.clone() * eye).sum_dim(2).reshape([n, nv]); // [N, nv]
            let f = self.joint_forces(h, joint_part(bias.clone()), joint_part(diagonal));
            (
                self.pad_joint(f.tau),
                self.pad_joint(f.implicit),
                Some((f.drive, f.drive_implicit)),
            )
        } else {
            (
                Tensor::zeros([n, nv], &self.device),
                Tensor::zeros([n, nv], &self.device),
                None,
            )
        };
        let mut rhs = tau - bias;
        let eye = Tensor::<B, 2>::eye(nv, &self.device).unsqueeze_dim::<3>(0); // [1, nv, nv]
        mass = mass + a_joint.unsqueeze_dim::<3>(2) * eye;

        // Ground contact.
        let contact = (c.contact_to_link.dims()[0] > 0).then(|| self.contact_forces_at(&kin, h));
        if let Some((jc, f0, a)) = &contact {
            let k = f0.dims()[1];
            let jc_flat = jc.clone().reshape([n, k * 3, nv]);
            let jc_a = (jc.clone() * a.clone().unsqueeze_dim::<4>(3)).reshape([n, k * 3, nv]);
            mass = mass + jc_a.swap_dims(1, 2).matmul(jc_flat);
            rhs = rhs
                + (jc.clone() * f0.clone().unsqueeze_dim::<4>(3))
                    .sum_dims(&[1, 2])
                    .reshape([n, nv]);
        }

        let qdd = solve_spd(mass, rhs); // [N, nv]

        // What the implicit forces came to, for reporting.
        if let Some((jc, f0, a)) = contact {
            let acc = (jc * qdd.clone().reshape([n, 1, 1, nv]))
                .sum_dim(3)
                .squeeze_dim::<3>(3); // [N, K, 3]
            let force = f0 - a.clone() * acc; // [N, K, 3]
            let k = force.dims()[1];
            let to_link = c.contact_to_link.clone().transpose(); // [L, K]
            let per_link = force
                .swap_dims(1, 2)
                .reshape([n * 3, k])
                .matmul(c.contact_to_link.clone());
            self.contact_force = per_link.reshape([n, 3, l]).swap_dims(1, 2);
            let touching = comp(&a, 2).squeeze_dim::<2>(2).greater_elem(0.0).float(); // [N, K]
            self.contact_flag = touching.matmul(to_link.transpose()).greater_elem(0.0);
        }
        if let Some((drive, a_drive)) = drive_implicit {
            let qdd_j = qdd.clone().narrow(1, nv - nj, nj);
            self.applied_torque = drive - a_drive * qdd_j;
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
                let limit = c.velocity_limit.clone();
                qd = qd
                    .min_pair(limit.clone().expand([n, nj]))
                    .max_pair(limit.neg().expand([n, nj]));
            }
            self.joint_pos = self.joint_pos.clone() + qd.clone().mul_scalar(h);
            self.joint_vel = qd;
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

    /// Contact Jacobians `[N, K, 3, nv]`, forces `f0` `[N, K, 3]` and their implicit part `A`
    /// `[N, K, 3]` (world axes; the ground normal is z).
    fn contact_forces_at(
        &self,
        kin: &Kinematics<B>,
        h: f64,
    ) -> (Tensor<B, 4>, Tensor<B, 3>, Tensor<B, 3>) {
        let c = &self.consts;
        let cc = &self.config.contact;
        let index = c.contact_link.clone();
        let rot = kin.rot.clone().select(1, index.clone()); // [N, K, 3, 3]
        let pos = kin.pos.clone().select(1, index.clone()); // [N, K, 3]
        let omega = kin.omega.clone().select(1, index.clone());
        let vel = kin.vel.clone().select(1, index);
        // The lowest point of each contact sphere.
        let down = Tensor::<B, 3>::from_data(
            TensorData::new(vec![0.0f32, 0.0, -1.0], [1, 1, 3]),
            &self.device,
        );
        let x =
            pos.clone() + mat_vec(rot, c.contact_local.clone()) + down * c.contact_radius.clone(); // [N, K, 3]
        let v = vel + cross(&omega, &(x.clone() - pos)); // [N, K, 3]
        let depth = comp(&x, 2).neg().add_scalar(cc.ground_height); // [N, K, 1]
        let vn = comp(&v, 2);
        let vt = v.narrow(2, 0, 2); // [N, K, 2]
        // Normal: spring-damper at the end of the step, only while it pushes.
        let (k, d) = (cc.stiffness, cc.damping);
        let normal = depth.clone().mul_scalar(k) - vn.mul_scalar(d + h * k);
        let active = depth.greater_elem(0.0).float() * normal.clone().greater_elem(0.0).float();
        let normal = normal * active.clone();
        // Friction: viscous below the slip speed, Coulomb above, with the coefficient lagged.
        let slip = vt
            .clone()
            .square()
            .sum_dim(2)
            .sqrt()
            .clamp_min(cc.slip_velocity);
        let b = normal.clone().mul_scalar(cc.friction) / slip; // [N, K, 1]
        let f0 = Tensor::cat(vec![vt * b.clone().neg(), normal], 2);
        let bh = b.mul_scalar(h);
        let a = Tensor::cat(vec![bh.clone(), bh, active.mul_scalar(h * (d + h * k))], 2);
        let jc = self.point_jacobian(kin, &x, &c.contact_moves);
        (jc, f0, a)
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
    pub fn root_lin_vel_b(&self) -> Tensor<B, 2> {
        quat_rotate_inverse(&self.root_quat, self.root_lin_vel.clone())
    }

    /// Root angular velocity `[N, 3]` in the base frame.
    pub fn root_ang_vel_b(&self) -> Tensor<B, 2> {
        quat_rotate_inverse(&self.root_quat, self.root_ang_vel.clone())
    }

    /// The unit gravity direction `[N, 3]` seen from the base frame (`(0, 0, -1)` upright).
    pub fn projected_gravity_b(&self) -> Tensor<B, 2> {
        let down = Tensor::<B, 2>::from_data(
            TensorData::new(vec![0.0f32, 0.0, -1.0], [1, 3]),
            &self.device,
        )
        .repeat_dim(0, self.num_envs);
        quat_rotate_inverse(&self.root_quat, down)
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
        (kin.pos, kin.rot)
    }

    /// Link origin linear velocities and angular velocities `[N, L, 3]`, world frame.
    pub fn link_velocities(&self) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let kin = self.kinematics();
        (kin.vel, kin.omega)
    }

    /// World positions `[N, K, 3]` of the contact points' centres, in the order of
    /// [`Model::contact_points`].
    pub fn contact_point_positions(&self) -> Tensor<B, 3> {
        let kin = self.kinematics();
        let index = self.consts.contact_link.clone();
        let rot = kin.rot.select(1, index.clone());
        kin.pos.select(1, index) + mat_vec(rot, self.consts.contact_local.clone())
    }

    /// Kinetic and potential energy `[N]` (potential zero at world height 0).
    pub fn energy(&self) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let c = &self.consts;
        let kin = self.kinematics();
        let rc = mat_vec(kin.rot.clone(), c.com.clone());
        let com = kin.pos + rc.clone();
        let v_com = kin.vel + cross(&kin.omega, &rc);
        let inertia = mat_mul_t(mat_mul(kin.rot.clone(), c.inertia.clone()), kin.rot);
        let spin = mat_vec(inertia, kin.omega.clone());
        let kinetic = (dot(v_com.clone(), v_com) * c.mass.clone() + dot(kin.omega, spin))
            .sum_dims(&[1, 2])
            .mul_scalar(0.5);
        let potential = (dot(com, c.gravity.clone()) * c.mass.clone())
            .sum_dims(&[1, 2])
            .neg();
        (
            kinetic.reshape([self.num_envs]),
            potential.reshape([self.num_envs]),
        )
    }

    /// Total linear momentum and angular momentum about the world origin `[N, 3]`.
    pub fn momentum(&self) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let c = &self.consts;
        let kin = self.kinematics();
        let rc = mat_vec(kin.rot.clone(), c.com.clone());
        let com = kin.pos + rc.clone();
        let p = (kin.vel + cross(&kin.omega, &rc)) * c.mass.clone(); // [N, L, 3]
        let inertia = mat_mul_t(mat_mul(kin.rot.clone(), c.inertia.clone()), kin.rot);
        let spin = mat_vec(inertia, kin.omega);
        let angular = (cross(&com, &p) + spin).sum_dim(1).squeeze_dim(1);
        (p.sum_dim(1).squeeze_dim(1), angular)
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
