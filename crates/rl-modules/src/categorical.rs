//! Categorical action distribution over `n` choices: sampling, log-probability, entropy and
//! KL in closed form.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, backend::Backend};

/// A categorical distribution per batch row, held as normalised log-probabilities.
///
/// Actions are `[batch, 1]` float tensors holding the chosen index (the layout of
/// [`rl_core::ActionSpace::Discrete`]), so that they are stored like continuous actions.
#[derive(Debug, Clone)]
pub struct Categorical<B: Backend> {
    /// `ln p` of each choice, `[batch, n]`; every row's `exp` sums to one.
    pub log_probs: Tensor<B, 2>,
}

impl<B: Backend> Categorical<B> {
    /// The distribution `softmax(logits)` of unnormalised logits `[batch, n]`.
    pub fn from_logits(logits: Tensor<B, 2>) -> Self {
        Self {
            log_probs: log_softmax(logits, 1),
        }
    }

    /// The distribution with the given normalised log-probabilities `[batch, n]` (as stored
    /// by [`Categorical::log_probs`]).
    pub fn from_log_probs(log_probs: Tensor<B, 2>) -> Self {
        Self { log_probs }
    }

    /// Number of choices, `n`.
    pub fn num_choices(&self) -> usize {
        self.log_probs.dims()[1]
    }

    /// Probabilities `[batch, n]`.
    pub fn probs(&self) -> Tensor<B, 2> {
        self.log_probs.clone().exp()
    }

    /// A sample by the Gumbel-max trick, `argmax(ln p + g)`, where `gumbel` `[batch, n]` holds
    /// standard Gumbel noise drawn by the caller. Returns indices as floats, `[batch, 1]`.
    pub fn sample(&self, gumbel: Tensor<B, 2>) -> Tensor<B, 2> {
        (self.log_probs.clone() + gumbel).argmax(1).float() // [batch, 1]
    }

    /// The most likely choice of each row, as a float index `[batch, 1]`.
    pub fn mode(&self) -> Tensor<B, 2> {
        self.log_probs.clone().argmax(1).float()
    }

    /// `ln p(action)` of float indices `[batch, 1]`: `[batch]`.
    pub fn log_prob(&self, actions: Tensor<B, 2>) -> Tensor<B, 1> {
        let index: Tensor<B, 2, Int> = actions.int(); // [batch, 1]
        self.log_probs.clone().gather(1, index).squeeze_dim::<1>(1)
    }

    /// Entropy `-sum_k p_k ln p_k`: `[batch]`.
    pub fn entropy(&self) -> Tensor<B, 1> {
        (self.probs() * self.log_probs.clone())
            .sum_dim(1)
            .squeeze_dim::<1>(1)
            .neg()
    }

    /// `KL(old || new) = sum_k p_old,k (ln p_old,k - ln p_new,k)`: `[batch]`.
    pub fn kl(old: &Categorical<B>, new: &Categorical<B>) -> Tensor<B, 1> {
        (old.probs() * (old.log_probs.clone() - new.log_probs.clone()))
            .sum_dim(1)
            .squeeze_dim::<1>(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;
    use rl_core::HostRng;

    type B = NdArray;

    const LOGITS: [[f64; 3]; 2] = [[1.0, 0.0, -1.0], [0.5, 2.0, 0.5]];
    const LOGITS_NEW: [[f64; 3]; 2] = [[0.0, 0.5, -1.0], [0.5, 1.0, 1.5]];

    fn tensor<const K: usize>(rows: &[[f64; K]]) -> Tensor<B, 2> {
        let data: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
        Tensor::from_data(TensorData::new(data, [rows.len(), K]), &Default::default())
    }

    fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
        t.into_data()
            .to_vec::<f32>()
            .expect("f32 data")
            .into_iter()
            .map(f64::from)
            .collect()
    }

    /// Softmax of one row, in f64.
    fn softmax(row: &[f64; 3]) -> [f64; 3] {
        let z: f64 = row.iter().map(|v| v.exp()).sum();
        row.map(|v| v.exp() / z)
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < tol, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn log_prob_is_the_log_softmax_at_the_index() {
        let d = Categorical::from_logits(tensor(&LOGITS));
        let got = values(d.log_prob(tensor(&[[2.0], [1.0]])));
        let want = [softmax(&LOGITS[0])[2].ln(), softmax(&LOGITS[1])[1].ln()];
        // Row 0 by hand: -1 - ln(e + 1 + 1/e) = -2.4076.
        assert!((want[0] + 2.4076).abs() < 1e-4, "{want:?}");
        assert_close(&got, &want, 1e-5);
        let probs = values(d.probs());
        assert_close(&[probs[0] + probs[1] + probs[2]], &[1.0], 1e-6);
    }

    #[test]
    fn entropy_and_kl_match_closed_form() {
        let old = Categorical::from_logits(tensor(&LOGITS));
        let new = Categorical::from_logits(tensor(&LOGITS_NEW));
        let entropy: Vec<f64> = LOGITS
            .iter()
            .map(|r| softmax(r).iter().map(|p| -p * p.ln()).sum())
            .collect();
        assert_close(&values(old.entropy()), &entropy, 1e-5);
        let kl: Vec<f64> = LOGITS
            .iter()
            .zip(&LOGITS_NEW)
            .map(|(a, b)| {
                let (p, q) = (softmax(a), softmax(b));
                (0..3).map(|k| p[k] * (p[k] / q[k]).ln()).sum()
            })
            .collect();
        let got = values(Categorical::kl(&old, &new));
        assert_close(&got, &kl, 1e-5);
        assert!(got.iter().all(|&v| v > 0.0));
        assert_close(&values(Categorical::kl(&old, &old)), &[0.0, 0.0], 1e-6);
        // A uniform distribution over 3 choices has entropy ln 3.
        let uniform = Categorical::from_logits(tensor(&[[0.0; 3]]));
        assert_close(&values(uniform.entropy()), &[3f64.ln()], 1e-6);
    }

    #[test]
    fn mode_and_samples_follow_the_probabilities() {
        let d = Categorical::from_logits(tensor(&LOGITS));
        assert_eq!(values(d.mode()), vec![0.0, 1.0]);
        // Sample 4,000 rows of the first distribution: frequencies approach softmax.
        let rows = 4000;
        let many = Categorical::from_logits(tensor(&vec![LOGITS[0]; rows]));
        let mut rng = HostRng::new(11);
        let noise = rng.gumbel::<B>([rows, 3], &Default::default());
        let samples = values(many.sample(noise));
        let mut counts = [0usize; 3];
        for s in samples {
            counts[s as usize] += 1;
        }
        let want = softmax(&LOGITS[0]);
        for k in 0..3 {
            let freq = counts[k] as f64 / rows as f64;
            assert!(
                (freq - want[k]).abs() < 0.03,
                "choice {k}: frequency {freq}, probability {}",
                want[k]
            );
        }
    }

    #[test]
    fn extreme_logits_stay_finite() {
        let d = Categorical::from_logits(tensor(&[[200.0, -200.0, 0.0]]));
        let e = values(d.entropy());
        assert!(e[0].is_finite() && e[0].abs() < 1e-6, "{e:?}");
        let lp = values(d.log_prob(tensor(&[[0.0]])));
        assert!(lp[0].abs() < 1e-6, "{lp:?}");
    }
}
