//! Reward and termination terms of legged locomotion, with legged_gym's formulas.
//!
//! Every term reads one [`TermContext`] (the state of `N` environments after a policy step,
//! all on the device) and returns one value per environment: rewards `[N]` unweighted (the
//! manager multiplies by the weight and the policy `dt`), terminations `[N]` as booleans.
//! The tables [`RewardTerm::ALL`] and [`TerminationTerm::ALL`] list every term once, by name
//! with its function and legged_gym's default for a flat-ground quadruped (weight,
//! threshold); [`reward_term`], [`termination_term`], [`default_reward_weights`] and
//! [`default_terminations`] read them.
//!
//! Left to the manager, as in legged_gym: time-outs, clipping the summed reward at zero
//! (`only_positive_rewards`) before the termination reward is added, and resetting
//! `last_joint_vel`, `last_actions` and the feet air time of the environments it resets.

use burn::tensor::{Bool, Int, Tensor, backend::Backend};

use crate::common::column;

/// Width of the tracking rewards' Gaussian, `exp(-err^2 / sigma)` (legged_gym `tracking_sigma`).
pub const TRACKING_SIGMA: f64 = 0.25;

/// Fraction of the URDF joint range inside which `dof_pos_limits` is not penalised
/// (legged_gym's A1 config; the base config uses 1.0). See [`soft_dof_pos_limits`].
pub const SOFT_DOF_POS_LIMIT: f64 = 0.9;

/// Foot force (N) above which `feet_contact_forces` penalises (legged_gym base config).
pub const MAX_CONTACT_FORCE: f64 = 100.0;

/// Vertical foot force (N) above which a foot is in contact (legged_gym, hard-coded).
pub const FOOT_CONTACT_FORCE: f64 = 1.0;

/// Force norm (N) above which a penalised link counts as a collision (legged_gym, hard-coded).
pub const COLLISION_FORCE: f64 = 0.1;

/// Commanded planar speed (m/s) under which the robot should stand still: no air-time
/// reward below it, the `stand_still` penalty below it (legged_gym, hard-coded).
pub const STAND_STILL_SPEED: f64 = 0.1;

/// Air time (s) a foot step must exceed to earn a positive `feet_air_time` reward.
pub const FEET_AIR_TIME_TARGET: f64 = 0.5;

/// Everything a reward or termination term reads, for one (policy) step, all on the device.
///
/// `N` environments, `J` joints, `L` links, `F` feet. Velocities are those of the base in
/// its own frame; contact forces are per link in the world frame (as
/// [`sim_physics::Articulation::contact_forces`] gives them).
#[derive(Clone, Debug)]
pub struct TermContext<B: Backend> {
    /// Base linear velocity `[N, 3]`, base frame (m/s).
    pub lin_vel_b: Tensor<B, 2>,
    /// Base angular velocity `[N, 3]`, base frame (rad/s).
    pub ang_vel_b: Tensor<B, 2>,
    /// Unit gravity direction `[N, 3]` in the base frame (`(0, 0, -1)` when level).
    pub projected_gravity_b: Tensor<B, 2>,
    /// Velocity commands `[N, 3]`: `v_x`, `v_y` (m/s), `w_z` (rad/s), base frame.
    pub commands: Tensor<B, 2>,
    /// Joint positions `[N, J]`.
    pub joint_pos: Tensor<B, 2>,
    /// Default (standing) joint positions, `[1, J]` or `[N, J]`.
    pub default_joint_pos: Tensor<B, 2>,
    /// Joint velocities `[N, J]`.
    pub joint_vel: Tensor<B, 2>,
    /// Joint velocities `[N, J]` at the previous policy step.
    pub last_joint_vel: Tensor<B, 2>,
    /// The policy step (s): the time between `last_joint_vel` and `joint_vel`, and what a
    /// foot's air time grows by in one step.
    pub dt: f64,
    /// Joint torques `[N, J]` the drives applied (legged_gym: those of the last sub-step).
    pub torques: Tensor<B, 2>,
    /// Actions `[N, J]` of this step (after clipping).
    pub actions: Tensor<B, 2>,
    /// Actions `[N, J]` of the previous step.
    pub last_actions: Tensor<B, 2>,
    /// Net contact force on every link `[N, L, 3]`, world frame (N).
    pub contact_forces: Tensor<B, 3>,
    /// Link indices of the feet `[F]`, in the order of `feet_air_time`'s columns.
    pub feet: Tensor<B, 1, Int>,
    /// Link indices whose contact `collision` penalises (legged_gym `penalize_contacts_on`).
    pub penalised: Tensor<B, 1, Int>,
    /// Link indices whose contact ends the episode (legged_gym
    /// `terminate_after_contacts_on`, the base).
    pub termination_links: Tensor<B, 1, Int>,
    /// Seconds each foot `[N, F]` has been in the air, before this step's
    /// [`update_feet_air_time`] (so without this step's `dt`).
    pub feet_air_time: Tensor<B, 2>,
    /// Whether each foot `[N, F]` touched down this step (from [`update_feet_air_time`]).
    pub first_contact: Tensor<B, 2, Bool>,
    /// Base height above the terrain under it `[N]` (m).
    pub base_height: Tensor<B, 1>,
    /// Target of `base_height` (m).
    pub base_height_target: f64,
    /// Soft joint limits `([1, J] lower, [1, J] upper)`, already narrowed by
    /// [`soft_dof_pos_limits`].
    pub soft_dof_pos_limits: (Tensor<B, 2>, Tensor<B, 2>),
    /// Environments `[N]` that terminated this step, time-outs excluded (for `termination`).
    pub terminated: Tensor<B, 1, Bool>,
    /// Width of the tracking rewards, see [`TRACKING_SIGMA`].
    pub tracking_sigma: f64,
    /// Foot force (N) above which `feet_contact_forces` penalises, see [`MAX_CONTACT_FORCE`].
    pub max_contact_force: f64,
    /// Ground friction coefficient of every environment `[N]` (privileged).
    pub friction: Tensor<B, 1>,
    /// Mass added to every environment's base `[N]` (kg, privileged).
    pub added_mass: Tensor<B, 1>,
    /// The height scan `[N, P]`: base height minus the scan's offset minus the ground height
    /// at each point of the grid (see [`super::config::HeightScanConfig`]); `[N, 0]` when no
    /// observation reads it.
    pub height_scan: Tensor<B, 2>,
}

