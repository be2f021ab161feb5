//! The task registry: every task by name, in one table, and what the runner asks of it:
//! check a config's task settings, and build a batch for training or for evaluation.

use burn::tensor::backend::Backend;
use rl_core::VecEnv;

use crate::classic::ClassicLayout;
use crate::legged::{LeggedConfig, LeggedEnv};
use crate::observe::{self, Observe};
use crate::{
    Acrobot, CartPole, CartPoleDiscrete, ClassicEnv, Error, MountainCarContinuous, Pendulum, Result,
};

/// What an environment batch is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Purpose {
    /// Training, as the settings say (a legged task may start its episodes spread over
    /// their length, `random_episode_start`).
    #[default]
    Training,
    /// Evaluation: every episode whole, from its first step, whatever the settings say.
    Evaluation,
}

/// The registered tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    CartPole,
    CartPoleDiscrete,
    Pendulum,
    Acrobot,
    MountainCarContinuous,
    QuadrupedFlat,
}

/// Every task by its name: the one list of task names. Adding a task is a variant of
/// `Task`, one row here, and one arm in [`make_classic`] (a classic-control task) or in
/// `Task::is_legged` (a legged task, configured by a [`LeggedConfig`]).
const REGISTRY: [(&str, Task); 6] = [
    ("cartpole", Task::CartPole),
    ("cartpole_discrete", Task::CartPoleDiscrete),
    ("pendulum", Task::Pendulum),
    ("acrobot", Task::Acrobot),
    ("mountain_car_continuous", Task::MountainCarContinuous),
    ("quadruped_flat", Task::QuadrupedFlat),
];

const fn names<const N: usize>(registry: [(&'static str, Task); N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = registry[i].0;
        i += 1;
    }
    out
}

/// Names of the registered tasks, as accepted by [`make_env`].
pub const TASKS: &[&str] = &names(REGISTRY);

impl Task {
    fn named(task: &str) -> Result<Self> {
        REGISTRY
            .iter()
            .find(|(name, _)| *name == task)
            .map(|&(_, t)| t)
            .ok_or_else(|| Error::UnknownTask {
                task: task.to_string(),
                valid: TASKS.join(", "),
            })
    }

    fn is_legged(self) -> bool {
        self == Task::QuadrupedFlat
    }

    /// What a classic-control task's observation and action columns mean; `None` for a
    /// legged task.
    fn classic_layout(self) -> Option<&'static ClassicLayout> {
        Some(match self {
            Task::CartPole => &crate::cartpole::LAYOUT,
            Task::CartPoleDiscrete => &crate::cartpole_discrete::LAYOUT,
            Task::Pendulum => &crate::pendulum::LAYOUT,
            Task::Acrobot => &crate::acrobot::LAYOUT,
            Task::MountainCarContinuous => &crate::mountain_car_continuous::LAYOUT,
            Task::QuadrupedFlat => return None,
        })
    }

    /// The components of a classic-control task's `policy` observation, in order (what the
    /// indices of `env.observe` point at); empty for a legged task.
    fn observation_names(self) -> Vec<&'static str> {
        self.classic_layout()
            .map(ClassicLayout::observation_names)
            .unwrap_or_default()
    }
}

/// Whether `task` is a registered legged task (configured by a [`LeggedConfig`]).
#[cfg(test)]
pub(crate) fn is_legged(task: &str) -> bool {
    Task::named(task).is_ok_and(Task::is_legged)
}

/// Names of the classic-control tasks, as accepted by [`make_classic`].
pub fn classic_tasks() -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|(_, t)| !t.is_legged())
        .map(|(name, _)| *name)
        .collect()
}

/// Checks the settings of `task` (the rest of a training config's `[env]` table) as the
/// task will read them, without building anything.
///
/// # Errors
/// [`Error::UnknownTask`], or [`Error::TaskConfig`] naming the field: an unknown field, a
/// value of the wrong type or out of range, or a setting a classic-control task does not
/// take (they take only `observe`).
pub fn validate_settings(task: &str, settings: &toml::Table) -> Result<()> {
    let kind = Task::named(task)?;
    if kind.is_legged() {
        legged_config(task, settings).map(drop)
    } else {
        classic_settings(task, kind, settings).map(drop)
    }
}

/// The settings of a classic-control task (the rest of `[env]`).
struct ClassicSettings {
    /// `observe`: the columns of the observation the policy sees (all when `None`).
    observe: Option<Vec<usize>>,
}

