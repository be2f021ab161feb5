//! Recurrent layers: rsl_rl's `Memory`, a stack of LSTM or GRU layers with PyTorch's equations.
//!
//! Burn's own `Lstm` and `Gru` are not used: their weights are drawn on the device (so one seed
//! would give different networks on different backends) and Burn's `Gru` does not return its
//! last state. The cells here follow `torch.nn.LSTM` and `torch.nn.GRU` exactly, gate layout
//! included, and are checked against PyTorch's outputs (`testdata/rnn_reference.json`, made by
//! `tools/torch/rnn_reference.py`).
//!
//! With `(.)` = `x W_ih + b_ih + h W_hh + b_hh`, chunked by gate:
//!
//! - LSTM, gates `i, f, g, o`: `i = σ(.)`, `f = σ(.)`, `g = tanh(.)`, `o = σ(.)`;
//!   `c' = f * c + i * g`, `h' = o * tanh(c')`.
//! - GRU, gates `r, z, n`: `r = σ(.)`, `z = σ(.)`,
//!   `n = tanh(x W_in + b_in + r * (h W_hn + b_hn))`, `h' = (1 - z) * n + z * h`.
//!
//! Layer `k > 0` reads layer `k - 1`'s `h`. The state of all layers is one tensor `[L, N, S]`
//! (`S = H` for a GRU; `S = 2H` for an LSTM, `h` then `c` on the last axis), so that a rollout
//! stores it, and resets it with [`reset_state`], like any other tensor.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Bool, Tensor, TensorData, backend::Backend};
use rl_core::HostRng;

/// The kind of recurrent layer: `lstm` or `gru` in a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RnnType {
    /// Long short-term memory: four gates, a hidden state `h` and a cell state `c`.
    #[default]
    Lstm,
    /// Gated recurrent unit: three gates and a hidden state `h` only.
    Gru,
}

impl RnnType {
    /// Number of gates `G`: the projections are `G * H` wide (4 for an LSTM, 3 for a GRU).
    pub fn gates(self) -> usize {
        match self {
            RnnType::Lstm => 4,
            RnnType::Gru => 3,
        }
    }

    /// Size of one layer's state in units of `H`: 2 for an LSTM (`h` and `c`), 1 for a GRU.
    pub fn state_factor(self) -> usize {
        match self {
            RnnType::Lstm => 2,
            RnnType::Gru => 1,
        }
    }
}

impl std::fmt::Display for RnnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RnnType::Lstm => "lstm",
            RnnType::Gru => "gru",
        })
    }
}

/// Configuration of a [`Memory`]: `num_layers` layers of `hidden_dim` units reading
/// `input_dim` features.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Size of the input features `D`.
    pub input_dim: usize,
    /// Size of each layer's hidden state `H` (and of the output).
    pub hidden_dim: usize,
    /// Number of stacked layers `L` (at least 1).
    pub num_layers: usize,
    /// LSTM or GRU.
    pub rnn_type: RnnType,
}

impl MemoryConfig {
    /// A configuration of `num_layers` layers of type `rnn_type`.
    pub fn new(input_dim: usize, hidden_dim: usize, num_layers: usize, rnn_type: RnnType) -> Self {
        Self {
            input_dim,
            hidden_dim,
            num_layers,
            rnn_type,
        }
    }

