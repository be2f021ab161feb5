//! The same seed on the same backend gives the same run, while other tests of this binary
//! train on parallel threads (every random number of a run, initial weights included, comes
//! from host streams of its seed).
//!
//! Note: two runs in one process can differ in the last bits. ndarray's SIMD reductions
//! depend on the alignment of their buffers, which differs between the first and the second
//! run of a process (two separate `cargo xtask train` processes were bit-identical).
//! Bit-exact reproduction is the subject of the checkpoint/resume work; here the runs must
//! agree to 1e-4, which an unseeded or differently seeded run does not come near.

use std::path::Path;

use burn::backend::{Autodiff, NdArray};
use rl_runner::{ConsoleMode, TrainRequest, train};

use crate::common::close;

type B = Autodiff<NdArray>;

fn run(dir: &Path, name: &str, seed: u64) -> Vec<serde_json::Value> {
    let config = dir.join("cfg.toml");
    std::fs::write(
        &config,
        format!(
            "[env]\ntask = \"pendulum\"\nnum_envs = 8\n[algorithm]\nclass = \"ppo\"\nnum_mini_batches = 2\n\
             [policy]\nactor_hidden_dims = [16]\ncritic_hidden_dims = [16]\n[runner]\nnum_steps_per_env = 8\n\
             max_iterations = 3\n[logger]\nlog_dir = \"{}\"\nexperiment_name = \"det\"\n",
            dir.join("logs").display()
        ),
    )
    .expect("config");
    let request = TrainRequest {
        config: Some(config),
        run_name: Some(name.into()),
        seed: Some(seed),
        console: Some(ConsoleMode::Off),
        ..Default::default()
    };
    let summary = train::<B>(&request, &Default::default(), |_| {}).expect("train");
    std::fs::read_to_string(summary.run_dir.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("json");
            // Timings differ between runs; everything learned must not.
            let row = v.as_object_mut().expect("object");
            row.retain(|k, _| !k.starts_with("Perf/") && k != "wall_s");
            v
        })
        .collect()
}

#[test]
fn same_seed_same_run_other_seed_other_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = run(tmp.path(), "a", 7);
    let b = run(tmp.path(), "b", 7);
    let c = run(tmp.path(), "c", 8);
    assert_eq!(a.len(), 3);
    assert!(
        close(&a, &b),
        "same seed, same backend: the same run\n{a:?}\n{b:?}"
    );
    assert!(!close(&a, &c), "another seed must give another run");
}
