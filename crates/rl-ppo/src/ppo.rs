//! Proximal Policy Optimization (rsl_rl 5.x's update, read top to bottom).

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use rl_core::{Algorithm, EnvSpec, HostRng, Observations, StepOutput, UpdateStats};
use rl_modules::{DiagGaussian, EmpiricalNormalizer, NormalizerState};
use rl_storage::{MiniBatchSchedule, Rollout, RolloutStorage, Transition};
use serde::{Deserialize, Serialize};

use crate::config::{GradNormClip, LearningRateSchedule, PolicyConfig, PpoConfig, TimeoutBootstrap};
use crate::networks::ActorCritic;
use crate::Error;

type Inner<B> = <B as AutodiffBackend>::InnerBackend;
type PpoOptimizer<B> = OptimizerAdaptor<Adam, ActorCritic<B>, B>;

/// What `act` computed, kept until the environment's answer arrives.
struct PendingStep<B: Backend> {
    observations: Tensor<B, 2>,
    critic_observations: Option<Tensor<B, 2>>,
    actions: Tensor<B, 2>,
    values: Tensor<B, 1>,
    actions_log_prob: Tensor<B, 1>,
    action_mean: Tensor<B, 2>,
    action_std: Tensor<B, 2>,
}

/// Everything [`Ppo::save_state`] stores.
#[derive(Serialize, Deserialize)]
struct PpoState {
    model: Vec<u8>,
    optimizer: Vec<u8>,
    learning_rate: f64,
    iteration: usize,
    rng: HostRng,
    actor_normalizer: Option<NormalizerState>,
    critic_normalizer: Option<NormalizerState>,
}

/// PPO with an MLP actor-critic, generic over an autodiff backend `B`.
pub struct Ppo<B: AutodiffBackend> {
    cfg: PpoConfig,
    policy_cfg: PolicyConfig,
    /// The trained model (autodiff backend).
    model: ActorCritic<B>,
    /// The same weights on the inner backend, for rollouts; refreshed after each update.
    inference: ActorCritic<Inner<B>>,
    optimizer: PpoOptimizer<B>,
    learning_rate: f64,
    storage: RolloutStorage<Inner<B>>,
    rollout: Option<Rollout<Inner<B>>>,
    pending: Option<PendingStep<Inner<B>>>,
    actor_normalizer: Option<EmpiricalNormalizer<Inner<B>>>,
    critic_normalizer: Option<EmpiricalNormalizer<Inner<B>>>,
    rng: HostRng,
    iteration: usize,
    separate_critic_input: bool,
    device: B::Device,
}

