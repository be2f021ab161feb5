//! Reductions that ignore masked-out entries (padding in recurrent mini-batches).

use burn::tensor::{Tensor, backend::Backend};

/// Sum of `x` over the entries where `mask` is 1: `[1]`.
///
/// `mask` is a float tensor of 0s and 1s with the shape of `x`.
pub fn masked_sum<B: Backend, const D: usize>(x: Tensor<B, D>, mask: Tensor<B, D>) -> Tensor<B, 1> {
    (x * mask).sum() // [1]
}

/// Mean of `x` over the entries where `mask` is 1: `[1]`.
///
/// `sum(x * mask) / max(sum(mask), 1)`, so an all-zero mask gives 0 rather than NaN.
/// `mask` is a float tensor of 0s and 1s with the shape of `x`.
pub fn masked_mean<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    mask: Tensor<B, D>,
) -> Tensor<B, 1> {
    let count = mask.clone().sum().clamp_min(1.0); // [1]
    masked_sum(x, mask) / count
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};

    type B = NdArray;

    fn scalar(t: Tensor<B, 1>) -> f32 {
        assert_eq!(t.dims(), [1]);
        t.into_scalar()
    }

    #[test]
    fn sum_and_mean_over_kept_entries() {
        let device = Default::default();
        let x = Tensor::<B, 2>::from_floats([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], &device);
        let mask = Tensor::<B, 2>::from_floats([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], &device);
        assert!((scalar(masked_sum(x.clone(), mask.clone())) - 9.0).abs() < 1e-6);
        assert!((scalar(masked_mean(x, mask)) - 3.0).abs() < 1e-6);
    }

    #[test]
    fn full_mask_is_the_plain_mean() {
        let device = Default::default();
        let x = Tensor::<B, 3>::from_floats([[[1.0, -2.0]], [[3.5, 0.5]]], &device);
        let mask = Tensor::<B, 3>::ones([2, 1, 2], &device);
        let want = x.clone().mean().into_scalar();
        assert!((scalar(masked_mean(x, mask)) - want).abs() < 1e-6);
    }

    #[test]
    fn empty_mask_gives_zero() {
        let device = Default::default();
        let x = Tensor::<B, 1>::from_floats([1.0, 2.0], &device);
        let mask = Tensor::<B, 1>::zeros([2], &device);
        assert_eq!(scalar(masked_sum(x.clone(), mask.clone())), 0.0);
        assert_eq!(scalar(masked_mean(x, mask)), 0.0);
    }

    #[test]
    fn masked_entries_get_no_gradient() {
        type AB = Autodiff<NdArray>;
        let device = Default::default();
        let x = Tensor::<AB, 1>::from_floats([1.0, 2.0, 3.0, 4.0], &device).require_grad();
        let mask = Tensor::<AB, 1>::from_floats([1.0, 1.0, 0.0, 0.0], &device);
        let grads = masked_mean(x.clone(), mask).backward();
        let g = x
            .grad(&grads)
            .expect("x has a gradient")
            .into_data()
            .to_vec::<f32>()
            .expect("f32 data");
        assert_eq!(g, vec![0.5, 0.5, 0.0, 0.0]);
    }
}
