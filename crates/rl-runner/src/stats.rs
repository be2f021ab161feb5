//! Episode statistics: the window of the last 100 finished episodes, as rsl_rl logs them.

use std::collections::{BTreeMap, VecDeque};

use burn::tensor::{Bool, Tensor, Transaction, backend::Backend};
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

    /// The sums of the window's returns and lengths, and its number of episodes.
    pub(crate) fn window_sums(&self) -> (f64, f64, usize) {
        (
            self.returns.iter().sum(),
            self.lengths.iter().sum(),
            self.returns.len(),
        )
    }

    /// Sums and counts of the per-episode terms over this iteration's episodes, and starts
    /// the next iteration.
    pub(crate) fn take_iteration_term_sums(&mut self) -> BTreeMap<String, (f64, usize)> {
        self.iteration_episodes = 0;
        std::mem::take(&mut self.iteration_terms)
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

/// Scale of the observations before [`StepRecord::guarded`] sums their rows: the sum of a
/// row of up to 2^31 finite `f32` values, each at most `f32::MAX`, stays finite once scaled,
/// so the sum is non-finite exactly where the row holds a NaN or an infinity (which the
/// scaling keeps). A multiplication rather than `x - x`, which a shader compiler that
/// assumes finite values may fold to zero.
const OBS_CHECK_SCALE: f64 = 1.0 / 4_294_967_296.0; // 2^-32

/// One policy step's episode data (and finiteness checks), kept on the device until
/// [`read_steps`] reads a stretch of steps back in one transaction. The episode data are the
/// step's own tensors, `[N]` each: recording them launches nothing.
pub(crate) struct StepRecord<B: Backend> {
    terminated: Tensor<B, 1, Bool>,
    time_outs: Tensor<B, 1, Bool>,
    returns: Tensor<B, 1>,
    lengths: Tensor<B, 1>,
    /// The episode terms, in the `BTreeMap`'s key order.
    terms: Vec<Tensor<B, 1>>,
    guard: Option<Guard<B>>,
}

/// What the host needs to find a step's non-finite values besides its episode terms.
struct Guard<B: Backend> {
    /// Per observation group, then per final observation group (before the auto-reset):
    /// `[N, 1]`, non-finite exactly where the environment's row holds a non-finite value.
    observations: Vec<Tensor<B, 2>>,
    /// The reward, `[N]`, checked on the host.
    rewards: Tensor<B, 1>,
}

impl<B: Backend> StepRecord<B> {
    /// The episode data of `step`: an episode ended where `terminated` or `time_outs` is
    /// set; its return, length and terms are those of the same environment.
    pub(crate) fn episodes(step: &StepOutput<B>) -> Self {
        Self {
            terminated: step.terminated.clone(),
            time_outs: step.time_outs.clone(),
            returns: step.episode.returns.clone(),
            lengths: step.episode.lengths.clone(),
            terms: step.episode.terms.values().cloned().collect(),
            guard: None,
        }
    }

    /// [`StepRecord::episodes`] with the finiteness checks of the quantities that
    /// [`guard_names`] names: one row reduction per observation group (and final
    /// observation group) on the device; the reward and the episode terms are read back as
    /// they are and checked on the host.
    pub(crate) fn guarded(step: &StepOutput<B>) -> Self {
        let check = |obs: &Tensor<B, 2>| obs.clone().mul_scalar(OBS_CHECK_SCALE).sum_dim(1);
        let observations = step
            .observations
            .iter()
            .chain(step.final_observations.iter())
            .map(|(_, obs)| check(obs))
            .collect();
        Self {
            guard: Some(Guard {
                observations,
                rewards: step.rewards.clone(),
            }),
            ..Self::episodes(step)
        }
    }
}

/// The quantities whose finiteness [`StepRecord::guarded`] checks, in the order a
/// non-finite value is looked for within a step: the observation groups (after and before
/// the auto-reset), the reward and the named episode terms.
pub(crate) fn guard_names<B: Backend>(step: &StepOutput<B>) -> Vec<String> {
    let mut names: Vec<String> = step
        .observations
        .iter()
        .map(|(group, _)| format!("observation group `{group}`"))
        .collect();
    names.extend(
        step.final_observations
            .iter()
            .map(|(group, _)| format!("final observation group `{group}` (before the auto-reset)")),
    );
    names.push("the reward".to_string());
    names.extend(
        step.episode
            .terms
            .keys()
            .map(|term| format!("episode term `{term}`")),
    );
    names
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

/// The first non-finite value of the guarded quantities: by step, then quantity, then environment.
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

/// Reads the [`StepRecord`]s of consecutive steps back in one transaction and lists the
/// finished episodes in the order they finished (by step, then environment index), as
/// rsl_rl counts them. `what` names the data in a read-back error.
pub(crate) fn read_finished_episodes<B: Backend>(
    steps: Vec<StepRecord<B>>,
    term_names: &[String],
    what: &'static str,
) -> Result<Vec<FinishedEpisode>, Error> {
    Ok(read_steps(steps, term_names, &[], what)?.episodes)
}

/// How many tensors of each kind a [`StepRecord`] registered in the transaction.
struct Layout {
    terms: usize,
    /// Observation checks, when the step was guarded.
    checks: Option<usize>,
}

/// [`read_finished_episodes`]; also finds the first non-finite value of the guarded steps
/// (by step, then quantity in the order of `guard_names`, then environment).
pub(crate) fn read_steps<B: Backend>(
    steps: Vec<StepRecord<B>>,
    term_names: &[String],
    guard_names: &[String],
    what: &'static str,
) -> Result<Readout, Error> {
    let mut readout = Readout {
        episodes: Vec::new(),
        non_finite: None,
    };
    if steps.is_empty() {
        return Ok(readout);
    }
    let readback = |reason: String| Error::Readback { what, reason };
    let mut layouts = Vec::with_capacity(steps.len());
    let mut transaction = Transaction::<B>::default();
    for step in steps {
        layouts.push(Layout {
            terms: step.terms.len(),
            checks: step.guard.as_ref().map(|g| g.observations.len()),
        });
        transaction = transaction
            .register(step.terminated)
            .register(step.time_outs)
            .register(step.returns)
            .register(step.lengths);
        for term in step.terms {
            transaction = transaction.register(term);
        }
        if let Some(guard) = step.guard {
            for check in guard.observations {
                transaction = transaction.register(check);
            }
            transaction = transaction.register(guard.rewards);
        }
    }
    let data = transaction
        .try_execute()
        .map_err(|e| readback(format!("{e:?}")))?;
    let mut data = data.into_iter();
    // The next registered tensor, as `f32`s (`true` is 1).
    let mut next = |count: usize| -> Result<Vec<Vec<f32>>, Error> {
        (0..count)
            .map(|_| {
                let row = data.next().ok_or_else(|| {
                    readback("the transaction returned fewer tensors than it read".into())
                })?;
                row.convert::<f32>()
                    .into_vec::<f32>()
                    .map_err(|e| readback(format!("{e:?}")))
            })
            .collect()
    };
    for (t, layout) in layouts.iter().enumerate() {
        let head = next(4)?;
        let terms = next(layout.terms)?;
        let (checks, rewards) = match layout.checks {
            Some(c) => (next(c)?, next(1)?),
            None => (Vec::new(), Vec::new()),
        };
        let [terminated, time_outs, returns, lengths] = head.as_slice() else {
            return Err(readback("a step's episode data are incomplete".into()));
        };
        let n = terminated.len();
        if [time_outs, returns, lengths]
            .into_iter()
            .chain(&terms)
            .chain(&checks)
            .chain(&rewards)
            .any(|row| row.len() != n)
        {
            return Err(readback(format!(
                "the rows of step {t} differ in length from its {n} environments"
            )));
        }
        if readout.non_finite.is_none() && layout.checks.is_some() {
            // The order of `guard_names`: observation checks, the reward, the terms
            let quantities = checks.iter().chain(&rewards).chain(&terms);
            for (q, row) in quantities.enumerate() {
                if let Some(env) = row.iter().position(|v| !v.is_finite()) {
                    readout.non_finite = Some(NonFiniteAt {
                        step: t,
                        env,
                        quantity: guard_names
                            .get(q)
                            .cloned()
                            .unwrap_or_else(|| format!("checked quantity {q}")),
                        num_envs: row.iter().filter(|v| !v.is_finite()).count(),
                    });
                    break;
                }
            }
        }
        let ended = terminated
            .iter()
            .zip(time_outs)
            .zip(returns.iter().zip(lengths));
        for (env, ((&terminated, &time_out), (&episode_return, &length))) in ended.enumerate() {
            let terminated = terminated > 0.5;
            if terminated || time_out > 0.5 {
                readout.episodes.push(FinishedEpisode {
                    env,
                    terminated,
                    episode_return: f64::from(episode_return),
                    length: f64::from(length),
                    terms: term_names
                        .iter()
                        .zip(&terms)
                        .map(|(name, row)| {
                            (
                                name.clone(),
                                row.get(env).map_or(f64::NAN, |&v| f64::from(v)),
                            )
                        })
                        .collect(),
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
    use burn::backend::NdArray;
    use burn::tensor::TensorData;
    use rl_core::{EpisodeInfo, Observations};

    type B = NdArray;

    fn row(v: &[f32]) -> Tensor<B, 1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
    }

    fn flags(v: &[bool]) -> Tensor<B, 1, Bool> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
    }

    fn obs(rows: &[[f32; 2]]) -> Tensor<B, 2> {
        let v: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(v, [rows.len(), 2]), &Default::default())
    }

    /// Three environments; environment 1 ends on this step (a time-out), with term `a`.
    fn step(
        observation: [[f32; 2]; 3],
        final_observation: [[f32; 2]; 3],
        term_b: [f32; 3],
    ) -> StepOutput<B> {
        StepOutput {
            observations: Observations::new().with("policy", obs(&observation)),
            rewards: row(&[1.0, 2.0, 3.0]),
            terminated: flags(&[false, false, false]),
            time_outs: flags(&[false, true, false]),
            final_observations: Observations::new().with("policy", obs(&final_observation)),
            episode: EpisodeInfo {
                returns: row(&[0.0, 7.5, 0.0]),
                lengths: row(&[0.0, 12.0, 0.0]),
                terms: [
                    ("a".to_string(), row(&[0.0, 0.25, 0.0])),
                    ("b".to_string(), row(&term_b)),
                ]
                .into_iter()
                .collect(),
            },
        }
    }

    const FINE: [[f32; 2]; 3] = [[0.0, 1.0], [f32::MAX, f32::MAX], [-f32::MAX, 3.0]];

    #[test]
    fn read_steps_finds_episodes_and_the_first_non_finite_value_in_order() {
        let mut bad_final = FINE;
        bad_final[2][1] = f32::INFINITY;
        bad_final[1][0] = f32::NAN;
        let steps = [
            step(FINE, FINE, [0.0; 3]),
            // The final observations come before the terms
            step(FINE, bad_final, [f32::NAN, 0.0, 0.0]),
        ];
        let names = guard_names(&steps[0]);
        assert_eq!(names.len(), 5, "{names:?}");
        let terms = vec!["a".to_string(), "b".to_string()];
        let records = steps.iter().map(StepRecord::guarded).collect();
        let readout = read_steps(records, &terms, &names, "test").expect("read");
        let at = readout.non_finite.expect("a non-finite value");
        assert_eq!(
            (at.step, at.env, at.num_envs, at.quantity.as_str()),
            (
                1,
                1,
                2,
                "final observation group `policy` (before the auto-reset)"
            )
        );
        assert_eq!(readout.episodes.len(), 2);
        let e = &readout.episodes[1];
        assert_eq!(
            (e.env, e.terminated, e.episode_return, e.length),
            (1, false, 7.5, 12.0)
        );
        assert_eq!(e.terms, vec![("a".into(), 0.25), ("b".into(), 0.0)]);

        // Finite values as large as f32 allows pass; unguarded steps are not checked
        let records = steps.iter().take(1).map(StepRecord::guarded).collect();
        let readout = read_steps(records, &terms, &names, "test").expect("read");
        assert_eq!(readout.non_finite, None);
        let records = steps.iter().map(StepRecord::episodes).collect();
        let episodes = read_finished_episodes(records, &terms, "test").expect("read");
        assert_eq!(episodes.len(), 2);
    }

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
