//! The scalar helpers of the step kernels, each the same computation as its tensor version:
//! sine and cosine (`crate::math`), rounding of discrete actions, clamping.
//!
//! Note: a GPU's own `sin` and `cos` may be far less accurate than the CPU's (Vulkan allows
//! an absolute error of 2^-11), so the kernels use the tensor path's polynomial instead.

use cubecl::prelude::*;

use crate::math::{COS_1, COS_2, COS_3, PIO2_1, PIO2_2, PIO2_3, SIN_1, SIN_2, SIN_3, TWO_OVER_PI};

/// `(sin x, cos x)`: Cephes' `sinf`/`cosf` as in [`crate::math::sin_cos`], operation for
/// operation.
#[cube]
pub(crate) fn sin_cos(x: f32) -> (f32, f32) {
    // x = k pi/2 + r with |r| <= pi/4.
    let k = round_half_even(x * TWO_OVER_PI);
    let r = x - k * PIO2_1 - k * PIO2_2 - k * PIO2_3;
    let z = r * r;
    // sin r and cos r on [-pi/4, pi/4].
    let s = r + r * z * ((z * SIN_3 + SIN_2) * z + SIN_1);
    let c = z * z * ((z * COS_3 + COS_2) * z + COS_1) - z * 0.5f32 + 1.0f32;
    // Quadrant q = k mod 4: sin x is s, c, -s, -c and cos x is c, -s, -c, s.
    let q = k - (k / 4.0f32).floor() * 4.0f32;
    let odd = q == 1.0f32 || q == 3.0f32;
    let sin_r = select(odd, c, s);
    let cos_r = select(odd, s, c);
    let sin = select(q >= 2.0f32, -sin_r, sin_r);
    let cos = select(q == 1.0f32 || q == 2.0f32, -cos_r, cos_r);
    (sin, cos)
}

/// `sin x` (see [`sin_cos`]).
#[cube]
pub(crate) fn sin(x: f32) -> f32 {
    let (s, _c) = sin_cos(x);
    s
}

/// `cos x` (see [`sin_cos`]).
#[cube]
pub(crate) fn cos(x: f32) -> f32 {
    let (_s, c) = sin_cos(x);
    c
}

/// `x` rounded to the nearest integer, halfway values to the even one (as Burn's `round`).
#[cube]
pub(crate) fn round_half_even(x: f32) -> f32 {
    let below = x.floor();
    let fraction = x - below;
    let below_is_odd = below - (below * 0.5f32).floor() * 2.0f32;
    let up = fraction > 0.5f32 || (fraction == 0.5f32 && below_is_odd == 1.0f32);
    select(up, below + 1.0f32, below)
}

/// `x` clamped into `[low, high]`.
#[cube]
pub(crate) fn clamp(x: f32, low: f32, high: f32) -> f32 {
    select(x < low, low, select(x > high, high, x))
}

/// The index a discrete action selects among `n` choices, as a float: the value rounded to
/// the nearest integer (halfway values to the even one) and clamped into `0..n`, as
/// `crate::common::discrete_index`.
#[cube]
pub(crate) fn discrete_index(action: f32, #[comptime] n: usize) -> f32 {
    let last = comptime!(n.saturating_sub(1) as u32);
    clamp(round_half_even(action), 0.0f32, f32::cast_from(last))
}
