//! Batched environments: the [`VecEnv`] trait and the types a step returns.

use std::collections::BTreeMap;

use burn::tensor::{Bool, Tensor, backend::Backend};

use crate::{EnvLayout, EnvSnapshot, Error, Result, Scene};

/// The action space of an environment.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionSpace {
    /// A bounded continuous space: one `[low, high]` interval per action dimension.
    ///
    /// Actions are `[N, A]` with `A = low.len()`. Policies output unbounded actions; the
    /// environment clamps them to these bounds (rsl_rl stores the unclipped action and
    /// lets the environment clip).
    Box {
        /// Lower bound of each dimension.
        low: Vec<f32>,
        /// Upper bound of each dimension.
        high: Vec<f32>,
    },
    /// `n` choices, as Gymnasium's `Discrete(n)`.
    ///
    /// Actions are `[N, 1]` float tensors holding the chosen index `0..n` (a float tensor
    /// like every other action, so that storage and the runner stay the same). The
    /// environment rounds each value to the nearest index and clamps it into `0..n`.
    Discrete {
        /// Number of choices (at least 2).
        n: usize,
    },
}

impl ActionSpace {
    /// Number of columns of the action tensor `[N, A]` an environment takes: the number of
    /// dimensions of a box, 1 for a discrete space.
    pub fn num_actions(&self) -> usize {
        match self {
            ActionSpace::Box { low, .. } => low.len(),
            ActionSpace::Discrete { .. } => 1,
        }
    }

    /// Whether this is a [`ActionSpace::Discrete`] space.
    pub fn is_discrete(&self) -> bool {
        matches!(self, ActionSpace::Discrete { .. })
    }
}

/// Static description of a batch of environments.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSpec {
    /// Task name, as in the registry.
    pub task: String,
    /// Number of environments stepped together (`N`).
    pub num_envs: usize,
    /// Observation groups and their sizes (`policy` always; `critic` for privileged input).
    pub obs_groups: BTreeMap<String, usize>,
    /// The action space.
    pub action_space: ActionSpace,
    /// Episodes are truncated (time-out) after this many steps.
    pub max_episode_length: usize,
    /// Seconds of simulated time per environment step.
    pub step_dt: f32,
}

impl EnvSpec {
    /// Number of columns of the action tensor `[N, A]` (see [`ActionSpace::num_actions`]).
    pub fn num_actions(&self) -> usize {
        self.action_space.num_actions()
    }

    /// Total size of the concatenation of the given observation groups.
    pub fn obs_dim(&self, groups: &[String]) -> Result<usize> {
        groups
            .iter()
            .map(|g| {
                self.obs_groups
                    .get(g)
                    .copied()
                    .ok_or_else(|| Error::UnknownObsGroup {
                        name: g.clone(),
                        available: self.group_names(),
                    })
            })
            .sum()
    }

