//! The recurrent actor-critic (rsl_rl's `RNNModel`): actor and critic each read their input
//! through their own [`Memory`] (LSTM or GRU layers) and then their MLP.
//!
//! In a rollout the memories advance one step per environment step, from a hidden state that
//! lives on the device and is reset where an episode ended; [`ActOutput::memory`] hands the
//! state each step started from to the storage. In an update the memories run over whole
//! trajectories ([`Batch::Sequences`]) from those stored states, and only the real steps
//! reach the heads and the losses.

use burn::module::{AutodiffModule, Module, ModuleVisitor};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Bool, Int, Tensor};
use rl_core::{EnvSpec, HostRng, Observations, Sequences};

use crate::model::{Inputs, WEIGHTS_STREAM};
use crate::{
    ActOutput, ActionDistribution, ActorCritic, ActorCriticModel, Batch, Error, InputsState,
    Memory, MemoryConfig, ObsInput, Policy, PolicyConfig, reset_state,
};

type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// The trained parameters of a recurrent actor-critic: the actor's and the critic's memory
/// and the MLP heads (with the action std) that read the memories' outputs.
#[derive(Module, Debug)]
pub struct RecurrentActorCritic<B: Backend> {
    /// The actor's recurrent layers: its input `[.., D_actor]` to `[.., H]`.
    pub actor_memory: Memory<B>,
    /// The critic's recurrent layers: its input `[.., D_critic]` to `[.., H]`.
    pub critic_memory: Memory<B>,
    /// Actor and critic MLPs reading `[.., H]`, and the action std.
    pub heads: ActorCritic<B>,
}

impl<B: Backend> RecurrentActorCritic<B> {
    /// Visits the actor's parameters: its memory, its MLP and the action std.
    pub fn visit_actor<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        self.actor_memory.visit(visitor);
        self.heads.visit_actor(visitor);
    }

    /// Visits the critic's parameters: its memory and its MLP.
    pub fn visit_critic<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        self.critic_memory.visit(visitor);
        self.heads.critic.visit(visitor);
    }
}

/// A hidden state `[L, N, S]` as one row per environment, `[N, L * S]`.
fn flatten_state<B: Backend>(state: Tensor<B, 3>) -> Tensor<B, 2> {
    let [l, n, s] = state.dims();
    state.swap_dims(0, 1).reshape([n, l * s])
}

/// Rows `[N, L * S]` back to a hidden state `[L, N, S]`.
fn unflatten_state<B: Backend>(rows: Tensor<B, 2>, layers: usize) -> Tensor<B, 3> {
    let [n, ls] = rows.dims();
    rows.reshape([n, layers, ls / layers.max(1)])
        .swap_dims(0, 1)
}

/// The recurrent actor-critic with its inputs and the rollout's hidden states.
#[derive(Debug)]
pub struct RnnModel<B: AutodiffBackend> {
    network: RecurrentActorCritic<B>,
    inference: RecurrentActorCritic<Inner<B>>,
    inputs: Inputs<Inner<B>>,
    /// The actor memory's state of every environment, `[L, N, S]`.
    actor_state: Tensor<Inner<B>, 3>,
    /// The critic memory's state of every environment, `[L, N, S]`.
    critic_state: Tensor<Inner<B>, 3>,
}

impl<B: AutodiffBackend> RnnModel<B> {
    /// The rollout copy of the networks (inner backend), refreshed after every update.
    pub fn inference(&self) -> &RecurrentActorCritic<Inner<B>> {
        &self.inference
    }

    /// The hidden states now, actor's and critic's, `[L, N, S]` each.
    pub fn states(&self) -> (&Tensor<Inner<B>, 3>, &Tensor<Inner<B>, 3>) {
        (&self.actor_state, &self.critic_state)
    }

    /// Width of the actor's part of a flattened memory row (`L * S_actor`).
    fn actor_width(&self) -> usize {
        let m = &self.network.actor_memory;
        m.num_layers() * m.state_dim()
    }

