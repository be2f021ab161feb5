//! The ONNX graph of an inference [`Policy`]: the observation normaliser folded in, the
//! recurrent layers (with their state as explicit inputs and outputs), the actor network,
//! and the deterministic action, clipped to the task's bounds.

use burn::tensor::{Tensor, backend::Backend};
use prost::Message;
use rl_core::ActionSpace;
use rl_modules::{Activation, EmpiricalNormalizer, Memory, Policy, Precision, RnnType};
use serde::{Deserialize, Serialize};
use tract_onnx::pb::tensor_proto::DataType;

use crate::graph::{Attr, Dim, GraphBuilder};
use crate::{Error, Result};

/// Input: the actor's observation groups, concatenated in the config's order, `[batch, D]`.
pub const OBS: &str = "obs";
/// Input of a recurrent policy: every layer's hidden state `h`, `[L, batch, H]`.
pub const H_IN: &str = "h_in";
/// Input of an LSTM policy: every layer's cell state `c`, `[L, batch, H]`.
pub const C_IN: &str = "c_in";
/// Output: the deterministic action. `[batch, A]` floats for continuous actions (the mean,
/// clipped to the task's bounds); `[batch, 1]` int64 indices for discrete ones.
pub const ACTIONS: &str = "actions";
/// Output of a discrete policy: the logits of the choices, `[batch, n]`.
pub const LOGITS: &str = "logits";
/// Output of a recurrent policy: the next `h`, `[L, batch, H]`.
pub const H_OUT: &str = "h_out";
/// Output of an LSTM policy: the next `c`, `[L, batch, H]`.
pub const C_OUT: &str = "c_out";

/// The symbolic batch dimension of every input and output.
const BATCH: Dim = Dim::Named("batch");

/// What an exported graph takes and gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// Width `D` of [`OBS`].
    pub obs_dim: usize,
    /// Columns `A` of [`ACTIONS`].
    pub num_actions: usize,
    /// For a discrete policy, the number of choices (the width of [`LOGITS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<usize>,
    /// A recurrent policy's memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemorySignature>,
}

/// The recurrent state of an exported policy: [`H_IN`] (and [`C_IN`] for an LSTM), each
/// `[num_layers, batch, hidden_dim]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemorySignature {
    /// LSTM or GRU.
    pub rnn_type: RnnType,
    /// `L`.
    pub num_layers: usize,
    /// `H`.
    pub hidden_dim: usize,
}

impl MemorySignature {
    /// The state inputs and outputs: `(input, output)` names, `h` first.
    pub fn states(&self) -> Vec<(&'static str, &'static str)> {
        match self.rnn_type {
            RnnType::Lstm => vec![(H_IN, H_OUT), (C_IN, C_OUT)],
            RnnType::Gru => vec![(H_IN, H_OUT)],
        }
    }
}

/// An exported graph: its ONNX bytes and signature.
#[derive(Debug, Clone)]
pub struct OnnxPolicy {
    /// The serialised `ModelProto`.
    pub bytes: Vec<u8>,
    /// What it takes and gives.
    pub signature: Signature,
}

