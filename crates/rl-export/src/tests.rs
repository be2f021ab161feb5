//! The exported graphs, run by tract, against the Burn policies they came from.

use std::collections::BTreeMap;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Bool, Tensor, TensorData};
use rl_core::{ActionSpace, EnvSpec, HostRng, Observations};
use rl_modules::{
    Activation, ActorCriticModel, MlpModel, ModelClass, ObsGroups, Policy, PolicyConfig, RnnModel,
    RnnType,
};

use crate::{OnnxRuntime, clip_actions, export_onnx, safetensors_weights};

type B = Autodiff<NdArray>;
type I = NdArray;

/// Observations `[n, 5]` and `[n, 3]` whose columns have different means and scales.
fn observations(n: usize, rng: &mut HostRng) -> Observations<I> {
    let dev = Default::default();
    let group = |d: usize, rng: &mut HostRng| {
        let u = rng.uniform_values(n * d, -1.0, 1.0);
        let v: Vec<f32> = u
            .iter()
            .enumerate()
            .map(|(i, x)| (i % d) as f32 * 0.7 - 1.0 + x * (1.0 + (i % d) as f32))
            .collect();
        Tensor::<I, 2>::from_data(TensorData::new(v, [n, d]), &dev)
    };
    let policy = group(5, rng);
    let extra = group(3, rng);
    Observations::new()
        .with("policy", policy)
        .with("extra", extra)
}

fn spec(action_space: ActionSpace) -> EnvSpec {
    EnvSpec {
        task: "test".into(),
        num_envs: 16,
        obs_groups: BTreeMap::from([("policy".to_string(), 5), ("extra".to_string(), 3)]),
        action_space,
        max_episode_length: 10,
        step_dt: 0.02,
    }
}

fn boxed() -> ActionSpace {
    ActionSpace::Box {
        low: vec![-1.0, -0.5, -2.0],
        high: vec![1.0, 0.5, 2.0],
    }
}

fn cfg(activation: Activation) -> PolicyConfig {
    PolicyConfig {
        actor_hidden_dims: vec![32, 16],
        critic_hidden_dims: vec![8],
        activation,
        actor_obs_normalization: true,
        obs_groups: ObsGroups {
            policy: vec!["policy".into(), "extra".into()],
            critic: vec!["policy".into()],
        },
        ..Default::default()
    }
}

fn rnn_cfg(rnn_type: RnnType, layers: usize) -> PolicyConfig {
    PolicyConfig {
        class: ModelClass::Rnn,
        rnn_type: Some(rnn_type),
        rnn_hidden_dim: Some(12),
        rnn_num_layers: Some(layers),
        ..cfg(Activation::Elu)
    }
}

/// The policy of a fresh model of `cfg` whose normaliser has seen a few batches.
fn trained<M: ActorCriticModel<B>>(cfg: &PolicyConfig, spec: &EnvSpec) -> Policy<I> {
    let dev = Default::default();
    let mut model = M::new(cfg, spec, 7, &dev).expect("model");
    let mut rng = HostRng::new(3);
    for _ in 0..3 {
        model
            .act(&observations(spec.num_envs, &mut rng), &mut rng)
            .expect("act");
    }
    model.policy()
}

fn host(t: Tensor<I, 2>) -> Vec<f32> {
    t.into_data().to_vec().expect("f32")
}

fn flat(obs: &Observations<I>) -> Vec<f32> {
    host(
        obs.concat(&["policy".into(), "extra".into()])
            .expect("groups"),
    )
}

/// The largest difference between `a` and `b`, relative to 1 or the values' size.
fn error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
        .fold(0.0, f32::max)
}

/// Runs `policy` and its exported graph on `steps` batches of `n` random observations,
/// resetting the recurrent states of some environments between steps; returns the largest
/// action difference (and checks the states too).
fn compare(policy: &mut Policy<I>, action_space: &ActionSpace, n: usize, steps: usize) -> f32 {
    let onnx = export_onnx(policy, action_space, &[]).expect("export");
    let mut runtime = OnnxRuntime::from_bytes(&onnx.bytes, n, "test graph").expect("tract");
    assert_eq!(runtime.signature(), &onnx.signature);
    let mut rng = HostRng::new(11);
    let mut worst = 0.0f32;
    for step in 0..steps {
        let obs = observations(n, &mut rng);
        let want = clip_actions(host(policy.act(&obs).expect("act")), action_space);
        let got = runtime.act(&flat(&obs)).expect("run");
        worst = worst.max(error(&want, &got));
        if let Some(state) = policy.state() {
            let [l, nn, s] = state.dims();
            let want: Vec<f32> = state.clone().into_data().to_vec().expect("f32");
            // Burn keeps [L, N, h|c]; the graph gives h and c apart, each [L, N, H].
            let h = s / runtime.state().len();
            for (k, got) in runtime.state().iter().enumerate() {
                let want: Vec<f32> = (0..l * nn)
                    .flat_map(|row| want[row * s + k * h..row * s + (k + 1) * h].to_vec())
                    .collect();
                worst = worst.max(error(&want, got));
            }
            // Episodes of every third environment end here.
            let dones: Vec<bool> = (0..n).map(|i| (i + step) % 3 == 0).collect();
            policy.reset(&Tensor::<I, 1, Bool>::from_data(
                TensorData::new(dones.clone(), [n]),
                &Default::default(),
            ));
            runtime.reset(&dones);
        }
    }
    worst
}

