//! The action manager (IsaacLab's `ActionManager` with one joint-position action term):
//! the policy's action becomes the PD drives' joint targets, once per policy step.

use burn::tensor::{Bool, Tensor, backend::Backend};

use super::choose;
use super::config::ActionsConfig;
use crate::common::check_shape;

/// Joint-position actions: `target = scale * clip(a) + q_default` (legged_gym's
/// `clip_actions` and `action_scale`), and the actions the rewards and observations read.
#[derive(Clone, Debug)]
pub struct ActionManager<B: Backend> {
    clip: f64,
    scale: f64,
    /// Default joint positions `[1, J]`.
    default_joint_pos: Tensor<B, 2>,
    /// The actions `[N, J]` of this step, after clipping (legged_gym `actions`).
    pub action: Tensor<B, 2>,
    /// The actions `[N, J]` of the step before (legged_gym `last_actions`); the environment
    /// copies `action` here once the rewards of a step are in.
    pub prev_action: Tensor<B, 2>,
}

impl<B: Backend> ActionManager<B> {
    /// Actions for `n` environments of a robot whose default pose is `default_joint_pos`
    /// `[1, J]`, zero to start with.
    pub fn new(cfg: &ActionsConfig, default_joint_pos: Tensor<B, 2>, n: usize) -> Self {
        let nj = default_joint_pos.dims()[1];
        let zeros = Tensor::zeros([n, nj], &default_joint_pos.device());
        Self {
            clip: cfg.clip,
            scale: cfg.scale,
            default_joint_pos,
            action: zeros.clone(),
            prev_action: zeros,
        }
    }

    /// Number of joints the actions drive.
    pub fn num_joints(&self) -> usize {
        self.default_joint_pos.dims()[1]
    }

    /// Default joint positions `[1, J]`.
    pub fn default_joint_pos(&self) -> Tensor<B, 2> {
        self.default_joint_pos.clone()
    }

    /// Processes the policy's `actions` `[N, J]`: clipped (kept as [`Self::action`]), scaled
    /// and offset by the default pose. Returns the joint position targets `[N, J]`.
    ///
    /// # Errors
    /// A shape error for actions that are not `[N, J]`.
    pub fn compute(
        &mut self,
        actions: Tensor<B, 2>,
        device: &B::Device,
    ) -> rl_core::Result<Tensor<B, 2>> {
        let [n, nj] = self.action.dims();
        check_shape("actions", actions.dims(), [n, nj])?;
        let actions = actions.to_device(device).clamp(-self.clip, self.clip);
        let target = actions
            .clone()
            .mul_scalar(self.scale)
            .add(self.default_joint_pos.clone().expand([n, nj]));
        self.action = actions;
        Ok(target)
    }

    /// Zeroes the actions of the environments in `mask` `[N]`.
    pub fn reset(&mut self, mask: &Tensor<B, 1, Bool>) {
        self.action = choose(mask, self.action.clone(), self.action.zeros_like());
        self.prev_action = choose(
            mask,
            self.prev_action.clone(),
            self.prev_action.zeros_like(),
        );
    }
}
