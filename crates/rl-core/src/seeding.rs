//! Seeded random streams that give the same numbers on every backend.
//!
//! Random numbers are drawn on the host from counter-based ChaCha streams and uploaded as
//! one tensor per draw (a write, never a read-back). This keeps runs identical across
//! backends for a given seed, and the state is plain data that a checkpoint can store.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Open01, StandardNormal};
use serde::{Deserialize, Serialize};

/// One independent random stream per environment, so that environment `i` sees the same
/// reset noise whatever the number of environments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvRng {
    streams: Vec<ChaCha8Rng>,
}

impl EnvRng {
    /// Streams for `num_envs` environments from one seed (environment `i` uses stream `i`).
    pub fn new(seed: u64, num_envs: usize) -> Self {
        let streams = (0..num_envs)
            .map(|i| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(i as u64);
                rng
            })
            .collect();
        Self { streams }
    }

    /// Number of streams (environments).
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// True when there are no streams.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Uniform samples `[N, K]` with column `j` drawn from `U(low[j], high[j])`.
    ///
    /// Draws are made in float64 and rounded to float32, as Gymnasium does.
    pub fn uniform<B: Backend>(
        &mut self,
        low: &[f32],
        high: &[f32],
        device: &B::Device,
    ) -> Tensor<B, 2> {
        let k = low.len().min(high.len());
        let mut values = Vec::with_capacity(self.streams.len() * k);
        for rng in &mut self.streams {
            for j in 0..k {
                let (lo, hi) = (f64::from(low[j]), f64::from(high[j]));
                values.push((lo + (hi - lo) * rng.random::<f64>()) as f32);
            }
        }
        // [N, K]
        Tensor::from_data(TensorData::new(values, [self.streams.len(), k]), device)
    }
}

/// A single random stream for an algorithm: action noise and mini-batch permutations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRng {
    rng: ChaCha8Rng,
}

impl HostRng {
    /// A stream from a seed.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Stream `stream` of the generator seeded with `seed`; [`HostRng::new`] is stream 0.
    /// Streams of one seed are independent, so that a second consumer of a run's seed (the
    /// initial weights) does not repeat the numbers of the first (the action noise).
    pub fn with_stream(seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Self { rng }
    }

    /// `n` samples of `U(low, high)`, drawn in float64 and rounded to float32 (so that they
    /// stay within `[low, high]` as float32 numbers).
    pub fn uniform_values(&mut self, n: usize, low: f64, high: f64) -> Vec<f32> {
        (0..n)
            .map(|_| (low + (high - low) * self.rng.random::<f64>()) as f32)
            .collect()
    }

    /// Standard normal samples of the given 2-d shape, as a tensor on `device`.
    pub fn normal<B: Backend>(&mut self, shape: [usize; 2], device: &B::Device) -> Tensor<B, 2> {
        let values: Vec<f32> = (0..shape[0] * shape[1])
            .map(|_| self.rng.sample::<f32, _>(StandardNormal))
            .collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// Standard Gumbel samples `-ln(-ln u)`, `u ~ U(0, 1)` open at both ends, of the given
    /// 2-d shape, as a tensor on `device` (for sampling categorical distributions by the
    /// Gumbel-max trick).
    pub fn gumbel<B: Backend>(&mut self, shape: [usize; 2], device: &B::Device) -> Tensor<B, 2> {
        let values: Vec<f32> = (0..shape[0] * shape[1])
            .map(|_| {
                let u: f64 = self.rng.sample(Open01);
                -(-u.ln()).ln() as f32
            })
            .collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// A random permutation of `0..n` on the host.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        p.shuffle(&mut self.rng);
        p
    }

    /// A random permutation of `0..n` as an index tensor `[n]` on `device`.
    pub fn permutation_tensor<B: Backend>(
        &mut self,
        n: usize,
        device: &B::Device,
    ) -> Tensor<B, 1, Int> {
        let p: Vec<i64> = self.permutation(n).into_iter().map(|i| i as i64).collect();
        Tensor::from_data(TensorData::new(p, [n]), device)
    }

    /// A uniform `u64`, for seeding other streams.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    #[test]
    fn env_streams_do_not_depend_on_the_number_of_envs() {
        let dev = Default::default();
        let a = EnvRng::new(7, 2).uniform::<NdArray>(&[-1.0], &[1.0], &dev);
        let b = EnvRng::new(7, 5).uniform::<NdArray>(&[-1.0], &[1.0], &dev);
        let a: Vec<f32> = a.into_data().to_vec().expect("f32");
        let b: Vec<f32> = b.into_data().to_vec().expect("f32");
        assert_eq!(a[..2], b[..2]);
        assert_ne!(a[0], a[1], "streams must differ between environments");
    }

    #[test]
    fn uniform_respects_bounds_per_column() {
        let dev = Default::default();
        let t = EnvRng::new(1, 64).uniform::<NdArray>(&[-0.05, 2.0], &[0.05, 3.0], &dev);
        let v: Vec<f32> = t.into_data().to_vec().expect("f32");
        for row in v.chunks(2) {
            assert!((-0.05..=0.05).contains(&row[0]));
            assert!((2.0..=3.0).contains(&row[1]));
        }
    }

    #[test]
    fn gumbel_samples_have_the_gumbel_mean_and_are_seeded() {
        let dev = Default::default();
        let a = HostRng::new(5).gumbel::<NdArray>([200, 50], &dev);
        let b = HostRng::new(5).gumbel::<NdArray>([200, 50], &dev);
        let a: Vec<f32> = a.into_data().to_vec().expect("f32");
        let b: Vec<f32> = b.into_data().to_vec().expect("f32");
        assert_eq!(a, b, "same seed, same samples");
        assert!(a.iter().all(|v| v.is_finite()));
        // The standard Gumbel has mean 0.5772 (Euler's constant) and variance pi^2 / 6.
        let n = a.len() as f64;
        let mean = a.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = a
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!((mean - 0.5772).abs() < 0.05, "mean {mean}");
        assert!((var - 1.6449).abs() < 0.1, "variance {var}");
    }

    #[test]
    fn uniform_values_are_seeded_bounded_and_differ_between_streams() {
        let a = HostRng::with_stream(4, 1).uniform_values(1000, -0.25, 0.25);
        let b = HostRng::with_stream(4, 1).uniform_values(1000, -0.25, 0.25);
        assert_eq!(a, b, "same seed and stream, same samples");
        assert!(a.iter().all(|v| (-0.25..=0.25).contains(v)));
        // Both ends of the range are reached (1000 samples of U(-k, k) pass 0.9 k).
        assert!(a.iter().any(|&v| v > 0.225) && a.iter().any(|&v| v < -0.225));
        let stream0 = HostRng::new(4).uniform_values(1000, -0.25, 0.25);
        assert_eq!(
            stream0,
            HostRng::with_stream(4, 0).uniform_values(1000, -0.25, 0.25)
        );
        assert_ne!(a, stream0, "streams of one seed differ");
        assert_ne!(
            a,
            HostRng::with_stream(5, 1).uniform_values(1000, -0.25, 0.25)
        );
    }

    #[test]
    fn permutation_covers_every_index_once() {
        let mut rng = HostRng::new(3);
        let mut p = rng.permutation(100);
        assert_ne!(p, (0..100).collect::<Vec<_>>());
        p.sort_unstable();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
    }
}
