//! The termination manager (IsaacLab's `TerminationManager`): the termination terms of
//! [`super::terms::TerminationTerm::ALL`] that the config lists, each with its threshold,
//! and the time-outs of episodes that reach their length.
//!
//! It holds no state of its own, so it has nothing to reset: the episode counter it reads
//! belongs to the environment.

use std::collections::BTreeMap;

use burn::tensor::{Bool, Tensor, backend::Backend};

use super::config::config_error;
use super::terms::{TermContext, TerminationFn, TerminationTerm};
use crate::Result;
use crate::common::column;

/// The termination terms of a task.
#[derive(Clone, Debug)]
pub struct TerminationManager<B: Backend> {
    /// Terms and their thresholds, in the config's (name) order.
    terms: Vec<(&'static str, TerminationFn<B>, f64)>,
    /// Policy steps after which an episode times out.
    max_episode_length: usize,
}

impl<B: Backend> TerminationManager<B> {
    /// The terms of `cfg` (name to threshold); episodes time out after
    /// `max_episode_length` policy steps.
    ///
    /// # Errors
    /// [`crate::Error::TaskConfig`] for a name that is no termination term.
    pub fn new(cfg: &BTreeMap<String, f64>, max_episode_length: usize, task: &str) -> Result<Self> {
        let mut terms = Vec::new();
        for (name, &threshold) in cfg {
            let term = TerminationTerm::<B>::ALL
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| {
                    config_error(
                        task,
                        &format!("terminations.{name}"),
                        "unknown termination term",
                    )
                })?;
            terms.push((term.name, term.function, threshold));
        }
        Ok(Self {
            terms,
            max_episode_length,
        })
    }

    /// `(name, threshold)` of the terms, for the step kernel.
    #[cfg(feature = "cube")]
    pub(crate) fn named_terms(&self) -> Vec<(String, f64)> {
        self.terms
            .iter()
            .map(|(name, _, threshold)| ((*name).to_string(), *threshold))
            .collect()
    }

    /// Which environments `[N]` ended this step at `ctx`: `terminated` by any term, and
    /// `time_outs`, those whose `episode_length` `[N, 1]` reached the limit without
    /// terminating.
    pub fn compute(
        &self,
        ctx: &TermContext<B>,
        episode_length: &Tensor<B, 2>,
    ) -> (Tensor<B, 1, Bool>, Tensor<B, 1, Bool>) {
        let n = episode_length.dims()[0];
        let none = Tensor::<B, 1>::zeros([n], &episode_length.device()).greater_elem(1.0);
        let terminated = self.terms.iter().fold(none, |acc, (_, term, threshold)| {
            acc.bool_or(term(ctx, *threshold))
        });
        let time_outs = column(episode_length, 0)
            .greater_equal_elem(self.max_episode_length as f64)
            .bool_and(terminated.clone().bool_not());
        (terminated, time_outs)
    }
}
