//! The legged task on the GPU path (the physics as one kernel, the task's terms as tensor
//! operations of the fused wgpu backend) against flex, in CI on Mesa's lavapipe.

use burn::backend::{Flex, Wgpu};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use rl_core::StepOutput;

use crate::{Purpose, make_env};

fn host<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32 data")
}

/// Actions in `[-1, 1)` from a fixed stream, the same on every backend.
fn actions(step: usize, n: usize, a: usize) -> Vec<f32> {
    (0..n * a)
        .map(|i| {
            let x = ((step * 7919 + i * 104_729) % 1000) as f32 / 500.0 - 1.0;
            0.8 * x
        })
        .collect()
}

/// Everything a step reports, by name.
fn flatten<Bk: Backend>(out: StepOutput<Bk>) -> Vec<(String, Vec<f32>)> {
    let mut all = Vec::new();
    for (name, t) in out.observations.iter() {
        all.push((format!("obs/{name}"), host(t.clone())));
    }
    all.push(("rewards".into(), host(out.rewards)));
    all.push(("terminated".into(), host(out.terminated.float())));
    all.push(("time_outs".into(), host(out.time_outs.float())));
    all
}

fn run<Bk: Backend>(steps: usize) -> Vec<Vec<(String, Vec<f32>)>> {
    let device = Default::default();
    let n = 6;
    let mut env = make_env::<Bk>(
        "quadruped_flat",
        n,
        3,
        &toml::Table::new(),
        Purpose::Training,
        &device,
    )
    .expect("quadruped_flat");
    env.reset();
    let a = env.spec().action_space.num_actions();
    (0..steps)
        .map(|step| {
            let act = Tensor::from_data(TensorData::new(actions(step, n, a), [n, a]), &device);
            flatten(env.step(act).expect("step"))
        })
        .collect()
}

#[test]
fn the_quadruped_task_steps_on_wgpu_like_on_flex() {
    let steps = 40;
    let reference = run::<Flex>(steps);
    let gpu = run::<Wgpu>(steps);
    let mut worst = 0.0f64;
    for (step, (a, b)) in reference.iter().zip(&gpu).enumerate() {
        for ((name, x), (_, y)) in a.iter().zip(b) {
            assert_eq!(x.len(), y.len(), "{name}");
            let scale = x.iter().fold(1.0f64, |m, v| m.max(f64::from(v.abs())));
            let diff = x
                .iter()
                .zip(y)
                .fold(0.0f64, |m, (p, q)| m.max(f64::from((p - q).abs())));
            worst = worst.max(diff / scale);
            assert!(
                diff <= 1e-3 * scale,
                "step {step}: {name} differs by {diff:.2e} (scale {scale:.2e})"
            );
        }
    }
    println!(
        "quadruped_flat, {steps} steps, wgpu vs flex: largest relative difference {worst:.2e}"
    );
}