fn classic_settings(task: &str, kind: Task, settings: &toml::Table) -> Result<ClassicSettings> {
    let mut out = ClassicSettings { observe: None };
    for (key, value) in settings {
        if key == observe::FIELD {
            out.observe = Some(observe::parse_columns(
                task,
                value,
                &kind.observation_names(),
            )?);
        } else {
            return Err(Error::TaskConfig {
                task: task.to_string(),
                field: key.clone(),
                what: format!(
                    "unknown field `{key}`, expected `task`, `num_envs` or `{}` (task `{task}` \
                     has no other settings)",
                    observe::FIELD
                ),
            });
        }
    }
    Ok(out)
}

/// Builds `num_envs` environments of `task` on `device` for `purpose`, with their
/// randomness seeded by `seed`. `settings` are the task's settings (the rest of a training
/// config's `[env]` table): a legged task reads them as its [`LeggedConfig`] (every field
/// optional); a classic-control task takes only `observe`, the columns of its observation
/// the policy sees (the batch is then wrapped in an [`Observe`], which adds a `critic`
/// group with the whole observation).
///
/// Errors when the task is not one of [`TASKS`], when `num_envs` is zero, or when a setting
/// is unknown or invalid ([`Error::TaskConfig`] names it).
pub fn make_env<B: Backend>(
    task: &str,
    num_envs: usize,
    seed: u64,
    settings: &toml::Table,
    purpose: Purpose,
    device: &B::Device,
) -> Result<Box<dyn VecEnv<B>>> {
    let kind = Task::named(task)?;
    if kind.is_legged() {
        let mut cfg = legged_config(task, settings)?;
        if purpose == Purpose::Evaluation {
            cfg.random_episode_start = false;
            // Robots spread over every terrain level and stay there (legged_gym's play).
            cfg.terrain.curriculum = false;
        }
        return Ok(Box::new(LeggedEnv::<B>::new(
            task, cfg, num_envs, seed, device,
        )?));
    }
    let settings = classic_settings(task, kind, settings)?;
    let env = make_classic::<B>(task, num_envs, seed, device)?;
    Ok(match settings.observe {
        Some(columns) => Box::new(Observe::new(env, &columns)?),
        None => env,
    })
}

/// The [`LeggedConfig`] of the legged task `task` from its settings (the defaults where a
/// field is not given).
///
/// # Errors
/// [`Error::TaskConfig`] for an unknown field, a value of the wrong type or out of range.
pub fn legged_config(task: &str, settings: &toml::Table) -> Result<LeggedConfig> {
    let value = toml::Value::Table(settings.clone());
    let cfg: LeggedConfig = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Error::TaskConfig {
            task: task.to_string(),
            field: path,
            what: e.into_inner().message().trim().to_string(),
        }
    })?;
    cfg.validate(task)?;
    Ok(cfg)
}

