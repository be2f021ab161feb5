//! Gymnasium Acrobot-v1, batched over `N` environments.

use std::collections::BTreeMap;

use burn::tensor::{Tensor, backend::Backend};
use rl_core::{ActionSpace, EnvSpec};

use crate::Result;
use crate::classic::{ClassicLayout, ObsColumn};
use crate::common::{
    DynamicsStep, EnvCore, POLICY, check_shape, column, discrete_index, impl_vec_env,
};
use crate::math::{cos, sin, sin_cos};

/// Integration time step, in seconds (one RK4 step per environment step).
const DT: f32 = 0.2;
const LINK_LENGTH_1: f32 = 1.0;
const LINK_MASS_1: f32 = 1.0;
const LINK_MASS_2: f32 = 1.0;
/// Position of each link's centre of mass along the link.
const LINK_COM_POS_1: f32 = 0.5;
const LINK_COM_POS_2: f32 = 0.5;
/// Moment of inertia of both links.
const LINK_MOI: f32 = 1.0;
const GRAVITY: f32 = 9.8;
/// pi rounded to f32: it lies just above the real pi, so for an f32 `x`, `x >= PI` is the
/// real `x > pi`.
const PI: f32 = std::f32::consts::PI;
const TWO_PI: f32 = (2.0 * std::f64::consts::PI) as f32;
const MAX_VEL_1: f32 = (4.0 * std::f64::consts::PI) as f32;
const MAX_VEL_2: f32 = (9.0 * std::f64::consts::PI) as f32;
/// Number of discrete actions: torque -1, 0 or +1.
const NUM_ACTIONS: usize = 3;
/// Names of the state components (Gymnasium's layout).
const STATE_NAMES: [&str; 4] = ["theta1", "theta2", "theta1_dot", "theta2_dot"];
/// The columns' meaning: the `policy` observation, and the index of the torque on the joint
/// between the links (`index - 1` N m).
pub(crate) const LAYOUT: ClassicLayout = ClassicLayout {
    observation: &[
        ObsColumn {
            name: "cos_theta1",
            unit: "cos(theta1), theta1 the first link's angle from hanging down (rad)",
        },
        ObsColumn {
            name: "sin_theta1",
            unit: "sin(theta1), theta1 the first link's angle from hanging down (rad)",
        },
        ObsColumn {
            name: "cos_theta2",
            unit: "cos(theta2), theta2 the second link's angle relative to the first (rad)",
        },
        ObsColumn {
            name: "sin_theta2",
            unit: "sin(theta2), theta2 the second link's angle relative to the first (rad)",
        },
        ObsColumn {
            name: "theta1_dot",
            unit: "rad/s, the first link's angular velocity",
        },
        ObsColumn {
            name: "theta2_dot",
            unit: "rad/s, the second link's angular velocity relative to the first",
        },
    ],
    action: "torque",
    action_kind: "discrete",
    action_scale: 1.0,
};
const MAX_EPISODE_LENGTH: usize = 500;
const RESET_LOW: [f32; 4] = [-0.1; 4];
const RESET_HIGH: [f32; 4] = [0.1; 4];

/// `N` acrobots with Gymnasium Acrobot-v1 dynamics: two links hanging from a fixed joint,
/// the torque acting on the joint between them; the book's equations of motion (Sutton and
/// Barto), integrated with one fourth-order Runge-Kutta step of 0.2 s with the torque held.
///
/// - State: `[theta1, theta2, theta1_dot, theta2_dot]`, `[N, 4]`; `theta1 = 0` hangs down,
///   `theta2` is relative to the first link. After each step the angles are wrapped into
///   `[-pi, pi]` and the velocities clipped to `+-4 pi` and `+-9 pi`.
/// - `policy` observation: `[cos theta1, sin theta1, cos theta2, sin theta2, theta1_dot,
///   theta2_dot]`, `[N, 6]`.
/// - Action: [`ActionSpace::Discrete`] with `n = 3`, an `[N, 1]` float tensor holding the
///   index; the torque is `index - 1` (0: -1, 1: 0, 2: +1). Each value is rounded to the
///   nearest index (halfway values to the even one) and clamped into `0..3`, so 0.4 acts as
///   0, 1.6 as 2, -3 as 0 and 7 as 2.
/// - Terminates when the free end is above the line: `-cos theta1 - cos(theta1 + theta2)
///   > 1`. Reward -1 per step, 0 on the terminating step. Time-out after 500 steps.
/// - Reset: every state component from `U(-0.1, 0.1)`.
#[derive(Debug)]
pub struct Acrobot<B: Backend> {
    core: EnvCore<B>,
}