    fn check_rows(&self, obs_rows: usize) -> Result<(), Error> {
        let [_, n, _] = self.actor_state.dims();
        if obs_rows == n {
            Ok(())
        } else {
            Err(Error::DimensionMismatch {
                what: "environments of the observations and of the recurrent state".into(),
                expected: n,
                got: obs_rows,
            })
        }
    }

    /// The trained memory `memory` run over the trajectories `seq` read through `input`
    /// from the first hidden states `first` `[K, L * S]`; the real steps' outputs, `[M, H]`.
    fn run_sequences(
        memory: &Memory<B>,
        input: &ObsInput<Inner<B>>,
        seq: &Sequences<Inner<B>>,
        first: Tensor<Inner<B>, 2>,
    ) -> Result<Tensor<B, 2>, Error> {
        let x = input.read(&seq.observations)?; // [T * K, D]
        let [rows, d] = x.dims();
        let (t_len, k) = (seq.length, seq.count);
        if rows != t_len * k {
            return Err(Error::DimensionMismatch {
                what: "rows of the padded trajectories (length x count)".into(),
                expected: t_len * k,
                got: rows,
            });
        }
        let x = Tensor::<B, 3>::from_inner(x.reshape([t_len, k, d])); // [T, K, D]
        let state = Tensor::<B, 3>::from_inner(unflatten_state(first, memory.num_layers()));
        let (out, _) = memory.sequence(x, state); // [T, K, H]
        let samples = Tensor::<B, 1, Int>::from_inner(seq.samples.clone()); // [M]
        Ok(out
            .reshape([t_len * k, memory.hidden_dim()])
            .select(0, samples)) // [M, H]
    }

    fn sequences<'a>(batch: Batch<'a, Inner<B>>) -> Result<&'a Sequences<Inner<B>>, Error> {
        match batch {
            Batch::Sequences(seq) => Ok(seq),
            Batch::Flat(_) => Err(Error::Record(
                "a recurrent model is updated on whole trajectories, not flat samples".into(),
            )),
        }
    }
}

impl<B: AutodiffBackend> ActorCriticModel<B> for RnnModel<B> {
    type Network = RecurrentActorCritic<B>;

    fn new(
        cfg: &PolicyConfig,
        spec: &EnvSpec,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self, Error> {
        let rnn = cfg.rnn().ok_or_else(|| Error::Config {
            field: "policy.class".into(),
            message: "a recurrent model needs class = \"rnn\"".into(),
        })?;
        let inputs = Inputs::new(cfg, spec, device)?;
        // Drawn on the host from the weights' stream, in this order: the actor's memory, the
        // critic's memory, then the heads (actor MLP, critic MLP).
        let mut rng = HostRng::with_stream(seed, WEIGHTS_STREAM);
        let memory = |input: usize, rng: &mut HostRng| {
            MemoryConfig::new(input, rnn.hidden_dim, rnn.num_layers, rnn.rnn_type)
                .init_with_rng::<B>(rng, device)
        };
        let actor_memory = memory(inputs.actor.dim(), &mut rng);
        let critic_memory = memory(inputs.critic.dim(), &mut rng);
        let mut heads = ActorCritic::<B>::new(
            cfg,
            rnn.hidden_dim,
            rnn.hidden_dim,
            &spec.action_space,
            &mut rng,
            device,
        );
        if let Some(std) = cfg.scheduled_std(0) {
            heads = heads.set_std(std);
        }
        let network = RecurrentActorCritic {
            actor_memory,
            critic_memory,
            heads,
        };
        let inference = network.valid();
        let actor_state = inference.actor_memory.zero_state(spec.num_envs, device);
        let critic_state = inference.critic_memory.zero_state(spec.num_envs, device);
        Ok(Self {
            network,
            inference,
            inputs,
            actor_state,
            critic_state,
        })
    }

    fn network(&self) -> &RecurrentActorCritic<B> {
        &self.network
    }

    fn set_network(&mut self, network: RecurrentActorCritic<B>) {
        self.network = network;
    }

    fn sync_inference(&mut self) {
        self.inference = self.network.valid();
    }

    fn visit_actor<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        self.network.visit_actor(visitor);
    }

