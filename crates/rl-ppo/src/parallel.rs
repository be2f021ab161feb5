//! Data-parallel updates (rsl_rl's multi-GPU training): every worker collects a rollout of
//! its own environments; before each update the workers pool their observation
//! normalisers' statistics, and before each optimiser step they average their gradients and
//! their mini-batch KL, through a [`Communicator`], so that they take the same step with the
//! same learning rate and keep identical weights.

use std::sync::Arc;

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use rl_core::Communicator;
use rl_modules::{InputsState, NormalizerState};

use crate::Error;

type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// This worker's place in a data-parallel run: the communicator, and the normaliser
/// statistics the workers last agreed on.
pub struct DataParallel {
    comm: Arc<dyn Communicator>,
    /// The inputs' statistics after the last pooling (or when the worker joined): what every
    /// worker's statistics grew from since.
    agreed: InputsState,
}

impl std::fmt::Debug for DataParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataParallel")
            .field("rank", &self.comm.rank())
            .field("world_size", &self.comm.world_size())
            .finish_non_exhaustive()
    }
}

impl DataParallel {
    /// A worker on `comm` whose inputs' statistics are `agreed` now (the same on every
    /// worker: fresh, or restored from one checkpoint).
    pub fn new(comm: Arc<dyn Communicator>, agreed: InputsState) -> Self {
        Self { comm, agreed }
    }

    /// Replaces the agreed statistics (after every worker loaded the same state).
    pub(crate) fn set_agreed(&mut self, agreed: InputsState) {
        self.agreed = agreed;
    }

    /// The mean of `t` over the workers (every worker passes a tensor of the same shape).
    pub(crate) fn mean<B: Backend>(
        &self,
        t: Tensor<B, 1>,
        operation: &'static str,
    ) -> Result<Tensor<B, 1>, Error> {
        let device = t.device();
        let mut values: Vec<f32> = t
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| Error::Readback(format!("{e:?}")))?;
        self.comm
            .all_reduce_sum_f32(&mut values, operation)
            .map_err(|error| Error::Collective { operation, error })?;
        let scale = 1.0 / self.comm.world_size() as f32;
        for v in &mut values {
            *v *= scale;
        }
        let n = values.len();
        Ok(Tensor::from_data(TensorData::new(values, [n]), &device))
    }

    /// Replaces the gradients of every parameter of `module` by their mean over the workers:
    /// one all-reduce of all of them, flattened and joined in the module's visiting order (the
    /// same on every worker, unlike parameter ids). A parameter without a gradient here adds
    /// zeros and keeps none.
    pub(crate) fn average_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        module: &M,
        grads: &mut GradientsParams,
    ) -> Result<(), Error> {
        let mut gather = Gather::<B> {
            grads,
            parts: Vec::new(),
        };
        module.visit(&mut gather);
        if gather.parts.is_empty() {
            return Ok(());
        }
        let joined = Tensor::cat(std::mem::take(&mut gather.parts), 0); // [P]
        let mean = self.mean(joined, "averaging the gradients")?;
        let mut scatter = Scatter::<B> {
            grads,
            mean,
            offset: 0,
        };
        module.visit(&mut scatter);
        Ok(())
    }

    /// Pools the workers' normaliser statistics: each worker's grew from the agreed ones by
    /// its own samples since, and the result is the statistics of the agreed samples and
    /// all of those, as one normaliser that saw every worker's batches would hold (exact up
    /// to rounding). Every worker gets the same values; they become the agreed ones.
    pub(crate) fn pool_statistics(&mut self, own: &InputsState) -> Result<InputsState, Error> {
        let parts = [
            (&self.agreed.actor, &own.actor),
            (&self.agreed.critic, &own.critic),
        ];
        // Per normaliser: the count, then the sums and sums of squares of each feature.
        let mut sums: Vec<f64> = Vec::new();
        for (agreed, own) in parts {
            match (agreed, own) {
                (Some(a), Some(o)) if a.mean.len() == o.mean.len() => moments(o, &mut sums),
                (None, None) => {}
                _ => {
                    return Err(Error::Protocol(
                        "the normalisers changed shape since the workers last agreed",
                    ));
                }
            }
        }
        if sums.is_empty() {
            return Ok(own.clone());
        }
        let operation = "pooling the observation statistics";
        self.comm
            .all_reduce_sum_f64(&mut sums, operation)
            .map_err(|error| Error::Collective { operation, error })?;
        // Each worker's sums include the agreed samples once: remove the extra copies.
        let extra = (self.comm.world_size() - 1) as f64;
        let mut at = 0;
        let mut pooled = [None, None];
        for (slot, (agreed, _)) in pooled.iter_mut().zip(parts) {
            let Some(agreed) = agreed else { continue };
            let dim = agreed.mean.len();
            let mut base = Vec::with_capacity(1 + 2 * dim);
            moments(agreed, &mut base);
            let total: Vec<f64> = sums[at..at + base.len()]
                .iter()
                .zip(&base)
                .map(|(s, b)| s - extra * b)
                .collect();
            at += base.len();
            let count = total[0];
            *slot = Some(if count <= 0.0 {
                agreed.clone()
            } else {
                let mean: Vec<f64> = total[1..=dim].iter().map(|s| s / count).collect();
                let var = total[1 + dim..]
                    .iter()
                    .zip(&mean)
                    .map(|(q, m)| ((q / count - m * m).max(0.0)) as f32)
                    .collect();
                NormalizerState {
                    mean: mean.into_iter().map(|m| m as f32).collect(),
                    var,
                    count: count.round() as u64,
                }
            });
        }
        let [actor, critic] = pooled;
        let result = InputsState { actor, critic };
        self.agreed = result.clone();
        Ok(result)
    }
}

