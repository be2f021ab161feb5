//! Gymnasium CartPole-v1 exactly (two discrete pushes), batched over `N` environments.

use std::collections::BTreeMap;

use burn::tensor::{Tensor, backend::Backend};
use rl_core::{ActionSpace, EnvSpec};

use crate::Result;
use crate::cartpole::{
    FORCE_MAG, MAX_EPISODE_LENGTH, OBSERVATION, RESET_HIGH, RESET_LOW, STATE_NAMES, TAU,
};
use crate::classic::ClassicLayout;
use crate::common::{
    DynamicsStep, EnvCore, POLICY, check_shape, column, discrete_index, impl_vec_env,
};

/// Number of discrete actions: push left (0) or right (1).
const NUM_ACTIONS: usize = 2;
/// The columns' meaning: the cart-pole's state, and the index of the push (0: -10 N,
/// 1: +10 N).
pub(crate) const LAYOUT: ClassicLayout = ClassicLayout {
    observation: &OBSERVATION,
    action: "push",
    action_kind: "discrete",
    action_scale: 1.0,
};

/// `N` cart-poles exactly as Gymnasium CartPole-v1: the physics of [`crate::CartPole`]
/// (explicit Euler, `tau = 0.02`) with a push of `+-10` N.
///
/// - State and `policy` observation: `[x, x_dot, theta, theta_dot]`, `[N, 4]`.
/// - Action: [`ActionSpace::Discrete`] with `n = 2`, an `[N, 1]` float tensor holding the
///   index: 1 pushes right (`F = +10`), 0 pushes left (`F = -10`). Each value is rounded to
///   the nearest index (halfway values to the even one) and clamped into `0..2`, so 0.4
///   acts as 0, 1.6 as 1, -3 as 0 and 7 as 1.
/// - Reward 1.0 on every step, including the terminating one (return = length).
/// - Terminates when `|x| > 2.4` or `|theta| > 12 deg`; time-out after 500 steps.
/// - Reset: every state component from `U(-0.05, 0.05)`.
#[derive(Debug)]
pub struct CartPoleDiscrete<B: Backend> {
    core: EnvCore<B>,
}

impl<B: Backend> CartPoleDiscrete<B> {
    /// `num_envs` cart-poles on `device`, reset with the streams of `seed`.
    pub fn new(num_envs: usize, seed: u64, device: &B::Device) -> Result<Self> {
        let spec = EnvSpec {
            task: "cartpole_discrete".into(),
            num_envs,
            obs_groups: BTreeMap::from([(POLICY.to_string(), 4)]),
            action_space: ActionSpace::Discrete { n: NUM_ACTIONS },
            max_episode_length: MAX_EPISODE_LENGTH,
            step_dt: TAU,
        };
        let core = EnvCore::new(spec, seed, &RESET_LOW, &RESET_HIGH, device)?;
        Ok(Self { core })
    }

    /// One step of the physics without time limit or reset: `state` `[N, 4]` and the action
    /// indices `[N, 1]` give the next state, the rewards and the terminated flags.
    pub fn dynamics(
        state: Tensor<B, 2>,
        actions: Tensor<B, 2>,
    ) -> rl_core::Result<DynamicsStep<B>> {
        let [n, _] = state.dims();
        check_shape("cartpole state", state.dims(), [n, 4])?;
        check_shape("actions", actions.dims(), [n, 1])?;
        // Index 1 -> +10 N, index 0 -> -10 N.
        let force = discrete_index(column(&actions, 0), NUM_ACTIONS)
            .mul_scalar(2.0 * FORCE_MAG)
            .sub_scalar(FORCE_MAG); // [N]
        Ok(crate::cartpole::physics(state, force))
    }

    /// The `policy` observation of a state: the state itself, `[N, 4]`.
    pub fn observe(state: Tensor<B, 2>) -> Tensor<B, 2> {
        state
    }
}

impl_vec_env!(
    CartPoleDiscrete,
    STATE_NAMES,
    LAYOUT,
    kernel::CartPoleDiscreteKernel
);

/// [`CartPoleDiscrete::dynamics`] and [`CartPoleDiscrete::observe`] for one environment, as
/// parts of the step kernel (see `crate::cube`).
#[cfg(feature = "cube")]
mod kernel {
    use cubecl::prelude::*;

    use super::NUM_ACTIONS;
    use crate::cartpole::FORCE_MAG;
    use crate::cartpole::kernel::physics;
    use crate::cube::TaskKernel;
    use crate::cube::math::discrete_index;

    const TWICE_FORCE_MAG: f32 = 2.0 * FORCE_MAG;

    /// [`super::CartPoleDiscrete`] in the step kernel.
    pub(crate) struct CartPoleDiscreteKernel;

    #[cube]
    impl TaskKernel for CartPoleDiscreteKernel {
        fn dynamics(state: &Array<f32>, action: f32, next: &mut Array<f32>) -> (f32, bool) {
            // Index 1 -> +10 N, index 0 -> -10 N.
            let force = discrete_index(action, NUM_ACTIONS) * TWICE_FORCE_MAG - FORCE_MAG;
            physics(state, force, next)
        }

