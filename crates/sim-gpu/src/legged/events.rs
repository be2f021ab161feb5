//! The event manager (IsaacLab's `EventManager`): domain randomisation and disturbances in
//! three modes, `startup` (friction and added base mass, once per environment), `reset`
//! (the root and joint state an episode starts from) and `interval` (pushes); and
//! [`Draw`], the random numbers of one step that the reset events, the commands and the
//! interval events share.

use std::ops::Range;

use burn::tensor::{Bool, Tensor, backend::Backend};
use rl_core::EnvRng;
use sim_physics::Articulation;

use super::choose;
use super::config::{CommandsConfig, EventsConfig};
use crate::Result;
use crate::common::column;

/// Where each random quantity of a step sits in the draw `[N, D]` (one row per environment,
/// one uniform stream each): the column range of each, in the order they are drawn.
#[derive(Clone, Debug)]
pub struct DrawLayout {
    /// Base yaw at reset (1 column).
    base_yaw: Range<usize>,
    /// Base linear and angular velocity at reset (6).
    base_velocity: Range<usize>,
    /// Factors of the default joint positions at reset (`J`).
    joint_position_scale: Range<usize>,
    /// Joint velocities at reset (`J`).
    joint_velocity: Range<usize>,
    /// Velocity command `v_x`, `v_y`, `w_z` (3).
    command: Range<usize>,
    /// Heading command (1).
    heading: Range<usize>,
    /// Planar base velocity a push sets, `v_x`, `v_y` (2).
    push_velocity: Range<usize>,
    /// Seconds to the next push (1).
    push_interval: Range<usize>,
    /// Lower and upper bound of every column.
    low: Vec<f32>,
    high: Vec<f32>,
}

impl DrawLayout {
    /// The layout for a robot of `nj` joints, with the ranges of `events` and `commands`.
    pub fn new(events: &EventsConfig, commands: &CommandsConfig, nj: usize) -> Self {
        let e = events;
        let c = commands;
        let v = e.interval.push_velocity;
        let mut ranges: Vec<[f64; 2]> = Vec::new();
        let mut take = |bounds: &[[f64; 2]]| {
            let start = ranges.len();
            ranges.extend_from_slice(bounds);
            start..ranges.len()
        };
        let base_yaw = take(&[e.reset.base_yaw]);
        let base_velocity = take(&[e.reset.base_velocity; 6]);
        let joint_position_scale = take(&vec![e.reset.joint_position_scale; nj]);
        let joint_velocity = take(&vec![e.reset.joint_velocity; nj]);
        let command = take(&[c.lin_vel_x, c.lin_vel_y, c.ang_vel_z]);
        let heading = take(&[c.heading]);
        let push_velocity = take(&[[-v, v], [-v, v]]);
        let push_interval = take(&[e.interval.push_interval_s]);
        Self {
            base_yaw,
            base_velocity,
            joint_position_scale,
            joint_velocity,
            command,
            heading,
            push_velocity,
            push_interval,
            low: ranges.iter().map(|r| r[0] as f32).collect(),
            high: ranges.iter().map(|r| r[1] as f32).collect(),
        }
    }

    /// One step's random numbers `[N, D]`, all columns together (what [`DrawLayout::draw`]
    /// splits).
    pub(crate) fn uniform<B: Backend>(&self, rng: &mut EnvRng, device: &B::Device) -> Tensor<B, 2> {
        rng.uniform::<B>(&self.low, &self.high, device)
    }

    /// The first column of each part of the draw, in [`Draw`]'s field order, and the width.
    #[cfg(feature = "cube")]
    pub(crate) fn offsets(&self) -> ([usize; 8], usize) {
        (
            [
                self.base_yaw.start,
                self.base_velocity.start,
                self.joint_position_scale.start,
                self.joint_velocity.start,
                self.command.start,
                self.heading.start,
                self.push_velocity.start,
                self.push_interval.start,
            ],
            self.low.len(),
        )
    }

    /// Draws one row per environment from `rng` (one uniform number per column and
    /// environment, from that environment's stream) and names its columns.
    pub fn draw<B: Backend>(&self, rng: &mut EnvRng, device: &B::Device) -> Draw<B> {
        let u = self.uniform::<B>(rng, device); // [N, D]
        let take = |r: &Range<usize>| u.clone().narrow(1, r.start, r.len());
        Draw {
            base_yaw: take(&self.base_yaw),
            base_velocity: take(&self.base_velocity),
            joint_position_scale: take(&self.joint_position_scale),
            joint_velocity: take(&self.joint_velocity),
            command: take(&self.command),
            heading: take(&self.heading),
            push_velocity: take(&self.push_velocity),
            push_interval: take(&self.push_interval),
        }
    }
}

