//! Gymnasium MountainCarContinuous-v0, batched over `N` environments.

use std::collections::BTreeMap;

use burn::tensor::{Tensor, backend::Backend};
use rl_core::{ActionSpace, EnvSpec};

use crate::Result;
use crate::classic::{ClassicLayout, ObsColumn, column_names};
use crate::common::{DynamicsStep, EnvCore, POLICY, check_shape, column, impl_vec_env};
use crate::math::cos;

const MIN_ACTION: f32 = -1.0;
const MAX_ACTION: f32 = 1.0;
const MIN_POSITION: f32 = -1.2;
const MAX_POSITION: f32 = 0.6;
const MAX_SPEED: f32 = 0.07;
const GOAL_POSITION: f32 = 0.45;
const GOAL_VELOCITY: f32 = 0.0;
/// Acceleration per unit of force.
const POWER: f32 = 0.0015;
/// Reward for reaching the goal.
const GOAL_REWARD: f32 = 100.0;
/// Cost per squared unit of (raw) action.
const ACTION_COST: f32 = 0.1;
/// Gymnasium's dynamics have no time unit; one step counts as one second.
const STEP_DT: f32 = 1.0;
/// The state components, which are also the `policy` observation (Gymnasium's names).
const OBSERVATION: [ObsColumn; 2] = [
    ObsColumn {
        name: "position",
        unit: "m, the car's position along the x-axis",
    },
    ObsColumn {
        name: "velocity",
        unit: "m/step, the car's velocity (one step counts as 1 s)",
    },
];
/// Names of the state components (Gymnasium's layout).
const STATE_NAMES: [&str; 2] = column_names(OBSERVATION);
/// The columns' meaning: the state, and Gymnasium's force `clip(a, -1, 1)` on the car
/// (the dynamics multiply it by [`POWER`]).
pub(crate) const LAYOUT: ClassicLayout = ClassicLayout {
    observation: &OBSERVATION,
    action: "force",
    action_kind: "force",
    action_scale: 1.0,
};
const MAX_EPISODE_LENGTH: usize = 999;
/// Reset: position from `U(-0.6, -0.4)`, velocity exactly 0.
const RESET_LOW: [f32; 2] = [-0.6, 0.0];
const RESET_HIGH: [f32; 2] = [-0.4, 0.0];

/// `N` cars with Gymnasium MountainCarContinuous-v0 dynamics: an underpowered car in a
/// valley (height `sin(3 x)`) must swing back and forth to reach the flag on the right hill.
///
/// - State and `policy` observation: `[position, velocity]`, `[N, 2]`.
/// - Action: force `[N, 1]` in the box `[-1, 1]` (clamped by the environment for the
///   dynamics). `v += 0.0015 f - 0.0025 cos(3 x)`, clipped to `+-0.07`; `x += v`, clipped to
///   `[-1.2, 0.6]`; a car that hits the left wall (`x = -1.2` moving left) stops.
/// - Terminates when `x >= 0.45` and `v >= 0`. Reward `100 [terminated] - 0.1 a^2` with the
///   raw (unclamped) action `a`, as Gymnasium computes it. Time-out after 999 steps.
/// - Reset: position from `U(-0.6, -0.4)`, velocity 0.
#[derive(Debug)]
pub struct MountainCarContinuous<B: Backend> {
    core: EnvCore<B>,
}

impl<B: Backend> MountainCarContinuous<B> {
    /// `num_envs` cars on `device`, reset with the streams of `seed`.
    pub fn new(num_envs: usize, seed: u64, device: &B::Device) -> Result<Self> {
        let spec = EnvSpec {
            task: "mountain_car_continuous".into(),
            num_envs,
            obs_groups: BTreeMap::from([(POLICY.to_string(), 2)]),
            action_space: ActionSpace::Box {
                low: vec![MIN_ACTION],
                high: vec![MAX_ACTION],
            },
            max_episode_length: MAX_EPISODE_LENGTH,
            step_dt: STEP_DT,
        };
        let core = EnvCore::new(spec, seed, &RESET_LOW, &RESET_HIGH, device)?;
        Ok(Self { core })
    }

