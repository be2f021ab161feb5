//! Activation functions chosen by name, as in rsl_rl's `resolve_nn_activation`.

use core::fmt;
use core::str::FromStr;

use burn::tensor::{Tensor, activation, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::Error;

/// An element-wise activation function, named as in rsl_rl and PyTorch (snake_case).
///
/// Parameters follow PyTorch's defaults: `elu` uses alpha 1.0, `leaky_relu` a negative slope
/// of 0.01, `selu` the constants of the SELU paper, and `gelu` is the exact (erf) form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x` if `x > 0`, else `exp(x) - 1`.
    Elu,
    /// `max(0, x)`.
    Relu,
    /// `scale * (max(0, x) + min(0, alpha * (exp(x) - 1)))`.
    Selu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `x` if `x > 0`, else `0.01 x`.
    LeakyRelu,
    /// `x * Phi(x)` with the exact normal CDF.
    Gelu,
    /// `x * sigmoid(x)` (also called swish).
    Silu,
    /// No activation: `x`.
    Identity,
}

/// ELU's alpha (PyTorch default).
pub(crate) const ELU_ALPHA: f64 = 1.0;
/// Leaky ReLU's negative slope (PyTorch default).
pub(crate) const LEAKY_RELU_SLOPE: f64 = 0.01;
/// SELU's alpha, from Klambauer et al. (2017).
pub(crate) const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
/// SELU's scale, from Klambauer et al. (2017).
pub(crate) const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

impl Activation {
    /// Every activation, in the same order as [`Activation::NAMES`].
    pub const ALL: &'static [Activation] = &[
        Activation::Elu,
        Activation::Relu,
        Activation::Selu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::LeakyRelu,
        Activation::Gelu,
        Activation::Silu,
        Activation::Identity,
    ];

    /// The names accepted by [`FromStr`] and written by [`fmt::Display`] and serde.
    pub const NAMES: &'static [&'static str] = &[
        "elu",
        "relu",
        "selu",
        "tanh",
        "sigmoid",
        "leaky_relu",
        "gelu",
        "silu",
        "identity",
    ];

    /// The snake_case name of this activation.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Elu => "elu",
            Activation::Relu => "relu",
            Activation::Selu => "selu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::Identity => "identity",
        }
    }

    /// Applies the activation element-wise; the shape is unchanged.
    pub fn forward<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            // Note: ELU and SELU are written as `max(0, x) + a (exp(min(0, x)) - 1)` rather
            // than with Burn's `mask_where` form, whose gradient is `0 * exp(x)` on the
            // positive side and so turns into NaN once `exp(x)` overflows (x > ~88 in f32).
            Activation::Elu => exp_linear(x, ELU_ALPHA, 1.0),
            Activation::Selu => exp_linear(x, SELU_ALPHA, SELU_SCALE),
            Activation::Relu => activation::relu(x),
            Activation::Tanh => activation::tanh(x),
            Activation::Sigmoid => activation::sigmoid(x),
            Activation::LeakyRelu => activation::leaky_relu(x, LEAKY_RELU_SLOPE),
            Activation::Gelu => activation::gelu(x),
            Activation::Silu => activation::silu(x),
            Activation::Identity => x,
        }
    }
}

