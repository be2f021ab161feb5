//! Batched 3-vector, 3x3-matrix and quaternion helpers on tensors whose last dimension (or
//! last two) hold the vector (or matrix).
//!
//! Small products are written as broadcast multiplications and sums rather than `matmul`:
//! CPU backends run a batched matmul as one small GEMM call per matrix, which costs far more
//! than the 27 multiplications of a 3x3 product.

use burn::tensor::{Tensor, backend::Backend};

/// Component `i` of the vectors in the last dimension, keeping that dimension (size 1).
pub(crate) fn comp<B: Backend, const D: usize>(v: &Tensor<B, D>, i: usize) -> Tensor<B, D> {
    v.clone().narrow(D - 1, i, 1)
}

/// `a x b` over the last dimension; the other dimensions broadcast.
pub(crate) fn cross<B: Backend, const D: usize>(
    a: &Tensor<B, D>,
    b: &Tensor<B, D>,
) -> Tensor<B, D> {
    let (ax, ay, az) = (comp(a, 0), comp(a, 1), comp(a, 2));
    let (bx, by, bz) = (comp(b, 0), comp(b, 1), comp(b, 2));
    Tensor::cat(
        vec![
            ay.clone() * bz.clone() - az.clone() * by.clone(),
            az * bx.clone() - ax.clone() * bz,
            ax * by - ay * bx,
        ],
        D - 1,
    )
}

/// `a . b` over the last dimension, keeping it (size 1).
pub(crate) fn dot<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    (a * b).sum_dim(D - 1)
}

/// `m v` for matrices `[.., 3, 3]` (rank `D + 1`) and vectors `[.., 3]` (rank `D`).
pub(crate) fn mat_vec<B: Backend, const D: usize, const D1: usize>(
    m: Tensor<B, D1>,
    v: Tensor<B, D>,
) -> Tensor<B, D> {
    // [.., 3, 3] * [.., 1, 3] summed over the last dimension.
    (m * v.unsqueeze_dim::<D1>(D - 1))
        .sum_dim(D1 - 1)
        .squeeze_dim(D1 - 1)
}

/// `m^T v` for matrices `[.., 3, 3]` (rank `D + 1`) and vectors `[.., 3]` (rank `D`).
pub(crate) fn mat_t_vec<B: Backend, const D: usize, const D1: usize>(
    m: Tensor<B, D1>,
    v: Tensor<B, D>,
) -> Tensor<B, D> {
    // [.., 3, 3] * [.., 3, 1] summed over the row dimension.
    (m * v.unsqueeze_dim::<D1>(D))
        .sum_dim(D1 - 2)
        .squeeze_dim(D1 - 2)
}

/// `a b` for 3x3 matrices `[N, L, 3, 3]` (the batch dimensions broadcast).
pub(crate) fn mat_mul<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 4> {
    // [N, L, i, k, 1] * [N, L, 1, k, j] summed over k.
    let out = (a.unsqueeze_dim::<5>(4) * b.unsqueeze_dim::<5>(2)).sum_dim(3); // [N, L, 3, 1, 3]
    out.squeeze_dim(3)
}

/// `a b^T` for 3x3 matrices `[N, L, 3, 3]`.
pub(crate) fn mat_mul_t<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 4> {
    // [N, L, i, 1, k] * [N, L, 1, j, k] summed over k.
    let out = (a.unsqueeze_dim::<5>(3) * b.unsqueeze_dim::<5>(2)).sum_dim(4); // [N, L, 3, 3, 1]
    out.squeeze_dim(4)
}

/// Rotation matrices `[N, 1, 3, 3]` of unit quaternions `[N, 4]` stored `(w, x, y, z)`.
pub(crate) fn quat_to_mat<B: Backend>(q: &Tensor<B, 2>) -> Tensor<B, 4> {
    let n = q.dims()[0];
    let (w, x, y, z) = (comp(q, 0), comp(q, 1), comp(q, 2), comp(q, 3));
    let (xx, yy, zz) = (
        x.clone() * x.clone(),
        y.clone() * y.clone(),
        z.clone() * z.clone(),
    );
    let (xy, xz, yz) = (
        x.clone() * y.clone(),
        x.clone() * z.clone(),
        y.clone() * z.clone(),
    );
    let (wx, wy, wz) = (w.clone() * x, w.clone() * y, w * z);
    let one = |t: Tensor<B, 2>| t.mul_scalar(-2.0).add_scalar(1.0);
    let two = |t: Tensor<B, 2>| t.mul_scalar(2.0);
    Tensor::cat(
        vec![
            one(yy.clone() + zz.clone()),
            two(xy.clone() - wz.clone()),
            two(xz.clone() + wy.clone()),
            two(xy + wz),
            one(xx.clone() + zz),
            two(yz.clone() - wx.clone()),
            two(xz - wy),
            two(yz + wx),
            one(xx + yy),
        ],
        1,
    )
    .reshape([n, 1, 3, 3])
}

