//! Multi-layer perceptron: the actor and critic bodies of rsl_rl's `MLP`.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{FloatDType, Tensor, TensorData, backend::Backend};
use rl_core::HostRng;

use crate::{Activation, Precision, linear_act};

/// Configuration of an [`Mlp`]: `input_dim -> hidden_dims... -> output_dim`.
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Size of the input features.
    pub input_dim: usize,
    /// Sizes of the hidden layers, in order; may be empty (a single linear layer).
    pub hidden_dims: Vec<usize>,
    /// Size of the output.
    pub output_dim: usize,
    /// Activation applied after every hidden layer (never after the output layer).
    #[config(default = "Activation::Elu")]
    pub activation: Activation,
    /// Precision of the layers' computations (the parameters stay `f32`).
    #[config(default = "Precision::F32")]
    pub precision: Precision,
}

impl MlpConfig {
    /// Builds the network on `device` with weights drawn from the host stream
    /// `HostRng::new(0)` (see [`MlpConfig::init_with_rng`]): a fixed network for tests and
    /// benchmarks. A model that follows a run's seed passes its own stream.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Mlp<B> {
        self.init_with_rng(&mut HostRng::new(0), device)
    }

    /// Builds the network on `device`, its weights and biases drawn from `rng` on the host.
    ///
    /// Every linear layer uses PyTorch's default initialisation: weights and biases are drawn
    /// from `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, so a network built here starts from the same
    /// distribution as rsl_rl's. The draws are made layer by layer from the input, each
    /// layer's weight `[fan_in, fan_out]` in row-major order and then its bias `[fan_out]`
    /// (the order in which the module visits its parameters), and uploaded with one write
    /// per parameter: the same stream gives bit-identical weights on every backend.
    pub fn init_with_rng<B: Backend>(&self, rng: &mut HostRng, device: &B::Device) -> Mlp<B> {
        let dims: Vec<usize> = core::iter::once(self.input_dim)
            .chain(self.hidden_dims.iter().copied())
            .chain(core::iter::once(self.output_dim))
            .collect();
        let layers = dims
            .windows(2)
            .map(|pair| {
                let (fan_in, fan_out) = (pair[0], pair[1]);
                let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
                let weight = rng.uniform_values(fan_in * fan_out, -bound, bound);
                let bias = rng.uniform_values(fan_out, -bound, bound);
                Linear {
                    // Burn's row layout: [d_input, d_output]
                    weight: Param::from_data(TensorData::new(weight, [fan_in, fan_out]), device),
                    bias: Some(Param::from_data(TensorData::new(bias, [fan_out]), device)),
                }
            })
            .collect();
        Mlp {
            layers,
            activation: self.activation,
            precision: self.precision,
        }
    }
}

/// A multi-layer perceptron: linear layers with an activation after each hidden layer.
///
/// Create it with [`MlpConfig::init_with_rng`] (or [`MlpConfig::init`]).
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// The linear layers, input first; there are `hidden_dims.len() + 1` of them.
    layers: Vec<Linear<B>>,
    /// The activation between layers (not a parameter, not saved in records).
    #[module(skip)]
    activation: Activation,
    /// The precision of the layers' computations (not saved in records).
    #[module(skip)]
    precision: Precision,
}

