//! The manager-based legged locomotion environment: a batch of `N` robots on flat ground
//! that track random velocity commands, assembled from the managers of the sibling modules
//! as a [`LeggedConfig`] lists their terms.
//!
//! A step follows IsaacLab's `ManagerBasedRLEnv`: the action is processed once (clipped,
//! scaled, offset by the default pose); for each of `decimation` physics steps the PD drives
//! track it; then the feet contact state, terminations, rewards (each weighted and
//! multiplied by the policy step), the command metrics, the reset of finished environments
//! (reset events), command resampling, interval events (pushes) and finally the
//! observations. Everything stays on the device; random numbers come from one seeded stream
//! per environment, drawn on the host and uploaded.

use std::collections::BTreeMap;

use burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};
use rl_core::{
    ActionLayout, ActionSpace, EnvLayout, EnvRng, EnvSnapshot, EnvSpec, EpisodeInfo, HeightPatch,
    HostTensor, Observations, RobotLayout, Scene, SceneShape, StepOutput, VecEnv,
};

use super::actions::ActionManager;
use super::choose;
use super::commands::CommandManager;
use super::config::{LeggedConfig, config_error, matches};
use super::events::{Draw, DrawLayout, EventManager};
use super::observations::ObservationManager;
use super::rewards::RewardManager;
use super::terminations::TerminationManager;
use super::terms::{
    FOOT_CONTACT_FORCE, TermContext, feet_contact, soft_dof_pos_limits, update_feet_air_time,
};
use super::terrain::{ScanPoints, TerrainManager};
use crate::common::{check_shape, column, row};
use crate::{Error, Result};
use sim_physics::{Articulation, BaseKind, HeightField, Model, Pose, Shape, robots};

/// Name of the random streams in a snapshot.
const RNG: &str = "rng";

/// The robot file of a task whose config names none: the quadruped that ships with
/// sim-physics (`sim_physics::robots::quadruped`).
pub const BUILTIN_ROBOT_FILE: &str = "sim-physics:robots/quadruped.urdf";

/// The episode term of the mean terrain level, logged under this name.
pub const CURRICULUM_LEVEL: &str = "Curriculum/terrain_level";
/// The episode term of the terrain level an episode ran on.
pub const TERRAIN_LEVEL: &str = "terrain_level";
/// The episode term of the kind of terrain an episode ran on, an index in
/// `sim_physics::SubTerrain::ALL` (see [`super::terrain::kind_name`]).
pub const TERRAIN_KIND: &str = "terrain_kind";

/// The task's state beyond the simulator's, by snapshot key, every tensor `[N, K]`: the one
/// list that saving and loading a snapshot go through. `task_state!(env; &)` gives shared
/// references, `task_state!(env; &mut)` mutable ones; the keys are those of the first
/// snapshots, so older checkpoints load.
macro_rules! task_state {
    ($env:expr; $($borrow:tt)+) => {
        [
            ("actions", $($borrow)+ $env.actions.action),
            ("last_actions", $($borrow)+ $env.actions.prev_action),
            ("last_joint_vel", $($borrow)+ $env.last_joint_vel),
            ("feet_air_time", $($borrow)+ $env.feet_air_time),
            ("last_contact", $($borrow)+ $env.last_contact),
            ("commands", $($borrow)+ $env.commands.command),
            ("heading", $($borrow)+ $env.commands.heading),
            ("command_time", $($borrow)+ $env.commands.time_left),
            ("push_time", $($borrow)+ $env.events.push_time),
            ("episode_length", $($borrow)+ $env.episode_length),
            ("returns", $($borrow)+ $env.rewards.returns),
            ("reward_sums", $($borrow)+ $env.rewards.reward_sums),
            ("error_sums", $($borrow)+ $env.commands.error_sums),
            ("friction", $($borrow)+ $env.events.friction),
            ("added_mass", $($borrow)+ $env.events.added_mass),
        ]
    };
}

/// A batch of legged robots tracking velocity commands; see the module docs.
pub struct LeggedEnv<B: Backend> {
    cfg: LeggedConfig,
    spec: EnvSpec,
    /// The robot as the simulator drives it (joint order, default pose, drive gains), kept on
    /// the host for [`VecEnv::layout`]; the drives' gains are uploaded from it.
    robot: RobotLayout,
    device: B::Device,
    sim: Articulation<B>,
    rng: EnvRng,
    /// Where each random quantity sits in a step's draw.
    draw: DrawLayout,
    /// The policy step (s).
    dt: f64,
    feet: Tensor<B, 1, Int>,
    penalised: Tensor<B, 1, Int>,
    termination_links: Tensor<B, 1, Int>,
    /// The soft joint limits `([1, J], [1, J])`.
    soft_limits: (Tensor<B, 2>, Tensor<B, 2>),
    actions: ActionManager<B>,
    commands: CommandManager<B>,
    events: EventManager<B>,
    rewards: RewardManager<B>,
    terminations: TerminationManager<B>,
    observations: ObservationManager<B>,
    /// Policy steps into the episode `[N, 1]`.
    episode_length: Tensor<B, 2>,
    /// Joint velocities `[N, J]` at the previous policy step (for `dof_acc`).
    last_joint_vel: Tensor<B, 2>,
    /// Seconds each foot has been in the air `[N, F]` (legged_gym `feet_air_time`).
    feet_air_time: Tensor<B, 2>,
    /// Raw foot contact of the last step `[N, F]`, 1 or 0.
    last_contact: Tensor<B, 2>,
    /// The observations of the current state.
    obs: Observations<B>,
    /// Rough terrain with its curriculum (`None`: the plane).
    terrain: Option<TerrainManager<B>>,
    /// The height scan's grid, when an observation reads it.
    scan: Option<ScanPoints<B>>,
    /// The task state packed `[N, S]` (the columns of `task_state!`, in order) while the
    /// step kernel carries it; the fields above are then stale until [`LeggedEnv::sync`].
    packed: Option<Tensor<B, 2>>,
    /// The step kernel, on a CubeCL backend.
    #[cfg(feature = "cube")]
    kernel: Option<StepKernel<B>>,
}

