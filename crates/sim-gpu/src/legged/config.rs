//! The configuration of a legged locomotion task: every manager's terms and settings, read
//! from the `[env]` table of a training config (see `configs/quadruped_flat.toml`).
//!
//! The defaults are legged_gym's flat-ground quadruped (A1-sized robot, physics 0.005 s,
//! decimation 4, 20 s episodes), so an empty table gives the `quadruped_flat` task.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::terms;
use crate::{Error, Result};
use sim_physics::{SimConfig, TerrainConfig};

/// A legged velocity-tracking task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeggedConfig {
    /// Episode length (s); episodes that reach it end as time-outs.
    pub episode_length_s: f64,
    /// Start the episode counters at random points of the episode when every environment
    /// is reset together (rsl_rl's `init_at_random_ep_len`), so that time-outs spread out
    /// in training. `play` turns it off, so that evaluated episodes are whole.
    pub random_episode_start: bool,
    /// Physics steps per policy step (the policy acts every `decimation * sim.dt` s).
    pub decimation: usize,
    /// The simulator (time step, contact model).
    pub sim: SimConfig,
    /// The robot and its named link groups.
    pub robot: RobotConfig,
    /// How actions become joint targets.
    pub actions: ActionsConfig,
    /// The velocity commands.
    pub commands: CommandsConfig,
    /// Observation groups.
    pub observations: ObservationsConfig,
    /// Reward terms and their settings.
    pub rewards: RewardsConfig,
    /// Termination terms by name, each with its threshold (see
    /// [`terms::TERMINATION_TERMS`]); time-outs come from `episode_length_s`.
    pub terminations: BTreeMap<String, f64>,
    /// Randomisation events.
    pub events: EventsConfig,
    /// The ground: a plane (`type = "plane"`, the default) or generated rough terrain
    /// (`type = "heightfield"`) with its curriculum.
    pub terrain: TerrainConfig,
    /// The grid of the `height_scan` observation term.
    pub height_scan: HeightScanConfig,
}

/// Where the `height_scan` observation term samples the ground: a grid around the base in
/// its yaw frame (legged_gym's `measured_points_x`/`_y`: 17 x 11 points 0.1 m apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeightScanConfig {
    /// First and last point along the base's x (forward), m.
    pub x: [f64; 2],
    /// First and last point along the base's y (left), m.
    pub y: [f64; 2],
    /// Distance between points (m).
    pub resolution: f64,
    /// Subtracted from the base height above each point (m): the term is
    /// `base_z - offset - ground_z`, which is about 0 for a robot standing at this height.
    pub offset: f64,
}

impl Default for HeightScanConfig {
    fn default() -> Self {
        Self {
            x: [-0.8, 0.8],
            y: [-0.5, 0.5],
            resolution: 0.1,
            offset: 0.5,
        }
    }
}

impl HeightScanConfig {
    fn points(range: [f64; 2], resolution: f64) -> Vec<f64> {
        let count = ((range[1] - range[0]) / resolution + 1e-6).floor() as usize + 1;
        (0..count)
            .map(|k| range[0] + k as f64 * resolution)
            .collect()
    }

    /// The grid's x coordinates.
    pub fn x_points(&self) -> Vec<f64> {
        Self::points(self.x, self.resolution)
    }

    /// The grid's y coordinates.
    pub fn y_points(&self) -> Vec<f64> {
        Self::points(self.y, self.resolution)
    }
}

impl Default for LeggedConfig {
    fn default() -> Self {
        Self {
            episode_length_s: 20.0,
            random_episode_start: true,
            decimation: 4,
            sim: SimConfig::default(),
            robot: RobotConfig::default(),
            actions: ActionsConfig::default(),
            commands: CommandsConfig::default(),
            observations: ObservationsConfig::default(),
            rewards: RewardsConfig::default(),
            terminations: terms::default_terminations()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            events: EventsConfig::default(),
            terrain: TerrainConfig::default(),
            height_scan: HeightScanConfig::default(),
        }
    }
}

