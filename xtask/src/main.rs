//! `cargo xtask`: the cross-gym command line. `train`, `play` and `rollout` run on the Burn
//! backend chosen with `--backend` among those compiled in (cargo features `ndarray`,
//! `flex`, `wgpu`, `cuda`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, Subcommand, ValueEnum};
use rl_runner::{ConsoleMode, RolloutRequest, TrainRequest};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "cross-gym: massively parallel RL training in Rust",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Burn backends compiled into this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// CPU, burn-ndarray (the default).
    #[cfg(feature = "ndarray")]
    Ndarray,
    /// CPU, burn-flex.
    #[cfg(feature = "flex")]
    Flex,
    /// GPU through wgpu (Vulkan, Metal, DX12).
    #[cfg(feature = "wgpu")]
    Wgpu,
    /// NVIDIA GPU through CUDA.
    #[cfg(feature = "cuda")]
    Cuda,
}

#[derive(Subcommand)]
enum Command {
    /// Train a policy; prints the run directory on the first line.
    Train {
        /// The TOML config (optional with --resume: the run's stored config is used).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Backend to run on.
        #[arg(long, value_enum, default_value_t = default_backend())]
        backend: Backend,
        /// Seed of every random stream.
        #[arg(long)]
        seed: Option<u64>,
        /// Number of parallel environments (`env.num_envs`).
        #[arg(long)]
        num_envs: Option<usize>,
        /// Total iterations (`runner.max_iterations`).
        #[arg(long)]
        max_iterations: Option<usize>,
        /// Root directory of runs (`logger.log_dir`).
        #[arg(long)]
        log_dir: Option<PathBuf>,
        /// Name of this run's directory (`logger.run_name`).
        #[arg(long)]
        run_name: Option<String>,
        /// Continue a run: its directory or one of its checkpoint files.
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Override a config value: `section.key=value`, the value in TOML syntax.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Only the progress bar, no per-iteration summary.
        #[arg(long)]
        quiet: bool,
    },
    /// Run the deterministic (mean-action) policy of a checkpoint and print one JSON line
    /// with `mean_return` and `mean_episode_length`.
    Play {
        /// A checkpoint file or a run directory (its newest checkpoint).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Episodes to evaluate.
        #[arg(long, default_value_t = 100)]
        episodes: usize,
        /// Parallel environments (default: the run's).
        #[arg(long)]
        num_envs: Option<usize>,
        /// Seed of the evaluation episodes (default: the run's).
        #[arg(long)]
        seed: Option<u64>,
        /// Backend to run on.
        #[arg(long, value_enum, default_value_t = default_backend())]
        backend: Backend,
    },
    /// Drive a classic-control task from a given internal state with given actions; prints
    /// one JSON line per step and environment: `step`, `env`, `obs`, `reward`, `terminated`,
    /// `truncated`, `state` (and `reset_state` when the episode ended on that step).
    Rollout {
        /// Task name: cartpole, cartpole_discrete, pendulum, acrobot, mountain_car_continuous.
        #[arg(long)]
        task: String,
        /// Initial internal state as JSON: `[x, x_dot, theta, theta_dot]` for one environment
        /// or a list of such lists for a batch; `@FILE` reads it from a file.
        #[arg(long, allow_hyphen_values = true)]
        state: String,
        /// JSON file of actions: a list with one action per step (a number, or a list for a
        /// multi-dimensional action); for a batch, a list of such lists, one per environment.
        /// `-` reads standard input.
        #[arg(long)]
        actions: PathBuf,
        /// Seed of the reset noise after an episode ends.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Backend to run on.
        #[arg(long, value_enum, default_value_t = default_backend())]
        backend: Backend,
    },
}

/// Reads `path` (`-` for standard input) as text, naming it in the error.
fn read_input(path: &std::path::Path) -> Result<String, rl_runner::Error> {
    let read = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|e| rl_runner::Error::Input {
        origin: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })
}

fn rollout<B: AutodiffBackend>(
    task: &str,
    state: &str,
    actions: &std::path::Path,
    seed: u64,
    device: &B::Device,
) -> anyhow::Result<()> {
    let (state_text, state_origin) = match state.strip_prefix('@') {
        Some(file) => (read_input(file.as_ref())?, file.to_string()),
        None => (state.to_string(), "--state".to_string()),
    };
    let actions_text = read_input(actions)?;
    let actions_origin = actions.display().to_string();
    let request = RolloutRequest::parse(
        task,
        &state_text,
        &state_origin,
        &actions_text,
        &actions_origin,
        seed,
    )?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    rl_runner::rollout::<B::InnerBackend>(&request, device, &mut out)?;
    std::io::Write::flush(&mut out).context("write to standard output")?;
    Ok(())
}

