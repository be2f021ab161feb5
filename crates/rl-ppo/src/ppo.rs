//! Proximal Policy Optimization (rsl_rl 5.x's update, read top to bottom).

use std::sync::{Mutex, PoisonError};

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use rl_core::{Algorithm, EnvSpec, HostRng, Observations, StepOutput, UpdateStats};
use rl_modules::{EmpiricalNormalizer, NormalizerState};
use rl_storage::{MiniBatchSchedule, Rollout, RolloutStorage, Transition};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::config::{
    GradNormClip, LearningRateSchedule, PolicyConfig, PpoConfig, TimeoutBootstrap,
};
use crate::networks::ActorCritic;

type Inner<B> = <B as AutodiffBackend>::InnerBackend;
type PpoOptimizer<B> = OptimizerAdaptor<Adam, ActorCritic<B>, B>;

/// What `act` computed, kept until the environment's answer arrives.
struct PendingStep<B: Backend> {
    observations: Tensor<B, 2>,
    critic_observations: Option<Tensor<B, 2>>,
    actions: Tensor<B, 2>,
    values: Tensor<B, 1>,
    actions_log_prob: Tensor<B, 1>,
    dist_params: Tensor<B, 2>,
}

/// The loss of one mini-batch (`[1]`, with gradients) and its parts for logging (`[1]`
/// each: surrogate, value, entropy), plus the mean KL(old || new) for the adaptive rate.
struct MiniBatchLosses<B: AutodiffBackend> {
    loss: Tensor<B, 1>,
    parts: [Tensor<Inner<B>, 1>; 3],
    kl: Tensor<Inner<B>, 1>,
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
        if let Some(half) = policy_cfg.precision.half() {
            let dtype = burn::tensor::DType::from(half);
            if !B::supports_dtype(device, dtype) {
                return Err(Error::Config {
                    field: "policy.precision".into(),
                    message: format!(
                        "this backend does not support {} (use `f32`, or a backend with \
                         half-precision support such as cuda, wgpu or flex)",
                        policy_cfg.precision
                    ),
                });
            }
        }
        let actor_input = spec.obs_dim(&policy_cfg.obs_groups.policy)?;
        let critic_input = spec.obs_dim(&policy_cfg.obs_groups.critic)?;
        // Weight initialisation draws from the backend's process-wide generator: seed it so
        // that the same seed gives the same network. Burn initialises parameters lazily, on
        // first use, so the draws are made here, under a lock: runs built on parallel threads
        // of one process (a sweep, a test binary) must not draw from each other's seeds.
        let mut model = {
            let _guard = INIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
            B::seed(device, seed);
            let model = ActorCritic::<B>::new(
                &policy_cfg,
                actor_input,
                critic_input,
                &spec.action_space,
                device,
            );
            model.visit(&mut Materialize);
            model
        };
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
        // When the critic sees the same groups with the same normalisation, it shares the
        // actor's input (and normaliser); otherwise it has its own.
        let separate_critic_input = policy_cfg.obs_groups.critic != policy_cfg.obs_groups.policy
            || policy_cfg.critic_obs_normalization != policy_cfg.actor_obs_normalization;
        let critic_normalizer = (separate_critic_input && policy_cfg.critic_obs_normalization)
            .then(|| EmpiricalNormalizer::new(critic_input, None, &inner_device));
        Ok(Self {
            learning_rate: cfg.learning_rate,
            separate_critic_input,
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

    /// Rewards of the last stored step (tests).
    #[cfg(test)]
    fn storage_rewards(&self) -> Tensor<Inner<B>, 1> {
        self.storage.last_rewards().expect("a stored step")
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

    /// Critic values of observation groups on the inference model, `[N]`: the critic's own
    /// (normalised) input, or the actor's when they share it.
    fn values_of(&self, obs: &Observations<Inner<B>>) -> Result<Tensor<Inner<B>, 1>, Error> {
        let x = if self.separate_critic_input {
            self.normalize_critic(self.critic_input(obs)?)
        } else {
            self.normalize_actor(self.actor_input(obs)?)
        };
        Ok(self.inference.value(x))
    }

    /// The PPO loss of a mini-batch and its parts.
    fn losses(&self, mb: &rl_storage::MiniBatch<Inner<B>>) -> MiniBatchLosses<B> {
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

        // KL(old || new) of the action distributions, for the adaptive learning rate
        let kl = dist.inner().kl_from(mb.dist_params.clone()).mean();

        // Clipped surrogate loss
        let surrogate_loss = surrogate_loss(log_prob, old_log_prob, advantages, cfg.clip_param);

        // Value loss, clipped around the rollout's values
        let value_loss = value_loss(
            values,
            old_values,
            returns,
            cfg.use_clipped_value_loss.then_some(cfg.clip_param),
        );

        // Total loss with the entropy bonus
        let entropy_mean = entropy.mean();
        let loss = surrogate_loss.clone() + value_loss.clone() * cfg.value_loss_coef
            - entropy_mean.clone() * cfg.entropy_coef;
        MiniBatchLosses {
            loss,
            parts: [
                surrogate_loss.inner(),
                value_loss.inner(),
                entropy_mean.inner(),
            ],
            kl,
        }
    }

    /// Clips gradients by L2 norm: actor (with its std) and critic separately, or globally.
    fn clip_gradients(&self, grads: &mut GradientsParams) {
        let max_norm = self.cfg.max_grad_norm;
        match self.cfg.grad_norm_clip {
            GradNormClip::Separate => {
                let mut actor = SquaredNorm::new(grads);
                self.model.visit_actor(&mut actor);
                let actor = actor.total;
                let mut critic = SquaredNorm::new(grads);
                self.model.critic.visit(&mut critic);
                let critic = critic.total;
                if let Some(total) = actor {
                    let mut scale = ScaleGrads::new(grads, clip_coefficient(total, max_norm));
                    self.model.visit_actor(&mut scale);
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

/// PPO's clipped surrogate loss, `[1]`:
/// `mean(max(-A rho, -A clip(rho, 1 - clip, 1 + clip)))` with `rho = exp(logp - logp_old)`.
pub fn surrogate_loss<B: Backend>(
    log_prob: Tensor<B, 1>,
    old_log_prob: Tensor<B, 1>,
    advantages: Tensor<B, 1>,
    clip: f32,
) -> Tensor<B, 1> {
    let ratio = (log_prob - old_log_prob).exp();
    let surrogate = -advantages.clone() * ratio.clone();
    let surrogate_clipped = -advantages * ratio.clamp(1.0 - clip, 1.0 + clip);
    surrogate.max_pair(surrogate_clipped).mean()
}

/// The value loss, `[1]`: with `clip = Some(c)`,
/// `mean(max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2))`; otherwise `mean((V - R)^2)`.
pub fn value_loss<B: Backend>(
    values: Tensor<B, 1>,
    old_values: Tensor<B, 1>,
    returns: Tensor<B, 1>,
    clip: Option<f32>,
) -> Tensor<B, 1> {
    match clip {
        Some(c) => {
            let clipped = old_values.clone() + (values.clone() - old_values).clamp(-c, c);
            let unclipped_sq = (values - returns.clone()).powi_scalar(2);
            let clipped_sq = (clipped - returns).powi_scalar(2);
            unclipped_sq.max_pair(clipped_sq).mean()
        }
        None => (returns - values).powi_scalar(2).mean(),
    }
}

/// rsl_rl's KL-adaptive rule: divide by 1.5 when `kl > 2 desired_kl`, multiply by 1.5 when
/// `0 < kl < desired_kl / 2`, within `[min_learning_rate, max_learning_rate]`.
pub fn adapt_learning_rate(learning_rate: f64, kl: f64, cfg: &PpoConfig) -> f64 {
    let desired = cfg.desired_kl;
    if kl > 2.0 * desired {
        (learning_rate / 1.5).max(cfg.min_learning_rate)
    } else if kl < desired / 2.0 && kl > 0.0 {
        (learning_rate * 1.5).min(cfg.max_learning_rate)
    } else {
        learning_rate
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

/// Held while a network is seeded and its weights drawn (see [`Ppo::new`]).
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Draws the weights of lazily initialised parameters now, in visiting order.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// The shapes of a module's float parameters, in visiting order.
fn parameter_shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.val().dims().to_vec());
        }
    }
    let mut shapes = Shapes(Vec::new());
    module.visit(&mut shapes);
    shapes.0
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
        // Sample actions from the policy (Gaussian, or categorical for discrete actions)
        let actor_x = self.normalize_actor(raw.clone());
        let dist = self.inference.distribution(actor_x.clone());
        let actions = dist.sample(&mut self.rng); // [N, A]
        let actions_log_prob = dist.log_prob(actions.clone()); // [N]
        // Critic value of the observation before the step
        let critic_x = match &critic_raw {
            Some(c) => self.normalize_critic(c.clone()),
            None => actor_x,
        };
        let values = self.inference.value(critic_x); // [N]
        self.pending = Some(PendingStep {
            observations: raw,
            critic_observations: critic_raw,
            actions: actions.clone(),
            values,
            actions_log_prob,
            dist_params: dist.params(),
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
            dist_params: pending.dist_params,
        })?;
        Ok(())
    }

    fn compute_returns(&mut self, last_obs: &Observations<Inner<B>>) -> Result<(), Error> {
        let last_values = self.values_of(last_obs)?;
        let mut rollout = self
            .storage
            .finish(last_values, self.cfg.gamma, self.cfg.lam)?;
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
        if let (Some(norm), Some(c)) =
            (&self.critic_normalizer, rollout.critic_observations.clone())
        {
            let [_, _, d] = c.dims();
            rollout.critic_observations =
                Some(norm.normalize(c.reshape([t * n, d])).reshape([t, n, d]));
        }

        // Non-finite distribution parameters in the rollout (checked with the losses below,
        // in the update's single read-back)
        let [_, _, p] = rollout.dist_params.dims();
        let bad_dist_params = rollout
            .dist_params
            .clone()
            .reshape([t * n * p])
            .is_finite()
            .bool_not()
            .float()
            .sum(); // [1]

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
            let idx = Tensor::<Inner<B>, 1, Int>::from_data(
                TensorData::new(ids, [indices.len()]),
                &inner_device,
            );
            let mb = rollout.mini_batch(idx);

            let MiniBatchLosses { loss, parts, kl } = self.losses(&mb);

            // Adaptive learning rate from KL(old || new), before this mini-batch's step
            if self.cfg.schedule == LearningRateSchedule::Adaptive {
                let kl_mean = kl.into_scalar().elem::<f64>();
                self.learning_rate = adapt_learning_rate(self.learning_rate, kl_mean, &self.cfg);
            }

            // Gradient step with L2-norm clipping
            let grads = loss.backward();
            let mut grads = GradientsParams::from_grads(grads, &self.model);
            self.clip_gradients(&mut grads);
            self.model = self
                .optimizer
                .step(self.learning_rate, self.model.clone(), grads);

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
        let mut parts = vec![
            bad_dist_params,
            surrogate.div_scalar(count),
            value.div_scalar(count),
            entropy.div_scalar(count),
        ];
        // Continuous actions only: the mean action std
        parts.extend(self.inference.action_std_vector().map(|std| std.mean()));
        let packed = Tensor::cat(parts, 0);
        let values: Vec<f32> = packed
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| Error::Readback(format!("{e:?}")))?;
        let non_finite = |quantity: &str| Error::NonFinite {
            iteration: self.iteration,
            quantity: quantity.to_string(),
        };
        if values[0] != 0.0 {
            return Err(non_finite(
                "the action distribution's parameters of the rollout (the policy's output)",
            ));
        }
        let mut stats = UpdateStats::new();
        for (tag, value) in ["Loss/surrogate", "Loss/value", "Loss/entropy"]
            .into_iter()
            .zip(&values[1..4])
        {
            if !value.is_finite() {
                return Err(non_finite(tag));
            }
            stats.insert(tag.into(), f64::from(*value));
        }
        stats.insert("Loss/learning_rate".into(), self.learning_rate);
        if let Some(&mean_std) = values.get(4) {
            if !mean_std.is_finite() {
                return Err(non_finite("Policy/mean_std"));
            }
            stats.insert("Policy/mean_std".into(), f64::from(mean_std));
        }
        Ok(stats)
    }

    fn act_inference(&self, obs: &Observations<Inner<B>>) -> Result<Tensor<Inner<B>, 2>, Error> {
        let x = self.normalize_actor(self.actor_input(obs)?);
        Ok(self.inference.action_mode(x))
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
            actor_normalizer: self
                .actor_normalizer
                .as_ref()
                .map(|n| n.state())
                .transpose()?,
            critic_normalizer: self
                .critic_normalizer
                .as_ref()
                .map(|n| n.state())
                .transpose()?,
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
        let expected = parameter_shapes(&self.model);
        let model = self.model.clone().load_record(model_record);
        let found = parameter_shapes(&model);
        if found != expected {
            return Err(Error::Checkpoint(format!(
                "the checkpoint's network does not match the config's: parameter shapes {found:?}, expected {expected:?}"
            )));
        }
        self.model = model;
        self.optimizer = self.optimizer.clone().load_record(optimizer_record);
        self.inference = self.model.valid();
        self.learning_rate = state.learning_rate;
        self.iteration = state.iteration;
        self.rng = state.rng;
        match (&mut self.actor_normalizer, &state.actor_normalizer) {
            (Some(n), Some(s)) => n.load_state(s)?,
            (None, None) => {}
            _ => return Err(Error::Checkpoint(
                "the checkpoint's actor observation normalisation setting differs from the config"
                    .into(),
            )),
        }
        match (&mut self.critic_normalizer, &state.critic_normalizer) {
            (Some(n), Some(s)) => n.load_state(s)?,
            (None, None) => {}
            _ => return Err(Error::Checkpoint(
                "the checkpoint's critic observation normalisation setting differs from the config"
                    .into(),
            )),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use rl_core::ActionSpace;
    use std::collections::BTreeMap;

    type B = Autodiff<NdArray>;
    type I = NdArray;

    fn t1(v: &[f32]) -> Tensor<I, 1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
    }
    fn scalar(t: Tensor<I, 1>) -> f64 {
        t.into_scalar().elem::<f64>()
    }

    #[test]
    fn surrogate_loss_matches_hand_computation() {
        let (lp, old, adv, clip) = (
            [0.1_f64, -0.2, 0.5],
            [0.0_f64; 3],
            [1.0_f64, -2.0, 0.5],
            0.2,
        );
        // Per sample: max(-A r, -A clip(r))
        let mut want = 0.0;
        for i in 0..3 {
            let r = (lp[i] - old[i]).exp();
            let rc = r.clamp(1.0 - clip, 1.0 + clip);
            want += (-adv[i] * r).max(-adv[i] * rc) / 3.0;
        }
        // By hand: ratios 1.10517, 0.81873, 1.64872 -> terms -1.10517, 1.63746, -0.6
        assert!((want - (-1.105_171 + 1.637_462 - 0.6) / 3.0).abs() < 1e-5);
        let got = scalar(surrogate_loss(
            t1(&[0.1, -0.2, 0.5]),
            t1(&[0.0; 3]),
            t1(&[1.0, -2.0, 0.5]),
            0.2,
        ));
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn value_loss_clipped_and_unclipped() {
        let v = || t1(&[1.0, 2.0, 0.5]);
        let old = || t1(&[0.5, 2.5, 0.5]);
        let ret = || t1(&[2.0, 1.0, 0.0]);
        // clipped: max(1, 1.69), max(1, 1.69), max(0.25, 0.25)
        let clipped = scalar(value_loss(v(), old(), ret(), Some(0.2)));
        assert!(
            (clipped - (1.69 + 1.69 + 0.25) / 3.0).abs() < 1e-6,
            "{clipped}"
        );
        let plain = scalar(value_loss(v(), old(), ret(), None));
        assert!((plain - 0.75).abs() < 1e-6, "{plain}");
    }

    #[test]
    fn adaptive_learning_rate_rule() {
        let cfg = PpoConfig::default(); // desired_kl 0.01, bounds [1e-5, 1e-2]
        assert!((adapt_learning_rate(1e-3, 0.05, &cfg) - 1e-3 / 1.5).abs() < 1e-12);
        assert!((adapt_learning_rate(1e-3, 0.001, &cfg) - 1.5e-3).abs() < 1e-12);
        assert_eq!(adapt_learning_rate(1e-3, 0.01, &cfg), 1e-3);
        assert_eq!(adapt_learning_rate(1e-3, 0.0, &cfg), 1e-3);
        assert_eq!(adapt_learning_rate(1e-5, 1.0, &cfg), 1e-5);
        assert_eq!(adapt_learning_rate(9e-3, 1e-4, &cfg), 1e-2);
    }

    #[test]
    fn clip_coefficient_follows_clip_grad_norm() {
        let c = scalar(clip_coefficient(t1(&[16.0]), 1.0));
        assert!((c - 1.0 / (4.0 + 1e-6)).abs() < 1e-6);
        let c = scalar(clip_coefficient(t1(&[0.25]), 1.0));
        assert_eq!(c, 1.0);
    }

    fn spec(num_envs: usize) -> EnvSpec {
        EnvSpec {
            task: "test".into(),
            num_envs,
            obs_groups: BTreeMap::from([("policy".to_string(), 3)]),
            action_space: ActionSpace::Box {
                low: vec![-1.0; 2],
                high: vec![1.0; 2],
            },
            max_episode_length: 10,
            step_dt: 0.1,
        }
    }

    fn small_ppo(cfg: PpoConfig) -> Ppo<B> {
        let policy = PolicyConfig {
            actor_hidden_dims: vec![16],
            critic_hidden_dims: vec![16],
            ..Default::default()
        };
        Ppo::new(cfg, policy, &spec(4), 3, 0, &Default::default()).expect("valid")
    }

    /// Every float parameter of a module, flattened in visiting order.
    fn parameter_values<M: Module<B>>(module: &M) -> Vec<Vec<f32>> {
        struct Values(Vec<Vec<f32>>);
        impl ModuleVisitor<B> for Values {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let data = param.val().into_data().convert::<f32>();
                self.0.push(data.to_vec().expect("f32"));
            }
        }
        let mut values = Values(Vec::new());
        module.visit(&mut values);
        values.0
    }

    #[test]
    fn the_seed_alone_decides_the_weights_on_any_thread() {
        let device = Default::default();
        let build = |seed| {
            let policy = PolicyConfig {
                actor_hidden_dims: vec![16],
                critic_hidden_dims: vec![16],
                ..Default::default()
            };
            Ppo::<B>::new(PpoConfig::default(), policy, &spec(4), 3, seed, &device).expect("valid")
        };
        let want = [
            parameter_values(&build(5).model),
            parameter_values(&build(6).model),
        ];
        assert_ne!(want[0], want[1]);
        // Networks built on parallel threads, as in a sweep or a test binary, seed and draw
        // from the same process-wide generator: each must still get its seed's weights.
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let (build, want) = (&build, &want);
                scope.spawn(move || {
                    for i in 0..25 {
                        let seed = (thread + i) % 2;
                        let got = parameter_values(&build(5 + seed as u64).model);
                        assert!(
                            got == want[seed],
                            "thread {thread}, network {i}: other weights"
                        );
                    }
                });
            }
        });
    }

    /// L2 norm of the gradients of a sub-module's parameters.
    fn norm_of(grads: &GradientsParams, visit: impl FnOnce(&mut SquaredNorm<'_, B>)) -> f64 {
        let mut v = SquaredNorm::new(grads);
        visit(&mut v);
        v.total.map(|t| scalar(t).sqrt()).unwrap_or(0.0)
    }

    #[test]
    fn gradients_are_clipped_separately_or_globally() {
        for mode in [GradNormClip::Separate, GradNormClip::Global] {
            let ppo = small_ppo(PpoConfig {
                grad_norm_clip: mode,
                max_grad_norm: 0.5,
                ..Default::default()
            });
            let x = Tensor::<B, 2>::ones([8, 3], &Default::default());
            // Large losses so that both norms exceed the limit
            let loss = ppo.model.action_mode(x.clone()).sum().mul_scalar(100.0)
                + ppo.model.value(x).sum().mul_scalar(300.0)
                + ppo
                    .model
                    .action_std_vector()
                    .expect("continuous actions")
                    .sum()
                    .mul_scalar(50.0);
            let mut grads = GradientsParams::from_grads(loss.backward(), &ppo.model);
            let actor_before = norm_of(&grads, |v| ppo.model.visit_actor(v));
            let critic_before = norm_of(&grads, |v| ppo.model.critic.visit(v));
            assert!(actor_before > 0.5 && critic_before > 0.5);
            ppo.clip_gradients(&mut grads);
            let actor = norm_of(&grads, |v| ppo.model.visit_actor(v));
            let critic = norm_of(&grads, |v| ppo.model.critic.visit(v));
            match mode {
                GradNormClip::Separate => {
                    assert!((actor - 0.5).abs() < 1e-4, "actor norm {actor}");
                    assert!((critic - 0.5).abs() < 1e-4, "critic norm {critic}");
                }
                GradNormClip::Global => {
                    let total = (actor * actor + critic * critic).sqrt();
                    assert!((total - 0.5).abs() < 1e-4, "global norm {total}");
                    // The direction is kept: the ratio of the two parts is unchanged
                    let ratio = actor / critic;
                    assert!((ratio - actor_before / critic_before).abs() < 1e-3 * ratio);
                }
            }
        }
    }

    fn fake_step(n: usize, reward: f32, time_out_env: Option<usize>) -> StepOutput<I> {
        let dev = Default::default();
        let mut to = vec![false; n];
        if let Some(e) = time_out_env {
            to[e] = true;
        }
        let obs = Observations::new().with("policy", Tensor::<I, 2>::ones([n, 3], &dev));
        StepOutput {
            observations: obs.clone(),
            rewards: Tensor::full([n], reward, &dev),
            terminated: Tensor::from_data(TensorData::new(vec![false; n], [n]), &dev),
            time_outs: Tensor::from_data(TensorData::new(to, [n]), &dev),
            final_observations: obs.map(|o| o.mul_scalar(2.0)),
            episode: rl_core::EpisodeInfo {
                returns: Tensor::zeros([n], &dev),
                lengths: Tensor::zeros([n], &dev),
                terms: BTreeMap::new(),
            },
        }
    }

    #[test]
    fn timeout_bootstrap_adds_discounted_value() {
        for mode in [TimeoutBootstrap::Value, TimeoutBootstrap::FinalObservation] {
            let mut ppo = small_ppo(PpoConfig {
                timeout_bootstrap: mode,
                gamma: 0.9,
                ..Default::default()
            });
            let obs = Observations::new()
                .with("policy", Tensor::<I, 2>::ones([4, 3], &Default::default()));
            ppo.act(&obs).expect("act");
            ppo.process_env_step(&fake_step(4, 1.0, Some(2)))
                .expect("store");
            let stored: Vec<f32> = ppo.storage_rewards().into_data().to_vec().expect("f32");
            let v_t = scalar(
                ppo.inference
                    .value(Tensor::ones([1, 3], &Default::default())),
            );
            let v_final = scalar(
                ppo.inference
                    .value(Tensor::ones([1, 3], &Default::default()).mul_scalar(2.0)),
            );
            let v = if mode == TimeoutBootstrap::Value {
                v_t
            } else {
                v_final
            };
            assert!(
                (f64::from(stored[2]) - (1.0 + 0.9 * v)).abs() < 1e-5,
                "{mode:?}: {stored:?}"
            );
            assert_eq!(stored[0], 1.0);
        }
    }

    #[test]
    fn update_reports_losses_and_adapts_learning_rate() {
        let mut ppo = small_ppo(PpoConfig {
            num_mini_batches: 2,
            num_learning_epochs: 2,
            ..Default::default()
        });
        let obs =
            Observations::new().with("policy", Tensor::<I, 2>::ones([4, 3], &Default::default()));
        for t in 0..3 {
            ppo.act(&obs).expect("act");
            ppo.process_env_step(&fake_step(4, t as f32, None))
                .expect("store");
        }
        ppo.compute_returns(&obs).expect("gae");
        let before = ppo
            .model
            .valid()
            .value(Tensor::ones([1, 3], &Default::default()));
        let stats = ppo.update().expect("update");
        for key in [
            "Loss/surrogate",
            "Loss/value",
            "Loss/entropy",
            "Loss/learning_rate",
            "Policy/mean_std",
        ] {
            assert!(
                stats.get(key).is_some_and(|v| v.is_finite()),
                "{key}: {stats:?}"
            );
        }
        assert_ne!(
            stats["Loss/learning_rate"], 1e-3,
            "the adaptive schedule must move the rate"
        );
        let after = ppo
            .inference
            .value(Tensor::ones([1, 3], &Default::default()));
        assert_ne!(
            scalar(before),
            scalar(after),
            "the update must change the critic"
        );
        assert!(
            ppo.update().is_err(),
            "a second update without a rollout is an error"
        );
    }

    /// A two-armed contextual bandit: the observation says which arm pays 1.
    fn bandit_step(contexts: &[usize], actions: &[f32]) -> StepOutput<I> {
        let dev = Default::default();
        let n = contexts.len();
        let rewards: Vec<f32> = contexts
            .iter()
            .zip(actions)
            .map(|(&c, &a)| if a as usize == c { 1.0 } else { 0.0 })
            .collect();
        let obs = Observations::new().with("policy", Tensor::<I, 2>::zeros([n, 3], &dev));
        StepOutput {
            observations: obs.clone(),
            rewards: Tensor::from_data(TensorData::new(rewards, [n]), &dev),
            terminated: Tensor::from_data(TensorData::new(vec![true; n], [n]), &dev),
            time_outs: Tensor::from_data(TensorData::new(vec![false; n], [n]), &dev),
            final_observations: obs,
            episode: rl_core::EpisodeInfo {
                returns: Tensor::zeros([n], &dev),
                lengths: Tensor::zeros([n], &dev),
                terms: BTreeMap::new(),
            },
        }
    }

    fn context_obs(contexts: &[usize]) -> Observations<I> {
        let n = contexts.len();
        let values: Vec<f32> = contexts
            .iter()
            .flat_map(|&c| [f32::from(c == 0), f32::from(c == 1), 1.0])
            .collect();
        Observations::new().with(
            "policy",
            Tensor::from_data(TensorData::new(values, [n, 3]), &Default::default()),
        )
    }

    #[test]
    fn categorical_policy_learns_a_contextual_bandit() {
        let (n, t) = (16, 4);
        let mut spec = spec(n);
        spec.action_space = ActionSpace::Discrete { n: 2 };
        let policy = PolicyConfig {
            actor_hidden_dims: vec![16],
            critic_hidden_dims: vec![16],
            ..Default::default()
        };
        let cfg = PpoConfig {
            num_mini_batches: 2,
            learning_rate: 3e-3,
            ..Default::default()
        };
        let mut ppo = Ppo::<B>::new(cfg, policy, &spec, t, 1, &Default::default()).expect("valid");
        let mut rng = HostRng::new(5);
        let mut contexts: Vec<usize> = (0..n).map(|_| (rng.next_u64() % 2) as usize).collect();
        let mut last = None;
        for _ in 0..40 {
            for _ in 0..t {
                let actions = ppo.act(&context_obs(&contexts)).expect("act");
                assert_eq!(actions.dims(), [n, 1]);
                let actions: Vec<f32> = actions.into_data().to_vec().expect("f32");
                assert!(actions.iter().all(|&a| a == 0.0 || a == 1.0), "{actions:?}");
                ppo.process_env_step(&bandit_step(&contexts, &actions))
                    .expect("store");
                contexts = (0..n).map(|_| (rng.next_u64() % 2) as usize).collect();
            }
            ppo.compute_returns(&context_obs(&contexts)).expect("gae");
            last = Some(ppo.update().expect("update"));
        }
        let stats = last.expect("updated");
        assert!(!stats.contains_key("Policy/mean_std"), "{stats:?}");
        assert!(stats["Loss/entropy"].is_finite() && stats["Loss/entropy"] < 2f64.ln());
        // The greedy policy picks the paying arm in both contexts.
        let greedy = ppo.act_inference(&context_obs(&[0, 1])).expect("act");
        let greedy: Vec<f32> = greedy.into_data().to_vec().expect("f32");
        assert_eq!(greedy, vec![0.0, 1.0]);
        // And the sampled policy does so almost always.
        let x = ppo.normalize_actor(context_obs(&[0, 1]).get("policy").expect("policy"));
        let log_p = match ppo.inference.distribution(x) {
            rl_modules::ActionDistribution::Categorical(d) => d.log_probs,
            other => panic!("expected a categorical, got {other:?}"),
        };
        let p: Vec<f32> = log_p.exp().into_data().to_vec().expect("f32");
        assert!(p[0] > 0.9 && p[3] > 0.9, "probabilities {p:?}");
    }

    #[test]
    fn critic_sharing_the_actor_input_uses_the_actor_normalizer() {
        let policy = PolicyConfig {
            actor_hidden_dims: vec![16],
            critic_hidden_dims: vec![16],
            actor_obs_normalization: true,
            critic_obs_normalization: true,
            ..Default::default()
        };
        let mut ppo = Ppo::<B>::new(
            PpoConfig::default(),
            policy,
            &spec(4),
            3,
            0,
            &Default::default(),
        )
        .expect("valid");
        let dev = Default::default();
        let x = Tensor::<I, 2>::from_data(
            TensorData::new((0..12).map(|i| i as f32 * 3.0).collect::<Vec<_>>(), [4, 3]),
            &dev,
        );
        let obs = Observations::new().with("policy", x);
        ppo.act(&obs).expect("act");
        let stored = ppo.pending.as_ref().expect("pending").values.clone();
        // The bootstrap values (GAE, time-outs) must see the input the rollout values saw.
        let again = ppo.values_of(&obs).expect("values");
        let (a, b): (Vec<f32>, Vec<f32>) = (
            stored.into_data().to_vec().expect("f32"),
            again.into_data().to_vec().expect("f32"),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn state_round_trips_through_bytes() {
        let ppo = small_ppo(PpoConfig::default());
        let obs =
            Observations::new().with("policy", Tensor::<I, 2>::ones([4, 3], &Default::default()));
        let a = ppo.act_inference(&obs).expect("act");
        let bytes = ppo.save_state().expect("save");
        let mut other = small_ppo(PpoConfig::default());
        other.learning_rate = 0.5;
        other.load_state(&bytes).expect("load");
        let b = other.act_inference(&obs).expect("act");
        assert_eq!(a.into_data(), b.into_data());
        assert_eq!(other.learning_rate, ppo.learning_rate);
        assert!(other.load_state(&bytes[..bytes.len() / 2]).is_err());
    }
}
