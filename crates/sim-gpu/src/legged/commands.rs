//! The command manager (IsaacLab's `CommandManager` with one `UniformVelocityCommand`
//! term): velocity commands drawn uniformly from their ranges, resampled every so often and
//! at every reset, optionally steering toward a commanded heading, and the episode's
//! tracking errors as metrics.

use std::collections::BTreeMap;
use std::f64::consts::PI;

use burn::tensor::{Bool, Tensor, backend::Backend};
use sim_physics::Articulation;

use super::choose;
use super::config::CommandsConfig;
use super::events::Draw;
use super::terms::TermContext;
use crate::common::column;

/// Velocity commands `[v_x, v_y, w_z]` in the base frame, their timers and their metrics.
#[derive(Clone, Debug)]
pub struct CommandManager<B: Backend> {
    cfg: CommandsConfig,
    /// Velocity commands `[N, 3]`: `v_x`, `v_y` (m/s), `w_z` (rad/s).
    pub command: Tensor<B, 2>,
    /// Commanded heading `[N, 1]` (rad), for heading mode.
    pub heading: Tensor<B, 2>,
    /// Seconds until each command is resampled `[N, 1]`.
    pub time_left: Tensor<B, 2>,
    /// Episode sums of the planar-velocity and yaw-rate tracking errors and the number of
    /// steps they sum over `[N, 3]` (IsaacLab's `error_vel_xy`, `error_vel_yaw`; the step
    /// count because the episode counter may start at a random value).
    pub error_sums: Tensor<B, 2>,
}

impl<B: Backend> CommandManager<B> {
    /// Zero commands for `n` environments, due for resampling.
    pub fn new(cfg: &CommandsConfig, n: usize, device: &B::Device) -> Self {
        let zeros = |k: usize| Tensor::<B, 2>::zeros([n, k], device);
        Self {
            cfg: cfg.clone(),
            command: zeros(3),
            heading: zeros(1),
            time_left: zeros(1),
            error_sums: zeros(3),
        }
    }

    /// One policy step of `dt` seconds: counts the timers down, resamples the commands that
    /// are due and those of the environments in `resets` `[N]` (just reset) from `draw`,
    /// then, in heading mode, points the yaw-rate command at the heading (IsaacLab's
    /// `CommandManager.compute`).
    pub fn compute(
        &mut self,
        resets: &Tensor<B, 1, Bool>,
        draw: &Draw<B>,
        dt: f64,
        sim: &Articulation<B>,
    ) {
        self.time_left = self.time_left.clone().sub_scalar(dt);
        let expired = column(&self.time_left, 0)
            .lower_equal_elem(0.0)
            .bool_or(resets.clone());
        self.resample(&expired, draw);
        if self.cfg.heading_command {
            self.update_heading(&sim.root_quat());
        }
    }

    /// New commands for the environments in `mask` `[N]`, from `draw`; planar commands
    /// slower than `min_speed` become zero.
    pub fn resample(&mut self, mask: &Tensor<B, 1, Bool>, draw: &Draw<B>) {
        let c = &self.cfg;
        let sampled = draw.command.clone();
        let planar = sampled.clone().narrow(1, 0, 2);
        let speed = planar.clone().square().sum_dim(1).sqrt(); // [N, 1]
        let keep = speed.greater_equal_elem(c.min_speed).float(); // [N, 1]
        let planar = planar.mul(keep);
        let commands = Tensor::cat(vec![planar, sampled.narrow(1, 2, 1)], 1);
        self.command = choose(mask, self.command.clone(), commands);
        self.heading = choose(mask, self.heading.clone(), draw.heading.clone());
        let period = self.time_left.zeros_like().add_scalar(c.resampling_time_s);
        self.time_left = choose(mask, self.time_left.clone(), period);
    }

    /// Heading mode: the yaw-rate command steers the base, of orientation `root_quat`
    /// `[N, 4]`, toward the commanded heading.
    fn update_heading(&mut self, root_quat: &Tensor<B, 2>) {
        let c = &self.cfg;
        let error = wrap(column(&self.heading, 0).sub(yaw(root_quat)));
        let rate = error
            .mul_scalar(c.heading_stiffness)
            .clamp(c.ang_vel_z[0], c.ang_vel_z[1])
            .unsqueeze_dim::<2>(1);
        let planar = self.command.clone().narrow(1, 0, 2);
        self.command = Tensor::cat(vec![planar, rate], 1);
    }

    /// Adds this step's tracking errors, read at `ctx`, to the episode's metrics: planar
    /// speed error `|cmd_xy - v_xy|` and yaw-rate error `|cmd_wz - w_z|`.
    pub fn update_metrics(&mut self, ctx: &TermContext<B>) {
        let lin_error = ctx
            .commands
            .clone()
            .narrow(1, 0, 2)
            .sub(ctx.lin_vel_b.clone().narrow(1, 0, 2))
            .square()
            .sum_dim(1)
            .sqrt();
        let ang_error = ctx
            .commands
            .clone()
            .narrow(1, 2, 1)
            .sub(ctx.ang_vel_b.clone().narrow(1, 2, 1))
            .abs();
        let one = lin_error.ones_like();
        self.error_sums = self.error_sums.clone() + Tensor::cat(vec![lin_error, ang_error, one], 1);
    }

    /// The episode means of the tracking errors `[N]` by name (`lin_vel_error`,
    /// `ang_vel_error`), for the episode log.
    pub fn episode_terms(&self, terms: &mut BTreeMap<String, Tensor<B, 1>>) {
        let steps = column(&self.error_sums, 2).clamp_min(1.0);
        terms.insert(
            "lin_vel_error".to_string(),
            column(&self.error_sums, 0).div(steps.clone()),
        );
        terms.insert(
            "ang_vel_error".to_string(),
            column(&self.error_sums, 1).div(steps),
        );
    }

    /// Clears the metrics of the environments in `mask` `[N]`; their commands are resampled
    /// by the [`Self::compute`] that follows the reset.
    pub fn reset(&mut self, mask: &Tensor<B, 1, Bool>) {
        self.error_sums = choose(mask, self.error_sums.clone(), self.error_sums.zeros_like());
    }
}

/// The base's x axis projected on the ground plane, `(x, y)` `[N]` each and not normalised,
/// of unit quaternions `[N, 4]` `(w, x, y, z)`: `(cos yaw, sin yaw)` times a positive factor.
pub(crate) fn heading_xy<B: Backend>(quat: &Tensor<B, 2>) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [w, x, y, z] = [0, 1, 2, 3].map(|i| column(quat, i));
    let s = (w * z.clone() + x * y.clone()).mul_scalar(2.0);
    let c = (y.clone() * y + z.clone() * z)
        .mul_scalar(-2.0)
        .add_scalar(1.0);
    (c, s)
}

/// The yaw `[N]` of unit quaternions `[N, 4]` `(w, x, y, z)`.
fn yaw<B: Backend>(quat: &Tensor<B, 2>) -> Tensor<B, 1> {
    let (c, s) = heading_xy(quat);
    s.atan2(c)
}

/// Angles `[N]` wrapped into `[-pi, pi)`.
fn wrap<B: Backend>(a: Tensor<B, 1>) -> Tensor<B, 1> {
    a.add_scalar(PI).remainder_scalar(2.0 * PI).sub_scalar(PI)
}
