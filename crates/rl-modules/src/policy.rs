//! The inference policy: what `play`, benchmarks and export run. The actor's weights and its
//! input (groups and normaliser statistics); no critic, no optimiser, no random stream.

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::{Tensor, backend::Backend};
use rl_core::{EnvSpec, HostRng, Observations};
use serde::{Deserialize, Serialize};

use crate::{ActorCritic, Error, Mlp, NormalizerState, ObsInput, PolicyConfig};

/// The deterministic policy of a trained actor: observation groups in, the mode of the
/// action distribution out (the Gaussian's mean, or the most likely choice as a float index
/// `[N, 1]` for discrete actions).
#[derive(Debug, Clone)]
pub struct Policy<B: Backend> {
    input: ObsInput<B>,
    actor: Mlp<B>,
    discrete: bool,
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
}

const RECORD_VERSION: u32 = 1;

impl<B: Backend> Policy<B> {
    /// A policy from its parts: the actor's input, its network, and whether the network
    /// outputs logits of a discrete action.
    pub fn new(input: ObsInput<B>, actor: Mlp<B>, discrete: bool) -> Self {
        Self {
            input,
            actor,
            discrete,
        }
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

    /// Deterministic actions for `obs`, `[N, A]`.
    pub fn act(&self, obs: &Observations<B>) -> Result<Tensor<B, 2>, Error> {
        let out = self.actor.forward(self.input.read(obs)?);
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
        let record = PolicyRecord {
            version: RECORD_VERSION,
            actor,
            groups: self.input.groups().to_vec(),
            normalizer: self.input.state()?,
            discrete: self.discrete,
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
        // The skeleton's weights are overwritten by the record's.
        let skeleton = ActorCritic::<B>::actor_network(
            cfg,
            input.dim(),
            &spec.action_space,
            &mut HostRng::new(0),
            device,
        );
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
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
            actor,
            discrete,
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
        let policy = model.policy();
        let probe = obs(10.0);
        let want = values(model.act_inference(&probe).expect("act"));
        assert_eq!(values(policy.act(&probe).expect("act")), want);
        // The normaliser's statistics travel with the weights.
        let bytes = policy.to_bytes().expect("bytes");
        let loaded = Policy::<I>::from_bytes(&cfg(), &spec(), &bytes, &dev).expect("load");
        assert_eq!(values(loaded.act(&probe).expect("act")), want);
        let fresh = MlpModel::<B>::new(&cfg(), &spec(), 3, &dev).expect("model");
        assert_ne!(
            values(fresh.act_inference(&probe).expect("act")),
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
