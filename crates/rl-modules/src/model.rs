//! Actor-critic models that own their inputs: each network selects its observation groups
//! and normalises them with its own normaliser, as rsl_rl 5.x's models do.
//!
//! [`ActorCriticModel`] is what an algorithm needs from a model; [`MlpModel`] is the MLP
//! implementation. A model keeps its trained weights on the autodiff backend `B` and a copy on
//! the inner backend for rollouts; the inputs (and their normalisers) live on the inner
//! backend, where the observations are. A recurrent model is a second implementation, with
//! its hidden state beside its inputs (reset where episodes end, [`ActorCriticModel::reset`]).

use burn::module::{AutodiffModule, Module, ModuleVisitor};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Bool, Tensor};
use rl_core::{EnvSpec, HostRng, Observations, Sequences};

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
    /// A recurrent model's hidden state before this step (what the update replays from),
    /// flattened, `[N, S]`; `None` for a model without memory.
    pub memory: Option<Tensor<Inner<B>, 2>>,
}

/// Stored samples that a model evaluates in an update: flat samples `[M, ...]` for a model
/// without memory, or whole trajectories for a recurrent one.
#[derive(Debug)]
pub enum Batch<'a, B: burn::tensor::backend::Backend> {
    /// `M` independent samples (observation groups `[M, D]`).
    Flat(&'a Observations<B>),
    /// Padded trajectories; the outputs are the `M` rows of `Sequences::samples`.
    Sequences(&'a Sequences<B>),
}

/// The normaliser statistics of a model's inputs, for checkpoints.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InputsState {
    /// The actor input's statistics (when normalised).
    pub actor: Option<NormalizerState>,
    /// The critic input's statistics (when normalised).
    pub critic: Option<NormalizerState>,
}

/// What an algorithm needs from an actor-critic model: acting in training mode, values,
/// the distribution and values with gradients for the update, the trained parameters (for
/// the optimiser and gradient clipping), the inference policy, and the inputs' statistics.
pub trait ActorCriticModel<B: AutodiffBackend>: Sized {
    /// The trained parameters, a Burn module on the autodiff backend.
    type Network: AutodiffModule<B> + Clone;