impl<B: AutodiffBackend> Ppo<B> {
    /// Builds PPO for environments described by `spec`, storing `num_steps_per_env` steps.
    ///
    /// That `num_mini_batches` divides the batch is checked by the update (and by the
    /// runner's config validation), so that evaluation can use any number of environments.
    pub fn new(
        cfg: PpoConfig,
        policy_cfg: PolicyConfig,
        spec: &EnvSpec,
        num_steps_per_env: usize,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self, Error> {
        cfg.validate()?;
        policy_cfg.validate()?;
        let actor_input = spec.obs_dim(&policy_cfg.obs_groups.policy)?;
        let critic_input = spec.obs_dim(&policy_cfg.obs_groups.critic)?;
        let num_actions = spec.num_actions();
        let mut model = ActorCritic::<B>::new(&policy_cfg, actor_input, critic_input, num_actions, device);
        if let Some(std) = policy_cfg.scheduled_std(0) {
            model = model.set_std(std);
        }
        // Adam as in PyTorch: beta1 0.9, beta2 0.999, eps 1e-8 (Burn's default eps is 1e-5).
        let optimizer = AdamConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .init::<B, ActorCritic<B>>();
        let inner_device = device.clone();
        let actor_normalizer = policy_cfg
            .actor_obs_normalization
            .then(|| EmpiricalNormalizer::new(actor_input, None, &inner_device));
        let critic_normalizer = policy_cfg
            .critic_obs_normalization
            .then(|| EmpiricalNormalizer::new(critic_input, None, &inner_device));
        Ok(Self {
            learning_rate: cfg.learning_rate,
            separate_critic_input: policy_cfg.obs_groups.critic != policy_cfg.obs_groups.policy
                || policy_cfg.critic_obs_normalization != policy_cfg.actor_obs_normalization,
            inference: model.valid(),
            model,
            optimizer,
            storage: RolloutStorage::new(spec.num_envs, num_steps_per_env),
            rollout: None,
            pending: None,
            actor_normalizer,
            critic_normalizer,
            rng: HostRng::new(seed),
            iteration: 0,
            device: device.clone(),
            cfg,
            policy_cfg,
        })
    }

    /// The trained actor-critic.
    pub fn model(&self) -> &ActorCritic<B> {
        &self.model
    }

    /// The PPO hyperparameters.
    pub fn config(&self) -> &PpoConfig {
        &self.cfg
    }

    /// Actor input (raw) from the observation groups, `[N, D_actor]`.
    fn actor_input(&self, obs: &Observations<Inner<B>>) -> Result<Tensor<Inner<B>, 2>, Error> {
        Ok(obs.concat(&self.policy_cfg.obs_groups.policy)?)
    }

    /// Critic input (raw) from the observation groups, `[N, D_critic]`.
    fn critic_input(&self, obs: &Observations<Inner<B>>) -> Result<Tensor<Inner<B>, 2>, Error> {
        Ok(obs.concat(&self.policy_cfg.obs_groups.critic)?)
    }

    fn normalize_actor(&self, x: Tensor<Inner<B>, 2>) -> Tensor<Inner<B>, 2> {
        match &self.actor_normalizer {
            Some(n) => n.normalize(x),
            None => x,
        }
    }

    fn normalize_critic(&self, x: Tensor<Inner<B>, 2>) -> Tensor<Inner<B>, 2> {
        match &self.critic_normalizer {
            Some(n) => n.normalize(x),
            None => x,
        }
    }

    /// Critic values of observation groups on the inference model, `[N]`.
    fn values_of(&self, obs: &Observations<Inner<B>>) -> Result<Tensor<Inner<B>, 1>, Error> {
        let x = self.normalize_critic(self.critic_input(obs)?);
        Ok(self.inference.value(x))
    }

    /// Adapts the learning rate to the KL between the rollout policy and the current one.
    fn adapt_learning_rate(&mut self, kl_mean: f64) {
        let desired = self.cfg.desired_kl;
        if kl_mean > 2.0 * desired {
            self.learning_rate = (self.learning_rate / 1.5).max(self.cfg.min_learning_rate);
        } else if kl_mean < desired / 2.0 && kl_mean > 0.0 {
            self.learning_rate = (self.learning_rate * 1.5).min(self.cfg.max_learning_rate);
        }
    }

    /// One PPO loss on a mini-batch; returns `(loss, surrogate, value, entropy, kl)` as
    /// one-element tensors.
    fn losses(
        &self,
        mb: &rl_storage::MiniBatch<Inner<B>>,
    ) -> (Tensor<B, 1>, [Tensor<Inner<B>, 1>; 3], Tensor<Inner<B>, 1>) {
        let cfg = &self.cfg;
        let obs = Tensor::<B, 2>::from_inner(mb.observations.clone());
        let critic_obs = Tensor::<B, 2>::from_inner(
            mb.critic_observations
                .clone()
                .unwrap_or_else(|| mb.observations.clone()),
        );
        let actions = Tensor::<B, 2>::from_inner(mb.actions.clone());
        let old_log_prob = Tensor::<B, 1>::from_inner(mb.actions_log_prob.clone());
        let old_values = Tensor::<B, 1>::from_inner(mb.values.clone());
        let returns = Tensor::<B, 1>::from_inner(mb.returns.clone());
        let mut advantages = mb.advantages.clone();
        if cfg.normalize_advantage_per_mini_batch {
            advantages = rl_storage::normalize(advantages);
        }
        let advantages = Tensor::<B, 1>::from_inner(advantages);

        // Evaluate the current policy and critic on the mini-batch
        let dist = self.model.distribution(obs);
        let log_prob = dist.log_prob(actions); // [M]
        let entropy = dist.entropy(); // [M]
        let values = self.model.value(critic_obs); // [M]

        // KL(old || new) of the diagonal Gaussians, for the adaptive learning rate
        let old = DiagGaussian::new(mb.action_mean.clone(), mb.action_std.clone());
        let new = DiagGaussian::new(dist.mean.clone().inner(), dist.std.clone().inner());
        let kl = DiagGaussian::kl(&old, &new).mean();

        // Clipped surrogate loss
        let ratio = (log_prob - old_log_prob).exp();
        let surrogate = -advantages.clone() * ratio.clone();
        let surrogate_clipped =
            -advantages * ratio.clamp(1.0 - cfg.clip_param, 1.0 + cfg.clip_param);
        let surrogate_loss = surrogate.max_pair(surrogate_clipped).mean();

        // Value loss, clipped around the rollout's values
        let value_loss = if cfg.use_clipped_value_loss {
            let clipped = old_values.clone()
                + (values.clone() - old_values).clamp(-cfg.clip_param, cfg.clip_param);
            let unclipped_sq = (values - returns.clone()).powi_scalar(2);
            let clipped_sq = (clipped - returns).powi_scalar(2);
            unclipped_sq.max_pair(clipped_sq).mean()
        } else {
            (returns - values).powi_scalar(2).mean()
        };

        // Total loss with the entropy bonus
        let entropy_mean = entropy.mean();
        let loss = surrogate_loss.clone() + value_loss.clone() * cfg.value_loss_coef
            - entropy_mean.clone() * cfg.entropy_coef;
        (
            loss,
            [surrogate_loss.inner(), value_loss.inner(), entropy_mean.inner()],
            kl,
        )
    }

    /// Clips gradients by L2 norm: actor (with its std) and critic separately, or globally.
    fn clip_gradients(&self, grads: &mut GradientsParams) {
        let max_norm = self.cfg.max_grad_norm;
        match self.cfg.grad_norm_clip {
            GradNormClip::Separate => {
                let mut actor = SquaredNorm::new(grads);
                self.model.actor.visit(&mut actor);
                actor.visit_float(&self.model.std);
                let actor = actor.total;
                let mut critic = SquaredNorm::new(grads);
                self.model.critic.visit(&mut critic);
                let critic = critic.total;
                if let Some(total) = actor {
                    let mut scale = ScaleGrads::new(grads, clip_coefficient(total, max_norm));
                    self.model.actor.visit(&mut scale);
                    scale.visit_float(&self.model.std);
                }
                if let Some(total) = critic {
                    let mut scale = ScaleGrads::new(grads, clip_coefficient(total, max_norm));
                    self.model.critic.visit(&mut scale);
                }
            }
            GradNormClip::Global => {
                let mut all = SquaredNorm::new(grads);
                self.model.visit(&mut all);
                if let Some(total) = all.total {
                    let mut scale = ScaleGrads::new(grads, clip_coefficient(total, max_norm));
                    self.model.visit(&mut scale);
                }
            }
        }
    }
}

/// `min(1, max_norm / (sqrt(sum of squares) + 1e-6))`, as `torch.nn.utils.clip_grad_norm_`,
/// computed on the device, `[1]`.
pub fn clip_coefficient<B: Backend>(sum_of_squares: Tensor<B, 1>, max_norm: f32) -> Tensor<B, 1> {
    (sum_of_squares.sqrt() + 1e-6)
        .recip()
        .mul_scalar(max_norm)
        .clamp_max(1.0)
}

/// Sums the squares of the gradients of the visited parameters.
struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<Inner<B>, 1>>,
}