/// The robot, its standing pose and which links play which part.
///
/// Link and joint names may use `*` as a wildcard (`"*_calf"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RobotConfig {
    /// A robot description to load instead of the built-in quadruped (relative to the
    /// working directory): URDF, or MJCF when it ends in `.xml` or `.mjcf`. Its
    /// `default_joint_pos` must then be given.
    pub urdf: Option<PathBuf>,
    /// Height of the base at reset (m).
    pub init_height: f64,
    /// Default joint positions by joint name pattern (rad); the built-in quadruped's
    /// standing pose when empty. With `keyframe`, they override the keyframe's.
    pub default_joint_pos: BTreeMap<String, f64>,
    /// The name of a `<key>` of an MJCF robot whose joint positions are the default pose
    /// (Menagerie's robots have a standing `home`).
    pub keyframe: Option<String>,
    /// The feet (air time, foot contact forces).
    pub feet: Vec<String>,
    /// Links whose contact the `collision` reward penalises.
    pub penalised: Vec<String>,
    /// Links whose contact ends the episode (`base_contact`).
    pub termination_links: Vec<String>,
    /// Target of the `base_height` reward (m).
    pub base_height_target: f64,
}

impl Default for RobotConfig {
    fn default() -> Self {
        Self {
            urdf: None,
            init_height: sim_physics::robots::QUADRUPED_STANDING_HEIGHT + 0.02,
            default_joint_pos: BTreeMap::new(),
            keyframe: None,
            // The feet are lumped into the calves.
            feet: vec!["*_calf".into()],
            penalised: vec!["*_thigh".into()],
            termination_links: vec!["base".into()],
            base_height_target: 0.30,
        }
    }
}

/// Joint-position actions: `target = scale * clip(a) + q_default`, tracked by PD drives
/// evaluated at every physics step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActionsConfig {
    /// Action scale (rad per unit action).
    pub scale: f64,
    /// Actions are clipped to `[-clip, clip]` before use (legged_gym `clip_actions`).
    pub clip: f64,
    /// Drive stiffness (N m / rad).
    pub stiffness: f64,
    /// Drive damping (N m s / rad).
    pub damping: f64,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        Self {
            scale: 0.25,
            clip: 100.0,
            stiffness: 20.0,
            damping: 0.5,
        }
    }
}

/// Velocity commands `[v_x, v_y, w_z]` in the base frame, drawn uniformly from their ranges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommandsConfig {
    /// Commands are resampled this often (s), and at every reset.
    pub resampling_time_s: f64,
    /// Range of the forward velocity command (m/s).
    pub lin_vel_x: [f64; 2],
    /// Range of the sideways velocity command (m/s).
    pub lin_vel_y: [f64; 2],
    /// Range of the yaw-rate command (rad/s); with `heading_command`, the yaw rate is
    /// clipped into it.
    pub ang_vel_z: [f64; 2],
    /// Command a heading instead of a yaw rate: `w_z = heading_stiffness * (heading - yaw)`
    /// (the angle wrapped into `[-pi, pi]`), recomputed every step.
    pub heading_command: bool,
    /// Range of the heading command (rad).
    pub heading: [f64; 2],
    /// Gain from heading error to yaw-rate command (1/s).
    pub heading_stiffness: f64,
    /// Planar commands slower than this (m/s) are set to zero, so that some robots learn
    /// to stand (legged_gym: 0.2); 0 keeps every command.
    pub min_speed: f64,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        Self {
            resampling_time_s: 10.0,
            lin_vel_x: [-1.0, 1.0],
            lin_vel_y: [-1.0, 1.0],
            ang_vel_z: [-1.0, 1.0],
            heading_command: false,
            heading: [-std::f64::consts::PI, std::f64::consts::PI],
            heading_stiffness: 0.5,
            min_speed: 0.2,
        }
    }
}

/// A scale for every column of a term, or one for all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scale {
    /// One scale for every column.
    One(f64),
    /// One scale per column.
    Each(Vec<f64>),
}

impl Default for Scale {
    fn default() -> Self {
        Scale::One(1.0)
    }
}

