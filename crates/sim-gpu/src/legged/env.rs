//! The manager-based legged locomotion environment: a batch of `N` robots on flat ground
//! that track random velocity commands, assembled from the terms of [`super::terms`] and
//! [`super::observations`] as a [`LeggedConfig`] lists them.
//!
//! A step follows IsaacLab's `ManagerBasedRLEnv`: the action is processed once (clipped,
//! scaled, offset by the default pose); for each of `decimation` physics steps the PD drives
//! track it; then terminations, rewards (each weighted and multiplied by the policy step),
//! the reset of finished environments (reset events), command resampling, interval events
//! (pushes) and finally the observations. Everything stays on the device; random numbers
//! come from one seeded stream per environment, drawn on the host and uploaded.

use std::collections::BTreeMap;
use std::f64::consts::PI;

use burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};
use rl_core::{
    ActionSpace, EnvRng, EnvSnapshot, EnvSpec, EpisodeInfo, HostTensor, Observations, Scene,
    SceneShape, StepOutput, VecEnv,
};

use super::config::{LeggedConfig, ObsGroupConfig, Scale, config_error, matches};
use super::observations::{ObsFn, observation_term};
use super::terms::{
    FOOT_CONTACT_FORCE, RewardFn, TermContext, TerminationFn, feet_contact, reward_term,
    soft_dof_pos_limits, termination_term, update_feet_air_time,
};
use crate::common::{check_shape, column, row};
use crate::{Error, Result};
use sim_physics::{Articulation, BaseKind, Model, Pose, Shape, UrdfOptions, robots};

/// Name of the random streams in a snapshot.
const RNG: &str = "rng";

/// One observation term, ready to evaluate.
struct ObsTerm<B: Backend> {
    function: ObsFn<B>,
    /// Scale `[1, K]`.
    scale: Tensor<B, 2>,
    clip: Option<f64>,
    /// Columns of the term in its group.
    start: usize,
    width: usize,
}

/// One observation group, ready to evaluate.
struct ObsGroup<B: Backend> {
    name: String,
    terms: Vec<ObsTerm<B>>,
    clip: Option<f64>,
    /// Noise half-widths `[1, D]` when the group is noisy.
    noise: Option<Tensor<B, 2>>,
    width: usize,
}

/// The state of the task beyond the simulator's, every tensor `[N, K]`.
#[derive(Clone)]
struct TaskState<B: Backend> {
    actions: Tensor<B, 2>,
    last_actions: Tensor<B, 2>,
    last_joint_vel: Tensor<B, 2>,
    feet_air_time: Tensor<B, 2>,
    /// Raw foot contact of the last step, 1 or 0.
    last_contact: Tensor<B, 2>,
    commands: Tensor<B, 2>,
    /// Commanded heading (rad), `[N, 1]`.
    heading: Tensor<B, 2>,
    /// Seconds until the command is resampled, `[N, 1]`.
    command_time: Tensor<B, 2>,
    /// Seconds until the next push, `[N, 1]`.
    push_time: Tensor<B, 2>,
    /// Policy steps into the episode, `[N, 1]`.
    episode_length: Tensor<B, 2>,
    /// Undiscounted return of the episode, `[N, 1]`.
    returns: Tensor<B, 2>,
    /// Episode sum of every weighted reward term `[N, R]`.
    reward_sums: Tensor<B, 2>,
    /// Episode sums of the linear and angular velocity tracking errors and the number of
    /// steps they sum over `[N, 3]` (the episode counter starts at a random value).
    error_sums: Tensor<B, 2>,
    /// Friction coefficient and added base mass, `[N, 1]` each.
    friction: Tensor<B, 2>,
    added_mass: Tensor<B, 2>,
}

impl<B: Backend> TaskState<B> {
    /// The named entries, for snapshots.
    fn entries(&self) -> Vec<(&'static str, &Tensor<B, 2>)> {
        vec![
            ("actions", &self.actions),
            ("last_actions", &self.last_actions),
            ("last_joint_vel", &self.last_joint_vel),
            ("feet_air_time", &self.feet_air_time),
            ("last_contact", &self.last_contact),
            ("commands", &self.commands),
            ("heading", &self.heading),
            ("command_time", &self.command_time),
            ("push_time", &self.push_time),
            ("episode_length", &self.episode_length),
            ("returns", &self.returns),
            ("reward_sums", &self.reward_sums),
            ("error_sums", &self.error_sums),
            ("friction", &self.friction),
            ("added_mass", &self.added_mass),
        ]
    }

    fn entries_mut(&mut self) -> Vec<(&'static str, &mut Tensor<B, 2>)> {
        vec![
            ("actions", &mut self.actions),
            ("last_actions", &mut self.last_actions),
            ("last_joint_vel", &mut self.last_joint_vel),
            ("feet_air_time", &mut self.feet_air_time),
            ("last_contact", &mut self.last_contact),
            ("commands", &mut self.commands),
            ("heading", &mut self.heading),
            ("command_time", &mut self.command_time),
            ("push_time", &mut self.push_time),
            ("episode_length", &mut self.episode_length),
            ("returns", &mut self.returns),
            ("reward_sums", &mut self.reward_sums),
            ("error_sums", &mut self.error_sums),
            ("friction", &mut self.friction),
            ("added_mass", &mut self.added_mass),
        ]
    }
}

/// Columns of the random draw made at every step (one row per environment).
struct Draw {
    /// Commands: `v_x`, `v_y`, `w_z`, heading.
    command: usize,
    /// Pushes: `v_x`, `v_y`, the next interval.
    push: usize,
    low: Vec<f32>,
    high: Vec<f32>,
}

impl Draw {
    fn new(cfg: &LeggedConfig, nj: usize) -> Self {
        let e = &cfg.events;
        let c = &cfg.commands;
        let v = e.interval.push_velocity;
        let mut ranges: Vec<[f64; 2]> = vec![e.reset.base_yaw];
        ranges.extend(std::iter::repeat_n(e.reset.base_velocity, 6));
        ranges.extend(std::iter::repeat_n(e.reset.joint_position_scale, nj));
        ranges.extend(std::iter::repeat_n(e.reset.joint_velocity, nj));
        let reset = ranges.len();
        ranges.extend([c.lin_vel_x, c.lin_vel_y, c.ang_vel_z, c.heading]);
        ranges.extend([[-v, v], [-v, v], e.interval.push_interval_s]);
        // Columns 0..reset: yaw, six base velocities, `J` joint scales, `J` joint velocities.
        Self {
            command: reset,
            push: reset + 4,
            low: ranges.iter().map(|r| r[0] as f32).collect(),
            high: ranges.iter().map(|r| r[1] as f32).collect(),
        }
    }
}

