//! The algorithm registry: the one file of the runner that names concrete algorithms.
//!
//! `[algorithm] class = "..."` picks a variant of [`AlgorithmConfig`] (serde's tag); the
//! variant checks its settings and builds the algorithm behind the [`Algorithm`] trait, which
//! is all the runner, `play` and `bench` know. Registering an algorithm is one variant and
//! one arm in each `match` of this file.

use burn::tensor::backend::{AutodiffBackend, Backend};
use rl_core::{Algorithm, AlgorithmError, EnvSpec};
use rl_modules::{ModelClass, Policy, PolicyConfig, RnnModel};
use rl_ppo::{Ppo, PpoConfig};
use serde::{Deserialize, Serialize};

/// The algorithm, chosen by the `class` field of `[algorithm]` (the seed's class-type
/// pattern).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum AlgorithmConfig {
    /// Proximal Policy Optimization (`class = "ppo"`).
    Ppo(PpoConfig),
}

impl Default for AlgorithmConfig {
    fn default() -> Self {
        AlgorithmConfig::Ppo(PpoConfig::default())
    }
}

/// A configuration value an algorithm refuses: the field path and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldError {
    pub field: String,
    pub message: String,
}

impl AlgorithmConfig {
    /// The class names that `[algorithm] class` accepts.
    pub const CLASSES: &'static [&'static str] = &["ppo"];

    /// The fields of class `class` (besides `class`), or `None` for an unknown class.
    pub(crate) fn fields(class: &str) -> Option<&'static [&'static str]> {
        match class {
            "ppo" => Some(serde_aux::serde_introspection::serde_introspect::<PpoConfig>()),
            _ => None,
        }
    }

    /// Reads the fields of class `class` from `text` (the table without `class`), for
    /// errors placed in the file; `None` for an unknown class.
    pub(crate) fn parse_fields(class: &str, text: &str) -> Option<Result<(), toml::de::Error>> {
        match class {
            "ppo" => Some(toml::from_str::<PpoConfig>(text).map(drop)),
            _ => None,
        }
    }

    /// Checks the settings for a rollout of `num_envs * num_steps_per_env` samples and the
    /// model `policy`.
    pub(crate) fn validate(
        &self,
        policy: &PolicyConfig,
        num_envs: usize,
        num_steps_per_env: usize,
    ) -> Result<(), FieldError> {
        let field_error = |e: rl_ppo::Error| match e {
            rl_ppo::Error::Config { field, message } => FieldError { field, message },
            other => FieldError {
                field: "algorithm".into(),
                message: other.to_string(),
            },
        };
        match self {
            AlgorithmConfig::Ppo(ppo) => {
                ppo.validate().map_err(field_error)?;
                ppo.validate_batch(num_envs, num_steps_per_env)
                    .map_err(field_error)?;
                if policy.class == ModelClass::Rnn
                    && !num_envs.is_multiple_of(ppo.num_mini_batches.max(1))
                {
                    return Err(FieldError {
                        field: "algorithm.num_mini_batches".into(),
                        message: format!(
                            "a recurrent policy's mini-batches are whole environments: \
                             num_mini_batches ({}) must divide env.num_envs ({num_envs})",
                            ppo.num_mini_batches
                        ),
                    });
                }
            }
        }
        policy.validate().map_err(|e| match e {
            rl_modules::Error::Config { field, message } => FieldError { field, message },
            other => FieldError {
                field: "policy".into(),
                message: other.to_string(),
            },
        })
    }

    /// Gradient steps of one update: mini-batches per epoch times epochs.
    pub(crate) fn mini_batches_per_update(&self) -> usize {
        match self {
            AlgorithmConfig::Ppo(ppo) => ppo.num_mini_batches * ppo.num_learning_epochs,
        }
    }

    /// The algorithm for environments `spec`, storing `num_steps_per_env` steps per
    /// iteration, seeded with `seed`.
    pub(crate) fn build<B: AutodiffBackend>(
        &self,
        policy: &PolicyConfig,
        spec: &EnvSpec,
        num_steps_per_env: usize,
        seed: u64,
        device: &B::Device,
    ) -> Result<Box<dyn Algorithm<B>>, AlgorithmError> {
        Ok(match self {
            AlgorithmConfig::Ppo(ppo) => match policy.class {
                ModelClass::Mlp => Box::new(Ppo::<B>::new(
                    ppo.clone(),
                    policy.clone(),
                    spec,
                    num_steps_per_env,
                    seed,
                    device,
                )?),
                ModelClass::Rnn => Box::new(Ppo::<B, RnnModel<B>>::new(
                    ppo.clone(),
                    policy.clone(),
                    spec,
                    num_steps_per_env,
                    seed,
                    device,
                )?),
            },
        })
    }
}

/// The inference policy of a checkpoint: read directly when the checkpoint stores it, or,
/// for checkpoints written before it did, taken from the algorithm's state.
pub(crate) fn load_policy<B: AutodiffBackend>(
    algorithm: &AlgorithmConfig,
    policy: &PolicyConfig,
    spec: &EnvSpec,
    stored_policy: Option<&[u8]>,
    algorithm_state: &[u8],
    device: &B::Device,
) -> Result<Policy<B::InnerBackend>, AlgorithmError> {
    let bytes = match stored_policy {
        Some(bytes) => bytes.to_vec(),
        None => {
            let mut alg = algorithm.build::<B>(policy, spec, 1, 0, device)?;
            alg.load_state(algorithm_state)?;
            alg.save_policy()?
        }
    };
    policy_from_bytes::<B::InnerBackend>(policy, spec, &bytes, device)
}

/// A [`Policy`] from the bytes of [`Algorithm::save_policy`], for the run's `[policy]`.
pub(crate) fn policy_from_bytes<B: Backend>(
    policy: &PolicyConfig,
    spec: &EnvSpec,
    bytes: &[u8],
    device: &B::Device,
) -> Result<Policy<B>, AlgorithmError> {
    Policy::from_bytes(policy, spec, bytes, device).map_err(|e| AlgorithmError::Other(Box::new(e)))
}