/// One observation term: `clip(value + noise) * scale`, noise `U(-noise, noise)` in the
/// term's own units (IsaacLab's order: noise, clip, scale).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObsTermConfig {
    /// The term's name (see [`super::observations::OBSERVATION_TERMS`]).
    pub name: String,
    /// Multiplies the (noisy, clipped) value.
    #[serde(default)]
    pub scale: Scale,
    /// Half-width of the uniform noise added to the raw value (0: none).
    #[serde(default)]
    pub noise: f64,
    /// Clips the noisy value into `[-clip, clip]`.
    #[serde(default)]
    pub clip: Option<f64>,
}

impl ObsTermConfig {
    /// A term with its scale and noise, unclipped.
    pub(crate) fn new(name: &str, scale: Scale, noise: f64) -> Self {
        Self {
            name: name.into(),
            scale,
            noise,
            clip: None,
        }
    }
}

/// An observation group: its terms, concatenated in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObsGroupConfig {
    /// Add the terms' noise (IsaacLab `enable_corruption`).
    pub noise: bool,
    /// Clip the whole group, after scaling, into `[-clip, clip]` (legged_gym
    /// `clip_observations`).
    pub clip: Option<f64>,
    /// The terms.
    pub terms: Vec<ObsTermConfig>,
}

impl Default for ObsGroupConfig {
    fn default() -> Self {
        Self {
            noise: false,
            clip: Some(100.0),
            terms: Vec::new(),
        }
    }
}

/// The observation groups: `policy` for the actor, `critic` (privileged) for the critic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservationsConfig {
    /// The actor's observation (noisy).
    pub policy: ObsGroupConfig,
    /// The critic's observation; no `critic` group when it has no terms.
    pub critic: ObsGroupConfig,
}

/// legged_gym's policy observation with its scales and noise (`noise_scales`, in the
/// term's own units, as IsaacLab writes them).
fn proprioception(noisy: bool) -> Vec<ObsTermConfig> {
    let n = |v: f64| if noisy { v } else { 0.0 };
    vec![
        ObsTermConfig::new("base_lin_vel", Scale::One(2.0), n(0.1)),
        ObsTermConfig::new("base_ang_vel", Scale::One(0.25), n(0.2)),
        ObsTermConfig::new("projected_gravity", Scale::One(1.0), n(0.05)),
        ObsTermConfig::new("velocity_commands", Scale::Each(vec![2.0, 2.0, 0.25]), 0.0),
        ObsTermConfig::new("joint_pos_rel", Scale::One(1.0), n(0.01)),
        ObsTermConfig::new("joint_vel_rel", Scale::One(0.05), n(1.5)),
        ObsTermConfig::new("last_action", Scale::One(1.0), 0.0),
    ]
}

impl Default for ObservationsConfig {
    fn default() -> Self {
        let mut critic = proprioception(false);
        critic.extend([
            ObsTermConfig::new("friction", Scale::One(1.0), 0.0),
            ObsTermConfig::new("added_mass", Scale::One(1.0), 0.0),
            ObsTermConfig::new("feet_contact_forces", Scale::One(0.01), 0.0),
        ]);
        Self {
            policy: ObsGroupConfig {
                noise: true,
                terms: proprioception(true),
                ..ObsGroupConfig::default()
            },
            critic: ObsGroupConfig {
                terms: critic,
                ..ObsGroupConfig::default()
            },
        }
    }
}

/// Reward terms and their shared settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardsConfig {
    /// Weight of every reward term by name (see [`terms::REWARD_TERMS`]); each term is
    /// multiplied by its weight and the policy step. Terms of weight 0 are left out. A table
    /// given in the config replaces the whole default set.
    pub weights: BTreeMap<String, f64>,
    /// Clip the summed reward at zero before the `termination` term is added (legged_gym
    /// `only_positive_rewards`).
    pub only_positive: bool,
    /// Width of the tracking rewards' Gaussian.
    pub tracking_sigma: f64,
    /// Fraction of the joint range inside which `dof_pos_limits` does not penalise.
    pub soft_dof_pos_limit: f64,
    /// Foot force (N) above which `feet_contact_forces` penalises.
    pub max_contact_force: f64,
}