/// A batch of legged robots tracking velocity commands; see the module docs.
pub struct LeggedEnv<B: Backend> {
    cfg: LeggedConfig,
    spec: EnvSpec,
    device: B::Device,
    sim: Articulation<B>,
    rng: EnvRng,
    draw: Draw,
    /// The policy step (s).
    dt: f64,
    feet: Tensor<B, 1, Int>,
    penalised: Tensor<B, 1, Int>,
    termination_links: Tensor<B, 1, Int>,
    /// Default joint positions `[1, J]`, and the soft joint limits `[1, J]`.
    default_joint_pos: Tensor<B, 2>,
    soft_limits: (Tensor<B, 2>, Tensor<B, 2>),
    /// The model's link masses `[1, L]`.
    link_masses: Tensor<B, 2>,
    /// Reward terms `(name, term, weight * dt)`, the `termination` term apart.
    rewards: Vec<(String, RewardFn<B>, f64)>,
    termination_reward: Option<(RewardFn<B>, f64)>,
    terminations: Vec<(TerminationFn<B>, f64)>,
    groups: Vec<ObsGroup<B>>,
    state: TaskState<B>,
    obs: Observations<B>,
}

impl<B: Backend> std::fmt::Debug for LeggedEnv<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeggedEnv")
            .field("task", &self.spec.task)
            .field("num_envs", &self.spec.num_envs)
            .finish_non_exhaustive()
    }
}

/// An index tensor `[K]` from host values.
fn index<B: Backend>(v: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let data: Vec<i64> = v.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(data, [v.len()]), device)
}

/// `[N, 1]` mask from `[N]`, expanded to `[N, K]`.
fn rows_mask<B: Backend>(mask: &Tensor<B, 1, Bool>, k: usize) -> Tensor<B, 2, Bool> {
    let n = mask.dims()[0];
    mask.clone().unsqueeze_dim::<2>(1).expand([n, k])
}

/// Keeps `old` where `mask` `[N]` is false and takes `new` where it is true.
fn choose<B: Backend>(
    mask: &Tensor<B, 1, Bool>,
    old: Tensor<B, 2>,
    new: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let k = old.dims()[1];
    old.mask_where(rows_mask(mask, k), new)
}

/// The yaw `[N]` of unit quaternions `[N, 4]` `(w, x, y, z)`.
fn yaw<B: Backend>(quat: &Tensor<B, 2>) -> Tensor<B, 1> {
    let [w, x, y, z] = [0, 1, 2, 3].map(|i| column(quat, i));
    let s = (w * z.clone() + x * y.clone()).mul_scalar(2.0);
    let c = (y.clone() * y + z.clone() * z)
        .mul_scalar(-2.0)
        .add_scalar(1.0);
    s.atan2(c)
}

/// Angles `[N]` wrapped into `[-pi, pi)`.
fn wrap<B: Backend>(a: Tensor<B, 1>) -> Tensor<B, 1> {
    a.add_scalar(PI).remainder_scalar(2.0 * PI).sub_scalar(PI)
}

/// Link indices of the links matching any of `patterns`, in model order; errors naming
/// `field` when a pattern matches nothing.
fn links_matching(
    model: &Model,
    patterns: &[String],
    task: &str,
    field: &str,
) -> Result<Vec<usize>> {
    for p in patterns {
        if !model.links.iter().any(|l| matches(p, &l.name)) {
            let names: Vec<&str> = model.links.iter().map(|l| l.name.as_str()).collect();
            return Err(config_error(
                task,
                field,
                format!("`{p}` matches no link; links: {}", names.join(", ")),
            ));
        }
    }
    Ok(model
        .links
        .iter()
        .enumerate()
        .filter(|(_, l)| patterns.iter().any(|p| matches(p, &l.name)))
        .map(|(i, _)| i)
        .collect())
}

