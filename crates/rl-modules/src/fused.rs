//! A linear layer and its activation as one operation: `y = act(x W + b)`.
//!
//! Written with Burn's generic operations, a hidden layer costs a matrix multiply, a
//! broadcast bias add and four or five element-wise passes forward (ELU: clamp, clamp, exp,
//! subtract, add), and as many again backward, each recorded in the autodiff graph. For the
//! MLPs of robot-learning policies (batches of thousands, layers of a few hundred units)
//! those passes cost more than the matrix multiplies. [`linear_act`] does the same maths with:
//!
//! - **one autodiff node per layer** (a custom backward on Burn's `Autodiff` backend): the
//!   backward needs only the layer's output, since every activation handled here has a
//!   derivative that is a function of its output (ELU: `y + 1` where `y <= 0`);
//! - **one pass forward and one pass backward** on `burn-flex` (the CPU backend): bias and
//!   activation are applied in place on the matrix product, and the backward pass computes
//!   `dz = dy * act'(y)` and the bias gradient `sum_rows(dz)` together;
//! - Burn's own operations everywhere else (`ndarray`, `wgpu`, `cuda`): still one autodiff
//!   node, with the element-wise maths as tensor operations of the inner backend.
//!
//! Activations whose derivative needs the input (`gelu`, `silu`) use the plain path.
//!
//! The backend is found at run time by the type of the tensor primitive (`Any`), so that code
//! generic over `B: Backend` gets the fused path without new trait bounds.

// Built without any backend feature, nothing reaches the autodiff node
#![cfg_attr(
    not(any(
        feature = "flex",
        feature = "ndarray",
        feature = "wgpu",
        feature = "cuda"
    )),
    allow(dead_code)
)]

use core::any::{Any, TypeId};

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};

use crate::Activation;
use crate::activation::{LEAKY_RELU_SLOPE, SELU_ALPHA, SELU_SCALE};

/// `act(x W + b)` for `x: [batch, in]`, `weight: [in, out]`, `bias: [out]`.
///
/// Equal, to floating-point rounding, to
/// `act.forward(x.matmul(weight) + bias.unsqueeze())`, with the same gradients.
pub fn linear_act<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
    act: Activation,
) -> Tensor<B, 2> {
    let Some(bias) = bias else {
        return act.forward(x.matmul(weight));
    };
    if !act.derivative_from_output() {
        return reference(x, weight, bias, act);
    }
    let parts = (primitive(x), primitive(weight), primitive(bias));

    #[cfg(feature = "flex")]
    let parts = match autodiff_op::<B, burn::backend::Flex>(parts, act) {
        Ok(y) => return wrap(y),
        Err(parts) => parts,
    };
    #[cfg(feature = "ndarray")]
    let parts = match autodiff_op::<B, burn::backend::NdArray>(parts, act) {
        Ok(y) => return wrap(y),
        Err(parts) => parts,
    };
    #[cfg(feature = "wgpu")]
    let parts = match autodiff_op::<B, burn::backend::Wgpu>(parts, act) {
        Ok(y) => return wrap(y),
        Err(parts) => parts,
    };
    #[cfg(feature = "cuda")]
    let parts = match autodiff_op::<B, burn::backend::Cuda>(parts, act) {
        Ok(y) => return wrap(y),
        Err(parts) => parts,
    };

    // Not an autodiff backend (a rollout's forward pass), or one not compiled in above
    let (x, weight, bias) = parts;
    wrap(forward::<B>(x, weight, bias, act))
}

/// The straightforward composition of Burn operations that [`linear_act`] replaces.
pub fn reference<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Tensor<B, 1>,
    act: Activation,
) -> Tensor<B, 2> {
    act.forward(x.matmul(weight) + bias.unsqueeze::<2>())
}

impl Activation {
    /// Whether the derivative can be computed from the activation's output alone.
    fn derivative_from_output(self) -> bool {
        !matches!(self, Activation::Gelu | Activation::Silu)
    }
}

fn primitive<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