/// The random numbers of one step, by what they randomise (see [`DrawLayout`]).
#[derive(Clone, Debug)]
pub struct Draw<B: Backend> {
    /// Base yaw at reset `[N, 1]` (rad).
    pub base_yaw: Tensor<B, 2>,
    /// Base linear and angular velocity at reset `[N, 6]` (world frame).
    pub base_velocity: Tensor<B, 2>,
    /// Factors of the default joint positions at reset `[N, J]`.
    pub joint_position_scale: Tensor<B, 2>,
    /// Joint velocities at reset `[N, J]`.
    pub joint_velocity: Tensor<B, 2>,
    /// Velocity command `[N, 3]`: `v_x`, `v_y`, `w_z`.
    pub command: Tensor<B, 2>,
    /// Heading command `[N, 1]` (rad).
    pub heading: Tensor<B, 2>,
    /// Planar base velocity of a push `[N, 2]` (world frame).
    pub push_velocity: Tensor<B, 2>,
    /// Seconds to the next push `[N, 1]`.
    pub push_interval: Tensor<B, 2>,
}

/// Startup, reset and interval events, and the randomisation they hold.
#[derive(Clone, Debug)]
pub struct EventManager<B: Backend> {
    cfg: EventsConfig,
    /// Height of the base at reset (m).
    init_height: f64,
    /// Default joint positions `[1, J]`, and the soft joint limits `[1, J]` that clamp the
    /// reset pose.
    default_joint_pos: Tensor<B, 2>,
    soft_limits: (Tensor<B, 2>, Tensor<B, 2>),
    /// The model's link masses `[1, L]`.
    link_masses: Tensor<B, 2>,
    /// Seconds until each environment's next push `[N, 1]`.
    pub push_time: Tensor<B, 2>,
    /// Ground friction coefficient `[N, 1]` (startup).
    pub friction: Tensor<B, 2>,
    /// Mass added to the base `[N, 1]` (kg, startup).
    pub added_mass: Tensor<B, 2>,
}

impl<B: Backend> EventManager<B> {
    /// The events of `cfg` for `n` environments of a robot with the default pose
    /// `default_joint_pos` `[1, J]`, the soft joint limits `soft_limits` `([1, J], [1, J])`
    /// and the link masses `link_masses` `[1, L]`, spawned at `init_height` (m). Nothing
    /// is drawn until [`Self::startup`].
    pub fn new(
        cfg: &EventsConfig,
        init_height: f64,
        default_joint_pos: Tensor<B, 2>,
        soft_limits: (Tensor<B, 2>, Tensor<B, 2>),
        link_masses: Tensor<B, 2>,
        n: usize,
    ) -> Self {
        let zeros = Tensor::<B, 2>::zeros([n, 1], &link_masses.device());
        Self {
            cfg: cfg.clone(),
            init_height,
            default_joint_pos,
            soft_limits,
            link_masses,
            push_time: zeros.clone(),
            friction: zeros.clone(),
            added_mass: zeros,
        }
    }

    /// Startup events: friction and added base mass, one draw `[N, 2]` per environment,
    /// handed to `sim`.
    ///
    /// # Errors
    /// The simulator refusing the values (never for a validated config).
    pub fn startup(&mut self, rng: &mut EnvRng, sim: &mut Articulation<B>) -> Result<()> {
        let s = &self.cfg.startup;
        let low = [s.friction[0] as f32, s.added_mass[0] as f32];
        let high = [s.friction[1] as f32, s.added_mass[1] as f32];
        let u = rng.uniform::<B>(&low, &high, &self.link_masses.device()); // [N, 2]
        self.friction = u.clone().narrow(1, 0, 1);
        self.added_mass = u.narrow(1, 1, 1);
        self.apply_randomisation(sim)
    }

    /// Hands the drawn friction and masses to `sim` (at startup and after loading a
    /// snapshot).
    ///
    /// # Errors
    /// The simulator refusing the values (never for a validated config).
    pub fn apply_randomisation(&self, sim: &mut Articulation<B>) -> Result<()> {
        let n = self.friction.dims()[0];
        let l = self.link_masses.dims()[1];
        sim.set_friction(column(&self.friction, 0))?;
        let mut added = vec![Tensor::<B, 2>::zeros(
            [n, l - 1],
            &self.link_masses.device(),
        )];
        added.insert(0, self.added_mass.clone());
        let masses = self
            .link_masses
            .clone()
            .expand([n, l])
            .add(Tensor::cat(added, 1));
        sim.set_link_masses(masses)?;
        Ok(())
    }

