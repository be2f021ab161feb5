//! The observation manager (IsaacLab's `ObservationManager`) and the observation terms of
//! legged locomotion (IsaacLab's names): each term reads one [`TermContext`] and returns
//! `[N, K]` in the term's own units; the manager adds noise, clips and scales them and
//! concatenates each group's terms.
//!
//! Adding a term is one function here plus one row in the table of [`ObservationTerm::ALL`]
//! (its name, function and unit).

use std::collections::BTreeMap;

use burn::tensor::{Tensor, backend::Backend};
use rl_core::{EnvRng, ObsGroupLayout, ObsTermLayout, Observations};

use super::config::{ObsGroupConfig, ObservationsConfig, Scale, config_error};
use super::terms::{FOOT_CONTACT_FORCE, TermContext, feet_contact, term_table};
use crate::Result;
use crate::common::row;

/// An observation term: `[N, K]` for every environment.
pub type ObsFn<B> = fn(&TermContext<B>) -> Tensor<B, 2>;

/// One row of the observation table: a term's name (as a config lists it), its function
/// and what its raw value is.
#[derive(Clone, Copy, Debug)]
pub struct ObservationTerm<B: Backend> {
    /// The name a config lists the term by.
    pub name: &'static str,
    /// The term's value.
    pub function: ObsFn<B>,
    /// What the raw value is, in which units and frame (an exported policy's `unit`).
    pub unit: &'static str,
}

term_table! {
    /// The names of the observation terms.
    OBSERVATION_TERMS,
    /// What each observation term's raw value is, in which units and frame.
    OBSERVATION_UNITS: &str = unit,
    ObservationTerm {
        "base_lin_vel" => base_lin_vel, "m/s, base frame";
        "base_ang_vel" => base_ang_vel, "rad/s, base frame";
        "projected_gravity" => projected_gravity,
            "unit vector, gravity's direction in the base frame ((0, 0, -1) when level)";
        "velocity_commands" => velocity_commands, "[v_x m/s, v_y m/s, w_z rad/s], base frame";
        "joint_pos_rel" => joint_pos_rel,
            "rad, joint position minus default (robot.joint_names order)";
        "joint_vel_rel" => joint_vel_rel, "rad/s, joint velocity (robot.joint_names order)";
        "last_action" => last_action,
            "the previous step's action after clipping (the actions' columns)";
        "base_height" => base_height, "m, base height above the ground under it";
        "friction" => friction, "ground friction coefficient";
        "added_mass" => added_mass, "kg, mass added to the base";
        "feet_contact" => feet_contact_flags,
            "1 where a foot's vertical contact force exceeds 1 N, else 0 (the links \
             robot.feet matches, in model order)";
        "feet_contact_forces" => feet_contact_forces,
            "N, [f_x, f_y, f_z] of each foot in turn, world frame (the links robot.feet \
             matches, in model order)";
        "height_scan" => height_scan,
            "m, base height minus the scan's offset minus the ground height at each point of \
             the scan's grid (base yaw frame, x varying slowest)";
    }
}

/// The observation term called `name`, or `None` for a name not in [`OBSERVATION_TERMS`].
pub fn observation_term<B: Backend>(name: &str) -> Option<ObsFn<B>> {
    let row = ObservationTerm::<B>::ALL.iter().find(|t| t.name == name)?;
    Some(row.function)
}

/// One observation term of a group, ready to evaluate.
#[derive(Clone, Debug)]
struct GroupTerm<B: Backend> {
    /// The term's name (for the step kernel and the layout).
    name: &'static str,
    /// What the raw value is (for the layout).
    unit: &'static str,
    function: ObsFn<B>,
    /// Scale `[1, K]`.
    scale: Tensor<B, 2>,
    /// `scale` on the host (for the step kernel and the layout).
    host_scale: Vec<f32>,
    clip: Option<f64>,
    /// Columns of the term in its group.
    start: usize,
    width: usize,
}

/// One observation group, ready to evaluate.
#[derive(Clone, Debug)]
struct ObsGroup<B: Backend> {
    name: String,
    terms: Vec<GroupTerm<B>>,
    clip: Option<f64>,
    /// Noise half-widths `[1, D]` when the group is noisy.
    noise: Option<Tensor<B, 2>>,
    /// The noise half-widths per column on the host (for the step kernel).
    #[cfg_attr(not(feature = "cube"), allow(dead_code))]
    host_noise: Vec<f32>,
    width: usize,
}