/// Builds `num_envs` environments of the classic-control `task`, with access to their
/// internal state ([`ClassicEnv`]).
///
/// Errors when the task is not one of [`classic_tasks`] or when `num_envs` is zero.
pub fn make_classic<B: Backend>(
    task: &str,
    num_envs: usize,
    seed: u64,
    device: &B::Device,
) -> Result<Box<dyn ClassicEnv<B>>> {
    let not_classic = || Error::UnknownTask {
        task: task.to_string(),
        valid: classic_tasks().join(", "),
    };
    Ok(match Task::named(task).map_err(|_| not_classic())? {
        Task::CartPole => Box::new(CartPole::<B>::new(num_envs, seed, device)?),
        Task::CartPoleDiscrete => Box::new(CartPoleDiscrete::<B>::new(num_envs, seed, device)?),
        Task::Pendulum => Box::new(Pendulum::<B>::new(num_envs, seed, device)?),
        Task::Acrobot => Box::new(Acrobot::<B>::new(num_envs, seed, device)?),
        Task::MountainCarContinuous => {
            Box::new(MountainCarContinuous::<B>::new(num_envs, seed, device)?)
        }
        Task::QuadrupedFlat => return Err(not_classic()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{B, bools};
    use burn::tensor::Tensor;
    use rl_core::ActionSpace;

    #[test]
    fn every_registered_task_builds_and_steps() {
        let device = Default::default();
        // (task, observation size, state size, number of discrete actions or 0 for a box)
        let expected = [
            ("cartpole", 4, 4, 0),
            ("cartpole_discrete", 4, 4, 2),
            ("pendulum", 3, 2, 0),
            ("acrobot", 6, 4, 3),
            ("mountain_car_continuous", 2, 2, 0),
        ];
        let names: Vec<&str> = expected.iter().map(|e| e.0).collect();
        assert_eq!(classic_tasks(), names);
        let all: Vec<&str> = names.iter().copied().chain(["quadruped_flat"]).collect();
        assert_eq!(TASKS, all.as_slice());
        for (task, obs_dim, state_dim, choices) in expected {
            let mut env =
                make_env::<B>(task, 3, 0, &toml::Table::new(), Purpose::Training, &device)
                    .expect("registered task");
            assert_eq!(env.spec().task, task);
            assert_eq!(env.num_envs(), 3);
            assert_eq!(
                env.spec().obs_groups.get("policy"),
                Some(&obs_dim),
                "{task}"
            );
            match env.spec().action_space {
                ActionSpace::Discrete { n } => assert_eq!(n, choices, "{task}"),
                ActionSpace::Box { ref low, .. } => {
                    assert_eq!((low.len(), choices), (1, 0), "{task}")
                }
            }
            let a = env.spec().num_actions();
            let out = env
                .step(Tensor::zeros([3, a], &device))
                .expect("action shape");
            assert_eq!(out.rewards.dims(), [3]);
            assert_eq!(bools(out.dones()).len(), 3);
            let obs = out.observations.get("policy").expect("policy group");
            assert_eq!(obs.dims(), [3, obs_dim], "{task}");

            let names = Task::named(task).expect("registered").observation_names();
            assert_eq!(names.len(), obs_dim, "{task}: observation names");
            // `env.observe` reports the columns by the names the layout gives them.
            let layout = env.layout();
            assert_eq!(layout.check(env.spec()), Ok(()), "{task}");
            let terms: Vec<&str> = layout.observations["policy"]
                .terms
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            assert_eq!(terms, names, "{task}: layout names");

            let classic = make_classic::<B>(task, 2, 0, &device).expect("classic task");
            assert_eq!(classic.state_names().len(), state_dim, "{task}");
            assert_eq!(classic.state().dims(), [2, state_dim], "{task}");
        }
    }

    #[test]
    fn unknown_task_names_the_valid_ones() {
        let err = make_env::<B>(
            "cartpol",
            4,
            0,
            &toml::Table::new(),
            Purpose::Training,
            &Default::default(),
        )
        .err()
        .expect("unknown task");
        assert!(matches!(err, Error::UnknownTask { .. }));
        let msg = err.to_string();
        assert!(msg.contains("`cartpol`"), "{msg}");
        assert!(
            msg.contains(
                "cartpole, cartpole_discrete, pendulum, acrobot, mountain_car_continuous, \
                 quadruped_flat"
            ),
            "{msg}"
        );
    }

    #[test]
    fn settings_reach_the_legged_task_and_are_checked() {
        let device = Default::default();
        let settings: toml::Table =
            toml::from_str("decimation = 2\n[actions]\nscale = 0.5\n").expect("toml");
        let env = make_env::<B>(
            "quadruped_flat",
            2,
            0,
            &settings,
            Purpose::Training,
            &device,
        )
        .expect("builds");
        // 0.005 s physics steps, 2 per policy step
        assert!((env.spec().step_dt - 0.01).abs() < 1e-7);
        assert_eq!(env.spec().num_actions(), 12);
        let cfg = legged_config("quadruped_flat", &settings).expect("valid");
        assert_eq!(cfg.actions.scale, 0.5);

        let typo: toml::Table = toml::from_str("[actions]\nscael = 0.5\n").expect("toml");
        let msg = make_env::<B>("quadruped_flat", 2, 0, &typo, Purpose::Training, &device)
            .err()
            .expect("unknown field")
            .to_string();
        assert!(msg.contains("env.actions.scael"), "{msg}");

        let bad: toml::Table = toml::from_str("decimation = 0\n").expect("toml");
        let msg = make_env::<B>("quadruped_flat", 2, 0, &bad, Purpose::Training, &device)
            .err()
            .expect("invalid value")
            .to_string();
        assert!(msg.contains("env.decimation"), "{msg}");

        let msg = make_env::<B>("cartpole", 2, 0, &settings, Purpose::Training, &device)
            .err()
            .expect("classic tasks take no settings")
            .to_string();
        assert!(
            msg.contains("cartpole") && msg.contains("env.actions"),
            "{msg}"
        );
    }

    #[test]
    fn zero_environments_is_an_error() {
        let err = make_env::<B>(
            "pendulum",
            0,
            0,
            &toml::Table::new(),
            Purpose::Training,
            &Default::default(),
        )
        .err()
        .expect("no environments");
        assert!(
            matches!(err, Error::NoEnvs { ref task } if task == "pendulum"),
            "{err}"
        );
    }
}
