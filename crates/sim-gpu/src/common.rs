//! Bookkeeping shared by the batched environments: state, episode counters, time limit and
//! auto-reset.

use std::collections::BTreeMap;

use burn::tensor::{Bool, Tensor, TensorData, backend::Backend};
use rl_core::{EnvRng, EnvSnapshot, EnvSpec, EpisodeInfo, HostTensor, Observations, StepOutput};
use sim_physics::scatter_rows;

use crate::{Error, Result};

/// Implements [`rl_core::VecEnv`] and [`crate::ClassicEnv`] for a task struct with a
/// `core: EnvCore<B>` field and the associated functions `dynamics(state, actions)` and
/// `observe(state)`: the traits' methods are the same for every classic task, only those two
/// functions differ. `$names` are the names of the state components; `$layout` is the
/// task's [`crate::classic::ClassicLayout`] (what its observation and action columns mean);
/// `$kernel` is the task's [`crate::cube::TaskKernel`], the same two functions for the GPU,
/// which steps on CubeCL backends (only built with the `cube` feature).
macro_rules! impl_vec_env {
    ($env:ident, $names:expr, $layout:expr, $kernel:ty) => {
        impl<B: burn::tensor::backend::Backend> $crate::ClassicEnv<B> for $env<B> {
            fn state_names(&self) -> &'static [&'static str] {
                &$names
            }

            fn state(&self) -> burn::tensor::Tensor<B, 2> {
                self.core.state.clone()
            }

            fn final_state(&self) -> burn::tensor::Tensor<B, 2> {
                self.core.final_state.clone()
            }

            fn set_state(
                &mut self,
                env_ids: Option<&[usize]>,
                states: burn::tensor::Tensor<B, 2>,
            ) -> $crate::Result<()> {
                self.core.set_state(env_ids, states)
            }
        }

        impl<B: burn::tensor::backend::Backend> rl_core::VecEnv<B> for $env<B> {
            fn spec(&self) -> &rl_core::EnvSpec {
                &self.core.spec
            }

            fn device(&self) -> &B::Device {
                &self.core.device
            }

            fn observations(&self) -> rl_core::Observations<B> {
                $crate::common::policy_obs(Self::observe(self.core.state.clone()))
            }

            fn step(
                &mut self,
                actions: burn::tensor::Tensor<B, 2>,
            ) -> rl_core::Result<rl_core::StepOutput<B>> {
                #[cfg(feature = "cube")]
                if self.core.kernel {
                    return self.core.step_kernel::<$kernel>(actions);
                }
                let transition = Self::dynamics(self.core.state.clone(), actions)?;
                Ok(self.core.finish_step(transition, Self::observe))
            }

            fn reset(&mut self) -> rl_core::Observations<B> {
                self.core.reset();
                rl_core::VecEnv::observations(self)
            }

            fn save_state(&self) -> rl_core::Result<rl_core::EnvSnapshot> {
                self.core.save_state()
            }

            fn load_state(&mut self, snapshot: &rl_core::EnvSnapshot) -> rl_core::Result<()> {
                self.core.load_state(snapshot)
            }

            fn layout(&self) -> rl_core::EnvLayout {
                $layout.env_layout(&self.core.spec)
            }
        }
    };
}
pub(crate) use impl_vec_env;

/// Name of the observation group every task provides.
pub(crate) const POLICY: &str = "policy";

// Names of the entries of an `EnvSnapshot` of an `EnvCore`.
const STATE: &str = "state";
const FINAL_STATE: &str = "final_state";
const RETURNS: &str = "returns";
const LENGTHS: &str = "lengths";
const RESET_RNG: &str = "reset";

/// One step of a task's dynamics, before time limits and auto-reset.
#[derive(Debug, Clone)]
pub struct DynamicsStep<B: Backend> {
    /// State after the step, `[N, K]` (Gymnasium layout).
    pub next_state: Tensor<B, 2>,
    /// Reward of the step, `[N]`.
    pub rewards: Tensor<B, 1>,
    /// The next state is terminal, `[N]`.
    pub terminated: Tensor<B, 1, Bool>,
}

/// Returns a shape error unless `got == expected`.
pub(crate) fn check_shape(
    what: &str,
    got: [usize; 2],
    expected: [usize; 2],
) -> rl_core::Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(rl_core::Error::Shape {
            what: what.to_string(),
            expected: expected.to_vec(),
            got: got.to_vec(),
        })
    }
}

