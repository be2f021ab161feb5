//! Proximal Policy Optimization (rsl_rl 5.x's update, read top to bottom).
//!
//! The model (an [`ActorCriticModel`], by default [`MlpModel`]) owns its inputs: it picks its observation groups and
//! normalises them. PPO stores what the model computed during the rollout, computes GAE,
//! and runs the clipped-surrogate update; its loss functions, the adaptive learning-rate
//! rule and the gradient clipping are public, for algorithms that build on PPO.

use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use rl_core::{
    Algorithm, AlgorithmError, Communicator, ComputeCost, EnvSpec, HostRng, HostTensor,
    Observations, StepOutput, UpdateStats,
};
use rl_logger::tags;
use rl_modules::{
    ActOutput, ActorCriticModel, Batch, InputsState, MlpModel, NormalizerState, PolicyConfig,
    parameter_shapes,
};
use rl_storage::{
    MiniBatch, MiniBatchSchedule, Rollout, RolloutStorage, TrajectoryPlan, Transition, env_schedule,
};
use serde::{Deserialize, Serialize};

use crate::config::{GradNormClip, LearningRateSchedule, PpoConfig, TimeoutBootstrap};
use crate::{DataParallel, Error};

type Inner<B> = <B as AutodiffBackend>::InnerBackend;
type PpoOptimizer<B, M> = OptimizerAdaptor<Adam, <M as ActorCriticModel<B>>::Network, B>;
/// The logged parts of a mini-batch's loss, by TensorBoard tag, `[1]` each.
type Logged<B> = [(&'static str, Tensor<Inner<B>, 1>); 3];

/// What `act` computed, kept until the environment's answer arrives.
struct PendingStep<B: AutodiffBackend> {
    observations: Observations<Inner<B>>,
    act: ActOutput<B>,
}

/// The loss of one mini-batch (`[1]`, with gradients), the parts that are logged, by tag
/// (`[1]` each), and the mean KL(old || new) for the adaptive rate.
struct MiniBatchLosses<B: AutodiffBackend> {
    loss: Tensor<B, 1>,
    logged: Logged<B>,
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
    /// `None` in checkpoints written before the critic always had its own input, when it
    /// shared the actor's: its statistics are then the actor's.
    critic_normalizer: Option<NormalizerState>,
    /// A recurrent model's hidden state of every environment, so that a resumed run goes on
    /// from the same memories; `None` for a model without memory.
    #[serde(default)]
    memory: Option<HostTensor>,
}

/// PPO, generic over an autodiff backend `B` and the actor-critic model `M` (by default
/// the MLP).
pub struct Ppo<B: AutodiffBackend, M: ActorCriticModel<B> = MlpModel<B>> {
    cfg: PpoConfig,
    policy_cfg: PolicyConfig,
    /// The trained actor-critic with its inputs (and a rollout copy of its weights).
    model: M,
    optimizer: PpoOptimizer<B, M>,
    learning_rate: f64,
    storage: RolloutStorage<Inner<B>>,
    rollout: Option<Rollout<Inner<B>>>,
    pending: Option<PendingStep<B>>,
    rng: HostRng,
    iteration: usize,
    device: B::Device,
    /// This worker's place in a data-parallel run (`None`: training alone).
    parallel: Option<DataParallel>,
}

impl<B: AutodiffBackend, M: ActorCriticModel<B>> Ppo<B, M> {
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
        for key in policy_cfg.ignored_rnn_keys() {
            tracing::warn!(
                "policy.{key} is a setting of a recurrent model and is ignored: policy.class is \"mlp\""
            );
        }
        let model = M::new(&policy_cfg, spec, seed, device)?;
        // Adam as in PyTorch: beta1 0.9, beta2 0.999, eps 1e-8 (Burn's default eps is 1e-5).
        let optimizer = AdamConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .init::<B, M::Network>();
        Ok(Self {
            learning_rate: cfg.learning_rate,
            model,
            optimizer,
            storage: RolloutStorage::new(spec.num_envs, num_steps_per_env),
            rollout: None,
            pending: None,
            rng: HostRng::new(seed),
            iteration: 0,
            device: device.clone(),
            parallel: None,
            cfg,
            policy_cfg,
        })
    }

    /// Makes this PPO one worker of a data-parallel run on `comm` (`None`: alone again).
    /// Before every update the workers pool their observation normalisers' statistics, and
    /// before every optimiser step they average their gradients and their mini-batch KL (so
    /// the adaptive learning rate stays the same on all), which keeps their weights identical
    /// when they start from the same state. Every worker must call [`Algorithm::update`] as
    /// often, with as many mini-batches.
    pub fn set_data_parallel(&mut self, comm: Option<Arc<dyn Communicator>>) -> Result<(), Error> {
        self.parallel = match comm {
            Some(comm) => Some(DataParallel::new(comm, self.model.inputs_state()?)),
            None => None,
        };
        Ok(())
    }

    /// The trained actor-critic networks.
    pub fn model(&self) -> &M::Network {
        self.model.network()
    }

    /// The PPO hyperparameters.
    pub fn config(&self) -> &PpoConfig {
        &self.cfg
    }

    /// A recurrent model's hidden state of every environment now, flattened, `[N, S]`.
    pub fn memory(&self) -> Option<Tensor<Inner<B>, 2>> {
        self.model.memory()
    }

    /// Rewards of the last stored step (tests).
    #[cfg(test)]
    fn storage_rewards(&self) -> Tensor<Inner<B>, 1> {
        self.storage.last_rewards().expect("a stored step")
    }

    /// The PPO loss of a mini-batch and its parts; the model evaluates `batch` (the
    /// mini-batch's observations, or a recurrent model's trajectories), whose `M` outputs
    /// line up with the samples of `mb`.
    fn losses(
        &self,
        mb: &MiniBatch<Inner<B>>,
        batch: Batch<'_, Inner<B>>,
    ) -> Result<MiniBatchLosses<B>, Error> {
        let cfg = &self.cfg;
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
        let dist = self.model.distribution(batch)?;
        let log_prob = dist.log_prob(actions); // [M]
        let entropy = dist.entropy(); // [M]
        let values = self.model.values(batch)?; // [M]

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
        Ok(MiniBatchLosses {
            loss,
            logged: [
                (tags::LOSS_SURROGATE, surrogate_loss.inner()),
                (tags::LOSS_VALUE, value_loss.inner()),
                (tags::LOSS_ENTROPY, entropy_mean.inner()),
            ],
            kl,
        })
    }

    fn non_finite(&self, quantity: &str) -> Error {
        Error::NonFinite {
            iteration: self.iteration,
            quantity: quantity.to_string(),
        }
    }

    fn try_act(&mut self, obs: &Observations<Inner<B>>) -> Result<Tensor<Inner<B>, 2>, Error> {
        let act = self.model.act(obs, &mut self.rng)?;
        let actions = act.actions.clone();
        self.pending = Some(PendingStep {
            observations: obs.clone(),
            act,
        });
        Ok(actions)
    }

    fn try_process_env_step(&mut self, step: &StepOutput<Inner<B>>) -> Result<(), Error> {
        let PendingStep { observations, act } = self.pending.take().ok_or(Error::Protocol(
            "process_env_step called without a preceding act",
        ))?;
        let time_outs = step.time_outs.clone().float(); // [N]
        // Bootstrap on time-outs: the episode did not end, the time limit cut it
        let bootstrap = match self.cfg.timeout_bootstrap {
            TimeoutBootstrap::Value => act.values.clone(),
            TimeoutBootstrap::FinalObservation => self.model.value(&step.final_observations)?,
        };
        let rewards = step.rewards.clone() + bootstrap * time_outs * self.cfg.gamma;
        let dones = step.dones();
        self.model.reset(&dones);
        self.storage.add(Transition {
            observations,
            actions: act.actions,
            rewards,
            dones: dones.float(),
            values: act.values,
            actions_log_prob: act.actions_log_prob,
            dist_params: act.dist_params,
            memory: act.memory,
        })?;
        Ok(())
    }

    fn try_compute_returns(&mut self, last_obs: &Observations<Inner<B>>) -> Result<(), Error> {
        let last_values = self.model.value(last_obs)?;
        let mut rollout = self
            .storage
            .finish(last_values, self.cfg.gamma, self.cfg.lam)?;
        if !self.cfg.normalize_advantage_per_mini_batch {
            rollout.normalize_advantages();
        }
        self.rollout = Some(rollout);
        Ok(())
    }

    fn try_update(&mut self) -> Result<UpdateStats, Error> {
        let rollout = self
            .rollout
            .take()
            .ok_or(Error::Protocol("update called before compute_returns"))?;

        // Data-parallel workers normalise with the statistics of every worker's samples.
        if let Some(p) = &mut self.parallel {
            let pooled = p.pool_statistics(&self.model.inputs_state()?)?;
            self.model.load_inputs_state(&pooled)?;
        }

        // Non-finite distribution parameters in the rollout (checked with the losses below,
        // in the update's single read-back)
        let [t, n, p] = rollout.dist_params.dims();
        let bad_dist_params = rollout
            .dist_params
            .clone()
            .reshape([t * n * p])
            .is_finite()
            .bool_not()
            .float()
            .sum(); // [1]

        // A recurrent model learns from whole environments' trajectories, cut where episodes
        // ended (planned from the rollout's dones, one host read); any other from shuffled
        // samples.
        let recurrent = self.model.is_recurrent();
        let [t_len, num_envs] = rollout.dones.dims();
        let (schedule, dones) = if recurrent {
            let schedule = env_schedule(
                num_envs,
                self.cfg.num_mini_batches,
                self.cfg.num_learning_epochs,
                self.cfg.shuffle,
                &mut self.rng,
            )?;
            (schedule, rollout.dones_host()?)
        } else {
            let schedule = MiniBatchSchedule::new(
                rollout.batch_size(),
                self.cfg.num_mini_batches,
                self.cfg.num_learning_epochs,
                self.cfg.shuffle,
                &mut self.rng,
            )?;
            (schedule, Vec::new())
        };
        let mut sums: Option<Logged<B>> = None;
        for indices in &schedule.batches {
            let MiniBatchLosses { loss, logged, kl } = if recurrent {
                let plan = TrajectoryPlan::new(&dones, t_len, num_envs, indices);
                let (mb, sequences) = rollout.recurrent_mini_batch(&plan)?;
                self.losses(&mb, Batch::Sequences(&sequences))?
            } else {
                let mb = rollout.mini_batch_of(indices);
                self.losses(&mb, Batch::Flat(&mb.observations))?
            };

            // Adaptive learning rate from KL(old || new), before this mini-batch's step
            if self.cfg.schedule == LearningRateSchedule::Adaptive {
                let kl = match &self.parallel {
                    Some(p) => p.mean(kl, "averaging the KL")?,
                    None => kl,
                };
                let kl_mean = kl.into_scalar().elem::<f64>();
                self.learning_rate = adapt_learning_rate(self.learning_rate, kl_mean, &self.cfg);
            }

            // Gradient step with L2-norm clipping
            let grads = loss.backward();
            let mut grads = GradientsParams::from_grads(grads, self.model.network());
            if let Some(p) = &self.parallel {
                p.average_gradients(self.model.network(), &mut grads)?;
            }
            clip_gradients(
                &self.model,
                &mut grads,
                self.cfg.max_grad_norm,
                self.cfg.grad_norm_clip,
            );
            let network =
                self.optimizer
                    .step(self.learning_rate, self.model.network().clone(), grads);
            self.model.set_network(network);

            sums = Some(match sums.take() {
                None => logged,
                Some(sums) => {
                    let mut logged = logged.into_iter();
                    sums.map(|(tag, sum)| match logged.next() {
                        Some((_, x)) => (tag, sum + x),
                        None => (tag, sum),
                    })
                }
            });
        }

        self.model.sync_inference();

        // One host read for every logged loss (means over the mini-batches), the count of
        // non-finite distribution parameters, and the mean action std
        let count = schedule.batches.len() as f32;
        let sums = sums.ok_or(Error::Protocol("update ran no mini-batch"))?;
        let mut named: Vec<(&'static str, Tensor<Inner<B>, 1>)> = vec![("", bad_dist_params)];
        named.extend(sums.map(|(tag, sum)| (tag, sum.div_scalar(count))));
        if let Some(std) = self.model.action_std() {
            named.push((tags::MEAN_STD, std.mean()));
        }
        let (names, parts): (Vec<_>, Vec<_>) = named.into_iter().unzip();
        let values: Vec<f32> = Tensor::cat(parts, 0)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| Error::Readback(format!("{e:?}")))?;
        let mut stats = UpdateStats::new();
        for (name, value) in names.into_iter().zip(values) {
            if name.is_empty() {
                if value != 0.0 {
                    return Err(self.non_finite(
                        "the action distribution's parameters of the rollout (the policy's output)",
                    ));
                }
            } else if !value.is_finite() {
                return Err(self.non_finite(name));
            } else {
                stats.insert(name.into(), f64::from(value));
            }
        }
        stats.insert(tags::LEARNING_RATE.into(), self.learning_rate);
        Ok(stats)
    }

    fn try_save_state(&self) -> Result<Vec<u8>, Error> {
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
        let network = self.model.network();
        let model = Recorder::<B>::record(&recorder, network.clone().into_record(), ())
            .map_err(|e| Error::Checkpoint(format!("cannot serialise the model: {e}")))?;
        let optimizer = Recorder::<B>::record(&recorder, self.optimizer.to_record(), ())
            .map_err(|e| Error::Checkpoint(format!("cannot serialise the optimizer: {e}")))?;
        let inputs = self.model.inputs_state()?;
        let memory = self.model.memory().map(HostTensor::read).transpose()?;
        let state = PpoState {
            memory,
            model,
            optimizer,
            learning_rate: self.learning_rate,
            iteration: self.iteration,
            rng: self.rng.clone(),
            actor_normalizer: inputs.actor,
            critic_normalizer: inputs.critic,
        };
        rmp_serde::to_vec_named(&state)
            .map_err(|e| Error::Checkpoint(format!("cannot serialise the PPO state: {e}")))
    }

    fn try_load_state(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let state: PpoState = rmp_serde::from_slice(bytes)
            .map_err(|e| Error::Checkpoint(format!("the PPO state is unreadable: {e}")))?;
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
        let model_record = Recorder::<B>::load(&recorder, state.model, &self.device)
            .map_err(|e| Error::Checkpoint(format!("the model weights are unreadable: {e}")))?;
        let optimizer_record = Recorder::<B>::load(&recorder, state.optimizer, &self.device)
            .map_err(|e| Error::Checkpoint(format!("the optimizer state is unreadable: {e}")))?;
        let expected = parameter_shapes(self.model.network());
        let network = self.model.network().clone().load_record(model_record);
        let found = parameter_shapes(&network);
        if found != expected {
            return Err(Error::Checkpoint(format!(
                "the checkpoint's network does not match the config's: parameter shapes {found:?}, expected {expected:?}"
            )));
        }
        // Checkpoints written while a critic reading the actor's groups with the actor's
        // normalisation shared the actor's normaliser store no critic statistics: they are
        // the actor's.
        let shared_critic = self.policy_cfg.obs_groups.critic == self.policy_cfg.obs_groups.policy
            && self.policy_cfg.critic_obs_normalization == self.policy_cfg.actor_obs_normalization;
        let critic = match state.critic_normalizer {
            None if shared_critic => state.actor_normalizer.clone(),
            other => other,
        };
        self.model
            .load_inputs_state(&InputsState {
                actor: state.actor_normalizer,
                critic,
            })
            .map_err(|e| Error::Checkpoint(e.to_string()))?;
        match (state.memory, self.model.is_recurrent()) {
            (Some(m), _) => {
                let memory = m
                    .to_tensor::<Inner<B>, 2>("memory", &self.device)
                    .map_err(|e| Error::Checkpoint(e.to_string()))?;
                self.model
                    .load_memory(memory)
                    .map_err(|e| Error::Checkpoint(e.to_string()))?;
            }
            (None, true) => {
                return Err(Error::Checkpoint(
                    "the checkpoint holds no recurrent hidden state, but the model is recurrent"
                        .into(),
                ));
            }
            (None, false) => {}
        }
        self.model.set_network(network);
        self.model.sync_inference();
        self.optimizer = self.optimizer.clone().load_record(optimizer_record);
        self.learning_rate = state.learning_rate;
        self.iteration = state.iteration;
        self.rng = state.rng;
        Ok(())
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

/// Clips the gradients of `model` by L2 norm, as rsl_rl 5.x does: the actor's (with its
/// std) and the critic's each to `max_norm`, or all of them together
/// (`torch.nn.utils.clip_grad_norm_`), scaled on the device without a host read.
pub fn clip_gradients<B: AutodiffBackend, M: ActorCriticModel<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: f32,
    mode: GradNormClip,
) {
    match mode {
        GradNormClip::Separate => {
            let mut actor = SquaredNorm::new(grads);
            model.visit_actor(&mut actor);
            let actor = actor.total();
            let mut critic = SquaredNorm::new(grads);
            model.visit_critic(&mut critic);
            let critic = critic.total();
            if let Some(total) = actor {
                let mut scale = ScaleGrads::new(grads, clip_coefficient(total, max_norm));
                model.visit_actor(&mut scale);
            }
            if let Some(total) = critic {
                let mut scale = ScaleGrads::new(grads, clip_coefficient(total, max_norm));
                model.visit_critic(&mut scale);
            }
        }
        GradNormClip::Global => {
            let mut all = SquaredNorm::new(grads);
            model.network().visit(&mut all);
            if let Some(total) = all.total() {
                let mut scale = ScaleGrads::new(grads, clip_coefficient(total, max_norm));
                model.network().visit(&mut scale);
            }
        }
    }
}

/// Sums the squares of the gradients of the visited parameters: one sum `[1]` per
/// parameter, added up in visiting order once all are queued (so that on a GPU the
/// additions of the `[1]` sums are one fused kernel instead of one launch each between the
/// parameters' reductions; the additions and their order are the same).
struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    sums: Vec<Tensor<Inner<B>, 1>>,
}

impl<'a, B: AutodiffBackend> SquaredNorm<'a, B> {
    fn new(grads: &'a GradientsParams) -> Self {
        Self {
            grads,
            sums: Vec::new(),
        }
    }

    /// The squared norm `[1]`, if any visited parameter has a gradient.
    fn total(self) -> Option<Tensor<Inner<B>, 1>> {
        self.sums.into_iter().reduce(|total, s| total + s)
    }
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<Inner<B>, D>(param.id) {
            self.sums.push(g.powi_scalar(2).sum()); // [1]
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

impl<B: AutodiffBackend, M: ActorCriticModel<B>> Algorithm<B> for Ppo<B, M> {
    fn act(&mut self, obs: &Observations<Inner<B>>) -> Result<Tensor<Inner<B>, 2>, AlgorithmError> {
        Ok(self.try_act(obs)?)
    }

    fn process_env_step(&mut self, step: &StepOutput<Inner<B>>) -> Result<(), AlgorithmError> {
        Ok(self.try_process_env_step(step)?)
    }

    fn compute_returns(&mut self, last_obs: &Observations<Inner<B>>) -> Result<(), AlgorithmError> {
        Ok(self.try_compute_returns(last_obs)?)
    }

    fn update(&mut self) -> Result<UpdateStats, AlgorithmError> {
        Ok(self.try_update()?)
    }

    fn save_policy(&self) -> Result<Vec<u8>, AlgorithmError> {
        Ok(self.model.policy().to_bytes().map_err(Error::from)?)
    }

    fn set_iteration(&mut self, iteration: usize) {
        self.iteration = iteration;
        if let Some(std) = self.policy_cfg.scheduled_std(iteration) {
            self.model.set_std(std);
        }
    }

    fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    fn compute_cost(&self) -> ComputeCost {
        let (forward, train) = self.model.flop_per_sample();
        ComputeCost {
            rollout_flop_per_sample: forward,
            update_flop_per_sample: self.cfg.num_learning_epochs as f64 * train,
        }
    }

    fn save_state(&self) -> Result<Vec<u8>, AlgorithmError> {
        Ok(self.try_save_state()?)
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), AlgorithmError> {
        self.try_load_state(bytes)?;
        if let Some(p) = &mut self.parallel {
            p.set_agreed(self.model.inputs_state().map_err(Error::from)?);
        }
        Ok(())
    }

    fn set_communicator(&mut self, comm: Arc<dyn Communicator>) -> Result<(), AlgorithmError> {
        Ok(self.set_data_parallel(Some(comm))?)
    }

    fn shared_state_checksum(&self) -> Result<u64, AlgorithmError> {
        use std::hash::{Hash, Hasher};
        /// Hashes the bits of every float parameter, in visiting order.
        struct Bits<'a> {
            hasher: &'a mut std::collections::hash_map::DefaultHasher,
            failed: Option<String>,
        }
        impl<B: Backend> ModuleVisitor<B> for Bits<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                match param.val().into_data().convert::<f32>().to_vec::<f32>() {
                    Ok(values) => values.iter().for_each(|v| v.to_bits().hash(self.hasher)),
                    Err(e) => self.failed = Some(format!("{e:?}")),
                }
            }
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut bits = Bits {
            hasher: &mut hasher,
            failed: None,
        };
        self.model.network().visit(&mut bits);
        if let Some(e) = bits.failed {
            return Err(Error::Readback(e).into());
        }
        let inputs = self.model.inputs_state().map_err(Error::from)?;
        for state in [&inputs.actor, &inputs.critic].into_iter().flatten() {
            state.count.hash(&mut hasher);
            for v in state.mean.iter().chain(&state.var) {
                v.to_bits().hash(&mut hasher);
            }
        }
        self.learning_rate.to_bits().hash(&mut hasher);
        Ok(hasher.finish())
    }

    fn reseed(&mut self, seed: u64, stream: u64) -> Result<(), AlgorithmError> {
        self.rng = HostRng::with_stream(seed, stream);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::TensorData;
    use rl_core::ActionSpace;
    use rl_modules::RnnModel;
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

    /// A small policy whose actor and critic inputs are both normalised.
    fn normalized_policy() -> PolicyConfig {
        PolicyConfig {
            actor_hidden_dims: vec![16],
            critic_hidden_dims: vec![16],
            actor_obs_normalization: true,
            critic_obs_normalization: true,
            ..Default::default()
        }
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
            parameter_values(build(5).model()),
            parameter_values(build(6).model()),
        ];
        assert_ne!(want[0], want[1]);
        // Networks built on parallel threads, as in a sweep or a test binary, must each get
        // their seed's weights (they are drawn from a host stream of the seed, not from a
        // process-wide generator that the threads would share).
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let (build, want) = (&build, &want);
                scope.spawn(move || {
                    for i in 0..25 {
                        let seed = (thread + i) % 2;
                        let got = parameter_values(build(5 + seed as u64).model());
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
        v.total().map(|t| scalar(t).sqrt()).unwrap_or(0.0)
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
            let loss = ppo.model().action_mode(x.clone()).sum().mul_scalar(100.0)
                + ppo.model().value(x).sum().mul_scalar(300.0)
                + ppo
                    .model()
                    .action_std_vector()
                    .expect("continuous actions")
                    .sum()
                    .mul_scalar(50.0);
            let mut grads = GradientsParams::from_grads(loss.backward(), ppo.model());
            let actor_before = norm_of(&grads, |v| ppo.model().visit_actor(v));
            let critic_before = norm_of(&grads, |v| ppo.model().critic.visit(v));
            assert!(actor_before > 0.5 && critic_before > 0.5);
            clip_gradients(
                &ppo.model,
                &mut grads,
                ppo.cfg.max_grad_norm,
                ppo.cfg.grad_norm_clip,
            );
            let actor = norm_of(&grads, |v| ppo.model().visit_actor(v));
            let critic = norm_of(&grads, |v| ppo.model().critic.visit(v));
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

    /// One iteration of worker `rank`'s own data: observations and rewards that differ
    /// between workers.
    fn worker_iteration(ppo: &mut Ppo<B>, rank: usize) -> UpdateStats {
        let obs = Observations::new().with(
            "policy",
            Tensor::<I, 2>::full([4, 3], 1.0 + rank as f32, &Default::default()),
        );
        for t in 0..3 {
            ppo.act(&obs).expect("act");
            let reward = t as f32 + 2.0 * rank as f32;
            ppo.process_env_step(&fake_step(4, reward, Some(rank)))
                .expect("store");
        }
        ppo.compute_returns(&obs).expect("gae");
        ppo.update().expect("update")
    }

    #[test]
    fn data_parallel_workers_keep_identical_weights() {
        /// PPO whose inputs are normalised, so that the workers must pool statistics.
        fn normalized_ppo(cfg: PpoConfig) -> Ppo<B> {
            Ppo::new(
                cfg,
                normalized_policy(),
                &spec(4),
                3,
                0,
                &Default::default(),
            )
            .expect("valid")
        }
        use rl_distributed::TcpGroup;
        use std::time::Duration;
        let cfg = PpoConfig {
            num_mini_batches: 2,
            num_learning_epochs: 2,
            ..Default::default()
        };
        // Alone, the two workers' data move the same start to other weights.
        let alone: Vec<Vec<Vec<f32>>> = (0..2)
            .map(|rank| {
                let mut ppo = normalized_ppo(cfg.clone());
                worker_iteration(&mut ppo, rank);
                parameter_values(ppo.model())
            })
            .collect();
        assert_ne!(alone[0], alone[1]);

        /// A worker's weights, learning rate and input statistics after each of its updates.
        type History = (Vec<Vec<Vec<f32>>>, Vec<f64>, Vec<InputsState>);
        let listener = TcpGroup::listen("127.0.0.1:0").expect("listen");
        let master = listener.local_addr().expect("address").to_string();
        let mut listener = Some(listener);
        let timeout = Duration::from_secs(60);
        let workers: Vec<History> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2usize)
                .map(|rank| {
                    let cfg = cfg.clone();
                    let master = master.clone();
                    let listener = listener.take();
                    scope.spawn(move || {
                        let group = match listener {
                            Some(l) => TcpGroup::root(l, 2, timeout),
                            None => TcpGroup::join(rank, 2, &master, timeout),
                        }
                        .expect("join the run");
                        let mut ppo = normalized_ppo(cfg);
                        ppo.set_data_parallel(Some(Arc::new(group)))
                            .expect("data parallel");
                        let mut weights = Vec::new();
                        let mut rates = Vec::new();
                        let mut inputs = Vec::new();
                        for _ in 0..2 {
                            let stats = worker_iteration(&mut ppo, rank);
                            weights.push(parameter_values(ppo.model()));
                            rates.push(stats["Loss/learning_rate"]);
                            inputs.push(ppo.model.inputs_state().expect("inputs"));
                        }
                        (weights, rates, inputs)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("worker"))
                .collect()
        });
        // After every update the workers hold the same weights and learning rate ...
        assert_eq!(workers[0].0, workers[1].0);
        assert_eq!(workers[0].1, workers[1].1);
        // ... and observation statistics: those of both workers' samples (rank 0 saw only
        // 1.0, rank 1 only 2.0, 12 samples each per update).
        for (a, b) in workers[0].2.iter().zip(&workers[1].2) {
            assert_eq!(a.actor, b.actor);
            assert_eq!(a.critic, b.critic);
        }
        let first = workers[0].2[0].actor.clone().expect("normalised");
        assert_eq!(first.count, 24);
        assert!(
            first.mean.iter().all(|m| (m - 1.5).abs() < 1e-6),
            "{first:?}"
        );
        assert!(
            first.var.iter().all(|v| (v - 0.25).abs() < 1e-6),
            "{first:?}"
        );
        assert_eq!(workers[0].2[1].actor.as_ref().map(|s| s.count), Some(48));
        // ... which neither worker's data alone gives: the gradients were averaged.
        assert_ne!(workers[0].0[0], alone[0]);
        assert_ne!(workers[0].0[0], alone[1]);
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
                ppo.model
                    .inference()
                    .value(Tensor::ones([1, 3], &Default::default())),
            );
            let v_final = scalar(
                ppo.model
                    .inference()
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
            .inference()
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
            .model
            .inference()
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
        let greedy = ppo.model.policy().act(&context_obs(&[0, 1])).expect("act");
        let greedy: Vec<f32> = greedy.into_data().to_vec().expect("f32");
        assert_eq!(greedy, vec![0.0, 1.0]);
        // And the sampled policy does so almost always.
        let x = ppo
            .model
            .actor_input()
            .normalize(context_obs(&[0, 1]).get("policy").expect("policy"));
        let log_p = match ppo.model.inference().distribution(x) {
            rl_modules::ActionDistribution::Categorical(d) => d.log_probs,
            other => panic!("expected a categorical, got {other:?}"),
        };
        let p: Vec<f32> = log_p.exp().into_data().to_vec().expect("f32");
        assert!(p[0] > 0.9 && p[3] > 0.9, "probabilities {p:?}");
    }

    #[test]
    fn critic_sharing_the_actor_input_uses_the_actor_normalizer() {
        let policy = normalized_policy();
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
        let stored = ppo.pending.as_ref().expect("pending").act.values.clone();
        // The bootstrap values (GAE, time-outs) must see the input the rollout values saw.
        let again = ppo.model.value(&obs).expect("values");
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
        let a = ppo.model.policy().act(&obs).expect("act");
        let bytes = ppo.save_state().expect("save");
        let mut other = small_ppo(PpoConfig::default());
        other.learning_rate = 0.5;
        other.load_state(&bytes).expect("load");
        let b = other.model.policy().act(&obs).expect("act");
        assert_eq!(a.into_data(), b.into_data());
        assert_eq!(other.learning_rate, ppo.learning_rate);
        assert!(other.load_state(&bytes[..bytes.len() / 2]).is_err());
    }

    fn rnn_ppo(rnn_type: rl_modules::RnnType, num_steps: usize) -> Ppo<B, RnnModel<B>> {
        let policy = PolicyConfig {
            class: rl_modules::ModelClass::Rnn,
            rnn_type: Some(rnn_type),
            rnn_hidden_dim: Some(6),
            rnn_num_layers: Some(2),
            actor_hidden_dims: vec![8],
            critic_hidden_dims: vec![8],
            ..Default::default()
        };
        let cfg = PpoConfig {
            num_mini_batches: 2,
            num_learning_epochs: 2,
            ..Default::default()
        };
        Ppo::new(cfg, policy, &spec(4), num_steps, 5, &Default::default()).expect("valid")
    }

    /// Observations that differ by step and environment, `[4, 3]`.
    fn varied_obs(t: usize) -> Observations<I> {
        let values: Vec<f32> = (0..12)
            .map(|i| ((t * 12 + i) as f32 * 0.37).sin())
            .collect();
        Observations::new().with(
            "policy",
            Tensor::<I, 2>::from_data(TensorData::new(values, [4, 3]), &Default::default()),
        )
    }

    /// Where episodes end, `[T = 6][N = 4]`: environment 0 at step 1, environment 1 at 3 and
    /// 4, environment 2 never, environment 3 at 0 and 5.
    const RNN_DONES: [[bool; 4]; 6] = [
        [false, false, false, true],
        [true, false, false, false],
        [false, false, false, false],
        [false, true, false, false],
        [false, true, false, false],
        [false, false, false, true],
    ];

    /// A rollout of 6 steps with the episode ends of [`RNN_DONES`].
    fn rnn_rollout(ppo: &mut Ppo<B, RnnModel<B>>) {
        let dev = Default::default();
        for (t, dones) in RNN_DONES.iter().enumerate() {
            ppo.act(&varied_obs(t)).expect("act");
            let mut step = fake_step(4, t as f32, None);
            step.observations = varied_obs(t + 1);
            step.terminated = Tensor::from_data(TensorData::new(dones.to_vec(), [4]), &dev);
            ppo.process_env_step(&step).expect("store");
        }
        ppo.compute_returns(&varied_obs(RNN_DONES.len()))
            .expect("gae");
    }

    fn max_abs_diff(a: Tensor<I, 1>, b: Tensor<I, 1>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn a_recurrent_update_replays_the_rollout_from_the_stored_states() {
        for rnn_type in [rl_modules::RnnType::Lstm, rl_modules::RnnType::Gru] {
            let mut ppo = rnn_ppo(rnn_type, RNN_DONES.len());
            // A second rollout, whose trajectories at step 0 go on from the first's states.
            rnn_rollout(&mut ppo);
            ppo.update().expect("update");
            rnn_rollout(&mut ppo);
            let rollout = ppo.rollout.clone().expect("rollout");
            // The stored state is reset after an episode's end and carried otherwise.
            let memory = rollout.memory.clone().expect("hidden states"); // [T, N, S]
            let row = |t: usize, e: usize| -> Vec<f32> {
                let [_, _, s] = memory.dims();
                memory
                    .clone()
                    .slice([t..t + 1, e..e + 1, 0..s])
                    .into_data()
                    .to_vec()
                    .expect("f32")
            };
            assert!(
                row(0, 2).iter().any(|&v| v != 0.0),
                "{rnn_type}: carried over from the last rollout"
            );
            assert!(
                row(1, 3).iter().all(|&v| v == 0.0),
                "{rnn_type}: reset after a done"
            );
            assert!(
                row(2, 0).iter().all(|&v| v == 0.0),
                "{rnn_type}: reset after a done"
            );
            assert!(row(1, 2).iter().any(|&v| v != 0.0), "{rnn_type}: carried");
            assert!(row(4, 3).iter().any(|&v| v != 0.0), "{rnn_type}: carried");
            // Running the memories over the padded trajectories from their first stored states
            // gives what stepping them one by one gave during the rollout.
            let dones = rollout.dones_host().expect("dones");
            for envs in [vec![3, 0, 2, 1], vec![1], vec![2, 3]] {
                let plan = TrajectoryPlan::new(&dones, RNN_DONES.len(), 4, &envs);
                let (mb, seq) = rollout.recurrent_mini_batch(&plan).expect("batch");
                let dist = ppo
                    .model
                    .distribution(Batch::Sequences(&seq))
                    .expect("distribution");
                let log_prob = dist
                    .log_prob(Tensor::<B, 2>::from_inner(mb.actions.clone()))
                    .inner();
                let values = ppo.model.values(Batch::Sequences(&seq)).expect("values");
                let lp_err = max_abs_diff(log_prob, mb.actions_log_prob.clone());
                let v_err = max_abs_diff(values.inner(), mb.values.clone());
                assert!(
                    lp_err < 1e-5,
                    "{rnn_type} {envs:?}: log-prob error {lp_err}"
                );
                assert!(v_err < 1e-5, "{rnn_type} {envs:?}: value error {v_err}");
            }
            // A flat batch is refused by a recurrent model.
            let mb = rollout.mini_batch(Tensor::from_data(
                TensorData::new(vec![0i64, 1], [2]),
                &Default::default(),
            ));
            assert!(ppo.model.values(Batch::Flat(&mb.observations)).is_err());
        }
    }

    #[test]
    fn a_recurrent_update_trains_memories_and_heads() {
        let mut ppo = rnn_ppo(rl_modules::RnnType::Gru, RNN_DONES.len());
        let before = parameter_values(ppo.model());
        rnn_rollout(&mut ppo);
        let stats = ppo.update().expect("update");
        for key in [
            "Loss/surrogate",
            "Loss/value",
            "Loss/entropy",
            "Policy/mean_std",
        ] {
            assert!(
                stats.get(key).is_some_and(|v| v.is_finite()),
                "{key}: {stats:?}"
            );
        }
        assert_ne!(
            stats["Loss/learning_rate"], 1e-3,
            "adaptive rate: {stats:?}"
        );
        let after = parameter_values(ppo.model());
        assert_eq!(before.len(), after.len());
        // Every parameter except the std (not in the loss's path through the memories)
        // moved: both memories' layers, both heads.
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert!(moved >= after.len() - 1, "{moved} of {} moved", after.len());
    }

    #[test]
    fn a_recurrent_state_round_trips_with_the_hidden_states() {
        let mut ppo = rnn_ppo(rl_modules::RnnType::Lstm, 3);
        for t in 0..2 {
            ppo.act(&varied_obs(t)).expect("act");
            ppo.process_env_step(&fake_step(4, 0.0, Some(1)))
                .expect("store");
        }
        let bytes = ppo.save_state().expect("save");
        let mut other = rnn_ppo(rl_modules::RnnType::Lstm, 3);
        other.load_state(&bytes).expect("load");
        let (a, b) = (
            ppo.model.memory().expect("memory"),
            other.model.memory().expect("memory"),
        );
        assert!(a.clone().abs().sum().into_scalar() > 0.0);
        assert_eq!(a.into_data(), b.into_data());
        // The next step acts alike (weights, memories and the random stream restored).
        let x = ppo.act(&varied_obs(2)).expect("act");
        let y = other.act(&varied_obs(2)).expect("act");
        assert_eq!(x.into_data(), y.into_data());
        // An MLP cannot take a recurrent checkpoint, nor a GRU an LSTM's.
        assert!(small_ppo(PpoConfig::default()).load_state(&bytes).is_err());
        assert!(
            rnn_ppo(rl_modules::RnnType::Gru, 3)
                .load_state(&bytes)
                .is_err()
        );
    }
}
