//! `sin` and `cos` written with basic tensor arithmetic, so that every backend computes
//! bit-identical values.
//!
//! Backends implement `sin` and `cos` with their own approximations (burn-ndarray calls the
//! C library, burn-flex its own vectorised code), which disagree in the last bit for a few
//! percent of inputs; over hundreds of steps of a chaotic system such as the acrobot those
//! bits grow into visible differences. Additions, multiplications, `round` and `floor` are
//! exact IEEE operations on every CPU backend, so a sine built from them alone is the same
//! everywhere. This one is Cephes' `sinf`/`cosf`: reduction by `pi / 2` in three parts
//! (Cody and Waite) and minimax polynomials on `[-pi / 4, pi / 4]`, within about 2 ulp of
//! the true value for `|x|` up to a few thousand radians.

use burn::tensor::{Tensor, backend::Backend};

pub(crate) const TWO_OVER_PI: f32 = std::f32::consts::FRAC_2_PI;
/// `pi / 2` in three parts; the first two have few significant bits, so `k * part` is exact
/// for the quadrant counts `k` that occur.
pub(crate) const PIO2_1: f32 = 1.570_312_5;
pub(crate) const PIO2_2: f32 = 4.837_513e-4;
pub(crate) const PIO2_3: f32 = 7.549_79e-8;
pub(crate) const SIN_1: f32 = -1.666_665_5e-1;
pub(crate) const SIN_2: f32 = 8.332_161e-3;
pub(crate) const SIN_3: f32 = -1.951_529_6e-4;
pub(crate) const COS_1: f32 = 4.166_664_6e-2;
pub(crate) const COS_2: f32 = -1.388_731_6e-3;
pub(crate) const COS_3: f32 = 2.443_315_7e-5;

/// `(sin x, cos x)` element-wise.
pub(crate) fn sin_cos<B: Backend, const D: usize>(x: Tensor<B, D>) -> (Tensor<B, D>, Tensor<B, D>) {
    // x = k pi/2 + r with |r| <= pi/4.
    let k = x.clone().mul_scalar(TWO_OVER_PI).round();
    let r = x
        - k.clone().mul_scalar(PIO2_1)
        - k.clone().mul_scalar(PIO2_2)
        - k.clone().mul_scalar(PIO2_3);
    let z = r.clone().square();
    // sin r and cos r on [-pi/4, pi/4].
    let s = r.clone()
        + r.mul(z.clone()).mul(
            z.clone()
                .mul_scalar(SIN_3)
                .add_scalar(SIN_2)
                .mul(z.clone())
                .add_scalar(SIN_1),
        );
    let c = z.clone().square().mul(
        z.clone()
            .mul_scalar(COS_3)
            .add_scalar(COS_2)
            .mul(z.clone())
            .add_scalar(COS_1),
    ) - z.mul_scalar(0.5)
        + 1.0;
    // Quadrant q = k mod 4; sin x is s, c, -s, -c and cos x is sin of quadrant q + 1.
    let q = modulo(k, 4.0);
    let sin = quadrant(q.clone(), s.clone(), c.clone());
    let cos = quadrant(modulo(q.add_scalar(1.0), 4.0), s, c);
    (sin, cos)
}

/// `sin x` element-wise (see [`sin_cos`]).
pub(crate) fn sin<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    sin_cos(x).0
}

/// `cos x` element-wise (see [`sin_cos`]).
pub(crate) fn cos<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    sin_cos(x).1
}

/// `x mod m` of integer-valued floats, exactly.
fn modulo<B: Backend, const D: usize>(x: Tensor<B, D>, m: f32) -> Tensor<B, D> {
    x.clone() - x.div_scalar(m).floor().mul_scalar(m)
}

/// `sin` in quadrant `q` (0..4) from `s = sin r`, `c = cos r`: `s, c, -s, -c`. Products with
/// 0 and 1 and sums with zero are exact, so the selection adds no rounding.
fn quadrant<B: Backend, const D: usize>(
    q: Tensor<B, D>,
    s: Tensor<B, D>,
    c: Tensor<B, D>,
) -> Tensor<B, D> {
    let odd = modulo(q.clone(), 2.0); // 1 in quadrants 1 and 3
    let negative = q.div_scalar(2.0).floor(); // 1 in quadrants 2 and 3
    let value = c.mul(odd.clone()) + s.mul(odd.neg().add_scalar(1.0));
    value.mul(negative.mul_scalar(-2.0).add_scalar(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn inputs() -> Vec<f32> {
        let mut x: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 * 0.005).collect();
        x.extend((0..2000).map(|i| (i as f32 * 0.618_034).sin() * 3000.0));
        let pi = std::f32::consts::PI;
        x.extend([
            0.0,
            -0.0,
            pi,
            -pi,
            pi / 2.0,
            -pi / 2.0,
            pi / 4.0,
            3.0 * pi / 4.0,
            1e-30,
        ]);
        x
    }

    fn run<R: Backend>(x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let t =
            Tensor::<R, 1>::from_data(TensorData::new(x.to_vec(), [x.len()]), &Default::default());
        let (s, c) = sin_cos(t);
        (
            s.into_data().to_vec().expect("f32"),
            c.into_data().to_vec().expect("f32"),
        )
    }

    #[test]
    fn matches_the_true_sine_and_cosine_to_a_few_ulp() {
        let x = inputs();
        let (s, c) = run::<crate::testing::B>(&x);
        let mut worst = 0.0f64;
        for (i, &xi) in x.iter().enumerate() {
            let (ws, wc) = f64::from(xi).sin_cos();
            for (got, want) in [(s[i], ws), (c[i], wc)] {
                let err = (f64::from(got) - want).abs();
                // Absolute for small values, relative for the others: 2 ulp of max(|want|, 0.5).
                let tol = 2.0 * f64::from(f32::EPSILON) * want.abs().max(0.5);
                worst = worst.max(err / tol);
                assert!(
                    err <= tol,
                    "x = {xi}: got {got}, want {want} (error {err:e})"
                );
            }
        }
        assert!(worst > 0.0, "the comparison saw no error at all");
        assert_eq!(run::<crate::testing::B>(&[0.0]).0, vec![0.0]);
        assert_eq!(run::<crate::testing::B>(&[0.0]).1, vec![1.0]);
    }

    #[test]
    fn identical_on_ndarray_and_flex() {
        let x = inputs();
        let a = run::<crate::testing::B>(&x);
        let b = run::<burn::backend::Flex>(&x);
        assert_eq!(a, b);
        // The backends' own sin does differ somewhere on these inputs (the reason this module
        // exists); if that ever stops being true, this module can go.
        let own = |x: &[f32]| -> (Vec<f32>, Vec<f32>) {
            let t = Tensor::<crate::testing::B, 1>::from_data(
                TensorData::new(x.to_vec(), [x.len()]),
                &Default::default(),
            );
            let f = Tensor::<burn::backend::Flex, 1>::from_data(
                TensorData::new(x.to_vec(), [x.len()]),
                &Default::default(),
            );
            (
                t.sin().into_data().to_vec().expect("f32"),
                f.sin().into_data().to_vec().expect("f32"),
            )
        };
        let (nd, fl) = own(&x);
        assert_ne!(nd, fl, "the backends' own sin agree: see the module docs");
    }
}
