//! The rollout buffer: transitions of `N` environments over `T` steps, and GAE.
//!
//! The stored fields are listed once, in [`stored_fields!`]'s invocation below; it declares
//! the same fields for one step ([`Transition`], `[N, ...]`), a whole rollout ([`Rollout`],
//! `[T, N, ...]`) and a mini-batch ([`MiniBatch`], `[M, ...]`), and writes the stacking and
//! the gathering of every field. Adding a stored quantity is one line there. Observations
//! are stored by group, as the environment returned them (the models normalise their own
//! inputs).

use std::collections::BTreeMap;

use burn::tensor::{Int, Tensor, backend::Backend};
use rl_core::Observations;

use crate::{Error, Result};

/// Tensor types of a field of kind `vector` (`[.., D]`): one step or mini-batch `[N, D]`,
/// stacked `[T, N, D]`.
mod vector {
    use burn::tensor::Tensor;
    pub type Step<B> = Tensor<B, 2>;
    pub type Stacked<B> = Tensor<B, 3>;
}

/// Tensor types of a field of kind `scalar`: one step or mini-batch `[N]`, stacked `[T, N]`.
mod scalar {
    use burn::tensor::Tensor;
    pub type Step<B> = Tensor<B, 1>;
    pub type Stacked<B> = Tensor<B, 2>;
}

