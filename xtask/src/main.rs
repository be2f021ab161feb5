//! `cargo xtask`: the cross-gym command line. `train`, `play` and `rollout` run on the Burn
//! backend chosen with `--backend` among those compiled in (cargo features `ndarray`,
//! `flex`, `wgpu`, `cuda`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

mod distributed;
mod physics;

// Training allocates and frees the same large tensors every mini-batch; the system allocator
// hands them back to the kernel each time (page faults and zeroing on every reuse).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, Parser, Subcommand, ValueEnum};
use rl_runner::{BenchRequest, ConsoleMode, RolloutRequest, TrainRequest};
use tracing_subscriber::prelude::*;

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
    /// CPU, burn-ndarray.
    #[cfg(feature = "ndarray")]
    Ndarray,
    /// CPU, burn-flex (the default).
    #[cfg(feature = "flex")]
    Flex,
    /// GPU through wgpu (Vulkan, Metal, DX12).
    #[cfg(feature = "wgpu")]
    Wgpu,
    /// NVIDIA GPU through CUDA.
    #[cfg(feature = "cuda")]
    Cuda,
}

/// The backend flag that every command takes.
#[derive(Args)]
struct BackendArg {
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = default_backend())]
    backend: Backend,
}

/// The flags that override a run's config, for the commands that train.
#[derive(Args)]
struct ConfigOverrides {
    /// Seed of every random stream.
    #[arg(long)]
    seed: Option<u64>,
    /// Number of parallel environments (`env.num_envs`).
    #[arg(long)]
    num_envs: Option<usize>,
    /// Override a config value: `section.key=value`, the value in TOML syntax.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// Data-parallel training flags (`docs/distributed.md`).
#[derive(Args)]
struct ParallelArgs {
    /// Train with N data-parallel workers, each with its own `num_envs` environments, that
    /// average their gradients. Alone, it starts the N workers on this machine; with
    /// --rank and --master, this process is one worker of a run started by hand.
    #[arg(long, default_value_t = 1, value_name = "N")]
    world_size: usize,
    /// This worker's rank in 0..N, for a run whose workers are started by hand (on one
    /// machine or several); rank 0 writes the logs and checkpoints.
    #[arg(long)]
    rank: Option<usize>,
    /// HOST:PORT where rank 0 listens (rank 0 binds it; the others connect to it).
    #[arg(long, value_name = "HOST:PORT")]
    master: Option<String>,
    /// Seconds a worker waits for the others (to join, or to reach the same step) before
    /// the run stops with an error naming the one it waited for.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    dist_timeout: u64,
    /// GPU index of each worker, in rank order, cycled (`0,1,2,3` on a machine with four
    /// GPUs); without it every worker uses the backend's default device.
    #[arg(long, value_delimiter = ',', value_name = "INDEX,...")]
    devices: Vec<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// Train a policy; prints the run directory on the first line.
    Train {
        /// The TOML config (optional with --resume: the run's stored config is used).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        backend: BackendArg,
        #[command(flatten)]
        overrides: ConfigOverrides,
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
        /// Only the progress bar, no per-iteration summary.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        parallel: ParallelArgs,
    },
    /// Measure a task and config: simulation alone, end-to-end PPO (collection and update),
    /// the update's matrix FLOP rate beside the backend's matrix multiply, optionally the time
    /// to the return threshold, and memory. Prints a table, then one JSON object.
    Bench {
        /// The TOML config.
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        backend: BackendArg,
        #[command(flatten)]
        overrides: ConfigOverrides,
        /// Timed training iterations.
        #[arg(long, default_value_t = 20)]
        iterations: usize,
        /// Untimed training iterations first.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Steps per environment of the simulation-only phase.
        #[arg(long, default_value_t = 1000)]
        sim_steps: usize,
        /// Also train a fresh run to the return threshold and report its time and steps.
        #[arg(long)]
        solve: bool,
        /// The threshold of `Train/mean_reward` (default: `runner.stop_at_mean_reward`).
        #[arg(long, allow_hyphen_values = true)]
        threshold: Option<f64>,
        /// Iteration limit of `--solve`.
        #[arg(long, default_value_t = 300)]
        max_iterations: usize,
        /// Side of the square matrices of the matrix-multiply reference.
        #[arg(long, default_value_t = 2048)]
        matmul_size: usize,
        /// Also write the JSON object to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Run the deterministic (mean-action) policy of a checkpoint and print one JSON line
    /// with `mean_return` (and its `return_std`, `return_ci95`), `mean_episode_length`,
    /// `terminated_fraction`, `episodes` and `terms` (the mean of each of the task's
    /// per-episode terms, such as a legged task's `lin_vel_error`).
    ///
    /// What is counted: min(--num-envs, --episodes) environments or fewer, all reset
    /// together, each contributing its first k whole episodes (k = ceil(episodes /
    /// num-envs)), whether they end early or late; --episodes is rounded up to a multiple of
    /// the environments evaluated. Not the first N episodes to finish, which are the short
    /// ones (docs/play.md).
    Play {
        /// A checkpoint file or a run directory (its newest checkpoint).
        #[arg(long, required_unless_present = "onnx", conflicts_with = "onnx")]
        checkpoint: Option<PathBuf>,
        /// Run an exported `policy.onnx` (of `cargo xtask export`) instead, with tract, in
        /// the task of --config; observations and actions pass through the host as on a
        /// robot.
        #[arg(long, requires = "config")]
        onnx: Option<PathBuf>,
        /// The TOML config of the task the ONNX policy runs in (for example the run's
        /// `config.toml`); only with --onnx.
        #[arg(long, requires = "onnx")]
        config: Option<PathBuf>,
        /// Episodes to evaluate (at least; rounded up so that every environment evaluated
        /// contributes the same number).
        #[arg(long, default_value_t = 100)]
        episodes: usize,
        /// Most environments stepped in parallel (default: the run's); fewer are used when
        /// --episodes is smaller.
        #[arg(long)]
        num_envs: Option<usize>,
        /// Seed of the evaluation episodes (default: the run's).
        #[arg(long)]
        seed: Option<u64>,
        /// Also write environment 0's first episode to this animated GIF (side and top
        /// views, real time); for tasks with bodies to draw.
        #[arg(long, value_name = "FILE")]
        render: Option<PathBuf>,
        /// Override a value of the run's stored config for this evaluation:
        /// `section.key=value`, the value in TOML syntax (for example
        /// `--set env.terrain.proportions.smooth_slope=0.0` to put environment 0 on other
        /// ground). What the policy sees must keep its size.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Export the policy of a checkpoint for deployment: `policy.onnx` (opset 18; the
    /// observation normaliser folded in; the mean action clipped to the task's bounds, or
    /// the argmax and logits; a recurrent policy's state as inputs and outputs),
    /// `policy.safetensors`, `policy.json` (observation layout and scales, action scale and
    /// offset, the robot's joints and gains, control frequency) and `reference.json`. The
    /// graph is first run in tract on observations of the task and checked against the
    /// policy (1e-5); nothing is written if it differs. Prints one JSON line.
    Export {
        /// A checkpoint file or a run directory (its newest checkpoint).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Directory to write into (default: `exported/` in the run's directory).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        backend: BackendArg,
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
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Simulate one robot from a URDF or MJCF file with zero torques (or the given ones) and
    /// print one JSON line per step: `t`, `q`, `qd`, `energy`, and the root state of a
    /// floating base. The ground is the plane z = 0.
    SimTrace {
        /// The robot: a URDF (`.urdf`) or MJCF (`.xml`, `.mjcf`) file.
        #[arg(long, visible_alias = "urdf")]
        robot: PathBuf,
        /// Weld the root link to the world instead of letting it float (without it, a URDF
        /// floats and an MJCF floats when its top-level body has a free joint).
        #[arg(long)]
        fixed_base: bool,
        /// Initial joint positions, comma-separated, in the model's (breadth-first) order.
        #[arg(long, allow_hyphen_values = true)]
        q0: String,
        /// Initial joint velocities (default zero).
        #[arg(long, allow_hyphen_values = true)]
        qd0: Option<String>,
        /// Initial root position of a floating base.
        #[arg(long, allow_hyphen_values = true, default_value = "0,0,0")]
        root_pos: String,
        /// Initial root orientation of a floating base, a quaternion w,x,y,z.
        #[arg(long, allow_hyphen_values = true, default_value = "1,0,0,0")]
        root_quat: String,
        /// Time step (s).
        #[arg(long, default_value_t = 0.005, allow_hyphen_values = true)]
        dt: f64,
        /// Integration sub-steps per step.
        #[arg(long, default_value_t = 1)]
        substeps: usize,
        /// Number of steps.
        #[arg(long)]
        steps: usize,
        /// Joint torques: one line per step, one number per joint (commas or spaces).
        #[arg(long)]
        torques: Option<PathBuf>,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Read a robot description as the simulator does and print what it read: links and
    /// their masses, joints in the simulator's order with their limits, contact points,
    /// and every warning about what was approximated. With `--out`, also write the
    /// normalised description (fixed links merged, meshes reduced to primitives) as URDF.
    ImportRobot {
        /// The robot: a URDF (`.urdf`) or MJCF (`.xml`, `.mjcf`) file; for MJCF its
        /// keyframes and actuators are printed too.
        file: PathBuf,
        /// Where to write the normalised URDF.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Weld the root link to the world (without it, the base is as for `sim-trace`).
        #[arg(long)]
        fixed_base: bool,
    },
    /// Physics steps per second of the shipped quadruped (PD drives, targets changing every 4
    /// steps, dt 0.005 s) at each batch size; prints a line per size, then one JSON object.
    SimBench {
        /// Batch sizes, comma-separated.
        #[arg(long, default_value = "1024,4096")]
        num_envs: String,
        /// Timed steps per size.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
        steps: u64,
        /// Untimed steps first.
        #[arg(long, default_value_t = 10)]
        warmup: usize,
        #[command(flatten)]
        backend: BackendArg,
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
    // flex first: the fastest CPU backend here (docs/performance.md), and it repeats a run
    // bit for bit
    #[cfg(feature = "flex")]
    return Backend::Flex;
    #[cfg(all(not(feature = "flex"), feature = "ndarray"))]
    return Backend::Ndarray;
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
        with_backend_on!($backend, None::<usize>, |$device: $B| $body)
    };
}

/// [`with_backend`] on GPU `index` of a GPU backend (`None`: the default device; the CPU
/// backends have one device).
macro_rules! with_backend_on {
    ($backend:expr, $index:expr, |$device:ident: $B:ident| $body:expr) => {
        match $backend {
            #[cfg(feature = "ndarray")]
            Backend::Ndarray => {
                let _ = $index;
                type $B = Autodiff<burn::backend::NdArray>;
                let $device = Default::default();
                $body
            }
            #[cfg(feature = "flex")]
            Backend::Flex => {
                let _ = $index;
                type $B = Autodiff<burn::backend::Flex>;
                let $device = Default::default();
                $body
            }
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => {
                type $B = Autodiff<burn::backend::Wgpu>;
                let $device = match $index {
                    Some(i) => burn::backend::wgpu::WgpuDevice::DiscreteGpu(i),
                    None => Default::default(),
                };
                $body
            }
            #[cfg(feature = "cuda")]
            Backend::Cuda => {
                type $B = Autodiff<burn::backend::Cuda>;
                let $device = match $index {
                    Some(index) => burn::backend::cuda::CudaDevice { index },
                    None => Default::default(),
                };
                $body
            }
        }
    };
}

/// Writes `text` and a newline to `out`. A reader that has gone away (`| head -1` after the
/// run directory) is not an error: the run goes on and its files hold everything; any other
/// write error is.
fn write_line(out: &mut impl std::io::Write, text: &str) -> std::io::Result<()> {
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Prints one line of results on standard output (see [`write_line`]).
fn emit(text: impl std::fmt::Display) -> anyhow::Result<()> {
    write_line(&mut std::io::stdout().lock(), &text.to_string()).context("write to standard output")
}

fn train<B: AutodiffBackend>(
    request: &TrainRequest,
    device: &B::Device,
    comm: Option<Arc<dyn rl_core::Communicator>>,
) -> anyhow::Result<()> {
    let mut printed = Ok(());
    let on_start = |run_dir: &std::path::Path| {
        printed = emit(run_dir.display());
    };
    let summary = match comm {
        None => rl_runner::train::<B>(request, device, on_start)?,
        Some(comm) => {
            let rank = comm.rank();
            let summary = rl_runner::train_worker::<B>(request, device, comm, on_start)?;
            if rank != 0 {
                // Rank 0 prints the run's results.
                return Ok(());
            }
            summary
        }
    };
    printed?;
    let steps_per_s = summary.total_steps as f64 / summary.wall_s.max(1e-9);
    emit(serde_json::json!({
        "run_dir": summary.run_dir,
        "iterations": summary.iterations,
        "total_steps": summary.total_steps,
        "wall_s": summary.wall_s,
        "steps_per_s": steps_per_s.round(),
        "mean_reward": summary.mean_reward,
        "mean_episode_length": summary.mean_episode_length,
        "checkpoint": summary.checkpoint,
    }))
}

fn bench<B: AutodiffBackend>(
    request: &BenchRequest,
    json: Option<&std::path::Path>,
    device: &B::Device,
) -> anyhow::Result<()> {
    let report = rl_runner::bench::<B>(request, device)?;
    emit(bench_table(&report).trim_end())?;
    let text = serde_json::to_string(&report).context("serialise the report")?;
    if let Some(path) = json {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("create the directory of {}", path.display()))?;
        }
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("write {}", path.display()))?;
    }
    emit(text)
}

/// The report as a small table for people.
fn bench_table(r: &rl_runner::BenchReport) -> String {
    let t = &r.train;
    let mut rows = vec![
        format!(
            "{} ({}) on {}: {} envs x {} steps, seed {}",
            r.task, r.model, r.backend, r.num_envs, r.steps_per_env, r.seed
        ),
        format!(
            "  simulation only        {:>12.0} env steps/s",
            r.sim.env_steps_per_s
        ),
        format!(
            "  end-to-end PPO         {:>12.0} env steps/s ({} iterations after {} warm-up)",
            t.env_steps_per_s, t.iterations, t.warmup
        ),
        format!(
            "  per iteration          {:>12.1} ms collection, {:.1} ms update ({:.0}% of it; medians)",
            t.collect_s_per_iter * 1e3,
            t.update_s_per_iter * 1e3,
            100.0 * t.update_share
        ),
        format!(
            "  update                 {:>12.1} GFLOP/s ({:.2} GFLOP per update)",
            t.update_gflops, t.update_gflop_per_iter
        ),
        format!(
            "  matmul {:>4}^3          {:>12.1} GFLOP/s (update at {:.0}% of it)",
            r.matmul.size,
            r.matmul.gflops,
            100.0 * r.update_fraction_of_matmul
        ),
    ];
    if let (Some(sim), Some(c), Some(u), Some(step), Some(mini_batch)) = (
        r.sim.launches_per_env_step,
        t.collection_launches_per_iter,
        t.update_launches_per_iter,
        t.launches_per_policy_step,
        t.update_launches_per_mini_batch,
    ) {
        rows.push(format!(
            "  kernel launches        {sim:>12.1} per env step (simulation only)"
        ));
        rows.push(format!(
            "                         {:>12} per iteration: {c} collection ({step:.1} per policy step), {u} update ({mini_batch:.1} per mini-batch, {} mini-batches)",
            c + u,
            t.mini_batches_per_update
        ));
    }
    if let Some(s) = &r.solve {
        rows.push(format!(
            "  to mean return >= {}   {} in {} iterations, {} env steps, {:.1} s ({:.0} env steps/s)",
            s.threshold,
            if s.reached { "reached" } else { "NOT reached" },
            s.iterations,
            s.env_steps,
            s.wall_s,
            s.env_steps_per_s
        ));
        let e = &s.evaluation;
        rows.push(format!(
            "  final policy, deterministic  return {:.1} +- {:.1} (95%) over {} episodes, {:.0}% terminated",
            e.mean_return,
            e.return_ci95,
            e.episodes,
            100.0 * e.terminated_fraction
        ));
    }
    let mb = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0} MiB"));
    rows.push(format!(
        "  resident memory        peak {}, first timed iteration {}, last {}",
        mb(r.memory.peak_rss_mb),
        mb(r.memory.rss_first_mb),
        mb(r.memory.rss_last_mb)
    ));
    rows.join("\n") + "\n"
}

fn export<B: AutodiffBackend>(
    checkpoint: &std::path::Path,
    out: &std::path::Path,
    device: &B::Device,
) -> anyhow::Result<()> {
    let report = rl_runner::export::<B>(checkpoint, out, device)?;
    eprintln!(
        "checked the graph in tract on {} observations: largest action difference {:.2e}",
        report.checked_samples, report.max_action_error
    );
    for file in &report.files {
        eprintln!("wrote {file}");
    }
    emit(serde_json::to_string(&report).context("serialise the report")?)
}

/// What `play` runs: a checkpoint's policy, or an exported graph in a config's task.
enum PlaySource {
    Checkpoint(PathBuf),
    Onnx { onnx: PathBuf, config: PathBuf },
}

fn play<B: AutodiffBackend>(
    policy: &PlaySource,
    episodes: usize,
    num_envs: Option<usize>,
    seed: Option<u64>,
    options: &rl_runner::PlayOptions,
    device: &B::Device,
) -> anyhow::Result<()> {
    let result = match policy {
        PlaySource::Checkpoint(checkpoint) => {
            rl_runner::play::<B>(checkpoint, episodes, num_envs, seed, options, device)?
        }
        PlaySource::Onnx { onnx, config } => rl_runner::play_onnx::<B::InnerBackend>(
            onnx, config, episodes, num_envs, seed, options, device,
        )?,
    };
    if let Some(gif) = &result.render {
        eprintln!("wrote {gif}");
    }
    let e = &result.evaluation;
    for (title, groups) in [
        ("terrain level", &e.by_terrain_level),
        ("terrain kind", &e.by_terrain_kind),
    ] {
        if groups.is_empty() {
            continue;
        }
        eprintln!(
            "{title:>16} {:>9} {:>7} {:>14} {:>14}",
            "episodes", "falls", "lin_vel_error", "ang_vel_error"
        );
        for g in groups {
            let error = |name: &str| g.errors.get(name).map_or(f64::NAN, |v| *v);
            eprintln!(
                "{:>16} {:>9} {:>6.1}% {:>14.3} {:>14.3}",
                g.group,
                g.episodes,
                100.0 * g.terminated_fraction,
                error("lin_vel_error"),
                error("ang_vel_error")
            );
        }
    }
    emit(serde_json::to_string(&result).context("serialise the result")?)
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
    let cli = Cli::parse();
    // Each layer has its own filter: RUST_LOG (default `warn`) picks what is printed, while
    // the launch counter sees CubeCL's launch spans only, and only in the commands that
    // report launches (a span per launch costs a little).
    let printed =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let counts_launches = matches!(
        cli.command,
        Command::Bench { .. } | Command::SimBench { .. }
    );
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(printed),
        )
        .with(counts_launches.then(rl_runner::launch_layer))
        .init();
    // Run on a worker of the global thread pool that the CPU backends' kernels use, so
    // that their parallel matrix products and element-wise blocks are joined from a worker
    // (the calling thread takes part in the work) rather than handed over from outside the
    // pool and waited for (a sleep and a wake-up per operation).
    rayon::scope(|_| run(cli))
}

fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Train {
            config,
            backend: BackendArg { backend },
            overrides:
                ConfigOverrides {
                    seed,
                    num_envs,
                    set,
                },
            max_iterations,
            log_dir,
            run_name,
            resume,
            quiet,
            parallel,
        } => {
            let role = match distributed::Role::from_flags(
                parallel.world_size,
                parallel.rank,
                parallel.master.clone(),
            ) {
                Ok(role) => role,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            };
            if let distributed::Role::Launcher { world_size } = role {
                // Checked once here rather than by every worker.
                let check = TrainRequest {
                    config: config.clone(),
                    overrides: set.clone(),
                    seed,
                    num_envs,
                    max_iterations,
                    ..TrainRequest::default()
                };
                if resume.is_none()
                    && let Err(e) = check.resolve_config(None)
                {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(if e.is_usage() { 2 } else { 1 });
                }
                let signals = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let seen = signals.clone();
                if let Err(e) = ctrlc::set_handler(move || {
                    seen.fetch_add(1, Ordering::SeqCst);
                }) {
                    eprintln!("error: install the SIGINT/SIGTERM handler: {e}");
                    return ExitCode::FAILURE;
                }
                return match distributed::launch(world_size, &signals) {
                    Ok(code) => code,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        ExitCode::FAILURE
                    }
                };
            }
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
            let timeout = std::time::Duration::from_secs(parallel.dist_timeout.max(1));
            let device_index = (!parallel.devices.is_empty())
                .then(|| parallel.devices[role.rank() % parallel.devices.len()]);
            // (The launcher returned above.)
            let comm = match role {
                distributed::Role::Worker {
                    rank,
                    world_size,
                    master,
                } => distributed::join(rank, world_size, &master, timeout).map(Some),
                _ => Ok(None),
            };
            match comm {
                Ok(comm) => with_backend_on!(backend, device_index, |device: B| train::<B>(
                    &request, &device, comm
                )),
                Err(e) => Err(e),
            }
        }
        Command::Bench {
            config,
            backend: BackendArg { backend },
            overrides:
                ConfigOverrides {
                    seed,
                    num_envs,
                    set,
                },
            iterations,
            warmup,
            sim_steps,
            solve,
            threshold,
            max_iterations,
            matmul_size,
            json,
        } => {
            let train = TrainRequest {
                config: Some(config.clone()),
                overrides: set,
                seed,
                num_envs,
                ..TrainRequest::default()
            };
            match train.resolve_config(None) {
                Ok(resolved) => {
                    let request = BenchRequest {
                        config: resolved,
                        config_origin: config.display().to_string(),
                        backend: format!("{backend:?}").to_lowercase(),
                        sim_steps,
                        iterations,
                        warmup,
                        solve,
                        threshold,
                        solve_max_iterations: max_iterations,
                        matmul_size,
                    };
                    with_backend!(backend, |device: B| bench::<B>(
                        &request,
                        json.as_deref(),
                        &device
                    ))
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Play {
            checkpoint,
            onnx,
            config,
            episodes,
            num_envs,
            seed,
            render,
            set,
            backend: BackendArg { backend },
        } => {
            let options = rl_runner::PlayOptions {
                render,
                overrides: set,
                ..Default::default()
            };
            let policy = match (checkpoint, onnx, config) {
                (_, Some(onnx), Some(config)) => PlaySource::Onnx { onnx, config },
                (Some(checkpoint), _, _) => PlaySource::Checkpoint(checkpoint),
                // clap requires one of them (and --config with --onnx).
                _ => PlaySource::Checkpoint(PathBuf::new()),
            };
            with_backend!(backend, |device: B| play::<B>(
                &policy, episodes, num_envs, seed, &options, &device
            ))
        }
        Command::Export {
            checkpoint,
            out,
            backend: BackendArg { backend },
        } => {
            let out = out.unwrap_or_else(|| rl_runner::default_export_dir(&checkpoint));
            with_backend!(backend, |device: B| export::<B>(&checkpoint, &out, &device))
        }
        Command::Rollout {
            task,
            state,
            actions,
            seed,
            backend: BackendArg { backend },
        } => with_backend!(backend, |device: B| rollout::<B>(
            &task, &state, &actions, seed, &device
        )),
        Command::SimTrace {
            robot,
            fixed_base,
            q0,
            qd0,
            root_pos,
            root_quat,
            dt,
            substeps,
            steps,
            torques,
            backend: BackendArg { backend },
        } => {
            let args = physics::TraceArgs {
                robot: &robot,
                fixed_base,
                q0: &q0,
                qd0: qd0.as_deref(),
                root_pos: &root_pos,
                root_quat: &root_quat,
                dt,
                substeps,
                steps,
                torques: torques.as_deref(),
            };
            with_backend!(backend, |device: B| physics::sim_trace::<
                <B as AutodiffBackend>::InnerBackend,
            >(&args, &device))
        }
        Command::ImportRobot {
            file,
            out,
            fixed_base,
        } => physics::import_robot(&file, out.as_deref(), fixed_base),
        Command::SimBench {
            num_envs,
            steps,
            warmup,
            backend: BackendArg { backend },
        } => match physics::parse_sizes("--num-envs", &num_envs) {
            Ok(sizes) => {
                let name = format!("{backend:?}").to_lowercase();
                with_backend!(backend, |device: B| physics::sim_bench::<
                    <B as AutodiffBackend>::InnerBackend,
                >(
                    &sizes,
                    usize::try_from(steps).unwrap_or(usize::MAX),
                    warmup,
                    &name,
                    &device
                ))
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // Configuration and usage errors exit with 2, an interrupted run with 130,
            // everything else with 1.
            if let Some(rl_core::CollectiveError::Address { .. }) = e.downcast_ref() {
                return ExitCode::from(2);
            }
            match e.downcast_ref::<rl_runner::Error>() {
                Some(e) if e.is_usage() => ExitCode::from(2),
                Some(rl_runner::Error::Interrupted { .. }) => ExitCode::from(EXIT_INTERRUPTED),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use burn::tensor::Tensor;
    use rl_runner::LaunchCounter;
    use tracing_subscriber::prelude::*;

    type Wgpu = burn::backend::Wgpu;

    #[test]
    fn counter_counts_the_launches_of_a_small_tensor_op_on_wgpu() {
        // Global, as in `main`: Burn's fusion launches from its own device thread
        let subscriber = tracing_subscriber::registry().with(rl_runner::launch_layer());
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        let device = Default::default();
        let mut counter = LaunchCounter::<Wgpu>::new(&device)
            .expect("the device")
            .expect("wgpu launches CubeCL kernels");
        let x = Tensor::<Wgpu, 1>::ones([256], &device);
        let double_sum = || {
            let sum = (x.clone() * 2.0).sum().into_data();
            assert_eq!(sum.to_vec::<f32>().expect("f32"), [512.0]);
        };
        // The first time, autotune also launches the candidate reductions it times
        double_sum();
        counter.start().expect("the device");
        assert_eq!(counter.count().expect("the device"), 0);
        double_sum();
        let n = counter.count().expect("the device");
        assert!((1..10).contains(&n), "{n} launches for a product and a sum");
    }
}

#[cfg(test)]
mod output_tests {
    use super::write_line;

    /// A standard output whose reader has gone, or whose disk is full.
    struct Closed(std::io::ErrorKind);

    impl std::io::Write for Closed {
        fn write(&mut self, _buf: &[u8]) -> std::io::Result<usize> {
            Err(self.0.into())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_reader_that_left_is_not_an_error_but_a_failed_write_is() {
        let mut out = Vec::new();
        write_line(&mut out, "logs/run").expect("write");
        assert_eq!(out, b"logs/run\n");
        // `xtask train | head -1`: the run must go on after its first line was read.
        assert!(write_line(&mut Closed(std::io::ErrorKind::BrokenPipe), "{}").is_ok());
        assert!(write_line(&mut Closed(std::io::ErrorKind::StorageFull), "{}").is_err());
    }
}