impl<B: Backend> LeggedEnv<B> {
    /// Builds `num_envs` robots of the task `task` (its name, for errors and the spec) as
    /// `cfg` describes, seeded by `seed`.
    ///
    /// # Errors
    /// [`Error::TaskConfig`] naming the field for an invalid config (a value out of range,
    /// an unknown term, a link pattern that matches nothing), [`Error::Urdf`] for a robot
    /// file that cannot be loaded, [`Error::NoEnvs`] for zero environments.
    pub fn new(
        task: &str,
        cfg: LeggedConfig,
        num_envs: usize,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self> {
        cfg.validate(task)?;
        if num_envs == 0 {
            return Err(Error::NoEnvs { task: task.into() });
        }
        let n = num_envs;
        let model = match &cfg.robot.urdf {
            None => robots::quadruped()?,
            Some(path) => sim_physics::load_urdf(
                path,
                &UrdfOptions {
                    base: BaseKind::Floating,
                    ..UrdfOptions::default()
                },
            )?,
        };
        if model.base != BaseKind::Floating {
            return Err(config_error(
                task,
                "robot.urdf",
                "the robot needs a floating base",
            ));
        }
        let nj = model.num_joints();
        let default_pos = default_joint_pos(&model, &cfg, task)?;
        let feet = links_matching(&model, &cfg.robot.feet, task, "robot.feet")?;
        let penalised = links_matching(&model, &cfg.robot.penalised, task, "robot.penalised")?;
        let termination_links = links_matching(
            &model,
            &cfg.robot.termination_links,
            task,
            "robot.termination_links",
        )?;
        let (lower, upper): (Vec<f32>, Vec<f32>) = model
            .joints
            .iter()
            .map(|j| {
                let (lo, hi) = j.limits.unwrap_or((-1e3, 1e3));
                (lo as f32, hi as f32)
            })
            .unzip();
        let link_masses = row::<B>(model.links.iter().map(|l| l.mass as f32).collect(), device);
        let base_mass = model.links[0].mass;
        if base_mass + cfg.events.startup.added_mass[0] <= 0.0 {
            return Err(config_error(
                task,
                "events.startup.added_mass",
                format!("would leave the base ({base_mass} kg) with no mass"),
            ));
        }

        let dt = cfg.sim.dt * cfg.decimation as f64;
        let max_episode_length = (cfg.episode_length_s / dt).ceil().max(1.0) as usize;
        let mut sim = Articulation::<B>::new(model, cfg.sim.clone(), n, device)?;
        let gains = |v: f64| Tensor::<B, 2>::full([n, nj], v, device);
        sim.set_drive_gains(gains(cfg.actions.stiffness), gains(cfg.actions.damping))?;

        let mut rewards = Vec::new();
        let mut termination_reward = None;
        for name in super::terms::REWARD_TERMS {
            let Some(&w) = cfg.rewards.weights.get(*name) else {
                continue;
            };
            let term = reward_term::<B>(name).ok_or_else(|| {
                config_error(
                    task,
                    &format!("rewards.weights.{name}"),
                    "unknown reward term",
                )
            })?;
            if w == 0.0 {
                continue;
            }
            if *name == "termination" {
                termination_reward = Some((term, w * dt));
            } else {
                rewards.push((name.to_string(), term, w * dt));
            }
        }
        let mut terminations = Vec::new();
        for (name, &threshold) in &cfg.terminations {
            let term = termination_term::<B>(name).ok_or_else(|| {
                config_error(
                    task,
                    &format!("terminations.{name}"),
                    "unknown termination term",
                )
            })?;
            terminations.push((term, threshold));
        }

        let f = feet.len();
        let zeros = |k: usize| Tensor::<B, 2>::zeros([n, k], device);
        let num_terms = rewards.len() + usize::from(termination_reward.is_some());
        let state = TaskState {
            actions: zeros(nj),
            last_actions: zeros(nj),
            last_joint_vel: zeros(nj),
            feet_air_time: zeros(f),
            last_contact: zeros(f),
            commands: zeros(3),
            heading: zeros(1),
            command_time: zeros(1),
            push_time: zeros(1),
            episode_length: zeros(1),
            returns: zeros(1),
            reward_sums: zeros(num_terms),
            error_sums: zeros(3),
            friction: zeros(1),
            added_mass: zeros(1),
        };
        let lower = row::<B>(lower, device);
        let upper = row::<B>(upper, device);
        let soft_limits = soft_dof_pos_limits(lower, upper, cfg.rewards.soft_dof_pos_limit);
        let draw = Draw::new(&cfg, nj);
        let mut env = Self {
            spec: EnvSpec {
                task: task.to_string(),
                num_envs: n,
                obs_groups: BTreeMap::new(),
                action_space: ActionSpace::Box {
                    low: vec![-cfg.actions.clip as f32; nj],
                    high: vec![cfg.actions.clip as f32; nj],
                },
                max_episode_length,
                step_dt: dt as f32,
            },
            device: device.clone(),
            rng: EnvRng::new(seed, n),
            draw,
            dt,
            feet: index(&feet, device),
            penalised: index(&penalised, device),
            termination_links: index(&termination_links, device),
            default_joint_pos: row(default_pos.iter().map(|&q| q as f32).collect(), device),
            soft_limits,
            link_masses,
            rewards,
            termination_reward,
            terminations,
            groups: Vec::new(),
            state,
            obs: Observations::new(),
            sim,
            cfg,
        };
        env.startup_events()?;
        env.reset_all();
        // The groups' widths come from evaluating their terms once.
        let ctx = env.context(None);
        let mut groups = Vec::new();
        for (name, g) in [
            ("policy", &env.cfg.observations.policy),
            ("critic", &env.cfg.observations.critic),
        ] {
            if g.terms.is_empty() {
                continue;
            }
            groups.push(build_group(name, g, &ctx, task, device)?);
        }
        for g in &groups {
            env.spec.obs_groups.insert(g.name.clone(), g.width);
        }
        env.groups = groups;
        env.obs = env.observe(&env.context(None), true);
        Ok(env)
    }

    /// The simulator (for tests and tools).
    pub fn articulation(&self) -> &Articulation<B> {
        &self.sim
    }

    /// The task's configuration.
    pub fn config(&self) -> &LeggedConfig {
        &self.cfg
    }

    /// Velocity commands `[N, 3]`.
    pub fn commands(&self) -> Tensor<B, 2> {
        self.state.commands.clone()
    }

    /// Sets the velocity commands `[N, 3]` of every environment (for evaluation and tests);
    /// they hold until the next resampling.
    ///
    /// # Errors
    /// A shape that does not fit.
    pub fn set_commands(&mut self, commands: Tensor<B, 2>) -> Result<()> {
        check_shape("commands", commands.dims(), [self.spec.num_envs, 3])?;
        self.state.commands = commands.to_device(&self.device);
        Ok(())
    }

    /// Friction coefficients `[N]` and masses added to the base `[N]` (kg) that the startup
    /// events drew.
    pub fn randomisation(&self) -> (Tensor<B, 1>, Tensor<B, 1>) {
        (
            column(&self.state.friction, 0),
            column(&self.state.added_mass, 0),
        )
    }

    /// Startup events: friction and added base mass, one draw per environment.
    fn startup_events(&mut self) -> Result<()> {
        let s = &self.cfg.events.startup;
        let low = [s.friction[0] as f32, s.added_mass[0] as f32];
        let high = [s.friction[1] as f32, s.added_mass[1] as f32];
        let u = self.rng.uniform::<B>(&low, &high, &self.device); // [N, 2]
        self.state.friction = u.clone().narrow(1, 0, 1);
        self.state.added_mass = u.narrow(1, 1, 1);
        self.apply_randomisation()
    }

    /// Hands the drawn friction and masses to the simulator.
    fn apply_randomisation(&mut self) -> Result<()> {
        let n = self.spec.num_envs;
        let l = self.link_masses.dims()[1];
        self.sim.set_friction(column(&self.state.friction, 0))?;
        let mut added = vec![Tensor::<B, 2>::zeros([n, l - 1], &self.device)];
        added.insert(0, self.state.added_mass.clone());
        let masses = self
            .link_masses
            .clone()
            .expand([n, l])
            .add(Tensor::cat(added, 1));
        self.sim.set_link_masses(masses)?;
        Ok(())
    }

    /// Everything the terms read, at the current state. `step` gives this step's feet air
    /// time, first contacts and terminations; without it they are this state's air time,
    /// no first contact and no termination (for observations).
    fn context(&self, step: Option<StepTerms<B>>) -> TermContext<B> {
        let n = self.spec.num_envs;
        let sim = &self.sim;
        let step = step.unwrap_or_else(|| StepTerms {
            feet_air_time: self.state.feet_air_time.clone(),
            first_contact: self.state.feet_air_time.zeros_like().greater_elem(1.0),
            terminated: Tensor::<B, 1>::zeros([n], &self.device).greater_elem(1.0),
        });
        let height = column(&sim.root_pos(), 2).sub_scalar(self.cfg.sim.contact.ground_height);
        TermContext {
            lin_vel_b: sim.root_lin_vel_b(),
            ang_vel_b: sim.root_ang_vel_b(),
            projected_gravity_b: sim.projected_gravity_b(),
            commands: self.state.commands.clone(),
            joint_pos: sim.joint_pos(),
            default_joint_pos: self.default_joint_pos.clone(),
            joint_vel: sim.joint_vel(),
            last_joint_vel: self.state.last_joint_vel.clone(),
            dt: self.dt,
            torques: sim.applied_torque(),
            actions: self.state.actions.clone(),
            last_actions: self.state.last_actions.clone(),
            contact_forces: sim.contact_forces(),
            feet: self.feet.clone(),
            penalised: self.penalised.clone(),
            termination_links: self.termination_links.clone(),
            feet_air_time: step.feet_air_time,
            first_contact: step.first_contact,
            base_height: height,
            base_height_target: self.cfg.robot.base_height_target,
            soft_dof_pos_limits: self.soft_limits.clone(),
            terminated: step.terminated,
            tracking_sigma: self.cfg.rewards.tracking_sigma,
            max_contact_force: self.cfg.rewards.max_contact_force,
            friction: column(&self.state.friction, 0),
            added_mass: column(&self.state.added_mass, 0),
        }
    }

    /// The observation groups at `ctx`, with noise when `noisy` (and the group asks for it).
    fn observe(&mut self, ctx: &TermContext<B>, noisy: bool) -> Observations<B> {
        let mut obs = Observations::new();
        for g in &self.groups {
            let noise = match (&g.noise, noisy) {
                (Some(amplitude), true) => {
                    let w = g.width;
                    let u = self
                        .rng
                        .uniform::<B>(&vec![-1.0; w], &vec![1.0; w], &self.device);
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

    /// Resets every environment (all of its state) and, with `random_episode_start`,
    /// spreads the episode counters over the episode, as rsl_rl's `init_at_random_ep_len`,
    /// so that time-outs do not all come at once.
    fn reset_all(&mut self) {
        let n = self.spec.num_envs;
        let all = Tensor::<B, 1>::ones([n], &self.device).greater_elem(0.0);
        let u = self
            .rng
            .uniform::<B>(&self.draw.low, &self.draw.high, &self.device);
        self.reset_where(&all, &u);
        self.resample_commands(&all, &u);
        let max = self.spec.max_episode_length as f32;
        let start = self.rng.uniform::<B>(&[0.0], &[max], &self.device).floor();
        if self.cfg.random_episode_start {
            self.state.episode_length = start;
        }
    }

    /// Reset events for the environments in `mask` `[N]`, from the random draw `u`.
    fn reset_where(&mut self, mask: &Tensor<B, 1, Bool>, u: &Tensor<B, 2>) {
        let n = self.spec.num_envs;
        let nj = self.default_joint_pos.dims()[1];
        let device = &self.device;
        // Root: upright at the spawn height, random yaw and velocity.
        let half_yaw = u.clone().narrow(1, 0, 1).mul_scalar(0.5);
        let zeros = Tensor::<B, 2>::zeros([n, 2], device);
        let pos = Tensor::cat(
            vec![
                zeros.clone(),
                Tensor::full([n, 1], self.cfg.robot.init_height, device),
            ],
            1,
        );
        let quat = Tensor::cat(vec![half_yaw.clone().cos(), zeros, half_yaw.sin()], 1);
        let vel = u.clone().narrow(1, 1, 6);
        self.sim
            .set_root_state_where(mask.clone(), Tensor::cat(vec![pos, quat, vel], 1));
        // Joints: the default pose scaled per joint, inside the soft limits.
        let shape = [n, nj];
        let q = self
            .default_joint_pos
            .clone()
            .expand(shape)
            .mul(u.clone().narrow(1, 7, nj))
            .max_pair(self.soft_limits.0.clone().expand(shape))
            .min_pair(self.soft_limits.1.clone().expand(shape));
        let qd = u.clone().narrow(1, 7 + nj, nj);
        self.sim.set_joint_state_where(mask.clone(), q, qd.clone());
        // Task state.
        let s = &mut self.state;
        let zero = |t: &Tensor<B, 2>| t.zeros_like();
        s.actions = choose(mask, s.actions.clone(), zero(&s.actions));
        s.last_actions = choose(mask, s.last_actions.clone(), zero(&s.last_actions));
        s.last_joint_vel = choose(mask, s.last_joint_vel.clone(), qd);
        s.feet_air_time = choose(mask, s.feet_air_time.clone(), zero(&s.feet_air_time));
        s.last_contact = choose(mask, s.last_contact.clone(), zero(&s.last_contact));
        s.episode_length = choose(mask, s.episode_length.clone(), zero(&s.episode_length));
        s.returns = choose(mask, s.returns.clone(), zero(&s.returns));
        s.reward_sums = choose(mask, s.reward_sums.clone(), zero(&s.reward_sums));
        s.error_sums = choose(mask, s.error_sums.clone(), zero(&s.error_sums));
        // Interval events restart with the episode, as IsaacLab's do (`is_global_time =
        // False`): every episode meets its first push a fresh interval after its start,
        // whatever the episode before it did, so episodes are alike however many came before.
        let next_push = u.clone().narrow(1, self.draw.push + 2, 1);
        s.push_time = choose(mask, s.push_time.clone(), next_push);
    }

    /// New commands for the environments in `mask` `[N]`, from the random draw `u`.
    fn resample_commands(&mut self, mask: &Tensor<B, 1, Bool>, u: &Tensor<B, 2>) {
        let c = &self.cfg.commands;
        let sampled = u.clone().narrow(1, self.draw.command, 3);
        let planar = sampled.clone().narrow(1, 0, 2);
        let speed = planar.clone().square().sum_dim(1).sqrt(); // [N, 1]
        let keep = speed.greater_equal_elem(c.min_speed).float(); // [N, 1]
        let planar = planar.mul(keep);
        let commands = Tensor::cat(vec![planar, sampled.narrow(1, 2, 1)], 1);
        let s = &mut self.state;
        s.commands = choose(mask, s.commands.clone(), commands);
        let heading = u.clone().narrow(1, self.draw.command + 3, 1);
        s.heading = choose(mask, s.heading.clone(), heading);
        let period = s.command_time.zeros_like().add_scalar(c.resampling_time_s);
        s.command_time = choose(mask, s.command_time.clone(), period);
    }

    /// Heading mode: the yaw-rate command steers toward the commanded heading.
    fn heading_commands(&mut self) {
        let c = &self.cfg.commands;
        let error = wrap(column(&self.state.heading, 0).sub(yaw(&self.sim.root_quat())));
        let rate = error
            .mul_scalar(c.heading_stiffness)
            .clamp(c.ang_vel_z[0], c.ang_vel_z[1])
            .unsqueeze_dim::<2>(1);
        let planar = self.state.commands.clone().narrow(1, 0, 2);
        self.state.commands = Tensor::cat(vec![planar, rate], 1);
    }

    /// Interval events: pushes of the environments whose push timer ran out.
    fn push(&mut self, u: &Tensor<B, 2>) {
        if self.cfg.events.interval.push_velocity <= 0.0 {
            return;
        }
        let due = column(&self.state.push_time, 0).lower_equal_elem(0.0); // [N]
        let p = self.draw.push;
        let root = Tensor::cat(
            vec![
                self.sim.root_pos(),
                self.sim.root_quat(),
                u.clone().narrow(1, p, 2),
                column(&self.sim.root_lin_vel_w(), 2).unsqueeze_dim::<2>(1),
                self.sim.root_ang_vel_w(),
            ],
            1,
        );
        self.sim.set_root_state_where(due.clone(), root);
        let next = u.clone().narrow(1, p + 2, 1);
        self.state.push_time = choose(&due, self.state.push_time.clone(), next);
    }

    /// Reads the shapes of environment `env_id` back from the device.
    fn read_scene(&self, env_id: usize) -> rl_core::Result<Scene> {
        let n = self.spec.num_envs;
        if env_id >= n {
            return Err(rl_core::Error::Shape {
                what: format!("environment index {env_id} of {n}"),
                expected: vec![n],
                got: vec![env_id],
            });
        }
        let (pos, rot) = self.sim.link_poses();
        let l = pos.dims()[1];
        let pos: Vec<f64> = HostTensor::read(pos.narrow(0, env_id, 1))?
            .data
            .into_iter()
            .map(f64::from)
            .collect();
        let rot: Vec<f64> = HostTensor::read(rot.narrow(0, env_id, 1))?
            .data
            .into_iter()
            .map(f64::from)
            .collect();
        let model = self.sim.model();
        let poses: Vec<Pose> = (0..l)
            .map(|k| {
                let mut rotation = [[0.0; 3]; 3];
                for (a, r) in rotation.iter_mut().enumerate() {
                    for (b, e) in r.iter_mut().enumerate() {
                        *e = rot[k * 9 + a * 3 + b];
                    }
                }
                Pose {
                    xyz: [pos[k * 3], pos[k * 3 + 1], pos[k * 3 + 2]],
                    rotation,
                }
            })
            .collect();
        let f = |p: [f64; 3]| p.map(|x| x as f32);
        let mut shapes = Vec::new();
        // The skeleton: every link's origin joined to its parent's.
        for (j, joint) in model.joints.iter().enumerate() {
            shapes.push(SceneShape::Capsule {
                a: f(poses[joint.parent].xyz),
                b: f(poses[j + 1].xyz),
                radius: 0.012,
            });
        }
        for (k, link) in model.links.iter().enumerate() {
            for c in &link.collisions {
                let pose = poses[k].compose(&c.origin);
                shapes.push(match c.shape {
                    Shape::Sphere { radius } => SceneShape::Sphere {
                        center: f(pose.xyz),
                        radius: radius as f32,
                    },
                    Shape::Capsule { radius, length } => SceneShape::Capsule {
                        a: f(pose.apply([0.0, 0.0, -length / 2.0])),
                        b: f(pose.apply([0.0, 0.0, length / 2.0])),
                        radius: radius as f32,
                    },
                    Shape::Box { size } => {
                        let h = size.map(|s| s / 2.0);
                        let corners = std::array::from_fn(|i| {
                            let sign = |bit: usize| if i & bit == 0 { -1.0 } else { 1.0 };
                            f(pose.apply([sign(1) * h[0], sign(2) * h[1], sign(4) * h[2]]))
                        });
                        SceneShape::Box { corners }
                    }
                });
            }
        }
        Ok(Scene {
            shapes,
            focus: f(poses[0].xyz),
            ground: Some(self.cfg.sim.contact.ground_height as f32),
            dt: self.dt as f32,
        })
    }
}

/// This step's feet air time, first contacts and terminations, for [`LeggedEnv::context`].
struct StepTerms<B: Backend> {
    feet_air_time: Tensor<B, 2>,
    first_contact: Tensor<B, 2, Bool>,
    terminated: Tensor<B, 1, Bool>,
}

/// The default joint positions of `model`: the config's patterns, or the built-in
/// quadruped's standing pose.
fn default_joint_pos(model: &Model, cfg: &LeggedConfig, task: &str) -> Result<Vec<f64>> {
    let patterns = &cfg.robot.default_joint_pos;
    if patterns.is_empty() {
        if cfg.robot.urdf.is_some() {
            return Err(config_error(
                task,
                "robot.default_joint_pos",
                "a robot loaded from a URDF needs its default joint positions",
            ));
        }
        return Ok(robots::quadruped_standing_joint_pos(model)?);
    }
    let mut q = vec![None; model.num_joints()];
    for (pattern, &value) in patterns {
        let field = format!("robot.default_joint_pos.\"{pattern}\"");
        if !value.is_finite() {
            return Err(config_error(task, &field, format!("got {value}")));
        }
        let mut any = false;
        for (j, joint) in model.joints.iter().enumerate() {
            if matches(pattern, &joint.name) {
                q[j] = Some(value);
                any = true;
            }
        }
        if !any {
            return Err(config_error(task, &field, "matches no joint"));
        }
    }
    model
        .joints
        .iter()
        .zip(q)
        .map(|(joint, v)| {
            v.ok_or_else(|| {
                config_error(
                    task,
                    "robot.default_joint_pos",
                    format!("no pattern gives joint `{}` a value", joint.name),
                )
            })
        })
        .collect()
}

/// Builds one observation group: the terms' functions, widths, scales and noise.
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
        let function = observation_term::<B>(&t.name)
            .ok_or_else(|| config_error(task, &field, "unknown observation term"))?;
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
        terms.push(ObsTerm {
            function,
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
        noise: noisy.then(|| row(noise, device)),
        width: start,
    })
}

impl<B: Backend> VecEnv<B> for LeggedEnv<B> {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn device(&self) -> &B::Device {
        &self.device
    }

    fn observations(&self) -> Observations<B> {
        self.obs.clone()
    }

    fn step(&mut self, actions: Tensor<B, 2>) -> rl_core::Result<StepOutput<B>> {
        let n = self.spec.num_envs;
        let nj = self.default_joint_pos.dims()[1];
        check_shape("actions", actions.dims(), [n, nj])?;
        // Actions: clipped, scaled and offset by the default pose, once per policy step.
        let clip = self.cfg.actions.clip;
        let actions = actions.to_device(&self.device).clamp(-clip, clip);
        let target = actions
            .clone()
            .mul_scalar(self.cfg.actions.scale)
            .add(self.default_joint_pos.clone().expand([n, nj]));
        self.sim
            .set_joint_position_target(target)
            .map_err(|e| rl_core::Error::Env(e.to_string()))?;
        self.state.actions = actions;
        for _ in 0..self.cfg.decimation {
            self.sim.step();
        }
        let s = &mut self.state;
        s.episode_length = s.episode_length.clone().add_scalar(1.0);
        s.command_time = s.command_time.clone().sub_scalar(self.dt);
        s.push_time = s.push_time.clone().sub_scalar(self.dt);

        // Feet air time, then terminations.
        let contact = feet_contact(
            self.sim.contact_forces(),
            self.feet.clone(),
            FOOT_CONTACT_FORCE,
        );
        let (air_time, first_contact) = update_feet_air_time(
            self.state.feet_air_time.clone(),
            contact.clone(),
            self.state.last_contact.clone().greater_elem(0.5),
            self.dt,
        );
        let none = Tensor::<B, 1>::zeros([n], &self.device).greater_elem(1.0);
        let mut ctx = self.context(Some(StepTerms {
            feet_air_time: self.state.feet_air_time.clone(),
            first_contact,
            terminated: none.clone(),
        }));
        let terminated = self
            .terminations
            .iter()
            .fold(none, |acc, (term, threshold)| {
                acc.bool_or(term(&ctx, *threshold))
            });
        let time_outs = column(&self.state.episode_length, 0)
            .greater_equal_elem(self.spec.max_episode_length as f64)
            .bool_and(terminated.clone().bool_not());
        ctx.terminated = terminated.clone();

        // Rewards, each weighted and multiplied by dt.
        let mut values: Vec<Tensor<B, 1>> = self
            .rewards
            .iter()
            .map(|(_, term, w)| term(&ctx).mul_scalar(*w))
            .collect();
        let mut reward = values
            .iter()
            .cloned()
            .reduce(|a, b| a + b)
            .unwrap_or_else(|| Tensor::zeros([n], &self.device));
        if self.cfg.rewards.only_positive {
            reward = reward.clamp_min(0.0);
        }
        if let Some((term, w)) = &self.termination_reward {
            let value = term(&ctx).mul_scalar(*w);
            reward = reward + value.clone();
            values.push(value);
        }
        let s = &mut self.state;
        if !values.is_empty() {
            s.reward_sums = s.reward_sums.clone() + Tensor::stack(values, 1);
        }
        s.returns = s.returns.clone() + reward.clone().unsqueeze_dim::<2>(1);
        // Tracking errors: planar speed and yaw rate.
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
        s.error_sums = s.error_sums.clone() + Tensor::cat(vec![lin_error, ang_error, one], 1);

        // Bookkeeping of this step, before the resets.
        s.last_actions = s.actions.clone();
        s.last_joint_vel = ctx.joint_vel.clone();
        s.feet_air_time = air_time;
        s.last_contact = contact.float();
        let dones = terminated.clone().bool_or(time_outs.clone());
        let lengths = column(&s.episode_length, 0);
        let mut terms = BTreeMap::new();
        let episode_s = self.cfg.episode_length_s;
        let names = self
            .rewards
            .iter()
            .map(|(name, _, _)| name.as_str())
            .chain(self.termination_reward.as_ref().map(|_| "termination"));
        for (i, name) in names.enumerate() {
            terms.insert(
                format!("rew_{name}"),
                column(&s.reward_sums, i).div_scalar(episode_s),
            );
        }
        let steps = column(&s.error_sums, 2).clamp_min(1.0);
        terms.insert(
            "lin_vel_error".to_string(),
            column(&s.error_sums, 0).div(steps.clone()),
        );
        terms.insert(
            "ang_vel_error".to_string(),
            column(&s.error_sums, 1).div(steps),
        );
        let episode = EpisodeInfo {
            returns: column(&s.returns, 0),
            lengths,
            terms,
        };
        let final_observations = self.observe(&self.context(None), false);

        // Reset events, commands, interval events.
        let u = self
            .rng
            .uniform::<B>(&self.draw.low, &self.draw.high, &self.device);
        self.reset_where(&dones, &u);
        let expired = column(&self.state.command_time, 0)
            .lower_equal_elem(0.0)
            .bool_or(dones);
        self.resample_commands(&expired, &u);
        if self.cfg.commands.heading_command {
            self.heading_commands();
        }
        self.push(&u);

        let observations = self.observe(&self.context(None), true);
        self.obs = observations.clone();
        Ok(StepOutput {
            observations,
            rewards: reward,
            terminated,
            time_outs,
            final_observations,
            episode,
        })
    }

    fn reset(&mut self) -> Observations<B> {
        self.reset_all();
        let obs = self.observe(&self.context(None), true);
        self.obs = obs.clone();
        obs
    }

    fn save_state(&self) -> rl_core::Result<EnvSnapshot> {
        let mut snapshot = EnvSnapshot::new(&self.spec);
        let sim = &self.sim;
        let root = Tensor::cat(
            vec![
                sim.root_pos(),
                sim.root_quat(),
                sim.root_lin_vel_w(),
                sim.root_ang_vel_w(),
            ],
            1,
        );
        let joints = Tensor::cat(vec![sim.joint_pos(), sim.joint_vel()], 1);
        let mut entries: Vec<(String, Tensor<B, 2>)> =
            vec![("root".into(), root), ("joints".into(), joints)];
        for (name, t) in self.state.entries() {
            entries.push((name.into(), t.clone()));
        }
        for g in &self.groups {
            entries.push((format!("obs/{}", g.name), self.obs.get(&g.name)?));
        }
        for (name, t) in entries {
            snapshot.tensors.insert(name, HostTensor::read(t)?);
        }
        snapshot.rngs.insert(RNG.into(), self.rng.clone());
        Ok(snapshot)
    }

    fn load_state(&mut self, snapshot: &EnvSnapshot) -> rl_core::Result<()> {
        snapshot.check(&self.spec)?;
        let n = self.spec.num_envs;
        let nj = self.default_joint_pos.dims()[1];
        let device = self.device.clone();
        // Everything is read and checked before anything is replaced.
        let root: Tensor<B, 2> = snapshot.load_tensor("root", [n, 13], &device)?;
        let joints: Tensor<B, 2> = snapshot.load_tensor("joints", [n, 2 * nj], &device)?;
        let mut state = self.state.clone();
        for (name, t) in state.entries_mut() {
            let k = t.dims()[1];
            *t = snapshot.load_tensor(name, [n, k], &device)?;
        }
        let mut obs = Observations::new();
        for g in &self.groups {
            let t: Tensor<B, 2> =
                snapshot.load_tensor(&format!("obs/{}", g.name), [n, g.width], &device)?;
            obs = obs.with(&g.name, t);
        }
        let rng = snapshot.rng(RNG)?.clone();
        let all = Tensor::<B, 1>::ones([n], &device).greater_elem(0.0);
        self.sim.set_root_state_where(all.clone(), root);
        self.sim.set_joint_state_where(
            all,
            joints.clone().narrow(1, 0, nj),
            joints.narrow(1, nj, nj),
        );
        self.state = state;
        self.obs = obs;
        self.rng = rng;
        self.apply_randomisation()
            .map_err(|e| rl_core::Error::Env(e.to_string()))?;
        Ok(())
    }

    fn scene(&self, env_id: usize) -> rl_core::Result<Option<Scene>> {
        self.read_scene(env_id).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legged::config::ObsTermConfig;
    use burn::backend::Flex;

    type B = Flex;

    fn dev() -> burn::tensor::Device<B> {
        Default::default()
    }

    fn vals<const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    fn flags(t: Tensor<B, 1, Bool>) -> Vec<bool> {
        t.into_data().iter::<bool>().collect()
    }

    /// The default task without reset noise, pushes or startup randomisation.
    fn calm() -> LeggedConfig {
        let mut cfg = LeggedConfig::default();
        cfg.events.reset.base_velocity = [0.0, 0.0];
        cfg.events.reset.joint_position_scale = [1.0, 1.0];
        cfg.events.interval.push_velocity = 0.0;
        cfg.events.startup.friction = [1.0, 1.0];
        cfg.events.startup.added_mass = [0.0, 0.0];
        cfg
    }

    fn env(cfg: LeggedConfig, n: usize) -> LeggedEnv<B> {
        LeggedEnv::<B>::new("quadruped_flat", cfg, n, 3, &dev()).expect("valid task")
    }

    fn zeros(env: &LeggedEnv<B>) -> Tensor<B, 2> {
        Tensor::zeros([env.spec.num_envs, 12], &dev())
    }

    #[test]
    fn the_standing_robot_holds_its_pose_under_zero_actions() {
        let mut e = env(calm(), 4);
        assert_eq!(e.spec.obs_groups.get("policy"), Some(&48));
        // critic: 48 + friction + added mass + 4 feet x 3 forces
        assert_eq!(e.spec.obs_groups.get("critic"), Some(&62));
        assert_eq!(e.spec.max_episode_length, 1000);
        for _ in 0..50 {
            let out = e.step(zeros(&e)).expect("step");
            assert!(!flags(out.terminated).contains(&true));
            assert!(vals(out.rewards).iter().all(|r| r.is_finite()));
        }
        // The drives (20 N m / rad) let the knees give a little under the weight.
        for h in vals(e.sim.root_pos().narrow(1, 2, 1)) {
            assert!((0.26..0.33).contains(&h), "base height {h}");
        }
        for gz in vals(e.sim.projected_gravity_b().narrow(1, 2, 1)) {
            assert!(gz < -0.995, "tilted: {gz}");
        }
    }

    #[test]
    fn base_contact_terminates_and_the_environment_is_reset() {
        let mut e = env(calm(), 3);
        // Environment 1 upside down with its base on the ground.
        let upside_down =
            Tensor::<B, 2>::from_floats([[0.0, 0.0, 0.05, 0.0, 1.0, 0.0, 0.0]], &dev());
        let still = Tensor::<B, 2>::zeros([1, 3], &dev());
        e.sim
            .set_root_state(
                &[1],
                upside_down.clone().narrow(1, 0, 3),
                upside_down.narrow(1, 3, 4),
                still.clone(),
                still,
            )
            .expect("root state");
        let out = e.step(zeros(&e)).expect("step");
        assert_eq!(flags(out.terminated.clone()), vec![false, true, false]);
        assert_eq!(flags(out.time_outs), vec![false; 3]);
        // the final observation is the fallen robot's, the new one is standing
        let g_final = vals(
            out.final_observations
                .get("critic")
                .expect("critic")
                .narrow(0, 1, 1),
        );
        let g_new = vals(
            out.observations
                .get("critic")
                .expect("critic")
                .narrow(0, 1, 1),
        );
        assert!(
            g_final[8] > 0.9,
            "projected gravity z of the fallen robot {}",
            g_final[8]
        );
        assert!(
            g_new[8] < -0.99,
            "projected gravity z after the reset {}",
            g_new[8]
        );
        let lengths = vals(e.state.episode_length.clone());
        assert_eq!(lengths[1], 0.0);
        let h = vals(e.sim.root_pos().narrow(1, 2, 1));
        assert!((h[1] - e.cfg.robot.init_height).abs() < 1e-6);
    }

    #[test]
    fn time_outs_come_once_per_episode_and_are_not_terminations() {
        let mut cfg = calm();
        cfg.episode_length_s = 0.1; // 5 policy steps
        let mut e = env(cfg, 8);
        e.reset();
        let mut count = vec![0; 8];
        for _ in 0..5 {
            let out = e.step(zeros(&e)).expect("step");
            assert!(!flags(out.terminated).contains(&true));
            for (c, t) in count.iter_mut().zip(flags(out.time_outs)) {
                *c += usize::from(t);
            }
        }
        assert_eq!(count, vec![1; 8]);
    }

    #[test]
    fn startup_events_draw_friction_and_mass_in_range_and_the_simulator_uses_them() {
        let mut cfg = calm();
        cfg.events.startup.friction = [0.5, 1.25];
        cfg.events.startup.added_mass = [2.0, 4.0];
        let mut e = env(cfg, 32);
        let (friction, added) = e.randomisation();
        let (friction, added) = (vals(friction), vals(added));
        assert!(friction.iter().all(|f| (0.5..=1.25).contains(f)));
        assert!(added.iter().all(|m| (2.0..=4.0).contains(m)));
        let spread = |v: &[f64]| {
            v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min)
        };
        assert!(spread(&friction) > 0.3 && spread(&added) > 1.0);
        assert_eq!(vals(e.sim.friction()), friction);
        let base = vals(e.sim.link_masses().narrow(1, 0, 1));
        let model_base = e.sim.model().links[0].mass;
        for (m, a) in base.iter().zip(&added) {
            assert!((m - model_base - a).abs() < 1e-4);
        }
        // Standing still (after the soft drives settle), the ground carries the robot's
        // weight with the added mass.
        let mut fz = vec![0.0; 32];
        for i in 0..200 {
            e.step(zeros(&e)).expect("step");
            if i >= 100 {
                let f = vals(
                    e.sim
                        .contact_forces()
                        .narrow(2, 2, 1)
                        .sum_dim(1)
                        .reshape([32]),
                );
                for (sum, f) in fz.iter_mut().zip(f) {
                    *sum += f / 100.0;
                }
            }
        }
        let total = e.sim.model().total_mass();
        for (f, a) in fz.iter().zip(&added) {
            let weight = (total + a) * 9.81;
            // the added mass is 13 to 27% of the weight
            assert!(
                (f - weight).abs() < 0.05 * weight,
                "contact {f} N, weight {weight} N"
            );
        }
    }

    #[test]
    fn observation_noise_is_bounded_and_clipping_holds() {
        let mut cfg = calm();
        cfg.events.reset.joint_position_scale = [0.6, 1.4];
        let term = |noise: f64, clip: Option<f64>| ObsTermConfig {
            name: "joint_pos_rel".into(),
            scale: Scale::One(2.0),
            noise,
            clip,
        };
        cfg.observations.policy.terms = vec![term(0.3, None)];
        cfg.observations.critic.terms = vec![term(0.0, None)];
        let mut e = env(cfg.clone(), 16);
        let obs = e.reset();
        let noisy = vals(obs.get("policy").expect("policy"));
        let clean = vals(obs.get("critic").expect("critic"));
        let diffs: Vec<f64> = noisy.iter().zip(&clean).map(|(a, b)| a - b).collect();
        // noise U(-0.3, 0.3) in joint units, times the scale 2
        assert!(diffs.iter().all(|d| d.abs() <= 0.6 + 1e-5));
        assert!(diffs.iter().any(|d| d.abs() > 0.3));
        let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
        assert!(mean.abs() < 0.1, "noise mean {mean}");
        // a group without noise enabled ignores its terms' noise
        cfg.observations.policy.noise = false;
        let obs = env(cfg.clone(), 16).reset();
        assert_eq!(
            vals(obs.get("policy").expect("policy")),
            vals(obs.get("critic").expect("critic"))
        );

        // term clip before the scale, group clip after it
        cfg.observations.policy.terms = vec![term(0.0, Some(0.1))];
        cfg.observations.policy.clip = Some(0.15);
        cfg.observations.critic.clip = None;
        let obs = env(cfg, 16).reset();
        let clipped = vals(obs.get("policy").expect("policy"));
        let raw = vals(obs.get("critic").expect("critic"));
        assert!(raw.iter().any(|v| v.abs() > 0.3));
        assert!(clipped.iter().all(|v| v.abs() <= 0.15 + 1e-6));
        for (c, r) in clipped.iter().zip(&raw) {
            let want = (r / 2.0).clamp(-0.1, 0.1) * 2.0;
            assert!((c - want.clamp(-0.15, 0.15)).abs() < 1e-5, "{c} vs {r}");
        }
    }

    #[test]
    fn rewards_are_weighted_by_dt_and_summed_per_episode() {
        let mut cfg = calm();
        cfg.rewards.weights = [
            ("tracking_lin_vel".to_string(), 2.0),
            ("lin_vel_z".to_string(), -1.0),
        ]
        .into_iter()
        .collect();
        cfg.rewards.only_positive = false;
        let mut e = env(cfg, 4);
        e.reset();
        let commands = Tensor::<B, 2>::from_floats(
            [
                [1.0, 0.0, 0.0],
                [0.0, 0.5, 0.0],
                [0.0, 0.0, 1.0],
                [-0.5, 0.5, 0.0],
            ],
            &dev(),
        );
        e.set_commands(commands.clone()).expect("commands");
        let mut sums = [0.0f64; 4];
        for _ in 0..3 {
            let out = e.step(zeros(&e)).expect("step");
            let v = vals(e.sim.root_lin_vel_b());
            let c = vals(commands.clone());
            let r = vals(out.rewards);
            for i in 0..4 {
                let err = (c[3 * i] - v[3 * i]).powi(2) + (c[3 * i + 1] - v[3 * i + 1]).powi(2);
                let want = 0.02 * (2.0 * (-err / 0.25).exp() - v[3 * i + 2].powi(2));
                assert!((r[i] - want).abs() < 1e-5, "env {i}: {} vs {want}", r[i]);
                sums[i] += 0.02 * 2.0 * (-err / 0.25).exp();
            }
            let logged = vals(out.episode.terms["rew_tracking_lin_vel"].clone());
            for i in 0..4 {
                assert!((logged[i] - sums[i] / 20.0).abs() < 1e-5);
            }
            assert!(out.episode.terms.contains_key("rew_lin_vel_z"));
            assert!(out.episode.terms.contains_key("lin_vel_error"));
        }
    }

    #[test]
    fn commands_are_drawn_in_range_and_slow_ones_are_zeroed() {
        let mut cfg = calm();
        cfg.commands.lin_vel_x = [0.5, 1.0];
        cfg.commands.lin_vel_y = [-0.1, 0.1];
        cfg.commands.ang_vel_z = [-0.3, 0.3];
        cfg.commands.min_speed = 0.0;
        let c = vals(env(cfg.clone(), 64).commands());
        for row in c.chunks(3) {
            assert!((0.5..=1.0).contains(&row[0]) && row[1].abs() <= 0.1 && row[2].abs() <= 0.3);
        }
        cfg.commands.lin_vel_x = [-0.1, 0.1];
        cfg.commands.min_speed = 0.2;
        let c = vals(env(cfg, 64).commands());
        for row in c.chunks(3) {
            assert_eq!((row[0], row[1]), (0.0, 0.0));
        }
    }

    #[test]
    fn pushes_set_the_planar_base_velocity_within_range() {
        let mut cfg = calm();
        cfg.events.interval.push_velocity = 0.7;
        cfg.events.interval.push_interval_s = [0.02, 0.02]; // every policy step
        let mut e = env(cfg, 16);
        e.step(zeros(&e)).expect("step");
        let v = vals(e.sim.root_lin_vel_w());
        let vx: Vec<f64> = v.chunks(3).map(|r| r[0]).collect();
        assert!(
            v.chunks(3)
                .all(|r| r[0].abs() <= 0.7 + 1e-6 && r[1].abs() <= 0.7 + 1e-6)
        );
        assert!(vx.iter().cloned().fold(f64::MIN, f64::max) > 0.3);
        assert!(vx.iter().cloned().fold(f64::MAX, f64::min) < -0.3);
    }

    #[test]
    fn the_push_timer_restarts_with_every_episode() {
        let mut cfg = calm();
        cfg.events.interval.push_velocity = 0.5;
        cfg.events.interval.push_interval_s = [1.0, 1.0];
        cfg.episode_length_s = 0.06; // 3 policy steps of 0.02 s
        cfg.random_episode_start = false;
        let mut e = env(cfg, 4);
        e.reset();
        assert_eq!(e.spec.max_episode_length, 3);
        let timer = |e: &LeggedEnv<B>| vals(e.state.push_time.clone());
        assert!(timer(&e).iter().all(|&t| (t - 1.0).abs() < 1e-6));
        for _ in 0..2 {
            e.step(zeros(&e)).expect("step");
        }
        assert!(
            timer(&e).iter().all(|&t| (t - 0.96).abs() < 1e-6),
            "{:?}",
            timer(&e)
        );
        // The third step times every episode out: the next one starts a whole interval
        // from its first push, not 0.94 s.
        let out = e.step(zeros(&e)).expect("step");
        assert!(flags(out.time_outs).iter().all(|&t| t));
        assert!(
            timer(&e).iter().all(|&t| (t - 1.0).abs() < 1e-6),
            "{:?}",
            timer(&e)
        );
    }

    #[test]
    fn a_snapshot_continues_exactly() {
        let actions = |n: usize| {
            Tensor::<B, 2>::from_data(
                TensorData::new(
                    (0..n * 12).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect(),
                    [n, 12],
                ),
                &dev(),
            )
        };
        let mut a = env(LeggedConfig::default(), 4);
        for _ in 0..3 {
            a.step(actions(4)).expect("step");
        }
        let snapshot = a.save_state().expect("save");
        let mut b = LeggedEnv::<B>::new("quadruped_flat", LeggedConfig::default(), 4, 99, &dev())
            .expect("task");
        b.load_state(&snapshot).expect("load");
        assert_eq!(
            vals(a.observations().get("policy").expect("policy")),
            vals(b.observations().get("policy").expect("policy"))
        );
        for _ in 0..3 {
            let oa = a.step(actions(4)).expect("step");
            let ob = b.step(actions(4)).expect("step");
            assert_eq!(vals(oa.rewards), vals(ob.rewards));
            assert_eq!(
                vals(oa.observations.get("critic").expect("critic")),
                vals(ob.observations.get("critic").expect("critic"))
            );
        }
        let mut other = LeggedConfig::default();
        other.observations.critic.terms.pop();
        let mut c = LeggedEnv::<B>::new("quadruped_flat", other, 4, 99, &dev()).expect("task");
        assert!(c.load_state(&snapshot).is_err());
    }

    #[test]
    fn the_scene_draws_every_link_where_the_simulator_has_it() {
        let e = env(calm(), 2);
        let scene = e.scene(1).expect("read").expect("a legged task draws");
        let model = e.sim.model();
        let collisions: usize = model.links.iter().map(|l| l.collisions.len()).sum();
        assert_eq!(scene.shapes.len(), model.num_joints() + collisions);
        let root = vals(e.sim.root_pos().narrow(0, 1, 1));
        for (f, r) in scene.focus.iter().zip(&root) {
            assert!((f64::from(*f) - r).abs() < 1e-6);
        }
        // every foot sphere touches the ground, or nearly
        let lowest = scene
            .shapes
            .iter()
            .filter_map(|s| match s {
                SceneShape::Sphere { center, radius } => Some(center[2] - radius),
                _ => None,
            })
            .fold(f32::MAX, f32::min);
        assert!(lowest.abs() < 0.05, "lowest foot at {lowest}");
        assert!(e.scene(2).is_err());
    }

    #[test]
    fn bad_actions_and_link_names_are_refused() {
        let mut e = env(calm(), 2);
        assert!(e.step(Tensor::zeros([2, 11], &dev())).is_err());
        let mut cfg = calm();
        cfg.robot.feet = vec!["*_foot_link".into()];
        let err = LeggedEnv::<B>::new("quadruped_flat", cfg, 2, 0, &dev())
            .expect_err("no such link")
            .to_string();
        assert!(
            err.contains("env.robot.feet") && err.contains("*_foot_link"),
            "{err}"
        );
    }
}
