//! Diagonal Gaussian action distribution: sampling, log-probability, entropy and KL.

use burn::tensor::{Tensor, backend::Backend};

/// `0.5 * ln(2 pi)`.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// A Gaussian with independent action dimensions, as rsl_rl's `Normal(mean, std)`.
///
/// Log-probabilities, entropies and KL divergences are summed over the action dimensions,
/// giving one value per batch row.
#[derive(Debug, Clone)]
pub struct DiagGaussian<B: Backend> {
    /// Mean of each action: `[batch, A]`.
    pub mean: Tensor<B, 2>,
    /// Standard deviation of each action, already broadcast to the batch: `[batch, A]`;
    /// must be positive.
    pub std: Tensor<B, 2>,
}

impl<B: Backend> DiagGaussian<B> {
    /// Builds the distribution from its mean `[batch, A]` and std `[batch, A]`.
    pub fn new(mean: Tensor<B, 2>, std: Tensor<B, 2>) -> Self {
        Self { mean, std }
    }

    /// Reparameterised sample `mean + std * noise`, where `noise` `[batch, A]` is standard
    /// normal and drawn by the caller (so that seeding stays in the caller's hands).
    pub fn sample(&self, noise: Tensor<B, 2>) -> Tensor<B, 2> {
        self.mean.clone() + self.std.clone() * noise // [batch, A]
    }

    /// Log-density of `actions` `[batch, A]`, summed over action dimensions: `[batch]`.
    ///
    /// `sum_a [ -(x - m)^2 / (2 s^2) - ln s - ln(2 pi) / 2 ]`.
    pub fn log_prob(&self, actions: Tensor<B, 2>) -> Tensor<B, 1> {
        let z = (actions - self.mean.clone()) / self.std.clone(); // [batch, A]
        let per_dim = z.square().mul_scalar(-0.5) - self.std.clone().log() - HALF_LN_2PI;
        sum_actions(per_dim)
    }

    /// Entropy, summed over action dimensions: `[batch]`.
    ///
    /// `sum_a [ 1/2 + ln(2 pi) / 2 + ln s ]`.
    pub fn entropy(&self) -> Tensor<B, 1> {
        let per_dim = self.std.clone().log().add_scalar(0.5 + HALF_LN_2PI); // [batch, A]
        sum_actions(per_dim)
    }

    /// `KL(old || new)`, summed over action dimensions: `[batch]`.
    ///
    /// `sum_a [ ln(s_new / s_old) + (s_old^2 + (m_old - m_new)^2) / (2 s_new^2) - 1/2 ]`,
    /// the quantity rsl_rl averages over the batch for its adaptive learning rate.
    pub fn kl(old: &DiagGaussian<B>, new: &DiagGaussian<B>) -> Tensor<B, 1> {
        let log_ratio = new.std.clone().log() - old.std.clone().log(); // [batch, A]
        let mean_diff_sq = (old.mean.clone() - new.mean.clone()).square();
        let numerator = old.std.clone().square() + mean_diff_sq;
        let denominator = new.std.clone().square().mul_scalar(2.0);
        let per_dim = log_ratio + numerator / denominator - 0.5; // [batch, A]
        sum_actions(per_dim)
    }
}

