//! The classic-control tasks' access to their internal state, and what their observation
//! and action columns mean.

use burn::tensor::{Tensor, backend::Backend};
use rl_core::{EnvLayout, EnvSpec, ObsGroupLayout, ObsTermLayout, VecEnv};

use crate::Result;
use crate::common::POLICY;

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

/// One column of a classic task's `policy` observation: its name, as Gymnasium documents
/// it, and its unit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObsColumn {
    /// The column's name (`theta_dot`).
    pub(crate) name: &'static str,
    /// What the value is, in which units (`"rad/s"`).
    pub(crate) unit: &'static str,
}

/// What a classic task's observation and action columns mean: declared once per task, it
/// gives the task's [`rl_core::VecEnv::layout`] and the names `env.observe` reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClassicLayout {
    /// The `policy` observation's columns, in order.
    pub(crate) observation: &'static [ObsColumn],
    /// The action column's name (`force`).
    pub(crate) action: &'static str,
    /// What the action is: `force`, `torque` or `discrete` (see [`rl_core::ActionLayout`]).
    pub(crate) action_kind: &'static str,
    /// The command is `action_scale * clip(a)` (the force magnitude of a cart-pole whose
    /// dynamics multiply the clipped action by it; 1 for a discrete action).
    pub(crate) action_scale: f32,
}

/// The names of `columns`, in order (for a task whose state is its observation).
pub(crate) const fn column_names<const K: usize>(columns: [ObsColumn; K]) -> [&'static str; K] {
    let mut out = [""; K];
    let mut i = 0;
    while i < K {
        out[i] = columns[i].name;
        i += 1;
    }
    out
}

impl ClassicLayout {
    /// The names of the observation columns, in order.
    pub(crate) fn observation_names(&self) -> Vec<&'static str> {
        self.observation.iter().map(|c| c.name).collect()
    }

    /// The layout of a task with this meaning and the spec `spec`: the `policy` group as one
    /// term of scale 1 per column, and one action column within the action space's bounds.
    pub(crate) fn env_layout(&self, spec: &EnvSpec) -> EnvLayout {
        let mut layout = EnvLayout::from_spec(spec);
        let terms = self
            .observation
            .iter()
            .enumerate()
            .map(|(start, c)| ObsTermLayout {
                name: c.name.to_string(),
                start,
                size: 1,
                scale: vec![1.0],
                clip: None,
                unit: c.unit.to_string(),
            })
            .collect();
        layout
            .observations
            .insert(POLICY.to_string(), ObsGroupLayout { terms, clip: None });
        let actions = &mut layout.actions;
        let a = actions.low.len();
        actions.kind = self.action_kind.to_string();
        actions.names = vec![self.action.to_string(); a];
        actions.scale = vec![self.action_scale; a];
        layout
    }
}
