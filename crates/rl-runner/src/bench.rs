//! The benchmark behind `cargo xtask bench`: simulation alone, end-to-end PPO split into
//! collection and update, the update's achieved matrix FLOP rate beside the machine's, time to
//! a return threshold, resident memory, and on the CubeCL backends (wgpu, cuda) the kernels
//! launched per environment step, policy step, iteration and mini-batch.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, ElementConversion, Tensor};
use rl_core::ActionSpace;
use rl_logger::{IterationRecord, Logger, MetricWriter, tags};
use serde::Serialize;

use crate::algorithms::policy_from_bytes;
use crate::launches::LaunchCounter;
use crate::play::{EvalPlan, Evaluation, evaluate, evaluation_env};
use crate::{Error, OnPolicyRunner, TrainConfig};

type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// What to measure. The config is the resolved training config (file, `--set`, flags).
#[derive(Debug, Clone)]
pub struct BenchRequest {
    /// The training config; `env`, `policy`, `algorithm` and the seed are used as they are.
    pub config: TrainConfig,
    /// Where the config came from, for the report.
    pub config_origin: String,
    /// The backend's name, for the report.
    pub backend: String,
    /// Environment steps per environment of the simulation-only phase (after 10 warm-up steps).
    pub sim_steps: usize,
    /// Training iterations that are timed (after `warmup` untimed ones).
    pub iterations: usize,
    /// Training iterations run first and left out of the timings.
    pub warmup: usize,
    /// Also train a fresh run until `Train/mean_reward` reaches the threshold.
    pub solve: bool,
    /// The threshold (default: the config's `runner.stop_at_mean_reward`).
    pub threshold: Option<f64>,
    /// Iteration limit of the solve phase.
    pub solve_max_iterations: usize,
    /// Side of the square matrices of the matrix-multiply reference.
    pub matmul_size: usize,
}

/// The benchmark's result, written as one JSON object.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Task name.
    pub task: String,
    /// Where the config came from.
    pub config: String,
    /// Backend name.
    pub backend: String,
    /// The policy's model: `mlp`, or `rnn (lstm 64 x 1)` (type, width, layers).
    pub model: String,
    /// Parallel environments.
    pub num_envs: usize,
    /// Steps per environment per iteration.
    pub steps_per_env: usize,
    /// Seed.
    pub seed: u64,
    /// Simulation alone.
    pub sim: SimReport,
    /// End-to-end PPO over a fixed number of iterations.
    pub train: TrainReport,
    /// The backend's matrix multiply on large square matrices.
    pub matmul: MatmulReport,
    /// `train.update_gflops / matmul.gflops`.
    pub update_fraction_of_matmul: f64,
    /// Time and steps to the return threshold, when asked for.
    pub solve: Option<SolveReport>,
    /// Resident memory.
    pub memory: MemoryReport,
}

/// Simulation with random actions, no policy.
#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    /// Environment steps (over all environments) per second.
    pub env_steps_per_s: f64,
    /// Environment steps timed.
    pub env_steps: u64,
    /// Seconds timed.
    pub wall_s: f64,
    /// CubeCL kernels launched per step of the batch of environments (`env.step` alone,
    /// counted over 20 further steps with fixed actions); `None` on the CPU backends.
    pub launches_per_env_step: Option<f64>,
}

/// End-to-end PPO iterations after the warm-up.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Iterations timed.
    pub iterations: usize,
    /// Warm-up iterations left out.
    pub warmup: usize,
    /// Environment steps per second over the timed iterations (collection and update).
    pub env_steps_per_s: f64,
    /// Median seconds of collection per iteration (environment, policy, storage, returns).
    pub collect_s_per_iter: f64,
    /// Median seconds of the PPO update per iteration.
    pub update_s_per_iter: f64,
    /// The update's share of an iteration, `update_s / (collect_s + update_s)` (medians).
    pub update_share: f64,
    /// Matrix FLOPs of one update (forward and backward of actor and critic, every epoch),
    /// in GFLOP.
    pub update_gflop_per_iter: f64,
    /// Matrix FLOPs of one rollout's forward passes (actor and critic), in GFLOP.
    pub rollout_gflop_per_iter: f64,
    /// `update_gflop_per_iter / update_s_per_iter`.
    pub update_gflops: f64,
    /// Gradient steps of one update (epochs times mini-batches).
    pub mini_batches_per_update: usize,
    /// CubeCL kernels launched per iteration (collection and update, each the median over
    /// the timed iterations); `None` on the CPU backends.
    pub launches_per_iter: Option<u64>,
    /// Launches of the collection per iteration (rollout, episode statistics, returns).
    pub collection_launches_per_iter: Option<u64>,
    /// Launches of the update per iteration.
    pub update_launches_per_iter: Option<u64>,
    /// `collection_launches_per_iter / steps_per_env`.
    pub launches_per_policy_step: Option<f64>,
    /// `update_launches_per_iter / mini_batches_per_update`.
    pub update_launches_per_mini_batch: Option<f64>,
}