impl<'a, B: AutodiffBackend> SquaredNorm<'a, B> {
    fn new(grads: &'a GradientsParams) -> Self {
        Self { grads, total: None }
    }
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<Inner<B>, D>(param.id) {
            let s = g.powi_scalar(2).sum(); // [1]
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

/// Multiplies the gradients of the visited parameters by a `[1]` coefficient.
struct ScaleGrads<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    coefficient: Tensor<Inner<B>, 1>,
}

impl<'a, B: AutodiffBackend> ScaleGrads<'a, B> {
    fn new(grads: &'a mut GradientsParams, coefficient: Tensor<Inner<B>, 1>) -> Self {
        Self { grads, coefficient }
    }
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ScaleGrads<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<Inner<B>, D>(param.id) {
            let c = self.coefficient.clone().reshape([1; D]);
            self.grads.register(param.id, g * c);
        }
    }
}

impl<B: AutodiffBackend> Algorithm<B> for Ppo<B> {
    type Error = Error;

    fn act(&mut self, obs: &Observations<Inner<B>>) -> Result<Tensor<Inner<B>, 2>, Error> {
        let raw = self.actor_input(obs)?;
        if let Some(n) = &mut self.actor_normalizer {
            n.update(raw.clone());
        }
        let critic_raw = if self.separate_critic_input {
            let c = self.critic_input(obs)?;
            if let Some(n) = &mut self.critic_normalizer {
                n.update(c.clone());
            }
            Some(c)
        } else {
            None
        };
        // Sample actions from the Gaussian policy
        let dist = self.inference.distribution(self.normalize_actor(raw.clone()));
        let noise = self.rng.normal::<Inner<B>>(dist.mean.dims(), &self.device);
        let actions = dist.sample(noise); // [N, A]
        let actions_log_prob = dist.log_prob(actions.clone()); // [N]
        // Critic value of the observation before the step
        let critic_x = match &critic_raw {
            Some(c) => self.normalize_critic(c.clone()),
            None => self.normalize_actor(raw.clone()),
        };
        let values = self.inference.value(critic_x); // [N]
        self.pending = Some(PendingStep {
            observations: raw,
            critic_observations: critic_raw,
            actions: actions.clone(),
            values,
            actions_log_prob,
            action_mean: dist.mean,
            action_std: dist.std,
        });
        Ok(actions)
    }

