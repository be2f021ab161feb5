//! A batched solve of symmetric positive-definite systems by LDL^T factorisation.

use burn::tensor::{Tensor, backend::Backend};

/// Solves `a x = b` for every batch row: `a` `[N, n, n]` symmetric positive definite, `b`
/// `[N, n]`; returns `x` `[N, n]`.
///
/// Right-looking LDL^T without pivoting (a positive-definite matrix needs none): column `k`
/// of `L` is the trailing column divided by the pivot, the trailing block loses its outer
/// product, and the right-hand side is eliminated alongside; then back substitution. About
/// `n^3 / 3` multiply-adds per system in `O(n)` tensor operations.
pub(crate) fn solve_spd<B: Backend>(a: Tensor<B, 3>, b: Tensor<B, 2>) -> Tensor<B, 2> {
    let [batch, n, _] = a.dims();
    let device = b.device();
    let mut t = a; // trailing block [N, m, m]
    let mut y = b; // trailing right-hand side [N, m]
    let mut pivots = Vec::with_capacity(n); // d_k [N, 1]
    let mut columns = Vec::with_capacity(n); // column k of L below the diagonal [N, m - 1]
    let mut eliminated = Vec::with_capacity(n); // y_k [N, 1]
    for k in 0..n {
        let m = n - k;
        let d = t
            .clone()
            .narrow(1, 0, 1)
            .narrow(2, 0, 1)
            .reshape([batch, 1]); // [N, 1]
        let y0 = y.clone().narrow(1, 0, 1); // [N, 1]
        if m > 1 {
            let col = t
                .clone()
                .narrow(1, 1, m - 1)
                .narrow(2, 0, 1)
                .reshape([batch, m - 1]);
            let l = col.clone() / d.clone(); // [N, m - 1]
            // A' = A[1.., 1..] - l a[0, 1..] (the row equals the column by symmetry).
            let outer = l.clone().unsqueeze_dim::<3>(2) * col.unsqueeze_dim::<3>(1); // [N, m-1, m-1]
            t = t.narrow(1, 1, m - 1).narrow(2, 1, m - 1) - outer;
            y = y.narrow(1, 1, m - 1) - l.clone() * y0.clone();
            columns.push(l);
        }
        pivots.push(d);
        eliminated.push(y0);
    }
    // Back substitution: x_k = y_k / d_k - l_k . x_{k+1..}.
    let mut x: Option<Tensor<B, 2>> = None; // x_{k..} [N, n - k]
    for k in (0..n).rev() {
        let mut xk = eliminated[k].clone() / pivots[k].clone();
        if let Some(rest) = &x {
            xk = xk - (columns[k].clone() * rest.clone()).sum_dim(1);
        }
        x = Some(match x {
            Some(rest) => Tensor::cat(vec![xk, rest], 1),
            None => xk,
        });
    }
    x.unwrap_or_else(|| Tensor::zeros([batch, 0], &device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::{Distribution, TensorData};

    type B = Flex;

    #[test]
    fn solves_random_spd_systems() {
        let device = Default::default();
        let (batch, n) = (5, 9);
        let r = Tensor::<B, 3>::random([batch, n, n], Distribution::Normal(0.0, 1.0), &device);
        // R R^T + n I is symmetric positive definite and well conditioned.
        let eye = Tensor::<B, 2>::eye(n, &device).unsqueeze_dim::<3>(0);
        let a = r.clone().matmul(r.swap_dims(1, 2)) + eye.mul_scalar(n as f32);
        let x_true = Tensor::<B, 2>::random([batch, n], Distribution::Normal(0.0, 1.0), &device);
        let b = a
            .clone()
            .matmul(x_true.clone().unsqueeze_dim::<3>(2))
            .reshape([batch, n]);
        let x = solve_spd(a, b);
        let err = (x - x_true).abs().max().into_scalar();
        assert!(err < 1e-4, "error {err}");
    }

    #[test]
    fn one_by_one_is_a_division() {
        let device = Default::default();
        let a = Tensor::<B, 3>::from_data(TensorData::new(vec![4.0f32, 2.0], [2, 1, 1]), &device);
        let b = Tensor::<B, 2>::from_data(TensorData::new(vec![2.0f32, 3.0], [2, 1]), &device);
        let x = solve_spd(a, b).into_data().to_vec::<f32>().expect("f32");
        assert_eq!(x, [0.5, 1.5]);
    }
}
