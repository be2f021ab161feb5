//! The floating-point precision of a network's matrix products.

use core::fmt;

use burn::tensor::FloatDType;
use serde::{Deserialize, Serialize};

/// The precision a network computes in. The parameters stay `f32` (the "master weights"
/// that the optimiser updates) in every mode; in the half-precision modes each forward pass
/// casts the input, the weights and the biases to half precision, runs the layers there, and
/// casts the output back to `f32`, so that losses, distributions and gradients of the
/// parameters are `f32` (PyTorch's autocast, without a loss scaler).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Single precision throughout (the default).
    #[default]
    F32,
    /// bfloat16 layers: the range of `f32` with 8 bits of mantissa; no loss scaling needed.
    /// For GPUs with bf16 tensor cores (NVIDIA Ampere and later).
    Bf16,
    /// IEEE half-precision layers. Its range ends at 65504 and gradients below about 6e-8
    /// flush to zero; there is no loss scaler, so prefer `bf16` where the GPU has it.
    F16,
}

impl Precision {
    /// Every precision, in the order of [`Precision::NAMES`].
    pub const ALL: &'static [Precision] = &[Precision::F32, Precision::Bf16, Precision::F16];

    /// The names written in configs.
    pub const NAMES: &'static [&'static str] = &["f32", "bf16", "f16"];

    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// The half-precision type the layers compute in; `None` for `f32`.
    pub fn half(self) -> Option<FloatDType> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(FloatDType::BF16),
            Precision::F16 => Some(FloatDType::F16),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