    /// Builds the layers on `device`, their weights and biases drawn from `rng` on the host.
    ///
    /// PyTorch's initialisation of `nn.LSTM` and `nn.GRU`: every weight and bias is drawn from
    /// `U(-1/sqrt(H), 1/sqrt(H))`. The draws are made layer by layer from the input, in the
    /// order in which the module visits its parameters: the input weight `[D_in, G*H]` in
    /// row-major order, the input bias `[G*H]`, the hidden weight `[H, G*H]`, the hidden bias
    /// `[G*H]` (`D_in = input_dim` for the first layer, `H` after). Each parameter is
    /// uploaded with one write, so the same stream gives bit-identical weights on every
    /// backend.
    ///
    /// # Panics
    /// If `num_layers` or `hidden_dim` is 0 (the configuration is validated before this).
    pub fn init_with_rng<B: Backend>(&self, rng: &mut HostRng, device: &B::Device) -> Memory<B> {
        assert!(
            self.num_layers >= 1 && self.hidden_dim >= 1,
            "a recurrent memory needs at least one layer of at least one unit \
             (num_layers {}, hidden_dim {})",
            self.num_layers,
            self.hidden_dim
        );
        let h = self.hidden_dim;
        let gh = self.rnn_type.gates() * h;
        let bound = 1.0 / (h as f64).sqrt();
        let mut linear = |d_in: usize| {
            let weight = rng.uniform_values(d_in * gh, -bound, bound);
            let bias = rng.uniform_values(gh, -bound, bound);
            Linear {
                // Burn's row layout: [d_input, d_output]
                weight: Param::from_data(TensorData::new(weight, [d_in, gh]), device),
                bias: Some(Param::from_data(TensorData::new(bias, [gh]), device)),
            }
        };
        let layers = (0..self.num_layers)
            .map(|k| {
                let d_in = if k == 0 { self.input_dim } else { h };
                let input = linear(d_in);
                let hidden = linear(h);
                RnnLayer { input, hidden }
            })
            .collect();
        Memory {
            layers,
            rnn_type: self.rnn_type,
            hidden_dim: h,
        }
    }
}

/// One layer's weights in PyTorch's layout (`weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`,
/// `bias_hh_l{k}` of `nn.LSTM` / `nn.GRU`), row-major: for loading PyTorch weights and for the
/// reference test.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct TorchRnnLayer {
    /// `[G*H, D_in]`.
    pub weight_ih: Vec<f32>,
    /// `[G*H, H]`.
    pub weight_hh: Vec<f32>,
    /// `[G*H]`.
    pub bias_ih: Vec<f32>,
    /// `[G*H]`.
    pub bias_hh: Vec<f32>,
}

/// A stack of `num_layers` LSTM or GRU layers (rsl_rl's `Memory`).
///
/// The state of all layers is one tensor `[L, N, S]`: `S = H` for a GRU (`h`), `S = 2H` for
/// an LSTM (`h` then `c`, concatenated on the last axis). Create it with
/// [`MemoryConfig::init_with_rng`].
#[derive(Module, Debug)]
pub struct Memory<B: Backend> {
    /// The layers, input first.
    layers: Vec<RnnLayer<B>>,
    /// LSTM or GRU (not a parameter, not saved in records).
    #[module(skip)]
    rnn_type: RnnType,
    /// `H`, the size of each layer's hidden state.
    #[module(skip)]
    hidden_dim: usize,
}

/// One recurrent layer: the input and hidden projections of all gates, in PyTorch's gate order
/// (`i, f, g, o` for an LSTM, `r, z, n` for a GRU).
#[derive(Module, Debug)]
pub struct RnnLayer<B: Backend> {
    /// `x W_ih + b_ih`: weight `[D_in, G*H]`, bias `[G*H]`.
    pub input: Linear<B>,
    /// `h W_hh + b_hh`: weight `[H, G*H]`, bias `[G*H]`.
    pub hidden: Linear<B>,
}

impl<B: Backend> RnnLayer<B> {
    /// One time step of the cell from the input projection `xp = x W_ih + b_ih` `[N, G*H]` and
    /// the layer's state (`c` for an LSTM only): the new `(h, c)`, each `[N, H]`.
    fn cell(
        &self,
        rnn_type: RnnType,
        xp: Tensor<B, 2>,
        h: Tensor<B, 2>,
        c: Option<Tensor<B, 2>>,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let hd = h.dims()[1];
        match (rnn_type, c) {
            (RnnType::Lstm, Some(c)) => {
                let gates = xp + self.hidden.forward(h); // [N, 4H]: i, f, g, o
                // One sigmoid over all four gates (g's is unused): fewer launches than three.
                let s = sigmoid(gates.clone());
                let i = s.clone().narrow(1, 0, hd);
                let f = s.clone().narrow(1, hd, hd);
                let o = s.narrow(1, 3 * hd, hd);
                let g = gates.narrow(1, 2 * hd, hd).tanh();
                let c = f * c + i * g; // [N, H]
                let h = o * c.clone().tanh(); // [N, H]
                (h, Some(c))
            }
            (RnnType::Gru, None) => {
                let gh = self.hidden.forward(h.clone()); // [N, 3H]: r, z, n
                let rz = sigmoid(xp.clone().narrow(1, 0, 2 * hd) + gh.clone().narrow(1, 0, 2 * hd));
                let r = rz.clone().narrow(1, 0, hd);
                let z = rz.narrow(1, hd, hd);
                let n = (xp.narrow(1, 2 * hd, hd) + r * gh.narrow(1, 2 * hd, hd)).tanh();
                // Note: (1 - z) * n + z * h written as PyTorch's kernel computes it.
                let h = n.clone() + z * (h - n); // [N, H]
                (h, None)
            }
            (rnn_type, c) => unreachable!("{rnn_type} layer with cell state {}", c.is_some()),
        }
    }
}