/// The ONNX graph of `policy` acting in `action_space`; `metadata` becomes the model's
/// metadata properties.
///
/// The graph computes in f32 whatever the policy's precision (a half-precision policy's
/// master weights are f32; a warning says so).
///
/// # Errors
/// A policy whose weights cannot be read back, or whose action space does not fit its
/// network.
pub fn export_onnx<B: Backend>(
    policy: &Policy<B>,
    action_space: &ActionSpace,
    metadata: &[(&str, String)],
) -> Result<OnnxPolicy> {
    if policy.actor().precision() != Precision::F32 {
        tracing::warn!(
            "the policy computes in {} in cross-gym; the exported graph computes in f32 with the \
             same (f32) weights, so its actions differ by the half precision's rounding",
            policy.actor().precision()
        );
    }
    let mut g = GraphBuilder::new();
    let input = policy.input();
    let obs_dim = input.dim();
    let mut x = g.input(OBS, DataType::Float, &[BATCH, Dim::Fixed(obs_dim)]);

    if let Some(norm) = input.normalizer() {
        let (mean, den) = normalizer_constants(norm)?;
        let mean = g.floats("obs_normalizer.mean", &[obs_dim], &mean);
        let den = g.floats("obs_normalizer.std_plus_eps", &[obs_dim], &den);
        x = g.node("Sub", &[&x, &mean], &[], "centred");
        x = g.node("Div", &[&x, &den], &[], "normalized");
    }

    let (memory, states) = match policy.memory() {
        Some(memory) => {
            let (h, sig, states) = memory_graph(&mut g, memory, &x)?;
            x = h;
            (Some(sig), states)
        }
        None => (None, Vec::new()),
    };

    let layers = policy.actor().layers();
    let last = layers.len().saturating_sub(1);
    for (i, layer) in layers.iter().enumerate() {
        let [d_in, d_out] = layer.weight.val().dims();
        let w = host(layer.weight.val(), "an actor weight")?;
        let w = g.floats(&format!("actor.{i}.weight"), &[d_in, d_out], &w);
        let mut ins = vec![x.clone(), w];
        if let Some(b) = &layer.bias {
            let b = host(b.val(), "an actor bias")?;
            ins.push(g.floats(&format!("actor.{i}.bias"), &[d_out], &b));
        }
        let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
        x = g.node("Gemm", &ins, &[], "linear");
        if i < last {
            x = activation(&mut g, policy.actor().activation(), &x);
        }
    }
    let out_dim = policy.actor().output_dim();

    let (num_actions, choices) = match action_space {
        ActionSpace::Discrete { n } => {
            if *n != out_dim {
                return Err(Error::Mismatch(format!(
                    "the task has {n} choices, the policy outputs {out_dim} logits"
                )));
            }
            g.output(&x, LOGITS, DataType::Float, &[BATCH, Dim::Fixed(out_dim)]);
            let a = g.node(
                "ArgMax",
                &[&x],
                &[("axis", Attr::Int(1)), ("keepdims", Attr::Int(1))],
                "argmax",
            );
            g.output(&a, ACTIONS, DataType::Int64, &[BATCH, Dim::Fixed(1)]);
            (1, Some(*n))
        }
        ActionSpace::Box { low, high } => {
            if low.len() != out_dim || high.len() != out_dim {
                return Err(Error::Mismatch(format!(
                    "the task has {} action columns, the policy outputs {out_dim}",
                    low.len()
                )));
            }
            if clips(low, high) {
                let lo = g.floats("action_low", &[out_dim], low);
                let hi = g.floats("action_high", &[out_dim], high);
                x = g.node("Max", &[&x, &lo], &[], "clip_low");
                x = g.node("Min", &[&x, &hi], &[], "clip_high");
            }
            g.output(&x, ACTIONS, DataType::Float, &[BATCH, Dim::Fixed(out_dim)]);
            (out_dim, None)
        }
    };
    if let Some(sig) = &memory {
        let dims = [
            Dim::Fixed(sig.num_layers),
            BATCH,
            Dim::Fixed(sig.hidden_dim),
        ];
        for ((_, out), value) in sig.states().into_iter().zip(&states) {
            g.output(value, out, DataType::Float, &dims);
        }
    }
    let model = g.finish(
        "cross_gym_policy",
        "The deterministic policy of a cross-gym actor (observation normaliser folded in).",
        metadata,
    );
    Ok(OnnxPolicy {
        bytes: model.encode_to_vec(),
        signature: Signature {
            obs_dim,
            num_actions,
            choices,
            memory,
        },
    })
}

/// Whether the graph clips continuous actions to `[low, high]`: when every bound is finite.
fn clips(low: &[f32], high: &[f32]) -> bool {
    low.iter().chain(high).all(|v| v.is_finite())
}

/// The actions `a` `[N, A]` (row-major) as the exported graph outputs them for `space`:
/// clipped to the bounds where the graph clips (see [`export_onnx`]), else unchanged.
pub fn clip_actions(mut a: Vec<f32>, space: &ActionSpace) -> Vec<f32> {
    if let ActionSpace::Box { low, high } = space
        && !low.is_empty()
        && clips(low, high)
    {
        for (i, v) in a.iter_mut().enumerate() {
            let k = i % low.len();
            *v = v.clamp(low[k], high[k]);
        }
    }
    a
}

