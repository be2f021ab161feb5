//! Gymnasium CartPole-v1 with a continuous force, batched over `N` environments, and the
//! cart-pole physics it shares with `cartpole_discrete.rs`.

use std::collections::BTreeMap;

use burn::tensor::{Tensor, backend::Backend};
use rl_core::{ActionSpace, EnvSpec};

use crate::Result;
use crate::classic::{ClassicLayout, ObsColumn, column_names};
use crate::common::{DynamicsStep, EnvCore, POLICY, check_shape, column, impl_vec_env};
use crate::math::sin_cos;

const GRAVITY: f32 = 9.8;
const MASS_CART: f32 = 1.0;
const MASS_POLE: f32 = 0.1;
const TOTAL_MASS: f32 = MASS_POLE + MASS_CART;
/// Half the pole's length, as in Gymnasium.
const LENGTH: f32 = 0.5;
const POLEMASS_LENGTH: f32 = MASS_POLE * LENGTH;
/// Magnitude of the push, in newtons.
pub(crate) const FORCE_MAG: f32 = 10.0;
/// Time step of the explicit Euler integration, in seconds.
pub(crate) const TAU: f32 = 0.02;
const X_THRESHOLD: f32 = 2.4;
const THETA_THRESHOLD: f32 = (12.0 * 2.0 * std::f64::consts::PI / 360.0) as f32;
/// The state components, which are also the `policy` observation (Gymnasium's names).
pub(crate) const OBSERVATION: [ObsColumn; 4] = [
    ObsColumn {
        name: "x",
        unit: "m, cart position from the centre of the track",
    },
    ObsColumn {
        name: "x_dot",
        unit: "m/s, cart velocity",
    },
    ObsColumn {
        name: "theta",
        unit: "rad, pole angle from upright",
    },
    ObsColumn {
        name: "theta_dot",
        unit: "rad/s, pole angular velocity",
    },
];
/// Names of the state components (Gymnasium's layout).
pub(crate) const STATE_NAMES: [&str; 4] = column_names(OBSERVATION);
/// The columns' meaning: the state, and the force `FORCE_MAG * clip(a, -1, 1)` (N) on the
/// cart.
pub(crate) const LAYOUT: ClassicLayout = ClassicLayout {
    observation: &OBSERVATION,
    action: "force",
    action_kind: "force",
    action_scale: FORCE_MAG,
};
/// Gymnasium's time limit for CartPole-v1.
pub(crate) const MAX_EPISODE_LENGTH: usize = 500;
/// Lower bounds of the reset noise: every state component from `U(-0.05, 0.05)`.
pub(crate) const RESET_LOW: [f32; 4] = [-0.05; 4];
/// Upper bounds of the reset noise.
pub(crate) const RESET_HIGH: [f32; 4] = [0.05; 4];

/// `N` cart-poles with Gymnasium CartPole-v1 physics (explicit Euler, `tau = 0.02`) and a
/// continuous force `F = 10 clamp(a, -1, 1)`.
///
/// - State and `policy` observation: `[x, x_dot, theta, theta_dot]`, `[N, 4]`.
/// - Action: `[N, 1]` in the box `[-1, 1]` (clamped by the environment).
/// - Reward 1.0 on every step, including the terminating one (return = length).
/// - Terminates when `|x| > 2.4` or `|theta| > 12 deg`; time-out after 500 steps.
/// - Reset: every state component from `U(-0.05, 0.05)`.
#[derive(Debug)]
pub struct CartPole<B: Backend> {
    core: EnvCore<B>,
}

impl<B: Backend> CartPole<B> {
    /// `num_envs` cart-poles on `device`, reset with the streams of `seed`.
    pub fn new(num_envs: usize, seed: u64, device: &B::Device) -> Result<Self> {
        let spec = EnvSpec {
            task: "cartpole".into(),
            num_envs,
            obs_groups: BTreeMap::from([(POLICY.to_string(), 4)]),
            action_space: ActionSpace::Box {
                low: vec![-1.0],
                high: vec![1.0],
            },
            max_episode_length: MAX_EPISODE_LENGTH,
            step_dt: TAU,
        };
        let core = EnvCore::new(spec, seed, &RESET_LOW, &RESET_HIGH, device)?;
        Ok(Self { core })
    }

