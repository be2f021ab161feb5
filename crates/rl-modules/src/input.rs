//! What a network reads: observation groups, concatenated and normalised by the network's
//! own running normaliser (rsl_rl 5.x's `obs_groups` and `obs_normalizer` of each model).

use burn::tensor::{Tensor, backend::Backend};
use rl_core::{EnvSpec, Observations};

use crate::{EmpiricalNormalizer, Error, NormalizerState};

/// The input of one network: the observation groups it sees, in order, and an optional
/// running normaliser of their concatenation.
///
/// In training mode ([`ObsInput::read_training`]) the normaliser first merges the batch into
/// its statistics, then normalises it, as rsl_rl's `MLPModel` does in `train()` mode.
#[derive(Debug, Clone)]
pub struct ObsInput<B: Backend> {
    groups: Vec<String>,
    normalizer: Option<EmpiricalNormalizer<B>>,
    dim: usize,
}

impl<B: Backend> ObsInput<B> {
    /// The input made of `groups` of the environment `spec`, normalised when `normalize`.
    ///
    /// # Errors
    /// A group the environment does not provide.
    pub fn new(
        spec: &EnvSpec,
        groups: &[String],
        normalize: bool,
        device: &B::Device,
    ) -> Result<Self, Error> {
        let dim = spec.obs_dim(groups)?;
        Ok(Self {
            groups: groups.to_vec(),
            normalizer: normalize.then(|| EmpiricalNormalizer::new(dim, None, device)),
            dim,
        })
    }

    /// Width of the concatenated input, `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The observation groups, in the order they are concatenated.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The running normaliser, if the input is normalised.
    pub fn normalizer(&self) -> Option<&EmpiricalNormalizer<B>> {
        self.normalizer.as_ref()
    }

    /// The groups concatenated, before normalisation, `[N, D]`.
    pub fn raw(&self, obs: &Observations<B>) -> Result<Tensor<B, 2>, Error> {
        Ok(obs.concat(&self.groups)?)
    }

    /// Normalises a raw input `[N, D]` with the current statistics (no update).
    pub fn normalize(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match &self.normalizer {
            Some(n) => n.normalize(x),
            None => x,
        }
    }

    /// The normalised input `[N, D]`, statistics unchanged (evaluation mode).
    pub fn read(&self, obs: &Observations<B>) -> Result<Tensor<B, 2>, Error> {
        Ok(self.normalize(self.raw(obs)?))
    }

    /// The normalised input `[N, D]` after merging this batch into the statistics
    /// (training mode).
    pub fn read_training(&mut self, obs: &Observations<B>) -> Result<Tensor<B, 2>, Error> {
        let raw = self.raw(obs)?;
        if let Some(n) = &mut self.normalizer {
            n.update(raw.clone());
        }
        Ok(self.normalize(raw))
    }

    /// The normaliser's statistics, for a checkpoint (`None` when not normalised).
    pub fn state(&self) -> Result<Option<NormalizerState>, Error> {
        self.normalizer.as_ref().map(|n| n.state()).transpose()
    }

    /// Restores statistics written by [`ObsInput::state`]; `what` names the input in errors.
    ///
    /// # Errors
    /// The saved state and this input disagree on normalisation or on its width.
    pub fn load_state(&mut self, state: Option<&NormalizerState>, what: &str) -> Result<(), Error> {
        match (&mut self.normalizer, state) {
            (Some(n), Some(s)) => n.load_state(s),
            (None, None) => Ok(()),
            _ => Err(Error::Record(format!(
                "the checkpoint's {what} observation normalisation setting differs from the config"
            ))),
        }
    }
}