    /// The group names, comma-separated (for error messages).
    pub fn group_names(&self) -> String {
        self.obs_groups
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Named observation groups, each a tensor `[N, D_group]`.
#[derive(Debug, Clone)]
pub struct Observations<B: Backend> {
    groups: BTreeMap<String, Tensor<B, 2>>,
}

impl<B: Backend> Observations<B> {
    /// Observations with no groups yet.
    pub fn new() -> Self {
        Self {
            groups: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a group; `obs` is `[N, D]`.
    pub fn with(mut self, name: impl Into<String>, obs: Tensor<B, 2>) -> Self {
        self.groups.insert(name.into(), obs);
        self
    }

    /// Adds (or replaces) a group in place.
    pub fn insert(&mut self, name: impl Into<String>, obs: Tensor<B, 2>) {
        self.groups.insert(name.into(), obs);
    }

    /// One group, `[N, D]`.
    pub fn get(&self, name: &str) -> Result<Tensor<B, 2>> {
        self.groups
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownObsGroup {
                name: name.to_string(),
                available: self.groups.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// The named groups concatenated along the feature axis, `[N, sum D]`, in the given order.
    pub fn concat(&self, names: &[String]) -> Result<Tensor<B, 2>> {
        let mut parts = names
            .iter()
            .map(|n| self.get(n))
            .collect::<Result<Vec<_>>>()?;
        if parts.len() > 1 {
            return Ok(Tensor::cat(parts, 1));
        }
        parts
            .pop()
            .ok_or_else(|| Error::Invalid("no observation groups selected".into()))
    }

    /// Iterates over `(name, [N, D])`.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor<B, 2>)> {
        self.groups.iter()
    }

    /// Applies `f` to every group.
    pub fn map(self, mut f: impl FnMut(Tensor<B, 2>) -> Tensor<B, 2>) -> Self {
        Self {
            groups: self.groups.into_iter().map(|(k, v)| (k, f(v))).collect(),
        }
    }
}

impl<B: Backend> Default for Observations<B> {
    fn default() -> Self {
        Self::new()
    }
}

/// Statistics of the episodes that finished on a step, on the device.
///
/// Values are meaningful only where the step's `dones` is true (zero elsewhere).
#[derive(Debug, Clone)]
pub struct EpisodeInfo<B: Backend> {
    /// Undiscounted return of each finished episode, `[N]`.
    pub returns: Tensor<B, 1>,
    /// Length in steps of each finished episode, `[N]`.
    pub lengths: Tensor<B, 1>,
    /// Named per-episode terms (for example each reward term's episode sum), each `[N]`;
    /// logged as `Episode/<name>`, or under the name itself when it has a group of its own
    /// (`Curriculum/terrain_level`).
    pub terms: BTreeMap<String, Tensor<B, 1>>,
}

/// What a step of a [`VecEnv`] returns. Every tensor stays on the device.
#[derive(Debug, Clone)]
pub struct StepOutput<B: Backend> {
    /// Observations after the step; finished environments have already been reset, so
    /// their rows hold the first observation of the next episode.
    pub observations: Observations<B>,
    /// Reward of the step, `[N]`.
    pub rewards: Tensor<B, 1>,
    /// The episode ended in a terminal state (no bootstrap), `[N]`.
    pub terminated: Tensor<B, 1, Bool>,
    /// The episode was cut by the time limit and did not terminate, `[N]`.
    pub time_outs: Tensor<B, 1, Bool>,
    /// Observations before the auto-reset: for environments that just finished, the final
    /// observation of the episode; for the others, the same as `observations`.
    pub final_observations: Observations<B>,
    /// Returns, lengths and named terms of the episodes that finished on this step.
    pub episode: EpisodeInfo<B>,
}

impl<B: Backend> StepOutput<B> {
    /// `terminated | time_outs`, `[N]`.
    pub fn dones(&self) -> Tensor<B, 1, Bool> {
        self.terminated.clone().bool_or(self.time_outs.clone())
    }
}

/// A batch of `N` environments stepped together on one device.
///
/// Implementations must not read tensors back to the host inside [`VecEnv::step`], and
/// must reset finished environments themselves (auto-reset).
pub trait VecEnv<B: Backend> {
    /// Static description: sizes, bounds, episode length.
    fn spec(&self) -> &EnvSpec;

    /// The device the environments live on.
    fn device(&self) -> &B::Device;

    /// Number of environments, `N`.
    fn num_envs(&self) -> usize {
        self.spec().num_envs
    }

    /// Current observations of every environment.
    fn observations(&self) -> Observations<B>;

    /// Applies `actions` (`[N, A]`), advances every environment by one step and resets those
    /// that finished.
    fn step(&mut self, actions: Tensor<B, 2>) -> Result<StepOutput<B>>;

    /// Resets every environment and returns the first observations.
    fn reset(&mut self) -> Observations<B>;

    /// Everything the environments' future depends on (physical state, the state before the
    /// last auto-reset, episode counters, random streams), read back to the host.
    ///
    /// Reads tensors back from the device: call it at checkpoints, not in the training loop.
    fn save_state(&self) -> Result<EnvSnapshot>;

    /// Restores what [`VecEnv::save_state`] wrote, so that the environments continue exactly
    /// as those that were saved. Errors (and leaves the environments unchanged) when the
    /// snapshot is of another task or number of environments, or has missing or ill-shaped
    /// entries.
    fn load_state(&mut self, snapshot: &EnvSnapshot) -> Result<()>;

    /// The shapes of environment `env_id` now, for rendering, or `None` for a task that has
    /// nothing to draw (the default).
    ///
    /// Reads tensors back from the device: call it when recording, not in training.
    fn scene(&self, env_id: usize) -> Result<Option<Scene>> {
        let _ = env_id;
        Ok(None)
    }

    /// What each observation and action column means (names, scales, units, the robot's
    /// joints), for a deployment of a policy trained here. The default is what the spec
    /// alone tells ([`EnvLayout::from_spec`]).
    fn layout(&self) -> EnvLayout {
        EnvLayout::from_spec(self.spec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    fn obs() -> Observations<NdArray> {
        let dev = Default::default();
        let a = Tensor::from_data(TensorData::new(vec![1.0_f32, 2.0], [2, 1]), &dev);
        let b = Tensor::from_data(TensorData::new(vec![3.0_f32, 4.0, 5.0, 6.0], [2, 2]), &dev);
        Observations::new().with("policy", a).with("critic", b)
    }

    #[test]
    fn concat_joins_groups_in_the_given_order() {
        let o = obs();
        let x = o
            .concat(&["critic".to_string(), "policy".to_string()])
            .expect("both exist");
        let v: Vec<f32> = x.into_data().to_vec().expect("f32");
        assert_eq!(v, vec![3.0, 4.0, 1.0, 5.0, 6.0, 2.0]);
        let one = o.concat(&["policy".to_string()]).expect("exists");
        assert_eq!(one.dims(), [2, 1]);
    }

    #[test]
    fn unknown_or_empty_groups_are_errors() {
        let o = obs();
        let e = o.concat(&["privileged".to_string()]).expect_err("unknown");
        assert!(e.to_string().contains("privileged") && e.to_string().contains("critic, policy"));
        assert!(o.concat(&[]).is_err());
    }
}