/// What the step kernel needs besides the state: its packed constants, the sizes it is
/// compiled for, the names of its episode-term rows, and a placeholder for a group without
/// noise.
#[cfg(feature = "cube")]
#[derive(Debug, Clone)]
struct StepKernel<B: Backend> {
    consts: Tensor<B, 1>,
    dims: crate::cube::legged::LeggedDims,
    terms: Vec<String>,
    placeholder: Tensor<B, 2>,
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

/// How far around the base a scene carries the terrain, in x and in y (m).
const SCENE_TERRAIN_RADIUS: f64 = 4.0;

/// The window of `field` within `radius` of `centre` in x and in y (whole samples, at least
/// 2 x 2, clamped onto the field), for a scene: read by the same rule, it has the field's
/// heights inside the window.
fn height_patch(field: &HeightField, centre: [f64; 2], radius: f64) -> HeightPatch {
    // The first and last sample along one axis.
    let window = |c: f64, o: f64, n: usize| {
        let first = ((c - radius - o) / field.spacing).floor();
        let last = ((c + radius - o) / field.spacing).ceil();
        let first = (first.max(0.0) as usize).min(n - 2);
        (first, (last.max(0.0) as usize).clamp(first + 1, n - 1))
    };
    let (i0, i1) = window(centre[0], field.origin[0], field.rows);
    let (j0, j1) = window(centre[1], field.origin[1], field.cols);
    let heights = (i0..=i1)
        .flat_map(|i| {
            field.heights[i * field.cols + j0..=i * field.cols + j1]
                .iter()
                .copied()
        })
        .collect();
    HeightPatch {
        origin: [
            (field.origin[0] + i0 as f64 * field.spacing) as f32,
            (field.origin[1] + j0 as f64 * field.spacing) as f32,
        ],
        spacing: field.spacing as f32,
        rows: i1 - i0 + 1,
        cols: j1 - j0 + 1,
        heights,
    }
}

/// The simulator's error as the environment's.
fn env_error(e: impl std::fmt::Display) -> rl_core::Error {
    rl_core::Error::Env(e.to_string())
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

/// This step's foot contact, as the contact sensor sees it after the physics.
struct FeetContact<B: Backend> {
    /// Raw contact `[N, F]`, the next step's `last_contact`.
    contact: Tensor<B, 2, Bool>,
    /// Air time `[N, F]` for the next step.
    air_time: Tensor<B, 2>,
    /// Feet that touched down this step `[N, F]`.
    first_contact: Tensor<B, 2, Bool>,
}

impl<B: Backend> LeggedEnv<B> {
    /// Builds `num_envs` robots of the task `task` (its name, for errors and the spec) as
    /// `cfg` describes, seeded by `seed`.
    ///
    /// # Errors
    /// [`Error::TaskConfig`] naming the field for an invalid config (a value out of range,
    /// an unknown term, a link pattern that matches nothing), [`Error::Sim`] for a robot
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
        let (model, keyframes) = match &cfg.robot.urdf {
            None => (robots::quadruped()?, Vec::new()),
            // URDF or MJCF by the extension; a legged robot's base floats.
            Some(path) => {
                let robot = sim_physics::load_robot(
                    path,
                    &sim_physics::MjcfOptions {
                        base: Some(BaseKind::Floating),
                        ..Default::default()
                    },
                )?;
                (robot.model, robot.keyframes)
            }
        };
        for warning in &model.warnings {
            tracing::warn!("{warning}");
        }
        if model.base != BaseKind::Floating {
            return Err(config_error(
                task,
                "robot.urdf",
                "the robot needs a floating base",
            ));
        }
        let nj = model.num_joints();
        let default_pos = default_joint_pos(&model, &keyframes, &cfg, task)?;
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
        let mut rng = EnvRng::new(seed, n);
        let terrain = TerrainManager::new(&cfg.terrain, n, cfg.episode_length_s, &mut rng, device)
            .map_err(|e| config_error(task, "terrain", e.to_string()))?;
        if let Some(t) = &terrain {
            sim.set_terrain(Some(&t.terrain().field));
        }
        let reads_scan = [&cfg.observations.policy, &cfg.observations.critic]
            .iter()
            .any(|g| g.terms.iter().any(|t| t.name == "height_scan"));
        let scan = reads_scan.then(|| ScanPoints::new(&cfg.height_scan, n, device));
        let robot = robot_layout(sim.model(), &cfg, &default_pos);
        // [N, J], uploaded whole as the simulator's own per-joint constants are.
        let gains =
            |v: &[f32]| Tensor::<B, 2>::from_data(TensorData::new(v.repeat(n), [n, nj]), device);
        sim.set_drive_gains(gains(&robot.stiffness), gains(&robot.damping))?;

        let rewards = RewardManager::new(&cfg.rewards, cfg.episode_length_s, dt, n, task, device)?;
        let terminations = TerminationManager::new(&cfg.terminations, max_episode_length, task)?;
        let default_joint_pos = row::<B>(default_pos.iter().map(|&q| q as f32).collect(), device);
        let soft_limits = soft_dof_pos_limits(
            row::<B>(lower, device),
            row::<B>(upper, device),
            cfg.rewards.soft_dof_pos_limit,
        );
        let events = EventManager::new(
            &cfg.events,
            cfg.robot.init_height,
            default_joint_pos.clone(),
            soft_limits.clone(),
            link_masses,
            n,
        );
        let zeros = |k: usize| Tensor::<B, 2>::zeros([n, k], device);
        let mut env = Self {
            robot,
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
            rng,
            draw: DrawLayout::new(&cfg.events, &cfg.commands, nj),
            dt,
            feet: index(&feet, device),
            penalised: index(&penalised, device),
            termination_links: index(&termination_links, device),
            soft_limits,
            actions: ActionManager::new(&cfg.actions, default_joint_pos, n),
            commands: CommandManager::new(&cfg.commands, n, device),
            events,
            rewards,
            terminations,
            observations: ObservationManager::default(),
            episode_length: zeros(1),
            last_joint_vel: zeros(nj),
            feet_air_time: zeros(feet.len()),
            last_contact: zeros(feet.len()),
            obs: Observations::new(),
            terrain,
            scan,
            packed: None,
            #[cfg(feature = "cube")]
            kernel: None,
            sim,
            cfg,
        };
        env.events.startup(&mut env.rng, &mut env.sim)?;
        env.reset_all();
        // The groups' widths come from evaluating their terms once.
        let ctx = env.context(None);
        env.observations = ObservationManager::new(&env.cfg.observations, &ctx, task, device)?;
        for (name, width) in env.observations.groups() {
            env.spec.obs_groups.insert(name.to_string(), width);
        }
        env.obs = env.observe(true);
        #[cfg(feature = "cube")]
        {
            env.kernel = env.step_kernel_program(&feet, &penalised, &termination_links);
        }
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
        self.task_tensor("commands")
    }

    /// Sets the velocity commands `[N, 3]` of every environment (for evaluation and tests);
    /// they hold until the next resampling.
    ///
    /// # Errors
    /// A shape that does not fit.
    pub fn set_commands(&mut self, commands: Tensor<B, 2>) -> Result<()> {
        check_shape("commands", commands.dims(), [self.spec.num_envs, 3])?;
        self.sync();
        self.commands.command = commands.to_device(&self.device);
        Ok(())
    }

    /// Friction coefficients `[N]` and masses added to the base `[N]` (kg) that the startup
    /// events drew.
    pub fn randomisation(&self) -> (Tensor<B, 1>, Tensor<B, 1>) {
        (
            column(&self.task_tensor("friction"), 0),
            column(&self.task_tensor("added_mass"), 0),
        )
    }

    /// The task state in one tensor `[N, S]`, the columns of `task_state!` in order.
    #[cfg(feature = "cube")]
    fn pack(&self) -> Tensor<B, 2> {
        Tensor::cat(
            task_state!(self; &)
                .into_iter()
                .map(|(_, t)| t.clone())
                .collect(),
            1,
        )
    }

    /// The first column and the width of each task-state field in the packed state, in
    /// `task_state!`'s order.
    fn packed_columns(&self) -> Vec<(&'static str, usize, usize)> {
        let mut at = 0;
        task_state!(self; &)
            .into_iter()
            .map(|(name, t)| {
                let width = t.dims()[1];
                at += width;
                (name, at - width, width)
            })
            .collect()
    }

    /// Brings the fields up to date from the packed state the step kernel left, if any.
    fn sync(&mut self) {
        if let Some(packed) = self.packed.take() {
            let columns = self.packed_columns();
            for ((_, t), (_, at, width)) in task_state!(self; &mut).into_iter().zip(columns) {
                *t = packed.clone().narrow(1, at, width);
            }
        }
    }

    /// The task state by snapshot key, current whether or not the kernel carries it.
    fn task_tensors(&self) -> Vec<(&'static str, Tensor<B, 2>)> {
        let Some(packed) = &self.packed else {
            return task_state!(self; &)
                .into_iter()
                .map(|(name, t)| (name, t.clone()))
                .collect();
        };
        self.packed_columns()
            .into_iter()
            .map(|(name, at, width)| (name, packed.clone().narrow(1, at, width)))
            .collect()
    }

    /// One entry of [`LeggedEnv::task_tensors`].
    fn task_tensor(&self, key: &str) -> Tensor<B, 2> {
        let Some(packed) = &self.packed else {
            let field = task_state!(self; &)
                .into_iter()
                .find(|(name, _)| *name == key);
            return match field {
                Some((_, t)) => t.clone(),
                None => unreachable!("`{key}` is a key of task_state!"),
            };
        };
        match self
            .packed_columns()
            .into_iter()
            .find(|(name, ..)| *name == key)
        {
            Some((_, at, width)) => packed.clone().narrow(1, at, width),
            None => unreachable!("`{key}` is a key of task_state!"),
        }
    }

    /// Everything the terms read, at the current state. `first_contact` `[N, F]` gives this
    /// step's touch-downs (the feet air time is then still the one before the step); without
    /// it no foot touches down. No environment has terminated yet.
    fn context(&self, first_contact: Option<Tensor<B, 2, Bool>>) -> TermContext<B> {
        let n = self.spec.num_envs;
        let sim = &self.sim;
        let first_contact =
            first_contact.unwrap_or_else(|| self.feet_air_time.zeros_like().greater_elem(1.0));
        let root_pos = sim.root_pos();
        let ground = self.cfg.sim.contact.ground_height;
        let height = match &self.terrain {
            Some(t) => column(&root_pos, 2) - t.height_under(&root_pos),
            None => column(&root_pos, 2).sub_scalar(ground),
        };
        let height_scan = match &self.scan {
            Some(scan) => scan.scan(
                self.terrain.as_ref().map(TerrainManager::field),
                ground,
                &root_pos,
                &sim.root_quat(),
            ),
            None => Tensor::zeros([n, 1], &self.device),
        };
        TermContext {
            lin_vel_b: sim.root_lin_vel_b(),
            ang_vel_b: sim.root_ang_vel_b(),
            projected_gravity_b: sim.projected_gravity_b(),
            commands: self.commands.command.clone(),
            joint_pos: sim.joint_pos(),
            default_joint_pos: self.actions.default_joint_pos(),
            joint_vel: sim.joint_vel(),
            last_joint_vel: self.last_joint_vel.clone(),
            dt: self.dt,
            torques: sim.applied_torque(),
            actions: self.actions.action.clone(),
            last_actions: self.actions.prev_action.clone(),
            contact_forces: sim.contact_forces(),
            feet: self.feet.clone(),
            penalised: self.penalised.clone(),
            termination_links: self.termination_links.clone(),
            feet_air_time: self.feet_air_time.clone(),
            first_contact,
            base_height: height,
            base_height_target: self.cfg.robot.base_height_target,
            soft_dof_pos_limits: self.soft_limits.clone(),
            terminated: Tensor::<B, 1>::zeros([n], &self.device).greater_elem(1.0),
            tracking_sigma: self.cfg.rewards.tracking_sigma,
            max_contact_force: self.cfg.rewards.max_contact_force,
            friction: column(&self.events.friction, 0),
            added_mass: column(&self.events.added_mass, 0),
            height_scan,
        }
    }

    /// The observations of the current state, with noise from the environments' streams
    /// when `noisy` (and the group asks for it).
    fn observe(&mut self, noisy: bool) -> Observations<B> {
        let ctx = self.context(None);
        let rng = noisy.then_some(&mut self.rng);
        self.observations.compute(&ctx, rng, &self.device)
    }

    /// The contact sensor after the physics: which feet touch the ground, their air time
    /// and touch-downs (legged_gym's `feet_air_time` bookkeeping).
    fn feet_contact(&self) -> FeetContact<B> {
        let contact = feet_contact(
            self.sim.contact_forces(),
            self.feet.clone(),
            FOOT_CONTACT_FORCE,
        );
        let (air_time, first_contact) = update_feet_air_time(
            self.feet_air_time.clone(),
            contact.clone(),
            self.last_contact.clone().greater_elem(0.5),
            self.dt,
        );
        FeetContact {
            contact,
            air_time,
            first_contact,
        }
    }

    /// Keeps what the next step compares with, once the rewards of this one are in: the
    /// actions, the joint velocities (read at `ctx`) and the feet contact state.
    fn end_step(&mut self, ctx: &TermContext<B>, feet: FeetContact<B>) {
        self.actions.prev_action = self.actions.action.clone();
        self.last_joint_vel = ctx.joint_vel.clone();
        self.feet_air_time = feet.air_time;
        self.last_contact = feet.contact.float();
    }

    /// The episode log of every environment: return, length and the managers' terms.
    fn episode_info(&self) -> EpisodeInfo<B> {
        let mut terms = BTreeMap::new();
        self.rewards.episode_terms(&mut terms);
        self.commands.episode_terms(&mut terms);
        if let Some(t) = &self.terrain {
            // The level and column each finished episode ran on (for `play`'s breakdown),
            // and the mean level over all robots, logged as it is named.
            terms.insert(TERRAIN_LEVEL.into(), column(&t.level, 0));
            terms.insert(TERRAIN_KIND.into(), column(&t.kind, 0));
            terms.insert(CURRICULUM_LEVEL.into(), t.mean_level());
        }
        EpisodeInfo {
            returns: column(&self.rewards.returns, 0),
            lengths: column(&self.episode_length, 0),
            terms,
        }
    }

    /// Resets every environment (all of its state) and, with `random_episode_start`,
    /// spreads the episode counters over the episode, as rsl_rl's `init_at_random_ep_len`,
    /// so that time-outs do not all come at once.
    fn reset_all(&mut self) {
        let n = self.spec.num_envs;
        let all = Tensor::<B, 1>::ones([n], &self.device).greater_elem(0.0);
        let draw = self.draw.draw::<B>(&mut self.rng, &self.device);
        self.reset_where(&all, &draw);
        self.commands.resample(&all, &draw);
        let max = self.spec.max_episode_length as f32;
        let start = self.rng.uniform::<B>(&[0.0], &[max], &self.device).floor();
        if self.cfg.random_episode_start {
            self.episode_length = start;
        }
    }

    /// Resets the environments in `mask` `[N]`: reset events from `draw`, then every
    /// manager's and the environment's own per-episode state. Their commands are resampled
    /// by the caller.
    fn reset_where(&mut self, mask: &Tensor<B, 1, Bool>, draw: &Draw<B>) {
        // On rough terrain the curriculum moves robots between levels (from where their
        // episode ended) before they respawn on their sub-terrain, 1 m about its origin.
        let spawn = match &mut self.terrain {
            Some(t) => {
                let u = self
                    .rng
                    .uniform::<B>(&[0.0, -1.0, -1.0], &[1.0, 1.0, 1.0], &self.device);
                t.update(
                    mask,
                    &self.sim.root_pos(),
                    &self.commands.command,
                    u.clone().narrow(1, 0, 1),
                );
                Some(t.spawn(u.narrow(1, 1, 2)))
            }
            None => None,
        };
        self.events.reset(mask, draw, &mut self.sim, spawn);
        self.actions.reset(mask);
        self.rewards.reset(mask);
        self.commands.reset(mask);
        let zero = |t: &Tensor<B, 2>| choose(mask, t.clone(), t.zeros_like());
        self.last_joint_vel = choose(
            mask,
            self.last_joint_vel.clone(),
            draw.joint_velocity.clone(),
        );
        self.feet_air_time = zero(&self.feet_air_time);
        self.last_contact = zero(&self.last_contact);
        self.episode_length = zero(&self.episode_length);
    }

    /// Reads the shapes of environment `env_id` back from the device, with the ground: the
    /// plane's height, or on rough terrain the field within [`SCENE_TERRAIN_RADIUS`] of the
    /// base (from the host copy).
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
        let base = poses[0].xyz;
        let terrain = self
            .terrain
            .as_ref()
            .map(|t| height_patch(&t.terrain().field, [base[0], base[1]], SCENE_TERRAIN_RADIUS));
        Ok(Scene {
            shapes,
            focus: f(base),
            ground: match terrain {
                Some(_) => None,
                None => Some(self.cfg.sim.contact.ground_height as f32),
            },
            terrain,
            dt: self.dt as f32,
        })
    }
}