    /// A freshly initialised model of `cfg` for the environment `spec`; the weights are
    /// drawn on the host from a stream of `seed`, so that one seed gives the same initial
    /// weights on every backend.
    fn new(
        cfg: &PolicyConfig,
        spec: &EnvSpec,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self, Error>;

    /// The trained parameters.
    fn network(&self) -> &Self::Network;

    /// Replaces the trained parameters (after an optimiser step). The rollout copy keeps
    /// the previous weights until [`ActorCriticModel::sync_inference`]: an update refreshes
    /// it once, after its last mini-batch.
    fn set_network(&mut self, network: Self::Network);

    /// Refreshes the rollout copy from the trained parameters.
    fn sync_inference(&mut self);

    /// Visits the actor's parameters (with the action std), the group whose gradient norm
    /// is clipped on its own.
    fn visit_actor<V: ModuleVisitor<B>>(&self, visitor: &mut V);

    /// Visits the critic's parameters.
    fn visit_critic<V: ModuleVisitor<B>>(&self, visitor: &mut V);

    /// Sets every entry of the action std (std schedules); no effect for discrete actions.
    fn set_std(&mut self, std: f32);

    /// One rollout step in training mode: the inputs merge `obs` into their statistics, the
    /// actor samples actions (noise from `rng`) and the critic values `obs`.
    fn act(
        &mut self,
        obs: &Observations<B::InnerBackend>,
        rng: &mut HostRng,
    ) -> Result<ActOutput<B>, Error>;

    /// Forgets the memory of the environments where `dones` `[N]` is true (recurrent
    /// models; an MLP has none).
    fn reset(&mut self, dones: &Tensor<B::InnerBackend, 1, Bool>) {
        let _ = dones;
    }

    /// Whether the model carries a hidden state (and is updated on [`Batch::Sequences`]).
    fn is_recurrent(&self) -> bool {
        false
    }

    /// The hidden state of every environment now, flattened as in [`ActOutput::memory`],
    /// `[N, S]`, for checkpoints; `None` for a model without memory.
    fn memory(&self) -> Option<Tensor<B::InnerBackend, 2>> {
        None
    }

    /// Restores a hidden state that [`ActorCriticModel::memory`] returned.
    ///
    /// # Errors
    /// A state of another shape, or any state for a model without memory.
    fn load_memory(&mut self, memory: Tensor<B::InnerBackend, 2>) -> Result<(), Error> {
        let _ = memory;
        Err(Error::Record(
            "the checkpoint holds a recurrent hidden state, but the model has no memory".into(),
        ))
    }

    /// Critic values of `obs` on the rollout copy (after the last step's hidden state, which
    /// is not advanced), statistics unchanged, `[N]`.
    fn value(
        &self,
        obs: &Observations<B::InnerBackend>,
    ) -> Result<Tensor<B::InnerBackend, 1>, Error>;

    /// The trained actor's action distribution on stored samples (statistics frozen), with
    /// gradients, `[M]` samples.
    fn distribution(
        &self,
        batch: Batch<'_, B::InnerBackend>,
    ) -> Result<ActionDistribution<B>, Error>;

    /// The trained critic's values of stored samples, `[M]`, with gradients.
    fn values(&self, batch: Batch<'_, B::InnerBackend>) -> Result<Tensor<B, 1>, Error>;

    /// The action std of the rollout copy, `[A]`; `None` for discrete actions.
    fn action_std(&self) -> Option<Tensor<B::InnerBackend, 1>>;

    /// Matrix FLOPs per sample of a forward pass and of a forward and backward pass (actor
    /// and critic together).
    fn flop_per_sample(&self) -> (f64, f64);

    /// The inference policy: the actor's input and weights, on the inner backend.
    fn policy(&self) -> Policy<B::InnerBackend>;

    /// The inputs' normaliser statistics.
    fn inputs_state(&self) -> Result<InputsState, Error>;

    /// Restores what [`ActorCriticModel::inputs_state`] returned.
    fn load_inputs_state(&mut self, state: &InputsState) -> Result<(), Error>;
}

/// The stream of a run's seed that the initial weights are drawn from ([`HostRng::with_stream`]).
/// Stream 0 is the algorithm's (action noise and mini-batches, `HostRng::new(seed)`).
pub(crate) const WEIGHTS_STREAM: u64 = 1;

/// The actor's and the critic's inputs of a model, each with its groups and normaliser.
#[derive(Debug, Clone)]
pub(crate) struct Inputs<B: burn::tensor::backend::Backend> {
    pub(crate) actor: ObsInput<B>,
    pub(crate) critic: ObsInput<B>,
}

impl<B: burn::tensor::backend::Backend> Inputs<B> {
    /// The inputs that `cfg` names for the environment `spec`.
    pub(crate) fn new(
        cfg: &PolicyConfig,
        spec: &EnvSpec,
        device: &B::Device,
    ) -> Result<Self, Error> {
        Ok(Self {
            actor: ObsInput::new(
                spec,
                &cfg.obs_groups.policy,
                cfg.actor_obs_normalization,
                device,
            )?,
            critic: ObsInput::new(
                spec,
                &cfg.obs_groups.critic,
                cfg.critic_obs_normalization,
                device,
            )?,
        })
    }

    /// Both normalisers' statistics.
    pub(crate) fn state(&self) -> Result<InputsState, Error> {
        Ok(InputsState {
            actor: self.actor.state()?,
            critic: self.critic.state()?,
        })
    }

    /// Restores what [`Inputs::state`] returned.
    pub(crate) fn load_state(&mut self, state: &InputsState) -> Result<(), Error> {
        self.actor.load_state(state.actor.as_ref(), "actor")?;
        self.critic.load_state(state.critic.as_ref(), "critic")
    }
}

/// The MLP actor-critic with its inputs.
#[derive(Debug)]
pub struct MlpModel<B: AutodiffBackend> {
    network: ActorCritic<B>,
    inference: ActorCritic<Inner<B>>,
    inputs: Inputs<Inner<B>>,
}

impl<B: AutodiffBackend> MlpModel<B> {
    /// The rollout copy of the networks (inner backend), refreshed after every update.
    pub fn inference(&self) -> &ActorCritic<Inner<B>> {
        &self.inference
    }

    /// The actor's input.
    pub fn actor_input(&self) -> &ObsInput<Inner<B>> {
        &self.inputs.actor
    }

    /// The critic's input.
    pub fn critic_input(&self) -> &ObsInput<Inner<B>> {
        &self.inputs.critic
    }
}

impl<B: AutodiffBackend> ActorCriticModel<B> for MlpModel<B> {
    type Network = ActorCritic<B>;

    fn new(
        cfg: &PolicyConfig,
        spec: &EnvSpec,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self, Error> {
        let inputs = Inputs::new(cfg, spec, device)?;
        // Drawn on the host: the same seed gives the same weights on every backend, and
        // networks built on parallel threads (a sweep, a test binary) cannot draw from each
        // other's streams.
        let mut rng = HostRng::with_stream(seed, WEIGHTS_STREAM);
        let mut network = ActorCritic::<B>::new(
            cfg,
            inputs.actor.dim(),
            inputs.critic.dim(),
            &spec.action_space,
            &mut rng,
            device,
        );
        if let Some(std) = cfg.scheduled_std(0) {
            network = network.set_std(std);
        }
        Ok(Self {
            inference: network.valid(),
            network,
            inputs,
        })
    }

    fn network(&self) -> &ActorCritic<B> {
        &self.network
    }

    fn set_network(&mut self, network: ActorCritic<B>) {
        self.network = network;
    }

    fn sync_inference(&mut self) {
        self.inference = self.network.valid();
    }

    fn visit_actor<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        self.network.visit_actor(visitor);
    }

    fn visit_critic<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        self.network.critic.visit(visitor);
    }

    fn set_std(&mut self, std: f32) {
        self.network = self.network.clone().set_std(std);
        self.sync_inference();
    }

    fn act(
        &mut self,
        obs: &Observations<Inner<B>>,
        rng: &mut HostRng,
    ) -> Result<ActOutput<B>, Error> {
        let actor_x = self.inputs.actor.read_training(obs)?;
        let critic_x = self.inputs.critic.read_training(obs)?;
        let dist = self.inference.distribution(actor_x);
        let actions = dist.sample(rng); // [N, A]
        Ok(ActOutput {
            actions_log_prob: dist.log_prob(actions.clone()), // [N]
            dist_params: dist.params(),                       // [N, P]
            values: self.inference.value(critic_x),           // [N]
            actions,
            memory: None,
        })
    }

    fn value(&self, obs: &Observations<Inner<B>>) -> Result<Tensor<Inner<B>, 1>, Error> {
        Ok(self.inference.value(self.inputs.critic.read(obs)?))
    }

    fn distribution(&self, batch: Batch<'_, Inner<B>>) -> Result<ActionDistribution<B>, Error> {
        let x = Tensor::<B, 2>::from_inner(self.inputs.actor.read(flat(batch)?)?);
        Ok(self.network.distribution(x))
    }

    fn values(&self, batch: Batch<'_, Inner<B>>) -> Result<Tensor<B, 1>, Error> {
        let x = Tensor::<B, 2>::from_inner(self.inputs.critic.read(flat(batch)?)?);
        Ok(self.network.value(x))
    }

    fn action_std(&self) -> Option<Tensor<Inner<B>, 1>> {
        self.inference.action_std_vector()
    }

    fn flop_per_sample(&self) -> (f64, f64) {
        let (actor, critic) = (&self.network.actor, &self.network.critic);
        (
            actor.forward_flop() + critic.forward_flop(),
            actor.train_flop() + critic.train_flop(),
        )
    }

    fn policy(&self) -> Policy<Inner<B>> {
        Policy::new(
            self.inputs.actor.clone(),
            self.inference.actor.clone(),
            self.inference.is_discrete(),
        )
    }

    fn inputs_state(&self) -> Result<InputsState, Error> {
        self.inputs.state()
    }

    fn load_inputs_state(&mut self, state: &InputsState) -> Result<(), Error> {
        self.inputs.load_state(state)
    }
}

// Copy and Clone by hand: the derives would ask `B: Copy`.
impl<B: burn::tensor::backend::Backend> Clone for Batch<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: burn::tensor::backend::Backend> Copy for Batch<'_, B> {}

/// The observations of a flat batch; trajectories are an error for a model without memory.
fn flat<B: burn::tensor::backend::Backend>(batch: Batch<'_, B>) -> Result<&Observations<B>, Error> {
    match batch {
        Batch::Flat(obs) => Ok(obs),
        Batch::Sequences(_) => Err(Error::Record(
            "an MLP model is updated on flat samples, not trajectories".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ObsGroups, parameter_shapes};
    use burn::backend::{Autodiff, Flex, NdArray};
    use burn::module::Param;
    use burn::tensor::backend::Backend;
    use rl_core::ActionSpace;
    use std::collections::BTreeMap;

    fn spec(action_space: ActionSpace) -> EnvSpec {
        EnvSpec {
            task: "test".into(),
            num_envs: 4,
            obs_groups: BTreeMap::from([("policy".to_string(), 5), ("extra".to_string(), 3)]),
            action_space,
            max_episode_length: 10,
            step_dt: 0.1,
        }
    }

    fn cfg() -> PolicyConfig {
        PolicyConfig {
            actor_hidden_dims: vec![32, 16],
            critic_hidden_dims: vec![24],
            actor_obs_normalization: true,
            obs_groups: ObsGroups {
                policy: vec!["policy".into()],
                critic: vec!["policy".into(), "extra".into()],
            },
            ..Default::default()
        }
    }

    fn spaces() -> [ActionSpace; 2] {
        [
            ActionSpace::Box {
                low: vec![-1.0; 2],
                high: vec![1.0; 2],
            },
            ActionSpace::Discrete { n: 3 },
        ]
    }

    /// The bits of every float parameter of a module, in visiting order.
    fn parameter_bits<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<u32>> {
        struct Bits(Vec<Vec<u32>>);
        impl<B: Backend> ModuleVisitor<B> for Bits {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let values: Vec<f32> = param.val().into_data().to_vec().expect("f32");
                self.0.push(values.into_iter().map(f32::to_bits).collect());
            }
        }
        let mut bits = Bits(Vec::new());
        module.visit(&mut bits);
        bits.0
    }

    fn model<B: AutodiffBackend>(space: &ActionSpace, seed: u64) -> MlpModel<B> {
        MlpModel::<B>::new(&cfg(), &spec(space.clone()), seed, &Default::default()).expect("model")
    }

    #[test]
    fn one_seed_gives_bit_identical_weights_on_flex_and_ndarray() {
        type F = Autodiff<Flex>;
        type N = Autodiff<NdArray>;
        for space in spaces() {
            let (f, n) = (model::<F>(&space, 21), model::<N>(&space, 21));
            assert_eq!(
                parameter_shapes(f.network()),
                parameter_shapes(n.network()),
                "{space:?}"
            );
            let bits = parameter_bits(f.network());
            // Actor (3 layers), critic (2 layers), weight and bias each, and the std.
            let expected = 2 * (3 + 2) + usize::from(!space.is_discrete());
            assert_eq!(bits.len(), expected, "{space:?}");
            assert_eq!(bits, parameter_bits(n.network()), "{space:?}: trained copy");
            assert_eq!(
                bits,
                parameter_bits(n.inference()),
                "{space:?}: rollout copy"
            );
            assert_eq!(
                parameter_bits(f.inference()),
                parameter_bits(n.inference()),
                "{space:?}"
            );
        }
    }

    #[test]
    fn another_seed_gives_other_weights_in_every_layer() {
        type N = Autodiff<NdArray>;
        for space in spaces() {
            let a = parameter_bits(model::<N>(&space, 21).network());
            let b = parameter_bits(model::<N>(&space, 22).network());
            assert_eq!(a.len(), b.len());
            let std = usize::from(!space.is_discrete());
            for (i, (x, y)) in a.iter().zip(&b).enumerate().take(a.len() - std) {
                assert_ne!(x, y, "{space:?}: parameter {i} is the same for two seeds");
            }
            // The std is a constant, not a draw.
            assert_eq!(a[a.len() - std..], b[b.len() - std..], "{space:?}");
        }
    }

    #[test]
    fn the_weights_do_not_repeat_the_action_noise() {
        type N = Autodiff<NdArray>;
        let spaces = spaces();
        let m = model::<N>(&spaces[0], 21);
        let first = m.network().actor.layers()[0].weight.val();
        let [fan_in, fan_out] = first.dims();
        let bound = 1.0 / (fan_in as f64).sqrt();
        let drawn: Vec<f32> = first.into_data().to_vec().expect("f32");
        // The same draws from the algorithm's stream (stream 0 of the seed).
        let noise_stream = HostRng::new(21).uniform_values(fan_in * fan_out, -bound, bound);
        assert_ne!(drawn, noise_stream);
        let weights_stream = HostRng::with_stream(21, WEIGHTS_STREAM).uniform_values(
            fan_in * fan_out,
            -bound,
            bound,
        );
        assert_eq!(drawn, weights_stream, "the documented stream and order");
    }
}