/// A reward term: the unweighted reward `[N]` of every environment.
pub type RewardFn<B> = fn(&TermContext<B>) -> Tensor<B, 1>;

/// A termination term with its one parameter (a threshold): which environments `[N]` end.
pub type TerminationFn<B> = fn(&TermContext<B>, f64) -> Tensor<B, 1, Bool>;

/// Declares a table of terms in one place, one row per term: `"name" => function` and,
/// for tables with one, the term's default (a weight, a threshold) or another constant (an
/// observation's unit, with `= field` naming the row's field; `default` when not given).
///
/// From the rows it makes the names alone as the constant `$names` and the defaults as
/// `$defaults` (both for a config, which is checked and defaulted without a backend), and
/// the rows with their functions as the associated constant `ALL` of the row type (generic
/// over the backend, as the functions are).
macro_rules! term_table {
    (
        $(#[$names_doc:meta])* $names:ident,
        $(#[$defaults_doc:meta])* $defaults:ident: $ty:ty,
        $row:ident { $($name:literal => $function:path, $default:expr;)* }
    ) => {
        term_table! {
            $(#[$names_doc])* $names,
            $(#[$defaults_doc])* $defaults: $ty = default,
            $row { $($name => $function, $default;)* }
        }
    };
    (
        $(#[$names_doc:meta])* $names:ident,
        $(#[$defaults_doc:meta])* $defaults:ident: $ty:ty = $field:ident,
        $row:ident { $($name:literal => $function:path, $default:expr;)* }
    ) => {
        $(#[$names_doc])*
        pub const $names: &[&str] = &[$($name),*];

        $(#[$defaults_doc])*
        pub const $defaults: &[(&str, $ty)] = &[$(($name, $default)),*];

        impl<B: Backend> $row<B> {
            #[doc = concat!("Every term, in the order of [`", stringify!($names), "`].")]
            pub const ALL: &'static [Self] = &[
                $(Self { name: $name, function: $function, $field: $default }),*
            ];
        }
    };
    (
        $(#[$names_doc:meta])* $names:ident,
        $row:ident { $($name:literal => $function:path;)* }
    ) => {
        $(#[$names_doc])*
        pub const $names: &[&str] = &[$($name),*];

        impl<B: Backend> $row<B> {
            #[doc = concat!("Every term, in the order of [`", stringify!($names), "`].")]
            pub const ALL: &'static [Self] = &[$(Self { name: $name, function: $function }),*];
        }
    };
}
pub(super) use term_table;

/// One row of the reward table: a term's name (its key in `rewards.weights`), its function
/// and legged_gym's default weight.
#[derive(Clone, Copy, Debug)]
pub struct RewardTerm<B: Backend> {
    /// The name a config weights the term by.
    pub name: &'static str,
    /// The unweighted reward.
    pub function: RewardFn<B>,
    /// legged_gym's weight for a flat-ground quadruped; 0 leaves the term out of
    /// [`default_reward_weights`] (legged_gym drops such terms too).
    pub default: f64,
}

/// One row of the termination table: a term's name (its key in `terminations`), its
/// function and legged_gym's default threshold.
#[derive(Clone, Copy, Debug)]
pub struct TerminationTerm<B: Backend> {
    /// The name a config lists the term by.
    pub name: &'static str,
    /// Which environments end, given the threshold.
    pub function: TerminationFn<B>,
    /// legged_gym's threshold, for the terms in [`default_terminations`].
    pub default: Option<f64>,
}

// The weights are legged_gym's base `LeggedRobotCfg.rewards.scales`, with `torques` at the
// base -1e-5 (the range REFERENCE.md gives is -1e-5 to -2.5e-5; legged_gym's A1 config uses
// -2e-4), `dof_pos_limits` -10 from its A1 config (a robot of our quadruped's size), and
// `orientation` -5 from `AnymalCFlatCfg`, its only flat-ground config (the base and the A1
// leave it at zero); `feet_air_time` stays at the base 1.0 (ANYmal-C flat uses 2.0).
term_table! {
    /// The names of the reward terms, in legged_gym's order.
    REWARD_TERMS,
    /// Every reward term's default weight (0: not weighted by default).
    REWARD_WEIGHTS: f64,
    RewardTerm {
        "tracking_lin_vel" => tracking_lin_vel, 1.0;
        "tracking_ang_vel" => tracking_ang_vel, 0.5;
        "lin_vel_z" => lin_vel_z, -2.0;
        "ang_vel_xy" => ang_vel_xy, -0.05;
        "orientation" => orientation, -5.0;
        "base_height" => base_height, 0.0;
        "torques" => torques, -1e-5;
        "dof_vel" => dof_vel, 0.0;
        "dof_acc" => dof_acc, -2.5e-7;
        "action_rate" => action_rate, -0.01;
        "collision" => collision, -1.0;
        "termination" => termination, 0.0;
        "dof_pos_limits" => dof_pos_limits, -10.0;
        "feet_air_time" => feet_air_time, 1.0;
        "stand_still" => stand_still, 0.0;
        "feet_contact_forces" => feet_contact_forces, 0.0;
    }
}

term_table! {
    /// The names of the termination terms.
    TERMINATION_TERMS,
    /// Every termination term's default threshold (`None`: not on by default).
    TERMINATION_THRESHOLDS: Option<f64>,
    TerminationTerm {
        "base_contact" => base_contact, Some(1.0);
        "bad_orientation" => bad_orientation, None;
    }
}

/// The reward term called `name`, or `None` for a name not in [`REWARD_TERMS`].
pub fn reward_term<B: Backend>(name: &str) -> Option<RewardFn<B>> {
    let row = RewardTerm::<B>::ALL.iter().find(|t| t.name == name)?;
    Some(row.function)
}

/// The termination term called `name`, or `None` for a name not in [`TERMINATION_TERMS`].
pub fn termination_term<B: Backend>(name: &str) -> Option<TerminationFn<B>> {
    let row = TerminationTerm::<B>::ALL.iter().find(|t| t.name == name)?;
    Some(row.function)
}

/// legged_gym's reward weights for a flat-ground quadruped (the table's non-zero weights),
/// in the table's order. Each is multiplied by the policy `dt` as well.
pub fn default_reward_weights() -> Vec<(&'static str, f64)> {
    REWARD_WEIGHTS
        .iter()
        .copied()
        .filter(|&(_, w)| w != 0.0)
        .collect()
}

/// legged_gym's termination terms and their thresholds: contact of a termination link
/// above 1 N.
pub fn default_terminations() -> Vec<(&'static str, f64)> {
    TERMINATION_THRESHOLDS
        .iter()
        .filter_map(|&(name, t)| Some((name, t?)))
        .collect()
}

/// Soft joint limits `([1, J], [1, J])` from the URDF limits `lower`, `upper` `[1, J]`: the
/// range shrunk about its middle to the fraction `soft` (legged_gym `soft_dof_pos_limit`).
pub fn soft_dof_pos_limits<B: Backend>(
    lower: Tensor<B, 2>,
    upper: Tensor<B, 2>,
    soft: f64,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let middle = lower.clone().add(upper.clone()).mul_scalar(0.5); // [1, J]
    let half = upper.sub(lower).mul_scalar(0.5 * soft); // [1, J]
    (middle.clone().sub(half.clone()), middle.add(half))
}

/// Which feet `[N, F]` touch the ground: vertical force above `threshold` (N), as legged_gym
/// decides it ([`FOOT_CONTACT_FORCE`]). `contact_forces` `[N, L, 3]`, `feet` `[F]`.
pub fn feet_contact<B: Backend>(
    contact_forces: Tensor<B, 3>,
    feet: Tensor<B, 1, Int>,
    threshold: f64,
) -> Tensor<B, 2, Bool> {
    contact_forces
        .select(1, feet) // [N, F, 3]
        .narrow(2, 2, 1) // [N, F, 1]
        .squeeze_dim::<2>(2)
        .greater_elem(threshold)
}

/// One policy step of the feet air time, as legged_gym: `air_time` `[N, F]` (s) before the
/// step, this step's `contact` `[N, F]` (see [`feet_contact`]) and the previous step's
/// `last_contact` `[N, F]` (the raw contact, not the filtered one; the caller keeps
/// `contact` for the next step). Returns the air time for the next step and `first_contact`.
///
/// The contact is filtered by OR with the last step's (legged_gym: PhysX misses contacts on
/// meshes), so a foot counts as in the air from the second step after lift-off. A foot
/// touches down (`first_contact`) when it is in filtered contact with air time above zero;
/// its step then lasted `air_time + dt` (what [`feet_air_time`] rewards). Air time grows by
/// `dt` and returns to zero on filtered contact.
pub fn update_feet_air_time<B: Backend>(
    air_time: Tensor<B, 2>,
    contact: Tensor<B, 2, Bool>,
    last_contact: Tensor<B, 2, Bool>,
    dt: f64,
) -> (Tensor<B, 2>, Tensor<B, 2, Bool>) {
    let contact_filt = contact.bool_or(last_contact); // [N, F]
    let first_contact = air_time
        .clone()
        .greater_elem(0.0)
        .bool_and(contact_filt.clone());
    let new_air_time = air_time.add_scalar(dt).mask_fill(contact_filt, 0.0); // [N, F]
    (new_air_time, first_contact)
}

/// Sum of squares over the columns of `[N, K]`: `[N]`.
fn sum_sq<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 1> {
    x.square().sum_dim(1).squeeze_dim::<1>(1)
}

/// The first two columns (x, y) of `[N, 3]`: `[N, 2]`.
fn xy<B: Backend>(x: &Tensor<B, 2>) -> Tensor<B, 2> {
    x.clone().narrow(1, 0, 2)
}

/// Force norm `[N, K]` on the links `links` `[K]` of `forces` `[N, L, 3]`.
fn link_force_norm<B: Backend>(forces: &Tensor<B, 3>, links: &Tensor<B, 1, Int>) -> Tensor<B, 2> {
    forces
        .clone()
        .select(1, links.clone()) // [N, K, 3]
        .square()
        .sum_dim(2)
        .sqrt()
        .squeeze_dim::<2>(2)
}

/// Norm of the commanded planar velocity `[N]`.
fn command_speed<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    sum_sq(xy(&ctx.commands)).sqrt()
}

/// Tracking of the commanded planar velocity: `exp(-|cmd_xy - v_xy|^2 / sigma)`.
pub fn tracking_lin_vel<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    let error = sum_sq(xy(&ctx.commands).sub(xy(&ctx.lin_vel_b))); // [N]
    error.div_scalar(-ctx.tracking_sigma).exp()
}

/// Tracking of the commanded yaw rate: `exp(-(cmd_wz - w_z)^2 / sigma)`.
pub fn tracking_ang_vel<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    let error = column(&ctx.commands, 2)
        .sub(column(&ctx.ang_vel_b, 2))
        .square(); // [N]
    error.div_scalar(-ctx.tracking_sigma).exp()
}

/// Vertical base velocity: `v_z^2`.
pub fn lin_vel_z<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    column(&ctx.lin_vel_b, 2).square()
}

/// Roll and pitch rates: `w_x^2 + w_y^2`.
pub fn ang_vel_xy<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    sum_sq(xy(&ctx.ang_vel_b))
}

/// Tilt of the base: `g_x^2 + g_y^2` of the projected gravity.
pub fn orientation<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    sum_sq(xy(&ctx.projected_gravity_b))
}

/// Base height off its target: `(h - target)^2`.
pub fn base_height<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    ctx.base_height
        .clone()
        .sub_scalar(ctx.base_height_target)
        .square()
}

/// Joint torques: `sum tau^2`.
pub fn torques<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    sum_sq(ctx.torques.clone())
}

/// Joint velocities: `sum qd^2`.
pub fn dof_vel<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    sum_sq(ctx.joint_vel.clone())
}