impl<B: Backend> Acrobot<B> {
    /// `num_envs` acrobots on `device`, reset with the streams of `seed`.
    pub fn new(num_envs: usize, seed: u64, device: &B::Device) -> Result<Self> {
        let spec = EnvSpec {
            task: "acrobot".into(),
            num_envs,
            obs_groups: BTreeMap::from([(POLICY.to_string(), 6)]),
            action_space: ActionSpace::Discrete { n: NUM_ACTIONS },
            max_episode_length: MAX_EPISODE_LENGTH,
            step_dt: DT,
        };
        let core = EnvCore::new(spec, seed, &RESET_LOW, &RESET_HIGH, device)?;
        Ok(Self { core })
    }

    /// One step of the dynamics without time limit or reset: `state` `[N, 4]` and the action
    /// indices `[N, 1]` give the next state, the rewards and the terminated flags.
    pub fn dynamics(
        state: Tensor<B, 2>,
        actions: Tensor<B, 2>,
    ) -> rl_core::Result<DynamicsStep<B>> {
        let [n, _] = state.dims();
        check_shape("acrobot state", state.dims(), [n, 4])?;
        check_shape("actions", actions.dims(), [n, 1])?;
        let torque = discrete_index(column(&actions, 0), NUM_ACTIONS).sub_scalar(1.0); // [N]

        // One RK4 step over [0, dt] with the torque held (Gymnasium's `rk4`).
        let k1 = derivatives(state.clone(), &torque); // [N, 4]
        let k2 = derivatives(state.clone() + k1.clone().mul_scalar(DT / 2.0), &torque);
        let k3 = derivatives(state.clone() + k2.clone().mul_scalar(DT / 2.0), &torque);
        let k4 = derivatives(state.clone() + k3.clone().mul_scalar(DT), &torque);
        // [N, 4]
        let slope = k1 + k2.mul_scalar(2.0) + k3.mul_scalar(2.0) + k4;
        let next = state + slope.mul_scalar(DT / 6.0);

        let theta1 = wrap_angle(column(&next, 0));
        let theta2 = wrap_angle(column(&next, 1));
        let theta1_dot = column(&next, 2).clamp(-MAX_VEL_1, MAX_VEL_1);
        let theta2_dot = column(&next, 3).clamp(-MAX_VEL_2, MAX_VEL_2);

        // Height of the free end above the pivot, in link lengths (negative below it).
        let height = cos(theta1.clone()).neg() - cos(theta1.clone() + theta2.clone()); // [N]
        let terminated = height.greater_elem(1.0); // [N]
        // -1 per step, 0 on the terminal step.
        let rewards = terminated.clone().float().sub_scalar(1.0); // [N]
        Ok(DynamicsStep {
            next_state: Tensor::stack(vec![theta1, theta2, theta1_dot, theta2_dot], 1), // [N, 4]
            rewards,
            terminated,
        })
    }

    /// The `policy` observation of a state: `[cos theta1, sin theta1, cos theta2,
    /// sin theta2, theta1_dot, theta2_dot]`, `[N, 6]`.
    pub fn observe(state: Tensor<B, 2>) -> Tensor<B, 2> {
        let [theta1, theta2, theta1_dot, theta2_dot] = [0, 1, 2, 3].map(|j| column(&state, j));
        let (sin1, cos1) = sin_cos(theta1);
        let (sin2, cos2) = sin_cos(theta2);
        Tensor::stack(vec![cos1, sin1, cos2, sin2, theta1_dot, theta2_dot], 1)
    }
}

