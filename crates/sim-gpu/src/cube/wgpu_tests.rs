//! The step kernel on wgpu against the tensor path on flex (run on a software Vulkan device
//! in CI: `VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json`).

use burn::backend::{Flex, Wgpu};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use rl_core::{ActionSpace, StepOutput};

use crate::testing::{bools, floats};
use crate::{ClassicEnv, make_classic};

/// Tolerance of the float comparisons, relative to `max(1, |value|)` as in
/// `crate::testing::assert_close` (values near zero come out of cancellations, whose
/// rounding is relative to the terms, not to the result).
const TOLERANCE: f32 = 1e-5;
const NUM_ENVS: usize = 64;
const SEED: u64 = 11;

/// A small deterministic stream of numbers in `[-1, 1)`, the same on every backend.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Random actions `[N]` for `space`: boxes a quarter beyond their bounds (the environment
/// clamps), discrete indices as floats in `[-1, n)` (rounded and clamped).
fn random_actions(space: &ActionSpace, stream: &mut Stream) -> Vec<f32> {
    (0..NUM_ENVS)
        .map(|_| {
            let s = stream.next();
            match space {
                ActionSpace::Box { low, high } => {
                    let (lo, hi) = (low[0], high[0]);
                    (lo + hi) / 2.0 + s * 1.25 * (hi - lo) / 2.0
                }
                ActionSpace::Discrete { n } => (s + 1.0) / 2.0 * (*n as f32 + 1.0) - 1.0,
            }
        })
        .collect()
}

/// What one step gives back, read to the host.
#[derive(Debug)]
struct Record {
    floats: Vec<(&'static str, Vec<f32>)>,
    flags: Vec<(&'static str, Vec<bool>)>,
}

fn record<Bk: Backend>(env: &dyn ClassicEnv<Bk>, out: StepOutput<Bk>) -> Record {
    let obs = |o: &rl_core::Observations<Bk>| floats(o.get("policy").expect("policy group"));
    Record {
        floats: vec![
            ("state", floats(env.state())),
            ("final_state", floats(env.final_state())),
            ("observations", obs(&out.observations)),
            ("final_observations", obs(&out.final_observations)),
            ("rewards", floats(out.rewards.clone())),
            ("episode returns", floats(out.episode.returns.clone())),
            ("episode lengths", floats(out.episode.lengths.clone())),
        ],
        flags: vec![
            ("terminated", bools(out.terminated.clone())),
            ("time_outs", bools(out.time_outs.clone())),
        ],
    }
}

/// Largest `|a - b| / max(1, |a|, |b|)` over two lists.
fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x - y).abs() / x.abs().max(y.abs()).max(1.0))
        .fold(0.0, f32::max)
}