fn default_backend() -> Backend {
    #[cfg(feature = "ndarray")]
    return Backend::Ndarray;
    #[cfg(all(not(feature = "ndarray"), feature = "flex"))]
    return Backend::Flex;
    #[cfg(all(not(feature = "ndarray"), not(feature = "flex"), feature = "wgpu"))]
    return Backend::Wgpu;
    #[cfg(all(
        not(feature = "ndarray"),
        not(feature = "flex"),
        not(feature = "wgpu"),
        feature = "cuda"
    ))]
    return Backend::Cuda;
}

/// Calls `$body` with the type alias `B` bound to the chosen autodiff backend and `device`.
macro_rules! with_backend {
    ($backend:expr, |$device:ident: $B:ident| $body:expr) => {
        match $backend {
            #[cfg(feature = "ndarray")]
            Backend::Ndarray => {
                type $B = Autodiff<burn::backend::NdArray>;
                let $device = Default::default();
                $body
            }
            #[cfg(feature = "flex")]
            Backend::Flex => {
                type $B = Autodiff<burn::backend::Flex>;
                let $device = Default::default();
                $body
            }
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => {
                type $B = Autodiff<burn::backend::Wgpu>;
                let $device = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            Backend::Cuda => {
                type $B = Autodiff<burn::backend::Cuda>;
                let $device = Default::default();
                $body
            }
        }
    };
}

fn train<B: AutodiffBackend>(request: &TrainRequest, device: &B::Device) -> anyhow::Result<()> {
    let summary = rl_runner::train::<B>(request, device, |run_dir| {
        println!("{}", run_dir.display());
    })?;
    let steps_per_s = summary.total_steps as f64 / summary.wall_s.max(1e-9);
    println!(
        "{}",
        serde_json::json!({
            "run_dir": summary.run_dir,
            "iterations": summary.iterations,
            "total_steps": summary.total_steps,
            "wall_s": summary.wall_s,
            "steps_per_s": steps_per_s.round(),
            "mean_reward": summary.mean_reward,
            "mean_episode_length": summary.mean_episode_length,
            "checkpoint": summary.checkpoint,
        })
    );
    Ok(())
}

fn play<B: AutodiffBackend>(
    checkpoint: &std::path::Path,
    episodes: usize,
    num_envs: Option<usize>,
    seed: Option<u64>,
    device: &B::Device,
) -> anyhow::Result<()> {
    let result = rl_runner::play::<B>(checkpoint, episodes, num_envs, seed, device)?;
    println!(
        "{}",
        serde_json::to_string(&result).context("serialise the result")?
    );
    Ok(())
}

/// Exit status of a run stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

/// Installs the SIGINT / SIGTERM handler of `train`: the first signal sets the returned flag,
/// so that training stops after the current iteration with a checkpoint; a second one exits
/// at once (checkpoints are written atomically, so the last one stays intact).
fn install_stop_handler() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let seen = flag.clone();
    ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            eprintln!("error: interrupted again: stopping at once");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        eprintln!(
            "interrupted: finishing the current iteration and writing a checkpoint (interrupt again to stop at once)"
        );
    })
    .context("install the SIGINT/SIGTERM handler")?;
    Ok(flag)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train {
            config,
            backend,
            seed,
            num_envs,
            max_iterations,
            log_dir,
            run_name,
            resume,
            set,
            quiet,
        } => {
            let stop = match install_stop_handler() {
                Ok(flag) => flag,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            let request = TrainRequest {
                stop: Some(stop),
                config,
                resume,
                overrides: set,
                seed,
                num_envs,
                max_iterations,
                log_dir,
                run_name,
                console: Some(if quiet {
                    ConsoleMode::Quiet
                } else {
                    ConsoleMode::Full
                }),
            };
            with_backend!(backend, |device: B| train::<B>(&request, &device))
        }
        Command::Play {
            checkpoint,
            episodes,
            num_envs,
            seed,
            backend,
        } => with_backend!(backend, |device: B| play::<B>(
            &checkpoint,
            episodes,
            num_envs,
            seed,
            &device
        )),
        Command::Rollout {
            task,
            state,
            actions,
            seed,
            backend,
        } => with_backend!(backend, |device: B| rollout::<B>(
            &task, &state, &actions, seed, &device
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // Configuration and usage errors exit with 2, an interrupted run with 130,
            // everything else with 1.
            match e.downcast_ref::<rl_runner::Error>() {
                Some(e) if e.is_usage() => ExitCode::from(2),
                Some(rl_runner::Error::Interrupted { .. }) => ExitCode::from(EXIT_INTERRUPTED),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
