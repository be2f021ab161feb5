//! The policy's action distribution: Gaussian for continuous actions, categorical for
//! discrete ones, behind one type so that PPO is written once for both.

use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use rl_core::HostRng;

use crate::{Categorical, DiagGaussian};

/// An action distribution for a batch of observations.
///
/// Its parameters flatten to one tensor `[batch, P]` ([`ActionDistribution::params`]) so
/// that rollout storage keeps the old distribution for the KL of the adaptive learning rate
/// without knowing its kind: `P = 2 A` (mean, then std) for a Gaussian over `A` dimensions,
/// `P = n` (log-probabilities) for a categorical over `n` choices.
#[derive(Debug, Clone)]
pub enum ActionDistribution<B: Backend> {
    /// Continuous actions `[batch, A]`.
    Gaussian(DiagGaussian<B>),
    /// Discrete actions: float indices `[batch, 1]`.
    Categorical(Categorical<B>),
}

impl<B: Backend> ActionDistribution<B> {
    /// A sample, with the noise drawn from `rng` on the host: `[batch, A]` (`A = 1` for a
    /// categorical).
    pub fn sample(&self, rng: &mut HostRng) -> Tensor<B, 2> {
        match self {
            Self::Gaussian(d) => {
                let noise = rng.normal::<B>(d.mean.dims(), &d.mean.device());
                d.sample(noise)
            }
            Self::Categorical(d) => {
                let noise = rng.gumbel::<B>(d.log_probs.dims(), &d.log_probs.device());
                d.sample(noise)
            }
        }
    }

    /// The deterministic action: the mean, or the most likely choice.
    pub fn mode(&self) -> Tensor<B, 2> {
        match self {
            Self::Gaussian(d) => d.mean.clone(),
            Self::Categorical(d) => d.mode(),
        }
    }

    /// Log-probability of `actions`, `[batch]`.
    pub fn log_prob(&self, actions: Tensor<B, 2>) -> Tensor<B, 1> {
        match self {
            Self::Gaussian(d) => d.log_prob(actions),
            Self::Categorical(d) => d.log_prob(actions),
        }
    }

    /// Entropy, `[batch]`.
    pub fn entropy(&self) -> Tensor<B, 1> {
        match self {
            Self::Gaussian(d) => d.entropy(),
            Self::Categorical(d) => d.entropy(),
        }
    }

    /// The parameters as one tensor `[batch, P]` (see the type's documentation).
    pub fn params(&self) -> Tensor<B, 2> {
        match self {
            Self::Gaussian(d) => Tensor::cat(vec![d.mean.clone(), d.std.clone()], 1),
            Self::Categorical(d) => d.log_probs.clone(),
        }
    }

    /// `KL(old || self)`, `[batch]`, where `old` holds the [`ActionDistribution::params`] of
    /// a distribution of the same kind and size.
    pub fn kl_from(&self, old: Tensor<B, 2>) -> Tensor<B, 1> {
        match self {
            Self::Gaussian(new) => {
                let a = new.mean.dims()[1];
                let old = DiagGaussian::new(old.clone().narrow(1, 0, a), old.narrow(1, a, a));
                DiagGaussian::kl(&old, new)
            }
            Self::Categorical(new) => Categorical::kl(&Categorical::from_log_probs(old), new),
        }
    }
}

impl<B: AutodiffBackend> ActionDistribution<B> {
    /// The same distribution on the inner backend, detached from the autodiff graph.
    pub fn inner(&self) -> ActionDistribution<B::InnerBackend> {
        match self {
            Self::Gaussian(d) => ActionDistribution::Gaussian(DiagGaussian::new(
                d.mean.clone().inner(),
                d.std.clone().inner(),
            )),
            Self::Categorical(d) => ActionDistribution::Categorical(Categorical::from_log_probs(
                d.log_probs.clone().inner(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    type B = NdArray;

    fn tensor(rows: &[&[f32]]) -> Tensor<B, 2> {
        let cols = rows[0].len();
        let data: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(
            TensorData::new(data, [rows.len(), cols]),
            &Default::default(),
        )
    }

    fn values(t: Tensor<B, 1>) -> Vec<f32> {
        t.into_data().to_vec().expect("f32")
    }

    #[test]
    fn kl_from_params_equals_the_direct_kl() {
        let g_old = DiagGaussian::new(tensor(&[&[0.5, -1.0]]), tensor(&[&[1.0, 0.5]]));
        let g_new = DiagGaussian::new(tensor(&[&[0.4, -0.8]]), tensor(&[&[0.9, 0.6]]));
        let want = values(DiagGaussian::kl(&g_old, &g_new));
        let old_params = ActionDistribution::Gaussian(g_old).params();
        assert_eq!(old_params.dims(), [1, 4]);
        let got = values(ActionDistribution::Gaussian(g_new).kl_from(old_params));
        assert_eq!(got, want);

        let c_old = Categorical::from_logits(tensor(&[&[1.0, 0.0, -1.0]]));
        let c_new = Categorical::from_logits(tensor(&[&[0.0, 0.5, -1.0]]));
        let want = values(Categorical::kl(&c_old, &c_new));
        let old_params = ActionDistribution::Categorical(c_old).params();
        assert_eq!(old_params.dims(), [1, 3]);
        let got = values(ActionDistribution::Categorical(c_new).kl_from(old_params));
        assert_eq!(got, want);
        assert!(got[0] > 0.0);
    }

    #[test]
    fn samples_and_modes_have_the_action_layout() {
        let mut rng = HostRng::new(0);
        let g = ActionDistribution::Gaussian(DiagGaussian::new(
            tensor(&[&[0.0, 0.0], &[1.0, 1.0], &[2.0, 2.0]]),
            tensor(&[&[1.0, 1.0], &[1.0, 1.0], &[1.0, 1.0]]),
        ));
        assert_eq!(g.sample(&mut rng).dims(), [3, 2]);
        assert_eq!(g.mode().dims(), [3, 2]);
        let c = ActionDistribution::Categorical(Categorical::from_logits(tensor(&[
            &[0.0, 5.0, 0.0, 0.0],
            &[0.0, 0.0, 0.0, 9.0],
        ])));
        let s = c.sample(&mut rng);
        assert_eq!(s.dims(), [2, 1]);
        let s: Vec<f32> = s.into_data().to_vec().expect("f32");
        assert!(
            s.iter()
                .all(|&i| i.fract() == 0.0 && (0.0..4.0).contains(&i))
        );
        let m: Vec<f32> = c.mode().into_data().to_vec().expect("f32");
        assert_eq!(m, vec![1.0, 3.0]);
    }
}