impl<B: Backend> Memory<B> {
    /// Builds the layers from PyTorch's weights (see [`TorchRnnLayer`]), one entry per layer.
    ///
    /// # Panics
    /// If `layers` is empty or a weight has the wrong number of values.
    #[doc(hidden)]
    pub fn from_torch(
        rnn_type: RnnType,
        input_dim: usize,
        hidden_dim: usize,
        layers: &[TorchRnnLayer],
        device: &B::Device,
    ) -> Self {
        assert!(!layers.is_empty(), "a recurrent memory needs a layer");
        let gh = rnn_type.gates() * hidden_dim;
        // PyTorch's [G*H, d_in] is the transpose of Burn's [d_in, G*H].
        let linear = |weight: &[f32], bias: &[f32], d_in: usize| Linear {
            weight: Param::from_data(
                Tensor::<B, 2>::from_data(TensorData::new(weight.to_vec(), [gh, d_in]), device)
                    .transpose()
                    .into_data(),
                device,
            ),
            bias: Some(Param::from_data(
                TensorData::new(bias.to_vec(), [gh]),
                device,
            )),
        };
        let layers = layers
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let d_in = if k == 0 { input_dim } else { hidden_dim };
                RnnLayer {
                    input: linear(&l.weight_ih, &l.bias_ih, d_in),
                    hidden: linear(&l.weight_hh, &l.bias_hh, hidden_dim),
                }
            })
            .collect();
        Self {
            layers,
            rnn_type,
            hidden_dim,
        }
    }

    /// LSTM or GRU.
    pub fn rnn_type(&self) -> RnnType {
        self.rnn_type
    }

    /// `H`, the size of each layer's hidden state and of the output.
    pub fn hidden_dim(&self) -> usize {
        self.hidden_dim
    }

    /// `L`, the number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// `D`, the size of the input features.
    pub fn input_dim(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.input.weight.lazy_shape().first().copied())
            .unwrap_or(0)
    }

    /// `S`, the size of one layer's state: `H` for a GRU, `2H` for an LSTM.
    pub fn state_dim(&self) -> usize {
        self.rnn_type.state_factor() * self.hidden_dim
    }

    /// The layers, input first.
    pub fn layers(&self) -> &[RnnLayer<B>] {
        &self.layers
    }

    /// The zero state of `n` environments, `[L, N, S]`.
    pub fn zero_state(&self, n: usize, device: &B::Device) -> Tensor<B, 3> {
        Tensor::zeros([self.num_layers(), n, self.state_dim()], device)
    }

    /// Splits a layer's state `[N, S]` into `h` and (for an LSTM) `c`, each `[N, H]`.
    fn split_state(&self, s: Tensor<B, 2>) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let hd = self.hidden_dim;
        match self.rnn_type {
            RnnType::Lstm => (s.clone().narrow(1, 0, hd), Some(s.narrow(1, hd, hd))),
            RnnType::Gru => (s, None),
        }
    }

    /// Joins `h` and (for an LSTM) `c` into a layer's state `[N, S]`.
    fn join_state(h: Tensor<B, 2>, c: Option<Tensor<B, 2>>) -> Tensor<B, 2> {
        match c {
            Some(c) => Tensor::cat(vec![h, c], 1),
            None => h,
        }
    }

    /// The state of layer `k`, `[N, S]`, from the state of all layers `[L, N, S]`.
    fn layer_state(state: &Tensor<B, 3>, k: usize) -> Tensor<B, 2> {
        let [_, n, s] = state.dims();
        state.clone().narrow(0, k, 1).reshape([n, s])
    }

    /// One time step: `x` `[N, D]` and `state` `[L, N, S]` give the output of the last layer
    /// `[N, H]` and the new state `[L, N, S]`.
    pub fn step(&self, x: Tensor<B, 2>, state: Tensor<B, 3>) -> (Tensor<B, 2>, Tensor<B, 3>) {
        let mut x = x; // [N, D]
        let mut next = Vec::with_capacity(self.layers.len());
        for (k, layer) in self.layers.iter().enumerate() {
            let (h, c) = self.split_state(Self::layer_state(&state, k));
            let (h, c) = layer.cell(self.rnn_type, layer.input.forward(x), h, c);
            x = h.clone(); // [N, H]
            next.push(Self::join_state(h, c));
        }
        (x, Tensor::stack(next, 0)) // [N, H], [L, N, S]
    }

    /// `T` time steps from `state`: `x` `[T, N, D]` gives the outputs of the last layer
    /// `[T, N, H]` and the final state `[L, N, S]`; the same as `T` calls of [`Memory::step`].
    ///
    /// Each step's input is projected on its own (`[N, D] x [D, G*H]`): slicing one
    /// projection of all `T` steps instead would make every step's gradient a zero-padded
    /// tensor of the whole sequence in the backward pass, `T^2` work. The steps of `x`
    /// itself are sliced, which costs nothing backwards when `x` carries no gradient (the
    /// observations of an update).
    pub fn sequence(&self, x: Tensor<B, 3>, state: Tensor<B, 3>) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let [t_len, n, d] = x.dims();
        // The input of every step, [N, D] each
        let mut inputs: Vec<Tensor<B, 2>> = (0..t_len)
            .map(|t| x.clone().narrow(0, t, 1).reshape([n, d]))
            .collect();
        let mut last = Vec::with_capacity(self.layers.len());
        for (k, layer) in self.layers.iter().enumerate() {
            let (mut h, mut c) = self.split_state(Self::layer_state(&state, k));
            let mut outputs = Vec::with_capacity(t_len);
            for x_t in inputs {
                let xp_t = layer.input.forward(x_t); // [N, G*H]
                (h, c) = layer.cell(self.rnn_type, xp_t, h, c);
                outputs.push(h.clone()); // [N, H]
            }
            inputs = outputs;
            last.push(Self::join_state(h, c));
        }
        let out = if inputs.is_empty() {
            Tensor::zeros([0, n, self.hidden_dim], &x.device())
        } else {
            Tensor::stack(inputs, 0) // [T, N, H]
        };
        (out, Tensor::stack(last, 0)) // [T, N, H], [L, N, S]
    }

    /// Matrix FLOPs of one sample's forward pass per time step: `2 * G*H * (D_in + H)` per
    /// layer (the input and the hidden projection).
    pub fn forward_flop(&self) -> f64 {
        let gh = (self.rnn_type.gates() * self.hidden_dim) as f64;
        self.layers
            .iter()
            .map(|l| {
                let d_in = l.input.weight.lazy_shape()[0] as f64;
                2.0 * gh * (d_in + self.hidden_dim as f64)
            })
            .sum()
    }

    /// Matrix FLOPs of one sample's forward and backward pass per time step: three times the
    /// forward (the product, the weight gradient and the input gradient).
    pub fn train_flop(&self) -> f64 {
        3.0 * self.forward_flop()
    }
}