    fn visit_critic<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        self.network.visit_critic(visitor);
    }

    fn set_std(&mut self, std: f32) {
        self.network.heads = self.network.heads.clone().set_std(std);
        self.sync_inference();
    }

    fn act(
        &mut self,
        obs: &Observations<Inner<B>>,
        rng: &mut HostRng,
    ) -> Result<ActOutput<B>, Error> {
        let actor_x = self.inputs.actor.read_training(obs)?; // [N, D_actor]
        let critic_x = self.inputs.critic.read_training(obs)?; // [N, D_critic]
        self.check_rows(actor_x.dims()[0])?;
        let memory = self.memory(); // the states this step starts from
        let net = &self.inference;
        let (actor_h, actor_state) = net.actor_memory.step(actor_x, self.actor_state.clone());
        let (critic_h, critic_state) = net.critic_memory.step(critic_x, self.critic_state.clone());
        self.actor_state = actor_state;
        self.critic_state = critic_state;
        let dist = net.heads.distribution(actor_h); // on [N, H]
        let actions = dist.sample(rng); // [N, A]
        Ok(ActOutput {
            actions_log_prob: dist.log_prob(actions.clone()), // [N]
            dist_params: dist.params(),                       // [N, P]
            values: net.heads.value(critic_h),                // [N]
            actions,
            memory,
        })
    }

    fn reset(&mut self, dones: &Tensor<Inner<B>, 1, Bool>) {
        self.actor_state = reset_state(self.actor_state.clone(), dones.clone());
        self.critic_state = reset_state(self.critic_state.clone(), dones.clone());
    }

    fn is_recurrent(&self) -> bool {
        true
    }

    fn memory(&self) -> Option<Tensor<Inner<B>, 2>> {
        Some(Tensor::cat(
            vec![
                flatten_state(self.actor_state.clone()),
                flatten_state(self.critic_state.clone()),
            ],
            1,
        )) // [N, L * (S_actor + S_critic)]
    }

    fn load_memory(&mut self, memory: Tensor<Inner<B>, 2>) -> Result<(), Error> {
        let [n, width] = memory.dims();
        let [_, want_n, _] = self.actor_state.dims();
        let critic = &self.network.critic_memory;
        let want_width = self.actor_width() + critic.num_layers() * critic.state_dim();
        if n != want_n || width != want_width {
            return Err(Error::Record(format!(
                "the checkpoint's recurrent state is [{n}, {width}], the model's is [{want_n}, {want_width}]"
            )));
        }
        let a = self.actor_width();
        self.actor_state = unflatten_state(
            memory.clone().narrow(1, 0, a),
            self.network.actor_memory.num_layers(),
        );
        self.critic_state = unflatten_state(memory.narrow(1, a, width - a), critic.num_layers());
        Ok(())
    }

    fn value(&self, obs: &Observations<Inner<B>>) -> Result<Tensor<Inner<B>, 1>, Error> {
        let x = self.inputs.critic.read(obs)?;
        self.check_rows(x.dims()[0])?;
        let (h, _) = self
            .inference
            .critic_memory
            .step(x, self.critic_state.clone());
        Ok(self.inference.heads.value(h))
    }

    fn distribution(&self, batch: Batch<'_, Inner<B>>) -> Result<ActionDistribution<B>, Error> {
        let seq = Self::sequences(batch)?;
        let first = seq.memory.clone().narrow(1, 0, self.actor_width());
        let h = Self::run_sequences(&self.network.actor_memory, &self.inputs.actor, seq, first)?;
        Ok(self.network.heads.distribution(h))
    }

    fn values(&self, batch: Batch<'_, Inner<B>>) -> Result<Tensor<B, 1>, Error> {
        let seq = Self::sequences(batch)?;
        let [_, width] = seq.memory.dims();
        let a = self.actor_width();
        let first = seq.memory.clone().narrow(1, a, width - a);
        let h = Self::run_sequences(&self.network.critic_memory, &self.inputs.critic, seq, first)?;
        Ok(self.network.heads.value(h))
    }

    fn action_std(&self) -> Option<Tensor<Inner<B>, 1>> {
        self.inference.heads.action_std_vector()
    }

    fn flop_per_sample(&self) -> (f64, f64) {
        let n = &self.network;
        let (actor, critic) = (&n.heads.actor, &n.heads.critic);
        (
            n.actor_memory.forward_flop()
                + n.critic_memory.forward_flop()
                + actor.forward_flop()
                + critic.forward_flop(),
            n.actor_memory.train_flop()
                + n.critic_memory.train_flop()
                + actor.train_flop()
                + critic.train_flop(),
        )
    }

    fn policy(&self) -> Policy<Inner<B>> {
        Policy::recurrent(
            self.inputs.actor.clone(),
            self.inference.actor_memory.clone(),
            self.inference.heads.actor.clone(),
            self.inference.heads.is_discrete(),
        )
    }

    fn inputs_state(&self) -> Result<InputsState, Error> {
        self.inputs.state()
    }

    fn load_inputs_state(&mut self, state: &InputsState) -> Result<(), Error> {
        self.inputs.load_state(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelClass, RnnType};
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::TensorData;
    use rl_core::ActionSpace;
    use std::collections::BTreeMap;

    type B = Autodiff<NdArray>;
    type I = NdArray;

    fn spec() -> EnvSpec {
        EnvSpec {
            task: "test".into(),
            num_envs: 4,
            obs_groups: BTreeMap::from([("policy".to_string(), 3)]),
            action_space: ActionSpace::Box {
                low: vec![-1.0; 2],
                high: vec![1.0; 2],
            },
            max_episode_length: 10,
            step_dt: 0.1,
        }
    }

    fn cfg(rnn_type: RnnType) -> PolicyConfig {
        PolicyConfig {
            class: ModelClass::Rnn,
            rnn_type: Some(rnn_type),
            rnn_hidden_dim: Some(5),
            rnn_num_layers: Some(2),
            actor_hidden_dims: vec![8],
            critic_hidden_dims: vec![8],
            ..Default::default()
        }
    }

    fn obs(t: usize) -> Observations<I> {
        let values: Vec<f32> = (0..12)
            .map(|i| ((t * 12 + i) as f32 * 0.61).cos())
            .collect();
        Observations::new().with(
            "policy",
            Tensor::<I, 2>::from_data(TensorData::new(values, [4, 3]), &Default::default()),
        )
    }

    fn values<const D: usize>(t: Tensor<I, D>) -> Vec<f32> {
        t.into_data().to_vec().expect("f32")
    }

    fn dones(d: [bool; 4]) -> Tensor<I, 1, Bool> {
        Tensor::from_data(TensorData::new(d.to_vec(), [4]), &Default::default())
    }

    #[test]
    fn recurrent_settings_default_to_rsl_rl_and_are_checked() {
        let bare = PolicyConfig {
            class: ModelClass::Rnn,
            ..Default::default()
        };
        assert_eq!(bare.rnn(), Some(PolicyConfig::DEFAULT_RNN));
        assert_eq!(PolicyConfig::DEFAULT_RNN.hidden_dim, 256);
        assert_eq!(PolicyConfig::DEFAULT_RNN.rnn_type, RnnType::Lstm);
        assert_eq!(PolicyConfig::default().rnn(), None);
        let zero = PolicyConfig {
            rnn_hidden_dim: Some(0),
            ..bare.clone()
        };
        let err = zero.validate().expect_err("zero width");
        assert!(err.to_string().contains("policy.rnn_hidden_dim"), "{err}");
        let layers = PolicyConfig {
            rnn_num_layers: Some(0),
            ..bare
        };
        assert!(layers.validate().is_err());
        // Recurrent keys on an MLP are ignored (and named, for a warning).
        let mlp = PolicyConfig {
            rnn_type: Some(RnnType::Gru),
            rnn_num_layers: Some(2),
            ..Default::default()
        };
        mlp.validate().expect("ignored, not refused");
        assert_eq!(mlp.ignored_rnn_keys(), vec!["rnn_type", "rnn_num_layers"]);
        assert!(cfg(RnnType::Gru).ignored_rnn_keys().is_empty());
    }

    #[test]
    fn the_policy_repeats_the_models_means_step_by_step_and_resets_where_episodes_end() {
        for rnn_type in [RnnType::Lstm, RnnType::Gru] {
            let dev = Default::default();
            let mut model = RnnModel::<B>::new(&cfg(rnn_type), &spec(), 7, &dev).expect("model");
            let mut policy = model.policy();
            let mut rng = HostRng::new(1);
            for t in 0..4 {
                let out = model.act(&obs(t), &mut rng).expect("act");
                let mean = out.dist_params.narrow(1, 0, 2); // [N, A] of [mean, std]
                let act = policy.act(&obs(t)).expect("act");
                let err = (act - mean).abs().max().into_scalar();
                assert!(err < 1e-6, "{rnn_type} step {t}: {err}");
                if t == 1 {
                    let d = dones([false, true, false, true]);
                    model.reset(&d);
                    policy.reset(&d);
                }
            }
            // The model's states are zero exactly where an episode ended.
            model.reset(&dones([true, false, false, false]));
            let (actor, critic) = model.states();
            for state in [actor.clone(), critic.clone()] {
                let [l, _, s] = state.dims();
                let env = |e: usize| values(state.clone().slice([0..l, e..e + 1, 0..s]));
                assert!(env(0).iter().all(|&v| v == 0.0), "{rnn_type}");
                assert!(env(1).iter().any(|&v| v != 0.0), "{rnn_type}");
            }
            // The flattened memory round-trips.
            let memory = model.memory().expect("memory");
            let mut other = RnnModel::<B>::new(&cfg(rnn_type), &spec(), 8, &dev).expect("model");
            other.load_memory(memory.clone()).expect("load");
            assert_eq!(
                values(other.memory().expect("memory")),
                values(memory.clone())
            );
            assert!(other.load_memory(memory.narrow(1, 0, 3)).is_err());
        }
    }

    #[test]
    fn a_recurrent_policy_round_trips_through_its_bytes_and_checks_its_kind() {
        let dev = Default::default();
        let model = RnnModel::<B>::new(&cfg(RnnType::Gru), &spec(), 3, &dev).expect("model");
        let bytes = model.policy().to_bytes().expect("bytes");
        let mut a = model.policy();
        let mut b =
            Policy::<I>::from_bytes(&cfg(RnnType::Gru), &spec(), &bytes, &dev).expect("load");
        assert_eq!(b.memory().map(Memory::rnn_type), Some(RnnType::Gru));
        for t in 0..3 {
            assert_eq!(
                values(a.act(&obs(t)).expect("act")),
                values(b.act(&obs(t)).expect("act"))
            );
        }
        // Cleared, the policy starts again from zero memories.
        let first = values(b.act(&obs(0)).expect("act"));
        b.clear();
        let again = values(b.act(&obs(0)).expect("act"));
        let mut fresh = model.policy();
        assert_eq!(again, values(fresh.act(&obs(0)).expect("act")));
        assert_ne!(first, again, "the memory changes the action");
        // Another layer type, an MLP config, or an MLP record are refused by name.
        let err = Policy::<I>::from_bytes(&cfg(RnnType::Lstm), &spec(), &bytes, &dev)
            .expect_err("lstm config");
        assert!(err.to_string().contains("rnn_type"), "{err}");
        let mlp = PolicyConfig {
            actor_hidden_dims: vec![8],
            critic_hidden_dims: vec![8],
            ..Default::default()
        };
        let err = Policy::<I>::from_bytes(&mlp, &spec(), &bytes, &dev).expect_err("mlp config");
        assert!(err.to_string().contains("recurrent"), "{err}");
        let mlp_bytes = crate::MlpModel::<B>::new(&mlp, &spec(), 3, &dev)
            .expect("mlp")
            .policy()
            .to_bytes()
            .expect("bytes");
        let err = Policy::<I>::from_bytes(&cfg(RnnType::Gru), &spec(), &mlp_bytes, &dev)
            .expect_err("mlp record");
        assert!(err.to_string().contains("MLP"), "{err}");
    }
}
