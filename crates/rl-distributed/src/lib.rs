//! Data-parallel training across processes and machines: the workers of a run meet at rank
//! 0's address (torchrun's `MASTER_ADDR:MASTER_PORT`), and [`TcpGroup`] carries their
//! collective calls ([`rl_core::Communicator`]) over TCP.
//!
//! Rank 0 is the hub: in an all-reduce every worker sends its buffer to rank 0, which sums
//! them once, in rank order, and sends the same bits back to all, so that workers that
//! apply the same update keep bit-identical weights. Gradients of the policies this
//! framework trains (up to a few million parameters) cross loopback or a LAN in
//! milliseconds; a ring would spread the traffic for larger models and many machines.
//!
//! Every wait has a timeout, and a worker that leaves (its process killed, its connection
//! closed) is seen at once: the call fails with an error naming the worker, and rank 0
//! tells the others, who fail with the same name instead of waiting.

mod frame;
mod group;

pub use group::{DEFAULT_TIMEOUT, TcpGroup};

#[cfg(test)]
mod tests;
