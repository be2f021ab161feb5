//! Gymnasium Pendulum-v1, batched over `N` environments.

use std::collections::BTreeMap;
use std::f32::consts::PI;

use burn::tensor::{Bool, Tensor, backend::Backend};
use rl_core::{ActionSpace, EnvSpec};

use crate::Result;
use crate::classic::{ClassicLayout, ObsColumn};
use crate::common::{DynamicsStep, EnvCore, POLICY, check_shape, column, impl_vec_env};
use crate::math::{sin, sin_cos};

const GRAVITY: f32 = 10.0;
const MASS: f32 = 1.0;
const LENGTH: f32 = 1.0;
const DT: f32 = 0.05;
const MAX_SPEED: f32 = 8.0;
const MAX_TORQUE: f32 = 2.0;
/// Names of the state components (Gymnasium's layout).
const STATE_NAMES: [&str; 2] = ["theta", "theta_dot"];
/// The columns' meaning: the `policy` observation (Gymnasium's `x`, `y` and angular
/// velocity), and the torque `clip(a, -2, 2)` (N m) on the pendulum.
pub(crate) const LAYOUT: ClassicLayout = ClassicLayout {
    observation: &[
        ObsColumn {
            name: "cos_theta",
            unit: "cos(theta), theta the angle from upright (rad)",
        },
        ObsColumn {
            name: "sin_theta",
            unit: "sin(theta), theta the angle from upright (rad)",
        },
        ObsColumn {
            name: "theta_dot",
            unit: "rad/s, angular velocity",
        },
    ],
    action: "torque",
    action_kind: "torque",
    action_scale: 1.0,
};
const MAX_EPISODE_LENGTH: usize = 200;
const RESET_LOW: [f32; 2] = [-PI, -1.0];
const RESET_HIGH: [f32; 2] = [PI, 1.0];

/// `N` pendulums with Gymnasium Pendulum-v1 dynamics (`g = 10`, `dt = 0.05`).
///
/// - State: `[theta, theta_dot]`, `[N, 2]` (theta is not wrapped, as in Gymnasium).
/// - `policy` observation: `[cos theta, sin theta, theta_dot]`, `[N, 3]`.
/// - Action: torque `[N, 1]` in the box `[-2, 2]` (clipped by the environment).
/// - Reward from the state before the step:
///   `-(norm(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2)`.
/// - Never terminates; time-out after 200 steps.
/// - Reset: `theta` from `U(-pi, pi)`, `theta_dot` from `U(-1, 1)`.
#[derive(Debug)]
pub struct Pendulum<B: Backend> {
    core: EnvCore<B>,
}

impl<B: Backend> Pendulum<B> {
    /// `num_envs` pendulums on `device`, reset with the streams of `seed`.
    pub fn new(num_envs: usize, seed: u64, device: &B::Device) -> Result<Self> {
        let spec = EnvSpec {
            task: "pendulum".into(),
            num_envs,
            obs_groups: BTreeMap::from([(POLICY.to_string(), 3)]),
            action_space: ActionSpace::Box {
                low: vec![-MAX_TORQUE],
                high: vec![MAX_TORQUE],
            },
            max_episode_length: MAX_EPISODE_LENGTH,
            step_dt: DT,
        };
        let core = EnvCore::new(spec, seed, &RESET_LOW, &RESET_HIGH, device)?;
        Ok(Self { core })
    }

    /// One step of the dynamics without time limit or reset: `state` `[N, 2]` and
    /// `actions` `[N, 1]` give the next state, the rewards and the terminated flags (always
    /// false).
    pub fn dynamics(
        state: Tensor<B, 2>,
        actions: Tensor<B, 2>,
    ) -> rl_core::Result<DynamicsStep<B>> {
        let [n, _] = state.dims();
        check_shape("pendulum state", state.dims(), [n, 2])?;
        check_shape("actions", actions.dims(), [n, 1])?;
        let theta = column(&state, 0); // [N]
        let theta_dot = column(&state, 1); // [N]
        let u = column(&actions, 0).clamp(-MAX_TORQUE, MAX_TORQUE); // [N]

        // Costs of the state before the step.
        let costs = angle_normalize(theta.clone()).square()
            + theta_dot.clone().square().mul_scalar(0.1)
            + u.clone().square().mul_scalar(0.001); // [N]

        let next_theta_dot = (theta_dot
            + (sin(theta.clone()).mul_scalar(3.0 * GRAVITY / (2.0 * LENGTH))
                + u.mul_scalar(3.0 / (MASS * LENGTH * LENGTH)))
            .mul_scalar(DT))
        .clamp(-MAX_SPEED, MAX_SPEED);
        let next_theta = theta + next_theta_dot.clone().mul_scalar(DT);

        let device = state.device();
        Ok(DynamicsStep {
            next_state: Tensor::stack(vec![next_theta, next_theta_dot], 1), // [N, 2]
            rewards: costs.neg(),
            // Pendulum never terminates: all false.
            terminated: Tensor::<B, 1, Bool>::zeros([n], &device),
        })
    }

