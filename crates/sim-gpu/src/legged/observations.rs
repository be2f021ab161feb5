//! Observation terms of legged locomotion (IsaacLab's names): each reads one
//! [`TermContext`] and returns `[N, K]` in the term's own units; the observation manager adds
//! noise, clips and scales them.
//!
//! Adding a term is one function here plus its name in [`observation_term`] and
//! [`OBSERVATION_TERMS`].

use burn::tensor::{Tensor, backend::Backend};

use super::terms::{FOOT_CONTACT_FORCE, TermContext, feet_contact};

/// An observation term: `[N, K]` for every environment.
pub type ObsFn<B> = fn(&TermContext<B>) -> Tensor<B, 2>;

/// The names [`observation_term`] knows.
pub const OBSERVATION_TERMS: &[&str] = &[
    "base_lin_vel",
    "base_ang_vel",
    "projected_gravity",
    "velocity_commands",
    "joint_pos_rel",
    "joint_vel_rel",
    "last_action",
    "base_height",
    "friction",
    "added_mass",
    "feet_contact",
    "feet_contact_forces",
];

/// The observation term called `name`, or `None` for a name not in [`OBSERVATION_TERMS`].
pub fn observation_term<B: Backend>(name: &str) -> Option<ObsFn<B>> {
    let term: ObsFn<B> = match name {
        "base_lin_vel" => base_lin_vel,
        "base_ang_vel" => base_ang_vel,
        "projected_gravity" => projected_gravity,
        "velocity_commands" => velocity_commands,
        "joint_pos_rel" => joint_pos_rel,
        "joint_vel_rel" => joint_vel_rel,
        "last_action" => last_action,
        "base_height" => base_height,
        "friction" => friction,
        "added_mass" => added_mass,
        "feet_contact" => feet_contact_flags,
        "feet_contact_forces" => feet_contact_forces,
        _ => return None,
    };
    Some(term)
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