    /// One step of the physics without time limit or reset: `state` `[N, 4]` and
    /// `actions` `[N, 1]` give the next state, the rewards and the terminated flags.
    pub fn dynamics(
        state: Tensor<B, 2>,
        actions: Tensor<B, 2>,
    ) -> rl_core::Result<DynamicsStep<B>> {
        let [n, _] = state.dims();
        check_shape("cartpole state", state.dims(), [n, 4])?;
        check_shape("actions", actions.dims(), [n, 1])?;
        let force = column(&actions, 0).clamp(-1.0, 1.0).mul_scalar(FORCE_MAG); // [N]
        Ok(physics(state, force))
    }

    /// The `policy` observation of a state: the state itself, `[N, 4]`.
    pub fn observe(state: Tensor<B, 2>) -> Tensor<B, 2> {
        state
    }
}

impl_vec_env!(CartPole, STATE_NAMES, LAYOUT, kernel::CartPoleKernel);

/// One step of Gymnasium's cart-pole physics, shared by [`CartPole`] and
/// [`crate::CartPoleDiscrete`]: `state` `[N, 4]` pushed by `force` `[N]` (newtons) gives the
/// next state, the rewards (1.0 on every step) and the terminated flags.
pub(crate) fn physics<B: Backend>(state: Tensor<B, 2>, force: Tensor<B, 1>) -> DynamicsStep<B> {
    let [n, _] = state.dims();
    let [x, x_dot, theta, theta_dot] = [0, 1, 2, 3].map(|j| column(&state, j)); // [N] each
    let (sin, cos) = sin_cos(theta.clone());

    // Gymnasium's equations of motion (Florian 2005), term by term.
    let temp = (force
        + theta_dot
            .clone()
            .square()
            .mul_scalar(POLEMASS_LENGTH)
            .mul(sin.clone()))
    .div_scalar(TOTAL_MASS);
    let theta_acc = (sin.mul_scalar(GRAVITY) - cos.clone().mul(temp.clone())).div(
        cos.clone()
            .square()
            .mul_scalar(MASS_POLE)
            .div_scalar(TOTAL_MASS)
            .neg()
            .add_scalar(4.0 / 3.0)
            .mul_scalar(LENGTH),
    );
    let x_acc = temp
        - theta_acc
            .clone()
            .mul_scalar(POLEMASS_LENGTH)
            .mul(cos)
            .div_scalar(TOTAL_MASS);

    // Explicit Euler: positions move with the old velocities.
    let next_x = x + x_dot.clone().mul_scalar(TAU);
    let next_x_dot = x_dot + x_acc.mul_scalar(TAU);
    let next_theta = theta + theta_dot.clone().mul_scalar(TAU);
    let next_theta_dot = theta_dot + theta_acc.mul_scalar(TAU);

    let terminated = next_x
        .clone()
        .abs()
        .greater_elem(X_THRESHOLD)
        .bool_or(next_theta.clone().abs().greater_elem(THETA_THRESHOLD)); // [N]
    let rewards = Tensor::ones([n], &state.device()); // [N]
    // [N, 4]
    let next_state = Tensor::stack(vec![next_x, next_x_dot, next_theta, next_theta_dot], 1);
    DynamicsStep {
        next_state,
        rewards,
        terminated,
    }
}

/// The cart-pole on the GPU: [`CartPole::dynamics`], [`physics`] and [`CartPole::observe`]
/// for one environment, as parts of the step kernel (see `crate::cube`).
#[cfg(feature = "cube")]
pub(crate) mod kernel {
    use cubecl::prelude::*;