/// The observation groups of a task (`policy`, and `critic` when it has terms); the default
/// has none.
#[derive(Clone, Debug, Default)]
pub struct ObservationManager<B: Backend> {
    groups: Vec<ObsGroup<B>>,
}

impl<B: Backend> ObservationManager<B> {
    /// The groups of `cfg`, their widths found by evaluating every term once at `ctx`.
    ///
    /// # Errors
    /// [`crate::Error::TaskConfig`] naming the field for an unknown term or scales that do
    /// not fit the term's width.
    pub fn new(
        cfg: &ObservationsConfig,
        ctx: &TermContext<B>,
        task: &str,
        device: &B::Device,
    ) -> Result<Self> {
        let mut groups = Vec::new();
        for (name, g) in [("policy", &cfg.policy), ("critic", &cfg.critic)] {
            if g.terms.is_empty() {
                continue;
            }
            groups.push(build_group(name, g, ctx, task, device)?);
        }
        Ok(Self { groups })
    }

    /// Every group's name and width `D`.
    pub fn groups(&self) -> impl Iterator<Item = (&str, usize)> {
        self.groups.iter().map(|g| (g.name.as_str(), g.width))
    }

    /// Every group by name, as an exported policy describes it: its terms in column order
    /// with their widths, per-column scales, clips and units, and the group's clip.
    pub fn layout(&self) -> BTreeMap<String, ObsGroupLayout> {
        self.groups
            .iter()
            .map(|g| {
                let terms = g
                    .terms
                    .iter()
                    .map(|t| ObsTermLayout {
                        name: t.name.to_string(),
                        start: t.start,
                        size: t.width,
                        scale: t.host_scale.clone(),
                        clip: t.clip.map(|c| c as f32),
                        unit: t.unit.to_string(),
                    })
                    .collect();
                let group = ObsGroupLayout {
                    terms,
                    clip: g.clip.map(|c| c as f32),
                };
                (g.name.clone(), group)
            })
            .collect()
    }

    /// The observation groups `[N, D]` at `ctx`. With `rng`, the groups that ask for noise
    /// get it: one uniform draw `[N, D]` per noisy group, in group order.
    pub fn compute(
        &self,
        ctx: &TermContext<B>,
        mut rng: Option<&mut EnvRng>,
        device: &B::Device,
    ) -> Observations<B> {
        let mut obs = Observations::new();
        for g in &self.groups {
            let noise = match (&g.noise, rng.as_deref_mut()) {
                (Some(amplitude), Some(rng)) => {
                    let w = g.width;
                    let u = rng.uniform::<B>(&vec![-1.0; w], &vec![1.0; w], device);
                    Some(u.mul(amplitude.clone()))
                }
                _ => None,
            };
            let parts: Vec<Tensor<B, 2>> = g
                .terms
                .iter()
                .map(|t| {
                    let mut v = (t.function)(ctx);
                    if let Some(noise) = &noise {
                        v = v.add(noise.clone().narrow(1, t.start, t.width));
                    }
                    if let Some(c) = t.clip {
                        v = v.clamp(-c, c);
                    }
                    v.mul(t.scale.clone())
                })
                .collect();
            let mut x = Tensor::cat(parts, 1);
            if let Some(c) = g.clip {
                x = x.clamp(-c, c);
            }
            obs = obs.with(&g.name, x);
        }
        obs
    }
}

/// Builds one observation group: the terms' functions, widths, scales and noise.
#[cfg(feature = "cube")]
impl<B: Backend> ObservationManager<B> {
    /// Every group as the step kernel writes it, in order.
    pub(crate) fn layouts(&self) -> Vec<crate::cube::legged::GroupLayout> {
        self.groups
            .iter()
            .map(|g| crate::cube::legged::GroupLayout {
                terms: g
                    .terms
                    .iter()
                    .map(|t| (t.name.to_string(), t.clip))
                    .collect(),
                scale: g.terms.iter().flat_map(|t| t.host_scale.clone()).collect(),
                noise: g.host_noise.clone(),
                clip: g.clip,
                noisy: g.noise.is_some(),
            })
            .collect()
    }

    /// The group names in order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.name.clone()).collect()
    }

    /// The uniform numbers in `[-1, 1)` that [`ObservationManager::compute`] would draw for
    /// its noisy groups, drawn the same way and in the same order (`None` for a group
    /// without noise).
    pub(crate) fn draw_noise(
        &self,
        rng: &mut EnvRng,
        device: &B::Device,
    ) -> Vec<Option<Tensor<B, 2>>> {
        self.groups
            .iter()
            .map(|g| {
                g.noise.as_ref().map(|_| {
                    let w = g.width;
                    rng.uniform::<B>(&vec![-1.0; w], &vec![1.0; w], device)
                })
            })
            .collect()
    }
}