/// Joint accelerations over one policy step: `sum ((qd - qd_last) / dt)^2`.
pub fn dof_acc<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    let acc = ctx
        .joint_vel
        .clone()
        .sub(ctx.last_joint_vel.clone())
        .div_scalar(ctx.dt); // [N, J]
    sum_sq(acc)
}

/// Change of the actions: `sum (a - a_last)^2`.
pub fn action_rate<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    sum_sq(ctx.actions.clone().sub(ctx.last_actions.clone()))
}

/// Number of penalised links whose contact force exceeds [`COLLISION_FORCE`].
pub fn collision<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    link_force_norm(&ctx.contact_forces, &ctx.penalised)
        .greater_elem(COLLISION_FORCE)
        .float()
        .sum_dim(1)
        .squeeze_dim::<1>(1)
}

/// 1 for environments that terminated this step (not by time-out), else 0.
pub fn termination<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    ctx.terminated.clone().float()
}

/// How far the joints are outside their soft limits, summed over joints (rad).
pub fn dof_pos_limits<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    let shape = ctx.joint_pos.shape();
    let (lower, upper) = &ctx.soft_dof_pos_limits;
    let below = lower
        .clone()
        .expand(shape.clone())
        .sub(ctx.joint_pos.clone()); // [N, J]
    let above = ctx.joint_pos.clone().sub(upper.clone().expand(shape)); // [N, J]
    below
        .clamp_min(0.0)
        .add(above.clamp_min(0.0))
        .sum_dim(1)
        .squeeze_dim::<1>(1)
}