/// The matrix-multiply reference.
#[derive(Debug, Clone, Serialize)]
pub struct MatmulReport {
    /// Best of five `size x size x size` products, GFLOP/s.
    pub gflops: f64,
    /// Matrix side.
    pub size: usize,
}

/// A fresh run trained until the threshold.
#[derive(Debug, Clone, Serialize)]
pub struct SolveReport {
    /// The `Train/mean_reward` threshold.
    pub threshold: f64,
    /// Whether it was reached within the iteration limit.
    pub reached: bool,
    /// Iterations run (to the threshold when reached).
    pub iterations: usize,
    /// Environment steps run.
    pub env_steps: u64,
    /// Seconds of training (collection and update, as logged).
    pub wall_s: f64,
    /// `env_steps / wall_s`.
    pub env_steps_per_s: f64,
    /// `Train/mean_reward` at the end: rsl_rl's window of the last 100 episodes of the
    /// stochastic policy to finish, the criterion `reached` uses (kept comparable with
    /// rsl_rl's; see docs/play.md for what it over- and under-counts).
    pub final_mean_reward: Option<f64>,
    /// The final policy's deterministic action evaluated as `play` does, one whole episode
    /// on each of the config's environments, all started together (not timed).
    pub evaluation: Evaluation,
}

/// Resident memory of the process.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// Peak resident set (Linux `VmHWM`), MiB; absent where the system does not report it.
    pub peak_rss_mb: Option<f64>,
    /// Resident set after the first timed iteration, MiB.
    pub rss_first_mb: Option<f64>,
    /// Resident set after the last timed iteration, MiB.
    pub rss_last_mb: Option<f64>,
}

/// Runs the benchmark: simulation, matrix multiply, timed training, then (optionally) a
/// training to the threshold. Training runs write their checkpoints into temporary
/// directories that are removed afterwards.
pub fn bench<B: AutodiffBackend>(
    request: &BenchRequest,
    device: &B::Device,
) -> Result<BenchReport, Error> {
    let cfg = &request.config;
    cfg.validate()?;
    if request.iterations == 0 {
        return Err(invalid("--iterations", "must be at least 1"));
    }
    let threshold = match (
        request.solve,
        request.threshold.or(cfg.runner.stop_at_mean_reward),
    ) {
        (true, None) => {
            return Err(invalid(
                "--threshold",
                "--solve needs a threshold: pass --threshold or set runner.stop_at_mean_reward",
            ));
        }
        (_, t) => t,
    };

    let sim = bench_sim::<Inner<B>>(cfg, request.sim_steps, device)?;
    let matmul = bench_matmul::<Inner<B>>(request.matmul_size, device)?;
    let (train, rss_first_mb, rss_last_mb) = bench_train::<B>(request, device)?;
    let solve = match (request.solve, threshold) {
        (true, Some(threshold)) => Some(bench_solve::<B>(request, threshold, device)?),
        _ => None,
    };
    Ok(BenchReport {
        task: cfg.env.task.clone(),
        config: request.config_origin.clone(),
        backend: request.backend.clone(),
        model: match cfg.policy.rnn() {
            None => "mlp".into(),
            Some(rnn) => format!(
                "rnn ({} {} x {})",
                rnn.rnn_type, rnn.hidden_dim, rnn.num_layers
            ),
        },
        num_envs: cfg.env.num_envs,
        steps_per_env: cfg.runner.num_steps_per_env,
        seed: cfg.seed,
        update_fraction_of_matmul: train.update_gflops / matmul.gflops.max(f64::MIN_POSITIVE),
        sim,
        train,
        matmul,
        solve,
        memory: MemoryReport {
            peak_rss_mb: peak_rss_mb(),
            rss_first_mb,
            rss_last_mb,
        },
    })
}

fn invalid(field: &str, message: &str) -> Error {
    Error::Invalid {
        origin: String::new(),
        field: field.into(),
        message: message.into(),
    }
}

/// Environment steps over which the simulation phase counts kernel launches.
const LAUNCH_STEPS: usize = 20;

