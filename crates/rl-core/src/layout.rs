//! What an environment's observations and actions mean, column by column: the layout that a
//! deployment on a robot must reproduce (written into an exported policy's `policy.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ActionSpace, EnvSpec};

/// The meaning of every observation column and action column of a task, and the robot a
/// legged task drives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvLayout {
    /// Every observation group of the spec, by name: its columns as terms, in order.
    pub observations: BTreeMap<String, ObsGroupLayout>,
    /// What the action columns do.
    pub actions: ActionLayout,
    /// The robot of a legged task (joint order, default pose, drive gains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robot: Option<RobotLayout>,
}

/// One observation group: its terms in column order, and the group's clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObsGroupLayout {
    /// The terms, first column first; their sizes add up to the group's width.
    pub terms: Vec<ObsTermLayout>,
    /// After the terms are scaled and joined, every column is clipped to `[-clip, clip]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<f32>,
}

/// One term of an observation group: `size` columns, each `clip(raw, ±clip) * scale`, where
/// `raw` is the quantity `name` in the units `unit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObsTermLayout {
    /// The term's name: a legged task's term (`base_ang_vel`) or a classic task's column
    /// (`theta_dot`).
    pub name: String,
    /// The term's first column in its group.
    pub start: usize,
    /// Number of columns.
    pub size: usize,
    /// Each column's scale (`size` values).
    pub scale: Vec<f32>,
    /// The raw value is clipped to `[-clip, clip]` before scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<f32>,
    /// What the raw value is, in which units and frame (`"rad/s, base frame"`); empty when
    /// not known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
}

/// What the action columns do: each column `a` is clipped to `[low, high]` and becomes the
/// command `offset + scale * a` of kind `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionLayout {
    /// What the command is: `joint_position` (a PD target, rad), `force` (N), `torque`
    /// (N m), `discrete` (the index of a choice), or `continuous` when not known.
    pub kind: String,
    /// The name of each column (the joint of a joint-position action).
    pub names: Vec<String>,
    /// Each column's lower bound (for a discrete action: 0).
    pub low: Vec<f32>,
    /// Each column's upper bound (for a discrete action: the number of choices less one).
    pub high: Vec<f32>,
    /// Each column's scale.
    pub scale: Vec<f32>,
    /// Each column's offset (a legged task's default joint positions).
    pub offset: Vec<f32>,
}

/// The robot of a legged task, as the simulator drove it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobotLayout {
    /// The robot description file, as the task's config names it.
    pub file: String,
    /// The actuated joints, in the order of the action and joint observation columns.
    pub joint_names: Vec<String>,
    /// Each joint's default position (rad or m), the offset of its action.
    pub default_joint_pos: Vec<f32>,
    /// Each joint's PD stiffness (N m / rad).
    pub stiffness: Vec<f32>,
    /// Each joint's PD damping (N m s / rad).
    pub damping: Vec<f32>,
    /// Each joint's torque limit (N m), where the model gives one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effort_limit: Vec<f32>,
}

impl EnvLayout {
    /// The layout that the spec alone tells: each group one term named after the group
    /// with scale 1, and actions of scale 1 and offset 0 within the action space's bounds
    /// (columns `a0`, `a1`, ...).
    pub fn from_spec(spec: &EnvSpec) -> Self {
        let observations = spec
            .obs_groups
            .iter()
            .map(|(name, &size)| {
                let term = ObsTermLayout {
                    name: name.clone(),
                    start: 0,
                    size,
                    scale: vec![1.0; size],
                    clip: None,
                    unit: String::new(),
                };
                let group = ObsGroupLayout {
                    terms: vec![term],
                    clip: None,
                };
                (name.clone(), group)
            })
            .collect();
        let (kind, low, high) = match &spec.action_space {
            ActionSpace::Box { low, high } => ("continuous", low.clone(), high.clone()),
            ActionSpace::Discrete { n } => {
                ("discrete", vec![0.0], vec![n.saturating_sub(1) as f32])
            }
        };
        let a = low.len();
        Self {
            observations,
            actions: ActionLayout {
                kind: kind.to_string(),
                names: (0..a).map(|i| format!("a{i}")).collect(),
                low,
                high,
                scale: vec![1.0; a],
                offset: vec![0.0; a],
            },
            robot: None,
        }
    }