    /// The `policy` observation of a state: `[cos theta, sin theta, theta_dot]`, `[N, 3]`.
    pub fn observe(state: Tensor<B, 2>) -> Tensor<B, 2> {
        let theta = column(&state, 0);
        let theta_dot = column(&state, 1);
        let (sin, cos) = sin_cos(theta);
        Tensor::stack(vec![cos, sin, theta_dot], 1)
    }
}

/// `((x + pi) mod 2 pi) - pi`, with the modulo taking the sign of the divisor (as numpy).
fn angle_normalize<B: Backend>(x: Tensor<B, 1>) -> Tensor<B, 1> {
    x.add_scalar(PI).remainder_scalar(2.0 * PI).sub_scalar(PI)
}

impl_vec_env!(Pendulum, STATE_NAMES, LAYOUT, kernel::PendulumKernel);

/// [`Pendulum::dynamics`] and [`Pendulum::observe`] for one environment, as parts of the
/// step kernel (see `crate::cube`).
#[cfg(feature = "cube")]
mod kernel {
    use cubecl::prelude::*;

    use super::{DT, GRAVITY, LENGTH, MASS, MAX_SPEED, MAX_TORQUE, PI};
    use crate::cube::TaskKernel;
    use crate::cube::math::{clamp, sin, sin_cos};

    const TWO_PI: f32 = 2.0 * PI;
    const GRAVITY_GAIN: f32 = 3.0 * GRAVITY / (2.0 * LENGTH);
    const TORQUE_GAIN: f32 = 3.0 / (MASS * LENGTH * LENGTH);

    /// [`super::Pendulum`] in the step kernel.
    pub(crate) struct PendulumKernel;

    #[cube]
    impl TaskKernel for PendulumKernel {
        fn dynamics(state: &Array<f32>, action: f32, next: &mut Array<f32>) -> (f32, bool) {
            let theta = state[0usize];
            let theta_dot = state[1usize];
            let u = clamp(action, -MAX_TORQUE, MAX_TORQUE);

            // Costs of the state before the step.
            let normalized = angle_normalize(theta);
            let costs = normalized * normalized + theta_dot * theta_dot * 0.1f32 + u * u * 0.001f32;

            let next_theta_dot = clamp(
                theta_dot + (sin(theta) * GRAVITY_GAIN + u * TORQUE_GAIN) * DT,
                -MAX_SPEED,
                MAX_SPEED,
            );
            next[0usize] = theta + next_theta_dot * DT;
            next[1usize] = next_theta_dot;
            // Pendulum never terminates.
            (-costs, false)
        }

        fn observe(state: &Array<f32>, obs: &mut Array<f32>, at: usize) {
            let (sin, cos) = sin_cos(state[0usize]);
            obs[at] = cos;
            obs[at + 1usize] = sin;
            obs[at + 2usize] = state[1usize];
        }
    }