/// A `[1, K]` constant from host values.
pub(crate) fn row<B: Backend>(values: Vec<f32>, device: &B::Device) -> Tensor<B, 2> {
    let k = values.len();
    Tensor::from_data(TensorData::new(values, [1, k]), device)
}

/// The column `j` of a `[N, K]` tensor, as `[N]`.
pub(crate) fn column<B: Backend>(t: &Tensor<B, 2>, j: usize) -> Tensor<B, 1> {
    t.clone().narrow(1, j, 1).squeeze_dim::<1>(1)
}

/// The index `[N]` each discrete action `[N]` selects among `n` choices: the value rounded
/// to the nearest integer (halfway values to the even one, as Burn's `round`) and clamped
/// into `0..n`, as a float.
pub(crate) fn discrete_index<B: Backend>(actions: Tensor<B, 1>, n: usize) -> Tensor<B, 1> {
    actions.round().clamp(0.0, n.saturating_sub(1) as f32)
}

/// The state, random streams and episode counters of a batch of `N` environments; the
/// task-specific part (dynamics, observations) lives in each environment's file.
#[derive(Debug)]
pub(crate) struct EnvCore<B: Backend> {
    pub(crate) spec: EnvSpec,
    pub(crate) device: B::Device,
    /// Physical state of every environment, `[N, K]`.
    pub(crate) state: Tensor<B, 2>,
    /// State after the last step, before the auto-reset, `[N, K]`.
    pub(crate) final_state: Tensor<B, 2>,
    /// One reset-noise stream per environment.
    rng: EnvRng,
    /// Reset state `k` is drawn from `U(reset_low[k], reset_high[k])`.
    reset_low: &'static [f32],
    reset_high: &'static [f32],
    /// Undiscounted return of the running episodes, `[N]`.
    returns: Tensor<B, 1>,
    /// Steps taken in the running episodes, `[N]` (as f32).
    lengths: Tensor<B, 1>,
    /// `B` is a CubeCL backend: `step` runs as one kernel ([`EnvCore::step_kernel`]).
    #[cfg(feature = "cube")]
    pub(crate) kernel: bool,
}

impl<B: Backend> EnvCore<B> {
    /// A batch of `spec.num_envs` environments in freshly sampled reset states.
    pub(crate) fn new(
        spec: EnvSpec,
        seed: u64,
        reset_low: &'static [f32],
        reset_high: &'static [f32],
        device: &B::Device,
    ) -> Result<Self> {
        let n = spec.num_envs;
        if n == 0 {
            return Err(Error::NoEnvs { task: spec.task });
        }
        let mut rng = EnvRng::new(seed, n);
        // [N, K]
        let state = rng.uniform::<B>(reset_low, reset_high, device);
        Ok(Self {
            spec,
            device: device.clone(),
            final_state: state.clone(),
            state,
            rng,
            reset_low,
            reset_high,
            returns: Tensor::zeros([n], device),
            lengths: Tensor::zeros([n], device),
            #[cfg(feature = "cube")]
            kernel: crate::cube::is_cube_backend::<B>(),
        })
    }

    /// Number of state components, `K`.
    pub(crate) fn state_dim(&self) -> usize {
        self.reset_low.len()
    }

    /// Resets every environment: fresh reset states, counters to zero.
    pub(crate) fn reset(&mut self) {
        let n = self.spec.num_envs;
        self.state = self
            .rng
            .uniform::<B>(self.reset_low, self.reset_high, &self.device);
        self.final_state = self.state.clone();
        self.returns = Tensor::zeros([n], &self.device);
        self.lengths = Tensor::zeros([n], &self.device);
    }

    /// The state, the state before the last auto-reset, the episode counters and the reset
    /// streams, read back to the host.
    pub(crate) fn save_state(&self) -> rl_core::Result<EnvSnapshot> {
        let mut snapshot = EnvSnapshot::new(&self.spec);
        for (name, t) in [(STATE, &self.state), (FINAL_STATE, &self.final_state)] {
            snapshot
                .tensors
                .insert(name.into(), HostTensor::read(t.clone())?);
        }
        for (name, t) in [(RETURNS, &self.returns), (LENGTHS, &self.lengths)] {
            snapshot
                .tensors
                .insert(name.into(), HostTensor::read(t.clone())?);
        }
        snapshot.rngs.insert(RESET_RNG.into(), self.rng.clone());
        Ok(snapshot)
    }