/// Steps the task with uniformly random actions.
fn bench_sim<B: Backend>(
    cfg: &TrainConfig,
    steps: usize,
    device: &B::Device,
) -> Result<SimReport, Error> {
    let n = cfg.env.num_envs;
    let mut env = sim_gpu::make_env::<B>(
        &cfg.env.task,
        n,
        cfg.seed,
        &cfg.env.settings,
        sim_gpu::Purpose::Training,
        device,
    )?;
    let (dim, low, high) = match &env.spec().action_space {
        ActionSpace::Box { low, high } => (
            low.len(),
            low.iter().copied().fold(f32::INFINITY, f32::min),
            high.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        ),
        ActionSpace::Discrete { n } => (1, -0.5, *n as f32 - 0.5),
    };
    let dist = Distribution::Uniform(f64::from(low), f64::from(high));
    env.reset();
    let mut run = |steps: usize| -> Result<f64, Error> {
        let mut checksum = Tensor::<B, 1>::zeros([1], device);
        for _ in 0..steps {
            let actions = Tensor::<B, 2>::random([n, dim], dist, device);
            let out = env.step(actions)?;
            checksum = checksum + out.rewards.sum();
        }
        // One read at the end waits for every queued step (GPU backends run asynchronously)
        Ok(checksum.into_scalar().elem::<f64>())
    };
    run(10)?;
    let start = Instant::now();
    run(steps)?;
    let wall_s = start.elapsed().as_secs_f64();
    let env_steps = (steps * n) as u64;
    // Counted apart from the timed steps, without the sampling and the checksum
    let launches_per_env_step = match LaunchCounter::<B>::new(device)? {
        Some(mut counter) => {
            let actions = Tensor::<B, 2>::random([n, dim], dist, device);
            counter.start()?;
            for _ in 0..LAUNCH_STEPS {
                env.step(actions.clone())?;
            }
            Some(counter.count()? as f64 / LAUNCH_STEPS as f64)
        }
        None => None,
    };
    Ok(SimReport {
        env_steps_per_s: env_steps as f64 / wall_s.max(1e-12),
        env_steps,
        wall_s,
        launches_per_env_step,
    })
}

/// The best of five `size^3` matrix products on the backend.
fn bench_matmul<B: Backend>(size: usize, device: &B::Device) -> Result<MatmulReport, Error> {
    if size == 0 {
        return Err(invalid("--matmul-size", "must be at least 1"));
    }
    let a = Tensor::<B, 2>::random([size, size], Distribution::Default, device);
    let b = Tensor::<B, 2>::random([size, size], Distribution::Default, device);
    let product = || -> f64 {
        let c = a.clone().matmul(b.clone());
        c.slice([0..1, 0..1]).into_scalar().elem::<f64>()
    };
    product(); // warm-up
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        product();
        best = best.min(start.elapsed().as_secs_f64());
    }
    let flop = 2.0 * (size as f64).powi(3);
    Ok(MatmulReport {
        gflops: flop / best.max(1e-12) / 1e9,
        size,
    })
}

/// Collects the iteration records of a run in memory.
#[derive(Clone, Default)]
struct Records(Arc<Mutex<Vec<IterationRecord>>>);

impl MetricWriter for Records {
    fn write(&mut self, record: &IterationRecord) -> Result<(), rl_logger::Error> {
        if let Ok(mut rows) = self.0.lock() {
            rows.push(record.clone());
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), rl_logger::Error> {
        Ok(())
    }
}

/// Trains `cfg` in a temporary directory (counting kernel launches, if given a counter) and
/// returns the runner and its records.
fn run_training<B: AutodiffBackend>(
    cfg: TrainConfig,
    launches: Option<LaunchCounter<Inner<B>>>,
    device: &B::Device,
) -> Result<(OnPolicyRunner<B>, crate::TrainSummary, Vec<IterationRecord>), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Io {
        path: std::env::temp_dir(),
        action: "create a temporary run directory in",
        source: e,
    })?;
    let mut runner = OnPolicyRunner::<B>::new(cfg, dir.path().join("run"), device)?;
    if let Some(counter) = launches {
        runner.count_launches(counter);
    }
    let records = Records::default();
    let mut logger = Logger::new(vec![Box::new(records.clone())]);
    let summary = runner.learn(&mut logger)?;
    let rows = records.0.lock().map(|r| r.clone()).unwrap_or_default();
    Ok((runner, summary, rows))
}

