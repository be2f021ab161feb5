//! The tasks' env steps as CubeCL kernels, for the CubeCL backends (wgpu, cuda); other
//! backends take the tensor path. The legged task's work after the physics is one kernel
//! ([`legged`]); each classic task's whole env step is one kernel (below; the tensor path is
//! `dynamics` + `EnvCore::finish_step`).
//!
//! One thread per environment runs, on that environment's scalars:
//! 1. the task's dynamics ([`TaskKernel::dynamics`]: next state, reward, terminated);
//! 2. the episode counters and the time limit (time-outs, dones);
//! 3. the auto-reset from the reset noise drawn on the host, exactly as the tensor path
//!    draws it, so that both paths consume the same random numbers;
//! 4. the observations of the next state ([`TaskKernel::observe`]) before and after the
//!    reset.
//!
//! The maths is the tensor path's, term for term and in the same order (sine and cosine
//! included, see [`math`]), so both paths agree to float rounding (GPUs divide and may fuse
//! multiply-adds with their own rounding). Terminated and time-out flags come out as 0/1
//! floats; turning them into Bool tensors costs one more launch (Burn's fusion joins the
//! two comparisons; two without fusion): two launches per step in all, against 33
//! (mountain car) to 878 (acrobot) for the tensor path on wgpu.

pub(crate) mod legged;
pub(crate) mod math;
#[cfg(all(test, feature = "wgpu"))]
mod wgpu_tests;

use core::marker::PhantomData;

use burn::tensor::TensorMetadata;
use burn_cubecl::CubeRuntime;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use sim_physics::cube::{CubeProgram, empty_outputs, per_environment};

/// Whether `B` is a backend that [`sim_physics::cube::run`] runs programs on (wgpu or cuda
/// with 32-bit floats, fused or not): asks it to run a program that does nothing.
pub(crate) fn is_cube_backend<B: burn::tensor::backend::Backend>() -> bool {
    struct Probe;
    impl CubeProgram for Probe {
        fn run<R: CubeRuntime>(self, _inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
            Vec::new()
        }
    }
    sim_physics::cube::run::<B, _>(Probe, Vec::new()).is_ok()
}

/// The task-specific part of the step kernel: a classic task's dynamics and observation for
/// one environment, written as `#[cube]` functions (each next to its tensor version in the
/// task's file).
#[cube]
pub(crate) trait TaskKernel: 'static + Send + Sync {
    /// One step of the dynamics without time limit or reset: `state` (`K` values) and the
    /// task's single action give the next state (written into `next`, `K` values), the
    /// reward and the terminated flag.
    fn dynamics(state: &Array<f32>, action: f32, next: &mut Array<f32>) -> (f32, bool);

    /// Writes the `policy` observation of `state` (`D` values) into `obs[at..at + D]`.
    fn observe(state: &Array<f32>, obs: &mut Array<f32>, at: usize);
}

/// The inputs of [`StepProgram`], in this order.
pub(crate) const INPUTS: usize = 5;
/// The outputs of [`StepProgram`], in this order: the state after the auto-reset `[N, K]`,
/// the state before it `[N, K]`, the observation `[N, D]` and the final observation
/// `[N, D]`, the rewards `[N]`, terminated and time-out flags (0/1) `[N]`, the running
/// returns and lengths `[N]`, and the returns and lengths of the episodes that ended `[N]`.
pub(crate) const OUTPUTS: usize = 11;

/// One env step of task `T` over a batch: what the kernel is compiled for.
///
/// Inputs (see [`INPUTS`]): the state `[N, K]`, the actions `[N, 1]`, the reset noise
/// `[N, K]`, the running returns and lengths `[N]`.
#[derive(Debug)]
pub(crate) struct StepProgram<T> {
    /// Number of state components, `K`.
    pub(crate) state_dim: usize,
    /// Size of the policy observation, `D`.
    pub(crate) obs_dim: usize,
    /// Steps after which an episode is cut (the time limit).
    pub(crate) max_episode_length: usize,
    pub(crate) task: PhantomData<T>,
}

