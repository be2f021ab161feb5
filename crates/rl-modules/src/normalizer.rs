//! Running observation normaliser: rsl_rl's `EmpiricalNormalization`.

use burn::tensor::{Tensor, TensorData, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Running mean and variance of a stream of `[N, D]` batches, used to normalise observations.
///
/// Follows rsl_rl's `EmpiricalNormalization`: the statistics start at mean 0 and variance 1,
/// each batch is merged with the exact parallel update of the (biased) mean and variance, and
/// [`normalize`](Self::normalize) returns `(x - mean) / (sqrt(var) + eps)` with `eps = 1e-2`.
/// With `until = Some(n)` the statistics stop changing once `n` samples have been seen (the
/// batch that crosses `n` is still counted, as in rsl_rl).
#[derive(Debug, Clone)]
pub struct EmpiricalNormalizer<B: Backend> {
    /// Running mean: `[D]`.
    mean: Tensor<B, 1>,
    /// Running (biased) variance: `[D]`.
    var: Tensor<B, 1>,
    /// Number of samples merged so far (host-side: batch sizes are known without a read).
    count: u64,
    /// Stop updating once `count` reaches this many samples.
    until: Option<u64>,
    /// Size of the feature dimension `D`.
    dim: usize,
}

/// The host-side state of an [`EmpiricalNormalizer`], for checkpoints.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NormalizerState {
    /// Running mean, one value per feature.
    pub mean: Vec<f32>,
    /// Running (biased) variance, one value per feature.
    pub var: Vec<f32>,
    /// Number of samples merged so far.
    pub count: u64,
}

impl<B: Backend> EmpiricalNormalizer<B> {
    /// Added to the standard deviation before dividing (rsl_rl's default).
    pub const EPS: f64 = 1e-2;

    /// A normaliser for `dim` features with mean 0 and variance 1, updating until `until`
    /// samples have been seen (forever with `None`).
    pub fn new(dim: usize, until: Option<u64>, device: &B::Device) -> Self {
        Self {
            mean: Tensor::zeros([dim], device), // [D]
            var: Tensor::ones([dim], device),   // [D]
            count: 0,
            until,
            dim,
        }
    }

    /// Merges the batch `x` `[N, D]` into the running statistics (no host read).
    ///
    /// Does nothing for an empty batch or once `until` samples have been seen.
    pub fn update(&mut self, x: Tensor<B, 2>) {
        if self.until.is_some_and(|until| self.count >= until) {
            return;
        }
        let [n, _] = x.dims();
        if n == 0 {
            return;
        }
        self.count += n as u64;
        let rate = n as f64 / self.count as f64;

        // Batch statistics (biased variance, as torch.var(unbiased=False)).
        let (batch_var, batch_mean) = x.var_mean_bias(0); // [1, D] each
        let batch_mean = batch_mean.squeeze_dim::<1>(0); // [D]
        let batch_var = batch_var.squeeze_dim::<1>(0); // [D]

        // Exact parallel merge of the two populations.
        let delta = batch_mean.clone() - self.mean.clone(); // [D]
        let mean = self.mean.clone() + delta.clone().mul_scalar(rate);
        let var_step = batch_var - self.var.clone() + delta * (batch_mean - mean.clone());
        self.var = self.var.clone() + var_step.mul_scalar(rate);
        self.mean = mean;
    }

    /// Normalises `x` `[N, D]`: `(x - mean) / (sqrt(var) + eps)`, `[N, D]`.
    pub fn normalize(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let mean = self.mean.clone().unsqueeze_dim::<2>(0); // [1, D]
        // Note: the clamp only guards against a rounding error making var slightly negative.
        let std = self.var.clone().clamp_min(0.0).sqrt().unsqueeze_dim::<2>(0); // [1, D]
        (x - mean) / std.add_scalar(Self::EPS)
    }

    /// Size of the feature dimension `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of samples merged so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sample count after which updates stop, if any.
    pub fn until(&self) -> Option<u64> {
        self.until
    }

    /// The running mean: `[D]`.
    pub fn mean(&self) -> Tensor<B, 1> {
        self.mean.clone()
    }

    /// The running (biased) variance: `[D]`.
    pub fn var(&self) -> Tensor<B, 1> {
        self.var.clone()
    }

    /// Reads the statistics back to the host, for a checkpoint.
    pub fn state(&self) -> Result<NormalizerState, Error> {
        Ok(NormalizerState {
            mean: read_f32(self.mean.clone(), "normalizer mean")?,
            var: read_f32(self.var.clone(), "normalizer variance")?,
            count: self.count,
        })
    }

    /// Restores statistics saved by [`state`](Self::state), on this normaliser's device.
    ///
    /// Fails, changing nothing, if the saved feature size differs from this normaliser's.
    pub fn load_state(&mut self, s: &NormalizerState) -> Result<(), Error> {
        for (what, values) in [
            ("normalizer state mean", &s.mean),
            ("normalizer state variance", &s.var),
        ] {
            if values.len() != self.dim {
                return Err(Error::DimensionMismatch {
                    what: what.to_string(),
                    expected: self.dim,
                    got: values.len(),
                });
            }
        }
        let device = self.mean.device();
        self.mean = Tensor::from_data(TensorData::new(s.mean.clone(), [self.dim]), &device);
        self.var = Tensor::from_data(TensorData::new(s.var.clone(), [self.dim]), &device);
        self.count = s.count;
        Ok(())
    }
}