impl_vec_env!(Acrobot, STATE_NAMES, LAYOUT, kernel::AcrobotKernel);

/// Time derivative of the state `[N, 4]` under `torque` `[N]` (Gymnasium's `_dsdt`, the
/// book's equations): `[theta1_dot, theta2_dot, theta1_acc, theta2_acc]`, `[N, 4]`.
///
/// Note: Gymnasium writes `cos(theta - pi / 2)`; we use the equal `sin(theta)`, which is what
/// its float64 value rounds to (subtracting an f32 `pi / 2` would lose precision).
fn derivatives<B: Backend>(state: Tensor<B, 2>, torque: &Tensor<B, 1>) -> Tensor<B, 2> {
    const M1: f32 = LINK_MASS_1;
    const M2: f32 = LINK_MASS_2;
    const L1: f32 = LINK_LENGTH_1;
    const LC1: f32 = LINK_COM_POS_1;
    const LC2: f32 = LINK_COM_POS_2;
    const I1: f32 = LINK_MOI;
    const I2: f32 = LINK_MOI;
    let [theta1, theta2, dtheta1, dtheta2] = [0, 1, 2, 3].map(|j| column(&state, j)); // [N] each
    let (sin2, cos2) = sin_cos(theta2.clone());

    let d1 = cos2
        .clone()
        .mul_scalar(M2 * 2.0 * L1 * LC2)
        .add_scalar(M1 * LC1 * LC1 + M2 * (L1 * L1 + LC2 * LC2) + I1 + I2);
    let d2 = cos2
        .mul_scalar(M2 * L1 * LC2)
        .add_scalar(M2 * LC2 * LC2 + I2);
    let phi2 = sin(theta1.clone() + theta2).mul_scalar(M2 * LC2 * GRAVITY);
    let phi1 = dtheta2
        .clone()
        .square()
        .mul(sin2.clone())
        .mul_scalar(-M2 * L1 * LC2)
        - dtheta2
            .clone()
            .mul(dtheta1.clone())
            .mul(sin2.clone())
            .mul_scalar(2.0 * M2 * L1 * LC2)
        + sin(theta1).mul_scalar((M1 * LC1 + M2 * L1) * GRAVITY)
        + phi2.clone();
    let ddtheta2 = (torque.clone() + d2.clone().div(d1.clone()).mul(phi1.clone())
        - dtheta1.clone().square().mul(sin2).mul_scalar(M2 * L1 * LC2)
        - phi2)
        .div(
            d2.clone()
                .square()
                .div(d1.clone())
                .neg()
                .add_scalar(M2 * LC2 * LC2 + I2),
        );
    let ddtheta1 = (d2.mul(ddtheta2.clone()) + phi1).div(d1).neg();
    Tensor::stack(vec![dtheta1, dtheta2, ddtheta1, ddtheta2], 1) // [N, 4]
}

/// Gymnasium's `wrap(x, -pi, pi)` of an angle `[N]`: `x > pi` loses whole turns until
/// `x <= pi`, `x < -pi` gains whole turns until `x >= -pi`, and `x` in the closed interval
/// `[-pi, pi]` is left alone (unlike a modulo, which would map `pi` to `-pi`).
///
/// Note: the f32 `PI` lies just above the real pi, so an f32 `x == PI` is above pi and wraps
/// to `-PI`, as Gymnasium's float64 test `x > pi` does; likewise `x == -PI` wraps to `PI`.
fn wrap_angle<B: Backend>(x: Tensor<B, 1>) -> Tensor<B, 1> {
    let above = x.clone().greater_equal_elem(PI).float(); // [N]
    let below = x.clone().lower_equal_elem(-PI).float(); // [N]
    // Turns to take off (x > pi) or add (x < -pi): at least one on the boundary.
    let off = x
        .clone()
        .sub_scalar(PI)
        .div_scalar(TWO_PI)
        .ceil()
        .clamp_min(0.0)
        .max_pair(above);
    let on = x
        .clone()
        .neg()
        .sub_scalar(PI)
        .div_scalar(TWO_PI)
        .ceil()
        .clamp_min(0.0)
        .max_pair(below);
    x - (off - on).mul_scalar(TWO_PI)
}