impl<B: Backend> Mlp<B> {
    /// Runs the network: `[batch, input_dim] -> [batch, output_dim]`, always `f32` in and
    /// out; in a half-precision mode the layers compute in half precision between the casts.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let half = self.precision.half();
        let cast = |t: Tensor<B, 2>| match half {
            Some(dtype) => t.cast(dtype),
            None => t,
        };
        let last = self.layers.len().saturating_sub(1);
        let mut x = cast(x); // [batch, input_dim]
        for (i, layer) in self.layers.iter().enumerate() {
            // One fused operation per layer: matmul, bias and activation
            let activation = if i < last {
                self.activation
            } else {
                Activation::Identity
            };
            let bias = layer.bias.as_ref().map(|b| match half {
                Some(dtype) => b.val().cast(dtype),
                None => b.val(),
            });
            x = linear_act(x, cast(layer.weight.val()), bias, activation); // [batch, layer output]
        }
        match half {
            Some(_) => x.cast(FloatDType::F32),
            None => x,
        } // [batch, output_dim]
    }

    /// Size of the input features.
    pub fn input_dim(&self) -> usize {
        // Linear weights are stored [d_input, d_output].
        self.layers
            .first()
            .and_then(|l| l.weight.lazy_shape().first().copied())
            .unwrap_or(0)
    }

    /// Size of the output.
    pub fn output_dim(&self) -> usize {
        self.layers
            .last()
            .and_then(|l| l.weight.lazy_shape().get(1).copied())
            .unwrap_or(0)
    }

    /// The activation applied after every hidden layer.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The precision of the layers' computations.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The linear layers, input first.
    pub fn layers(&self) -> &[Linear<B>] {
        &self.layers
    }

    /// `(fan_in, fan_out)` of every layer, input first.
    fn layer_dims(&self) -> Vec<(f64, f64)> {
        self.layers
            .iter()
            .map(|l| {
                let [i, o] = l.weight.val().dims();
                (i as f64, o as f64)
            })
            .collect()
    }

    /// Matrix FLOPs of one sample's forward pass: `2 * fan_in * fan_out` per layer.
    pub fn forward_flop(&self) -> f64 {
        self.layer_dims().iter().map(|(i, o)| 2.0 * i * o).sum()
    }

    /// Matrix FLOPs of one sample's forward and backward pass: the forward product, the
    /// weight gradient of every layer, and the input gradient of every layer but the first
    /// (the observations need none).
    pub fn train_flop(&self) -> f64 {
        let first = self.layer_dims().first().map_or(0.0, |(i, o)| 2.0 * i * o);
        3.0 * self.forward_flop() - first
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::{Distribution, TensorData};

    type B = NdArray;

    #[test]
    fn shapes_and_dims() {
        let device = Default::default();
        let mlp = MlpConfig::new(5, vec![16, 8], 3).init::<B>(&device);
        assert_eq!(mlp.input_dim(), 5);
        assert_eq!(mlp.output_dim(), 3);
        assert_eq!(mlp.layers().len(), 3);
        assert_eq!(mlp.activation(), Activation::Elu);
        let x = Tensor::<B, 2>::random([7, 5], Distribution::Default, &device);
        assert_eq!(mlp.forward(x).dims(), [7, 3]);
    }

    #[test]
    fn no_hidden_layers_is_one_linear_layer() {
        let device = Default::default();
        let mlp = MlpConfig::new(4, vec![], 2)
            .with_activation(Activation::Tanh)
            .init::<B>(&device);
        assert_eq!(mlp.layers().len(), 1);
        let x = Tensor::<B, 2>::random([3, 4], Distribution::Default, &device);
        let expected = mlp.layers()[0].forward(x.clone());
        let diff = (mlp.forward(x) - expected).abs().max().into_scalar();
        assert!(diff < 1e-6);
    }

    #[test]
    fn activation_after_hidden_layers_only() {
        let device = Default::default();
        let mlp = MlpConfig::new(3, vec![6], 2)
            .with_activation(Activation::Relu)
            .init::<B>(&device);
        let x = Tensor::<B, 2>::random([4, 3], Distribution::Default, &device);
        let [l0, l1] = [&mlp.layers()[0], &mlp.layers()[1]];
        let expected = l1.forward(Activation::Relu.forward(l0.forward(x.clone())));
        let diff = (mlp.forward(x) - expected).abs().max().into_scalar();
        assert!(diff < 1e-6);
    }

    #[test]
    fn pytorch_default_initialisation_bounds() {
        let device = Default::default();
        let dims = [64usize, 256, 128, 1];
        let config = MlpConfig::new(dims[0], dims[1..3].to_vec(), dims[3]);
        for seed in [0, 1, 2] {
            let mlp = config.init_with_rng::<B>(&mut HostRng::new(seed), &device);
            for (layer, fan_in) in mlp.layers().iter().zip(dims) {
                let bound = 1.0 / (fan_in as f32).sqrt();
                let w = layer.weight.val().into_data().to_vec::<f32>().expect("f32");
                let b = layer
                    .bias
                    .as_ref()
                    .expect("linear layers have a bias")
                    .val()
                    .into_data()
                    .to_vec::<f32>()
                    .expect("f32");
                for (name, values) in [("weight", &w), ("bias", &b)] {
                    let max = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    assert!(
                        max <= bound,
                        "{name} (fan_in {fan_in}): |x| {max} > {bound}"
                    );
                }
                // The weights fill the range (a U(-k, k) sample of this size reaches past
                // 0.9 k on both sides) with the uniform's mean 0 and variance k^2 / 3.
                let wmax = w.iter().fold(f32::MIN, |m, &v| m.max(v));
                let wmin = w.iter().fold(f32::MAX, |m, &v| m.min(v));
                assert!(wmax > 0.9 * bound, "weights only reach {wmax} of {bound}");
                assert!(wmin < -0.9 * bound, "weights only reach {wmin} of -{bound}");
                let n = w.len() as f64;
                let mean = w.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
                let var = w
                    .iter()
                    .map(|&v| (f64::from(v) - mean).powi(2))
                    .sum::<f64>()
                    / n;
                let k2 = f64::from(bound).powi(2);
                // Five standard errors of the mean and of the variance.
                assert!(mean.abs() < 5.0 * (k2 / 3.0 / n).sqrt(), "mean {mean}");
                assert!(
                    (var - k2 / 3.0).abs() < 5.0 * k2 * (4.0 / 45.0 / n).sqrt(),
                    "variance {var}, expected {}",
                    k2 / 3.0
                );
            }
        }
    }

    /// The bits of every weight and bias, layer by layer.
    fn parameter_bits<B2: Backend>(mlp: &Mlp<B2>) -> Vec<Vec<u32>> {
        let bits = |t: Tensor<B2, 1>| -> Vec<u32> {
            let values: Vec<f32> = t.into_data().to_vec().expect("f32");
            values.into_iter().map(f32::to_bits).collect()
        };
        mlp.layers()
            .iter()
            .flat_map(|l| {
                let bias = l.bias.as_ref().expect("bias").val();
                [bits(l.weight.val().flatten(0, 1)), bits(bias)]
            })
            .collect()
    }

    #[test]
    fn a_stream_gives_the_same_network_on_flex_and_ndarray_and_another_stream_another() {
        let config = MlpConfig::new(6, vec![16, 8], 3);
        let ndarray =
            parameter_bits(&config.init_with_rng::<B>(&mut HostRng::new(9), &Default::default()));
        let flex = parameter_bits(
            &config.init_with_rng::<burn::backend::Flex>(&mut HostRng::new(9), &Default::default()),
        );
        assert_eq!(ndarray.len(), 6);
        assert_eq!(ndarray, flex);
        let other =
            parameter_bits(&config.init_with_rng::<B>(&mut HostRng::new(10), &Default::default()));
        assert!(ndarray.iter().zip(&other).all(|(a, b)| a != b));
    }

    #[test]
    fn config_round_trips_through_json_and_defaults_to_elu() {
        let config = MlpConfig::new(2, vec![4], 1).with_activation(Activation::LeakyRelu);
        let json = burn::config::config_to_json(&config);
        assert!(json.contains("\"leaky_relu\""), "{json}");
        let back = MlpConfig::load_binary(json.as_bytes()).expect("valid json");
        assert_eq!(back.activation, Activation::LeakyRelu);
        assert_eq!(back.hidden_dims, vec![4]);
        assert_eq!(MlpConfig::new(1, vec![], 1).activation, Activation::Elu);
    }

    /// Half precision: the same parameters give outputs and gradients within half-precision
    /// error, `f32` at both ends, and `f32` parameter gradients.
    #[test]
    fn half_precision_matches_f32_within_its_rounding() {
        half_precision_check::<Autodiff<burn::backend::Flex>>();
    }

    /// The same on the GPU path, for each half type the device has (lavapipe in CI).
    #[cfg(feature = "wgpu")]
    #[test]
    fn half_precision_on_wgpu_where_the_device_has_it() {
        half_precision_check::<Autodiff<burn::backend::Wgpu>>();
    }

    fn half_precision_check<AB: burn::tensor::backend::AutodiffBackend>() {
        use burn::tensor::ElementConversion;
        let device = Default::default();
        let full = MlpConfig::new(3, vec![16, 16], 2).init::<AB>(&device);
        let x = Tensor::<AB, 2>::random([32, 3], Distribution::Normal(0.0, 1.0), &device);
        let y_full = full.forward(x.clone());
        let g_full = y_full.clone().sum().backward();
        for (precision, tolerance) in [(Precision::Bf16, 0.05), (Precision::F16, 0.01)] {
            let dtype = precision.half().map(burn::tensor::DType::from);
            if let Some(dtype) = dtype
                && !AB::supports_dtype(&device, dtype)
            {
                println!("{precision}: not supported by this device, skipped");
                continue;
            }
            let mut half = full.clone();
            half.precision = precision;
            let y_half = half.forward(x.clone());
            assert_eq!(y_half.dtype(), burn::tensor::DType::F32, "{precision}");
            let scale = y_full
                .clone()
                .abs()
                .max()
                .into_scalar()
                .elem::<f32>()
                .max(1.0);
            let err = (y_half.clone() - y_full.clone())
                .abs()
                .max()
                .into_scalar()
                .elem::<f32>();
            assert!(err <= tolerance * scale, "{precision}: output error {err}");
            assert!(
                err > 0.0,
                "{precision}: no rounding at all, so no half precision"
            );
            let g_half = y_half.sum().backward();
            let ga = full.layers()[0].weight.grad(&g_full).expect("grad");
            let gb = half.layers()[0].weight.grad(&g_half).expect("grad");
            assert_eq!(gb.dtype(), burn::tensor::DType::F32, "{precision}");
            let scale = ga.clone().abs().max().into_scalar().elem::<f32>().max(1.0);
            let err = (ga - gb).abs().max().into_scalar().elem::<f32>();
            assert!(
                err <= 4.0 * tolerance * scale,
                "{precision}: gradient error {err}"
            );
        }
    }

    #[test]
    fn parameters_receive_gradients() {
        type AB = Autodiff<NdArray>;
        let device = Default::default();
        let mlp = MlpConfig::new(3, vec![8, 8], 2).init::<AB>(&device);
        let x = Tensor::<AB, 2>::from_data(
            TensorData::from([[0.5f32, -1.0, 2.0], [1.5, 0.3, -0.7]]),
            &device,
        );
        let loss = mlp.forward(x).powf_scalar(2.0).sum();
        let grads = loss.backward();
        for (i, layer) in mlp.layers().iter().enumerate() {
            let gw = layer.weight.grad(&grads).expect("weight gradient");
            let gb = layer
                .bias
                .as_ref()
                .expect("bias")
                .grad(&grads)
                .expect("bias gradient");
            let gw_norm = gw.abs().sum().into_scalar();
            let gb_norm = gb.abs().sum().into_scalar();
            assert!(
                gw_norm > 0.0 && gw_norm.is_finite(),
                "layer {i} weight grad {gw_norm}"
            );
            assert!(
                gb_norm > 0.0 && gb_norm.is_finite(),
                "layer {i} bias grad {gb_norm}"
            );
        }
    }
}
