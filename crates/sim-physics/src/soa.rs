//! Batched 3-vectors and 3x3 matrices stored one component per tensor (structure of
//! arrays): a [`V3`] holds three `[N, K]` tensors, an [`M3`] nine.
//!
//! Every operation is then an element-wise operation between contiguous 2-D tensors of the
//! same shape, or with a per-item constant `[1, K]` or a per-environment value `[N, 1]` on
//! the right. CPU backends run exactly those on their fast SIMD paths; a vector stored along
//! a last dimension of size 3 would instead be read through strided views (a narrow of the
//! last dimension, a broadcast on both sides), which burn-flex walks one element at a time.
//! Keep the full `[N, K]` operand on the left of a binary operation.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use super::model::{Mat3, Vec3};

type T<B> = Tensor<B, 2>;

/// `[1, K]` constant from host values.
pub(crate) fn row<B: Backend>(values: Vec<f32>, device: &B::Device) -> T<B> {
    let k = values.len();
    Tensor::from_data(TensorData::new(values, [1, k]), device)
}

/// Three `[N, K]` (or `[1, K]`, `[N, 1]`) tensors: the x, y and z components.
#[derive(Debug, Clone)]
pub(crate) struct V3<B: Backend> {
    pub x: T<B>,
    pub y: T<B>,
    pub z: T<B>,
}

impl<B: Backend> V3<B> {
    pub fn new(x: T<B>, y: T<B>, z: T<B>) -> Self {
        Self { x, y, z }
    }

    /// Constants `[1, K]`, one vector per item.
    pub fn constant(values: &[Vec3], device: &B::Device) -> Self {
        let comp = |i: usize| row(values.iter().map(|v| v[i] as f32).collect(), device);
        Self::new(comp(0), comp(1), comp(2))
    }

    /// The columns of `[N, 3]` as `[N, 1]` components.
    pub fn from_columns(t: &T<B>) -> Self {
        let c = |i: usize| t.clone().narrow(1, i, 1);
        Self::new(c(0), c(1), c(2))
    }

    /// `[N, 3]` from `[N, 1]` components.
    pub fn to_columns(&self) -> T<B> {
        Tensor::cat(vec![self.x.clone(), self.y.clone(), self.z.clone()], 1)
    }

    pub fn zeros(shape: [usize; 2], device: &B::Device) -> Self {
        let z = T::<B>::zeros(shape, device);
        Self::new(z.clone(), z.clone(), z)
    }

    fn map(&self, f: impl Fn(T<B>) -> T<B>) -> Self {
        Self::new(f(self.x.clone()), f(self.y.clone()), f(self.z.clone()))
    }

    fn zip(&self, o: &Self, f: impl Fn(T<B>, T<B>) -> T<B>) -> Self {
        Self::new(
            f(self.x.clone(), o.x.clone()),
            f(self.y.clone(), o.y.clone()),
            f(self.z.clone(), o.z.clone()),
        )
    }

    pub fn add(&self, o: &Self) -> Self {
        self.zip(o, |a, b| a + b)
    }

    pub fn sub(&self, o: &Self) -> Self {
        self.zip(o, |a, b| a - b)
    }

    /// Every component times `s` (`[N, K]`, `[1, K]` or `[N, 1]`).
    pub fn mul(&self, s: &T<B>) -> Self {
        self.map(|a| a * s.clone())
    }

    pub fn scale(&self, s: f64) -> Self {
        self.map(|a| a.mul_scalar(s))
    }

    /// Component-wise product with another vector (a diagonal matrix times a vector).
    pub fn hadamard(&self, o: &Self) -> Self {
        self.zip(o, |a, b| a * b)
    }

    /// `self x o`.
    pub fn cross(&self, o: &Self) -> Self {
        Self::new(
            self.y.clone() * o.z.clone() - self.z.clone() * o.y.clone(),
            self.z.clone() * o.x.clone() - self.x.clone() * o.z.clone(),
            self.x.clone() * o.y.clone() - self.y.clone() * o.x.clone(),
        )
    }

