//! The actor-critic model that owns its inputs: each network selects its observation groups
//! and normalises them with its own normaliser, as rsl_rl 5.x's models do.
//!
//! The model keeps its trained weights on the autodiff backend `B` and a copy on the inner
//! backend for rollouts; the inputs (and their normalisers) live on the inner backend, where
//! the observations are. A recurrent model is a second type with the same methods (and a
//! hidden state beside the inputs).

use burn::module::AutodiffModule;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use rl_core::{EnvSpec, HostRng, Observations};

use crate::{
    ActionDistribution, ActorCritic, Error, NormalizerState, ObsInput, Policy, PolicyConfig,
};

type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// What the model computed for one rollout step, `[N, ...]` on the inner backend.
#[derive(Debug, Clone)]
pub struct ActOutput<B: AutodiffBackend> {
    /// Sampled actions, `[N, A]`.
    pub actions: Tensor<Inner<B>, 2>,
    /// Log-probabilities of `actions`, `[N]`.
    pub actions_log_prob: Tensor<Inner<B>, 1>,
    /// The action distribution's parameters, flattened, `[N, P]`.
    pub dist_params: Tensor<Inner<B>, 2>,
    /// Critic values of the observations, `[N]`.
    pub values: Tensor<Inner<B>, 1>,
}

/// The normaliser statistics of a model's inputs, for checkpoints.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InputsState {
    /// The actor input's statistics (when normalised).
    pub actor: Option<NormalizerState>,
    /// The critic input's statistics (when normalised).
    pub critic: Option<NormalizerState>,
}

/// An MLP actor-critic with its inputs.
#[derive(Debug)]
pub struct ActorCriticModel<B: AutodiffBackend> {
    network: ActorCritic<B>,
    inference: ActorCritic<Inner<B>>,
    actor_input: ObsInput<Inner<B>>,
    critic_input: ObsInput<Inner<B>>,
}

impl<B: AutodiffBackend> ActorCriticModel<B> {
    /// The model of `cfg` for the environment `spec`, around the (initialised) `network`.
    ///
    /// # Errors
    /// A group `cfg` names that the environment does not provide.
    pub fn new(
        cfg: &PolicyConfig,
        spec: &EnvSpec,
        network: ActorCritic<B>,
        device: &B::Device,
    ) -> Result<Self, Error> {
        let actor_input = ObsInput::new(
            spec,
            &cfg.obs_groups.policy,
            cfg.actor_obs_normalization,
            device,
        )?;
        let critic_input = ObsInput::new(
            spec,
            &cfg.obs_groups.critic,
            cfg.critic_obs_normalization,
            device,
        )?;
        Ok(Self {
            inference: network.valid(),
            network,
            actor_input,
            critic_input,
        })
    }

    /// Input widths `(actor, critic)` for `cfg` on `spec`, to size the networks.
    pub fn input_dims(cfg: &PolicyConfig, spec: &EnvSpec) -> Result<(usize, usize), Error> {
        Ok((
            spec.obs_dim(&cfg.obs_groups.policy)?,
            spec.obs_dim(&cfg.obs_groups.critic)?,
        ))
    }

    /// The trained networks (autodiff backend).
    pub fn network(&self) -> &ActorCritic<B> {
        &self.network
    }

    /// Replaces the trained networks (after an optimiser step) and refreshes the rollout
    /// copy.
    pub fn set_network(&mut self, network: ActorCritic<B>) {
        self.inference = network.valid();
        self.network = network;
    }

    /// The rollout copy of the networks (inner backend), refreshed after every update.
    pub fn inference(&self) -> &ActorCritic<Inner<B>> {
        &self.inference
    }

    /// The actor's input.
    pub fn actor_input(&self) -> &ObsInput<Inner<B>> {
        &self.actor_input
    }

    /// The critic's input.
    pub fn critic_input(&self) -> &ObsInput<Inner<B>> {
        &self.critic_input
    }

    /// One rollout step in training mode: both inputs merge `obs` into their statistics,
    /// then the actor samples actions (noise from `rng`) and the critic values `obs`.
    pub fn act(
        &mut self,
        obs: &Observations<Inner<B>>,
        rng: &mut HostRng,
    ) -> Result<ActOutput<B>, Error> {
        let actor_x = self.actor_input.read_training(obs)?;
        let critic_x = self.critic_input.read_training(obs)?;
        let dist = self.inference.distribution(actor_x);
        let actions = dist.sample(rng); // [N, A]
        Ok(ActOutput {
            actions_log_prob: dist.log_prob(actions.clone()), // [N]
            dist_params: dist.params(),                       // [N, P]
            values: self.inference.value(critic_x),           // [N]
            actions,
        })
    }

    /// Critic values of `obs` on the rollout copy, statistics unchanged, `[N]`.
    pub fn value(&self, obs: &Observations<Inner<B>>) -> Result<Tensor<Inner<B>, 1>, Error> {
        Ok(self.inference.value(self.critic_input.read(obs)?))
    }

    /// Deterministic actions on the rollout copy, `[N, A]`.
    pub fn act_inference(
        &self,
        obs: &Observations<Inner<B>>,
    ) -> Result<Tensor<Inner<B>, 2>, Error> {
        Ok(self.inference.action_mode(self.actor_input.read(obs)?))
    }

    /// The trained actor's action distribution on stored observations `[M, ...]`
    /// (statistics frozen), with gradients.
    pub fn distribution(
        &self,
        obs: &Observations<Inner<B>>,
    ) -> Result<ActionDistribution<B>, Error> {
        let x = Tensor::<B, 2>::from_inner(self.actor_input.read(obs)?);
        Ok(self.network.distribution(x))
    }

    /// The trained critic's values of stored observations `[M]` (statistics frozen), with
    /// gradients.
    pub fn values(&self, obs: &Observations<Inner<B>>) -> Result<Tensor<B, 1>, Error> {
        let x = Tensor::<B, 2>::from_inner(self.critic_input.read(obs)?);
        Ok(self.network.value(x))
    }

    /// The action std of the rollout copy, `[A]`; `None` for discrete actions.
    pub fn action_std(&self) -> Option<Tensor<Inner<B>, 1>> {
        self.inference.action_std_vector()
    }

    /// The inference policy: the actor's input and weights, on the inner backend.
    pub fn policy(&self) -> Policy<Inner<B>> {
        Policy::new(
            self.actor_input.clone(),
            self.inference.actor.clone(),
            self.inference.is_discrete(),
        )
    }

    /// The inputs' normaliser statistics.
    pub fn inputs_state(&self) -> Result<InputsState, Error> {
        Ok(InputsState {
            actor: self.actor_input.state()?,
            critic: self.critic_input.state()?,
        })
    }

    /// Restores what [`ActorCriticModel::inputs_state`] returned.
    pub fn load_inputs_state(&mut self, state: &InputsState) -> Result<(), Error> {
        self.actor_input.load_state(state.actor.as_ref(), "actor")?;
        self.critic_input
            .load_state(state.critic.as_ref(), "critic")
    }
}