/// Timed training: `warmup + iterations` iterations, without the threshold stop.
fn bench_train<B: AutodiffBackend>(
    request: &BenchRequest,
    device: &B::Device,
) -> Result<(TrainReport, Option<f64>, Option<f64>), Error> {
    let mut cfg = request.config.clone();
    cfg.runner.stop_at_mean_reward = None;
    cfg.runner.max_iterations = request.warmup + request.iterations;
    cfg.runner.save_interval = cfg.runner.max_iterations;
    let launches = LaunchCounter::<Inner<B>>::new(device)?;
    let (runner, _, rows) = run_training::<B>(cfg.clone(), launches, device)?;
    let timed: Vec<&IterationRecord> = rows.iter().skip(request.warmup).collect();
    let series = |tag: &str| -> Vec<f64> { timed.iter().filter_map(|r| r.get(tag)).collect() };
    let collect = series(tags::COLLECTION_TIME);
    let update = series(tags::LEARNING_TIME);
    let rss = series(tags::RESIDENT_MEMORY);
    let total_s: f64 = collect.iter().chain(&update).sum();
    let steps = (timed.len() * cfg.runner.num_steps_per_env * cfg.env.num_envs) as f64;

    let cost = runner.algorithm().compute_cost();
    let batch = (cfg.runner.num_steps_per_env * cfg.env.num_envs) as f64;
    let forward = cost.rollout_flop_per_sample;
    let update_flop = batch * cost.update_flop_per_sample;
    let update_s = median(&update);
    // Launch counts are whole numbers; the median of a series is `None` where none was logged
    let count = |tag: &str| -> Option<u64> {
        let values = series(tag);
        (!values.is_empty()).then(|| median(&values).round() as u64)
    };
    let collection_launches = count(tags::COLLECTION_LAUNCHES);
    let update_launches = count(tags::LEARNING_LAUNCHES);
    let mini_batches = cfg.algorithm.mini_batches_per_update();
    let report = TrainReport {
        iterations: timed.len(),
        warmup: request.warmup,
        env_steps_per_s: steps / total_s.max(1e-12),
        collect_s_per_iter: median(&collect),
        update_s_per_iter: update_s,
        update_share: update_s / (median(&collect) + update_s).max(1e-12),
        update_gflop_per_iter: update_flop / 1e9,
        rollout_gflop_per_iter: batch * forward / 1e9,
        update_gflops: update_flop / 1e9 / update_s.max(1e-12),
        mini_batches_per_update: mini_batches,
        launches_per_iter: collection_launches.zip(update_launches).map(|(c, u)| c + u),
        collection_launches_per_iter: collection_launches,
        update_launches_per_iter: update_launches,
        launches_per_policy_step: collection_launches
            .map(|c| c as f64 / cfg.runner.num_steps_per_env as f64),
        update_launches_per_mini_batch: update_launches.map(|u| u as f64 / mini_batches as f64),
    };
    Ok((report, rss.first().copied(), rss.last().copied()))
}

/// A fresh run until `Train/mean_reward >= threshold`.
fn bench_solve<B: AutodiffBackend>(
    request: &BenchRequest,
    threshold: f64,
    device: &B::Device,
) -> Result<SolveReport, Error> {
    let mut cfg = request.config.clone();
    cfg.runner.stop_at_mean_reward = Some(threshold);
    cfg.runner.max_iterations = request.solve_max_iterations;
    cfg.runner.save_interval = cfg.runner.max_iterations.max(1);
    let (runner, summary, _) = run_training::<B>(cfg.clone(), None, device)?;
    let plan = EvalPlan::new(cfg.env.num_envs, cfg.env.num_envs);
    let mut env = evaluation_env::<Inner<B>>(&cfg, plan.num_envs, cfg.seed, device)?;
    let bytes = runner.algorithm().save_policy()?;
    let mut policy = policy_from_bytes::<Inner<B>>(&cfg.policy, env.spec(), &bytes, device)?;
    let (evaluation, _) = evaluate(env.as_mut(), plan, &mut policy, None)?;
    Ok(SolveReport {
        threshold,
        reached: summary.mean_reward.is_some_and(|r| r >= threshold),
        iterations: summary.iterations,
        env_steps: summary.total_steps,
        wall_s: summary.wall_s,
        env_steps_per_s: summary.total_steps as f64 / summary.wall_s.max(1e-12),
        final_mean_reward: summary.mean_reward,
        evaluation,
    })
}

/// `(fan_in, fan_out)` of each linear layer.
fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]),
    }
}