    /// `o x self`, keeping `self` (the full-size operand) on the left of every product.
    pub fn rcross(&self, o: &Self) -> Self {
        Self::new(
            self.z.clone() * o.y.clone() - self.y.clone() * o.z.clone(),
            self.x.clone() * o.z.clone() - self.z.clone() * o.x.clone(),
            self.y.clone() * o.x.clone() - self.x.clone() * o.y.clone(),
        )
    }

    pub fn dot(&self, o: &Self) -> T<B> {
        self.x.clone() * o.x.clone() + self.y.clone() * o.y.clone() + self.z.clone() * o.z.clone()
    }

    /// Items `index` (along dimension 1).
    pub fn select(&self, index: &Tensor<B, 1, Int>) -> Self {
        self.map(|a| a.select(1, index.clone()))
    }

    pub fn narrow(&self, start: usize, len: usize) -> Self {
        self.map(|a| a.narrow(1, start, len))
    }

    /// Joins along dimension 1.
    pub fn cat(parts: Vec<Self>) -> Self {
        let mut xs = Vec::with_capacity(parts.len());
        let mut ys = Vec::with_capacity(parts.len());
        let mut zs = Vec::with_capacity(parts.len());
        for p in parts {
            xs.push(p.x);
            ys.push(p.y);
            zs.push(p.z);
        }
        Self::new(Tensor::cat(xs, 1), Tensor::cat(ys, 1), Tensor::cat(zs, 1))
    }

    /// The components in order.
    pub fn parts(&self) -> [T<B>; 3] {
        [self.x.clone(), self.y.clone(), self.z.clone()]
    }
}

/// Nine `[N, K]` tensors: a 3x3 matrix per item, `m[row][col]`.
#[derive(Debug, Clone)]
pub(crate) struct M3<B: Backend> {
    pub m: [[T<B>; 3]; 3],
}

impl<B: Backend> M3<B> {
    /// Constants `[1, K]`, one matrix per item.
    pub fn constant(values: &[Mat3], device: &B::Device) -> Self {
        let e = |r: usize, c: usize| row(values.iter().map(|m| m[r][c] as f32).collect(), device);
        Self {
            m: [
                [e(0, 0), e(0, 1), e(0, 2)],
                [e(1, 0), e(1, 1), e(1, 2)],
                [e(2, 0), e(2, 1), e(2, 2)],
            ],
        }
    }

    /// Identities `[N, 1]`.
    pub fn identity(n: usize, device: &B::Device) -> Self {
        let one = T::<B>::ones([n, 1], device);
        let zero = T::<B>::zeros([n, 1], device);
        Self {
            m: [
                [one.clone(), zero.clone(), zero.clone()],
                [zero.clone(), one.clone(), zero.clone()],
                [zero.clone(), zero, one],
            ],
        }
    }

    /// Rotation matrices `[N, 1]` of unit quaternions `[N, 4]` stored `(w, x, y, z)`.
    pub fn from_quat(q: &T<B>) -> Self {
        let c = |i: usize| q.clone().narrow(1, i, 1);
        let (w, x, y, z) = (c(0), c(1), c(2), c(3));
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
        let one = |t: T<B>| t.mul_scalar(-2.0).add_scalar(1.0);
        let two = |t: T<B>| t.mul_scalar(2.0);
        Self {
            m: [
                [
                    one(yy.clone() + zz.clone()),
                    two(xy.clone() - wz.clone()),
                    two(xz.clone() + wy.clone()),
                ],
                [
                    two(xy + wz),
                    one(xx.clone() + zz),
                    two(yz.clone() - wx.clone()),
                ],
                [two(xz - wy), two(yz + wx), one(xx + yy)],
            ],
        }
    }

    /// Column `c` as a vector.
    #[cfg(test)]
    pub fn col(&self, c: usize) -> V3<B> {
        V3::new(
            self.m[0][c].clone(),
            self.m[1][c].clone(),
            self.m[2][c].clone(),
        )
    }

    /// `self v`.
    pub fn mul_v(&self, v: &V3<B>) -> V3<B> {
        let r = |i: usize| {
            self.m[i][0].clone() * v.x.clone()
                + self.m[i][1].clone() * v.y.clone()
                + self.m[i][2].clone() * v.z.clone()
        };
        V3::new(r(0), r(1), r(2))
    }

