//! Deployment of trained policies: what a robot's computer runs.
//!
//! - [`export_onnx`]: the ONNX graph (opset 18) of an inference [`rl_modules::Policy`], with
//!   the observation normaliser folded in, recurrent states as explicit inputs and outputs,
//!   and the deterministic action (a Gaussian's mean clipped to the task's bounds, or the
//!   most likely choice with the logits).
//! - [`OnnxRuntime`]: runs such a graph with `tract`, another runtime than the one that
//!   trained it, so that an exported file can be checked against the policy and played in
//!   the simulator.
//! - [`safetensors_weights`]: the policy's weights and normaliser statistics as a
//!   safetensors file, written by Burn's store.
//!
//! The graphs are written with the protobuf types that `tract-onnx` exposes, encoded by
//! `prost`.

mod error;
mod graph;
mod onnx;
mod runtime;
mod weights;

pub use error::{Error, Result};
pub use graph::{IR_VERSION, OPSET};
pub use onnx::{
    ACTIONS, C_IN, C_OUT, H_IN, H_OUT, LOGITS, MemorySignature, OBS, OnnxPolicy, Signature,
    clip_actions, export_onnx,
};
pub use runtime::OnnxRuntime;
pub use weights::safetensors_weights;

#[cfg(test)]
mod tests;
