//! Bookkeeping shared by the batched environments: state, episode counters, time limit and
//! auto-reset.

use std::collections::BTreeMap;

use burn::tensor::{Bool, Tensor, backend::Backend};
use rl_core::{EnvRng, EnvSpec, EpisodeInfo, Observations, StepOutput};

use crate::{Error, Result};

/// Implements [`rl_core::VecEnv`] for a task struct with a `core: EnvCore<B>` field and the
/// associated functions `dynamics(state, actions)` and `observe(state)`: the trait's methods
/// are the same for every classic task, only those two functions differ.
macro_rules! impl_vec_env {
    ($env:ident) => {
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
                let transition = Self::dynamics(self.core.state.clone(), actions)?;
                Ok(self.core.finish_step(transition, Self::observe))
            }

            fn reset(&mut self) -> rl_core::Observations<B> {
                self.core.reset();
                rl_core::VecEnv::observations(self)
            }
        }
    };
}
pub(crate) use impl_vec_env;

/// Name of the observation group every task provides.
pub(crate) const POLICY: &str = "policy";

/// One step of a task's dynamics, before time limits and auto-reset.
#[derive(Debug, Clone)]
pub struct Transition<B: Backend> {
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

/// The column `j` of a `[N, K]` tensor, as `[N]`.
pub(crate) fn column<B: Backend>(t: &Tensor<B, 2>, j: usize) -> Tensor<B, 1> {
    t.clone().narrow(1, j, 1).squeeze_dim::<1>(1)
}

/// The state, random streams and episode counters of a batch of `N` environments; the
/// task-specific part (dynamics, observations) lives in each environment's file.
#[derive(Debug)]
pub(crate) struct EnvCore<B: Backend> {
    pub(crate) spec: EnvSpec,
    pub(crate) device: B::Device,
    /// Physical state of every environment, `[N, K]`.
    pub(crate) state: Tensor<B, 2>,
    /// One reset-noise stream per environment.
    rng: EnvRng,
    /// Reset state `k` is drawn from `U(reset_low[k], reset_high[k])`.
    reset_low: &'static [f32],
    reset_high: &'static [f32],
    /// Undiscounted return of the running episodes, `[N]`.
    returns: Tensor<B, 1>,
    /// Steps taken in the running episodes, `[N]` (as f32).
    lengths: Tensor<B, 1>,
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
            state,
            rng,
            reset_low,
            reset_high,
            returns: Tensor::zeros([n], device),
            lengths: Tensor::zeros([n], device),
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
        self.returns = Tensor::zeros([n], &self.device);
        self.lengths = Tensor::zeros([n], &self.device);
    }

    /// Replaces the state of every environment (`[N, K]`); episode counters are kept.
    pub(crate) fn set_state(&mut self, state: Tensor<B, 2>) -> Result<()> {
        check_shape(
            "state",
            state.dims(),
            [self.spec.num_envs, self.state_dim()],
        )?;
        self.state = state.to_device(&self.device);
        Ok(())
    }

    /// Accepts the result of one step of the dynamics: counts it into the episodes,
    /// applies the time limit, resets the finished environments and builds the step's
    /// output. `observe` maps a state `[N, K]` to the policy observation `[N, D]`.
    pub(crate) fn finish_step(
        &mut self,
        transition: Transition<B>,
        observe: impl Fn(Tensor<B, 2>) -> Tensor<B, 2>,
    ) -> StepOutput<B> {
        let Transition {
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

/// Observation groups of a task whose only group is `policy`.
pub(crate) fn policy_obs<B: Backend>(obs: Tensor<B, 2>) -> Observations<B> {
    Observations::new().with(POLICY, obs)
}