/// Peak resident set of this process in MiB (Linux `/proc/self/status`, `VmHWM`).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string(Path::new("/proc/self/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use rl_modules::MlpConfig;

    #[test]
    fn flop_counts_follow_the_layer_sizes() {
        let mlp = MlpConfig::new(4, vec![8, 6], 2).init::<Flex>(&Default::default());
        // 2 * (4*8 + 8*6 + 6*2) = 184
        assert_eq!(mlp.forward_flop(), 184.0);
        // forward + weight gradients + input gradients of all but the first layer
        assert_eq!(mlp.train_flop(), 3.0 * 184.0 - 64.0);
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn small_benchmark_reports_consistent_numbers() {
        let text = "[env]\ntask = \"cartpole\"\nnum_envs = 8\n[runner]\nnum_steps_per_env = 4\n\
                    [policy]\nactor_hidden_dims = [8]\ncritic_hidden_dims = [8]\n";
        let config = TrainConfig::parse(text, "test", &[]).expect("config");
        let request = BenchRequest {
            config,
            config_origin: "test".into(),
            backend: "flex".into(),
            sim_steps: 5,
            iterations: 3,
            warmup: 1,
            solve: true,
            threshold: Some(1e9),
            solve_max_iterations: 2,
            matmul_size: 32,
        };
        let report = bench::<Autodiff<Flex>>(&request, &Default::default()).expect("bench");
        assert_eq!(report.sim.env_steps, 40);
        assert!(report.sim.env_steps_per_s > 0.0);
        assert_eq!(report.train.iterations, 3);
        // Kernel launches are counted on the CubeCL backends only
        assert_eq!(report.sim.launches_per_env_step, None);
        assert_eq!(report.train.launches_per_iter, None);
        assert_eq!(report.train.update_launches_per_mini_batch, None);
        assert_eq!(report.train.mini_batches_per_update, 4 * 5);
        assert!(report.train.update_s_per_iter > 0.0 && report.train.collect_s_per_iter > 0.0);
        let expected = (report.train.update_gflop_per_iter / report.train.update_s_per_iter
            - report.train.update_gflops)
            .abs();
        assert!(expected < 1e-9 * report.train.update_gflops.max(1.0));
        let solve = report.solve.expect("solve ran");
        assert!(!solve.reached, "an unreachable threshold was reached");
        assert_eq!(solve.iterations, 2);
        assert_eq!(solve.env_steps, 2 * 8 * 4);
        // The final policy is evaluated on one whole episode of each environment.
        assert_eq!(
            (solve.evaluation.episodes, solve.evaluation.num_envs),
            (8, 8)
        );
        let length = solve.evaluation.mean_episode_length;
        assert!((1.0..=500.0).contains(&length), "{:?}", solve.evaluation);
        // Unreachable without a threshold
        let mut no_threshold = request.clone();
        no_threshold.threshold = None;
        no_threshold.config.runner.stop_at_mean_reward = None;
        let err =
            bench::<Autodiff<Flex>>(&no_threshold, &Default::default()).expect_err("no threshold");
        assert!(err.to_string().contains("--threshold"), "{err}");
    }

    #[test]
    fn a_recurrent_benchmark_names_its_model_and_evaluates_with_memory() {
        let text = "[env]\ntask = \"cartpole\"\nnum_envs = 8\nobserve = [0, 2]\n\
                    [runner]\nnum_steps_per_env = 4\n\
                    [policy]\nclass = \"rnn\"\nrnn_type = \"gru\"\nrnn_hidden_dim = 8\n\
                    actor_hidden_dims = [8]\ncritic_hidden_dims = [8]\n";
        let request = BenchRequest {
            config: TrainConfig::parse(text, "test", &[]).expect("config"),
            config_origin: "test".into(),
            backend: "flex".into(),
            sim_steps: 5,
            iterations: 2,
            warmup: 1,
            solve: true,
            threshold: Some(1e9),
            solve_max_iterations: 1,
            matmul_size: 32,
        };
        let report = bench::<Autodiff<Flex>>(&request, &Default::default()).expect("bench");
        assert_eq!(report.model, "rnn (gru 8 x 1)");
        let share = report.train.update_share;
        assert!(share > 0.0 && share < 1.0, "{share}");
        let t = &report.train;
        let want = t.update_s_per_iter / (t.collect_s_per_iter + t.update_s_per_iter);
        assert!((share - want).abs() < 1e-12);
        let solve = report.solve.expect("solve ran");
        assert_eq!(solve.evaluation.episodes, 8);
    }
}