/// `scale * (max(0, x) + alpha * (exp(min(0, x)) - 1))`: ELU for `scale = 1`, SELU otherwise.
///
/// The exponential only sees `min(0, x)`, so neither it nor its gradient can overflow; the
/// multiplications are skipped when their factor is 1 (ELU), which saves two element-wise
/// passes forward and backward on every hidden layer.
fn exp_linear<B: Backend, const D: usize>(x: Tensor<B, D>, alpha: f64, scale: f64) -> Tensor<B, D> {
    let positive = x.clone().clamp_min(0.0);
    let negative = x.clamp_max(0.0).exp().sub_scalar(1.0);
    let factor = alpha * scale;
    let negative = if factor == 1.0 {
        negative
    } else {
        negative.mul_scalar(factor)
    };
    let positive = if scale == 1.0 {
        positive
    } else {
        positive.mul_scalar(scale)
    };
    positive + negative
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// Parses a snake_case name such as `"elu"` or `"leaky_relu"` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL
            .iter()
            .copied()
            .find(|a| a.name() == wanted)
            .ok_or_else(|| Error::UnknownActivation {
                name: s.to_string(),
                valid: Self::NAMES.join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::TensorData;

    type B = NdArray;

    const INPUTS: [f32; 7] = [-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0];

    fn erf(x: f64) -> f64 {
        // Maclaurin series; accurate to f64 precision for the small |x| used here.
        let mut sum = 0.0;
        let mut term = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 || n < 5.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
        }
        2.0 / core::f64::consts::PI.sqrt() * sum
    }

    fn reference(a: Activation, x: f64) -> f64 {
        match a {
            Activation::Elu => {
                if x > 0.0 {
                    x
                } else {
                    x.exp() - 1.0
                }
            }
            Activation::Relu => x.max(0.0),
            Activation::Selu => {
                SELU_SCALE
                    * if x > 0.0 {
                        x
                    } else {
                        SELU_ALPHA * (x.exp() - 1.0)
                    }
            }
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::LeakyRelu => {
                if x > 0.0 {
                    x
                } else {
                    0.01 * x
                }
            }
            Activation::Gelu => 0.5 * x * (1.0 + erf(x / 2f64.sqrt())),
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::Identity => x,
        }
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(Activation::ALL.len(), Activation::NAMES.len());
        for (a, name) in Activation::ALL.iter().zip(Activation::NAMES) {
            assert_eq!(a.to_string(), *name);
            assert_eq!(name.parse::<Activation>().expect("valid name"), *a);
            // serde uses the same snake_case names.
            let de = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(name);
            assert_eq!(Activation::deserialize(de).expect("serde name"), *a);
        }
        assert_eq!(
            "ELU".parse::<Activation>().expect("case-insensitive"),
            Activation::Elu
        );
    }

    #[test]
    fn unknown_name_lists_valid_names() {
        let err = "swishy"
            .parse::<Activation>()
            .expect_err("not a valid name");
        let msg = err.to_string();
        assert!(msg.contains("swishy"), "{msg}");
        for name in Activation::NAMES {
            assert!(msg.contains(name), "{msg} should list {name}");
        }
    }

    #[test]
    fn forward_matches_reference() {
        let device = Default::default();
        for &a in Activation::ALL {
            let x = Tensor::<B, 1>::from_floats(INPUTS, &device);
            let y = a.forward(x).into_data().to_vec::<f32>().expect("f32 data");
            for (xi, yi) in INPUTS.iter().zip(&y) {
                let want = reference(a, f64::from(*xi));
                assert!(
                    (f64::from(*yi) - want).abs() < 1e-5,
                    "{a}({xi}) = {yi}, want {want}"
                );
            }
        }
    }

    #[test]
    fn forward_keeps_shape() {
        let device = Default::default();
        let x = Tensor::<B, 3>::ones([2, 3, 4], &device);
        for &a in Activation::ALL {
            assert_eq!(a.forward(x.clone()).dims(), [2, 3, 4]);
        }
    }

    #[test]
    fn gradients_stay_finite_for_large_inputs() {
        type AB = Autodiff<NdArray>;
        let device = Default::default();
        for &a in Activation::ALL {
            let x = Tensor::<AB, 1>::from_data(
                TensorData::from([-200.0f32, -1.0, 0.5, 200.0]),
                &device,
            )
            .require_grad();
            let grads = a.forward(x.clone()).sum().backward();
            let g = x
                .grad(&grads)
                .expect("input has a gradient")
                .into_data()
                .to_vec::<f32>()
                .expect("f32 data");
            assert!(g.iter().all(|v| v.is_finite()), "{a}: gradient {g:?}");
        }
    }
}