    /// One step of the dynamics without time limit or reset: `state` `[N, 2]` and
    /// `actions` `[N, 1]` give the next state, the rewards and the terminated flags.
    pub fn dynamics(
        state: Tensor<B, 2>,
        actions: Tensor<B, 2>,
    ) -> rl_core::Result<DynamicsStep<B>> {
        let [n, _] = state.dims();
        check_shape("mountain car state", state.dims(), [n, 2])?;
        check_shape("actions", actions.dims(), [n, 1])?;
        let position = column(&state, 0); // [N]
        let velocity = column(&state, 1); // [N]
        let action = column(&actions, 0); // [N]
        let force = action.clone().clamp(MIN_ACTION, MAX_ACTION); // [N]

        // Same order of operations as Gymnasium: v += (f power - 0.0025 cos(3 x)).
        let velocity = (velocity
            + (force.mul_scalar(POWER) - cos(position.clone().mul_scalar(3.0)).mul_scalar(0.0025)))
        .clamp(-MAX_SPEED, MAX_SPEED);
        let position = (position + velocity.clone()).clamp(MIN_POSITION, MAX_POSITION);
        // The left wall stops a car that runs into it.
        let at_wall = position
            .clone()
            .equal_elem(MIN_POSITION)
            .bool_and(velocity.clone().lower_elem(0.0)); // [N]
        let velocity = velocity.mask_fill(at_wall, 0.0);

        let terminated = position
            .clone()
            .greater_equal_elem(GOAL_POSITION)
            .bool_and(velocity.clone().greater_equal_elem(GOAL_VELOCITY)); // [N]
        // The action cost uses the raw action, as Gymnasium does.
        let rewards = terminated.clone().float().mul_scalar(GOAL_REWARD)
            - action.square().mul_scalar(ACTION_COST); // [N]
        Ok(DynamicsStep {
            next_state: Tensor::stack(vec![position, velocity], 1), // [N, 2]
            rewards,
            terminated,
        })
    }

    /// The `policy` observation of a state: the state itself, `[N, 2]`.
    pub fn observe(state: Tensor<B, 2>) -> Tensor<B, 2> {
        state
    }
}

impl_vec_env!(
    MountainCarContinuous,
    STATE_NAMES,
    LAYOUT,
    kernel::MountainCarContinuousKernel
);

/// [`MountainCarContinuous::dynamics`] and [`MountainCarContinuous::observe`] for one
/// environment, as parts of the step kernel (see `crate::cube`).
#[cfg(feature = "cube")]
mod kernel {
    use cubecl::prelude::*;

    use super::{
        ACTION_COST, GOAL_POSITION, GOAL_REWARD, GOAL_VELOCITY, MAX_ACTION, MAX_POSITION,
        MAX_SPEED, MIN_ACTION, MIN_POSITION, POWER,
    };
    use crate::cube::TaskKernel;
    use crate::cube::math::{clamp, cos};

    /// [`super::MountainCarContinuous`] in the step kernel.
    pub(crate) struct MountainCarContinuousKernel;

    #[cube]
    impl TaskKernel for MountainCarContinuousKernel {
        fn dynamics(state: &Array<f32>, action: f32, next: &mut Array<f32>) -> (f32, bool) {
            let position = state[0usize];
            let velocity = state[1usize];
            let force = clamp(action, MIN_ACTION, MAX_ACTION);

            // Same order of operations as Gymnasium: v += (f power - 0.0025 cos(3 x)).
            let velocity = clamp(
                velocity + (force * POWER - cos(position * 3.0f32) * 0.0025f32),
                -MAX_SPEED,
                MAX_SPEED,
            );
            let position = clamp(position + velocity, MIN_POSITION, MAX_POSITION);
            // The left wall stops a car that runs into it.
            let at_wall = position == MIN_POSITION && velocity < 0.0f32;
            let velocity = select(at_wall, 0.0f32, velocity);
            next[0usize] = position;
            next[1usize] = velocity;

            let terminated = position >= GOAL_POSITION && velocity >= GOAL_VELOCITY;
            // The action cost uses the raw action, as Gymnasium does.
            let reward = select(terminated, GOAL_REWARD, 0.0f32) - action * action * ACTION_COST;
            (reward, terminated)
        }