/// The step as one kernel after the physics, on the CubeCL backends (`crate::cube::legged`).
#[cfg(feature = "cube")]
impl<B: Backend> LeggedEnv<B> {
    /// The step kernel for this task, when `B` is a CubeCL backend and the kernel knows
    /// every term of the config; `None` keeps the tensor path.
    fn step_kernel_program(
        &self,
        feet: &[usize],
        penalised: &[usize],
        termination_links: &[usize],
    ) -> Option<StepKernel<B>> {
        use super::terms::{COLLISION_FORCE, FEET_AIR_TIME_TARGET, STAND_STILL_SPEED};
        use crate::cube::legged::{LeggedProgram, LeggedSettings};
        // The kernel knows neither rough terrain nor the height scan: those tasks step
        // their managers as tensor ops (the physics still runs as its kernel).
        let tensor_path_terms = [&self.cfg.observations.policy, &self.cfg.observations.critic]
            .iter()
            .flat_map(|g| &g.terms)
            .any(|t| crate::cube::legged::TENSOR_PATH_TERMS.contains(&t.name.as_str()));
        if !crate::cube::is_cube_backend::<B>() || self.terrain.is_some() || tensor_path_terms {
            return None;
        }
        let host = |t: Tensor<B, 2>| t.into_data().convert::<f32>().to_vec::<f32>().ok();
        let cfg = &self.cfg;
        let (rewards, termination_reward) = self.rewards.weighted_terms();
        let (draw_offsets, draw_width) = self.draw.offsets();
        let settings = LeggedSettings {
            dt: self.dt,
            max_episode_length: self.spec.max_episode_length,
            only_positive: self.rewards.only_positive(),
            episode_length_s: cfg.episode_length_s,
            tracking_sigma: cfg.rewards.tracking_sigma,
            max_contact_force: cfg.rewards.max_contact_force,
            base_height_target: cfg.robot.base_height_target,
            ground_height: cfg.sim.contact.ground_height,
            init_height: cfg.robot.init_height,
            min_speed: cfg.commands.min_speed,
            resampling_time_s: cfg.commands.resampling_time_s,
            heading_command: cfg.commands.heading_command,
            heading_stiffness: cfg.commands.heading_stiffness,
            yaw_rate: cfg.commands.ang_vel_z,
            push: cfg.events.interval.push_velocity > 0.0,
            foot_contact_force: FOOT_CONTACT_FORCE,
            collision_force: COLLISION_FORCE,
            stand_still_speed: STAND_STILL_SPEED,
            air_time_offset: self.dt - FEET_AIR_TIME_TARGET,
            rewards: rewards.clone(),
            termination_reward,
            terminations: self.terminations.named_terms(),
            default_joint_pos: host(self.actions.default_joint_pos())?,
            soft_lower: host(self.soft_limits.0.clone())?,
            soft_upper: host(self.soft_limits.1.clone())?,
            feet: feet.to_vec(),
            penalised: penalised.to_vec(),
            termination_links: termination_links.to_vec(),
            num_links: self.sim.model().links.len(),
            groups: self.observations.layouts(),
            draw_offsets,
            draw_width,
        };
        let program = LeggedProgram::new(&settings)?;
        let mut terms: Vec<String> = rewards
            .iter()
            .map(|(name, _)| format!("rew_{name}"))
            .collect();
        if termination_reward.is_some() {
            terms.push("rew_termination".into());
        }
        terms.extend(["lin_vel_error".into(), "ang_vel_error".into()]);
        let len = program.consts.len();
        Some(StepKernel {
            consts: Tensor::from_data(TensorData::new(program.consts, [len]), &self.device),
            dims: program.dims,
            terms,
            placeholder: Tensor::zeros([1, 1], &self.device),
        })
    }