impl Default for RewardsConfig {
    fn default() -> Self {
        Self {
            weights: terms::default_reward_weights()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            only_positive: true,
            tracking_sigma: terms::TRACKING_SIGMA,
            soft_dof_pos_limit: terms::SOFT_DOF_POS_LIMIT,
            max_contact_force: terms::MAX_CONTACT_FORCE,
        }
    }
}

/// Domain randomisation and disturbances, as IsaacLab's event manager: `startup` once per
/// environment when the task is built, `reset` at every reset, `interval` every so often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Once, when the task is built.
    pub startup: StartupEvents,
    /// At every reset of an environment.
    pub reset: ResetEvents,
    /// At intervals during an episode.
    pub interval: IntervalEvents,
}

/// Randomisation drawn once per environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StartupEvents {
    /// Ground friction coefficient range (legged_gym `friction_range`).
    pub friction: [f64; 2],
    /// Mass added to the base (kg; legged_gym `added_mass_range`).
    pub added_mass: [f64; 2],
}

impl Default for StartupEvents {
    fn default() -> Self {
        Self {
            friction: [0.5, 1.25],
            added_mass: [-1.0, 1.0],
        }
    }
}

/// The state an environment is reset to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResetEvents {
    /// Base yaw range (rad).
    pub base_yaw: [f64; 2],
    /// Range of every component of the base's linear and angular velocity (m/s, rad/s).
    pub base_velocity: [f64; 2],
    /// Default joint positions are multiplied by a factor from this range (legged_gym).
    pub joint_position_scale: [f64; 2],
    /// Joint velocity range (rad/s).
    pub joint_velocity: [f64; 2],
}

impl Default for ResetEvents {
    fn default() -> Self {
        Self {
            base_yaw: [-std::f64::consts::PI, std::f64::consts::PI],
            base_velocity: [-0.5, 0.5],
            joint_position_scale: [0.5, 1.5],
            joint_velocity: [0.0, 0.0],
        }
    }
}

/// Disturbances during an episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntervalEvents {
    /// Seconds between pushes of an environment, drawn from this range at the start of
    /// each episode and after each push (IsaacLab's interval events, which restart with the
    /// episode; legged_gym pushes every environment at once every `push_interval_s` = 15).
    pub push_interval_s: [f64; 2],
    /// A push sets the base's planar velocity to `U(-v, v)` per axis (m/s; legged_gym
    /// `max_push_vel_xy`); 0 disables pushes.
    pub push_velocity: f64,
}

impl Default for IntervalEvents {
    fn default() -> Self {
        Self {
            push_interval_s: [15.0, 15.0],
            push_velocity: 1.0,
        }
    }
}

/// The error for `field` of `task`'s config.
pub(crate) fn config_error(task: &str, field: &str, what: impl Into<String>) -> Error {
    Error::TaskConfig {
        task: task.to_string(),
        field: field.to_string(),
        what: what.into(),
    }
}