        fn observe(state: &Array<f32>, obs: &mut Array<f32>, at: usize) {
            obs[at] = state[0usize];
            obs[at + 1usize] = state[1usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClassicEnv;
    use crate::testing::{
        B, Fixture, assert_action_shape_errors, assert_classic_layout, assert_episodes,
        assert_save_load_continues_identically, assert_seeded_reset, assert_transitions, bools,
        floats, rows_to_tensor,
    };
    use rl_core::VecEnv;

    const FIXTURE: &str = include_str!("../tests/fixtures/mountain_car_continuous.json");

    fn env(num_envs: usize, seed: u64) -> MountainCarContinuous<B> {
        MountainCarContinuous::new(num_envs, seed, &Default::default()).expect("valid env")
    }

    #[test]
    fn dynamics_match_gymnasium() {
        assert_transitions(
            &Fixture::parse(FIXTURE),
            MountainCarContinuous::<B>::dynamics,
            MountainCarContinuous::<B>::observe,
        );
    }

    #[test]
    fn episodes_match_gymnasium() {
        assert_episodes(&Fixture::parse(FIXTURE), || env(1, 0), true);
    }

    #[test]
    fn force_is_clamped_but_the_cost_uses_the_raw_action() {
        let state = || rows_to_tensor(&[vec![-0.5, 0.01], vec![-0.5, 0.01]]);
        let t =
            MountainCarContinuous::<B>::dynamics(state(), rows_to_tensor(&[vec![3.0], vec![1.0]]))
                .expect("shapes are valid");
        let next = floats(t.next_state);
        assert_eq!(next[..2], next[2..], "a = 3 pushes as a = 1");
        let rewards = floats(t.rewards);
        assert!((rewards[0] + 0.9).abs() < 1e-6, "{rewards:?}");
        assert!((rewards[1] + 0.1).abs() < 1e-6, "{rewards:?}");
    }

    #[test]
    fn the_left_wall_stops_the_car() {
        let t = MountainCarContinuous::<B>::dynamics(
            rows_to_tensor(&[vec![-1.19, -0.05], vec![-1.1, -0.05]]),
            rows_to_tensor(&[vec![-1.0], vec![-1.0]]),
        )
        .expect("shapes are valid");
        let next = floats(t.next_state);
        assert_eq!(next[..2], [MIN_POSITION, 0.0], "stopped at the wall");
        assert!(
            next[2] > MIN_POSITION && next[3] < 0.0,
            "still rolling: {next:?}"
        );
    }

    #[test]
    fn time_out_after_999_steps_is_not_a_termination() {
        let mut env = env(2, 1);
        let actions = Tensor::zeros([2, 1], &Default::default());
        for step in 1..999 {
            // Without force the car never leaves the valley.
            let out = env.step(actions.clone()).expect("action shape");
            assert!(
                !bools(out.dones()).iter().any(|&d| d),
                "no episode ends at step {step}"
            );
        }
        // Step 999: env 0 reaches the goal (terminated and truncated).
        env.set_state(Some(&[0]), rows_to_tensor(&[vec![0.44, 0.03]]))
            .expect("state shape");
        let out = env
            .step(rows_to_tensor(&[vec![0.5], vec![0.0]]))
            .expect("action shape");
        assert_eq!(bools(out.terminated), vec![true, false]);
        assert_eq!(bools(out.time_outs), vec![false, true]);
        assert_eq!(floats(out.episode.lengths), vec![999.0, 999.0]);
        let rewards = floats(out.rewards);
        assert!((rewards[0] - 99.975).abs() < 1e-4, "{rewards:?}");
        assert_eq!(rewards[1], 0.0);
    }

    #[test]
    fn reset_is_seeded_and_within_bounds() {
        assert_seeded_reset(|seed| env(64, seed), &RESET_LOW, &RESET_HIGH);
    }

    #[test]
    fn actions_of_the_wrong_shape_are_an_error() {
        assert_action_shape_errors(&mut env(3, 0));
        assert!(MountainCarContinuous::<B>::new(0, 0, &Default::default()).is_err());
    }

    #[test]
    fn spec_describes_the_task() {
        let env = env(5, 0);
        let spec = env.spec();
        assert_eq!(spec.task, "mountain_car_continuous");
        assert_eq!(spec.num_envs, 5);
        assert_eq!(spec.obs_groups.get("policy"), Some(&2));
        assert_eq!(
            spec.action_space,
            ActionSpace::Box {
                low: vec![-1.0],
                high: vec![1.0]
            }
        );
        assert_eq!(spec.max_episode_length, 999);
        assert!((spec.step_dt - 1.0).abs() < 1e-9);
        assert_eq!(env.state_names(), ["position", "velocity"]);
        assert_eq!(
            env.observations().get("policy").expect("policy").dims(),
            [5, 2]
        );
    }

    #[test]
    fn layout_names_gymnasiums_columns_and_the_force() {
        assert_classic_layout(
            &env(2, 0),
            &["position", "velocity"],
            "force",
            (-1.0, 1.0),
            1.0,
        );
    }

    #[test]
    fn save_and_load_resume_bit_for_bit() {
        assert_save_load_continues_identically(|seed| env(3, seed));
    }
}