/// [`Acrobot::dynamics`] (its RK4 step included) and [`Acrobot::observe`] for one
/// environment, as parts of the step kernel (see `crate::cube`).
#[cfg(feature = "cube")]
mod kernel {
    use cubecl::prelude::*;

    use super::{
        DT, GRAVITY, LINK_COM_POS_1, LINK_COM_POS_2, LINK_LENGTH_1, LINK_MASS_1, LINK_MASS_2,
        LINK_MOI, MAX_VEL_1, MAX_VEL_2, NUM_ACTIONS, PI, TWO_PI,
    };
    use crate::cube::TaskKernel;
    use crate::cube::math::{clamp, cos, discrete_index, sin, sin_cos};

    const HALF_DT: f32 = DT / 2.0;
    const SIXTH_DT: f32 = DT / 6.0;
    // The constant factors of `super::derivatives`, computed as it computes them.
    const M1: f32 = LINK_MASS_1;
    const M2: f32 = LINK_MASS_2;
    const L1: f32 = LINK_LENGTH_1;
    const LC1: f32 = LINK_COM_POS_1;
    const LC2: f32 = LINK_COM_POS_2;
    const I1: f32 = LINK_MOI;
    const I2: f32 = LINK_MOI;
    const D1_COS: f32 = M2 * 2.0 * L1 * LC2;
    const D1_CONST: f32 = M1 * LC1 * LC1 + M2 * (L1 * L1 + LC2 * LC2) + I1 + I2;
    const D2_COS: f32 = M2 * L1 * LC2;
    const D2_CONST: f32 = M2 * LC2 * LC2 + I2;
    const PHI2_SIN: f32 = M2 * LC2 * GRAVITY;
    const PHI1_SIN: f32 = (M1 * LC1 + M2 * L1) * GRAVITY;
    const CORIOLIS: f32 = -M2 * L1 * LC2;
    const CORIOLIS_2: f32 = 2.0 * M2 * L1 * LC2;

    /// [`super::Acrobot`] in the step kernel.
    pub(crate) struct AcrobotKernel;

    #[cube]
    impl TaskKernel for AcrobotKernel {
        fn dynamics(state: &Array<f32>, action: f32, next: &mut Array<f32>) -> (f32, bool) {
            let torque = discrete_index(action, NUM_ACTIONS) - 1.0f32;
            let s0 = state[0usize];
            let s1 = state[1usize];
            let s2 = state[2usize];
            let s3 = state[3usize];

            // One RK4 step over [0, dt] with the torque held (Gymnasium's `rk4`).
            let (a0, a1, a2, a3) = derivatives(s0, s1, s2, s3, torque);
            let (b0, b1, b2, b3) = derivatives(
                s0 + a0 * HALF_DT,
                s1 + a1 * HALF_DT,
                s2 + a2 * HALF_DT,
                s3 + a3 * HALF_DT,
                torque,
            );
            let (c0, c1, c2, c3) = derivatives(
                s0 + b0 * HALF_DT,
                s1 + b1 * HALF_DT,
                s2 + b2 * HALF_DT,
                s3 + b3 * HALF_DT,
                torque,
            );
            let (d0, d1, d2, d3) = derivatives(
                s0 + c0 * DT,
                s1 + c1 * DT,
                s2 + c2 * DT,
                s3 + c3 * DT,
                torque,
            );
            let theta1 = wrap_angle(s0 + (a0 + b0 * 2.0f32 + c0 * 2.0f32 + d0) * SIXTH_DT);
            let theta2 = wrap_angle(s1 + (a1 + b1 * 2.0f32 + c1 * 2.0f32 + d1) * SIXTH_DT);
            let theta1_dot = s2 + (a2 + b2 * 2.0f32 + c2 * 2.0f32 + d2) * SIXTH_DT;
            let theta2_dot = s3 + (a3 + b3 * 2.0f32 + c3 * 2.0f32 + d3) * SIXTH_DT;
            next[0usize] = theta1;
            next[1usize] = theta2;
            next[2usize] = clamp(theta1_dot, -MAX_VEL_1, MAX_VEL_1);
            next[3usize] = clamp(theta2_dot, -MAX_VEL_2, MAX_VEL_2);

            // Height of the free end above the pivot, in link lengths (negative below it).
            let height = -cos(theta1) - cos(theta1 + theta2);
            let terminated = height > 1.0f32;
            // -1 per step, 0 on the terminal step.
            (select(terminated, 0.0f32, -1.0f32), terminated)
        }