    /// Restores what [`EnvCore::save_state`] wrote, onto this batch's device. Every entry is
    /// checked before anything is replaced, so that an error leaves the batch unchanged.
    pub(crate) fn load_state(&mut self, snapshot: &EnvSnapshot) -> rl_core::Result<()> {
        snapshot.check(&self.spec)?;
        let (n, k, device) = (self.spec.num_envs, self.state_dim(), &self.device);
        let state = snapshot.load_tensor(STATE, [n, k], device)?; // [N, K]
        let final_state = snapshot.load_tensor(FINAL_STATE, [n, k], device)?; // [N, K]
        let returns = snapshot.load_tensor(RETURNS, [n], device)?; // [N]
        let lengths = snapshot.load_tensor(LENGTHS, [n], device)?; // [N]
        let rng = snapshot.rng(RESET_RNG)?.clone();
        self.state = state;
        self.final_state = final_state;
        self.returns = returns;
        self.lengths = lengths;
        self.rng = rng;
        Ok(())
    }

    /// Replaces the state of the environments `env_ids` (all when `None`) with the rows of
    /// `states` `[M, K]`; episode counters are kept.
    pub(crate) fn set_state(
        &mut self,
        env_ids: Option<&[usize]>,
        states: Tensor<B, 2>,
    ) -> Result<()> {
        let n = self.spec.num_envs;
        let k = self.state_dim();
        let states = states.to_device(&self.device);
        let Some(ids) = env_ids else {
            check_shape("state", states.dims(), [n, k])?;
            self.state = states;
            self.final_state = self.state.clone();
            return Ok(());
        };
        check_shape("state", states.dims(), [ids.len(), k])?;
        let Some((mask, scattered)) = scatter_rows(ids, states, n)? else {
            return Ok(());
        };
        let mask = mask.unsqueeze_dim::<2>(1).expand([n, k]); // [N, K]
        self.state = self.state.clone().mask_where(mask, scattered);
        self.final_state = self.state.clone();
        Ok(())
    }

    /// Accepts the result of one step of the dynamics: counts it into the episodes,
    /// applies the time limit, resets the finished environments and builds the step's
    /// output. `observe` maps a state `[N, K]` to the policy observation `[N, D]`.
    pub(crate) fn finish_step(
        &mut self,
        transition: DynamicsStep<B>,
        observe: impl Fn(Tensor<B, 2>) -> Tensor<B, 2>,
    ) -> StepOutput<B> {
        let DynamicsStep {
            next_state,
            rewards,
            terminated,
        } = transition;
        let n = self.spec.num_envs;
        let k = self.state_dim();

        // Count the step into the running episodes.
        let returns = self.returns.clone() + rewards.clone(); // [N]
        let lengths = self.lengths.clone().add_scalar(1.0); // [N]

        // Time limit: truncated episodes that did not also terminate are time-outs.
        let truncated = lengths
            .clone()
            .greater_equal_elem(self.spec.max_episode_length as f32); // [N]
        let time_outs = truncated.clone().bool_and(terminated.clone().bool_not()); // [N]
        let dones = terminated.clone().bool_or(truncated); // [N]
        let running = dones.clone().bool_not(); // [N]

        // Statistics of the episodes that end here (zero elsewhere).
        let episode = EpisodeInfo {
            returns: returns.clone().mask_fill(running.clone(), 0.0),
            lengths: lengths.clone().mask_fill(running, 0.0),
            terms: BTreeMap::new(),
        };

        // Auto-reset: noise is drawn for every environment (a host write, never a read) and
        // kept only where the episode ended.
        let final_obs = observe(next_state.clone()); // [N, D]
        let noise = self
            .rng
            .uniform::<B>(self.reset_low, self.reset_high, &self.device); // [N, K]
        let reset_mask = dones.clone().unsqueeze_dim::<2>(1).expand([n, k]); // [N, K]
        self.final_state = next_state.clone();
        self.state = next_state.mask_where(reset_mask, noise);
        self.returns = returns.mask_fill(dones.clone(), 0.0);
        self.lengths = lengths.mask_fill(dones, 0.0);

        StepOutput {
            observations: policy_obs(observe(self.state.clone())),
            rewards,
            terminated,
            time_outs,
            final_observations: policy_obs(final_obs),
            episode,
        }
    }
}