impl<T: TaskKernel> CubeProgram for StepProgram<T> {
    fn run<R: CubeRuntime>(self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
        let i = &inputs;
        let n = i[0].shape()[0];
        let (k, d) = (self.state_dim, self.obs_dim);
        let mut shapes = vec![vec![n, k], vec![n, k], vec![n, d], vec![n, d]];
        shapes.extend((0..7).map(|_| vec![n]));
        let outputs = empty_outputs(&i[0], shapes);
        let (cube_count, cube_dim) = per_environment(n);
        let client = i[0].client.clone();
        let arg = |t: &CubeTensor<R>| t.clone().into_array_arg();
        let o = &outputs;
        step_kernel::launch::<T, R>(
            &client,
            cube_count,
            cube_dim,
            arg(&i[0]),
            arg(&i[1]),
            arg(&i[2]),
            arg(&i[3]),
            arg(&i[4]),
            arg(&o[0]),
            arg(&o[1]),
            arg(&o[2]),
            arg(&o[3]),
            arg(&o[4]),
            arg(&o[5]),
            arg(&o[6]),
            arg(&o[7]),
            arg(&o[8]),
            arg(&o[9]),
            arg(&o[10]),
            k,
            d,
            self.max_episode_length,
        );
        outputs
    }
}

/// The env step of task `T` for one environment per thread (see the module docs).
#[allow(clippy::too_many_arguments)]
#[cube(launch)]
fn step_kernel<T: TaskKernel>(
    state: &Array<f32>,
    actions: &Array<f32>,
    noise: &Array<f32>,
    returns: &Array<f32>,
    lengths: &Array<f32>,
    out_state: &mut Array<f32>,
    out_final_state: &mut Array<f32>,
    out_obs: &mut Array<f32>,
    out_final_obs: &mut Array<f32>,
    out_rewards: &mut Array<f32>,
    out_terminated: &mut Array<f32>,
    out_time_outs: &mut Array<f32>,
    out_returns: &mut Array<f32>,
    out_lengths: &mut Array<f32>,
    out_episode_returns: &mut Array<f32>,
    out_episode_lengths: &mut Array<f32>,
    #[comptime] k: usize,
    #[comptime] d: usize,
    #[comptime] max_episode_length: usize,
) {
    let env = ABSOLUTE_POS;
    if env >= returns.len() {
        terminate!();
    }

    // 1. The task's dynamics.
    let mut current = Array::<f32>::new(k);
    for c in 0..k {
        current[c] = state[env * k + c];
    }
    let mut next = Array::<f32>::new(k);
    let (reward, terminated) = T::dynamics(&current, actions[env], &mut next);

    // 2. Count the step into the running episode; truncated episodes that did not also
    // terminate are time-outs.
    let episode_return = returns[env] + reward;
    let episode_length = lengths[env] + 1.0;
    let limit = f32::cast_from(comptime!(max_episode_length as u32));
    let truncated = episode_length >= limit;
    let done = terminated || truncated;
    out_rewards[env] = reward;
    out_terminated[env] = select(terminated, 1.0f32, 0.0f32);
    out_time_outs[env] = select(truncated && !terminated, 1.0f32, 0.0f32);
    out_episode_returns[env] = select(done, episode_return, 0.0f32);
    out_episode_lengths[env] = select(done, episode_length, 0.0f32);
    out_returns[env] = select(done, 0.0f32, episode_return);
    out_lengths[env] = select(done, 0.0f32, episode_length);

    // 3. Auto-reset from the host-drawn noise, and 4. the observations.
    let mut reset = Array::<f32>::new(k);
    for c in 0..k {
        let value = select(done, noise[env * k + c], next[c]);
        reset[c] = value;
        out_final_state[env * k + c] = next[c];
        out_state[env * k + c] = value;
    }
    T::observe(&next, out_final_obs, env * d);
    T::observe(&reset, out_obs, env * d);
}