fn build_group<B: Backend>(
    name: &str,
    g: &ObsGroupConfig,
    ctx: &TermContext<B>,
    task: &str,
    device: &B::Device,
) -> Result<ObsGroup<B>> {
    let mut terms = Vec::new();
    let mut noise = Vec::new();
    let mut start = 0;
    for (i, t) in g.terms.iter().enumerate() {
        let field = format!("observations.{name}.terms[{i}] ({})", t.name);
        let table_row = ObservationTerm::<B>::ALL
            .iter()
            .find(|row| row.name == t.name)
            .ok_or_else(|| config_error(task, &field, "unknown observation term"))?;
        let function = table_row.function;
        let width = function(ctx).dims()[1];
        let scale = match &t.scale {
            Scale::One(s) => vec![*s as f32; width],
            Scale::Each(s) if s.len() == width => s.iter().map(|&x| x as f32).collect(),
            Scale::Each(s) => {
                return Err(config_error(
                    task,
                    &field,
                    format!("the term has {width} columns but {} scales", s.len()),
                ));
            }
        };
        noise.extend(std::iter::repeat_n(t.noise as f32, width));
        terms.push(GroupTerm {
            name: table_row.name,
            unit: table_row.unit,
            function,
            host_scale: scale.clone(),
            scale: row(scale, device),
            clip: t.clip,
            start,
            width,
        });
        start += width;
    }
    let noisy = g.noise && noise.iter().any(|&a| a > 0.0);
    Ok(ObsGroup {
        name: name.to_string(),
        terms,
        clip: g.clip,
        host_noise: noise.clone(),
        noise: noisy.then(|| row(noise, device)),
        width: start,
    })
}

/// Base linear velocity in the base frame `[N, 3]` (m/s).
pub fn base_lin_vel<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 2> {
    ctx.lin_vel_b.clone()
}

/// Base angular velocity in the base frame `[N, 3]` (rad/s).
pub fn base_ang_vel<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 2> {
    ctx.ang_vel_b.clone()
}

/// Gravity direction in the base frame `[N, 3]`.
pub fn projected_gravity<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 2> {
    ctx.projected_gravity_b.clone()
}

/// The velocity command `[N, 3]`: `v_x`, `v_y`, `w_z`.
pub fn velocity_commands<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 2> {
    ctx.commands.clone()
}

/// Joint positions relative to the default pose `[N, J]` (rad).
pub fn joint_pos_rel<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 2> {
    let default = ctx.default_joint_pos.clone().expand(ctx.joint_pos.shape());
    ctx.joint_pos.clone().sub(default)
}

/// Joint velocities `[N, J]` (rad/s; the default velocity is zero).
pub fn joint_vel_rel<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 2> {
    ctx.joint_vel.clone()
}

/// The action the policy took last `[N, J]` (the one just applied).
pub fn last_action<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 2> {
    ctx.actions.clone()
}

/// Base height above the ground `[N, 1]` (m).
pub fn base_height<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 2> {
    ctx.base_height.clone().unsqueeze_dim::<2>(1)
}

/// Ground friction coefficient `[N, 1]` (privileged).
pub fn friction<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 2> {
    ctx.friction.clone().unsqueeze_dim::<2>(1)
}

/// Mass added to the base `[N, 1]` (kg, privileged).
pub fn added_mass<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 2> {
    ctx.added_mass.clone().unsqueeze_dim::<2>(1)
}

/// Whether each foot touches the ground `[N, F]` (1 or 0).
pub fn feet_contact_flags<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 2> {
    feet_contact(
        ctx.contact_forces.clone(),
        ctx.feet.clone(),
        FOOT_CONTACT_FORCE,
    )
    .float()
}

/// Contact force on each foot `[N, 3 F]` (N, world frame; privileged).
pub fn feet_contact_forces<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 2> {
    let [n, _, _] = ctx.contact_forces.dims();
    let f = ctx.feet.dims()[0];
    ctx.contact_forces
        .clone()
        .select(1, ctx.feet.clone())
        .reshape([n, 3 * f])
}
/// Ground heights around the base `[N, P]`: base height minus the scan's offset minus the
/// ground at each point of the grid (legged_gym's `measured_heights`; clip it to 1 and scale
/// it by 5 in the config, as legged_gym does).
pub fn height_scan<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 2> {
    ctx.height_scan.clone()
}
