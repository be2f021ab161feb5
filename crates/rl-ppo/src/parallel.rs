//! Data-parallel updates (rsl_rl's multi-GPU training): every worker collects a rollout of
//! its own environments, and before each optimiser step the workers average their
//! gradients and their mini-batch KL through burn-collective's all-reduce, so that they take
//! the same step with the same learning rate and keep identical weights.

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorPrimitive};
use burn_collective::{PeerId, ReduceOperation, all_reduce};

use crate::Error;

type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// This worker's place in a data-parallel run. The worker must be registered with
/// burn-collective (`burn_collective::register` on the inner backend, peer id `rank`)
/// before its first update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataParallel {
    /// This worker's rank, `0..world_size`; its burn-collective peer id.
    pub rank: u32,
    /// The number of workers.
    pub world_size: u32,
}

impl DataParallel {
    /// The burn-collective peer id of this worker.
    pub fn peer(&self) -> PeerId {
        PeerId::from(self.rank)
    }

    /// The mean of `t` over the workers (every worker passes a tensor of the same shape).
    pub(crate) fn mean<B: Backend>(
        &self,
        t: Tensor<B, 1>,
        operation: &'static str,
    ) -> Result<Tensor<B, 1>, Error> {
        let reduced = all_reduce::<B>(
            self.peer(),
            t.into_primitive().tensor(),
            ReduceOperation::Mean,
        )
        .map_err(|e| Error::Collective {
            rank: self.rank,
            world_size: self.world_size,
            operation,
            message: format!("{e:?}"),
        })?;
        Ok(Tensor::from_primitive(TensorPrimitive::Float(reduced)))
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