        fn observe(state: &Array<f32>, obs: &mut Array<f32>, at: usize) {
            let (sin1, cos1) = sin_cos(state[0usize]);
            let (sin2, cos2) = sin_cos(state[1usize]);
            obs[at] = cos1;
            obs[at + 1usize] = sin1;
            obs[at + 2usize] = cos2;
            obs[at + 3usize] = sin2;
            obs[at + 4usize] = state[2usize];
            obs[at + 5usize] = state[3usize];
        }
    }

    /// [`super::derivatives`] for one environment: `(theta1_dot, theta2_dot, theta1_acc,
    /// theta2_acc)`.
    #[cube]
    fn derivatives(
        theta1: f32,
        theta2: f32,
        dtheta1: f32,
        dtheta2: f32,
        torque: f32,
    ) -> (f32, f32, f32, f32) {
        let (sin2, cos2) = sin_cos(theta2);
        let d1 = cos2 * D1_COS + D1_CONST;
        let d2 = cos2 * D2_COS + D2_CONST;
        let phi2 = sin(theta1 + theta2) * PHI2_SIN;
        let phi1 = dtheta2 * dtheta2 * sin2 * CORIOLIS - dtheta2 * dtheta1 * sin2 * CORIOLIS_2
            + sin(theta1) * PHI1_SIN
            + phi2;
        let ddtheta2 = (torque + d2 / d1 * phi1 - dtheta1 * dtheta1 * sin2 * D2_COS - phi2)
            / (-(d2 * d2 / d1) + D2_CONST);
        let ddtheta1 = -((d2 * ddtheta2 + phi1) / d1);
        (dtheta1, dtheta2, ddtheta1, ddtheta2)
    }