fn wrap<B: Backend, const D: usize>(p: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// Moves `value` into a `U` when `T` and `U` are the same type; gives it back otherwise.
fn cast<T: 'static, U: 'static>(value: T) -> Result<U, T> {
    let mut slot = Some(value);
    let any: &mut dyn Any = &mut slot;
    if let Some(value) = any.downcast_mut::<Option<U>>().and_then(Option::take) {
        return Ok(value);
    }
    match slot {
        Some(value) => Err(value),
        None => unreachable!("only a successful downcast takes the value"),
    }
}

type Parts<B> = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

/// The fused operation as one node of `Autodiff<I>`'s graph, when `B` is that backend.
fn autodiff_op<B: Backend, I: Backend>(
    parts: Parts<B>,
    act: Activation,
) -> Result<FloatTensor<B>, Parts<B>> {
    type Ad<I> = FloatTensor<Autodiff<I>>;
    // The backend itself, not only its tensor type: `Autodiff<I, C>` shares the primitive
    // for every checkpointing strategy `C`, and the node is prepared for the default one.
    if TypeId::of::<B>() != TypeId::of::<Autodiff<I>>() {
        return Err(parts);
    }
    let (x, w, b) = cast::<Parts<B>, (Ad<I>, Ad<I>, Ad<I>)>(parts)?;

    let (x_tracked, w_tracked) = (x.is_tracked(), w.is_tracked());
    let y = forward::<I>(x.primitive.clone(), w.primitive.clone(), b.primitive, act);
    let out = match LinearActBackward
        .prepare::<NoCheckpointing>([x.node.clone(), w.node.clone(), b.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = LinearActState {
                // x for the weight gradient, the weight for the input gradient
                x: w_tracked.then_some(x.primitive),
                weight: x_tracked.then_some(w.primitive),
                y: y.clone(),
                act,
            };
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    cast::<Ad<I>, FloatTensor<B>>(out)
        .map_err(|_| unreachable!("the primitive type was checked on the way in"))
}

/// What the backward pass of [`linear_act`] keeps from the forward pass.
#[derive(Debug, Clone)]
struct LinearActState<I: Backend> {
    x: Option<FloatTensor<I>>,
    weight: Option<FloatTensor<I>>,
    y: FloatTensor<I>,
    act: Activation,
}

#[derive(Debug)]
struct LinearActBackward;

impl<I: Backend> Backward<I, 3> for LinearActBackward {
    type State = LinearActState<I>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, w_node, b_node] = ops.parents;
        let state = ops.state;
        let dy = grads.consume::<I>(&ops.node);
        let (dz, db) = activation_backward::<I>(dy, state.y, state.act);
        if let Some(node) = b_node {
            grads.register::<I>(node.id, db);
        }
        if let (Some(node), Some(x)) = (w_node, state.x) {
            let dw = I::float_matmul(I::float_transpose(x), dz.clone());
            grads.register::<I>(node.id, dw);
        }
        if let (Some(node), Some(w)) = (x_node, state.weight) {
            let dx = I::float_matmul(dz, I::float_transpose(w));
            grads.register::<I>(node.id, dx);
        }
    }
}

/// `act(x W + b)` on a backend without autodiff.
fn forward<I: Backend>(
    x: FloatTensor<I>,
    w: FloatTensor<I>,
    b: FloatTensor<I>,
    act: Activation,
) -> FloatTensor<I> {
    #[cfg_attr(not(feature = "flex"), allow(unused_mut))]
    let mut z = I::float_matmul(x, w);
    #[cfg(feature = "flex")]
    if flex::bias_act(&mut z, &b, act) {
        return z;
    }
    let z: Tensor<I, 2> = wrap(z);
    let b: Tensor<I, 1> = wrap(b);
    primitive(act.forward(z + b.unsqueeze::<2>()))
}

/// `(dz, db)`: the gradient before the activation, `dy * act'(y)`, and its column sums.
fn activation_backward<I: Backend>(
    dy: FloatTensor<I>,
    y: FloatTensor<I>,
    act: Activation,
) -> (FloatTensor<I>, FloatTensor<I>) {
    #[cfg_attr(not(feature = "flex"), allow(unused_mut))]
    let mut dy = dy;
    #[cfg(feature = "flex")]
    if let Some(db) = flex::act_backward(&mut dy, &y, act) {
        let device = I::float_device(&dy);
        let cols = db.len();
        let db = I::float_from_data(burn::tensor::TensorData::new(db, [cols]), &device);
        return (dy, db);
    }
    let dy: Tensor<I, 2> = wrap(dy);
    let y: Tensor<I, 2> = wrap(y);
    let dz = match derivative_from_output(y, act) {
        Some(d) => dy * d,
        None => dy,
    };
    let [_, out] = dz.dims();
    let db = dz.clone().sum_dim(0).reshape([out]);
    (primitive(dz), primitive(db))
}

/// `act'(z)` written with the output `y = act(z)`; `None` when it is 1 everywhere.
fn derivative_from_output<I: Backend>(y: Tensor<I, 2>, act: Activation) -> Option<Tensor<I, 2>> {
    let positive = || y.clone().greater_elem(0.0);
    Some(match act {
        Activation::Identity => return None,
        // ELU: 1 where y > 0, else exp(z) = y + 1
        Activation::Elu => (y.clone() + 1.0).mask_fill(positive(), 1.0),
        Activation::Selu => {
            let (alpha, scale) = (SELU_ALPHA as f32, SELU_SCALE as f32);
            (y.clone() + alpha * scale).mask_fill(positive(), scale)
        }
        Activation::Relu => positive().float(),
        Activation::LeakyRelu => y
            .zeros_like()
            .add_scalar(LEAKY_RELU_SLOPE as f32)
            .mask_fill(positive(), 1.0),
        Activation::Tanh => y.clone().powi_scalar(2).neg().add_scalar(1.0),
        Activation::Sigmoid => y.clone().neg().add_scalar(1.0) * y,
        Activation::Gelu | Activation::Silu => unreachable!("not fused"),
    })
}

/// The `burn-flex` kernels: plain loops over contiguous `f32` storage, written so that the
/// compiler vectorises them.
#[cfg(feature = "flex")]
mod flex {
    use core::any::Any;

    use burn::backend::flex::FlexTensor;
    use burn::tensor::DType;
    use rayon::prelude::*;

    use crate::Activation;
    use crate::activation::{LEAKY_RELU_SLOPE, SELU_ALPHA, SELU_SCALE};

    /// A contiguous `f32` tensor that owns its whole buffer.
    fn dense(t: &FlexTensor) -> bool {
        t.dtype() == DType::F32
            && t.is_contiguous()
            && t.layout().start_offset() == 0
            && t.layout().num_elements() * 4 == t.bytes().len()
    }

    /// Adds the bias to every row of `z` and applies `act`, in place; `false` (and `z`
    /// untouched) unless both are dense `f32` tensors of `burn-flex` and `z` is not shared.
    pub(super) fn bias_act(z: &mut dyn Any, b: &dyn Any, act: Activation) -> bool {
        let (Some(z), Some(b)) = (
            z.downcast_mut::<FlexTensor>(),
            b.downcast_ref::<FlexTensor>(),
        ) else {
            return false;
        };
        if !dense(z) || !dense(b) || !z.is_unique() {
            return false;
        }
        let bias = b.storage::<f32>();
        let cols = bias.len();
        let data = z.storage_mut::<f32>();
        if cols == 0 || data.len() % cols != 0 || matches!(act, Activation::Gelu | Activation::Silu)
        {
            return false;
        }
        // Rows in blocks, split across threads; each block runs with the widest SIMD the CPU has
        let arch = pulp::Arch::new();
        let block = rows_per_block(cols) * cols;
        data.par_chunks_mut(block)
            .for_each(|data| arch.dispatch(BiasAct { data, bias, act }));
        true
    }

    /// Rows per parallel block: about 32k elements, at least one row.
    fn rows_per_block(cols: usize) -> usize {
        (32 * 1024 / cols).max(1)
    }

    /// [`bias_act_rows`] compiled for the SIMD level `pulp` detected (a closure given to
    /// `dispatch` is not inlined into the target-feature function; a `WithSimd` impl is).
    struct BiasAct<'a> {
        data: &'a mut [f32],
        bias: &'a [f32],
        act: Activation,
    }

    impl pulp::WithSimd for BiasAct<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) {
            bias_act_rows(self.data, self.bias, self.act);
        }
    }

    /// [`act_backward_rows`] compiled for the detected SIMD level.
    struct ActBackward<'a> {
        dz: &'a mut [f32],
        y: &'a [f32],
        cols: usize,
        act: Activation,
    }

    impl pulp::WithSimd for ActBackward<'_> {
        type Output = Vec<f32>;

        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<f32> {
            act_backward_rows(self.dz, self.y, self.cols, self.act)
        }
    }

    #[inline(always)]
    fn bias_act_rows(data: &mut [f32], bias: &[f32], act: Activation) {
        let cols = bias.len();
        for row in data.chunks_exact_mut(cols) {
            match act {
                Activation::Elu => apply(row, bias, |z| elu(z, 1.0, 1.0)),
                Activation::Selu => {
                    apply(row, bias, |z| elu(z, SELU_ALPHA as f32, SELU_SCALE as f32))
                }
                Activation::Relu => apply(row, bias, |z| z.max(0.0)),
                Activation::LeakyRelu => apply(row, bias, |z| {
                    if z > 0.0 {
                        z
                    } else {
                        z * LEAKY_RELU_SLOPE as f32
                    }
                }),
                Activation::Tanh => apply(row, bias, f32::tanh),
                Activation::Sigmoid => apply(row, bias, |z| 1.0 / (1.0 + (-z).exp())),
                Activation::Identity => apply(row, bias, |z| z),
                Activation::Gelu | Activation::Silu => {}
            }
        }
    }

    #[inline(always)]
    fn apply(row: &mut [f32], bias: &[f32], f: impl Fn(f32) -> f32) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = f(*v + b);
        }
    }

    /// `scale * (z if z > 0 else alpha * (exp(z) - 1))`.
    #[inline(always)]
    fn elu(z: f32, alpha: f32, scale: f32) -> f32 {
        let negative = alpha * (exp_non_positive(z.min(0.0)) - 1.0);
        scale * if z > 0.0 { z } else { negative }
    }

    /// `exp(x)` for `x <= 0`, branch-free so that loops over it vectorise (Cody-Waite range
    /// reduction and the degree-6 polynomial of Cephes' `expf`; relative error about 1e-7).
    #[inline(always)]
    pub(super) fn exp_non_positive(x: f32) -> f32 {
        const LOG2E: f32 = core::f32::consts::LOG2_E;
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        // Round to nearest by the 1.5 * 2^23 trick (no SSE4.1 `round` needed)
        const SHIFTER: f32 = 12_582_912.0;
        let x = x.max(-87.336_55); // exp(-87.34) is the smallest normal f32
        // k holds round(x / ln 2) in its low mantissa bits; n is that integer as a float
        let k = x * LOG2E + SHIFTER;
        let n = k - SHIFTER;
        let r = x - n * LN2_HI - n * LN2_LO;
        let p = 1.987_569_1e-4_f32;
        let p = p * r + 1.398_199_9e-3;
        let p = p * r + 8.333_452e-3;
        let p = p * r + 4.166_579_6e-2;
        let p = p * r + 1.666_666_5e-1;
        let p = p * r + 0.5;
        let e = p * r * r + r + 1.0;
        // 2^n from the exponent bits n + 127 (n is in [-126, 0]); integer operations only, so
        // that the loop vectorises (a float-to-int `as` cast is scalar: it saturates)
        let biased = k
            .to_bits()
            .wrapping_sub(SHIFTER.to_bits())
            .wrapping_add(127);
        let scale = f32::from_bits(biased << 23);
        e * scale
    }

    /// Turns `dy` into `dz = dy * act'(y)` in place (copying it first if it is shared) and
    /// returns `db = sum_rows(dz)`; `None` (and `dy` untouched) unless both are dense `f32`
    /// matrices of `burn-flex` of the same shape.
    pub(super) fn act_backward(dy: &mut dyn Any, y: &dyn Any, act: Activation) -> Option<Vec<f32>> {
        let (dy, y) = (
            dy.downcast_mut::<FlexTensor>()?,
            y.downcast_ref::<FlexTensor>()?,
        );
        let dims: &[usize] = y.layout().shape();
        let &[_, cols] = dims else {
            return None;
        };
        if !dense(dy) || !dense(y) || dy.layout().shape() != y.layout().shape() || cols == 0 {
            return None;
        }
        if matches!(act, Activation::Gelu | Activation::Silu) {
            return None;
        }
        let y_data = y.storage::<f32>();
        let dz = dy.storage_mut::<f32>();
        // Blocks of rows across threads, each with its own partial bias gradient; the
        // partials are added in block order, so the result does not depend on the threads.
        let arch = pulp::Arch::new();
        let block = rows_per_block(cols) * cols;
        let partials: Vec<Vec<f32>> = dz
            .par_chunks_mut(block)
            .zip(y_data.par_chunks(block))
            .map(|(dz, y)| arch.dispatch(ActBackward { dz, y, cols, act }))
            .collect();
        let mut db = vec![0.0f32; cols];
        for partial in partials {
            for (total, p) in db.iter_mut().zip(partial) {
                *total += p;
            }
        }
        Some(db)
    }

    #[inline(always)]
    fn act_backward_rows(dz: &mut [f32], y_data: &[f32], cols: usize, act: Activation) -> Vec<f32> {
        let mut db = vec![0.0f32; cols];
        let (alpha, scale) = (SELU_ALPHA as f32, SELU_SCALE as f32);
        for (dz_row, y_row) in dz.chunks_exact_mut(cols).zip(y_data.chunks_exact(cols)) {
            match act {
                Activation::Elu => {
                    grad(
                        dz_row,
                        y_row,
                        &mut db,
                        |y| {
                            if y > 0.0 { 1.0 } else { y + 1.0 }
                        },
                    )
                }
                Activation::Selu => grad(dz_row, y_row, &mut db, |y| {
                    if y > 0.0 { scale } else { y + alpha * scale }
                }),
                Activation::Relu => {
                    grad(dz_row, y_row, &mut db, |y| if y > 0.0 { 1.0 } else { 0.0 })
                }
                Activation::LeakyRelu => grad(dz_row, y_row, &mut db, |y| {
                    if y > 0.0 {
                        1.0
                    } else {
                        LEAKY_RELU_SLOPE as f32
                    }
                }),
                Activation::Tanh => grad(dz_row, y_row, &mut db, |y| 1.0 - y * y),
                Activation::Sigmoid => grad(dz_row, y_row, &mut db, |y| y * (1.0 - y)),
                Activation::Identity => grad(dz_row, y_row, &mut db, |_| 1.0),
                Activation::Gelu | Activation::Silu => {}
            }
        }
        db
    }

    /// One row: `dz *= d(y)` (dz holds dy on entry), and `db += dz`.
    #[inline(always)]
    fn grad(dz: &mut [f32], y: &[f32], db: &mut [f32], d: impl Fn(f32) -> f32) {
        for ((dz, y), db) in dz.iter_mut().zip(y).zip(db.iter_mut()) {
            *dz *= d(*y);
            *db += *dz;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    #[cfg(feature = "flex")]
    #[test]
    fn exp_matches_the_standard_library() {
        let mut worst = 0.0f32;
        let mut x = -90.0f32;
        while x <= 0.0 {
            let (got, want) = (flex::exp_non_positive(x), x.exp());
            if want > f32::MIN_POSITIVE {
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.001;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(flex::exp_non_positive(0.0), 1.0);
        assert!(flex::exp_non_positive(-1000.0) >= 0.0);
    }

    fn check<B: burn::tensor::backend::AutodiffBackend>(act: Activation) {
        let device = Default::default();
        let x =
            Tensor::<B, 2>::random([37, 5], Distribution::Normal(0.0, 2.0), &device).require_grad();
        let w =
            Tensor::<B, 2>::random([5, 9], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let b = Tensor::<B, 1>::random([9], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let target = Tensor::<B, 2>::random([37, 9], Distribution::Default, &device);

        let loss = |y: Tensor<B, 2>| (y * target.clone()).sum();
        let fused = linear_act(x.clone(), w.clone(), Some(b.clone()), act);
        let plain = reference(x.clone(), w.clone(), b.clone(), act);
        let tol = Tolerance::<f32>::rel_abs(1e-5, 1e-5);
        fused
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(&plain.clone().into_data(), tol);
        let g1 = loss(fused).backward();
        let g2 = loss(plain).backward();
        for (name, a, b) in [
            ("x", x.grad(&g1), x.grad(&g2)),
            ("w", w.grad(&g1), w.grad(&g2)),
        ] {
            let (a, b) = (a.expect(name), b.expect(name));
            a.into_data().assert_approx_eq::<f32>(&b.into_data(), tol);
        }
        let (gb1, gb2) = (b.grad(&g1).expect("b"), b.grad(&g2).expect("b"));
        gb1.into_data()
            .assert_approx_eq::<f32>(&gb2.into_data(), tol);

        // Without autodiff (the rollout's path)
        let (x, w, b) = (x.inner(), w.inner(), b.inner());
        let inner = linear_act(x.clone(), w.clone(), Some(b.clone()), act);
        let plain = reference(x, w, b, act);
        inner
            .into_data()
            .assert_approx_eq::<f32>(&plain.into_data(), tol);
    }

    /// The flex kernels take the tensors Burn hands them (the tests above would also pass
    /// through the generic fallback, so check that the fast path is the one taken).
    #[cfg(feature = "flex")]
    #[test]
    fn flex_kernels_accept_burn_tensors() {
        type F = burn::backend::Flex;
        let device = Default::default();
        let x = Tensor::<F, 2>::random([6, 3], Distribution::Default, &device);
        let w = Tensor::<F, 2>::random([3, 4], Distribution::Default, &device);
        let b = Tensor::<F, 1>::random([4], Distribution::Default, &device);
        let mut z = primitive(x.matmul(w));
        assert!(flex::bias_act(
            &mut z,
            &primitive(b.clone()),
            Activation::Elu
        ));
        let y = z.clone();
        let mut dy = primitive(Tensor::<F, 2>::ones([6, 4], &device));
        let db = flex::act_backward(&mut dy, &y, Activation::Elu).expect("fast path");
        assert_eq!(db.len(), 4);
        // A shared output is not modified in place
        let shared = primitive(Tensor::<F, 2>::ones([6, 4], &device));
        let mut alias = shared.clone();
        assert!(!flex::bias_act(&mut alias, &primitive(b), Activation::Elu));
        // Autodiff<Flex> becomes one node of the graph; another backend is given back
        type AF = burn::backend::Autodiff<F>;
        let ad = |shape: [usize; 2]| primitive(Tensor::<AF, 2>::ones(shape, &device));
        let bias = primitive(Tensor::<AF, 1>::ones([4], &device));
        assert!(
            autodiff_op::<AF, F>((ad([6, 3]), ad([3, 4]), bias.clone()), Activation::Elu).is_ok()
        );
        assert!(
            autodiff_op::<AF, burn::backend::NdArray>(
                (ad([6, 3]), ad([3, 4]), bias),
                Activation::Elu
            )
            .is_err()
        );
        // Not flex: the kernels decline
        let mut other = primitive(Tensor::<burn::backend::NdArray, 2>::ones(
            [2, 2],
            &Default::default(),
        ));
        let bias = primitive(Tensor::<burn::backend::NdArray, 1>::ones(
            [2],
            &Default::default(),
        ));
        assert!(!flex::bias_act(&mut other, &bias, Activation::Elu));
    }

    #[test]
    fn fused_equals_plain_on_ndarray() {
        for &act in Activation::ALL {
            check::<burn::backend::Autodiff<burn::backend::NdArray>>(act);
        }
    }

    #[cfg(feature = "flex")]
    /// The GPU path (in CI on Mesa's lavapipe): the fused node on `Autodiff<Wgpu>`, with the
    /// element-wise maths as operations of the inner backend.
    #[cfg(feature = "wgpu")]
    #[test]
    fn fused_equals_plain_on_wgpu() {
        for act in Activation::ALL.iter().copied() {
            check::<burn::backend::Autodiff<burn::backend::Wgpu>>(act);
        }
    }

    #[test]
    fn fused_equals_plain_on_flex() {
        for &act in Activation::ALL {
            check::<burn::backend::Autodiff<burn::backend::Flex>>(act);
        }
    }
}