    /// `((x + pi) mod 2 pi) - pi` with the modulo taking the sign of the divisor, as
    /// [`super::angle_normalize`] (up to the rounding of the modulo, which only matters next
    /// to `+-pi`, where the squared cost is the same on both sides).
    #[cube]
    fn angle_normalize(x: f32) -> f32 {
        let shifted = x + PI;
        shifted - (shifted / TWO_PI).floor() * TWO_PI - PI
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClassicEnv;
    use crate::testing::{
        B, Fixture, assert_action_shape_errors, assert_classic_layout, assert_close,
        assert_episodes, assert_save_load_continues_identically, assert_seeded_reset,
        assert_transitions, bools, floats, rows_to_tensor,
    };
    use rl_core::VecEnv;

    const FIXTURE: &str = include_str!("../tests/fixtures/pendulum.json");

    fn env(num_envs: usize, seed: u64) -> Pendulum<B> {
        Pendulum::new(num_envs, seed, &Default::default()).expect("valid env")
    }

    #[test]
    fn dynamics_match_gymnasium() {
        assert_transitions(
            &Fixture::parse(FIXTURE),
            Pendulum::<B>::dynamics,
            Pendulum::<B>::observe,
        );
    }

    #[test]
    fn episodes_match_gymnasium() {
        assert_episodes(&Fixture::parse(FIXTURE), || env(1, 0), false);
    }

    #[test]
    fn step_matches_gymnasium() {
        let fx = Fixture::parse(FIXTURE);
        let mut env = env(fx.transitions.len(), 0);
        env.set_state(None, fx.stack(|r| &r.state))
            .expect("state shape");
        let out = env.step(fx.stack(|r| &r.action)).expect("action shape");
        let obs = floats(out.observations.get("policy").expect("policy"));
        let final_obs = floats(out.final_observations.get("policy").expect("policy"));
        assert!(!bools(out.dones()).iter().any(|&d| d));
        let rewards = floats(out.rewards);
        assert_eq!(obs, final_obs, "no env is done after one step");
        for (i, rec) in fx.transitions.iter().enumerate() {
            for k in 0..3 {
                assert_close(obs[i * 3 + k], rec.obs[k], &format!("obs {i}.{k}"));
            }
            assert_close(rewards[i], rec.reward, &format!("reward {i}"));
        }
    }

    #[test]
    fn reward_uses_the_state_before_the_step() {
        let mut env = env(1, 0);
        env.set_state(None, rows_to_tensor(&[vec![0.5, 2.0]]))
            .expect("state shape");
        let out = env
            .step(rows_to_tensor(&[vec![1.0]]))
            .expect("action shape");
        let reward = floats(out.rewards)[0];
        let pre = -(0.5f32 * 0.5 + 0.1 * 2.0 * 2.0 + 0.001);
        let [th, thdot]: [f32; 2] = floats(env.state()).try_into().expect("two values");
        let post = -(th * th + 0.1 * thdot * thdot + 0.001);
        assert!(
            (reward - pre).abs() < 1e-6,
            "reward {reward}, pre-step cost {pre}"
        );
        assert!(
            (reward - post).abs() > 0.1,
            "post-step cost {post} must differ"
        );
    }

    #[test]
    fn torque_is_clipped_and_angles_wrap_in_the_reward() {
        // theta = -4 wraps to 2 pi - 4; a torque of 5 acts (and costs) as 2.
        let mut env = env(2, 0);
        env.set_state(None, rows_to_tensor(&[vec![-4.0, 0.0], vec![-4.0, 0.0]]))
            .expect("state shape");
        let out = env
            .step(rows_to_tensor(&[vec![5.0], vec![2.0]]))
            .expect("action shape");
        let rewards = floats(out.rewards);
        let wrapped = 2.0 * std::f32::consts::PI - 4.0;
        let want = -(wrapped * wrapped + 0.001 * 4.0);
        assert!(
            (rewards[0] - want).abs() < 1e-5,
            "reward {} vs {want}",
            rewards[0]
        );
        assert_eq!(rewards[0], rewards[1]);
        let state = floats(env.state());
        assert_eq!(state[..2], state[2..]);
    }

    #[test]
    fn time_out_after_200_steps() {
        let mut env = env(3, 5);
        let actions = rows_to_tensor(&[vec![-3.0], vec![0.0], vec![1.5]]);
        for step in 1..200 {
            let out = env.step(actions.clone()).expect("action shape");
            assert!(
                !bools(out.dones()).iter().any(|&d| d),
                "no episode ends at step {step}"
            );
        }
        let before = floats(env.observations().get("policy").expect("policy"));
        let out = env.step(actions).expect("action shape");
        assert_eq!(bools(out.terminated), vec![false; 3]);
        assert_eq!(bools(out.time_outs), vec![true; 3]);
        assert_eq!(floats(out.episode.lengths), vec![200.0; 3]);
        let returns = floats(out.episode.returns);
        assert!(
            returns.iter().all(|&r| r < 0.0),
            "returns are sums of costs: {returns:?}"
        );
        let final_obs = floats(out.final_observations.get("policy").expect("policy"));
        let obs = floats(out.observations.get("policy").expect("policy"));
        assert_ne!(final_obs, before, "final observation is after the step");
        for i in 0..3 {
            assert_ne!(
                obs[i * 3..i * 3 + 3],
                final_obs[i * 3..i * 3 + 3],
                "env {i} was reset"
            );
            assert!(obs[i * 3 + 2].abs() <= 1.0, "reset theta_dot in U(-1, 1)");
        }
    }

    #[test]
    fn actions_of_the_wrong_shape_are_an_error() {
        assert_action_shape_errors(&mut env(3, 0));
    }

    #[test]
    fn reset_is_seeded_and_within_bounds() {
        assert_seeded_reset(|seed| env(64, seed), &RESET_LOW, &RESET_HIGH);
        let s = floats(env(256, 9).state());
        assert!(
            s.chunks(2).any(|r| r[0].abs() > 2.0),
            "theta spans (-pi, pi)"
        );
    }

    #[test]
    fn spec_describes_the_task() {
        let spec = env(4, 0).spec().clone();
        assert_eq!(spec.obs_groups.get("policy"), Some(&3));
        assert_eq!(spec.max_episode_length, 200);
        assert!((spec.step_dt - 0.05).abs() < 1e-9);
    }

    #[test]
    fn layout_names_gymnasiums_columns_and_the_torque() {
        assert_classic_layout(
            &env(2, 0),
            &["cos_theta", "sin_theta", "theta_dot"],
            "torque",
            (-2.0, 2.0),
            1.0,
        );
    }

    #[test]
    fn save_and_load_resume_bit_for_bit() {
        assert_save_load_continues_identically(|seed| env(3, seed));
    }
}