/// Appends a normaliser's sample count, per-feature sums and per-feature sums of squares.
fn moments(s: &NormalizerState, out: &mut Vec<f64>) {
    let n = s.count as f64;
    out.push(n);
    out.extend(s.mean.iter().map(|&m| n * f64::from(m)));
    out.extend(
        s.mean
            .iter()
            .zip(&s.var)
            .map(|(&m, &v)| n * (f64::from(v) + f64::from(m) * f64::from(m))),
    );
}

/// Collects every parameter's gradient, flattened (zeros where there is none).
struct Gather<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<Inner<B>, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Gather<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let part = match self.grads.get::<Inner<B>, D>(param.id) {
            Some(g) => g.flatten::<1>(0, D - 1),
            None => {
                let value = param.val().inner();
                let n = value.shape().num_elements();
                Tensor::zeros([n], &value.device())
            }
        };
        self.parts.push(part);
    }
}

/// Puts the averaged gradients back, in the order [`Gather`] took them.
struct Scatter<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    mean: Tensor<Inner<B>, 1>,
    offset: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scatter<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let id: ParamId = param.id;
        let shape = param.val().dims();
        let n: usize = shape.iter().product();
        let part = self.mean.clone().narrow(0, self.offset, n).reshape(shape);
        self.offset += n;
        if self.grads.remove::<Inner<B>, D>(id).is_some() {
            self.grads.register(id, part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A communicator of `n` identical workers in one thread: sums multiply by `n`.
    struct Mirror(usize);

    impl Communicator for Mirror {
        fn rank(&self) -> usize {
            0
        }
        fn world_size(&self) -> usize {
            self.0
        }
        fn all_reduce_sum_f32(
            &self,
            v: &mut [f32],
            _: &str,
        ) -> Result<(), rl_core::CollectiveError> {
            v.iter_mut().for_each(|x| *x *= self.0 as f32);
            Ok(())
        }
        fn all_reduce_sum_f64(
            &self,
            v: &mut [f64],
            _: &str,
        ) -> Result<(), rl_core::CollectiveError> {
            v.iter_mut().for_each(|x| *x *= self.0 as f64);
            Ok(())
        }
        fn broadcast(&self, b: Vec<u8>, _: &str) -> Result<Vec<u8>, rl_core::CollectiveError> {
            Ok(b)
        }
        fn gather(
            &self,
            b: Vec<u8>,
            _: &str,
        ) -> Result<Option<Vec<Vec<u8>>>, rl_core::CollectiveError> {
            Ok(Some(vec![b; self.0]))
        }
        fn abort(&self, _: &str) {}
    }

    fn stats(samples: &[f64]) -> NormalizerState {
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        NormalizerState {
            mean: vec![mean as f32],
            var: vec![var as f32],
            count: samples.len() as u64,
        }
    }

    #[test]
    fn pooled_statistics_are_those_of_every_sample() {
        // Agreed on 4 samples; two workers (mirrored: both added the same 3) since.
        let agreed = [1.0, 2.0, 3.0, 10.0];
        let new = [5.0, -1.0, 4.0];
        let own: Vec<f64> = agreed.iter().chain(&new).copied().collect();
        let mut dp = DataParallel::new(
            Arc::new(Mirror(2)),
            InputsState {
                actor: Some(stats(&agreed)),
                critic: None,
            },
        );
        let pooled = dp
            .pool_statistics(&InputsState {
                actor: Some(stats(&own)),
                critic: None,
            })
            .expect("pool");
        let all: Vec<f64> = agreed.iter().chain(&new).chain(&new).copied().collect();
        let expected = stats(&all);
        let got = pooled.actor.expect("actor");
        assert_eq!(got.count, 10);
        assert!(
            (got.mean[0] - expected.mean[0]).abs() < 1e-5,
            "{got:?} {expected:?}"
        );
        assert!(
            (got.var[0] - expected.var[0]).abs() < 1e-4,
            "{got:?} {expected:?}"
        );
        assert!(pooled.critic.is_none());
        assert_eq!(dp.agreed.actor.as_ref().map(|s| s.count), Some(10));
    }
}
