//! Helpers shared by the integration tests.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use rl_core::Algorithm;
use rl_modules::{ActorCriticModel, MlpModel, ModelClass, RnnModel};
use rl_ppo::Ppo;
use rl_runner::{AlgorithmConfig, Checkpoint, ConsoleMode, TrainConfig, TrainRequest};

/// Every float parameter of a module, flattened in visiting order.
pub fn parameters<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let values = param.val().into_data().convert::<f32>();
            self.0.push(values.to_vec().expect("f32"));
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// The weights stored in a checkpoint, loaded into a fresh PPO (and, for a recurrent model,
/// the hidden state of every environment as the last row).
pub fn checkpoint_weights<B: AutodiffBackend>(path: &Path) -> Vec<Vec<f32>> {
    let ckpt = Checkpoint::read(path).expect("checkpoint");
    let cfg = TrainConfig::parse(&ckpt.header.config, "stored", &[]).expect("config");
    let device = Default::default();
    let env = sim_gpu::make_env::<B::InnerBackend>(
        &cfg.env.task,
        cfg.env.num_envs,
        0,
        &cfg.env.settings,
        sim_gpu::Purpose::Training,
        &device,
    )
    .expect("env");
    let AlgorithmConfig::Ppo(ppo_cfg) = &cfg.algorithm;
    fn load<B: AutodiffBackend, M: ActorCriticModel<B>>(
        cfg: &TrainConfig,
        ppo_cfg: &rl_ppo::PpoConfig,
        spec: &rl_core::EnvSpec,
        state: &[u8],
        device: &B::Device,
    ) -> Vec<Vec<f32>> {
        let mut ppo = Ppo::<B, M>::new(
            ppo_cfg.clone(),
            cfg.policy.clone(),
            spec,
            cfg.runner.num_steps_per_env,
            99,
            device,
        )
        .expect("ppo");
        ppo.load_state(state).expect("load");
        let mut weights = parameters(ppo.model());
        if let Some(memory) = ppo.memory() {
            weights.push(memory.into_data().to_vec().expect("f32"));
        }
        weights
    }
    match cfg.policy.class {
        ModelClass::Mlp => {
            load::<B, MlpModel<B>>(&cfg, ppo_cfg, env.spec(), &ckpt.state.algorithm, &device)
        }
        ModelClass::Rnn => {
            load::<B, RnnModel<B>>(&cfg, ppo_cfg, env.spec(), &ckpt.state.algorithm, &device)
        }
    }
}

/// Every logged number agrees to a relative 1e-4, and the keys are the same.
pub fn close(a: &[serde_json::Value], b: &[serde_json::Value]) -> bool {
    close_within(a, b, 1e-4, 0.0)
}

/// Every logged number agrees to `rel` relative plus `abs` absolute (`|p - q| <= rel *
/// max(|p|, |q|) + abs`), and the keys are the same.
pub fn close_within(a: &[serde_json::Value], b: &[serde_json::Value], rel: f64, abs: f64) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            let (x, y) = (x.as_object().expect("row"), y.as_object().expect("row"));
            x.len() == y.len()
                && x.iter().all(
                    |(k, v)| match (v.as_f64(), y.get(k).and_then(|w| w.as_f64())) {
                        (Some(p), Some(q)) => {
                            (p - q).abs() <= rel * p.abs().max(q.abs()).max(1e-6) + abs
                        }
                        _ => Some(v) == y.get(k),
                    },
                )
        })
}

/// A quiet training request: `config` for `iterations` iterations into `log_dir/.../run`.
pub fn request(config: &Path, log_dir: &Path, run: &str, iterations: usize) -> TrainRequest {
    TrainRequest {
        config: Some(config.to_path_buf()),
        max_iterations: Some(iterations),
        log_dir: Some(log_dir.to_path_buf()),
        run_name: Some(run.to_string()),
        console: Some(ConsoleMode::Off),
        ..Default::default()
    }
}
