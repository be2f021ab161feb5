//! The reward manager (IsaacLab's `RewardManager`): the reward terms of
//! [`super::terms::RewardTerm::ALL`] that the config weights, each weighted and multiplied by
//! the policy step, summed, and kept per term over the episode for the log.

use std::collections::BTreeMap;

use burn::tensor::{Bool, Tensor, backend::Backend};

use super::choose;
use super::config::{RewardsConfig, config_error};
use super::terms::{RewardFn, RewardTerm, TermContext};
use crate::Result;
use crate::common::column;

/// The weighted reward terms of a task and their episode sums.
#[derive(Clone, Debug)]
pub struct RewardManager<B: Backend> {
    /// Terms `(name, function, weight * dt)` in the table's order, `termination` apart.
    terms: Vec<(&'static str, RewardFn<B>, f64)>,
    /// The `termination` term and its `weight * dt`, added after `only_positive` clips the
    /// sum (legged_gym).
    termination: Option<(RewardFn<B>, f64)>,
    only_positive: bool,
    /// Episode length (s), the divisor of the logged episode sums (legged_gym).
    episode_length_s: f64,
    /// Undiscounted return of the episode `[N, 1]`.
    pub returns: Tensor<B, 2>,
    /// Episode sum of every weighted term `[N, R]`, in the order of `terms`, then
    /// `termination`.
    pub reward_sums: Tensor<B, 2>,
}

impl<B: Backend> RewardManager<B> {
    /// The terms `cfg` weights (terms of weight zero left out), each weight multiplied by
    /// the policy step `dt`, for `n` environments.
    ///
    /// # Errors
    /// [`crate::Error::TaskConfig`] for a weighted name that is no reward term.
    pub fn new(
        cfg: &RewardsConfig,
        episode_length_s: f64,
        dt: f64,
        n: usize,
        task: &str,
        device: &B::Device,
    ) -> Result<Self> {
        for name in cfg.weights.keys() {
            if !RewardTerm::<B>::ALL.iter().any(|t| t.name == name) {
                return Err(config_error(
                    task,
                    &format!("rewards.weights.{name}"),
                    "unknown reward term",
                ));
            }
        }
        let mut terms = Vec::new();
        let mut termination = None;
        for term in RewardTerm::<B>::ALL {
            match cfg.weights.get(term.name) {
                Some(&w) if w != 0.0 && term.name == "termination" => {
                    termination = Some((term.function, w * dt));
                }
                Some(&w) if w != 0.0 => terms.push((term.name, term.function, w * dt)),
                _ => {}
            }
        }
        let num_terms = terms.len() + usize::from(termination.is_some());
        Ok(Self {
            terms,
            termination,
            only_positive: cfg.only_positive,
            episode_length_s,
            returns: Tensor::zeros([n, 1], device),
            reward_sums: Tensor::zeros([n, num_terms], device),
        })
    }

    /// The reward `[N]` of this step at `ctx`: the weighted terms summed in order, clipped
    /// at zero with `only_positive`, plus the weighted `termination` term. Adds every
    /// weighted term to its episode sum and the reward to the return.
    pub fn compute(&mut self, ctx: &TermContext<B>) -> Tensor<B, 1> {
        let mut values: Vec<Tensor<B, 1>> = self
            .terms
            .iter()
            .map(|(_, term, w)| term(ctx).mul_scalar(*w))
            .collect();
        let mut reward = values
            .iter()
            .cloned()
            .reduce(|a, b| a + b)
            .unwrap_or_else(|| {
                let n = ctx.base_height.dims()[0];
                Tensor::zeros([n], &ctx.base_height.device())
            });
        if self.only_positive {
            reward = reward.clamp_min(0.0);
        }
        if let Some((term, w)) = &self.termination {
            let value = term(ctx).mul_scalar(*w);
            reward = reward + value.clone();
            values.push(value);
        }
        if !values.is_empty() {
            self.reward_sums = self.reward_sums.clone() + Tensor::stack(values, 1);
        }
        self.returns = self.returns.clone() + reward.clone().unsqueeze_dim::<2>(1);
        reward
    }

    /// The episode sum of every term per second of a whole episode `[N]`, as
    /// `rew_{name}`, for the episode log (legged_gym's `Episode/rew_*`).
    pub fn episode_terms(&self, terms: &mut BTreeMap<String, Tensor<B, 1>>) {
        let names = self
            .terms
            .iter()
            .map(|(name, _, _)| *name)
            .chain(self.termination.as_ref().map(|_| "termination"));
        for (i, name) in names.enumerate() {
            terms.insert(
                format!("rew_{name}"),
                column(&self.reward_sums, i).div_scalar(self.episode_length_s),
            );
        }
    }

    /// `(name, weight * dt)` of the terms in the order they are summed, and `weight * dt`
    /// of the `termination` term (added after the clip at zero), for the step kernel.
    #[cfg(feature = "cube")]
    pub(crate) fn weighted_terms(&self) -> (Vec<(&'static str, f64)>, Option<f64>) {
        let terms = self.terms.iter().map(|(name, _, w)| (*name, *w)).collect();
        (terms, self.termination.as_ref().map(|(_, w)| *w))
    }

    /// Whether the summed reward is clipped at zero before the termination term.
    #[cfg(feature = "cube")]
    pub(crate) fn only_positive(&self) -> bool {
        self.only_positive
    }

    /// Clears the episode sums of the environments in `mask` `[N]`.
    pub fn reset(&mut self, mask: &Tensor<B, 1, Bool>) {
        self.returns = choose(mask, self.returns.clone(), self.returns.zeros_like());
        self.reward_sums = choose(
            mask,
            self.reward_sums.clone(),
            self.reward_sums.zeros_like(),
        );
    }
}
