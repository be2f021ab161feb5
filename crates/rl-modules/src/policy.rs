//! The inference policy: what `play`, benchmarks and export run. The actor's weights, its
//! input (groups and normaliser statistics) and, for a recurrent actor, its memory and the
//! hidden state it carries between steps; no critic, no optimiser, no random stream.

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::{Bool, Tensor, backend::Backend};
use rl_core::{EnvSpec, HostRng, Observations};
use serde::{Deserialize, Serialize};

use crate::{
    ActorCritic, Error, Memory, MemoryConfig, Mlp, NormalizerState, ObsInput, PolicyConfig,
    RnnType, reset_state,
};

/// The deterministic policy of a trained actor: observation groups in, the mode of the
/// action distribution out (the Gaussian's mean, or the most likely choice as a float index
/// `[N, 1]` for discrete actions).
///
/// A recurrent policy keeps the hidden state of the environments it acts for: it starts at
/// zero, advances on every [`Policy::act`], and must be reset with [`Policy::reset`] where an
/// episode ended (as training did).
#[derive(Debug, Clone)]
pub struct Policy<B: Backend> {
    input: ObsInput<B>,
    memory: Option<Memory<B>>,
    actor: Mlp<B>,
    discrete: bool,
    /// The memory's state, `[L, N, S]`; `None` until the first step (and for an MLP).
    state: Option<Tensor<B, 3>>,
}

/// What [`Policy::to_bytes`] writes (MessagePack): enough, with the run's `[policy]` config
/// and the task, to rebuild the policy anywhere.
#[derive(Serialize, Deserialize)]
struct PolicyRecord {
    /// Format of this record (1).
    version: u32,
    /// The actor's weights, Burn's named MessagePack record.
    #[serde(with = "serde_bytes")]
    actor: Vec<u8>,
    /// The observation groups the actor reads, in order.
    groups: Vec<String>,
    /// The normaliser's statistics, when the input is normalised.
    normalizer: Option<NormalizerState>,
    /// Whether actions are discrete (the output is logits).
    discrete: bool,
    /// A recurrent actor's memory weights (Burn's named MessagePack record); absent for an
    /// MLP (and in records written before recurrent policies).
    #[serde(default, with = "serde_bytes")]
    memory: Option<Vec<u8>>,
    /// A recurrent actor's layer type.
    #[serde(default)]
    rnn_type: Option<RnnType>,
}

const RECORD_VERSION: u32 = 1;

impl<B: Backend> Policy<B> {
    /// A policy from its parts: the actor's input, its network, and whether the network
    /// outputs logits of a discrete action.
    pub fn new(input: ObsInput<B>, actor: Mlp<B>, discrete: bool) -> Self {
        Self {
            input,
            memory: None,
            actor,
            discrete,
            state: None,
        }
    }

    /// A recurrent policy: the input, read through `memory`, then `actor`.
    pub fn recurrent(input: ObsInput<B>, memory: Memory<B>, actor: Mlp<B>, discrete: bool) -> Self {
        Self {
            memory: Some(memory),
            ..Self::new(input, actor, discrete)
        }
    }

    /// The actor's recurrent layers, for a recurrent policy.
    pub fn memory(&self) -> Option<&Memory<B>> {
        self.memory.as_ref()
    }

    /// The hidden state now, `[L, N, S]` (`None` for an MLP or before the first step).
    pub fn state(&self) -> Option<&Tensor<B, 3>> {
        self.state.as_ref()
    }

    /// Forgets the hidden state of the environments where `dones` `[N]` is true (their
    /// episode ended); nothing for an MLP.
    pub fn reset(&mut self, dones: &Tensor<B, 1, Bool>) {
        if let Some(state) = self.state.take() {
            self.state = Some(reset_state(state, dones.clone()));
        }
    }

    /// Forgets the hidden state of every environment (a new batch of episodes).
    pub fn clear(&mut self) {
        self.state = None;
    }

    /// The actor's input (groups and normaliser).
    pub fn input(&self) -> &ObsInput<B> {
        &self.input
    }

    /// The actor network.
    pub fn actor(&self) -> &Mlp<B> {
        &self.actor
    }

    /// Whether the actions are discrete.
    pub fn is_discrete(&self) -> bool {
        self.discrete
    }