#[cfg(feature = "cube")]
impl<B: Backend> EnvCore<B> {
    /// The whole env step of task `T` as one kernel (see [`crate::cube`]): the same
    /// transition, counters, auto-reset and outputs as `T`'s `dynamics` followed by
    /// [`EnvCore::finish_step`], drawing the same reset noise.
    ///
    /// Errors when `actions` is not `[N, 1]` (every classic task has one action), or when
    /// `B` is not a CubeCL backend (`kernel` is set only for those).
    pub(crate) fn step_kernel<T: crate::cube::TaskKernel>(
        &mut self,
        actions: Tensor<B, 2>,
    ) -> rl_core::Result<StepOutput<B>> {
        use crate::cube::{INPUTS, OUTPUTS, StepProgram};
        use burn::tensor::TensorPrimitive;

        let n = self.spec.num_envs;
        check_shape("actions", actions.dims(), [n, 1])?;
        let program = StepProgram::<T> {
            state_dim: self.state_dim(),
            obs_dim: self.spec.obs_groups.get(POLICY).copied().unwrap_or(0),
            max_episode_length: self.spec.max_episode_length,
            task: core::marker::PhantomData,
        };
        // Drawn for every environment, as in `finish_step`.
        let noise = self
            .rng
            .uniform::<B>(self.reset_low, self.reset_high, &self.device); // [N, K]
        let float = |t: Tensor<B, 2>| t.into_primitive().tensor();
        let float1 = |t: Tensor<B, 1>| t.into_primitive().tensor();
        let inputs = vec![
            float(self.state.clone()),
            float(actions.to_device(&self.device)),
            float(noise),
            float1(self.returns.clone()),
            float1(self.lengths.clone()),
        ];
        debug_assert_eq!(inputs.len(), INPUTS);
        let Ok(outputs) = sim_physics::cube::run::<B, _>(program, inputs) else {
            return Err(rl_core::Error::Env(format!(
                "task `{}`: the step kernel runs only on a CubeCL backend (wgpu, cuda)",
                self.spec.task
            )));
        };
        let Ok(
            [
                state,
                final_state,
                obs,
                final_obs,
                rewards,
                terminated,
                time_outs,
                returns,
                lengths,
                episode_returns,
                episode_lengths,
            ],
        ) = <[_; OUTPUTS]>::try_from(outputs)
        else {
            unreachable!("the step kernel returns {OUTPUTS} outputs");
        };
        let t1 = |p| Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(p));
        let t2 = |p| Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(p));
        self.state = t2(state);
        self.final_state = t2(final_state);
        self.returns = t1(returns);
        self.lengths = t1(lengths);
        Ok(StepOutput {
            observations: policy_obs(t2(obs)),
            rewards: t1(rewards),
            // The flags come as 0/1 floats.
            terminated: t1(terminated).greater_elem(0.5),
            time_outs: t1(time_outs).greater_elem(0.5),
            final_observations: policy_obs(t2(final_obs)),
            episode: EpisodeInfo {
                returns: t1(episode_returns),
                lengths: t1(episode_lengths),
                terms: BTreeMap::new(),
            },
        })
    }
}

/// Observation groups of a task whose only group is `policy`.
pub(crate) fn policy_obs<B: Backend>(obs: Tensor<B, 2>) -> Observations<B> {
    Observations::new().with(POLICY, obs)
}

#[cfg(test)]
mod tests {
    use crate::testing::{B, bools, floats, rows_to_tensor};
    use crate::{CartPole, ClassicEnv, Error, make_classic};
    use burn::tensor::Tensor;
    use rl_core::{EnvRng, HostTensor, VecEnv};

    #[test]
    fn set_state_of_chosen_envs_leaves_the_others() {
        let mut env = CartPole::<B>::new(4, 0, &Default::default()).expect("valid env");
        let before = floats(env.state());
        env.set_state(
            Some(&[2, 0]),
            rows_to_tensor(&[vec![1.0, 2.0, 0.1, 0.2], vec![-1.0, -2.0, -0.1, -0.2]]),
        )
        .expect("valid ids");
        let after = floats(env.state());
        assert_eq!(after[8..12], [1.0, 2.0, 0.1, 0.2]);
        assert_eq!(after[0..4], [-1.0, -2.0, -0.1, -0.2]);
        assert_eq!(after[4..8], before[4..8]);
        assert_eq!(after[12..16], before[12..16]);
        // Observations follow the state.
        let obs = floats(env.observations().get("policy").expect("policy"));
        assert_eq!(obs, after);
        // No ids: nothing changes.
        env.set_state(Some(&[]), Tensor::zeros([0, 4], &Default::default()))
            .expect("empty selection");
        assert_eq!(floats(env.state()), after);
    }

