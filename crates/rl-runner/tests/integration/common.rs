//! Helpers shared by the integration tests.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use rl_core::Algorithm;
use rl_ppo::Ppo;
use rl_runner::{AlgorithmConfig, Checkpoint, TrainConfig};

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

/// The weights stored in a checkpoint, loaded into a fresh PPO.
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
    let mut ppo = Ppo::<B>::new(
        ppo_cfg.clone(),
        cfg.policy.clone(),
        env.spec(),
        cfg.runner.num_steps_per_env,
        99,
        &device,
    )
    .expect("ppo");
    ppo.load_state(&ckpt.state.algorithm).expect("load");
    parameters(ppo.model())
}
