//! Episode statistics: the window of the last 100 finished episodes, as rsl_rl logs them.

use std::collections::{BTreeMap, VecDeque};

use burn::tensor::{Tensor, backend::Backend};
use rl_core::StepOutput;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Number of finished episodes `Train/mean_reward` averages over.
pub const WINDOW: usize = 100;

/// Returns and lengths of the last [`WINDOW`] finished episodes, and the per-episode terms
/// of the episodes that finished during the current iteration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeStats {
    returns: VecDeque<f64>,
    lengths: VecDeque<f64>,
    iteration_terms: BTreeMap<String, (f64, usize)>,
    iteration_episodes: usize,
}

impl EpisodeStats {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one finished episode (in the order they finished: by step, then env index).
    pub fn push(
        &mut self,
        episode_return: f64,
        length: f64,
        terms: impl IntoIterator<Item = (String, f64)>,
    ) {
        if self.returns.len() == WINDOW {
            self.returns.pop_front();
            self.lengths.pop_front();
        }
        self.returns.push_back(episode_return);
        self.lengths.push_back(length);
        for (name, value) in terms {
            let e = self.iteration_terms.entry(name).or_insert((0.0, 0));
            e.0 += value;
            e.1 += 1;
        }
        self.iteration_episodes += 1;
    }

    /// Mean return over the window, if any episode finished yet.
    pub fn mean_return(&self) -> Option<f64> {
        mean(&self.returns)
    }

    /// Mean length over the window, if any episode finished yet.
    pub fn mean_length(&self) -> Option<f64> {
        mean(&self.lengths)
    }

    /// Episodes that finished during the current iteration.
    pub fn iteration_episodes(&self) -> usize {
        self.iteration_episodes
    }

    /// Means of the per-episode terms over this iteration's episodes (`Episode/<name>`),
    /// and starts the next iteration.
    pub fn take_iteration_terms(&mut self) -> BTreeMap<String, f64> {
        self.iteration_episodes = 0;
        std::mem::take(&mut self.iteration_terms)
            .into_iter()
            .map(|(k, (sum, n))| (k, sum / n.max(1) as f64))
            .collect()
    }
}

/// Rows of [`episode_rows`] before the terms: `terminated, time_out, return, length`.
const HEAD_ROWS: usize = 4;

/// Per-step episode data kept on the device until it is read back: `[4 + K, N]` rows
/// `terminated, time_out, return, length, term_1..term_K` (terms in the `BTreeMap`'s key
/// order). An episode ended where either flag is set; the host reads `done` from the two
/// rather than the device computing it.
pub(crate) fn episode_rows<B: Backend>(step: &StepOutput<B>) -> Tensor<B, 2> {
    let mut rows = vec![
        step.terminated.clone().float(),
        step.time_outs.clone().float(),
        step.episode.returns.clone(),
        step.episode.lengths.clone(),
    ];
    rows.extend(step.episode.terms.values().cloned());
    Tensor::stack(rows, 0)
}

/// Per-step finiteness checks kept on the device until they are read back: one row `[N]`
/// per checked quantity, the number of non-finite values of each environment. The
/// quantities are the observation groups (after and before the auto-reset), the reward and
/// the named episode terms; their names are returned in row order.
pub(crate) fn guard_rows<B: Backend>(step: &StepOutput<B>) -> (Vec<String>, Tensor<B, 2>) {
    fn count_2d<B: Backend>(t: &Tensor<B, 2>) -> Tensor<B, 1> {
        t.clone()
            .is_finite()
            .bool_not()
            .float()
            .sum_dim(1)
            .squeeze_dim::<1>(1)
    }
    fn count_1d<B: Backend>(t: &Tensor<B, 1>) -> Tensor<B, 1> {
        t.clone().is_finite().bool_not().float()
    }
    let mut names = Vec::new();
    let mut rows = Vec::new();
    for (group, obs) in step.observations.iter() {
        names.push(format!("observation group `{group}`"));
        rows.push(count_2d(obs));
    }
    for (group, obs) in step.final_observations.iter() {
        names.push(format!(
            "final observation group `{group}` (before the auto-reset)"
        ));
        rows.push(count_2d(obs));
    }
    names.push("the reward".to_string());
    rows.push(count_1d(&step.rewards));
    for (term, value) in &step.episode.terms {
        names.push(format!("episode term `{term}`"));
        rows.push(count_1d(value));
    }
    (names, Tensor::stack(rows, 0))
}

/// One episode that finished during a stretch of steps.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FinishedEpisode {
    /// The environment it ran in.
    pub(crate) env: usize,
    /// It ended in a terminal state (a fall, a success) rather than by the time limit.
    pub(crate) terminated: bool,
    pub(crate) episode_return: f64,
    pub(crate) length: f64,
    pub(crate) terms: Vec<(String, f64)>,
}