        fn observe(state: &Array<f32>, obs: &mut Array<f32>, at: usize) {
            for c in 0..4usize {
                obs[at + c] = state[c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClassicEnv;
    use crate::testing::{
        B, Fixture, assert_action_shape_errors, assert_classic_layout, assert_discrete_actions,
        assert_episodes, assert_save_load_continues_identically, assert_seeded_reset,
        assert_transitions, bools, floats, rows_to_tensor,
    };
    use rl_core::VecEnv;

    const FIXTURE: &str = include_str!("../tests/fixtures/cartpole_discrete.json");

    fn env(num_envs: usize, seed: u64) -> CartPoleDiscrete<B> {
        CartPoleDiscrete::new(num_envs, seed, &Default::default()).expect("valid env")
    }

    #[test]
    fn dynamics_match_gymnasium() {
        assert_transitions(
            &Fixture::parse(FIXTURE),
            CartPoleDiscrete::<B>::dynamics,
            CartPoleDiscrete::<B>::observe,
        );
    }

    #[test]
    fn episodes_match_gymnasium() {
        assert_episodes(&Fixture::parse(FIXTURE), || env(1, 0), true);
    }

    #[test]
    fn action_indices_are_rounded_and_clamped() {
        assert_discrete_actions(
            CartPoleDiscrete::<B>::dynamics,
            &[0.01, -0.02, 0.03, 0.04],
            2,
        );
    }

    #[test]
    fn index_one_pushes_right_with_ten_newtons() {
        // From rest the cart accelerates with F / (m_cart + m_pole) minus the pole's share.
        let t = CartPoleDiscrete::<B>::dynamics(
            rows_to_tensor(&[vec![0.0; 4], vec![0.0; 4]]),
            rows_to_tensor(&[vec![1.0], vec![0.0]]),
        )
        .expect("shapes are valid");
        let next = floats(t.next_state);
        let x_acc = 10.0 / 1.1 - 0.05 * (-10.0 / 1.1 / (0.5 * (4.0 / 3.0 - 0.1 / 1.1))) / 1.1;
        assert!((next[1] - 0.02 * x_acc).abs() < 1e-6, "{next:?}");
        assert_eq!(next[5], -next[1], "index 0 pushes left as hard");
    }

    #[test]
    fn time_out_after_500_steps_is_not_a_termination() {
        let mut env = env(2, 1);
        let upright = || rows_to_tensor(&[vec![0.0; 4], vec![0.0; 4]]);
        let actions = rows_to_tensor(&[vec![1.0], vec![0.0]]);
        for step in 1..500 {
            // Back upright before every push, so no episode can terminate.
            env.set_state(None, upright()).expect("state shape");
            let out = env.step(actions.clone()).expect("action shape");
            assert!(
                !bools(out.dones()).iter().any(|&d| d),
                "no episode ends at step {step}"
            );
        }
        // Step 500: env 0 falls (terminated and truncated), env 1 only reaches the limit.
        env.set_state(
            None,
            rows_to_tensor(&[vec![0.0, 0.0, 0.205, 1.0], vec![0.0; 4]]),
        )
        .expect("state shape");
        let out = env.step(actions).expect("action shape");
        assert_eq!(bools(out.terminated), vec![true, false]);
        assert_eq!(bools(out.time_outs), vec![false, true]);
        assert_eq!(floats(out.episode.lengths), vec![500.0, 500.0]);
        assert_eq!(floats(out.episode.returns), vec![500.0, 500.0]);
    }

    #[test]
    fn reset_is_seeded_and_within_bounds() {
        assert_seeded_reset(|seed| env(64, seed), &RESET_LOW, &RESET_HIGH);
    }

    #[test]
    fn actions_of_the_wrong_shape_are_an_error() {
        assert_action_shape_errors(&mut env(3, 0));
        assert!(CartPoleDiscrete::<B>::new(0, 0, &Default::default()).is_err());
    }

    #[test]
    fn spec_describes_the_task() {
        let env = env(5, 0);
        let spec = env.spec();
        assert_eq!(spec.task, "cartpole_discrete");
        assert_eq!(spec.num_envs, 5);
        assert_eq!(spec.obs_groups.get("policy"), Some(&4));
        assert_eq!(spec.action_space, ActionSpace::Discrete { n: 2 });
        assert_eq!(spec.num_actions(), 1);
        assert_eq!(spec.max_episode_length, 500);
        assert!((spec.step_dt - 0.02).abs() < 1e-9);
        assert_eq!(env.state_names(), ["x", "x_dot", "theta", "theta_dot"]);
        assert_eq!(
            env.observations().get("policy").expect("policy").dims(),
            [5, 4]
        );
    }

    #[test]
    fn layout_names_gymnasiums_columns_and_the_push_index() {
        assert_classic_layout(
            &env(2, 0),
            &["x", "x_dot", "theta", "theta_dot"],
            "discrete",
            (0.0, 1.0),
            1.0,
        );
    }

    #[test]
    fn save_and_load_resume_bit_for_bit() {
        assert_save_load_continues_identically(|seed| env(3, seed));
    }
}