    /// `self^T v`.
    pub fn t_mul_v(&self, v: &V3<B>) -> V3<B> {
        let r = |i: usize| {
            self.m[0][i].clone() * v.x.clone()
                + self.m[1][i].clone() * v.y.clone()
                + self.m[2][i].clone() * v.z.clone()
        };
        V3::new(r(0), r(1), r(2))
    }

    /// `self o`.
    pub fn mul(&self, o: &Self) -> Self {
        let e = |r: usize, c: usize| {
            self.m[r][0].clone() * o.m[0][c].clone()
                + self.m[r][1].clone() * o.m[1][c].clone()
                + self.m[r][2].clone() * o.m[2][c].clone()
        };
        Self {
            m: [
                [e(0, 0), e(0, 1), e(0, 2)],
                [e(1, 0), e(1, 1), e(1, 2)],
                [e(2, 0), e(2, 1), e(2, 2)],
            ],
        }
    }

    fn map(&self, f: impl Fn(T<B>) -> T<B>) -> Self {
        let r = |i: usize| {
            [
                f(self.m[i][0].clone()),
                f(self.m[i][1].clone()),
                f(self.m[i][2].clone()),
            ]
        };
        Self {
            m: [r(0), r(1), r(2)],
        }
    }

    pub fn select(&self, index: &Tensor<B, 1, Int>) -> Self {
        self.map(|a| a.select(1, index.clone()))
    }

    /// Joins along dimension 1.
    pub fn cat(parts: Vec<Self>) -> Self {
        let entry =
            |r: usize, c: usize| Tensor::cat(parts.iter().map(|p| p.m[r][c].clone()).collect(), 1);
        Self {
            m: [
                [entry(0, 0), entry(0, 1), entry(0, 2)],
                [entry(1, 0), entry(1, 1), entry(1, 2)],
                [entry(2, 0), entry(2, 1), entry(2, 2)],
            ],
        }
    }
}

/// Quaternions `[N, 4]` `(w, x, y, z)` of the rotations by `omega dt` (a world angular
/// velocity `[N, 3]` held for `dt`).
pub(crate) fn quat_exp<B: Backend>(omega: T<B>, dt: f64) -> T<B> {
    let speed = omega.clone().square().sum_dim(1).sqrt(); // [N, 1]
    let half = speed.clone().mul_scalar(0.5 * dt);
    // sin(|w| dt / 2) / |w|, which tends to dt / 2 as |w| -> 0.
    let scale = half.clone().sin() / speed.clamp_min(1e-12);
    let small = half.clone().lower_elem(1e-6);
    let scale = scale.mask_fill(small, 0.5 * dt);
    Tensor::cat(vec![half.cos(), omega * scale], 1)
}

/// Hamilton product `a b` of quaternions `[N, 4]` stored `(w, x, y, z)`.
pub(crate) fn quat_mul<B: Backend>(a: &T<B>, b: &T<B>) -> T<B> {
    let (aw, av) = (
        a.clone().narrow(1, 0, 1),
        V3::from_columns(&a.clone().narrow(1, 1, 3)),
    );
    let (bw, bv) = (
        b.clone().narrow(1, 0, 1),
        V3::from_columns(&b.clone().narrow(1, 1, 3)),
    );
    let w = aw.clone() * bw.clone() - av.dot(&bv);
    let v = bv.mul(&aw).add(&av.mul(&bw)).add(&av.cross(&bv));
    Tensor::cat(vec![w, v.to_columns()], 1)
}

/// Normalises quaternions `[N, 4]` to unit length.
pub(crate) fn normalize<B: Backend>(q: T<B>) -> T<B> {
    let norm = q.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    q / norm
}