/// The first non-finite value [`guard_rows`] found: by step, then quantity, then environment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NonFiniteAt {
    /// Step of the rollout, from 0.
    pub(crate) step: usize,
    /// Environment index.
    pub(crate) env: usize,
    /// The quantity's name.
    pub(crate) quantity: String,
    /// Environments with non-finite values of that quantity on that step.
    pub(crate) num_envs: usize,
}

/// What the read-back of a stretch of steps found.
pub(crate) struct Readout {
    /// Finished episodes, in the order they finished (by step, then environment index).
    pub(crate) episodes: Vec<FinishedEpisode>,
    /// The first non-finite value, when guard rows were included.
    pub(crate) non_finite: Option<NonFiniteAt>,
}

/// Reads the [`episode_rows`] of consecutive steps back in one transfer and lists the
/// finished episodes in the order they finished (by step, then environment index), as
/// rsl_rl counts them. `what` names the data in a read-back error.
pub(crate) fn read_finished_episodes<B: Backend>(
    rows: Vec<Tensor<B, 2>>,
    term_names: &[String],
    what: &'static str,
) -> Result<Vec<FinishedEpisode>, Error> {
    Ok(read_steps(rows, term_names, &[], what)?.episodes)
}

/// [`read_finished_episodes`] for rows that are [`episode_rows`] followed by the
/// [`guard_rows`] named `guard_names`; also finds the first non-finite value.
pub(crate) fn read_steps<B: Backend>(
    rows: Vec<Tensor<B, 2>>,
    term_names: &[String],
    guard_names: &[String],
    what: &'static str,
) -> Result<Readout, Error> {
    let mut readout = Readout {
        episodes: Vec::new(),
        non_finite: None,
    };
    let Some(first) = rows.first() else {
        return Ok(readout);
    };
    let [k, n] = first.dims();
    let g = guard_names.len().min(k.saturating_sub(HEAD_ROWS));
    let terms = k.saturating_sub(HEAD_ROWS + g);
    let data = read_floats(Tensor::cat(rows, 0), what)?; // [T * (4 + K + G), N]
    for (t, step) in data.chunks(k * n).enumerate() {
        if readout.non_finite.is_none() {
            for (q, name) in guard_names.iter().take(g).enumerate() {
                let row = &step[(HEAD_ROWS + terms + q) * n..(HEAD_ROWS + 1 + terms + q) * n];
                if let Some(env) = row.iter().position(|&c| c != 0.0) {
                    readout.non_finite = Some(NonFiniteAt {
                        step: t,
                        env,
                        quantity: name.clone(),
                        num_envs: row.iter().filter(|&&c| c != 0.0).count(),
                    });
                    break;
                }
            }
        }
        for env in 0..n {
            let terminated = step[env] > 0.5;
            if terminated || step[n + env] > 0.5 {
                let terms = term_names
                    .iter()
                    .take(terms)
                    .enumerate()
                    .map(|(j, name)| (name.clone(), f64::from(step[(HEAD_ROWS + j) * n + env])))
                    .collect();
                readout.episodes.push(FinishedEpisode {
                    env,
                    terminated,
                    episode_return: f64::from(step[2 * n + env]),
                    length: f64::from(step[3 * n + env]),
                    terms,
                });
            }
        }
    }
    Ok(readout)
}

/// Reads a tensor back to the host as `f32`s, row-major; `what` names it in the error.
pub(crate) fn read_floats<B: Backend, const D: usize>(
    t: Tensor<B, D>,
    what: &'static str,
) -> Result<Vec<f32>, Error> {
    t.into_data()
        .convert::<f32>()
        .to_vec()
        .map_err(|e| Error::Readback {
            what,
            reason: format!("{e:?}"),
        })
}

fn mean(v: &VecDeque<f64>) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_the_last_hundred_episodes() {
        let mut s = EpisodeStats::new();
        assert_eq!(s.mean_return(), None);
        for i in 0..150 {
            s.push(i as f64, 2.0 * i as f64, [("rew_a".to_string(), 1.0)]);
        }
        // episodes 50..150
        assert_eq!(s.mean_return(), Some(99.5));
        assert_eq!(s.mean_length(), Some(199.0));
        assert_eq!(s.iteration_episodes(), 150);
        let terms = s.take_iteration_terms();
        assert_eq!(terms.get("rew_a"), Some(&1.0));
        assert_eq!(s.iteration_episodes(), 0);
        assert!(s.take_iteration_terms().is_empty());
    }
}