    #[test]
    fn set_state_rejects_bad_ids_and_shapes() {
        let mut env = CartPole::<B>::new(3, 0, &Default::default()).expect("valid env");
        let one = || rows_to_tensor(&[vec![0.0; 4]]);
        let two = || rows_to_tensor(&[vec![0.0; 4], vec![0.0; 4]]);
        assert!(matches!(
            env.set_state(Some(&[3]), one()),
            Err(Error::Sim(sim_physics::Error::EnvId { id: 3, num_envs: 3 }))
        ));
        assert!(matches!(
            env.set_state(Some(&[1, 1]), two()),
            Err(Error::Sim(sim_physics::Error::DuplicateEnvId { id: 1 }))
        ));
        assert!(env.set_state(Some(&[0, 1]), one()).is_err());
        assert!(env.set_state(None, two()).is_err());
        assert!(
            env.set_state(Some(&[0]), rows_to_tensor(&[vec![0.0; 3]]))
                .is_err()
        );
    }

    #[test]
    fn final_state_is_the_state_before_the_auto_reset() {
        let mut env = CartPole::<B>::new(2, 0, &Default::default()).expect("valid env");
        env.set_state(
            None,
            rows_to_tensor(&[vec![2.39, 1.5, 0.0, 0.0], vec![0.0; 4]]),
        )
        .expect("state shape");
        let out = env
            .step(Tensor::zeros([2, 1], &Default::default()))
            .expect("action shape");
        assert_eq!(bools(out.terminated), vec![true, false]);
        let fin = floats(env.final_state());
        let state = floats(env.state());
        assert!((fin[0] - 2.42).abs() < 1e-5, "{fin:?}");
        assert!(state[0].abs() <= 0.05, "env 0 was reset: {state:?}");
        assert_eq!(fin[4..], state[4..]);
        let final_obs = floats(out.final_observations.get("policy").expect("policy"));
        assert_eq!(final_obs, fin);
    }

    #[test]
    fn loading_a_snapshot_that_does_not_fit_is_an_error() {
        let device = Default::default();
        let classic = crate::classic_tasks();
        for &task in &classic {
            let other = classic.iter().find(|&&t| t != task).expect("several tasks");
            let mut env = make_classic::<B>(task, 3, 0, &device).expect("registered task");
            let good = env.save_state().expect("state reads back");
            let snapshot_of = |task: &str, n: usize| {
                make_classic::<B>(task, n, 1, &device)
                    .expect("registered task")
                    .save_state()
                    .expect("state reads back")
            };
            let k = env.state_names().len();
            let mut missing = good.clone();
            missing.tensors.remove("final_state");
            let mut no_rng = good.clone();
            no_rng.rngs.clear();
            let mut wide = good.clone();
            wide.tensors.insert(
                "state".into(),
                HostTensor {
                    shape: vec![3, k + 1],
                    data: vec![0.0; 3 * (k + 1)],
                },
            );
            let mut short = good.clone();
            short.tensors.get_mut("returns").expect("saved").data.pop();
            let mut rank = good.clone();
            rank.tensors.get_mut("lengths").expect("saved").shape = vec![3, 1];
            let mut streams = good.clone();
            streams.rngs.insert("reset".into(), EnvRng::new(0, 4));
            // (snapshot, a word the message must hold)
            let cases = [
                (snapshot_of(other, 3), format!("`{other}`")),
                (snapshot_of(task, 2), "2 environments".to_string()),
                (missing, "`final_state`".to_string()),
                (no_rng, "`reset`".to_string()),
                (wide, format!("[3, {}]", k + 1)),
                (short, "`returns`".to_string()),
                (rank, "`lengths`".to_string()),
                (streams, "got 4".to_string()),
            ];
            for (snapshot, word) in cases {
                let err = env.load_state(&snapshot).expect_err("does not fit");
                let msg = err.to_string();
                assert!(msg.contains(&word), "{task}: `{msg}` names {word}");
                assert_eq!(
                    env.save_state().expect("state reads back"),
                    good,
                    "{task}: a failed load changes nothing ({msg})"
                );
            }
            env.load_state(&good).expect("its own snapshot fits");
        }
    }
}