/// Long steps: `sum_feet (air_time + dt - 0.5) * first_contact`, only while the commanded
/// planar speed exceeds [`STAND_STILL_SPEED`]. `air_time + dt` is the step's whole length
/// (legged_gym adds `dt` before it rewards), so steps shorter than 0.5 s are penalised.
pub fn feet_air_time<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    let step = ctx
        .feet_air_time
        .clone()
        .add_scalar(ctx.dt - FEET_AIR_TIME_TARGET); // [N, F]
    let reward = step
        .mul(ctx.first_contact.clone().float())
        .sum_dim(1)
        .squeeze_dim::<1>(1); // [N]
    let moving = command_speed(ctx).greater_elem(STAND_STILL_SPEED).float(); // [N]
    reward.mul(moving)
}

/// Joints away from the default pose, `sum |q - q_default|`, only while the commanded
/// planar speed is below [`STAND_STILL_SPEED`] (a yaw command alone still counts as still).
pub fn stand_still<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    let default = ctx.default_joint_pos.clone().expand(ctx.joint_pos.shape()); // [N, J]
    let offset = ctx
        .joint_pos
        .clone()
        .sub(default)
        .abs()
        .sum_dim(1)
        .squeeze_dim::<1>(1); // [N]
    let still = command_speed(ctx).lower_elem(STAND_STILL_SPEED).float(); // [N]
    offset.mul(still)
}

/// Foot forces above `max_contact_force`: `sum_feet max(|F| - max_contact_force, 0)`.
pub fn feet_contact_forces<B: Backend>(ctx: &TermContext<B>) -> Tensor<B, 1> {
    link_force_norm(&ctx.contact_forces, &ctx.feet)
        .sub_scalar(ctx.max_contact_force)
        .clamp_min(0.0)
        .sum_dim(1)
        .squeeze_dim::<1>(1)
}

/// Any termination link pressed with a force norm above `min_force` (N; legged_gym 1.0).
pub fn base_contact<B: Backend>(ctx: &TermContext<B>, min_force: f64) -> Tensor<B, 1, Bool> {
    link_force_norm(&ctx.contact_forces, &ctx.termination_links)
        .greater_elem(min_force)
        .any_dim(1)
        .squeeze_dim::<1>(1)
}

