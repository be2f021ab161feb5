//! [`Articulation`]: `N` copies of a [`Model`] stepped together as tensor ops.
//!
//! One sub-step of length `h`:
//! 1. Forward kinematics, one depth level of the tree at a time (all links of a level in one
//!    batch): link rotations, positions, velocities, and the accelerations that the current
//!    velocities alone produce (the velocity-product, or "bias", terms).
//! 2. The mass matrix by the composite-rigid-body algorithm in the world frame: the spatial
//!    inertia of every link about the base origin, summed over each subtree (one matrix
//!    product with a constant 0/1 subtree matrix per entry), then `H_ij = S_j^T I^c_i S_i`
//!    for every joint `j` on the path of joint `i` (`S` the joints' motion subspaces). The
//!    bias force by Newton-Euler: every link's wrench with zero generalised acceleration
//!    (`m (a - g)`, `I alpha + w x I w`), summed over subtrees alike and projected on `S`.
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
//! Vectors are stored one component per `[N, K]` tensor (`V3`, `M3`, `Sym6`); nothing is read
//! back to the host inside a step.

use burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};

use super::config::SimConfig;
use super::model::{BaseKind, JointKind, Model, principal_axes};
use super::soa::{M3, Sym6, V3, normalize, quat_exp, quat_mul, quat_rotate_inverse, row};
use crate::batch::{check_shape, scatter_rows};
use crate::heightfield::{DeviceHeightField, HeightField};
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
    /// Link masses `[1, L]`.
    mass: T<B>,
    /// Centres of mass in the link frame `[1, L]`.
    com: V3<B>,
    /// Principal axes of the link inertias in the link frame and the principal moments
    /// `[1, L]`.
    principal: M3<B>,
    moments: V3<B>,
    /// `subtree[i][l]` is 1 when link `i` is in the subtree of link `l` (`[L, L]`), and
    /// `joint_moves[j][l]` when joint `j` moves link `l` (`[nj, L]`).
    subtree: T<B>,
    joint_moves: T<B>,
    /// 1 for revolute (prismatic) joints `[1, nj]`.
    joint_is_rev: T<B>,
    joint_is_pri: T<B>,
    /// For every distance `d >= 1` up the tree: the joints that have a joint ancestor that far
    /// up, and those ancestors (index tensors and host lists).
    ancestor_pairs: Vec<(Tensor<B, 1, Int>, Tensor<B, 1, Int>)>,
    ancestor_pair_list: Vec<Vec<(usize, usize)>>,
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