/// Steps `task` on the kernel path (wgpu) and the tensor path (flex) with the same seed and
/// actions for `steps` steps, putting the environments `0..4` (at the start) and `4..8`
/// (after 50 steps) into `upset`, a state that ends the episode on the next step, when
/// given; asserts every output agrees on every step (flags exactly) and that episodes ended
/// (and were reset) in both.
///
/// Note: before each step the tensor path is put into the kernel's state (its episode
/// counters and reset streams run on their own). The two paths round differently in the
/// last bit (GPUs fuse multiply-adds and divide with their own rounding), and the tasks are
/// chaotic: left to run apart, the states differ by 1e-5 after about 50 steps (pendulum) and
/// by whole radians after 300 (acrobot), although each step agrees to 1e-7.
fn compare(task: &str, steps: usize, upset: Option<&[f32]>) {
    assert!(crate::cube::is_cube_backend::<Wgpu>());
    assert!(!crate::cube::is_cube_backend::<Flex>());
    let gpu_device = Default::default();
    let cpu_device = Default::default();
    let mut gpu = make_classic::<Wgpu>(task, NUM_ENVS, SEED, &gpu_device).expect("task");
    let mut cpu = make_classic::<Flex>(task, NUM_ENVS, SEED, &cpu_device).expect("task");
    let space = gpu.spec().action_space.clone();
    let k = gpu.state_names().len();
    let mut stream = Stream(3);
    let (mut terminations, mut time_outs, mut worst_diff) = (0, 0, 0.0f32);
    for step in 0..steps {
        if let Some(state) = upset {
            let ids: &[usize] = match step {
                0 => &[0, 1, 2, 3],
                50 => &[4, 5, 6, 7],
                _ => &[],
            };
            if !ids.is_empty() {
                let rows = state.repeat(ids.len());
                let data = || TensorData::new(rows.clone(), [ids.len(), k]);
                gpu.set_state(Some(ids), Tensor::from_data(data(), &gpu_device))
                    .expect("state shape");
                cpu.set_state(Some(ids), Tensor::from_data(data(), &cpu_device))
                    .expect("state shape");
            }
        }
        // Both paths start the step from the kernel's state (see `compare`).
        let state = TensorData::new(floats(gpu.state()), [NUM_ENVS, k]);
        cpu.set_state(None, Tensor::from_data(state, &cpu_device))
            .expect("state shape");
        let actions = random_actions(&space, &mut stream);
        let data = || TensorData::new(actions.clone(), [NUM_ENVS, 1]);
        let out = gpu
            .step(Tensor::from_data(data(), &gpu_device))
            .expect("action shape");
        let got = record(gpu.as_ref(), out);
        let out = cpu
            .step(Tensor::from_data(data(), &cpu_device))
            .expect("action shape");
        let want = record(cpu.as_ref(), out);
        for ((name, g), (_, w)) in got.flags.iter().zip(&want.flags) {
            assert_eq!(g, w, "{task}, step {step}: {name}");
        }
        for ((name, g), (_, w)) in got.floats.iter().zip(&want.floats) {
            let diff = worst(g, w);
            assert!(
                diff <= TOLERANCE,
                "{task}, step {step}: {name} differ by {diff:e}\nkernel {g:?}\ntensor {w:?}"
            );
            worst_diff = worst_diff.max(diff);
        }
        let count = |f: &[bool]| f.iter().filter(|&&d| d).count();
        terminations += count(&want.flags[0].1);
        time_outs += count(&want.flags[1].1);
    }
    // Both paths drew the same reset noise and hold the same counters.
    let (g, w) = (
        gpu.save_state().expect("reads back"),
        cpu.save_state().expect("reads back"),
    );
    assert_eq!(g.rngs, w.rngs, "{task}: reset streams");
    for (name, t) in &w.tensors {
        let diff = worst(&g.tensors[name].data, &t.data);
        assert!(diff <= TOLERANCE, "{task}: {name} differ by {diff:e}");
    }
    // `observations()` (the tensor path's `observe`, also on wgpu) agree.
    let diff = worst(
        &floats(gpu.observations().get("policy").expect("policy group")),
        &floats(cpu.observations().get("policy").expect("policy group")),
    );
    assert!(diff <= TOLERANCE, "{task}: observations differ by {diff:e}");
    if upset.is_some() {
        assert!(terminations >= 8, "{task}: {terminations} terminations");
    }
    if steps > gpu.spec().max_episode_length {
        assert!(time_outs > 0, "{task}: no time-outs");
    }
    eprintln!(
        "{task}: {steps} steps, {terminations} terminations, {time_outs} time-outs, \
         worst relative difference {worst_diff:e}"
    );
}

#[test]
fn cartpole_kernel_matches_the_tensor_path() {
    compare("cartpole", 300, Some(&[2.39, 1.5, 0.0, 0.0]));
}

#[test]
fn cartpole_discrete_kernel_matches_the_tensor_path() {
    compare("cartpole_discrete", 300, Some(&[2.39, 1.5, 0.0, 0.0]));
}

#[test]
fn pendulum_kernel_matches_the_tensor_path() {
    // Never terminates: two rounds of time-outs (200 steps).
    compare("pendulum", 450, None);
}

#[test]
fn acrobot_kernel_matches_the_tensor_path() {
    // The free end starts above the line: terminated at once.
    compare("acrobot", 550, Some(&[3.0, 0.0, 0.0, 0.0]));
}

#[test]
fn mountain_car_continuous_kernel_matches_the_tensor_path() {
    // Just below the flag and moving right: terminated at once; time-outs after 999 steps.
    compare("mountain_car_continuous", 1050, Some(&[0.44, 0.05]));
}

#[test]
fn kernel_path_rejects_actions_of_the_wrong_shape() {
    let device = Default::default();
    for task in crate::classic_tasks() {
        let mut env = make_classic::<Wgpu>(task, 3, 0, &device).expect("task");
        let before = env.save_state().expect("reads back");
        for shape in [[3, 2], [2, 1]] {
            let err = env
                .step(Tensor::zeros(shape, &device))
                .expect_err("wrong shape");
            assert!(err.to_string().contains("actions"), "{task}: {err}");
        }
        assert_eq!(env.save_state().expect("reads back"), before, "{task}");
    }
}
