//! The integration tests of rl-runner: one binary, so that the workspace compiles and links
//! the framework once for all of them.

mod common;
mod config_errors;
mod config_fuzz;
mod cross_backend;
mod determinism;
mod distributed;
mod export;
mod legged;
mod resume_exact;
mod robustness;
mod shipped_configs;
mod train_resume;