    /// [`super::wrap_angle`] for one angle.
    #[cube]
    fn wrap_angle(x: f32) -> f32 {
        let above = select(x >= PI, 1.0f32, 0.0f32);
        let below = select(x <= -PI, 1.0f32, 0.0f32);
        // Turns to take off (x > pi) or add (x < -pi): at least one on the boundary.
        let off = f32::max(f32::max(((x - PI) / TWO_PI).ceil(), 0.0f32), above);
        let on = f32::max(f32::max(((-x - PI) / TWO_PI).ceil(), 0.0f32), below);
        x - (off - on) * TWO_PI
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

    const FIXTURE: &str = include_str!("../tests/fixtures/acrobot.json");

    fn env(num_envs: usize, seed: u64) -> Acrobot<B> {
        Acrobot::new(num_envs, seed, &Default::default()).expect("valid env")
    }

    #[test]
    fn dynamics_match_gymnasium() {
        assert_transitions(
            &Fixture::parse(FIXTURE),
            Acrobot::<B>::dynamics,
            Acrobot::<B>::observe,
        );
    }

    #[test]
    fn episodes_match_gymnasium() {
        assert_episodes(&Fixture::parse(FIXTURE), || env(1, 0), true);
    }

    #[test]
    fn action_indices_are_rounded_and_clamped() {
        assert_discrete_actions(Acrobot::<B>::dynamics, &[0.05, -0.05, 0.1, -0.1], 3);
    }

    #[test]
    fn angles_wrap_as_gymnasium() {
        let wrap = |values: &[f32]| {
            let x = Tensor::<B, 1>::from_floats(values, &Default::default());
            floats(wrap_angle(x))
        };
        let below_pi = PI - 1e-6;
        // Inside [-pi, pi] nothing changes; f32 PI is above the real pi, so it wraps.
        assert_eq!(
            wrap(&[0.0, 1.0, -3.0, below_pi, -below_pi]),
            [0.0, 1.0, -3.0, below_pi, -below_pi]
        );
        assert_eq!(wrap(&[PI, -PI]), [-PI, PI]);
        let got = wrap(&[4.0, -4.0, 10.0, -10.0]);
        let want = [
            4.0 - TWO_PI,
            TWO_PI - 4.0,
            10.0 - 2.0 * TWO_PI,
            2.0 * TWO_PI - 10.0,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn hanging_at_rest_without_torque_stays_at_rest() {
        let t = Acrobot::<B>::dynamics(
            rows_to_tensor(&[vec![0.0; 4]]),
            rows_to_tensor(&[vec![1.0]]),
        )
        .expect("shapes are valid");
        assert_eq!(floats(t.next_state), vec![0.0; 4]);
        assert_eq!(floats(t.rewards), vec![-1.0]);
        assert_eq!(bools(t.terminated), vec![false]);
        assert_eq!(
            floats(Acrobot::<B>::observe(rows_to_tensor(&[vec![0.0; 4]]))),
            vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn time_out_after_500_steps_is_not_a_termination() {
        let mut env = env(2, 1);
        // Hanging at rest with no torque stays exactly at rest.
        env.set_state(None, Tensor::zeros([2, 4], &Default::default()))
            .expect("state shape");
        let actions = rows_to_tensor(&[vec![1.0], vec![1.0]]);
        for step in 1..500 {
            let out = env.step(actions.clone()).expect("action shape");
            assert!(
                !bools(out.dones()).iter().any(|&d| d),
                "no episode ends at step {step}"
            );
            assert_eq!(floats(out.rewards), vec![-1.0, -1.0]);
        }
        // Step 500: env 0 swings above the line (terminated and truncated).
        env.set_state(
            None,
            rows_to_tensor(&[vec![2.0, 0.5, 0.0, 0.0], vec![0.0; 4]]),
        )
        .expect("state shape");
        let out = env.step(actions).expect("action shape");
        assert_eq!(bools(out.terminated), vec![true, false]);
        assert_eq!(bools(out.time_outs), vec![false, true]);
        assert_eq!(floats(out.rewards), vec![0.0, -1.0]);
        assert_eq!(floats(out.episode.lengths), vec![500.0, 500.0]);
        assert_eq!(floats(out.episode.returns), vec![-499.0, -500.0]);
    }

    #[test]
    fn reset_is_seeded_and_within_bounds() {
        assert_seeded_reset(|seed| env(64, seed), &RESET_LOW, &RESET_HIGH);
    }

    #[test]
    fn actions_of_the_wrong_shape_are_an_error() {
        assert_action_shape_errors(&mut env(3, 0));
        assert!(Acrobot::<B>::new(0, 0, &Default::default()).is_err());
    }

    #[test]
    fn spec_describes_the_task() {
        let env = env(5, 0);
        let spec = env.spec();
        assert_eq!(spec.task, "acrobot");
        assert_eq!(spec.num_envs, 5);
        assert_eq!(spec.obs_groups.get("policy"), Some(&6));
        assert_eq!(spec.action_space, ActionSpace::Discrete { n: 3 });
        assert_eq!(spec.num_actions(), 1);
        assert_eq!(spec.max_episode_length, 500);
        assert!((spec.step_dt - 0.2).abs() < 1e-9);
        assert_eq!(
            env.state_names(),
            ["theta1", "theta2", "theta1_dot", "theta2_dot"]
        );
        assert_eq!(
            env.observations().get("policy").expect("policy").dims(),
            [5, 6]
        );
    }

    #[test]
    fn layout_names_gymnasiums_columns_and_the_torque_index() {
        assert_classic_layout(
            &env(2, 0),
            &[
                "cos_theta1",
                "sin_theta1",
                "cos_theta2",
                "sin_theta2",
                "theta1_dot",
                "theta2_dot",
            ],
            "discrete",
            (0.0, 2.0),
            1.0,
        );
    }

    #[test]
    fn save_and_load_resume_bit_for_bit() {
        assert_save_load_continues_identically(|seed| env(3, seed));
    }
}