/// Ground contact of one sub-step, per contact point `[N, K]`: the wrench of `f0` about the
/// reference point, the implicit part as a spatial inertia, the arm from the reference point,
/// `f0` itself and the implicit coefficients (tangential, normal).
struct Contacts<B: Backend> {
    torque: V3<B>,
    force: V3<B>,
    inertia: Sym6<B>,
    arm: V3<B>,
    f0: V3<B>,
    a_tangent: T<B>,
    a_normal: T<B>,
    /// The surface normals at the points, where the ground is a height field (`None`: the
    /// plane's z).
    normal: Option<V3<B>>,
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
    /// 1 where a link's contact points pressed on the ground, else 0, `[N, L]`.
    contact_touch: T<B>,
    applied_torque: T<B>,
    /// Link masses, `[1, L]` (the model's) or `[N, L]` once set per environment.
    link_mass: T<B>,
    /// Friction coefficient of every environment's contacts `[N, 1]`.
    friction: T<B>,
    /// The ground as a height field, in place of the plane at `contact.ground_height`.
    terrain: Option<DeviceHeightField<B>>,
    /// The step as one kernel on CubeCL backends: the packed model `[C]` and tree `[T]`
    /// (uploaded once), and what the kernel is compiled for.
    #[cfg(feature = "cube")]
    pub(crate) kernel: Option<(Tensor<B, 1>, Tensor<B, 1>, crate::cube::articulation::Dims)>,
    /// The height field's layout as the kernel reads it `[5]`, uploaded with the field.
    #[cfg(feature = "cube")]
    kernel_field_layout: Option<Tensor<B, 1>>,
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
        // Subtree and joint-moves masks.
        let mut subtree = vec![0.0f32; l * l];
        for (i, row_i) in moves.iter().enumerate() {
            // Every link is in its own subtree and the root's.
            subtree[i * l + i] = 1.0;
            subtree[i * l] = 1.0;
            // Link i is in the subtree of link j + 1 when joint j moves it.
            for (j, m) in row_i.iter().enumerate() {
                if *m {
                    subtree[i * l + j + 1] = 1.0;
                }
            }
        }
        let mut joint_moves = vec![0.0f32; nj * l];
        for (i, row_i) in moves.iter().enumerate() {
            for (j, m) in row_i.iter().enumerate() {
                joint_moves[j * l + i] = flag(*m);
            }
        }
        // Joint ancestors at every distance.
        let joint_parent = |j: usize| {
            let p = model.joints[j].parent;
            (p > 0).then(|| p - 1)
        };
        let mut ancestor_pair_list: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut frontier: Vec<(usize, usize)> = (0..nj).map(|j| (j, j)).collect();
        loop {
            frontier = frontier
                .into_iter()
                .filter_map(|(child, at)| joint_parent(at).map(|p| (child, p)))
                .collect();
            if frontier.is_empty() {
                break;
            }
            ancestor_pair_list.push(frontier.clone());
        }
        let int_index = |v: Vec<i64>| {
            let k = v.len();
            Tensor::<B, 1, Int>::from_data(TensorData::new(v, [k]), device)
        };
        let ancestor_pairs = ancestor_pair_list
            .iter()
            .map(|pairs| {
                (
                    int_index(pairs.iter().map(|p| p.0 as i64).collect()),
                    int_index(pairs.iter().map(|p| p.1 as i64).collect()),
                )
            })
            .collect();
        let joint_kind = |want: JointKind| {
            row(
                model.joints.iter().map(|j| flag(j.kind == want)).collect(),
                device,
            )
        };
        Self {
            levels,
            mass: row(model.links.iter().map(|k| k.mass as f32).collect(), device),
            com: V3::constant(
                &model.links.iter().map(|k| k.com).collect::<Vec<_>>(),
                device,
            ),
            principal: M3::constant(&axes, device),
            moments: V3::constant(&moments, device),
            subtree: Tensor::from_data(TensorData::new(subtree, [l, l]), device),
            joint_moves: Tensor::from_data(TensorData::new(joint_moves, [nj, l]), device),
            joint_is_rev: joint_kind(JointKind::Revolute),
            joint_is_pri: joint_kind(JointKind::Prismatic),
            ancestor_pairs,
            ancestor_pair_list,
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
    /// [`Error::Model`] for zero environments, [`Error::Physics`] for an invalid config or
    /// a model without degrees of freedom.
    pub fn new(
        model: Model,
        config: SimConfig,
        num_envs: usize,
        device: &B::Device,
    ) -> Result<Self> {
        config.validate()?;
        if num_envs == 0 {
            return Err(Error::Model {
                model: model.name.clone(),
                what: "num_envs must be at least 1, got 0".into(),
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
        // Uploaded whole rather than repeated: a repeated row can be a strided view, which the
        // GPU path would have to copy before every step.
        let per_env = |row: &[f32]| {
            Tensor::<B, 2>::from_data(TensorData::new(row.repeat(n), [n, row.len()]), device)
        };
        let effort_limit = per_env(&effort_limit);
        let root_quat = per_env(&[1.0, 0.0, 0.0, 0.0]);
        let link_mass = consts.mass.clone();
        #[cfg(feature = "cube")]
        let kernel = {
            let program = crate::cube::articulation::StepProgram::new(&model, &config);
            let (packed, tree) = program.constants();
            let upload = |v: &[f32]| {
                Tensor::<B, 1>::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
            };
            Some((upload(packed), upload(tree), program.dims()))
        };
        Ok(Self {
            #[cfg(feature = "cube")]
            kernel,
            #[cfg(feature = "cube")]
            kernel_field_layout: None,
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
            contact_touch: zeros(l),
            applied_torque: zeros(nj),
            link_mass,
            friction: zeros(1).add_scalar(config.contact.friction),
            terrain: None,
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

    /// Makes `field` the ground of every environment, in place of the plane at
    /// `contact.ground_height` (`None`: the plane again). Every contact point then presses
    /// along the field's normal under it, with the same stiffness, damping and friction.
    pub fn set_terrain(&mut self, field: Option<&HeightField>) {
        self.terrain = field.map(|f| DeviceHeightField::new(f, &self.device));
        #[cfg(feature = "cube")]
        {
            self.kernel_field_layout = field.map(|f| {
                let layout = crate::cube::articulation::field_layout(f);
                Tensor::from_data(
                    TensorData::new(layout.to_vec(), [layout.len()]),
                    &self.device,
                )
            });
        }
    }

    /// The ground as a height field, if one was set.
    pub fn terrain(&self) -> Option<&DeviceHeightField<B>> {
        self.terrain.as_ref()
    }

    fn floating(&self) -> bool {
        self.model.base == BaseKind::Floating
    }

    /// Advances every environment by `dt`, in `substeps` sub-steps.
    pub fn step(&mut self) {
        #[cfg(feature = "cube")]
        if self.step_kernel() {
            return;
        }
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

    /// Motion subspaces of the joints about the reference point `p_ref` `[N, 1]`: angular
    /// and linear parts `[N, nj]` (`(a, r x a)` for a revolute joint with world axis `a`
    /// through `r`, `(0, a)` for a prismatic one).
    fn joint_subspaces(&self, kin: &Kinematics<B>, p_ref: &V3<B>) -> Option<(V3<B>, V3<B>)> {
        let c = &self.consts;
        let axis = kin.axis.as_ref()?;
        let nj = self.model.num_joints();
        let arm = kin.pos.narrow(1, nj).sub(p_ref);
        let angular = axis.mul(&c.joint_is_rev);
        let linear = arm
            .cross(axis)
            .mul(&c.joint_is_rev)
            .add(&axis.mul(&c.joint_is_pri));
        Some((angular, linear))
    }

    /// The reference point of the spatial quantities `[N, 1]`: the base origin (the world
    /// origin for a fixed base), so that coordinates stay small where the robot is.
    fn reference(&self, kin: &Kinematics<B>) -> V3<B> {
        kin.pos.narrow(0, 1)
    }

    /// Spatial inertias `[N, L]` of the links about `p_ref`, and their Newton-Euler wrenches
    /// with zero generalised acceleration (gravity included), `(torque, force)`.
    fn link_inertias(
        &self,
        kin: &Kinematics<B>,
        bodies: &Bodies<B>,
        p_ref: &V3<B>,
    ) -> (Sym6<B>, V3<B>, V3<B>) {
        let c = &self.consts;
        let p = &bodies.principal;
        let d = [&c.moments.x, &c.moments.y, &c.moments.z];
        // World inertia about the centre of mass: P D P^T.
        let inertia = |a: usize, b: usize| {
            let term = |k: usize| p.m[a][k].clone() * p.m[b][k].clone() * d[k].clone();
            term(0) + term(1) + term(2)
        };
        let r = bodies.com.sub(p_ref);
        let rr = r.dot(&r);
        let rv = r.parts();
        let m = &self.link_mass;
        let zero = rr.zeros_like();
        let spatial = Sym6::from_fn(|i, j| match (i, j) {
            // A = I_c + m (|r|^2 1 - r r^T)
            (i, j) if i < 3 => {
                let mut e = inertia(i, j) - rv[i].clone() * rv[j].clone() * m.clone();
                if i == j {
                    e = e + rr.clone() * m.clone();
                }
                e
            }
            // B^T = (m r~)^T = -m r~: row 3 + i, column j.
            (i, j) if j < 3 => match (i - 3, j) {
                (0, 1) => rv[2].clone() * m.clone(),
                (0, 2) => rv[1].clone().neg() * m.clone(),
                (1, 0) => rv[2].clone().neg() * m.clone(),
                (1, 2) => rv[0].clone() * m.clone(),
                (2, 0) => rv[1].clone() * m.clone(),
                (2, 1) => rv[0].clone().neg() * m.clone(),
                _ => zero.clone(),
            },
            // C = m 1
            (i, j) if i == j => zero.clone() + m.clone(),
            _ => zero.clone(),
        });
        // Wrench: f = m (a_com - g), torque about p_ref = I_c alpha + w x I_c w + r x f.
        let acc_com = kin
            .acc_bias
            .add(&bodies.com_offset.rcross(&kin.alpha_bias))
            .add(&bodies.com_offset.rcross(&kin.omega).rcross(&kin.omega));
        let g = c.gravity;
        let force = V3::new(
            acc_com.x.sub_scalar(g[0]),
            acc_com.y.sub_scalar(g[1]),
            acc_com.z.sub_scalar(g[2]),
        )
        .mul(m);
        let alpha_p = p.t_mul_v(&kin.alpha_bias);
        let spin = bodies.omega_p.hadamard(&c.moments);
        let torque_p = alpha_p
            .hadamard(&c.moments)
            .add(&bodies.omega_p.cross(&spin));
        let torque = p.mul_v(&torque_p).add(&r.cross(&force));
        (spatial, torque, force)
    }

    fn substep(&mut self, h: f64) {
        let n = self.num_envs;
        let l = self.model.links.len();
        let nj = self.model.num_joints();
        let nv = self.model.num_dofs();
        let off = nv - nj;
        let c = self.consts.clone();
        let kin = self.kinematics();
        let bodies = self.bodies(&kin);
        let p_ref = self.reference(&kin);
        let (mut inertia, mut torque, mut force) = self.link_inertias(&kin, &bodies, &p_ref);

        // Ground contact enters as extra spatial inertia (its implicit part) and a wrench on
        // the links it touches.
        let contacts = (c.contact_to_link.dims()[0] > 0).then(|| self.contacts(&kin, &p_ref, h));
        if let Some(ct) = &contacts {
            let to_link = |t: T<B>| t.matmul(c.contact_to_link.clone()); // [N, K] -> [N, L]
            inertia = inertia.add(&ct.inertia.map(to_link));
            torque = torque.sub(&V3::new(
                to_link(ct.torque.x.clone()),
                to_link(ct.torque.y.clone()),
                to_link(ct.torque.z.clone()),
            ));
            force = force.sub(&V3::new(
                to_link(ct.force.x.clone()),
                to_link(ct.force.y.clone()),
                to_link(ct.force.z.clone()),
            ));
        }
        // Composite inertias and wrenches of every subtree.
        let subtree = |t: T<B>| t.matmul(c.subtree.clone()); // [N, L]
        let composite = inertia.map(subtree);
        let torque = V3::new(subtree(torque.x), subtree(torque.y), subtree(torque.z));
        let force = V3::new(subtree(force.x), subtree(force.y), subtree(force.z));

        // Entries of H = M + A that the tree couples, and the right-hand side f0 - C.
        let mut entries: Vec<Vec<Option<T<B>>>> = vec![vec![None; nv]; nv];
        let mut rhs: Vec<T<B>> = Vec::with_capacity(nv);
        if self.floating() {
            // Base dofs [v, w] map to the spatial rows [3.., 0..3].
            let spatial = |dof: usize| if dof < 3 { dof + 3 } else { dof - 3 };
            for (i, row_i) in entries.iter_mut().enumerate().take(6) {
                for (j, e) in row_i.iter_mut().enumerate().take(i + 1) {
                    *e = Some(composite.get(spatial(i), spatial(j)).narrow(1, 0, 1));
                }
            }
            for k in 0..3 {
                rhs.push(force.parts()[k].clone().narrow(1, 0, 1).neg());
            }
            for k in 0..3 {
                rhs.push(torque.parts()[k].clone().narrow(1, 0, 1).neg());
            }
        }
        let mut drive_implicit = None;
        let subspaces = self.joint_subspaces(&kin, &p_ref);
        if let Some((s_w, s_v)) = &subspaces {
            // F_i = I^c_i S_i for the subtree of every joint.
            let joint_links = |t: T<B>| t.narrow(1, 1, nj);
            let joint_inertia = composite.map(joint_links);
            let (f_w, f_v) = joint_inertia.mul_v(s_w, s_v);
            let dot6 = |aw: &V3<B>, av: &V3<B>, bw: &V3<B>, bv: &V3<B>| aw.dot(bw) + av.dot(bv);
            let diagonal = dot6(s_w, s_v, &f_w, &f_v); // [N, nj]
            let wrench_w = torque.narrow(1, nj);
            let wrench_v = force.narrow(1, nj);
            let bias = dot6(s_w, s_v, &wrench_w, &wrench_v); // [N, nj]
            for (d, pairs) in c.ancestor_pairs.iter().enumerate() {
                let (child, anc) = pairs;
                let values = dot6(
                    &f_w.select(child),
                    &f_v.select(child),
                    &s_w.select(anc),
                    &s_v.select(anc),
                );
                for (col, (i, j)) in c.ancestor_pair_list[d].iter().enumerate() {
                    entries[off + i][off + j] = Some(values.clone().narrow(1, col, 1));
                }
            }
            if self.floating() {
                let (fw, fv) = (f_w.parts(), f_v.parts());
                for j in 0..nj {
                    for k in 0..3 {
                        entries[off + j][k] = Some(fv[k].clone().narrow(1, j, 1));
                        entries[off + j][3 + k] = Some(fw[k].clone().narrow(1, j, 1));
                    }
                }
            }
            let f = self.joint_forces(h, bias.clone(), diagonal.clone());
            let h_diag = diagonal + f.implicit;
            for j in 0..nj {
                entries[off + j][off + j] = Some(h_diag.clone().narrow(1, j, 1));
            }
            let r = f.tau - bias;
            for j in 0..nj {
                rhs.push(r.clone().narrow(1, j, 1));
            }
            drive_implicit = Some((f.drive, f.drive_implicit));
        }

        let qdd_parts = solve_ltdl(entries, rhs, &c.dof_parent);
        let qdd = Tensor::cat(qdd_parts, 1); // [N, nv]

        // What the implicit contact forces came to, for reporting: f0 - A J qdd.
        if let Some(ct) = contacts {
            // Spatial acceleration of every link from qdd alone.
            let mut acc_w = V3::zeros([n, l], &self.device);
            let mut acc_v = V3::zeros([n, l], &self.device);
            if let Some((s_w, s_v)) = &subspaces {
                let qdd_j = qdd.clone().narrow(1, off, nj);
                let spread = |t: T<B>| (t * qdd_j.clone()).matmul(c.joint_moves.clone()); // [N, L]
                acc_w = V3::new(
                    spread(s_w.x.clone()),
                    spread(s_w.y.clone()),
                    spread(s_w.z.clone()),
                );
                acc_v = V3::new(
                    spread(s_v.x.clone()),
                    spread(s_v.y.clone()),
                    spread(s_v.z.clone()),
                );
            }
            if self.floating() {
                let base = |k: usize| qdd.clone().narrow(1, k, 1);
                acc_v = acc_v.add(&V3::new(base(0), base(1), base(2)));
                acc_w = acc_w.add(&V3::new(base(3), base(4), base(5)));
            }
            let index = &c.contact_link;
            let (aw, av) = (acc_w.select(index), acc_v.select(index));
            let point_acc = av.add(&ct.arm.rcross(&aw)); // a_ref + alpha x rho
            let f = match &ct.normal {
                None => V3::new(
                    ct.f0.x.clone() - point_acc.x * ct.a_tangent.clone(),
                    ct.f0.y.clone() - point_acc.y * ct.a_tangent.clone(),
                    ct.f0.z.clone() - point_acc.z * ct.a_normal.clone(),
                ),
                // A = a_t I + (a_n - a_t) n n^T.
                Some(nrm) => {
                    let along = nrm.dot(&point_acc) * (ct.a_normal.clone() - ct.a_tangent.clone());
                    ct.f0
                        .sub(&point_acc.mul(&ct.a_tangent))
                        .sub(&nrm.mul(&along))
                }
            };
            let to_link = |t: T<B>| t.matmul(c.contact_to_link.clone()); // [N, L]
            self.contact_force = Tensor::stack(vec![to_link(f.x), to_link(f.y), to_link(f.z)], 2);
            let touching = ct.a_normal.greater_elem(0.0).float(); // [N, K]
            self.contact_touch = to_link(touching);
        }
        if let Some((drive, a_drive)) = drive_implicit {
            self.applied_torque = drive - a_drive * qdd.clone().narrow(1, off, nj);
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
            let mut qd = self.joint_vel.clone() + u_dot.narrow(1, off, nj);
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

    /// Ground contact at the current state: per contact point a spring-damper along the
    /// normal (z) and regularised Coulomb friction, both evaluated at the end of the step.
    fn contacts(&self, kin: &Kinematics<B>, p_ref: &V3<B>, h: f64) -> Contacts<B> {
        if let Some(field) = &self.terrain {
            return self.terrain_contacts(field, kin, p_ref, h);
        }
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
        let b = normal.clone() * self.friction.clone() / slip; // [N, K]
        let f0 = V3::new(
            v.x.clone() * b.clone().neg(),
            v.y.clone() * b.clone().neg(),
            normal,
        );
        // Implicit part A = diag(h b, h b, h (d + h k)) as a spatial inertia of the point
        // about p_ref: [[rho~ A rho~^T, rho~ A], [A rho~^T, A]].
        let (at, an) = (b.mul_scalar(h), active.mul_scalar(h * (d + h * k)));
        let rho = x.sub(p_ref);
        let (rx, ry, rz) = (rho.x.clone(), rho.y.clone(), rho.z.clone());
        let zero = rx.zeros_like();
        let inertia = Sym6::from_fn(|i, j| match (i, j) {
            (0, 0) => rz.clone() * rz.clone() * at.clone() + ry.clone() * ry.clone() * an.clone(),
            (1, 1) => rz.clone() * rz.clone() * at.clone() + rx.clone() * rx.clone() * an.clone(),
            (2, 2) => (rx.clone() * rx.clone() + ry.clone() * ry.clone()) * at.clone(),
            (1, 0) => (rx.clone() * ry.clone() * an.clone()).neg(),
            (2, 0) => (rx.clone() * rz.clone() * at.clone()).neg(),
            (2, 1) => (ry.clone() * rz.clone() * at.clone()).neg(),
            // (A rho~^T)[a][b] = A_a rho~[b][a], rows 3.. (linear), columns 0..3.
            (3, 1) => rz.clone() * at.clone(),
            (3, 2) => ry.clone().neg() * at.clone(),
            (4, 0) => rz.clone().neg() * at.clone(),
            (4, 2) => rx.clone() * at.clone(),
            (5, 0) => ry.clone() * an.clone(),
            (5, 1) => rx.clone().neg() * an.clone(),
            (3, 3) | (4, 4) => at.clone(),
            (5, 5) => an.clone(),
            _ => zero.clone(),
        });
        Contacts {
            torque: rho.cross(&f0),
            force: f0.clone(),
            inertia,
            arm: rho,
            f0,
            a_tangent: at,
            a_normal: an,
            normal: None,
        }
    }

    /// Contact with a height field: as [`Self::contacts`] with the plane replaced by the
    /// field's tangent plane under each contact sphere's centre. With `n` the field's unit
    /// normal there and `h` its height, the sphere's distance from that plane is
    /// `n_z (c_z - h)`, the contact point is `c - r n`, the spring-damper acts along `n` on the
    /// normal speed, and friction acts on the velocity's part in the plane. The implicit part
    /// is `A = a_t I + (a_n - a_t) n n^T`: as a spatial inertia about `p_ref`, `a_t` times a
    /// unit point mass at the arm `rho` plus `(a_n - a_t) w w^T` with `w = (rho x n, n)`.
    fn terrain_contacts(
        &self,
        field: &DeviceHeightField<B>,
        kin: &Kinematics<B>,
        p_ref: &V3<B>,
        h: f64,
    ) -> Contacts<B> {
        let c = &self.consts;
        let cc = &self.config.contact;
        let index = &c.contact_link;
        let (rot, pos) = (kin.rot.select(index), kin.pos.select(index)); // [N, K]
        let (omega, vel) = (kin.omega.select(index), kin.vel.select(index));
        let centre = pos.add(&rot.mul_v(&c.contact_local));
        let (ground, hx, hy) = field.height_and_slope(centre.x.clone(), centre.y.clone());
        let inv = (hx.clone().square() + hy.clone().square())
            .add_scalar(1.0)
            .sqrt()
            .recip();
        let nrm = V3::new(hx.neg() * inv.clone(), hy.neg() * inv.clone(), inv.clone());
        let radius = c.contact_radius.clone();
        // Contact point on the sphere, and how deep the sphere is in the tangent plane.
        let x = centre.sub(&nrm.mul(&radius));
        let depth = radius - (centre.z.clone() - ground) * inv;
        let v = vel.add(&x.sub(&pos).rcross(&omega));
        let vn = nrm.dot(&v);
        let (k, d) = (cc.stiffness, cc.damping);
        let push = depth.clone().mul_scalar(k) - vn.clone().mul_scalar(d + h * k);
        let active = depth.greater_elem(0.0).float() * push.clone().greater_elem(0.0).float();
        let push = push * active.clone();
        let vt = v.sub(&nrm.mul(&vn));
        let slip = vt.dot(&vt).sqrt().clamp_min(cc.slip_velocity);
        let b = push.clone() * self.friction.clone() / slip;
        let f0 = nrm.mul(&push).sub(&vt.mul(&b));
        let (at, an) = (b.mul_scalar(h), active.mul_scalar(h * (d + h * k)));
        let rho = x.sub(p_ref);
        let w = rho.cross(&nrm);
        let extra = an.clone() - at.clone();
        let (rx, ry, rz) = (rho.x.clone(), rho.y.clone(), rho.z.clone());
        let zero = rx.zeros_like();
        // Spatial rows: 0..3 angular (w), 3..6 linear (nrm).
        let six = |i: usize| -> T<B> {
            match i {
                0 => w.x.clone(),
                1 => w.y.clone(),
                2 => w.z.clone(),
                3 => nrm.x.clone(),
                4 => nrm.y.clone(),
                _ => nrm.z.clone(),
            }
        };
        let inertia = Sym6::from_fn(|i, j| {
            let point = match (i, j) {
                (0, 0) => (ry.clone().square() + rz.clone().square()) * at.clone(),
                (1, 1) => (rx.clone().square() + rz.clone().square()) * at.clone(),
                (2, 2) => (rx.clone().square() + ry.clone().square()) * at.clone(),
                (1, 0) => (rx.clone() * ry.clone() * at.clone()).neg(),
                (2, 0) => (rx.clone() * rz.clone() * at.clone()).neg(),
                (2, 1) => (ry.clone() * rz.clone() * at.clone()).neg(),
                (3, 1) => rz.clone() * at.clone(),
                (3, 2) => ry.clone().neg() * at.clone(),
                (4, 0) => rz.clone().neg() * at.clone(),
                (4, 2) => rx.clone() * at.clone(),
                (5, 0) => ry.clone() * at.clone(),
                (5, 1) => rx.clone().neg() * at.clone(),
                (3, 3) | (4, 4) | (5, 5) => at.clone(),
                _ => zero.clone(),
            };
            point + six(i) * six(j) * extra.clone()
        });
        Contacts {
            torque: rho.cross(&f0),
            force: f0.clone(),
            inertia,
            arm: rho,
            f0,
            a_tangent: at,
            a_normal: an,
            normal: Some(nrm),
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

/// The GPU path.
#[cfg(feature = "cube")]
impl<B: Backend> Articulation<B> {
    /// Runs [`Articulation::step`] as one kernel when the backend is a CubeCL one; returns
    /// whether it did (false: take the tensor path).
    fn step_kernel(&mut self) -> bool {
        use burn::tensor::TensorPrimitive;
        let Some((packed, tree, dims)) = self.kernel.clone() else {
            return false;
        };
        // On the plane the kernel is compiled without the field and reads neither input.
        let (dims, heights, layout) = match (&self.terrain, &self.kernel_field_layout) {
            (Some(field), Some(layout)) => {
                (dims.with_terrain(true), field.heights(), layout.clone())
            }
            _ => (dims, packed.clone(), packed.clone()),
        };
        let float = |t: Tensor<B, 1>| t.into_primitive().tensor();
        let float2 = |t: &T<B>| t.clone().into_primitive().tensor();
        let inputs = vec![
            float(packed),
            float(tree),
            float2(&self.root_pos),
            float2(&self.root_quat),
            float2(&self.root_lin_vel),
            float2(&self.root_ang_vel),
            float2(&self.joint_pos),
            float2(&self.joint_vel),
            float2(&self.pos_target),
            float2(&self.vel_target),
            float2(&self.effort),
            float2(&self.stiffness),
            float2(&self.drive_damping),
            float2(&self.effort_limit),
            float2(&self.link_mass),
            float2(&self.friction),
            float(heights),
            float(layout),
        ];
        let Ok(outputs) = crate::cube::dispatch::run::<B, _>(dims, inputs) else {
            // Not a CubeCL backend: never try again.
            self.kernel = None;
            return false;
        };
        let outputs: Vec<T<B>> = outputs
            .into_iter()
            .map(|p| Tensor::from_primitive(TensorPrimitive::Float(p)))
            .collect();
        let Ok([pos, quat, lin, ang, q, qd, applied, force, touch]) =
            <[T<B>; crate::cube::articulation::OUTPUTS]>::try_from(outputs)
        else {
            unreachable!("the kernel returns its nine outputs");
        };
        let [n, l] = touch.dims();
        self.root_pos = pos;
        self.root_quat = quat;
        self.root_lin_vel = lin;
        self.root_ang_vel = ang;
        self.joint_pos = q;
        self.joint_vel = qd;
        self.applied_torque = applied;
        self.contact_force = force.reshape([n, l, 3]);
        self.contact_touch = touch;
        true
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
        self.contact_touch.clone().greater_elem(0.0)
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
        let kinetic = (v_com.dot(&v_com) * self.link_mass.clone()
            + bodies.omega_p.dot(&bodies.omega_p.hadamard(&c.moments)))
        .sum_dim(1)
        .mul_scalar(0.5);
        let g = c.gravity;
        let height = bodies.com.x.clone().mul_scalar(g[0])
            + bodies.com.y.clone().mul_scalar(g[1])
            + bodies.com.z.clone().mul_scalar(g[2]);
        let potential = (height * self.link_mass.clone()).sum_dim(1).neg();
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
            .mul(&self.link_mass);
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
        check_shape(what, t.dims(), [rows, cols])
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

    /// Replaces the whole state of every environment at once, as given, on the device:
    /// root position `[N, 3]`, orientation `[N, 4]` (taken as it is, not normalised), linear
    /// and angular velocity `[N, 3]` in the world frame, joint positions and velocities
    /// `[N, nj]`. For callers that compute a batch's next state themselves (the tasks'
    /// step kernels).
    ///
    /// # Errors
    /// A shape that does not fit.
    pub fn replace_state(
        &mut self,
        root: [Tensor<B, 2>; 4],
        joint_pos: Tensor<B, 2>,
        joint_vel: Tensor<B, 2>,
    ) -> Result<()> {
        let (n, nj) = (self.num_envs, self.model.num_joints());
        let [pos, quat, lin, ang] = root;
        self.check("root positions", &pos, 3, n)?;
        self.check("root orientations", &quat, 4, n)?;
        self.check("root linear velocities", &lin, 3, n)?;
        self.check("root angular velocities", &ang, 3, n)?;
        self.check("joint positions", &joint_pos, nj, n)?;
        self.check("joint velocities", &joint_vel, nj, n)?;
        self.root_pos = pos;
        self.root_quat = quat;
        self.root_lin_vel = lin;
        self.root_ang_vel = ang;
        self.joint_pos = joint_pos;
        self.joint_vel = joint_vel;
        Ok(())
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

    /// Friction coefficients `[N]` of every environment's ground contact (the config's
    /// `contact.friction` by default), for friction randomisation.
    ///
    /// The values are not checked (that would read the device back): pass coefficients
    /// drawn from a range checked on the host.
    ///
    /// # Errors
    /// A shape that does not fit.
    pub fn set_friction(&mut self, friction: Tensor<B, 1>) -> Result<()> {
        let friction = friction.unsqueeze_dim::<2>(1);
        self.check("friction coefficients", &friction, 1, self.num_envs)?;
        self.friction = friction.to_device(&self.device);
        Ok(())
    }

    /// Friction coefficients `[N]` of the environments' ground contact.
    pub fn friction(&self) -> Tensor<B, 1> {
        self.friction.clone().squeeze_dim::<1>(1)
    }

    /// Link masses `[N, L]` of every environment (the model's by default), for mass
    /// randomisation; centres of mass and rotational inertias stay the model's (as
    /// legged_gym and IsaacLab add mass to the base).
    ///
    /// # Errors
    /// A shape that does not fit.
    pub fn set_link_masses(&mut self, mass: Tensor<B, 2>) -> Result<()> {
        self.check("link masses", &mass, self.model.links.len(), self.num_envs)?;
        self.link_mass = mass.to_device(&self.device);
        Ok(())
    }

    /// Link masses `[N, L]`.
    pub fn link_masses(&self) -> Tensor<B, 2> {
        let [n, l] = [self.num_envs, self.model.links.len()];
        self.link_mass.clone().expand([n, l])
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
