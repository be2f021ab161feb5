//! A manager-based legged locomotion task (IsaacLab style, legged_gym's terms), batched.
//!
//! The task is assembled from small terms that read one [`terms::TermContext`] per policy
//! step; a manager weights and sums them. This module holds, so far:
//!
//! - [`terms`]: the reward terms (unweighted, per environment), the termination terms, their
//!   registries by name with legged_gym's default weights, and the feet air-time update.

pub mod terms;