    /// Deterministic actions for `obs`, `[N, A]`; a recurrent policy advances its hidden
    /// state (from zero for a batch of another size than the last).
    pub fn act(&mut self, obs: &Observations<B>) -> Result<Tensor<B, 2>, Error> {
        let mut x = self.input.read(obs)?; // [N, D]
        if let Some(memory) = &self.memory {
            let n = x.dims()[0];
            let state = match self.state.take() {
                Some(s) if s.dims()[1] == n => s,
                _ => memory.zero_state(n, &x.device()),
            };
            let (h, state) = memory.step(x, state); // [N, H], [L, N, S]
            self.state = Some(state);
            x = h;
        }
        let out = self.actor.forward(x);
        Ok(if self.discrete {
            out.argmax(1).float()
        } else {
            out
        })
    }

    /// Serialises the policy (weights at full precision).
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
        let actor = Recorder::<B>::record(&recorder, self.actor.clone().into_record(), ())
            .map_err(|e| Error::Record(format!("cannot serialise the actor: {e}")))?;
        let memory = self
            .memory
            .as_ref()
            .map(|m| {
                Recorder::<B>::record(&recorder, m.clone().into_record(), ())
                    .map_err(|e| Error::Record(format!("cannot serialise the memory: {e}")))
            })
            .transpose()?;
        let record = PolicyRecord {
            version: RECORD_VERSION,
            actor,
            groups: self.input.groups().to_vec(),
            normalizer: self.input.state()?,
            discrete: self.discrete,
            memory,
            rnn_type: self.memory.as_ref().map(Memory::rnn_type),
        };
        rmp_serde::to_vec_named(&record)
            .map_err(|e| Error::Record(format!("cannot serialise the policy: {e}")))
    }

    /// Rebuilds a policy that [`Policy::to_bytes`] wrote, for the environment `spec`, with
    /// the network shape of `cfg` (the run's `[policy]` table).
    ///
    /// # Errors
    /// An unreadable record, or one whose groups, normalisation or weight shapes differ from
    /// what `cfg` and `spec` describe.
    pub fn from_bytes(
        cfg: &PolicyConfig,
        spec: &EnvSpec,
        bytes: &[u8],
        device: &B::Device,
    ) -> Result<Self, Error> {
        let record: PolicyRecord = rmp_serde::from_slice(bytes)
            .map_err(|e| Error::Record(format!("the policy is unreadable: {e}")))?;
        if record.version != RECORD_VERSION {
            return Err(Error::Record(format!(
                "policy record format {} is not known to this version (which reads format {RECORD_VERSION})",
                record.version
            )));
        }
        if record.groups != cfg.obs_groups.policy {
            return Err(Error::Record(format!(
                "the policy reads observation groups {:?}, the config names {:?}",
                record.groups, cfg.obs_groups.policy
            )));
        }
        let mut input = ObsInput::new(
            spec,
            &cfg.obs_groups.policy,
            cfg.actor_obs_normalization,
            device,
        )?;
        input.load_state(record.normalizer.as_ref(), "actor")?;
        let discrete = spec.action_space.is_discrete();
        if discrete != record.discrete {
            return Err(Error::Record(
                "the policy's action space (discrete or continuous) differs from the task's".into(),
            ));
        }
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
        let rnn = cfg.rnn();
        let memory = match (rnn, record.memory) {
            (None, None) => None,
            (Some(rnn), Some(bytes)) => {
                if record.rnn_type.is_some_and(|t| t != rnn.rnn_type) {
                    return Err(Error::Record(format!(
                        "the policy's recurrent layers are {}, the config's policy.rnn_type is {}",
                        record.rnn_type.unwrap_or_default(),
                        rnn.rnn_type
                    )));
                }
                let skeleton =
                    MemoryConfig::new(input.dim(), rnn.hidden_dim, rnn.num_layers, rnn.rnn_type)
                        .init_with_rng::<B>(&mut HostRng::new(0), device);
                let weights = Recorder::<B>::load(&recorder, bytes, device).map_err(|e| {
                    Error::Record(format!("the memory's weights are unreadable: {e}"))
                })?;
                let expected = crate::parameter_shapes(&skeleton);
                let memory = skeleton.load_record(weights);
                let found = crate::parameter_shapes(&memory);
                if found != expected {
                    return Err(Error::Record(format!(
                        "the policy's recurrent layers do not match the config's: parameter shapes {found:?}, expected {expected:?}"
                    )));
                }
                Some(memory)
            }
            (None, Some(_)) => {
                return Err(Error::Record(
                    "the policy is recurrent, but the config's policy.class is \"mlp\"".into(),
                ));
            }
            (Some(_), None) => {
                return Err(Error::Record(
                    "the policy is an MLP, but the config's policy.class is \"rnn\"".into(),
                ));
            }
        };
        // The skeleton's weights are overwritten by the record's.
        let actor_input = memory.as_ref().map_or(input.dim(), Memory::hidden_dim);
        let skeleton = ActorCritic::<B>::actor_network(
            cfg,
            actor_input,
            &spec.action_space,
            &mut HostRng::new(0),
            device,
        );
        let weights = Recorder::<B>::load(&recorder, record.actor, device)
            .map_err(|e| Error::Record(format!("the actor's weights are unreadable: {e}")))?;
        let expected = crate::parameter_shapes(&skeleton);
        let actor = skeleton.load_record(weights);
        let found = crate::parameter_shapes(&actor);
        if found != expected {
            return Err(Error::Record(format!(
                "the policy's network does not match the config's: parameter shapes {found:?}, expected {expected:?}"
            )));
        }
        Ok(Self {
            input,
            memory,
            actor,
            discrete,
            state: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActorCriticModel, MlpModel};
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::TensorData;
    use rl_core::{ActionSpace, HostRng};
    use std::collections::BTreeMap;

    type B = Autodiff<NdArray>;
    type I = NdArray;

    fn spec() -> EnvSpec {
        EnvSpec {
            task: "test".into(),
            num_envs: 4,
            obs_groups: BTreeMap::from([("policy".to_string(), 3), ("extra".to_string(), 2)]),
            action_space: ActionSpace::Box {
                low: vec![-1.0; 2],
                high: vec![1.0; 2],
            },
            max_episode_length: 10,
            step_dt: 0.1,
        }
    }

    fn obs(offset: f32) -> Observations<I> {
        let dev = Default::default();
        let t = |d: usize| {
            Tensor::<I, 2>::from_data(
                TensorData::new(
                    (0..4 * d)
                        .map(|i| i as f32 * 0.7 + offset)
                        .collect::<Vec<_>>(),
                    [4, d],
                ),
                &dev,
            )
        };
        Observations::new().with("policy", t(3)).with("extra", t(2))
    }

    fn values(t: Tensor<I, 2>) -> Vec<f32> {
        t.into_data().to_vec().expect("f32")
    }

    fn cfg() -> PolicyConfig {
        PolicyConfig {
            actor_hidden_dims: vec![8],
            critic_hidden_dims: vec![8],
            actor_obs_normalization: true,
            obs_groups: crate::ObsGroups {
                policy: vec!["policy".into(), "extra".into()],
                critic: vec!["policy".into()],
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_policy_round_trips_through_its_bytes_and_acts_as_the_model() {
        let dev = Default::default();
        let mut model = MlpModel::<B>::new(&cfg(), &spec(), 3, &dev).expect("model");
        let mut rng = HostRng::new(0);
        for k in 0..3 {
            model.act(&obs(k as f32), &mut rng).expect("act");
        }
        let mut policy = model.policy();
        let probe = obs(10.0);
        // The mean of the model's own distribution.
        let x = model.actor_input().read(&probe).expect("read");
        let want = values(model.inference().action_mode(x));
        assert_eq!(values(policy.act(&probe).expect("act")), want);
        // The normaliser's statistics travel with the weights.
        let bytes = policy.to_bytes().expect("bytes");
        let mut loaded = Policy::<I>::from_bytes(&cfg(), &spec(), &bytes, &dev).expect("load");
        assert_eq!(values(loaded.act(&probe).expect("act")), want);
        let fresh = MlpModel::<B>::new(&cfg(), &spec(), 3, &dev).expect("model");
        assert_ne!(
            values(fresh.policy().act(&probe).expect("act")),
            want,
            "without the normaliser statistics the actions differ"
        );
    }

    #[test]
    fn a_policy_for_another_network_or_input_is_refused() {
        let dev = Default::default();
        let model = MlpModel::<B>::new(&cfg(), &spec(), 3, &dev).expect("model");
        let bytes = model.policy().to_bytes().expect("bytes");
        let wider = PolicyConfig {
            actor_hidden_dims: vec![16],
            ..cfg()
        };
        let err = Policy::<I>::from_bytes(&wider, &spec(), &bytes, &dev).expect_err("shapes");
        assert!(err.to_string().contains("does not match"), "{err}");
        let mut other_groups = cfg();
        other_groups.obs_groups.policy = vec!["policy".into()];
        let err =
            Policy::<I>::from_bytes(&other_groups, &spec(), &bytes, &dev).expect_err("groups");
        assert!(err.to_string().contains("observation groups"), "{err}");
        let unnormalised = PolicyConfig {
            actor_obs_normalization: false,
            ..cfg()
        };
        let err =
            Policy::<I>::from_bytes(&unnormalised, &spec(), &bytes, &dev).expect_err("normaliser");
        assert!(err.to_string().contains("normalisation"), "{err}");
        assert!(Policy::<I>::from_bytes(&cfg(), &spec(), b"junk", &dev).is_err());
    }
}
