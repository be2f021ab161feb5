//! The policy's weights as safetensors, written by Burn's store.

use burn::module::{Module, Param};
use burn::tensor::{Tensor, backend::Backend};
use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use rl_modules::{EmpiricalNormalizer, Memory, Mlp, Policy};

use crate::{Error, Result};

/// The tensors of an exported policy: the observation normaliser's statistics, the
/// recurrent layers and the actor network.
#[derive(Module, Debug)]
struct PolicyWeights<B: Backend> {
    /// `obs_normalizer.mean` and `obs_normalizer.std` (`sqrt(var)`), `[D]` each.
    obs_normalizer: Option<NormalizerWeights<B>>,
    /// `memory.layers.{k}.input` and `.hidden`, PyTorch's `weight_ih_l{k}` / `weight_hh_l{k}`.
    memory: Option<Memory<B>>,
    /// `actor.layers.{i}`.
    actor: Mlp<B>,
}

/// A normaliser's statistics as parameters (so that the store writes them).
#[derive(Module, Debug)]
struct NormalizerWeights<B: Backend> {
    mean: Param<Tensor<B, 1>>,
    std: Param<Tensor<B, 1>>,
}

/// The safetensors bytes of `policy`: every linear layer in PyTorch's layout (`weight`
/// `[out, in]`, `bias` `[out]`, converted by Burn's `BurnToPyTorchAdapter`), named by the
/// policy's module paths (`actor.layers.0.weight`, `memory.layers.0.input.weight`,
/// `obs_normalizer.mean`, `obs_normalizer.std`), and `metadata` in the file's header
/// beside the normaliser's `eps`: the input is normalised as `(obs - mean) / (std + eps)`.
///
/// # Errors
/// [`Error::Safetensors`] when the store fails.
pub fn safetensors_weights<B: Backend>(
    policy: &Policy<B>,
    metadata: &[(&str, String)],
) -> Result<Vec<u8>> {
    let obs_normalizer = policy.input().normalizer().map(|n| NormalizerWeights {
        mean: Param::from_tensor(n.mean()),
        std: Param::from_tensor(n.var().clamp_min(0.0).sqrt()),
    });
    let weights = PolicyWeights {
        obs_normalizer,
        memory: policy.memory().cloned(),
        actor: policy.actor().clone(),
    };
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .metadata(
            "obs_normalizer.eps",
            EmpiricalNormalizer::<B>::EPS.to_string(),
        )
        .metadata("activation", policy.actor().activation().name());
    if let Some(m) = policy.memory() {
        store = store.metadata("rnn_type", m.rnn_type().to_string());
    }
    for (k, v) in metadata {
        store = store.metadata(*k, v.clone());
    }
    weights
        .save_into(&mut store)
        .map_err(|e| Error::Safetensors(format!("{e:?}")))?;
    store
        .get_bytes()
        .map_err(|e| Error::Safetensors(format!("{e:?}")))
}
