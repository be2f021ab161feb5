//! The task registry: builds an environment batch from its task name.

use burn::tensor::backend::Backend;
use rl_core::VecEnv;

use crate::{CartPole, ClassicEnv, Error, Pendulum, Result};

/// Names of the registered tasks, as accepted by [`make_env`].
pub const TASKS: &[&str] = CLASSIC_TASKS;

/// Names of the classic-control tasks, as accepted by [`make_classic`].
pub const CLASSIC_TASKS: &[&str] = &["cartpole", "pendulum"];

/// Builds `num_envs` environments of `task` on `device`, with reset noise seeded by `seed`.
///
/// Errors when the task is not one of [`TASKS`] or when `num_envs` is zero.
pub fn make_env<B: Backend>(
    task: &str,
    num_envs: usize,
    seed: u64,
    device: &B::Device,
) -> Result<Box<dyn VecEnv<B>>> {
    let env: Box<dyn VecEnv<B>> = make_classic::<B>(task, num_envs, seed, device)?;
    Ok(env)
}

/// Builds `num_envs` environments of the classic-control `task`, with access to their
/// internal state ([`ClassicEnv`]).
///
/// Errors when the task is not one of [`CLASSIC_TASKS`] or when `num_envs` is zero.
pub fn make_classic<B: Backend>(
    task: &str,
    num_envs: usize,
    seed: u64,
    device: &B::Device,
) -> Result<Box<dyn ClassicEnv<B>>> {
    match task {
        "cartpole" => Ok(Box::new(CartPole::<B>::new(num_envs, seed, device)?)),
        "pendulum" => Ok(Box::new(Pendulum::<B>::new(num_envs, seed, device)?)),
        _ => Err(Error::UnknownTask {
            task: task.to_string(),
            valid: CLASSIC_TASKS.join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{B, bools};
    use burn::tensor::Tensor;

    #[test]
    fn every_registered_task_builds_and_steps() {
        let device = Default::default();
        for &task in TASKS {
            let mut env = make_env::<B>(task, 3, 0, &device).expect("registered task");
            assert_eq!(env.spec().task, task);
            assert_eq!(env.num_envs(), 3);
            let a = env.spec().num_actions();
            let out = env
                .step(Tensor::zeros([3, a], &device))
                .expect("action shape");
            assert_eq!(out.rewards.dims(), [3]);
            assert_eq!(bools(out.dones()).len(), 3);
        }
    }

    #[test]
    fn unknown_task_names_the_valid_ones() {
        let err = make_env::<B>("cartpol", 4, 0, &Default::default())
            .err()
            .expect("unknown task");
        assert!(matches!(err, Error::UnknownTask { .. }));
        let msg = err.to_string();
        assert!(msg.contains("`cartpol`"), "{msg}");
        assert!(msg.contains("cartpole, pendulum"), "{msg}");
    }

    #[test]
    fn zero_environments_is_an_error() {
        let err = make_env::<B>("pendulum", 0, 0, &Default::default())
            .err()
            .expect("no environments");
        assert!(
            matches!(err, Error::NoEnvs { ref task } if task == "pendulum"),
            "{err}"
        );
    }
}