/// Declares the stored fields of [`Transition`], [`Rollout`] and [`MiniBatch`] from one list,
/// with the code that stacks steps into a rollout and gathers a mini-batch from it. Fields
/// under `sampled` go into mini-batches; those under `rollout_only` (what GAE reads) stop at
/// the rollout, so that the update gathers nothing it does not use.
macro_rules! stored_fields {
    (
        sampled { $( $(#[$doc:meta])* $field:ident: $kind:ident, )* }
        rollout_only { $( $(#[$rdoc:meta])* $rfield:ident: $rkind:ident, )* }
    ) => {
        /// One environment step of all `N` environments, as the algorithm stores it.
        #[derive(Debug, Clone)]
        pub struct Transition<B: Backend> {
            /// Observation groups as the environment returned them, `[N, D_group]` each.
            pub observations: Observations<B>,
            $( $(#[$doc])* pub $field: $kind::Step<B>, )*
            $( $(#[$rdoc])* pub $rfield: $rkind::Step<B>, )*
            /// A recurrent model's hidden state before this step (the state it acted from,
            /// already reset where the previous step ended an episode), flattened by the
            /// model, `[N, S]`; `None` for a model without memory.
            pub memory: Option<Tensor<B, 2>>,
        }

        /// A complete rollout: every field of [`Transition`] stacked to `[T, N, ...]`, with
        /// the GAE returns and advantages.
        #[derive(Debug, Clone)]
        pub struct Rollout<B: Backend> {
            /// Observation groups, `[T, N, D_group]` each.
            pub observations: BTreeMap<String, Tensor<B, 3>>,
            $( $(#[$doc])* pub $field: $kind::Stacked<B>, )*
            $( $(#[$rdoc])* pub $rfield: $rkind::Stacked<B>, )*
            /// The hidden states of a recurrent model, `[T, N, S]`.
            pub memory: Option<Tensor<B, 3>>,
            /// GAE returns `A_t + V_t`, `[T, N]`.
            pub returns: Tensor<B, 2>,
            /// GAE advantages, `[T, N]`.
            pub advantages: Tensor<B, 2>,
        }

        /// `M` samples drawn from a [`Rollout`], time and environment flattened: the
        /// observations and every `sampled` field as `[M, ...]`, with returns and advantages.
        #[derive(Debug, Clone)]
        pub struct MiniBatch<B: Backend> {
            /// Observation groups, `[M, D_group]` each.
            pub observations: Observations<B>,
            $( $(#[$doc])* pub $field: $kind::Step<B>, )*
            /// `[M]`.
            pub returns: Tensor<B, 1>,
            /// `[M]`.
            pub advantages: Tensor<B, 1>,
        }

        /// The stored fields of `steps` stacked along a new first axis, in a [`Rollout`]
        /// with the given returns and advantages.
        fn stack<B: Backend>(
            steps: Vec<Transition<B>>,
            returns: Tensor<B, 2>,
            advantages: Tensor<B, 2>,
        ) -> Rollout<B> {
            let mut groups: BTreeMap<String, Vec<Tensor<B, 2>>> = BTreeMap::new();
            for step in &steps {
                for (name, obs) in step.observations.iter() {
                    groups.entry(name.clone()).or_default().push(obs.clone());
                }
            }
            Rollout {
                observations: groups
                    .into_iter()
                    .map(|(name, v)| (name, Tensor::stack::<3>(v, 0))) // [T, N, D]
                    .collect(),
                $( $field: Tensor::stack(steps.iter().map(|s| s.$field.clone()).collect(), 0), )*
                $( $rfield: Tensor::stack(steps.iter().map(|s| s.$rfield.clone()).collect(), 0), )*
                memory: steps
                    .iter()
                    .map(|s| s.memory.clone())
                    .collect::<Option<Vec<_>>>()
                    .map(|m| Tensor::stack(m, 0)), // [T, N, S]
                returns,
                advantages,
            }
        }

        impl<B: Backend> Rollout<B> {
            /// Gathers the samples at `indices` (into the flattened `T * N` axis, `[M]`).
            pub fn mini_batch(&self, indices: Tensor<B, 1, Int>) -> MiniBatch<B> {
                self.gather(indices, true)
            }

            /// [`Rollout::mini_batch`] of indices on the host (one upload).
            pub fn mini_batch_of(&self, indices: &[usize]) -> MiniBatch<B> {
                self.mini_batch(crate::recurrent::int_tensor(indices, &self.dones.device()))
            }

            /// The samples at `indices`, with their observations when `observations` (a
            /// recurrent mini-batch reads its observations as [`rl_core::Sequences`] instead).
            pub(crate) fn gather(&self, indices: Tensor<B, 1, Int>, observations: bool) -> MiniBatch<B> {
                let gather = Gather { indices, batch: self.batch_size() };
                MiniBatch {
                    observations: if observations {
                        self.gather_observations(&gather)
                    } else {
                        Observations::new()
                    },
                    $( $field: gather.$kind(&self.$field), )*
                    returns: gather.scalar(&self.returns),
                    advantages: gather.scalar(&self.advantages),
                }
            }
        }
    };
}

stored_fields! {
    sampled {
        /// Actions sent to the environment (unclipped), `[.., A]`.
        actions: vector,
        /// Critic values `V(s_t)`.
        values: scalar,
        /// Log-probabilities of `actions` under the rollout policy.
        actions_log_prob: scalar,
        /// Parameters of the rollout policy's action distribution, flattened, `[.., P]` (for
        /// a Gaussian its mean and std, for a categorical its log-probabilities).
        dist_params: vector,
    }
    rollout_only {
        /// Rewards, already including any time-out bootstrap.
        rewards: scalar,
        /// 1.0 where the episode ended (terminated or timed out).
        dones: scalar,
    }
}

/// Gathers rows of the flattened `T * N` axis.
pub(crate) struct Gather<B: Backend> {
    pub(crate) indices: Tensor<B, 1, Int>,
    pub(crate) batch: usize,
}

impl<B: Backend> Rollout<B> {
    /// Every observation group at the rows of `gather`, `[M, D_group]` each.
    pub(crate) fn gather_observations(&self, gather: &Gather<B>) -> Observations<B> {
        self.observations
            .iter()
            .fold(Observations::new(), |o, (name, x)| {
                o.with(name.clone(), gather.vector(x))
            })
    }
}

impl<B: Backend> Gather<B> {
    /// `[T, N]` to `[M]`.
    fn scalar(&self, t: &Tensor<B, 2>) -> Tensor<B, 1> {
        t.clone()
            .reshape([self.batch])
            .select(0, self.indices.clone())
    }

    /// `[T, N, D]` to `[M, D]`.
    pub(crate) fn vector(&self, t: &Tensor<B, 3>) -> Tensor<B, 2> {
        let [_, _, d] = t.dims();
        t.clone()
            .reshape([self.batch, d])
            .select(0, self.indices.clone())
    }
}

/// Collects `num_steps_per_env` transitions, then turns them into a [`Rollout`].
#[derive(Debug)]
pub struct RolloutStorage<B: Backend> {
    num_steps_per_env: usize,
    num_envs: usize,
    steps: Vec<Transition<B>>,
}

impl<B: Backend> RolloutStorage<B> {
    /// Storage for `num_envs` environments over `num_steps_per_env` steps.
    pub fn new(num_envs: usize, num_steps_per_env: usize) -> Self {
        Self {
            num_steps_per_env,
            num_envs,
            steps: Vec::with_capacity(num_steps_per_env),
        }
    }

    /// Steps per environment in a full rollout (`T`).
    pub fn num_steps_per_env(&self) -> usize {
        self.num_steps_per_env
    }

    /// Number of environments (`N`).
    pub fn num_envs(&self) -> usize {
        self.num_envs
    }

    /// Steps stored so far.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// True when the rollout has all its steps.
    pub fn is_full(&self) -> bool {
        self.steps.len() == self.num_steps_per_env
    }

    /// Appends one step.
    pub fn add(&mut self, transition: Transition<B>) -> Result<()> {
        if self.is_full() {
            return Err(Error::Overflow {
                num_steps: self.num_steps_per_env,
            });
        }
        let n = self.num_envs;
        let check = |field, got: Vec<usize>, expected: Vec<usize>| {
            if got == expected {
                Ok(())
            } else {
                Err(Error::Shape {
                    field,
                    expected,
                    got,
                })
            }
        };
        check("rewards", transition.rewards.dims().to_vec(), vec![n])?;
        check("dones", transition.dones.dims().to_vec(), vec![n])?;
        check("values", transition.values.dims().to_vec(), vec![n])?;
        for (_, obs) in transition.observations.iter() {
            let [rows, _] = obs.dims();
            if rows != n {
                return Err(Error::Shape {
                    field: "observations rows",
                    expected: vec![n],
                    got: vec![rows],
                });
            }
        }
        let [rows, _] = transition.actions.dims();
        check("actions rows", vec![rows], vec![n])?;
        self.steps.push(transition);
        Ok(())
    }

    /// Rewards of the most recently stored step, `[N]`.
    pub fn last_rewards(&self) -> Option<Tensor<B, 1>> {
        self.steps.last().map(|s| s.rewards.clone())
    }

    /// Drops every stored step.
    pub fn clear(&mut self) {
        self.steps.clear();
    }

    /// Stacks the stored steps into a [`Rollout`] and computes GAE returns and advantages,
    /// bootstrapping from `last_values` (`V` of the observations after the last step, `[N]`).
    ///
    /// The storage is cleared.
    pub fn finish(
        &mut self,
        last_values: Tensor<B, 1>,
        gamma: f32,
        lam: f32,
    ) -> Result<Rollout<B>> {
        if !self.is_full() {
            return Err(Error::Incomplete {
                have: self.steps.len(),
                num_steps: self.num_steps_per_env,
            });
        }
        let steps = std::mem::take(&mut self.steps);
        let rewards: Vec<_> = steps.iter().map(|s| s.rewards.clone()).collect();
        let dones: Vec<_> = steps.iter().map(|s| s.dones.clone()).collect();
        let values: Vec<_> = steps.iter().map(|s| s.values.clone()).collect();
        let (returns, advantages) = gae(&rewards, &dones, &values, last_values, gamma, lam);

        self.steps = Vec::with_capacity(self.num_steps_per_env);
        Ok(stack(
            steps,
            Tensor::stack::<2>(returns, 0),    // [T, N]
            Tensor::stack::<2>(advantages, 0), // [T, N]
        ))
    }
}

/// Generalised advantage estimation over `T` steps of `[N]` tensors (rsl_rl's rule):
///
/// `delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t`,
/// `A_t = delta_t + gamma lam (1 - d_t) A_{t+1}`, `R_t = A_t + V_t`, with `V_T = last_values`.
///
/// Returns `(returns, advantages)`, each `T` tensors `[N]`.
pub fn gae<B: Backend>(
    rewards: &[Tensor<B, 1>],
    dones: &[Tensor<B, 1>],
    values: &[Tensor<B, 1>],
    last_values: Tensor<B, 1>,
    gamma: f32,
    lam: f32,
) -> (Vec<Tensor<B, 1>>, Vec<Tensor<B, 1>>) {
    let t_len = rewards.len();
    let mut advantages = Vec::with_capacity(t_len);
    let mut next_values = last_values;
    let mut next_advantage = next_values.zeros_like();
    for t in (0..t_len).rev() {
        // 1 - d_t: the recursion stops at the end of an episode
        let not_done = dones[t].clone().neg().add_scalar(1.0);
        let delta = rewards[t].clone() + not_done.clone() * next_values.mul_scalar(gamma)
            - values[t].clone();
        next_advantage = delta + not_done * next_advantage.mul_scalar(gamma * lam);
        advantages.push(next_advantage.clone());
        next_values = values[t].clone();
    }
    advantages.reverse();
    let returns = advantages
        .iter()
        .zip(values)
        .map(|(a, v)| a.clone() + v.clone())
        .collect();
    (returns, advantages)
}

impl<B: Backend> Rollout<B> {
    /// `T * N`.
    pub fn batch_size(&self) -> usize {
        let [t, n] = self.rewards.dims();
        t * n
    }

    /// Normalises the advantages over the whole rollout: `(A - mean) / (std + 1e-8)`,
    /// with the unbiased standard deviation (as `torch.std`).
    pub fn normalize_advantages(&mut self) {
        self.advantages = normalize(self.advantages.clone());
    }
}

/// `(x - mean(x)) / (std(x) + 1e-8)` over all elements, with the unbiased std.
pub fn normalize<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let shape = x.shape();
    let flat = x.flatten::<1>(0, D - 1);
    let mean = flat.clone().mean();
    let std = flat.clone().var(0).sqrt();
    ((flat - mean) / (std + 1e-8)).reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    type B = NdArray;

    fn t1(v: &[f32]) -> Tensor<B, 1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
    }
    fn v1(t: &Tensor<B, 1>) -> Vec<f32> {
        t.clone().into_data().to_vec().expect("f32")
    }

    /// GAE by hand for two environments over three steps: env 0 terminates at t = 1,
    /// env 1 times out at t = 2 (its reward already holds the bootstrap).
    #[test]
    fn gae_matches_hand_computation_with_dones() {
        let (gamma, lam) = (0.9_f32, 0.8_f32);
        let rewards = [t1(&[1.0, 0.5]), t1(&[2.0, 0.5]), t1(&[3.0, 1.5])];
        let dones = [t1(&[0.0, 0.0]), t1(&[1.0, 0.0]), t1(&[0.0, 1.0])];
        let values = [t1(&[0.1, 0.2]), t1(&[0.3, 0.4]), t1(&[0.5, 0.6])];
        let last = t1(&[0.7, 0.8]);
        let (ret, adv) = gae(&rewards, &dones, &values, last, gamma, lam);

        // env 0, backwards
        let d2 = 3.0 + gamma * 0.7 - 0.5;
        let a2 = d2;
        let d1 = 2.0 - 0.3; // done at t=1: no bootstrap from V_2
        let a1 = d1;
        let d0 = 1.0 + gamma * 0.3 - 0.1;
        let a0 = d0 + gamma * lam * a1;
        // env 1
        let e2 = 1.5 - 0.6; // done at t=2
        let b2 = e2;
        let e1 = 0.5 + gamma * 0.6 - 0.4;
        let b1 = e1 + gamma * lam * b2;
        let e0 = 0.5 + gamma * 0.4 - 0.2;
        let b0 = e0 + gamma * lam * b1;

        let expect_adv = [[a0, b0], [a1, b1], [a2, b2]];
        let values = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]];
        for t in 0..3 {
            let (a, r) = (v1(&adv[t]), v1(&ret[t]));
            for e in 0..2 {
                assert!(
                    (a[e] - expect_adv[t][e]).abs() < 1e-6,
                    "A[{t},{e}] {} vs {}",
                    a[e],
                    expect_adv[t][e]
                );
                let want_r = expect_adv[t][e] + values[t][e];
                assert!((r[e] - want_r).abs() < 1e-6, "R[{t},{e}]");
            }
        }
    }

    fn transition(n: usize, step: usize) -> Transition<B> {
        let dev = Default::default();
        let f = |v: f32| t1(&vec![v; n]);
        Transition {
            observations: Observations::new().with(
                "policy",
                Tensor::from_data(
                    TensorData::new(
                        (0..n * 2)
                            .map(|i| (step * 100 + i) as f32)
                            .collect::<Vec<_>>(),
                        [n, 2],
                    ),
                    &dev,
                ),
            ),
            actions: Tensor::zeros([n, 1], &dev),
            rewards: f(1.0),
            dones: f(0.0),
            values: f(step as f32),
            actions_log_prob: f(0.0),
            dist_params: Tensor::zeros([n, 2], &dev),
            memory: None,
        }
    }

    #[test]
    fn storage_stacks_and_mini_batches_cover_every_sample() {
        let (n, t) = (3, 4);
        let mut storage = RolloutStorage::<B>::new(n, t);
        for s in 0..t {
            storage.add(transition(n, s)).expect("room");
        }
        assert!(
            storage.add(transition(n, 9)).is_err(),
            "overflow must be refused"
        );
        let rollout = storage.finish(t1(&[0.0; 3]), 0.99, 0.95).expect("full");
        assert!(storage.is_empty());
        assert_eq!(rollout.observations["policy"].dims(), [t, n, 2]);
        assert_eq!(rollout.returns.dims(), [t, n]);

        let mut rng = rl_core::HostRng::new(1);
        let schedule =
            crate::MiniBatchSchedule::new(t * n, 2, 1, crate::Shuffle::PerUpdate, &mut rng)
                .expect("ok");
        let mut seen = Vec::new();
        for idx in &schedule.batches {
            let ids: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
            let idx_t = Tensor::<B, 1, Int>::from_data(
                TensorData::new(ids, [idx.len()]),
                &Default::default(),
            );
            let mb = rollout.mini_batch(idx_t);
            let obs: Vec<f32> = mb
                .observations
                .get("policy")
                .expect("stored group")
                .into_data()
                .to_vec()
                .expect("f32");
            seen.extend(obs.chunks(2).map(|r| r[0] as i64));
        }
        seen.sort_unstable();
        let mut want: Vec<i64> = (0..t)
            .flat_map(|s| (0..n).map(move |e| (s * 100 + 2 * e) as i64))
            .collect();
        want.sort_unstable();
        assert_eq!(seen, want);
    }

    #[test]
    fn incomplete_rollout_is_an_error() {
        let mut storage = RolloutStorage::<B>::new(2, 3);
        storage.add(transition(2, 0)).expect("room");
        assert!(matches!(
            storage.finish(t1(&[0.0, 0.0]), 0.99, 0.95),
            Err(Error::Incomplete {
                have: 1,
                num_steps: 3
            })
        ));
    }

    #[test]
    fn normalized_advantages_have_zero_mean_unit_std() {
        let x = t1(&[1.0, 2.0, 3.0, 10.0]);
        let y = v1(&normalize(x));
        let mean: f32 = y.iter().sum::<f32>() / 4.0;
        let var: f32 = y.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 3.0;
        assert!(mean.abs() < 1e-6);
        assert!((var - 1.0).abs() < 1e-5);
    }
}