    fn process_env_step(&mut self, step: &StepOutput<Inner<B>>) -> Result<(), Error> {
        let pending = self.pending.take().ok_or(Error::Protocol(
            "process_env_step called without a preceding act",
        ))?;
        let time_outs = step.time_outs.clone().float(); // [N]
        // Bootstrap on time-outs: the episode did not end, the time limit cut it
        let bootstrap = match self.cfg.timeout_bootstrap {
            TimeoutBootstrap::Value => pending.values.clone(),
            TimeoutBootstrap::FinalObservation => self.values_of(&step.final_observations)?,
        };
        let rewards = step.rewards.clone() + bootstrap * time_outs * self.cfg.gamma;
        self.storage.add(Transition {
            observations: pending.observations,
            critic_observations: pending.critic_observations,
            actions: pending.actions,
            rewards,
            dones: step.dones().float(),
            values: pending.values,
            actions_log_prob: pending.actions_log_prob,
            action_mean: pending.action_mean,
            action_std: pending.action_std,
        })?;
        Ok(())
    }

    fn compute_returns(&mut self, last_obs: &Observations<Inner<B>>) -> Result<(), Error> {
        let last_values = self.values_of(last_obs)?;
        let mut rollout = self.storage.finish(last_values, self.cfg.gamma, self.cfg.lam)?;
        if !self.cfg.normalize_advantage_per_mini_batch {
            rollout.normalize_advantages();
        }
        self.rollout = Some(rollout);
        Ok(())
    }