/// `[batch, A] -> [batch]`, summing over actions.
fn sum_actions<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 1> {
    x.sum_dim(1).squeeze_dim::<1>(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    type B = NdArray;

    const MEAN: [[f64; 3]; 2] = [[0.5, -1.0, 0.0], [2.0, 0.25, -0.75]];
    const STD: [[f64; 3]; 2] = [[1.0, 0.5, 2.0], [0.1, 1.5, 0.8]];
    const ACTIONS: [[f64; 3]; 2] = [[0.0, -0.5, 1.0], [2.1, -1.0, 0.0]];
    const MEAN_NEW: [[f64; 3]; 2] = [[0.4, -0.8, 0.3], [1.9, 0.0, -0.5]];
    const STD_NEW: [[f64; 3]; 2] = [[0.9, 0.6, 1.5], [0.2, 1.2, 0.8]];

    fn tensor(rows: [[f64; 3]; 2]) -> Tensor<B, 2> {
        let data: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
        Tensor::from_data(TensorData::new(data, [2, 3]), &Default::default())
    }

    fn values(t: Tensor<B, 1>) -> Vec<f64> {
        t.into_data()
            .to_vec::<f32>()
            .expect("f32 data")
            .into_iter()
            .map(f64::from)
            .collect()
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < tol, "got {got:?}, want {want:?}");
        }
    }

    fn dist(mean: [[f64; 3]; 2], std: [[f64; 3]; 2]) -> DiagGaussian<B> {
        DiagGaussian::new(tensor(mean), tensor(std))
    }

    #[test]
    fn sample_is_mean_plus_std_times_noise() {
        let noise = [[1.0, -2.0, 0.5], [0.0, 1.0, -1.0]];
        let got = dist(MEAN, STD).sample(tensor(noise));
        let got = got.into_data().to_vec::<f32>().expect("f32 data");
        let want: Vec<f64> = (0..6)
            .map(|k| {
                let (i, j) = (k / 3, k % 3);
                MEAN[i][j] + STD[i][j] * noise[i][j]
            })
            .collect();
        let got: Vec<f64> = got.into_iter().map(f64::from).collect();
        assert_close(&got, &want, 1e-6);
    }

    #[test]
    fn log_prob_matches_closed_form() {
        let want: Vec<f64> = (0..2)
            .map(|i| {
                (0..3)
                    .map(|j| {
                        let (m, s, x) = (MEAN[i][j], STD[i][j], ACTIONS[i][j]);
                        -(x - m).powi(2) / (2.0 * s * s)
                            - s.ln()
                            - 0.5 * (2.0 * std::f64::consts::PI).ln()
                    })
                    .sum()
            })
            .collect();
        // First row by hand: (-0.125 - 0.9189) + (-0.5 + 0.6931 - 0.9189) + (-0.125 - 0.6931 - 0.9189).
        assert!((want[0] - (-3.5068)).abs() < 1e-3, "{want:?}");
        let got = values(dist(MEAN, STD).log_prob(tensor(ACTIONS)));
        assert_close(&got, &want, 1e-5);
    }

    #[test]
    fn entropy_matches_closed_form() {
        let want: Vec<f64> = (0..2)
            .map(|i| {
                (0..3)
                    .map(|j| 0.5 + 0.5 * (2.0 * std::f64::consts::PI).ln() + STD[i][j].ln())
                    .sum()
            })
            .collect();
        let got = values(dist(MEAN, STD).entropy());
        assert_close(&got, &want, 1e-5);
        // A unit Gaussian has entropy 0.5 * ln(2 pi e) ~ 1.4189 per dimension.
        let unit = DiagGaussian::<B>::new(tensor([[0.0; 3]; 2]), tensor([[1.0; 3]; 2]));
        assert_close(&values(unit.entropy()), &[3.0 * 1.418_938_5; 2], 1e-5);
    }

    #[test]
    fn kl_matches_closed_form() {
        let want: Vec<f64> = (0..2)
            .map(|i| {
                (0..3)
                    .map(|j| {
                        let (m0, s0, m1, s1) =
                            (MEAN[i][j], STD[i][j], MEAN_NEW[i][j], STD_NEW[i][j]);
                        (s1 / s0).ln() + (s0 * s0 + (m0 - m1).powi(2)) / (2.0 * s1 * s1) - 0.5
                    })
                    .sum()
            })
            .collect();
        let old = dist(MEAN, STD);
        let new = dist(MEAN_NEW, STD_NEW);
        let got = values(DiagGaussian::kl(&old, &new));
        assert_close(&got, &want, 1e-5);
        assert!(got.iter().all(|&v| v > 0.0));
        // KL of a distribution with itself is zero.
        assert_close(&values(DiagGaussian::kl(&old, &old)), &[0.0, 0.0], 1e-6);
    }

    #[test]
    fn kl_hand_computed_single_dimension() {
        // old N(0, 1), new N(1, 2): ln 2 + (1 + 1) / 8 - 1/2 = ln 2 - 0.25.
        let old = DiagGaussian::<B>::new(
            Tensor::from_floats([[0.0]], &Default::default()),
            Tensor::from_floats([[1.0]], &Default::default()),
        );
        let new = DiagGaussian::<B>::new(
            Tensor::from_floats([[1.0]], &Default::default()),
            Tensor::from_floats([[2.0]], &Default::default()),
        );
        let got = values(DiagGaussian::kl(&old, &new));
        assert_close(&got, &[std::f64::consts::LN_2 - 0.25], 1e-6);
    }
}