/// The base tilted too far: `|g_xy| > limit`, the planar part of the projected gravity
/// (the sine of the tilt angle; 1 with the base on its side).
pub fn bad_orientation<B: Backend>(ctx: &TermContext<B>, limit: f64) -> Tensor<B, 1, Bool> {
    sum_sq(xy(&ctx.projected_gravity_b))
        .sqrt()
        .greater_elem(limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    type B = Flex;

    const N: usize = 3;
    const J: usize = 3;
    const L: usize = 4;
    const F: usize = 2;

    fn dev() -> burn::tensor::Device<B> {
        Default::default()
    }

    fn mat<const K: usize>(rows: [[f32; K]; N]) -> Tensor<B, 2> {
        Tensor::from_floats(rows, &dev())
    }

    fn forces(f: [[[f32; 3]; L]; N]) -> Tensor<B, 3> {
        Tensor::from_floats(f, &dev())
    }

    fn flags<const K: usize>(rows: [[bool; K]; N]) -> Tensor<B, 2, Bool> {
        let data: Vec<bool> = rows.iter().flatten().copied().collect();
        Tensor::from_bool(TensorData::new(data, [N, K]), &dev())
    }

    fn links(ids: &[i32]) -> Tensor<B, 1, Int> {
        Tensor::from_ints(TensorData::new(ids.to_vec(), [ids.len()]), &dev())
    }

    fn vals(t: Tensor<B, 1>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    fn bools(t: Tensor<B, 1, Bool>) -> Vec<bool> {
        t.into_data().iter::<bool>().collect()
    }

    fn assert_close(got: Tensor<B, 1>, want: &[f64], what: &str) {
        let got = vals(got);
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let tol = 1e-5 * w.abs().max(1e-3);
            assert!((g - w).abs() <= tol, "{what}[{i}]: got {g}, want {w}");
        }
    }

    /// A context of 3 environments (3 joints, 4 links: base, thigh, calf, foot; 2 feet)
    /// standing still, upright, at the target height, with every term at its neutral value.
    fn ctx() -> TermContext<B> {
        let z3 = || mat([[0.0; 3]; N]);
        TermContext {
            lin_vel_b: z3(),
            ang_vel_b: z3(),
            projected_gravity_b: mat([[0.0, 0.0, -1.0]; N]),
            commands: z3(),
            joint_pos: z3(),
            default_joint_pos: Tensor::zeros([1, J], &dev()),
            joint_vel: z3(),
            last_joint_vel: z3(),
            dt: 0.02,
            torques: z3(),
            actions: z3(),
            last_actions: z3(),
            contact_forces: Tensor::zeros([N, L, 3], &dev()),
            feet: links(&[2, 3]),
            penalised: links(&[1, 2]),
            termination_links: links(&[0]),
            feet_air_time: mat([[0.0; F]; N]),
            first_contact: flags([[false; F]; N]),
            base_height: Tensor::from_floats([0.25; N], &dev()),
            base_height_target: 0.25,
            soft_dof_pos_limits: (
                Tensor::from_floats([[-1.0, -1.0, -1.0]], &dev()),
                Tensor::from_floats([[1.0, 1.0, 1.0]], &dev()),
            ),
            terminated: Tensor::from_bool(TensorData::new(vec![false; N], [N]), &dev()),
            tracking_sigma: TRACKING_SIGMA,
            max_contact_force: MAX_CONTACT_FORCE,
            friction: Tensor::ones([N], &dev()),
            added_mass: Tensor::zeros([N], &dev()),
            height_scan: Tensor::zeros([N, 1], &dev()),
        }
    }

    #[test]
    fn tracking_lin_vel_is_gaussian_in_planar_error() {
        let mut c = ctx();
        c.commands = mat([[1.0, 0.5, 0.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]);
        // v_z must not count
        c.lin_vel_b = mat([[0.5, 0.5, 9.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
        // err 0.25 -> exp(-1); 0 -> 1; 1 + 1 = 2 -> exp(-8)
        let want = [(-1.0f64).exp(), 1.0, (-8.0f64).exp()];
        assert_close(tracking_lin_vel(&c), &want, "tracking_lin_vel");
    }

    #[test]
    fn tracking_ang_vel_is_gaussian_in_yaw_rate_error() {
        let mut c = ctx();
        c.commands = mat([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, -0.5]]);
        // roll and pitch rates must not count
        c.ang_vel_b = mat([[0.0, 0.0, 0.5], [3.0, 3.0, 0.0], [0.0, 0.0, 0.5]]);
        // 0.5^2 / 0.25 = 1 -> exp(-1); 0 -> 1; 1^2 / 0.25 = 4 -> exp(-4)
        let want = [(-1.0f64).exp(), 1.0, (-4.0f64).exp()];
        assert_close(tracking_ang_vel(&c), &want, "tracking_ang_vel");
    }

    #[test]
    fn lin_vel_z_and_ang_vel_xy_square_the_right_components() {
        let mut c = ctx();
        c.lin_vel_b = mat([[1.0, 2.0, 3.0], [0.0, 0.0, -0.5], [4.0, 4.0, 0.0]]);
        c.ang_vel_b = mat([[1.0, 2.0, 3.0], [-0.5, 0.0, 7.0], [0.0, 0.0, 0.0]]);
        // v_z^2: 9, 0.25, 0
        assert_close(lin_vel_z(&c), &[9.0, 0.25, 0.0], "lin_vel_z");
        // w_x^2 + w_y^2: 1 + 4, 0.25, 0
        assert_close(ang_vel_xy(&c), &[5.0, 0.25, 0.0], "ang_vel_xy");
    }

    #[test]
    fn orientation_is_planar_gravity_squared() {
        let mut c = ctx();
        c.projected_gravity_b = mat([[0.1, 0.2, -0.97], [0.0, 0.0, -1.0], [0.5, -0.5, -0.7]]);
        // 0.01 + 0.04; 0; 0.25 + 0.25
        assert_close(orientation(&c), &[0.05, 0.0, 0.5], "orientation");
    }

    #[test]
    fn base_height_is_squared_offset_from_target() {
        let mut c = ctx();
        c.base_height = Tensor::from_floats([0.35, 0.25, 0.05], &dev());
        // (0.1)^2, 0, (-0.2)^2
        assert_close(base_height(&c), &[0.01, 0.0, 0.04], "base_height");
    }

    #[test]
    fn torques_dof_vel_and_action_rate_sum_squares() {
        let mut c = ctx();
        c.torques = mat([[1.0, 2.0, 3.0], [0.0, -0.5, 0.0], [0.0; 3]]);
        c.joint_vel = mat([[1.0, -2.0, 0.5], [3.0, 0.0, 0.0], [0.0; 3]]);
        c.actions = mat([[1.0, 0.5, 0.0], [0.0; 3], [0.25, 0.0, 0.0]]);
        c.last_actions = mat([[0.0, 0.5, 1.0], [0.0; 3], [0.0, 0.0, 0.5]]);
        // 1 + 4 + 9, 0.25, 0
        assert_close(torques(&c), &[14.0, 0.25, 0.0], "torques");
        // 1 + 4 + 0.25, 9, 0
        assert_close(dof_vel(&c), &[5.25, 9.0, 0.0], "dof_vel");
        // 1 + 0 + 1, 0, 0.0625 + 0.25
        assert_close(action_rate(&c), &[2.0, 0.0, 0.3125], "action_rate");
    }

    #[test]
    fn dof_acc_divides_the_velocity_change_by_dt() {
        let mut c = ctx();
        c.dt = 0.02;
        c.joint_vel = mat([[1.0, 0.0, 0.0], [0.2, 0.1, 0.0], [0.5, 0.5, 0.5]]);
        c.last_joint_vel = mat([[0.9, 0.0, 0.0], [0.2, 0.1, -0.04], [0.5, 0.5, 0.5]]);
        // (0.1 / 0.02)^2 = 25; (0.04 / 0.02)^2 = 4; 0
        assert_close(dof_acc(&c), &[25.0, 4.0, 0.0], "dof_acc");
    }

    #[test]
    fn collision_counts_penalised_links_above_a_tenth_of_a_newton() {
        let mut c = ctx();
        // links: base, thigh, calf, foot; penalised: thigh and calf
        c.contact_forces = forces([
            // thigh 0.2 counts, calf |(0.05, 0.05, 0)| = 0.0707 does not
            [
                [0.0; 3],
                [0.0, 0.0, 0.2],
                [0.05, 0.05, 0.0],
                [0.0, 0.0, 80.0],
            ],
            // both count; the base's 100 N does not
            [
                [0.0, 0.0, 100.0],
                [0.3, 0.0, 0.0],
                [0.0, 0.0, 5.0],
                [0.0; 3],
            ],
            // 0.09 does not count, the foot's force does not
            [[0.0; 3], [0.0, 0.09, 0.0], [0.0; 3], [0.0, 0.0, 50.0]],
        ]);
        assert_close(collision(&c), &[1.0, 2.0, 0.0], "collision");
    }

    #[test]
    fn termination_is_one_for_terminated_environments() {
        let mut c = ctx();
        c.terminated = Tensor::from_bool(TensorData::new(vec![true, false, true], [N]), &dev());
        assert_close(termination(&c), &[1.0, 0.0, 1.0], "termination");
    }

    #[test]
    fn dof_pos_limits_sums_the_overshoot_past_both_limits() {
        let mut c = ctx();
        c.soft_dof_pos_limits = (
            Tensor::from_floats([[-1.0, -0.5, 0.0]], &dev()),
            Tensor::from_floats([[1.0, 0.5, 2.0]], &dev()),
        );
        c.joint_pos = mat([[-1.25, 0.5, 2.5], [0.0, 0.0, 1.0], [1.5, -1.0, -0.5]]);
        // 0.25 + 0 (at the limit) + 0.5; 0; 0.5 + 0.5 + 0.5
        assert_close(dof_pos_limits(&c), &[0.75, 0.0, 1.5], "dof_pos_limits");
    }

    #[test]
    fn soft_limits_shrink_the_range_about_its_middle() {
        let lower = Tensor::<B, 2>::from_floats([[-1.0, 0.0]], &dev());
        let upper = Tensor::<B, 2>::from_floats([[1.0, 2.0]], &dev());
        let (lo, hi) = soft_dof_pos_limits(lower, upper, 0.9);
        // middles 0 and 1, half ranges 1 * 0.9
        assert_close(lo.reshape([2]), &[-0.9, 0.1], "soft lower");
        assert_close(hi.reshape([2]), &[0.9, 1.9], "soft upper");
    }

    #[test]
    fn feet_air_time_rewards_touch_downs_while_moving() {
        let mut c = ctx();
        c.dt = 0.02;
        c.commands = mat([[1.0, 0.0, 0.0], [0.3, 0.4, 0.0], [0.05, 0.05, 1.0]]);
        c.feet_air_time = mat([[0.58, 0.3], [0.18, 0.7], [0.98, 0.0]]);
        c.first_contact = flags([[true, false], [true, true], [true, false]]);
        // (0.58 + 0.02 - 0.5) = 0.1, second foot still in the air;
        // (0.2 - 0.5) + (0.72 - 0.5) = -0.08 at speed 0.5;
        // speed |(0.05, 0.05)| = 0.0707 < 0.1 -> 0
        assert_close(feet_air_time(&c), &[0.1, -0.08, 0.0], "feet_air_time");
    }

    #[test]
    fn stand_still_penalises_the_pose_only_without_a_planar_command() {
        let mut c = ctx();
        c.default_joint_pos = Tensor::from_floats([[0.1, 0.8, -1.5]], &dev());
        c.joint_pos = mat([[0.2, 0.8, -1.0], [0.2, 0.8, -1.0], [0.0, 0.8, -1.5]]);
        c.commands = mat([[0.05, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 1.0]]);
        // 0.1 + 0 + 0.5 at speed 0.05; moving -> 0; yaw only -> still, 0.1
        let want = [0.6, 0.0, 0.1];
        assert_close(stand_still(&c), &want, "stand_still [1, J] default");
        c.default_joint_pos = mat([[0.1, 0.8, -1.5]; N]);
        assert_close(stand_still(&c), &want, "stand_still [N, J] default");
    }

    #[test]
    fn feet_contact_forces_penalise_only_the_excess() {
        let mut c = ctx();
        // feet: calf (2) and foot (3); the thigh's 500 N must not count
        c.contact_forces = forces([
            [[0.0; 3], [0.0, 0.0, 500.0], [0.0; 3], [0.0, 0.0, 150.0]],
            [[0.0; 3], [0.0; 3], [30.0, 40.0, 0.0], [0.0, 0.0, 130.0]],
            [[0.0; 3], [0.0; 3], [60.0, 0.0, 80.0], [0.0, 0.0, 99.0]],
        ]);
        // 150 - 100; |(30, 40, 0)| = 50 -> 0, 130 - 100; |(60, 0, 80)| = 100 -> 0, 99 -> 0
        let want = [50.0, 30.0, 0.0];
        assert_close(feet_contact_forces(&c), &want, "feet_contact_forces");
    }

    #[test]
    fn registries_know_every_listed_name_and_nothing_else() {
        let direct: [(&str, RewardFn<B>); 16] = [
            ("tracking_lin_vel", tracking_lin_vel),
            ("tracking_ang_vel", tracking_ang_vel),
            ("lin_vel_z", lin_vel_z),
            ("ang_vel_xy", ang_vel_xy),
            ("orientation", orientation),
            ("base_height", base_height),
            ("torques", torques),
            ("dof_vel", dof_vel),
            ("dof_acc", dof_acc),
            ("action_rate", action_rate),
            ("collision", collision),
            ("termination", termination),
            ("dof_pos_limits", dof_pos_limits),
            ("feet_air_time", feet_air_time),
            ("stand_still", stand_still),
            ("feet_contact_forces", feet_contact_forces),
        ];
        let names: Vec<&str> = direct.iter().map(|(n, _)| *n).collect();
        assert_eq!(REWARD_TERMS, names.as_slice());

        // A state where every term has its own value, so a swapped entry shows.
        let mut c = ctx();
        c.lin_vel_b = mat([[0.3, 0.1, 0.2], [0.0; 3], [0.0; 3]]);
        c.ang_vel_b = mat([[0.1, 0.2, 0.7], [0.0; 3], [0.0; 3]]);
        c.projected_gravity_b = mat([[0.1, 0.3, -0.9], [0.0, 0.0, -1.0], [0.0, 0.0, -1.0]]);
        c.commands = mat([[1.0, 0.0, 0.0], [0.0; 3], [0.0; 3]]);
        c.joint_pos = mat([[1.2, 0.4, -1.3], [0.0; 3], [0.0; 3]]);
        c.joint_vel = mat([[1.5, 0.0, 0.0], [0.0; 3], [0.0; 3]]);
        c.torques = mat([[2.5, 0.0, 0.0], [0.0; 3], [0.0; 3]]);
        c.actions = mat([[0.7, 0.0, 0.0], [0.0; 3], [0.0; 3]]);
        c.base_height = Tensor::from_floats([0.4, 0.25, 0.25], &dev());
        c.contact_forces = forces([
            [[0.0; 3], [0.0, 0.0, 1.0], [0.0; 3], [0.0, 0.0, 170.0]],
            [[0.0; 3]; L],
            [[0.0; 3]; L],
        ]);
        c.first_contact = flags([[false, true], [false; F], [false; F]]);
        c.feet_air_time = mat([[0.0, 0.9], [0.0; F], [0.0; F]]);
        c.terminated = Tensor::from_bool(TensorData::new(vec![false, true, false], [N]), &dev());
        let mut seen = Vec::new();
        for (name, f) in direct {
            let term = reward_term::<B>(name).unwrap_or_else(|| panic!("{name} is registered"));
            let want = vals(f(&c));
            assert_close(term(&c), &want, name);
            assert!(!seen.contains(&want), "{name} is not told apart: {want:?}");
            seen.push(want);
        }
        assert!(reward_term::<B>("feet_stumble").is_none());
        assert!(reward_term::<B>("").is_none());

        for (name, _) in default_reward_weights() {
            assert!(REWARD_TERMS.contains(&name), "{name} weighted but unknown");
        }
        assert_eq!(TERMINATION_TERMS, ["base_contact", "bad_orientation"]);
        c.projected_gravity_b = mat([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [0.8, 0.0, -0.6]]);
        c.contact_forces = forces([
            [[0.0; 3]; L],
            [[0.0, 0.0, 5.0], [0.0; 3], [0.0; 3], [0.0; 3]],
            [[0.0; 3]; L],
        ]);
        let contact = termination_term::<B>("base_contact").expect("registered");
        assert_eq!(bools(contact(&c, 1.0)), [false, true, false]);
        let tilt = termination_term::<B>("bad_orientation").expect("registered");
        assert_eq!(bools(tilt(&c, 0.5)), [false, false, true]);
        assert!(termination_term::<B>("time_out").is_none());
        for (name, _) in default_terminations() {
            assert!(TERMINATION_TERMS.contains(&name), "{name} unknown");
        }
    }

    #[test]
    fn the_tables_give_legged_gyms_defaults() {
        let weights = [
            ("tracking_lin_vel", 1.0),
            ("tracking_ang_vel", 0.5),
            ("lin_vel_z", -2.0),
            ("ang_vel_xy", -0.05),
            ("orientation", -5.0),
            ("torques", -1e-5),
            ("dof_acc", -2.5e-7),
            ("action_rate", -0.01),
            ("collision", -1.0),
            ("dof_pos_limits", -10.0),
            ("feet_air_time", 1.0),
        ];
        assert_eq!(default_reward_weights(), weights);
        assert_eq!(default_terminations(), [("base_contact", 1.0)]);
        for (row, (name, weight)) in RewardTerm::<B>::ALL.iter().zip(REWARD_WEIGHTS) {
            assert_eq!((row.name, row.default), (*name, *weight));
        }
        let names: Vec<&str> = TerminationTerm::<B>::ALL.iter().map(|t| t.name).collect();
        assert_eq!(names, TERMINATION_TERMS);
    }

    #[test]
    fn base_contact_ends_above_the_threshold_only() {
        let mut c = ctx();
        let n = 4;
        c.termination_links = links(&[0, 1]);
        let mut f = [[[0.0f32; 3]; L]; 4];
        f[0][0] = [0.0, 0.0, 1.0]; // |F| = 1 exactly: not above
        f[0][3] = [0.0, 0.0, 50.0]; // a foot: never ends the episode
        f[1][0] = [0.75, 0.0, 1.0]; // |F| = 1.25
        f[2][0] = [0.0, 0.0, 1.001];
        f[3][1] = [0.0, 2.0, 0.0]; // the second termination link
        c.contact_forces = Tensor::from_floats(f, &dev());
        let got = base_contact(&c, 1.0);
        assert_eq!(got.dims(), [n]);
        assert_eq!(bools(got), [false, true, true, true]);
        // At 1.5 N only the 2 N contact ends an episode.
        assert_eq!(bools(base_contact(&c, 1.5)), [false, false, false, true]);
    }

    #[test]
    fn bad_orientation_ends_beyond_the_limit_only() {
        let mut c = ctx();
        c.projected_gravity_b = Tensor::from_floats(
            [
                [0.375, 0.5, -0.68], // |g_xy| = 0.625 exactly: not beyond
                [0.375, 0.5001, -0.68],
                [0.0, 0.0, -1.0],
                [0.0, -0.7, -0.71],
            ],
            &dev(),
        );
        assert_eq!(
            bools(bad_orientation(&c, 0.625)),
            [false, true, false, true]
        );
        assert_eq!(
            bools(bad_orientation(&c, 0.8)),
            [false, false, false, false]
        );
    }

    #[test]
    fn feet_contact_reads_the_vertical_force_of_the_feet() {
        let c = ctx();
        let f = forces([
            [[0.0, 0.0, 9.0], [0.0; 3], [0.0, 0.0, 1.0], [0.0, 0.0, 1.5]],
            [[0.0; 3], [0.0; 3], [5.0, 5.0, 0.5], [0.0, 0.0, 40.0]],
            [[0.0; 3]; L],
        ]);
        let got = feet_contact(f, c.feet.clone(), FOOT_CONTACT_FORCE);
        // F_z > 1 N, sideways force ignored, the base ignored
        let want = flags([[false, true], [false, true], [false, false]]);
        assert_eq!(
            got.into_data().iter::<bool>().collect::<Vec<_>>(),
            want.into_data().iter::<bool>().collect::<Vec<_>>()
        );
    }

    #[test]
    fn air_time_gives_one_touch_down_with_the_step_length() {
        let dt = 0.02;
        // Foot 0 of one environment: stance, lift-off, 4 steps up, touch-down, stance, a
        // one-step bounce (filtered), stance. Foot 1 stays on the ground.
        let contact0 = [true, false, false, false, false, true, true, false, true];
        let one = |a: bool, b: bool| {
            Tensor::<B, 2, Bool>::from_bool(TensorData::new(vec![a, b], [1, 2]), &dev())
        };
        let mut air = Tensor::<B, 2>::zeros([1, 2], &dev());
        let mut last = one(true, true);
        let mut touch_downs = Vec::new();
        for (k, &c0) in contact0.iter().enumerate() {
            let contact = one(c0, true);
            let before: Vec<f64> = air.clone().into_data().iter::<f64>().collect();
            let (next, first) = update_feet_air_time(air, contact.clone(), last, dt);
            let first: Vec<bool> = first.into_data().iter::<bool>().collect();
            assert!(!first[1], "step {k}: the standing foot never touches down");
            if first[0] {
                touch_downs.push((k, before[0]));
            }
            air = next;
            last = contact;
        }
        // Step 1 (lift-off) is still in filtered contact; steps 2, 3, 4 add 0.02 each; the
        // touch-down at step 5 sees 0.06 and the step lasted 0.06 + dt = 0.08.
        assert_eq!(touch_downs.len(), 1, "{touch_downs:?}");
        let (step, before) = touch_downs[0];
        assert_eq!(step, 5);
        assert!((before - 0.06).abs() < 1e-6, "air time {before}");
        assert_close(air.narrow(1, 0, 1).reshape([1]), &[0.0], "air time after");

        // The reward at that touch-down, moving: 0.08 - 0.5.
        let mut c = ctx();
        c.dt = dt;
        c.commands = mat([[1.0, 0.0, 0.0]; N]);
        c.feet_air_time = mat([[0.06, 0.0]; N]);
        c.first_contact = flags([[true, false]; N]);
        assert_close(feet_air_time(&c), &[-0.42; N], "reward at touch-down");
    }

    #[test]
    fn air_time_accumulates_and_resets() {
        let air = Tensor::<B, 2>::from_floats([[0.0, 0.1], [0.3, 0.0]], &dev());
        let b = |v: [bool; 4]| {
            Tensor::<B, 2, Bool>::from_bool(TensorData::new(v.to_vec(), [2, 2]), &dev())
        };
        // contact, last contact: (F, F) grows; (F, T) filtered, resets; (T, F) touch-down;
        // (F, F) with zero air time grows from zero
        let (next, first) = update_feet_air_time(
            air,
            b([false, false, true, false]),
            b([false, true, false, false]),
            0.02,
        );
        assert_close(next.reshape([4]), &[0.02, 0.0, 0.0, 0.02], "next air time");
        let first: Vec<bool> = first.into_data().iter::<bool>().collect();
        // (F, T) has air 0.1 and filtered contact: it counts as a touch-down too
        assert_eq!(first, [false, true, true, false]);
    }
}