    /// Whether the steps run the step kernel (for tests).
    #[cfg(test)]
    pub(crate) fn uses_step_kernel(&self) -> bool {
        self.kernel.is_some()
    }

    /// [`VecEnv::step`] with everything after the physics in one kernel launch.
    fn step_with_kernel(&mut self, actions: Tensor<B, 2>) -> rl_core::Result<StepOutput<B>> {
        use burn::tensor::TensorPrimitive;
        let Some(kernel) = self.kernel.clone() else {
            return Err(env_error("the legged step kernel is not set up"));
        };
        let n = self.spec.num_envs;
        let target = self.actions.compute(actions, &self.device)?;
        let clipped = self.actions.action.clone();
        self.sim
            .set_joint_position_target(target)
            .map_err(env_error)?;
        for _ in 0..self.cfg.decimation {
            self.sim.step();
        }
        // The random numbers of the reset and of the observation noise, in the order the
        // tensor path draws them.
        let draw = self.draw.uniform::<B>(&mut self.rng, &self.device);
        let mut noise = self
            .observations
            .draw_noise(&mut self.rng, &self.device)
            .into_iter();
        let mut next_noise = || {
            noise
                .next()
                .flatten()
                .unwrap_or_else(|| kernel.placeholder.clone())
        };
        let (noise0, noise1) = (next_noise(), next_noise());
        let packed = match self.packed.take() {
            Some(packed) => packed,
            None => self.pack(),
        };
        let sim = &self.sim;
        let f = |t: Tensor<B, 2>| t.into_primitive().tensor();
        let inputs = vec![
            kernel.consts.clone().into_primitive().tensor(),
            f(sim.root_pos()),
            f(sim.root_quat()),
            f(sim.root_lin_vel_w()),
            f(sim.root_ang_vel_w()),
            f(sim.joint_pos()),
            f(sim.joint_vel()),
            f(sim.applied_torque()),
            sim.contact_forces().into_primitive().tensor(),
            f(packed),
            f(clipped),
            f(draw),
            f(noise0),
            f(noise1),
        ];
        debug_assert_eq!(inputs.len(), crate::cube::legged::INPUTS);
        let outputs = sim_physics::cube::run::<B, _>(kernel.dims, inputs)
            .map_err(|_| env_error("the legged step kernel needs a CubeCL backend"))?;
        let outputs: Vec<Tensor<B, 2>> = outputs
            .into_iter()
            .map(|p| Tensor::from_primitive(TensorPrimitive::Float(p)))
            .collect();
        let Ok(
            [
                pos,
                quat,
                lin,
                ang,
                q,
                qd,
                state,
                rows,
                final0,
                obs0,
                final1,
                obs1,
            ],
        ) = <[Tensor<B, 2>; crate::cube::legged::OUTPUTS]>::try_from(outputs)
        else {
            return Err(env_error(
                "the legged step kernel returned the wrong outputs",
            ));
        };
        self.sim
            .replace_state([pos, quat, lin, ang], q, qd)
            .map_err(env_error)?;
        self.packed = Some(state);
        let row = |i: usize| rows.clone().narrow(0, i, 1).reshape([n]);
        let terms = kernel
            .terms
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), row(5 + i)))
            .collect();
        let episode = EpisodeInfo {
            returns: row(3),
            lengths: row(4),
            terms,
        };
        let mut observations = Observations::new();
        let mut final_observations = Observations::new();
        for (name, (fin, obs)) in self
            .observations
            .names()
            .iter()
            .zip([(final0, obs0), (final1, obs1)])
        {
            final_observations = final_observations.with(name, fin);
            observations = observations.with(name, obs);
        }
        self.obs = observations.clone();
        Ok(StepOutput {
            observations,
            rewards: row(0),
            terminated: row(1).greater_elem(0.5),
            time_outs: row(2).greater_elem(0.5),
            final_observations,
            episode,
        })
    }
}