/// Rotates vectors `[N, 3]` by the inverse of unit quaternions `[N, 4]` (world to body).
pub(crate) fn quat_rotate_inverse<B: Backend>(q: &T<B>, v: &T<B>) -> T<B> {
    M3::from_quat(q).t_mul_v(&V3::from_columns(v)).to_columns()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    type B = Flex;

    fn t(rows: &[&[f32]]) -> T<B> {
        let k = rows[0].len();
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), k]), &Default::default())
    }

    fn close(a: T<B>, b: &[f32]) {
        let a = a.into_data().to_vec::<f32>().expect("f32");
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{a:?} != {b:?}");
        }
    }

    #[test]
    fn vectors_and_matrices() {
        let a = V3::<B>::from_columns(&t(&[&[1.0, 2.0, 3.0]]));
        let b = V3::<B>::from_columns(&t(&[&[-2.0, 0.5, 4.0]]));
        close(a.cross(&b).to_columns(), &[6.5, -10.0, 4.5]);
        close(b.rcross(&a).to_columns(), &[6.5, -10.0, 4.5]);
        close(a.dot(&b), &[11.0]);
        let m = M3::<B>::constant(
            &[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 10.0]]],
            &Default::default(),
        );
        close(m.mul_v(&a).to_columns(), &[14.0, 32.0, 53.0]);
        close(m.t_mul_v(&a).to_columns(), &[30.0, 36.0, 45.0]);
        let mm = m.mul(&m);
        close(mm.col(0).to_columns(), &[30.0, 66.0, 109.0]);
        close(mm.col(2).to_columns(), &[45.0, 102.0, 169.0]);
    }

    #[test]
    fn quaternions_rotate_like_their_matrices() {
        let h = std::f32::consts::FRAC_1_SQRT_2;
        // 90 degrees about z.
        let q = t(&[&[h, 0.0, 0.0, h]]);
        let r = M3::<B>::from_quat(&q);
        close(r.col(0).to_columns(), &[0.0, 1.0, 0.0]);
        close(
            quat_rotate_inverse(&q, &t(&[&[0.0, 1.0, 0.0]])),
            &[1.0, 0.0, 0.0],
        );
        close(quat_mul(&q, &q), &[0.0, 0.0, 0.0, 1.0]);
        let w = t(&[&[0.0, 0.0, std::f32::consts::FRAC_PI_2]]);
        close(quat_exp(w, 1.0), &[h, 0.0, 0.0, h]);
        close(
            quat_exp(t(&[&[0.0, 0.0, 0.0]]), 0.01),
            &[1.0, 0.0, 0.0, 0.0],
        );
    }
}

/// Symmetric 6x6 matrices, one entry per `[N, K]` tensor (the 21 of the lower triangle):
/// spatial inertias `[[A, B], [B^T, C]]` about a reference point, angular part first.
#[derive(Debug, Clone)]
pub(crate) struct Sym6<B: Backend> {
    e: Vec<T<B>>,
}

impl<B: Backend> Sym6<B> {
    fn index(i: usize, j: usize) -> usize {
        let (i, j) = if i >= j { (i, j) } else { (j, i) };
        i * (i + 1) / 2 + j
    }

    /// Builds the matrix from a function of the lower-triangle entries `(i, j)`, `i >= j`.
    pub fn from_fn(mut f: impl FnMut(usize, usize) -> T<B>) -> Self {
        let mut e = Vec::with_capacity(21);
        for i in 0..6 {
            for j in 0..=i {
                e.push(f(i, j));
            }
        }
        Self { e }
    }

    /// Entry `(i, j)`.
    pub fn get(&self, i: usize, j: usize) -> T<B> {
        self.e[Self::index(i, j)].clone()
    }

    /// Entry-wise `f`.
    pub fn map(&self, f: impl Fn(T<B>) -> T<B>) -> Self {
        Self {
            e: self.e.iter().map(|t| f(t.clone())).collect(),
        }
    }

    pub fn add(&self, o: &Self) -> Self {
        Self {
            e: self
                .e
                .iter()
                .zip(&o.e)
                .map(|(a, b)| a.clone() + b.clone())
                .collect(),
        }
    }

    /// `self v` for six-vectors given as `(angular, linear)`.
    pub fn mul_v(&self, w: &V3<B>, v: &V3<B>) -> (V3<B>, V3<B>) {
        let s = [&w.x, &w.y, &w.z, &v.x, &v.y, &v.z];
        let r = |i: usize| {
            let mut acc = self.get(i, 0) * s[0].clone();
            for (j, sj) in s.iter().enumerate().skip(1) {
                acc = acc + self.get(i, j) * (*sj).clone();
            }
            acc
        };
        (V3::new(r(0), r(1), r(2)), V3::new(r(3), r(4), r(5)))
    }
}