/// Reads a `[D]` tensor back to the host as `f32`, whatever the backend's float type.
fn read_f32<B: Backend>(t: Tensor<B, 1>, what: &str) -> Result<Vec<f32>, Error> {
    let readback = |reason: String| Error::Readback {
        what: what.to_string(),
        reason,
    };
    t.try_into_data()
        .map_err(|e| readback(format!("{e:?}")))?
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| readback(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray;
    type Normalizer = EmpiricalNormalizer<B>;

    const D: usize = 3;

    /// Deterministic, varied test data: batch `b` has `rows` rows of `D` features.
    fn batch(b: usize, rows: usize) -> Vec<[f64; D]> {
        (0..rows)
            .map(|r| {
                let t = (b * 31 + r * 7) as f64;
                [
                    (t * 0.37).sin() * 2.0 + 1.0,
                    (t * 0.11).cos() * 0.5 - 3.0,
                    ((t * 0.73).sin() * 10.0).round() + 0.25 * b as f64,
                ]
            })
            .collect()
    }

    fn tensor(rows: &[[f64; D]]) -> Tensor<B, 2> {
        let data: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
        Tensor::from_data(TensorData::new(data, [rows.len(), D]), &Default::default())
    }

    /// numpy-style mean and biased variance over all rows, per feature.
    fn mean_var(rows: &[[f64; D]]) -> ([f64; D], [f64; D]) {
        let n = rows.len() as f64;
        let mut mean = [0.0; D];
        let mut var = [0.0; D];
        for j in 0..D {
            mean[j] = rows.iter().map(|r| r[j]).sum::<f64>() / n;
            var[j] = rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
        }
        (mean, var)
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!(
                (f64::from(*g) - w).abs() < tol,
                "got {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn starts_at_mean_zero_variance_one() {
        let norm = Normalizer::new(D, None, &Default::default());
        let s = norm.state().expect("readback");
        assert_eq!(s.mean, vec![0.0; D]);
        assert_eq!(s.var, vec![1.0; D]);
        assert_eq!(s.count, 0);
    }

    #[test]
    fn running_statistics_match_whole_data_set() {
        let mut norm = Normalizer::new(D, None, &Default::default());
        let mut all = Vec::new();
        for (b, rows) in [5usize, 17, 1, 64, 9].into_iter().enumerate() {
            let rows = batch(b, rows);
            norm.update(tensor(&rows));
            all.extend(rows);
        }
        let (mean, var) = mean_var(&all);
        let s = norm.state().expect("readback");
        assert_eq!(s.count, all.len() as u64);
        assert_close(&s.mean, &mean, 1e-4);
        assert_close(&s.var, &var, 1e-4);
    }

    #[test]
    fn normalize_uses_std_plus_eps() {
        let mut norm = Normalizer::new(D, None, &Default::default());
        let rows = batch(0, 40);
        norm.update(tensor(&rows));
        let (mean, var) = mean_var(&rows);
        let x = [[0.5, -2.0, 4.0], [10.0, 0.0, -1.0]];
        let got = norm
            .normalize(tensor(&x))
            .into_data()
            .to_vec::<f32>()
            .expect("f32 data");
        let want: Vec<f64> = x
            .iter()
            .flat_map(|r| (0..D).map(move |j| (r[j] - mean[j]) / (var[j].sqrt() + 1e-2)))
            .collect();
        assert_close(&got, &want, 1e-4);
        // Before any update the normaliser divides by 1 + eps.
        let fresh = Normalizer::new(D, None, &Default::default());
        let got = fresh.normalize(tensor(&x)).into_data().to_vec::<f32>();
        let want: Vec<f64> = x.iter().flatten().map(|v| v / 1.01).collect();
        assert_close(&got.expect("f32 data"), &want, 1e-5);
    }

    #[test]
    fn stops_updating_after_until_samples() {
        let mut norm = Normalizer::new(D, Some(20), &Default::default());
        let first = [batch(0, 8), batch(1, 15)].concat(); // crosses 20: still counted
        norm.update(tensor(&first[..8]));
        norm.update(tensor(&first[8..]));
        let before = norm.state().expect("readback");
        assert_eq!(before.count, 23);
        norm.update(tensor(&batch(2, 10)));
        assert_eq!(norm.state().expect("readback"), before);
        let (mean, var) = mean_var(&first);
        assert_close(&before.mean, &mean, 1e-4);
        assert_close(&before.var, &var, 1e-4);
    }

    #[test]
    fn empty_batch_is_ignored() {
        let mut norm = Normalizer::new(D, None, &Default::default());
        norm.update(Tensor::zeros([0, D], &Default::default()));
        assert_eq!(norm.count(), 0);
        assert_eq!(norm.state().expect("readback").var, vec![1.0; D]);
    }

    #[test]
    fn state_round_trips() {
        let mut norm = Normalizer::new(D, None, &Default::default());
        norm.update(tensor(&batch(3, 12)));
        let saved = norm.state().expect("readback");
        let mut restored = Normalizer::new(D, None, &Default::default());
        restored.load_state(&saved).expect("same dim");
        assert_eq!(restored.state().expect("readback"), saved);
        assert_eq!(restored.count(), 12);
    }

    #[test]
    fn load_state_rejects_wrong_dim() {
        let mut norm = Normalizer::new(D, None, &Default::default());
        let bad = NormalizerState {
            mean: vec![0.0; 5],
            var: vec![1.0; 5],
            count: 4,
        };
        let msg = norm.load_state(&bad).expect_err("dim 5 != 3").to_string();
        assert!(msg.contains('3') && msg.contains('5'), "{msg}");
        assert_eq!(norm.count(), 0, "a failed load changes nothing");
    }
}