    /// Counts the interval timers down by one policy step of `dt` seconds (right after the
    /// physics, so that a reset's fresh interval is not shortened).
    pub fn advance(&mut self, dt: f64) {
        self.push_time = self.push_time.clone().sub_scalar(dt);
    }

    /// Reset events of the environments in `mask` `[N]`, from `draw`: the root upright at
    /// the spawn height with a random yaw and velocity, the joints at the default pose
    /// scaled per joint (inside the soft limits) with random velocities. Interval events
    /// restart with the episode, as IsaacLab's do (`is_global_time = False`): every episode
    /// meets its first push a fresh interval after its start, whatever the episode before it
    /// did, so episodes are alike however many came before.
    ///
    /// `spawn` `[N, 3]`, where given, moves every robot's spawn point off the origin (rough
    /// terrain: its sub-terrain's origin and a random offset); `init_height` is above it.
    pub fn reset(
        &mut self,
        mask: &Tensor<B, 1, Bool>,
        draw: &Draw<B>,
        sim: &mut Articulation<B>,
        spawn: Option<Tensor<B, 2>>,
    ) {
        let n = mask.dims()[0];
        let nj = self.default_joint_pos.dims()[1];
        let device = &self.link_masses.device();
        // Root: upright at the spawn height, random yaw and velocity.
        let half_yaw = draw.base_yaw.clone().mul_scalar(0.5);
        let zeros = Tensor::<B, 2>::zeros([n, 2], device);
        let mut pos = Tensor::cat(
            vec![
                zeros.clone(),
                Tensor::full([n, 1], self.init_height, device),
            ],
            1,
        );
        if let Some(spawn) = spawn {
            pos = pos + spawn;
        }
        let quat = Tensor::cat(vec![half_yaw.clone().cos(), zeros, half_yaw.sin()], 1);
        let vel = draw.base_velocity.clone();
        sim.set_root_state_where(mask.clone(), Tensor::cat(vec![pos, quat, vel], 1));
        // Joints: the default pose scaled per joint, inside the soft limits.
        let shape = [n, nj];
        let q = self
            .default_joint_pos
            .clone()
            .expand(shape)
            .mul(draw.joint_position_scale.clone())
            .max_pair(self.soft_limits.0.clone().expand(shape))
            .min_pair(self.soft_limits.1.clone().expand(shape));
        sim.set_joint_state_where(mask.clone(), q, draw.joint_velocity.clone());
        self.push_time = choose(mask, self.push_time.clone(), draw.push_interval.clone());
    }

    /// Interval events: pushes, which set the planar base velocity of the environments
    /// whose push timer ran out, from `draw`, and restart their timers.
    pub fn interval(&mut self, draw: &Draw<B>, sim: &mut Articulation<B>) {
        if self.cfg.interval.push_velocity <= 0.0 {
            return;
        }
        let due = column(&self.push_time, 0).lower_equal_elem(0.0); // [N]
        let root = Tensor::cat(
            vec![
                sim.root_pos(),
                sim.root_quat(),
                draw.push_velocity.clone(),
                column(&sim.root_lin_vel_w(), 2).unsqueeze_dim::<2>(1),
                sim.root_ang_vel_w(),
            ],
            1,
        );
        sim.set_root_state_where(due.clone(), root);
        self.push_time = choose(&due, self.push_time.clone(), draw.push_interval.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legged::LeggedConfig;

    #[test]
    fn the_draw_keeps_its_columns_in_order() {
        // Checkpoints store the random streams: a step must draw the same columns in the
        // same order as the first version (reset, command, push), or a resumed run differs.
        let cfg = LeggedConfig::default();
        let l = DrawLayout::new(&cfg.events, &cfg.commands, 12);
        let columns = [
            &l.base_yaw,
            &l.base_velocity,
            &l.joint_position_scale,
            &l.joint_velocity,
            &l.command,
            &l.heading,
            &l.push_velocity,
            &l.push_interval,
        ];
        let want = [0..1, 1..7, 7..19, 19..31, 31..34, 34..35, 35..37, 37..38];
        for (got, want) in columns.into_iter().zip(want) {
            assert_eq!(*got, want);
        }
        assert_eq!((l.low.len(), l.high.len()), (38, 38));
        let c = &cfg.commands;
        assert_eq!(
            l.low[31..35],
            [c.lin_vel_x[0], c.lin_vel_y[0], c.ang_vel_z[0], c.heading[0]].map(|x| x as f32)
        );
        let push = cfg.events.interval.push_interval_s[1] as f32;
        assert_eq!(l.high[37], push);
    }
}