/// Hamilton product `a b` of quaternions `[N, 4]` stored `(w, x, y, z)`.
pub(crate) fn quat_mul<B: Backend>(a: &Tensor<B, 2>, b: &Tensor<B, 2>) -> Tensor<B, 2> {
    let (aw, av) = (comp(a, 0), a.clone().narrow(1, 1, 3));
    let (bw, bv) = (comp(b, 0), b.clone().narrow(1, 1, 3));
    let w = aw.clone() * bw.clone() - dot(av.clone(), bv.clone());
    let v = bv.clone() * aw + av.clone() * bw + cross(&av, &bv);
    Tensor::cat(vec![w, v], 1)
}

/// Rotates vectors `[N, 3]` by the inverse of unit quaternions `[N, 4]` (world to body).
pub(crate) fn quat_rotate_inverse<B: Backend>(q: &Tensor<B, 2>, v: Tensor<B, 2>) -> Tensor<B, 2> {
    let r = quat_to_mat(q).squeeze_dim::<3>(1); // [N, 3, 3]
    mat_t_vec(r, v)
}

/// Quaternions `[N, 4]` of the rotations by `omega dt` (a world angular velocity `[N, 3]`
/// held for `dt`).
pub(crate) fn quat_exp<B: Backend>(omega: Tensor<B, 2>, dt: f64) -> Tensor<B, 2> {
    let speed = omega.clone().square().sum_dim(1).sqrt(); // [N, 1]
    let half = speed.clone().mul_scalar(0.5 * dt);
    // sin(|w| dt / 2) / |w|, which tends to dt / 2 as |w| -> 0.
    let scale = half.clone().sin() / speed.clamp_min(1e-12);
    let small = half.clone().lower_elem(1e-6);
    let scale = scale.mask_fill(small, 0.5 * dt);
    Tensor::cat(vec![half.cos(), omega * scale], 1)
}

/// Normalises quaternions `[N, 4]` to unit length.
pub(crate) fn normalize<B: Backend>(q: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = q.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    q / norm
}

/// The skew matrices `[N, L, 3, 3]` of vectors `[N, L, 3]`: `skew(w) v = w x v`.
pub(crate) fn skew<B: Backend>(w: &Tensor<B, 3>) -> Tensor<B, 4> {
    let [n, l, _] = w.dims();
    let (x, y, z) = (comp(w, 0), comp(w, 1), comp(w, 2));
    let zero = x.zeros_like();
    Tensor::cat(
        vec![
            zero.clone(),
            -z.clone(),
            y.clone(),
            z,
            zero.clone(),
            -x.clone(),
            -y,
            x,
            zero,
        ],
        2,
    )
    .reshape([n, l, 3, 3])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    type B = Flex;

    fn t2(rows: &[[f32; 3]]) -> Tensor<B, 2> {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), 3]), &Default::default())
    }

    fn close(a: Tensor<B, 2>, b: &[f32]) {
        let a = a.into_data().to_vec::<f32>().expect("f32");
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{a:?} != {b:?}");
        }
    }

    #[test]
    fn cross_and_products() {
        let a = t2(&[[1.0, 2.0, 3.0]]);
        let b = t2(&[[-2.0, 0.5, 4.0]]);
        close(cross(&a, &b), &[6.5, -10.0, 4.5]);
        let m: Tensor<B, 3> = Tensor::from_data(
            TensorData::new(
                vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0],
                [1, 3, 3],
            ),
            &Default::default(),
        );
        close(mat_vec(m.clone(), a.clone()), &[14.0, 32.0, 53.0]);
        close(mat_t_vec(m.clone(), a.clone()), &[30.0, 36.0, 45.0]);
        let m4 = m.clone().unsqueeze_dim::<4>(1);
        let mm = mat_mul(m4.clone(), m4.clone()).reshape([3, 3]);
        close(
            mm,
            &[30.0, 36.0, 45.0, 66.0, 81.0, 102.0, 109.0, 134.0, 169.0],
        );
        let mmt = mat_mul_t(m4.clone(), m4).reshape([3, 3]);
        close(
            mmt,
            &[14.0, 32.0, 53.0, 32.0, 77.0, 128.0, 53.0, 128.0, 213.0],
        );
        let s = skew(&a.clone().unsqueeze_dim::<3>(1)).reshape([1, 3, 3]);
        close(mat_vec(s, b), &[6.5, -10.0, 4.5]);
    }

    #[test]
    fn quaternions_rotate_like_their_matrices() {
        // 90 degrees about z: (cos 45, 0, 0, sin 45).
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let q: Tensor<B, 2> = Tensor::from_data(
            TensorData::new(vec![h, 0.0, 0.0, h], [1, 4]),
            &Default::default(),
        );
        close(
            quat_rotate_inverse(&q, t2(&[[0.0, 1.0, 0.0]])),
            &[1.0, 0.0, 0.0],
        );
        // Two quarter turns make a half turn.
        close(quat_mul(&q, &q), &[0.0, 0.0, 0.0, 1.0]);
        // exp of a spin of pi/2 rad/s about z for 1 s is the quarter turn.
        let w = t2(&[[0.0, 0.0, std::f32::consts::FRAC_PI_2]]);
        close(quat_exp(w, 1.0), &[h, 0.0, 0.0, h]);
        close(
            quat_exp(t2(&[[0.0, 0.0, 0.0]]), 0.01),
            &[1.0, 0.0, 0.0, 0.0],
        );
    }
}