    use super::{
        FORCE_MAG, GRAVITY, LENGTH, MASS_POLE, POLEMASS_LENGTH, TAU, THETA_THRESHOLD, TOTAL_MASS,
        X_THRESHOLD,
    };
    use crate::cube::TaskKernel;
    use crate::cube::math::{clamp, sin_cos};

    const FOUR_THIRDS: f32 = 4.0 / 3.0;

    /// [`super::CartPole`] in the step kernel.
    pub(crate) struct CartPoleKernel;

    #[cube]
    impl TaskKernel for CartPoleKernel {
        fn dynamics(state: &Array<f32>, action: f32, next: &mut Array<f32>) -> (f32, bool) {
            physics(state, clamp(action, -1.0f32, 1.0f32) * FORCE_MAG, next)
        }

        fn observe(state: &Array<f32>, obs: &mut Array<f32>, at: usize) {
            for c in 0..4usize {
                obs[at + c] = state[c];
            }
        }
    }

    /// [`super::physics`] for one environment: `state` pushed by `force` (newtons) gives
    /// the next state (into `next`), the reward and the terminated flag.
    #[cube]
    pub(crate) fn physics(state: &Array<f32>, force: f32, next: &mut Array<f32>) -> (f32, bool) {
        let x = state[0usize];
        let x_dot = state[1usize];
        let theta = state[2usize];
        let theta_dot = state[3usize];
        let (sin, cos) = sin_cos(theta);

        // Gymnasium's equations of motion (Florian 2005), term by term.
        let temp = (force + theta_dot * theta_dot * POLEMASS_LENGTH * sin) / TOTAL_MASS;
        let theta_acc = (sin * GRAVITY - cos * temp)
            / ((-(cos * cos * MASS_POLE / TOTAL_MASS) + FOUR_THIRDS) * LENGTH);
        let x_acc = temp - theta_acc * POLEMASS_LENGTH * cos / TOTAL_MASS;

        // Explicit Euler: positions move with the old velocities.
        let next_x = x + x_dot * TAU;
        let next_theta = theta + theta_dot * TAU;
        next[0usize] = next_x;
        next[1usize] = x_dot + x_acc * TAU;
        next[2usize] = next_theta;
        next[3usize] = theta_dot + theta_acc * TAU;

        let terminated = next_x.abs() > X_THRESHOLD || next_theta.abs() > THETA_THRESHOLD;
        (1.0f32, terminated)
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

    const FIXTURE: &str = include_str!("../tests/fixtures/cartpole.json");

    fn env(num_envs: usize, seed: u64) -> CartPole<B> {
        CartPole::new(num_envs, seed, &Default::default()).expect("valid env")
    }

    fn zeros(n: usize, k: usize) -> Tensor<B, 2> {
        Tensor::zeros([n, k], &Default::default())
    }

    #[test]
    fn dynamics_match_gymnasium() {
        assert_transitions(
            &Fixture::parse(FIXTURE),
            CartPole::<B>::dynamics,
            CartPole::<B>::observe,
        );
    }

    #[test]
    fn episodes_match_gymnasium() {
        assert_episodes(&Fixture::parse(FIXTURE), || env(1, 0), true);
    }

    #[test]
    fn step_matches_gymnasium_and_resets_terminated_envs() {
        let fx = Fixture::parse(FIXTURE);
        let n = fx.transitions.len();
        let mut env = env(n, 0);
        env.set_state(None, fx.stack(|r| &r.state))
            .expect("state shape");
        let out = env.step(fx.stack(|r| &r.action)).expect("action shape");
        let final_obs = floats(out.final_observations.get("policy").expect("policy"));
        let obs = floats(out.observations.get("policy").expect("policy"));
        let state = floats(env.state());
        let terminated = bools(out.terminated.clone());
        let time_outs = bools(out.time_outs.clone());
        let returns = floats(out.episode.returns);
        let lengths = floats(out.episode.lengths);
        assert!(out.episode.terms.is_empty());
        for (i, rec) in fx.transitions.iter().enumerate() {
            let row = i * 4..i * 4 + 4;
            for k in 0..4 {
                assert_close(
                    final_obs[i * 4 + k],
                    rec.obs[k],
                    &format!("final obs {i}.{k}"),
                );
            }
            assert_eq!(
                terminated[i], rec.terminated,
                "transition {i}: terminated flag"
            );
            assert!(!time_outs[i], "transition {i}: no time-out after one step");
            assert_eq!(
                obs[row.clone()],
                state[row.clone()],
                "obs of env {i} is its state"
            );
            if rec.terminated {
                assert_ne!(
                    obs[row.clone()],
                    final_obs[row.clone()],
                    "env {i} was reset"
                );
                assert!(
                    obs[row].iter().all(|v| v.abs() <= 0.05),
                    "env {i}: reset state in bounds"
                );
                assert_eq!(
                    (returns[i], lengths[i]),
                    (1.0, 1.0),
                    "env {i}: finished episode"
                );
            } else {
                assert_eq!(obs[row.clone()], final_obs[row], "env {i} continues");
                assert_eq!(
                    (returns[i], lengths[i]),
                    (0.0, 0.0),
                    "env {i}: no finished episode"
                );
            }
        }
    }

    #[test]
    fn time_out_after_500_steps_is_not_a_termination() {
        let mut env = env(2, 1);
        // The upright cart at rest with no force stays exactly at rest.
        env.set_state(None, zeros(2, 4)).expect("state shape");
        for step in 1..500 {
            let out = env.step(zeros(2, 1)).expect("action shape");
            assert!(
                !bools(out.dones()).iter().any(|&d| d),
                "no episode ends at step {step}"
            );
            assert_eq!(floats(out.rewards), vec![1.0, 1.0]);
        }
        let out = env.step(zeros(2, 1)).expect("action shape");
        assert_eq!(bools(out.terminated), vec![false, false]);
        assert_eq!(bools(out.time_outs), vec![true, true]);
        assert_eq!(floats(out.episode.lengths), vec![500.0, 500.0]);
        assert_eq!(floats(out.episode.returns), vec![500.0, 500.0]);
        assert_eq!(
            floats(out.final_observations.get("policy").expect("policy")),
            vec![0.0; 8]
        );
        let obs = floats(out.observations.get("policy").expect("policy"));
        assert!(obs.iter().any(|&v| v != 0.0), "timed-out envs were reset");
        // The next episode starts counting from zero.
        let out = env.step(zeros(2, 1)).expect("action shape");
        assert!(!bools(out.dones()).iter().any(|&d| d));
    }

    #[test]
    fn termination_on_the_last_step_is_not_a_time_out() {
        let mut env = env(2, 4);
        env.set_state(None, zeros(2, 4)).expect("state shape");
        for _ in 1..500 {
            env.step(zeros(2, 1)).expect("action shape");
        }
        // Step 500: env 0 falls (terminated and truncated), env 1 only reaches the limit.
        env.set_state(
            None,
            rows_to_tensor(&[vec![0.0, 0.0, 0.205, 1.0], vec![0.0; 4]]),
        )
        .expect("state shape");
        let out = env.step(zeros(2, 1)).expect("action shape");
        assert_eq!(bools(out.terminated.clone()), vec![true, false]);
        assert_eq!(bools(out.time_outs.clone()), vec![false, true]);
        assert_eq!(bools(out.dones()), vec![true, true]);
        assert_eq!(floats(out.episode.lengths), vec![500.0, 500.0]);
    }

    #[test]
    fn terminal_step_reports_return_equal_to_length() {
        let mut env = env(2, 2);
        env.set_state(None, zeros(2, 4)).expect("state shape");
        for _ in 0..3 {
            env.step(zeros(2, 1)).expect("action shape");
        }
        // Env 0 is pushed over the edge of the track; env 1 stays at rest.
        env.set_state(
            None,
            rows_to_tensor(&[vec![2.39, 1.5, 0.0, 0.0], vec![0.0; 4]]),
        )
        .expect("state shape");
        let out = env
            .step(rows_to_tensor(&[vec![0.5], vec![0.0]]))
            .expect("action shape");
        assert_eq!(bools(out.terminated.clone()), vec![true, false]);
        assert_eq!(bools(out.time_outs.clone()), vec![false, false]);
        assert_eq!(bools(out.dones()), vec![true, false]);
        assert_eq!(floats(out.rewards), vec![1.0, 1.0]);
        assert_eq!(floats(out.episode.returns), vec![4.0, 0.0]);
        assert_eq!(floats(out.episode.lengths), vec![4.0, 0.0]);
        let final_obs = floats(out.final_observations.get("policy").expect("policy"));
        assert!(
            (final_obs[0] - 2.42).abs() < 1e-5,
            "final x is past the edge: {}",
            final_obs[0]
        );
        let obs = floats(out.observations.get("policy").expect("policy"));
        assert!(
            obs[..4].iter().all(|v| v.abs() <= 0.05),
            "env 0 was reset: {obs:?}"
        );
        assert_eq!(obs[4..], final_obs[4..]);
    }

    #[test]
    fn actions_of_the_wrong_shape_are_an_error() {
        assert_action_shape_errors(&mut env(3, 0));
        assert!(CartPole::<B>::new(0, 0, &Default::default()).is_err());
    }

    #[test]
    fn reset_is_seeded_and_within_bounds() {
        assert_seeded_reset(|seed| env(64, seed), &RESET_LOW, &RESET_HIGH);

        // reset() zeroes the episode counters.
        let mut env = env(2, 3);
        env.set_state(None, zeros(2, 4)).expect("state shape");
        for _ in 0..5 {
            env.step(zeros(2, 1)).expect("action shape");
        }
        env.reset();
        env.set_state(
            None,
            rows_to_tensor(&[vec![2.39, 1.5, 0.0, 0.0], vec![0.0; 4]]),
        )
        .expect("state shape");
        let out = env.step(zeros(2, 1)).expect("action shape");
        assert_eq!(floats(out.episode.lengths), vec![1.0, 0.0]);
    }

    #[test]
    fn spec_describes_the_task() {
        let env = env(5, 0);
        let spec = env.spec();
        assert_eq!(spec.task, "cartpole");
        assert_eq!(spec.num_envs, 5);
        assert_eq!(spec.obs_groups.get("policy"), Some(&4));
        assert_eq!(spec.num_actions(), 1);
        assert_eq!(spec.max_episode_length, 500);
        assert!((spec.step_dt - 0.02).abs() < 1e-9);
        assert_eq!(
            env.observations().get("policy").expect("policy").dims(),
            [5, 4]
        );
    }

    #[test]
    fn layout_names_gymnasiums_columns_and_the_force() {
        let env = env(2, 0);
        assert_classic_layout(
            &env,
            &["x", "x_dot", "theta", "theta_dot"],
            "force",
            (-1.0, 1.0),
            10.0,
        );
        // `offset + scale * clip(a)` is the force the dynamics push with.
        let layout = env.layout();
        let (scale, offset) = (layout.actions.scale[0], layout.actions.offset[0]);
        let state = rows_to_tensor(&[vec![0.1, -0.2, 0.05, 0.3], vec![0.1, -0.2, 0.05, 0.3]]);
        let actions = rows_to_tensor(&[vec![0.7], vec![-3.0]]);
        let force = Tensor::<B, 1>::from_floats(
            [offset + scale * 0.7, offset - scale],
            &Default::default(),
        );
        let got = CartPole::<B>::dynamics(state.clone(), actions).expect("shapes");
        let want = physics(state, force);
        assert_eq!(floats(got.next_state), floats(want.next_state));
    }

    #[test]
    fn save_and_load_resume_bit_for_bit() {
        assert_save_load_continues_identically(|seed| env(3, seed));
    }
}