    /// Checks the layout against `spec`: the same groups with terms that cover each group's
    /// columns in order, and as many action columns as the action space has. Returns what
    /// is wrong.
    pub fn check(&self, spec: &EnvSpec) -> std::result::Result<(), String> {
        let names = |m: &mut dyn Iterator<Item = &String>| m.cloned().collect::<Vec<_>>();
        let (ours, theirs) = (
            names(&mut self.observations.keys()),
            names(&mut spec.obs_groups.keys()),
        );
        if ours != theirs {
            return Err(format!(
                "the layout describes observation groups {ours:?}, the task has {theirs:?}"
            ));
        }
        for (name, group) in &self.observations {
            let mut next = 0;
            for term in &group.terms {
                if term.start != next || term.scale.len() != term.size {
                    return Err(format!(
                        "term `{}` of group `{name}` starts at column {} with {} scales for {} columns; expected start {next}",
                        term.name,
                        term.start,
                        term.scale.len(),
                        term.size
                    ));
                }
                next += term.size;
            }
            let width = spec.obs_groups.get(name).copied().unwrap_or(0);
            if next != width {
                return Err(format!(
                    "the terms of group `{name}` cover {next} columns, the group has {width}"
                ));
            }
        }
        let a = spec.num_actions();
        let act = &self.actions;
        let sizes = [
            act.names.len(),
            act.low.len(),
            act.high.len(),
            act.scale.len(),
            act.offset.len(),
        ];
        if sizes.iter().any(|&s| s != a) {
            return Err(format!(
                "the action layout has (names, low, high, scale, offset) of sizes {sizes:?}, the task has {a} action columns"
            ));
        }
        if let Some(robot) = &self.robot {
            let j = robot.joint_names.len();
            let sizes = [
                robot.default_joint_pos.len(),
                robot.stiffness.len(),
                robot.damping.len(),
            ];
            if sizes.iter().any(|&s| s != j)
                || !(robot.effort_limit.is_empty() || robot.effort_limit.len() == j)
            {
                return Err(format!(
                    "the robot layout has {j} joints but (default_joint_pos, stiffness, damping, effort_limit) of sizes {:?}",
                    [sizes[0], sizes[1], sizes[2], robot.effort_limit.len()]
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EnvSpec {
        EnvSpec {
            task: "t".into(),
            num_envs: 2,
            obs_groups: BTreeMap::from([("policy".to_string(), 3), ("critic".to_string(), 5)]),
            action_space: ActionSpace::Box {
                low: vec![-1.0, -2.0],
                high: vec![1.0, 2.0],
            },
            max_episode_length: 10,
            step_dt: 0.02,
        }
    }

    #[test]
    fn the_spec_layout_covers_every_group_and_action() {
        let layout = EnvLayout::from_spec(&spec());
        assert_eq!(layout.check(&spec()), Ok(()));
        assert_eq!(layout.observations["critic"].terms[0].size, 5);
        assert_eq!(layout.actions.high, vec![1.0, 2.0]);
        let discrete = EnvSpec {
            action_space: ActionSpace::Discrete { n: 3 },
            ..spec()
        };
        let layout = EnvLayout::from_spec(&discrete);
        assert_eq!((layout.actions.low[0], layout.actions.high[0]), (0.0, 2.0));
        assert_eq!(layout.check(&discrete), Ok(()));
    }

    #[test]
    fn a_layout_that_does_not_cover_the_columns_is_refused() {
        let mut layout = EnvLayout::from_spec(&spec());
        if let Some(g) = layout.observations.get_mut("policy") {
            g.terms[0].size = 2;
            g.terms[0].scale.pop();
        }
        let err = layout.check(&spec()).expect_err("short");
        assert!(err.contains("cover 2 columns"), "{err}");
        let mut layout = EnvLayout::from_spec(&spec());
        layout.actions.offset.push(0.0);
        assert!(layout.check(&spec()).is_err());
    }
}
