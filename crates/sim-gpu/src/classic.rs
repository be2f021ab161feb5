//! The classic-control tasks' access to their internal state.

use burn::tensor::{Tensor, backend::Backend};
use rl_core::VecEnv;

use crate::Result;

/// A batch of classic-control environments whose whole physical state is one tensor
/// `[N, K]` in Gymnasium's layout, which can be read and set for chosen environments (for
/// debugging, tests and validation against Gymnasium).
///
/// Layouts: cart-pole `[x, x_dot, theta, theta_dot]`, pendulum `[theta, theta_dot]`,
/// acrobot `[theta1, theta2, theta1_dot, theta2_dot]`, mountain car `[position, velocity]`.
pub trait ClassicEnv<B: Backend>: VecEnv<B> {
    /// Names of the `K` state components, in order.
    fn state_names(&self) -> &'static [&'static str];

    /// The state of every environment, `[N, K]`.
    fn state(&self) -> Tensor<B, 2>;

    /// The state each environment reached on the last step, before the auto-reset,
    /// `[N, K]`: the terminal (or timed-out) state for the environments that finished, the
    /// same as [`ClassicEnv::state`] for the others.
    fn final_state(&self) -> Tensor<B, 2>;

    /// Puts the environments `env_ids` (every environment when `None`) into the states given
    /// by the rows of `states` (`[len(env_ids), K]`, or `[N, K]` for all). Episode counters
    /// (time limit, return) are kept; observations follow the new state.
    ///
    /// Errors on a wrong shape, an index out of range or an index given twice.
    fn set_state(&mut self, env_ids: Option<&[usize]>, states: Tensor<B, 2>) -> Result<()>;
}