impl LeggedConfig {
    /// Checks every value that does not need the robot (names are checked when the task is
    /// built).
    ///
    /// # Errors
    /// [`Error::TaskConfig`] naming the field.
    pub fn validate(&self, task: &str) -> Result<()> {
        let err = |field: &str, what: String| config_error(task, field, what);
        self.sim
            .validate()
            .map_err(|e| err("sim", e.to_string().replace("physics: ", "")))?;
        self.terrain
            .validate()
            .map_err(|e| err("terrain", e.to_string().replace("physics: ", "")))?;
        let scan = &self.height_scan;
        if !(scan.resolution.is_finite() && scan.resolution > 0.0) {
            return Err(err(
                "height_scan.resolution",
                format!("must be > 0, got {}", scan.resolution),
            ));
        }
        for (field, r) in [("height_scan.x", scan.x), ("height_scan.y", scan.y)] {
            if !(r[0].is_finite() && r[1].is_finite() && r[0] <= r[1]) {
                return Err(err(
                    field,
                    format!("must be [low, high] with low <= high, got {r:?}"),
                ));
            }
        }
        if !scan.offset.is_finite() {
            return Err(err(
                "height_scan.offset",
                format!("must be finite, got {}", scan.offset),
            ));
        }
        let positive = [
            ("episode_length_s", self.episode_length_s),
            ("robot.init_height", self.robot.init_height),
            ("actions.scale", self.actions.scale),
            ("actions.clip", self.actions.clip),
            (
                "commands.resampling_time_s",
                self.commands.resampling_time_s,
            ),
            ("rewards.tracking_sigma", self.rewards.tracking_sigma),
            (
                "rewards.soft_dof_pos_limit",
                self.rewards.soft_dof_pos_limit,
            ),
        ];
        for (field, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(err(field, format!("must be > 0, got {v}")));
            }
        }
        let non_negative = [
            ("actions.stiffness", self.actions.stiffness),
            ("actions.damping", self.actions.damping),
            (
                "commands.heading_stiffness",
                self.commands.heading_stiffness,
            ),
            ("commands.min_speed", self.commands.min_speed),
            ("rewards.max_contact_force", self.rewards.max_contact_force),
            (
                "events.interval.push_velocity",
                self.events.interval.push_velocity,
            ),
        ];
        for (field, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err(err(field, format!("must be >= 0, got {v}")));
            }
        }
        if self.decimation == 0 {
            return Err(err("decimation", "must be at least 1".into()));
        }
        let ranges = [
            ("commands.lin_vel_x", self.commands.lin_vel_x),
            ("commands.lin_vel_y", self.commands.lin_vel_y),
            ("commands.ang_vel_z", self.commands.ang_vel_z),
            ("commands.heading", self.commands.heading),
            ("events.startup.friction", self.events.startup.friction),
            ("events.startup.added_mass", self.events.startup.added_mass),
            ("events.reset.base_yaw", self.events.reset.base_yaw),
            (
                "events.reset.base_velocity",
                self.events.reset.base_velocity,
            ),
            (
                "events.reset.joint_position_scale",
                self.events.reset.joint_position_scale,
            ),
            (
                "events.reset.joint_velocity",
                self.events.reset.joint_velocity,
            ),
            (
                "events.interval.push_interval_s",
                self.events.interval.push_interval_s,
            ),
        ];
        for (field, [lo, hi]) in ranges {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(err(
                    field,
                    format!("expected a range [low, high] with low <= high, got [{lo}, {hi}]"),
                ));
            }
        }
        if self.events.startup.friction[0] < 0.0 {
            return Err(err(
                "events.startup.friction",
                "friction coefficients must be >= 0".into(),
            ));
        }
        if self.events.interval.push_velocity > 0.0
            && self.events.interval.push_interval_s[0] <= 0.0
        {
            return Err(err(
                "events.interval.push_interval_s",
                "must be > 0 while pushes are on (push_velocity > 0)".into(),
            ));
        }
        for (name, w) in &self.rewards.weights {
            if !w.is_finite() {
                return Err(err(&format!("rewards.weights.{name}"), format!("got {w}")));
            }
            if !terms::REWARD_TERMS.contains(&name.as_str()) {
                return Err(err(
                    &format!("rewards.weights.{name}"),
                    format!(
                        "unknown reward term; known terms: {}",
                        terms::REWARD_TERMS.join(", ")
                    ),
                ));
            }
        }
        for (name, threshold) in &self.terminations {
            if !threshold.is_finite() {
                return Err(err(
                    &format!("terminations.{name}"),
                    format!("got {threshold}"),
                ));
            }
            if !terms::TERMINATION_TERMS.contains(&name.as_str()) {
                return Err(err(
                    &format!("terminations.{name}"),
                    format!(
                        "unknown termination term; known terms: {}",
                        terms::TERMINATION_TERMS.join(", ")
                    ),
                ));
            }
        }
        let groups = [
            ("observations.policy", &self.observations.policy),
            ("observations.critic", &self.observations.critic),
        ];
        if self.observations.policy.terms.is_empty() {
            return Err(err(
                "observations.policy.terms",
                "needs at least one term".into(),
            ));
        }
        for (group, g) in groups {
            if let Some(c) = g.clip
                && !(c.is_finite() && c > 0.0)
            {
                return Err(err(
                    &format!("{group}.clip"),
                    format!("must be > 0, got {c}"),
                ));
            }
            for (i, t) in g.terms.iter().enumerate() {
                let field = format!("{group}.terms[{i}] ({})", t.name);
                if !super::observations::OBSERVATION_TERMS.contains(&t.name.as_str()) {
                    return Err(err(
                        &field,
                        format!(
                            "unknown observation term; known terms: {}",
                            super::observations::OBSERVATION_TERMS.join(", ")
                        ),
                    ));
                }
                if !(t.noise.is_finite() && t.noise >= 0.0) {
                    return Err(err(&field, format!("noise must be >= 0, got {}", t.noise)));
                }
                if let Some(c) = t.clip
                    && !(c.is_finite() && c > 0.0)
                {
                    return Err(err(&field, format!("clip must be > 0, got {c}")));
                }
                let scales = match &t.scale {
                    Scale::One(s) => vec![*s],
                    Scale::Each(s) => s.clone(),
                };
                if scales.iter().any(|s| !s.is_finite()) {
                    return Err(err(&field, "scale must be finite".into()));
                }
            }
        }
        Ok(())
    }
}

