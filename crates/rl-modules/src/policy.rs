//! The inference policy: what `play`, benchmarks and export run. The actor's weights and its
//! input (groups and normaliser statistics); no critic, no optimiser, no random stream.

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::{Tensor, backend::Backend};
use rl_core::{EnvSpec, Observations};
use serde::{Deserialize, Serialize};

use crate::{Error, Mlp, MlpConfig, NormalizerState, ObsInput, PolicyConfig};

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
        let outputs = match &spec.action_space {
            rl_core::ActionSpace::Box { low, .. } => low.len(),
            rl_core::ActionSpace::Discrete { n } => *n,
        };
        let skeleton: Mlp<B> = MlpConfig::new(input.dim(), cfg.actor_hidden_dims.clone(), outputs)
            .with_activation(cfg.activation)
            .with_precision(cfg.precision)
            .init(device);
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