#[test]
fn an_exported_mlp_gives_the_policys_actions_in_tract() {
    let space = boxed();
    for &activation in Activation::ALL {
        let mut policy = trained::<MlpModel<B>>(&cfg(activation), &spec(space.clone()));
        let err = compare(&mut policy, &space, 300, 1);
        assert!(err < 1e-5, "{activation}: largest action difference {err}");
    }
}

#[test]
fn the_exported_actions_are_clipped_to_the_tasks_bounds() {
    // Bounds so narrow that most means fall outside them.
    let space = ActionSpace::Box {
        low: vec![-0.01; 3],
        high: vec![0.01; 3],
    };
    let mut policy = trained::<MlpModel<B>>(&cfg(Activation::Elu), &spec(space.clone()));
    let onnx = export_onnx(&policy, &space, &[]).expect("export");
    let mut runtime = OnnxRuntime::from_bytes(&onnx.bytes, 64, "test").expect("tract");
    let obs = observations(64, &mut HostRng::new(5));
    let got = runtime.act(&flat(&obs)).expect("run");
    let mean = host(policy.act(&obs).expect("act"));
    assert!(got.iter().all(|a| a.abs() <= 0.01));
    assert!(
        mean.iter().any(|a| a.abs() > 0.01),
        "the test needs means outside the bounds"
    );
    let clipped: Vec<f32> = mean.iter().map(|a| a.clamp(-0.01, 0.01)).collect();
    assert!(error(&clipped, &got) < 1e-6);
}

#[test]
fn an_exported_discrete_policy_gives_the_most_likely_choice() {
    let space = ActionSpace::Discrete { n: 4 };
    let mut policy = trained::<MlpModel<B>>(&cfg(Activation::Tanh), &spec(space.clone()));
    let onnx = export_onnx(&policy, &space, &[]).expect("export");
    assert_eq!(onnx.signature.choices, Some(4));
    assert_eq!(compare(&mut policy, &space, 256, 1), 0.0);
}

#[test]
fn exported_recurrent_policies_carry_their_state_through_tract() {
    let space = boxed();
    for (rnn_type, layers) in [(RnnType::Lstm, 2), (RnnType::Gru, 1), (RnnType::Gru, 2)] {
        let mut policy = trained::<RnnModel<B>>(&rnn_cfg(rnn_type, layers), &spec(space.clone()));
        let err = compare(&mut policy, &space, 64, 6);
        assert!(
            err < 1e-5,
            "{rnn_type} x {layers}: largest difference {err}"
        );
        let sig = export_onnx(&policy, &space, &[]).expect("export").signature;
        let memory = sig.memory.expect("memory");
        assert_eq!(
            (memory.rnn_type, memory.num_layers, memory.hidden_dim),
            (rnn_type, layers, 12)
        );
    }
}

#[test]
fn a_graph_that_is_not_a_policy_is_refused_by_name() {
    let err = OnnxRuntime::from_bytes(b"not a model at all", 4, "junk.onnx").expect_err("junk");
    assert!(err.to_string().contains("junk.onnx"), "{err}");
    let space = boxed();
    let policy = trained::<MlpModel<B>>(&cfg(Activation::Elu), &spec(space.clone()));
    let onnx = export_onnx(&policy, &space, &[]).expect("export");
    let mut runtime = OnnxRuntime::from_bytes(&onnx.bytes, 4, "p.onnx").expect("tract");
    let err = runtime.act(&[0.0; 5]).expect_err("short");
    assert!(err.to_string().contains("4 x 8"), "{err}");
    let wrong = ActionSpace::Discrete { n: 5 };
    assert!(export_onnx(&policy, &wrong, &[]).is_err());
}

#[test]
fn the_safetensors_hold_every_weight_in_pytorchs_layout() {
    let space = boxed();
    let policy = trained::<RnnModel<B>>(&rnn_cfg(RnnType::Lstm, 1), &spec(space.clone()));
    let bytes = safetensors_weights(&policy, &[("task", "test".into())]).expect("weights");
    let (header_len, rest) = bytes.split_at(8);
    let len = u64::from_le_bytes(header_len.try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&rest[..len]).expect("json header");
    let shape = |name: &str| -> Vec<u64> {
        header[name]["shape"]
            .as_array()
            .unwrap_or_else(|| panic!("no tensor {name} in {header}"))
            .iter()
            .filter_map(serde_json::Value::as_u64)
            .collect()
    };
    // PyTorch's nn.Linear(12, 32).weight is [32, 12]; nn.LSTM(8, 12).weight_ih_l0 [48, 8].
    assert_eq!(shape("actor.layers.0.weight"), vec![32, 12]);
    assert_eq!(shape("actor.layers.2.weight"), vec![3, 16]);
    assert_eq!(shape("memory.layers.0.input.weight"), vec![48, 8]);
    assert_eq!(shape("memory.layers.0.hidden.weight"), vec![48, 12]);
    assert_eq!(shape("obs_normalizer.std"), vec![8]);
    assert_eq!(header["__metadata__"]["task"], "test");
    assert_eq!(header["__metadata__"]["rnn_type"], "lstm");
}