/// The robot of `model` as the task drives it: the config's file, the joints in the
/// simulator's order with their default positions `default_pos` (rad), the config's drive
/// gains for every joint, and the model's effort limits when it gives one for every joint.
fn robot_layout(model: &Model, cfg: &LeggedConfig, default_pos: &[f64]) -> RobotLayout {
    let nj = model.num_joints();
    let effort: Vec<f64> = model.joints.iter().map(|j| j.effort_limit).collect();
    RobotLayout {
        file: cfg
            .robot
            .urdf
            .as_ref()
            .map_or(BUILTIN_ROBOT_FILE.to_string(), |p| p.display().to_string()),
        joint_names: model.joints.iter().map(|j| j.name.clone()).collect(),
        default_joint_pos: default_pos.iter().map(|&q| q as f32).collect(),
        stiffness: vec![cfg.actions.stiffness as f32; nj],
        damping: vec![cfg.actions.damping as f32; nj],
        // JSON has no infinity: a model without a limit on some joint gives none at all.
        effort_limit: if effort.iter().all(|e| e.is_finite()) {
            effort.iter().map(|&e| e as f32).collect()
        } else {
            Vec::new()
        },
    }
}

/// The default joint positions of `model`: the config's patterns over the named keyframe's
/// positions (an MJCF robot's), or the built-in quadruped's standing pose.
fn default_joint_pos(
    model: &Model,
    keyframes: &[sim_physics::Keyframe],
    cfg: &LeggedConfig,
    task: &str,
) -> Result<Vec<f64>> {
    let patterns = &cfg.robot.default_joint_pos;
    let mut q = vec![None; model.num_joints()];
    if let Some(name) = &cfg.robot.keyframe {
        let key = keyframes.iter().find(|k| &k.name == name).ok_or_else(|| {
            let names: Vec<&str> = keyframes.iter().map(|k| k.name.as_str()).collect();
            config_error(
                task,
                "robot.keyframe",
                format!("the robot file has no keyframe `{name}` (it has {names:?})"),
            )
        })?;
        q = key.joint_pos.iter().map(|&v| Some(v)).collect();
    } else if patterns.is_empty() {
        if cfg.robot.urdf.is_some() {
            return Err(config_error(
                task,
                "robot.default_joint_pos",
                "a robot loaded from a file needs its default joint positions (or, for MJCF, \
                 robot.keyframe)",
            ));
        }
        return Ok(robots::quadruped_standing_joint_pos(model)?);
    }
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
        #[cfg(feature = "cube")]
        if self.kernel.is_some() {
            return self.step_with_kernel(actions);
        }
        self.sync();
        // Actions, processed once; the drives track them through `decimation` physics steps.
        let target = self.actions.compute(actions, &self.device)?;
        self.sim
            .set_joint_position_target(target)
            .map_err(env_error)?;
        for _ in 0..self.cfg.decimation {
            self.sim.step();
        }
        // The clocks, the contact sensor, then terminations, rewards and the command metrics,
        // all read at this state.
        self.episode_length = self.episode_length.clone().add_scalar(1.0);
        self.events.advance(self.dt);
        let feet = self.feet_contact();
        let mut ctx = self.context(Some(feet.first_contact.clone()));
        let (terminated, time_outs) = self.terminations.compute(&ctx, &self.episode_length);
        ctx.terminated = terminated.clone();
        let rewards = self.rewards.compute(&ctx);
        self.commands.update_metrics(&ctx);
        self.end_step(&ctx, feet);
        let episode = self.episode_info();
        let final_observations = self.observe(false);
        // Reset of the finished environments, command resampling (and heading) and interval
        // events (pushes), from one draw of random numbers; then the new observations.
        let dones = terminated.clone().bool_or(time_outs.clone());
        let draw = self.draw.draw::<B>(&mut self.rng, &self.device);
        self.reset_where(&dones, &draw);
        self.commands.compute(&dones, &draw, self.dt, &self.sim);
        self.events.interval(&draw, &mut self.sim);
        let observations = self.observe(true);
        self.obs = observations.clone();
        Ok(StepOutput {
            observations,
            rewards,
            terminated,
            time_outs,
            final_observations,
            episode,
        })
    }

    fn reset(&mut self) -> Observations<B> {
        self.sync();
        self.reset_all();
        let obs = self.observe(true);
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
        for (name, t) in self.task_tensors() {
            entries.push((name.into(), t));
        }
        for (name, _) in self.observations.groups() {
            entries.push((format!("obs/{name}"), self.obs.get(name)?));
        }
        if let Some(t) = &self.terrain {
            entries.push(("terrain/level".into(), t.level.clone()));
            entries.push(("terrain/origin".into(), t.origin.clone()));
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
        let nj = self.actions.num_joints();
        let device = self.device.clone();
        // Everything is read and checked before anything is replaced.
        let root: Tensor<B, 2> = snapshot.load_tensor("root", [n, 13], &device)?;
        let joints: Tensor<B, 2> = snapshot.load_tensor("joints", [n, 2 * nj], &device)?;
        let state = task_state!(self; &)
            .into_iter()
            .map(|(name, t)| snapshot.load_tensor(name, [n, t.dims()[1]], &device))
            .collect::<rl_core::Result<Vec<Tensor<B, 2>>>>()?;
        let mut obs = Observations::new();
        for (name, width) in self.observations.groups() {
            let t: Tensor<B, 2> =
                snapshot.load_tensor(&format!("obs/{name}"), [n, width], &device)?;
            obs = obs.with(name, t);
        }
        let terrain = match &self.terrain {
            Some(_) => Some((
                snapshot.load_tensor::<B, 2>("terrain/level", [n, 1], &device)?,
                snapshot.load_tensor::<B, 2>("terrain/origin", [n, 3], &device)?,
            )),
            None => None,
        };
        let rng = snapshot.rng(RNG)?.clone();
        let all = Tensor::<B, 1>::ones([n], &device).greater_elem(0.0);
        self.sim.set_root_state_where(all.clone(), root);
        self.sim.set_joint_state_where(
            all,
            joints.clone().narrow(1, 0, nj),
            joints.narrow(1, nj, nj),
        );
        self.packed = None;
        for ((_, t), loaded) in task_state!(self; &mut).into_iter().zip(state) {
            *t = loaded;
        }
        self.obs = obs;
        self.rng = rng;
        if let (Some(t), Some((level, origin))) = (&mut self.terrain, terrain) {
            t.level = level;
            t.origin = origin;
        }
        self.events
            .apply_randomisation(&mut self.sim)
            .map_err(env_error)?;
        Ok(())
    }

    fn scene(&self, env_id: usize) -> rl_core::Result<Option<Scene>> {
        self.read_scene(env_id).map(Some)
    }

    /// Every observation group with its terms, the joint-position action
    /// (`default_joint_pos + scale * clip(a)`) and the robot, from host copies kept since
    /// the task was built (nothing is read from the device).
    fn layout(&self) -> EnvLayout {
        let mut observations = self.observations.layout();
        let scan = &self.cfg.height_scan;
        let (xs, ys) = (scan.x_points(), scan.y_points());
        let grid = format!(
            "; offset {} m, {} x {} points, x from {} to {} m, y from {} to {} m, every {} m",
            scan.offset,
            xs.len(),
            ys.len(),
            scan.x[0],
            scan.x[1],
            scan.y[0],
            scan.y[1],
            scan.resolution
        );
        for term in observations.values_mut().flat_map(|g| g.terms.iter_mut()) {
            if term.name == "height_scan" {
                term.unit.push_str(&grid);
            }
        }
        let robot = self.robot.clone();
        let nj = robot.joint_names.len();
        let clip = self.cfg.actions.clip as f32;
        EnvLayout {
            observations,
            actions: ActionLayout {
                kind: "joint_position".into(),
                names: robot.joint_names.clone(),
                low: vec![-clip; nj],
                high: vec![clip; nj],
                scale: vec![self.cfg.actions.scale as f32; nj],
                offset: robot.default_joint_pos.clone(),
            },
            robot: Some(robot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legged::config::{ObsTermConfig, Scale};
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

    /// The layout an exported policy carries: the config's terms in order with their
    /// widths, scales and clips, the joint-position action about the default pose, and the
    /// robot as the simulator drives it.
    #[test]
    fn layout_describes_the_config_terms_and_the_simulators_robot() {
        let mut cfg = calm();
        cfg.actions.scale = 0.5;
        cfg.actions.clip = 10.0;
        cfg.actions.stiffness = 30.0;
        cfg.actions.damping = 0.7;
        cfg.observations.policy.terms[1].clip = Some(3.0);
        cfg.observations.policy.clip = Some(50.0);
        let mut scan = ObsTermConfig::new("height_scan", Scale::One(5.0), 0.0);
        scan.clip = Some(1.0);
        cfg.observations.critic.terms.push(scan);
        let e = env(cfg.clone(), 2);
        let layout = e.layout();
        assert_eq!(layout.check(&e.spec), Ok(()));

        // Every group's terms are the config's, in order, with their widths and scales.
        for (name, group_cfg) in [
            ("policy", &cfg.observations.policy),
            ("critic", &cfg.observations.critic),
        ] {
            let group = &layout.observations[name];
            assert_eq!(group.clip, group_cfg.clip.map(|c| c as f32), "{name} clip");
            let names: Vec<&str> = group.terms.iter().map(|t| t.name.as_str()).collect();
            let want: Vec<&str> = group_cfg.terms.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, want, "{name} terms");
            for (t, t_cfg) in group.terms.iter().zip(&group_cfg.terms) {
                let scale: Vec<f32> = match &t_cfg.scale {
                    Scale::One(s) => vec![*s as f32; t.size],
                    Scale::Each(s) => s.iter().map(|&x| x as f32).collect(),
                };
                assert_eq!(t.scale, scale, "{name}.{}", t.name);
                assert_eq!(t.clip, t_cfg.clip.map(|c| c as f32), "{name}.{}", t.name);
                assert!(!t.unit.is_empty(), "{name}.{} has a unit", t.name);
            }
        }
        let sizes = |g: &str| -> Vec<usize> {
            layout.observations[g]
                .terms
                .iter()
                .map(|t| t.size)
                .collect()
        };
        assert_eq!(sizes("policy"), [3, 3, 3, 3, 12, 12, 12]);
        // 17 x 11 scan points after the proprioception and the privileged terms
        assert_eq!(sizes("critic"), [3, 3, 3, 3, 12, 12, 12, 1, 1, 12, 187]);
        let scan = layout.observations["critic"]
            .terms
            .last()
            .expect("height_scan");
        assert!(
            scan.unit.contains("offset 0.5 m, 17 x 11 points"),
            "{}",
            scan.unit
        );
        assert_eq!(
            layout.observations["policy"].terms[1].unit,
            "rad/s, base frame"
        );

        // Joint-position actions about the default pose, joints in the simulator's order.
        let model = e.sim.model();
        let joints: Vec<&str> = model.joints.iter().map(|j| j.name.as_str()).collect();
        let standing: Vec<&str> = robots::QUADRUPED_STANDING_POSE
            .iter()
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(joints, standing, "the built-in quadruped's joint order");
        let default: Vec<f32> = vals(e.actions.default_joint_pos())
            .into_iter()
            .map(|q| q as f32)
            .collect();
        let a = &layout.actions;
        assert_eq!(a.kind, "joint_position");
        assert_eq!(a.names, joints);
        assert_eq!(a.offset, default);
        assert_eq!(a.scale, vec![0.5; 12]);
        assert_eq!(
            (a.low.clone(), a.high.clone()),
            (vec![-10.0; 12], vec![10.0; 12])
        );

        let robot = layout.robot.as_ref().expect("a legged task has a robot");
        assert_eq!(robot.file, BUILTIN_ROBOT_FILE);
        assert_eq!(robot.joint_names, joints);
        assert_eq!(robot.default_joint_pos, default);
        assert_eq!(robot.stiffness, vec![30.0; 12]);
        assert_eq!(robot.damping, vec![0.7; 12]);
        let effort: Vec<f32> = model.joints.iter().map(|j| j.effort_limit as f32).collect();
        assert_eq!(robot.effort_limit, effort);
        assert_eq!(
            &effort[..],
            &[[25.0; 8].as_slice(), &[35.0; 4]].concat()[..]
        );
    }

    /// Every config in `configs/` whose robot comes from a file (the shipped A1, Go1 and
    /// ANYmal C), calm: the robot dropped at its reset height in its default pose, zero
    /// actions, PD drives at the config's gains. After 5 s it stands level where it landed,
    /// its joints within 0.3 rad of the default pose, and no episode has ended.
    #[test]
    fn every_shipped_robot_stands_at_its_default_pose_for_5_s() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut stood = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(root.join("configs"))
            .expect("configs/")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable");
            let table: toml::Table = toml::from_str(&text).expect("valid TOML");
            let mut settings = table["env"].as_table().expect("[env]").clone();
            let task = settings.remove("task").expect("env.task");
            settings.remove("num_envs");
            let Some(task) = task.as_str().filter(|t| crate::registry::is_legged(t)) else {
                continue;
            };
            let mut cfg = crate::legged_config(task, &settings).expect("a valid config");
            let Some(urdf) = cfg.robot.urdf.take() else {
                continue;
            };
            cfg.robot.urdf = Some(root.join(urdf));
            cfg.events = calm().events;
            cfg.random_episode_start = false;
            let init = cfg.robot.init_height;
            let steps = (5.0 / (cfg.sim.dt * cfg.decimation as f64)).round() as usize;
            let mut e = env(cfg, 2);
            let nj = e.sim.model().num_joints();
            let default = vals(e.actions.default_joint_pos());
            // On rough terrain robots spawn about their sub-terrain's origin.
            let start = vals(e.sim.root_pos().narrow(1, 0, 2));
            for step in 0..steps {
                let out = e.step(Tensor::zeros([2, nj], &dev())).expect("step");
                assert!(
                    !flags(out.terminated).contains(&true),
                    "{}: an episode ended at step {step}",
                    file.display()
                );
            }
            let name = file.display();
            for h in vals(e.context(None).base_height) {
                assert!((0.5 * init..init).contains(&h), "{name}: base height {h}");
            }
            for gz in vals(e.sim.projected_gravity_b().narrow(1, 2, 1)) {
                assert!(gz < -0.99, "{name}: tilted, g_z {gz}");
            }
            let end = vals(e.sim.root_pos().narrow(1, 0, 2));
            for (a, b) in start.iter().zip(&end) {
                assert!((a - b).abs() < 0.05, "{name}: drifted from {a} to {b} m");
            }
            // The drives give under the weight (A1's knees by 0.25 rad at 20 N m / rad).
            let q = vals(e.sim.joint_pos());
            for (k, q) in q.iter().enumerate() {
                let d = default[k % nj];
                assert!((q - d).abs() < 0.3, "{name}: joint {k} at {q}, default {d}");
            }
            stood.push(file.file_name().expect("a name").to_owned());
        }
        assert_eq!(
            stood,
            [
                "a1_flat.toml",
                "a1_rough.toml",
                "anymal_c_flat.toml",
                "anymal_c_rough.toml",
                "go1_flat.toml",
                "go1_rough.toml"
            ],
            "the configs with a robot file"
        );
    }

    /// A robot as MuJoCo Menagerie ships it (MJCF, `unitree_a1/scene.xml` with its include)
    /// is a legged task's robot too: at the file's `home` keyframe pose it stands 1 s.
    #[test]
    fn a_menagerie_mjcf_robot_stands_in_the_legged_task() {
        let scene_path = || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../sim-physics/tests/data/mjcf/unitree_a1/scene.xml")
        };
        let mut cfg = calm();
        cfg.robot.urdf = Some(scene_path());
        cfg.robot.init_height = 0.3;
        cfg.robot.keyframe = Some("home".into());
        // A pattern overrides the keyframe's value.
        cfg.robot.default_joint_pos = [("FR_hip_joint".to_owned(), 0.05)].into();
        cfg.robot.termination_links = vec!["trunk".into()];
        let mut e = env(cfg, 2);
        assert_eq!(e.sim.model().links[0].name, "trunk");
        for _ in 0..50 {
            let out = e.step(zeros(&e)).expect("step");
            assert!(!flags(out.terminated).contains(&true));
        }
        for h in vals(e.sim.root_pos().narrow(1, 2, 1)) {
            assert!((0.15..0.3).contains(&h), "base height {h}");
        }
        for gz in vals(e.sim.projected_gravity_b().narrow(1, 2, 1)) {
            assert!(gz < -0.99, "tilted: {gz}");
        }
        // The keyframe's pose (hips 0, thighs 0.9, calves -1.8), FR's hip from the pattern.
        let default = vals(e.actions.default_joint_pos());
        assert!((default[0] - 0.05).abs() < 1e-6, "{default:?}");
        assert_eq!(&default[1..4], [0.0; 3]);
        assert!(
            default[4..8].iter().all(|&q| (q - 0.9).abs() < 1e-6),
            "{default:?}"
        );
        assert!(
            default[8..].iter().all(|&q| (q + 1.8).abs() < 1e-6),
            "{default:?}"
        );
        // A keyframe the file does not have is an error naming the field and the keys.
        let mut bad = calm();
        bad.robot.urdf = Some(scene_path());
        bad.robot.keyframe = Some("crouch".into());
        let Err(err) = LeggedEnv::<B>::new("quadruped_flat", bad, 1, 3, &dev()) else {
            panic!("a keyframe the file does not have was accepted");
        };
        let err = err.to_string();
        assert!(
            err.contains("robot.keyframe") && err.contains("crouch") && err.contains("home"),
            "{err}"
        );
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
        let lengths = vals(e.episode_length.clone());
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
        let timer = |e: &LeggedEnv<B>| vals(e.events.push_time.clone());
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

    /// The default task on a small rough terrain (4 levels x 2 columns of 4 m), with the
    /// height scan in the policy's observations.
    fn rough() -> LeggedConfig {
        let mut cfg = LeggedConfig {
            terrain: sim_physics::TerrainConfig {
                kind: sim_physics::TerrainKind::Heightfield,
                terrain_length: 4.0,
                terrain_width: 4.0,
                num_rows: 4,
                num_cols: 2,
                border_size: 2.0,
                platform_size: 2.0,
                max_init_terrain_level: 3,
                ..Default::default()
            },
            ..LeggedConfig::default()
        };
        cfg.observations
            .policy
            .terms
            .push(ObsTermConfig::new("height_scan", Scale::One(5.0), 0.1));
        cfg
    }

    #[test]
    fn on_rough_terrain_robots_spawn_on_their_sub_terrain_and_see_its_ground() {
        let cfg = rough();
        let init_height = cfg.robot.init_height;
        let e = env(cfg, 8);
        let t = e.terrain.as_ref().expect("rough terrain");
        let (pos, origin) = (vals(e.sim.root_pos()), vals(t.origin.clone()));
        let level = vals(t.level.clone());
        assert!(
            level.iter().any(|&l| l > 0.0),
            "every robot on level 0: {level:?}"
        );
        for i in 0..8 {
            let (dx, dy) = (
                pos[i * 3] - origin[i * 3],
                pos[i * 3 + 1] - origin[i * 3 + 1],
            );
            assert!(
                dx.abs() <= 1.0 && dy.abs() <= 1.0,
                "robot {i} is {dx}, {dy} off"
            );
            assert!((pos[i * 3 + 2] - origin[i * 3 + 2] - init_height).abs() < 1e-5);
        }
        // The policy's last 187 columns are the scan: at spawn, (init_height - 0.5 - ground
        // below the origin's platform) * 5, the same for every point of a flat platform.
        let obs = vals(e.observations().get("policy").expect("policy"));
        let width = obs.len() / 8;
        for i in 0..8 {
            let scan = &obs[i * width + width - 187..(i + 1) * width];
            let ground = t.terrain().field.height_at(pos[i * 3], pos[i * 3 + 1]);
            let want = (pos[i * 3 + 2] - 0.5 - ground) * 5.0;
            let centre = scan[8 * 11 + 5];
            assert!(
                (centre - want).abs() < 5.0 * 0.1 + 1e-4,
                "robot {i}: {centre} vs {want}"
            );
        }
    }

    #[test]
    fn a_snapshot_on_rough_terrain_continues_exactly_with_its_levels() {
        let mut cfg = rough();
        // Episodes of 0.1 s, so that the curriculum acts within a few steps, with a command
        // of 40 m/s that no robot follows: they move down (the distance "walked" includes
        // the spawn offset of up to 1.4 m, as in legged_gym; 2 m were asked).
        cfg.episode_length_s = 0.1;
        cfg.commands.lin_vel_x = [40.0, 40.0];
        cfg.commands.lin_vel_y = [0.0, 0.0];
        let actions = |n: usize| {
            Tensor::<B, 2>::from_data(
                TensorData::new(
                    (0..n * 12).map(|i| ((i % 5) as f32 - 2.0) * 0.2).collect(),
                    [n, 12],
                ),
                &dev(),
            )
        };
        let mut a = env(cfg.clone(), 6);
        for _ in 0..4 {
            a.step(actions(6)).expect("step");
        }
        let snapshot = a.save_state().expect("save");
        let mut b = LeggedEnv::<B>::new("quadruped_flat", cfg, 6, 99, &dev()).expect("task");
        b.load_state(&snapshot).expect("load");
        let level = |e: &LeggedEnv<B>| vals(e.terrain.as_ref().expect("terrain").level.clone());
        assert_eq!(level(&a), level(&b));
        let mut moved = false;
        for _ in 0..8 {
            let before = level(&a);
            let oa = a.step(actions(6)).expect("step");
            let ob = b.step(actions(6)).expect("step");
            assert_eq!(vals(oa.rewards), vals(ob.rewards));
            assert_eq!(
                vals(oa.observations.get("policy").expect("policy")),
                vals(ob.observations.get("policy").expect("policy"))
            );
            assert_eq!(vals(a.sim.root_pos()), vals(b.sim.root_pos()));
            assert_eq!(level(&a), level(&b));
            moved |= level(&a) != before;
            let logged = &oa.episode.terms[CURRICULUM_LEVEL];
            let mean = before.iter().sum::<f64>() / before.len() as f64;
            assert!(
                vals(logged.clone())
                    .iter()
                    .all(|&m| (m - mean).abs() < 1e-6)
            );
        }
        assert!(
            moved,
            "no robot changed level: the test does not test the curriculum"
        );
        // A snapshot from the plane does not load on rough terrain.
        let mut plane = rough();
        plane.terrain.kind = sim_physics::TerrainKind::Plane;
        let flat = env(plane, 6).save_state().expect("save");
        let mut c = env(rough(), 6);
        let err = c.load_state(&flat).expect_err("no terrain in the snapshot");
        assert!(err.to_string().contains("terrain/level"), "{err}");
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
        // The plane is the ground's height, with no terrain.
        assert_eq!(scene.ground, Some(0.0));
        assert!(scene.terrain.is_none());
    }

    #[test]
    fn the_scene_on_rough_terrain_carries_the_field_around_the_base() {
        let e = env(rough(), 4);
        let field = &e.terrain.as_ref().expect("rough terrain").terrain().field;
        for k in 0..4 {
            let scene = e.scene(k).expect("read").expect("a legged task draws");
            assert_eq!(scene.ground, None);
            let patch = scene.terrain.expect("a terrain patch");
            let [x, y, _] = scene.focus.map(f64::from);
            let read = |dx: f64, dy: f64| {
                let (px, py) = (x + dx, y + dy);
                let want = field.height_at(px, py);
                let got = f64::from(patch.height_at(px as f32, py as f32));
                assert!(
                    (got - want).abs() < 1e-4,
                    "robot {k} at ({dx}, {dy}) off the base: {got} vs {want}"
                );
                want
            };
            read(0.0, 0.0);
            // Across the window: the platform under the base and the rough ground about it.
            let mut heights = Vec::new();
            for a in -7..=7 {
                for b in -7..=7 {
                    heights.push(read(0.55 * f64::from(a), 0.55 * f64::from(b)));
                }
            }
            let spread = heights.iter().fold(f64::MIN, |m, &h| m.max(h))
                - heights.iter().fold(f64::MAX, |m, &h| m.min(h));
            assert!(spread > 0.01, "robot {k}: the window is flat ({spread} m)");
            // The window reaches 4 m out (or to the field's edge) on every side.
            let [x_min, x_max, y_min, y_max] = field.extent();
            let end = |o: f32, n: usize| f64::from(o + (n - 1) as f32 * patch.spacing);
            let (px, py) = (f64::from(patch.origin[0]), f64::from(patch.origin[1]));
            assert!(
                px <= (x - 4.0).max(x_min) + 1e-3
                    && end(patch.origin[0], patch.rows) >= (x + 4.0).min(x_max) - 1e-3
            );
            assert!(
                py <= (y - 4.0).max(y_min) + 1e-3
                    && end(patch.origin[1], patch.cols) >= (y + 4.0).min(y_max) - 1e-3
            );
            assert!(patch.heights.len() < 10_000);
        }
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