/// The normaliser's mean and denominator `sqrt(var) + eps`, computed as
/// [`EmpiricalNormalizer::normalize`] does (in f32).
fn normalizer_constants<B: Backend>(norm: &EmpiricalNormalizer<B>) -> Result<(Vec<f32>, Vec<f32>)> {
    let mean = host(norm.mean(), "the normaliser's mean")?;
    let eps = EmpiricalNormalizer::<B>::EPS as f32;
    let den = host(norm.var(), "the normaliser's variance")?
        .into_iter()
        .map(|v| v.max(0.0).sqrt() + eps)
        .collect();
    Ok((mean, den))
}

/// The recurrent layers of `memory` on the input `x` `[batch, D]`, reading [`H_IN`] (and
/// [`C_IN`]): the last layer's output `[batch, H]`, the signature, and the values of the
/// next states `[L, batch, H]` (`h`, then `c` for an LSTM).
fn memory_graph<B: Backend>(
    g: &mut GraphBuilder,
    memory: &Memory<B>,
    x: &str,
) -> Result<(String, MemorySignature, Vec<String>)> {
    let sig = MemorySignature {
        rnn_type: memory.rnn_type(),
        num_layers: memory.num_layers(),
        hidden_dim: memory.hidden_dim(),
    };
    let hd = sig.hidden_dim;
    let dims = [Dim::Fixed(sig.num_layers), BATCH, Dim::Fixed(hd)];
    let h_in = g.input(H_IN, DataType::Float, &dims);
    let c_in = match sig.rnn_type {
        RnnType::Lstm => Some(g.input(C_IN, DataType::Float, &dims)),
        RnnType::Gru => None,
    };
    let gates = sig.rnn_type.gates();
    let split = g.ints("gate_sizes", &[gates], &vec![hd as i64; gates]);
    let zero_axis = g.ints("axis_0", &[1], &[0]);
    let mut x = x.to_string();
    let (mut hs, mut cs) = (Vec::new(), Vec::new());
    for (k, layer) in memory.layers().iter().enumerate() {
        let index = g.ints(&format!("layer_{k}"), &[], &[k as i64]);
        let gather = |g: &mut GraphBuilder, state: &str, hint: &str| {
            g.node("Gather", &[state, &index], &[("axis", Attr::Int(0))], hint)
        };
        let h = gather(g, &h_in, "h"); // [batch, H]
        let xp = linear(g, &layer.input, &x, &format!("memory.{k}.input"))?; // [batch, G*H]
        let hp = linear(g, &layer.hidden, &h, &format!("memory.{k}.hidden"))?; // [batch, G*H]
        let split_gates = |g: &mut GraphBuilder, v: &str, hint: &str| {
            g.node_n(
                "Split",
                &[v, &split],
                &[("axis", Attr::Int(1))],
                hint,
                gates,
            )
        };
        let (h_next, c_next) = match &c_in {
            Some(c_in) => {
                // PyTorch's gate order: i, f, g, o.
                let c = gather(g, c_in, "c");
                let sum = g.node("Add", &[&xp, &hp], &[], "gates");
                let parts = split_gates(g, &sum, "gate");
                let i = g.node("Sigmoid", &[&parts[0]], &[], "input_gate");
                let f = g.node("Sigmoid", &[&parts[1]], &[], "forget_gate");
                let cell = g.node("Tanh", &[&parts[2]], &[], "cell_gate");
                let o = g.node("Sigmoid", &[&parts[3]], &[], "output_gate");
                let fc = g.node("Mul", &[&f, &c], &[], "kept");
                let ig = g.node("Mul", &[&i, &cell], &[], "written");
                let c = g.node("Add", &[&fc, &ig], &[], "c_next");
                let tc = g.node("Tanh", &[&c], &[], "tanh_c");
                let h = g.node("Mul", &[&o, &tc], &[], "h_next");
                (h, Some(c))
            }
            None => {
                // PyTorch's gate order: r, z, n; n = tanh(x_n + r * (h W_hn + b_hn)).
                let xs = split_gates(g, &xp, "x_gate");
                let hs = split_gates(g, &hp, "h_gate");
                let r = g.node("Add", &[&xs[0], &hs[0]], &[], "r_sum");
                let r = g.node("Sigmoid", &[&r], &[], "reset_gate");
                let z = g.node("Add", &[&xs[1], &hs[1]], &[], "z_sum");
                let z = g.node("Sigmoid", &[&z], &[], "update_gate");
                let rn = g.node("Mul", &[&r, &hs[2]], &[], "reset_hidden");
                let n = g.node("Add", &[&xs[2], &rn], &[], "n_sum");
                let n = g.node("Tanh", &[&n], &[], "new_gate");
                // h' = n + z * (h - n), as PyTorch's kernel computes (1 - z) n + z h.
                let d = g.node("Sub", &[&h, &n], &[], "h_minus_n");
                let zd = g.node("Mul", &[&z, &d], &[], "z_times");
                let h = g.node("Add", &[&n, &zd], &[], "h_next");
                (h, None)
            }
        };
        x = h_next.clone();
        hs.push(g.node("Unsqueeze", &[&h_next, &zero_axis], &[], "h_layer"));
        if let Some(c) = c_next {
            cs.push(g.node("Unsqueeze", &[&c, &zero_axis], &[], "c_layer"));
        }
    }
    let mut states = Vec::new();
    for (parts, name) in [(hs, "h_all"), (cs, "c_all")] {
        if !parts.is_empty() {
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            states.push(g.node("Concat", &parts, &[("axis", Attr::Int(0))], name)); // [L, batch, H]
        }
    }
    Ok((x, sig, states))
}