/// Whether `name` matches `pattern`, where `*` in the pattern matches any run of
/// characters.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_of_characters() {
        assert!(matches("*_calf", "FL_calf"));
        assert!(matches("base", "base"));
        assert!(!matches("base", "base2"));
        assert!(matches("F*_hip", "FL_hip"));
        assert!(!matches("F*_hip", "RL_hip"));
        assert!(matches("*", "anything"));
        assert!(matches("*L*", "FL_hip"));
        assert!(!matches("*_calf", "_cal"));
        assert!(!matches("ab*ba", "aba"));
    }

    #[test]
    fn defaults_validate_and_round_trip_through_toml() {
        let cfg = LeggedConfig::default();
        cfg.validate("quadruped_flat").expect("defaults are valid");
        let text = toml::to_string(&cfg).expect("serialise");
        let back: LeggedConfig = toml::from_str(&text).expect("parse");
        assert_eq!(back, cfg);
    }

    #[test]
    fn bad_values_name_their_field() {
        type Corrupt = Box<dyn Fn(&mut LeggedConfig)>;
        let cases: Vec<(&str, Corrupt)> = vec![
            ("decimation", Box::new(|c| c.decimation = 0)),
            ("episode_length_s", Box::new(|c| c.episode_length_s = -1.0)),
            (
                "commands.lin_vel_x",
                Box::new(|c| c.commands.lin_vel_x = [1.0, -1.0]),
            ),
            (
                "events.startup.friction",
                Box::new(|c| c.events.startup.friction = [-0.5, 1.0]),
            ),
            (
                "rewards.weights.tracking_lin_vl",
                Box::new(|c| {
                    c.rewards.weights.insert("tracking_lin_vl".into(), 1.0);
                }),
            ),
            (
                "terminations.base_contakt",
                Box::new(|c| {
                    c.terminations.insert("base_contakt".into(), 1.0);
                }),
            ),
            (
                "observations.policy.terms[0] (base_lin_vl)",
                Box::new(|c| c.observations.policy.terms[0].name = "base_lin_vl".into()),
            ),
            (
                "observations.critic.terms[1] (base_ang_vel)",
                Box::new(|c| c.observations.critic.terms[1].noise = f64::NAN),
            ),
            ("sim", Box::new(|c| c.sim.dt = 0.0)),
        ];
        for (field, corrupt) in cases {
            let mut cfg = LeggedConfig::default();
            corrupt(&mut cfg);
            let err = cfg.validate("quadruped_flat").expect_err(field);
            let msg = err.to_string();
            assert!(
                matches!(err, Error::TaskConfig { field: ref f, .. } if f == field),
                "{field}: {msg}"
            );
            assert!(msg.contains("quadruped_flat"), "{msg}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = toml::from_str::<LeggedConfig>("[actions]\nscael = 0.5\n")
            .expect_err("typo in a field");
        assert!(err.to_string().contains("scael"), "{err}");
    }
}