/// The state `[L, N, S]` with the environments where `dones` `[N]` is true set to zero (their
/// episode ended, the next one starts from a zero state), in every layer.
pub fn reset_state<B: Backend>(state: Tensor<B, 3>, dones: Tensor<B, 1, Bool>) -> Tensor<B, 3> {
    let [l, n, s] = state.dims();
    let mask = dones.reshape([1, n, 1]).expand([l, n, s]); // [L, N, S]
    state.mask_fill(mask, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::module::ModuleVisitor;
    use burn::tensor::Distribution;

    type B = NdArray;

    /// One case of `testdata/rnn_reference.json` (all tensors row-major, flat).
    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        rnn_type: RnnType,
        input_dim: usize,
        hidden_dim: usize,
        num_layers: usize,
        seq_len: usize,
        batch: usize,
        layers: Vec<TorchLayer>,
        /// `[T, N, D]`.
        input: Vec<f32>,
        /// `[L, N, H]`.
        h0: Vec<f32>,
        /// `[L, N, H]`, LSTM only.
        c0: Option<Vec<f32>>,
        /// `[T, N, H]`.
        output: Vec<f32>,
        /// `[L, N, H]`.
        h_n: Vec<f32>,
        /// `[L, N, H]`, LSTM only.
        c_n: Option<Vec<f32>>,
    }

    #[derive(serde::Deserialize)]
    struct TorchLayer {
        weight_ih: Vec<f32>,
        weight_hh: Vec<f32>,
        bias_ih: Vec<f32>,
        bias_hh: Vec<f32>,
    }

    #[derive(serde::Deserialize)]
    struct Reference {
        torch_version: String,
        cases: Vec<Case>,
    }

    fn reference() -> Reference {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/rnn_reference.json");
        let text = std::fs::read_to_string(path).expect("testdata/rnn_reference.json");
        serde_json::from_str(&text).expect("valid reference fixture")
    }

    fn tensor3(values: &[f32], shape: [usize; 3]) -> Tensor<B, 3> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &Default::default())
    }

    fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
        t.into_data().to_vec().expect("f32")
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
    }

    fn memory_of(case: &Case) -> Memory<B> {
        let layers: Vec<TorchRnnLayer> = case
            .layers
            .iter()
            .map(|l| TorchRnnLayer {
                weight_ih: l.weight_ih.clone(),
                weight_hh: l.weight_hh.clone(),
                bias_ih: l.bias_ih.clone(),
                bias_hh: l.bias_hh.clone(),
            })
            .collect();
        Memory::from_torch(
            case.rnn_type,
            case.input_dim,
            case.hidden_dim,
            &layers,
            &Default::default(),
        )
    }

    /// The initial state `[L, N, S]` of a case: `h0` then `c0` on the last axis.
    fn initial_state(case: &Case) -> Tensor<B, 3> {
        let shape = [case.num_layers, case.batch, case.hidden_dim];
        let h0 = tensor3(&case.h0, shape);
        match &case.c0 {
            Some(c0) => Tensor::cat(vec![h0, tensor3(c0, shape)], 2),
            None => h0,
        }
    }

    #[test]
    fn sequence_matches_pytorch_lstm_and_gru() {
        let reference = reference();
        assert!(!reference.torch_version.is_empty());
        assert_eq!(reference.cases.len(), 4);
        for case in &reference.cases {
            let memory = memory_of(case);
            assert_eq!(memory.num_layers(), case.num_layers);
            assert_eq!(memory.input_dim(), case.input_dim);
            let x = tensor3(&case.input, [case.seq_len, case.batch, case.input_dim]);
            let (out, state) = memory.sequence(x, initial_state(case));
            assert_eq!(out.dims(), [case.seq_len, case.batch, case.hidden_dim]);
            assert_eq!(
                state.dims(),
                [case.num_layers, case.batch, memory.state_dim()]
            );
            let h = case.hidden_dim;
            let out_err = max_diff(&values(out), &case.output);
            let h_err = max_diff(&values(state.clone().narrow(2, 0, h)), &case.h_n);
            let c_err = match &case.c_n {
                Some(c_n) => max_diff(&values(state.narrow(2, h, h)), c_n),
                None => 0.0,
            };
            println!(
                "{} (torch {}): output {out_err:e}, h {h_err:e}, c {c_err:e}",
                case.name, reference.torch_version
            );
            for (what, err) in [("output", out_err), ("h_n", h_err), ("c_n", c_err)] {
                assert!(
                    err < 1e-5,
                    "{}: {what} differs from PyTorch by {err}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn sequence_equals_repeated_steps() {
        for case in &reference().cases {
            let memory = memory_of(case);
            let x = tensor3(&case.input, [case.seq_len, case.batch, case.input_dim]);
            let (out, last) = memory.sequence(x.clone(), initial_state(case));
            let mut state = initial_state(case);
            let mut outs = Vec::new();
            for t in 0..case.seq_len {
                let x_t = x
                    .clone()
                    .narrow(0, t, 1)
                    .reshape([case.batch, case.input_dim]);
                let (o, s) = memory.step(x_t, state);
                assert_eq!(o.dims(), [case.batch, case.hidden_dim]);
                outs.push(o);
                state = s;
            }
            let stepped = Tensor::stack::<3>(outs, 0);
            let out_err = max_diff(&values(out), &values(stepped));
            let state_err = max_diff(&values(last), &values(state));
            println!(
                "{}: step against sequence: outputs {out_err:e}, state {state_err:e}",
                case.name
            );
            assert!(
                out_err <= 1e-6,
                "{}: outputs differ by {out_err}",
                case.name
            );
            assert!(
                state_err <= 1e-6,
                "{}: states differ by {state_err}",
                case.name
            );
        }
    }

    #[test]
    fn reset_state_zeroes_exactly_the_done_rows_of_every_layer() {
        let device = Default::default();
        let state = Tensor::<B, 3>::random([3, 5, 4], Distribution::Uniform(0.5, 1.0), &device);
        let dones = Tensor::<B, 1, Bool>::from_data(
            TensorData::from([false, true, false, false, true]),
            &device,
        );
        let reset = values(reset_state(state.clone(), dones));
        let before = values(state);
        for (i, (&r, &b)) in reset.iter().zip(&before).enumerate() {
            let env = (i / 4) % 5;
            let expected = if env == 1 || env == 4 { 0.0 } else { b };
            assert_eq!(r, expected, "value {i} (environment {env})");
        }
    }

    #[test]
    fn zero_state_and_dims() {
        let device = Default::default();
        for (rnn_type, s) in [(RnnType::Lstm, 16), (RnnType::Gru, 8)] {
            let memory = MemoryConfig::new(3, 8, 2, rnn_type)
                .init_with_rng::<B>(&mut HostRng::new(0), &device);
            assert_eq!(memory.state_dim(), s);
            assert_eq!(memory.hidden_dim(), 8);
            assert_eq!(memory.rnn_type(), rnn_type);
            let zero = memory.zero_state(6, &device);
            assert_eq!(zero.dims(), [2, 6, s]);
            assert!(values(zero).iter().all(|&v| v == 0.0));
            let g = rnn_type.gates() as f64 * 8.0;
            let forward = 2.0 * g * (3.0 + 8.0) + 2.0 * g * (8.0 + 8.0);
            assert_eq!(memory.forward_flop(), forward);
            assert_eq!(memory.train_flop(), 3.0 * forward);
        }
        assert_eq!(RnnType::default(), RnnType::Lstm);
        assert_eq!(RnnType::Gru.to_string(), "gru");
        assert_eq!(RnnType::Lstm.to_string(), "lstm");
        let parsed: Vec<RnnType> = serde_json::from_str(r#"["lstm", "gru"]"#).expect("json");
        assert_eq!(parsed, [RnnType::Lstm, RnnType::Gru]);
    }

    /// Collects every float parameter, flattened, in the module's visiting order.
    struct Collect(Vec<Vec<f32>>);

    impl ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.val().into_data().to_vec().expect("f32"));
        }
    }

    #[test]
    fn init_draws_pytorch_bounds_in_visiting_order_from_the_host_stream() {
        let device = Default::default();
        let (d, h, l) = (3usize, 5usize, 2usize);
        for rnn_type in [RnnType::Lstm, RnnType::Gru] {
            let g = rnn_type.gates();
            let config = MemoryConfig::new(d, h, l, rnn_type);
            let memory = config.init_with_rng::<B>(&mut HostRng::new(7), &device);
            for (k, layer) in memory.layers().iter().enumerate() {
                let d_in = if k == 0 { d } else { h };
                assert_eq!(layer.input.weight.val().dims(), [d_in, g * h]);
                assert_eq!(layer.hidden.weight.val().dims(), [h, g * h]);
            }
            let mut visited = Collect(Vec::new());
            memory.visit(&mut visited);
            let params = visited.0;
            assert_eq!(params.len(), 4 * l);
            // The documented order: per layer input weight, input bias, hidden weight, hidden bias.
            let mut rng = HostRng::new(7);
            let bound = 1.0 / (h as f64).sqrt();
            let sizes = [
                d * g * h,
                g * h,
                h * g * h,
                g * h,
                h * g * h,
                g * h,
                h * g * h,
                g * h,
            ];
            for (i, (p, n)) in params.iter().zip(sizes).enumerate() {
                assert_eq!(p, &rng.uniform_values(n, -bound, bound), "parameter {i}");
                let max = p.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(max <= bound as f32, "parameter {i}: |x| {max} > {bound}");
                assert!(
                    max > 0.5 * bound as f32,
                    "parameter {i} does not fill the range"
                );
            }
            let again = config.init_with_rng::<B>(&mut HostRng::new(7), &device);
            let mut visited = Collect(Vec::new());
            again.visit(&mut visited);
            assert_eq!(visited.0, params, "same seed, same weights");
            let other = config.init_with_rng::<B>(&mut HostRng::new(8), &device);
            let mut visited = Collect(Vec::new());
            other.visit(&mut visited);
            assert_ne!(visited.0, params, "another seed, other weights");
        }
    }

    #[test]
    fn every_parameter_receives_a_gradient() {
        type AB = Autodiff<NdArray>;
        let device = Default::default();
        for rnn_type in [RnnType::Lstm, RnnType::Gru] {
            let memory = MemoryConfig::new(3, 4, 2, rnn_type)
                .init_with_rng::<AB>(&mut HostRng::new(1), &device);
            let x = Tensor::<AB, 3>::random([5, 2, 3], Distribution::Normal(0.0, 1.0), &device);
            let state = Tensor::<AB, 3>::random(
                [2, 2, memory.state_dim()],
                Distribution::Normal(0.0, 0.5),
                &device,
            );
            let (out, _) = memory.sequence(x, state);
            let grads = out.powf_scalar(2.0).sum().backward();
            for (k, layer) in memory.layers().iter().enumerate() {
                for (name, linear) in [("input", &layer.input), ("hidden", &layer.hidden)] {
                    let bias = linear.bias.as_ref().expect("bias");
                    for (what, grad) in [
                        (
                            "weight",
                            linear.weight.grad(&grads).map(|g| g.flatten::<1>(0, 1)),
                        ),
                        ("bias", bias.grad(&grads)),
                    ] {
                        let grad = grad.unwrap_or_else(|| {
                            panic!("{rnn_type} layer {k} {name} {what}: no gradient")
                        });
                        let norm = grad.abs().sum().into_scalar();
                        assert!(
                            norm > 0.0 && norm.is_finite(),
                            "{rnn_type} layer {k} {name} {what}: gradient {norm}"
                        );
                    }
                }
            }
        }
    }

    /// The same memory (host-drawn weights) on two backends: the outputs, final states and
    /// input gradients of a sequence from a non-zero state, `[(output, state, gradient)]`.
    #[cfg(feature = "wgpu")]
    fn run_on<AB: burn::tensor::backend::AutodiffBackend>(
        rnn_type: RnnType,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let device = Default::default();
        let memory =
            MemoryConfig::new(3, 6, 2, rnn_type).init_with_rng::<AB>(&mut HostRng::new(4), &device);
        let values = |n: usize, scale: f32| -> Vec<f32> {
            (0..n).map(|i| (i as f32 * 0.77).sin() * scale).collect()
        };
        let x =
            Tensor::<AB, 3>::from_data(TensorData::new(values(5 * 4 * 3, 1.5), [5, 4, 3]), &device)
                .require_grad();
        let s = memory.state_dim();
        let state =
            Tensor::<AB, 3>::from_data(TensorData::new(values(2 * 4 * s, 0.5), [2, 4, s]), &device);
        let (out, last) = memory.sequence(x.clone(), state);
        let grads = out.clone().sum().backward();
        let grad = x.grad(&grads).expect("input gradient");
        (
            out.into_data().to_vec().expect("f32"),
            last.into_data().to_vec().expect("f32"),
            grad.into_data().to_vec().expect("f32"),
        )
    }

    #[cfg(feature = "wgpu")]
    #[test]
    fn the_memory_runs_alike_on_wgpu_and_ndarray() {
        for rnn_type in [RnnType::Lstm, RnnType::Gru] {
            let cpu = run_on::<Autodiff<NdArray>>(rnn_type);
            let gpu = run_on::<Autodiff<burn::backend::Wgpu>>(rnn_type);
            for (what, a, b) in [
                ("output", &cpu.0, &gpu.0),
                ("state", &cpu.1, &gpu.1),
                ("input gradient", &cpu.2, &gpu.2),
            ] {
                assert_eq!(a.len(), b.len());
                let err = a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f32::max);
                assert!(err < 1e-5, "{rnn_type} {what}: {err}");
            }
        }
    }
}