/// `x W + b` as one `Gemm` node, the weights `name.weight` `[d_in, d_out]` and `name.bias`.
fn linear<B: Backend>(
    g: &mut GraphBuilder,
    layer: &burn::nn::Linear<B>,
    x: &str,
    name: &str,
) -> Result<String> {
    let [d_in, d_out] = layer.weight.val().dims();
    let w = host(layer.weight.val(), "a recurrent weight")?;
    let w = g.floats(&format!("{name}.weight"), &[d_in, d_out], &w);
    let mut ins = vec![x.to_string(), w];
    if let Some(b) = &layer.bias {
        let b = host(b.val(), "a recurrent bias")?;
        ins.push(g.floats(&format!("{name}.bias"), &[d_out], &b));
    }
    let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
    Ok(g.node("Gemm", &ins, &[], "linear"))
}

/// `activation(x)` as ONNX nodes (opset 18 has no GELU: it is written with `Erf`).
fn activation(g: &mut GraphBuilder, activation: Activation, x: &str) -> String {
    match activation {
        Activation::Elu => g.node("Elu", &[x], &[("alpha", Attr::Float(1.0))], "elu"),
        Activation::Relu => g.node("Relu", &[x], &[], "relu"),
        Activation::Selu => g.node(
            "Selu",
            &[x],
            &[
                ("alpha", Attr::Float(1.673_263_2)),
                ("gamma", Attr::Float(1.050_701)),
            ],
            "selu",
        ),
        Activation::Tanh => g.node("Tanh", &[x], &[], "tanh"),
        Activation::Sigmoid => g.node("Sigmoid", &[x], &[], "sigmoid"),
        Activation::LeakyRelu => g.node(
            "LeakyRelu",
            &[x],
            &[("alpha", Attr::Float(0.01))],
            "leaky_relu",
        ),
        Activation::Gelu => {
            // x * 0.5 * (1 + erf(x / sqrt(2)))
            let root2 = g.floats(&format!("gelu_sqrt2_{x}"), &[], &[std::f32::consts::SQRT_2]);
            let half = g.floats(&format!("gelu_half_{x}"), &[], &[0.5]);
            let one = g.floats(&format!("gelu_one_{x}"), &[], &[1.0]);
            let s = g.node("Div", &[x, &root2], &[], "gelu_scaled");
            let e = g.node("Erf", &[&s], &[], "gelu_erf");
            let e = g.node("Add", &[&e, &one], &[], "gelu_cdf2");
            let xh = g.node("Mul", &[x, &half], &[], "gelu_half_x");
            g.node("Mul", &[&xh, &e], &[], "gelu")
        }
        Activation::Silu => {
            let s = g.node("Sigmoid", &[x], &[], "silu_sigmoid");
            g.node("Mul", &[x, &s], &[], "silu")
        }
        Activation::Identity => x.to_string(),
    }
}

/// The values of `t` on the host.
fn host<B: Backend, const D: usize>(t: Tensor<B, D>, what: &str) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| Error::Policy(format!("cannot read {what} back from the device: {e:?}")))
}