    fn update(&mut self) -> Result<UpdateStats, Error> {
        let mut rollout = self
            .rollout
            .take()
            .ok_or(Error::Protocol("update called before compute_returns"))?;
        // The normalisers are frozen during the update: normalise the whole rollout once
        let [t, n, _] = rollout.observations.dims();
        if let Some(norm) = &self.actor_normalizer {
            let [_, _, d] = rollout.observations.dims();
            let flat = rollout.observations.clone().reshape([t * n, d]);
            rollout.observations = norm.normalize(flat).reshape([t, n, d]);
        }
        match (&self.critic_normalizer, rollout.critic_observations.clone()) {
            (Some(norm), Some(c)) => {
                let [_, _, d] = c.dims();
                rollout.critic_observations = Some(norm.normalize(c.reshape([t * n, d])).reshape([t, n, d]));
            }
            (None, _) | (_, None) => {}
        }

        let schedule = MiniBatchSchedule::new(
            rollout.batch_size(),
            self.cfg.num_mini_batches,
            self.cfg.num_learning_epochs,
            self.cfg.shuffle,
            &mut self.rng,
        )?;
        let inner_device = self.device.clone();
        let mut sums: Option<[Tensor<Inner<B>, 1>; 3]> = None;
        for indices in &schedule.batches {
            let ids: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
            let idx = Tensor::<Inner<B>, 1, Int>::from_data(TensorData::new(ids, [indices.len()]), &inner_device);
            let mb = rollout.mini_batch(idx);

            let (loss, parts, kl) = self.losses(&mb);

            // Adaptive learning rate from KL(old || new), before this mini-batch's step
            if self.cfg.schedule == LearningRateSchedule::Adaptive {
                let kl_mean = kl.into_scalar().elem::<f64>();
                self.adapt_learning_rate(kl_mean);
            }

            // Gradient step with L2-norm clipping
            let grads = loss.backward();
            let mut grads = GradientsParams::from_grads(grads, &self.model);
            self.clip_gradients(&mut grads);
            self.model = self.optimizer.step(self.learning_rate, self.model.clone(), grads);

            sums = Some(match sums.take() {
                None => parts,
                Some([a, b, c]) => {
                    let [x, y, z] = parts;
                    [a + x, b + y, c + z]
                }
            });
        }
        self.inference = self.model.valid();

        // One host read for every logged loss
        let count = schedule.batches.len() as f32;
        let [surrogate, value, entropy] =
            sums.ok_or(Error::Protocol("update ran no mini-batch"))?;
        let mean_std = self.inference.action_std_vector().mean();
        let packed = Tensor::cat(vec![surrogate.div_scalar(count), value.div_scalar(count), entropy.div_scalar(count), mean_std], 0);
        let values: Vec<f32> = packed
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| Error::Readback(format!("{e:?}")))?;
        let mut stats = UpdateStats::new();
        stats.insert("Loss/surrogate".into(), f64::from(values[0]));
        stats.insert("Loss/value".into(), f64::from(values[1]));
        stats.insert("Loss/entropy".into(), f64::from(values[2]));
        stats.insert("Loss/learning_rate".into(), self.learning_rate);
        stats.insert("Policy/mean_std".into(), f64::from(values[3]));
        Ok(stats)
    }

    fn act_inference(&self, obs: &Observations<Inner<B>>) -> Result<Tensor<Inner<B>, 2>, Error> {
        let x = self.normalize_actor(self.actor_input(obs)?);
        Ok(self.inference.action_mean(x))
    }

    fn set_iteration(&mut self, iteration: usize) {
        self.iteration = iteration;
        if let Some(std) = self.policy_cfg.scheduled_std(iteration) {
            self.model = self.model.clone().set_std(std);
            self.inference = self.model.valid();
        }
    }

    fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    fn save_state(&self) -> Result<Vec<u8>, Error> {
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
        let model = Recorder::<B>::record(&recorder, self.model.clone().into_record(), ())
            .map_err(|e| Error::Checkpoint(format!("cannot serialise the model: {e}")))?;
        let optimizer = Recorder::<B>::record(&recorder, self.optimizer.to_record(), ())
            .map_err(|e| Error::Checkpoint(format!("cannot serialise the optimizer: {e}")))?;
        let state = PpoState {
            model,
            optimizer,
            learning_rate: self.learning_rate,
            iteration: self.iteration,
            rng: self.rng.clone(),
            actor_normalizer: self.actor_normalizer.as_ref().map(|n| n.state()).transpose()?,
            critic_normalizer: self.critic_normalizer.as_ref().map(|n| n.state()).transpose()?,
        };
        rmp_serde::to_vec_named(&state)
            .map_err(|e| Error::Checkpoint(format!("cannot serialise the PPO state: {e}")))
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let state: PpoState = rmp_serde::from_slice(bytes)
            .map_err(|e| Error::Checkpoint(format!("the PPO state is unreadable: {e}")))?;
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
        let model_record = Recorder::<B>::load(&recorder, state.model, &self.device)
            .map_err(|e| Error::Checkpoint(format!("the model weights are unreadable: {e}")))?;
        let optimizer_record = Recorder::<B>::load(&recorder, state.optimizer, &self.device)
            .map_err(|e| Error::Checkpoint(format!("the optimizer state is unreadable: {e}")))?;
        self.model = self.model.clone().load_record(model_record);
        self.optimizer = self.optimizer.clone().load_record(optimizer_record);
        self.inference = self.model.valid();
        self.learning_rate = state.learning_rate;
        self.iteration = state.iteration;
        self.rng = state.rng;
        match (&mut self.actor_normalizer, &state.actor_normalizer) {
            (Some(n), Some(s)) => n.load_state(s)?,
            (None, None) => {}
            _ => return Err(Error::Checkpoint("the checkpoint's actor observation normalisation setting differs from the config".into())),
        }
        match (&mut self.critic_normalizer, &state.critic_normalizer) {
            (Some(n), Some(s)) => n.load_state(s)?,
            (None, None) => {}
            _ => return Err(Error::Checkpoint("the checkpoint's critic observation normalisation setting differs from the config".into())),
        }
        Ok(())
    }
}
