//! Data-parallel training: workers on threads, meeting over loopback TCP as separate
//! processes do (the process launcher and a killed process are tested in xtask).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burn::backend::{Autodiff, NdArray};
use rl_core::{CollectiveError, Communicator};
use rl_distributed::TcpGroup;
use rl_runner::{
    Checkpoint, Error, TrainRequest, TrainSummary, checkpoint_path, train, train_worker,
};

use crate::common::request;

type B = Autodiff<NdArray>;

const TIMEOUT: Duration = Duration::from_secs(120);

/// A small cart-pole run with normalised observations (so that the workers must pool
/// their statistics), checkpointing every iteration.
fn write_config(dir: &Path, num_envs: usize) -> PathBuf {
    let path = dir.join(format!("cartpole_{num_envs}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"seed = 3
[env]
task = "cartpole"
num_envs = {num_envs}
[algorithm]
class = "ppo"
num_learning_epochs = 2
num_mini_batches = 2
[policy]
actor_hidden_dims = [32]
critic_hidden_dims = [32]
actor_obs_normalization = true
critic_obs_normalization = true
[runner]
num_steps_per_env = 16
max_iterations = 4
save_interval = 1
keep_checkpoints = 0
[logger]
experiment_name = "dp"
"#
        ),
    )
    .expect("write the config");
    path
}

/// Runs `world_size` workers on threads, worker `r` with `requests(r)` and the communicator
/// `wrap(r, group)` makes of its group; their results in rank order.
fn run_workers(
    world_size: usize,
    requests: impl Fn(usize) -> TrainRequest,
    wrap: impl Fn(usize, TcpGroup) -> Arc<dyn Communicator> + Sync,
) -> Vec<Result<TrainSummary, Error>> {
    let listener = TcpGroup::listen("127.0.0.1:0").expect("listen");
    let master = listener.local_addr().expect("address").to_string();
    let mut listener = Some(listener);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..world_size)
            .map(|rank| {
                let request = requests(rank);
                let group = listener.take();
                let master = master.clone();
                let wrap = &wrap;
                scope.spawn(move || {
                    let group = match group {
                        Some(l) => TcpGroup::root(l, world_size, TIMEOUT),
                        None => TcpGroup::join(rank, world_size, &master, TIMEOUT),
                    }
                    .expect("join the run");
                    let device = Default::default();
                    train_worker::<B>(&request, &device, wrap(rank, group), |_| {})
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker thread"))
            .collect()
    })
}

fn plain(_: usize, group: TcpGroup) -> Arc<dyn Communicator> {
    Arc::new(group)
}

fn metrics(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

#[test]
fn two_workers_train_as_one_run_with_identical_weights_at_every_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), 16);
    let logs = dir.path().join("logs");
    let results = run_workers(2, |_| request(&config, &logs, "pair", 3), plain);
    let summaries: Vec<TrainSummary> = results
        .into_iter()
        .map(|r| r.expect("both workers finish"))
        .collect();
    let run_dir = &summaries[0].run_dir;
    assert_eq!(&summaries[1].run_dir, run_dir, "rank 0 names the run");
    assert_eq!(summaries[0].mean_reward, summaries[1].mean_reward);
    // Steps of both workers.
    assert_eq!(summaries[0].total_steps, 3 * 2 * 16 * 16);

    // One run directory, written by rank 0: one row per iteration.
    let rows = metrics(run_dir);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2]["total_steps"].as_u64(), Some(3 * 2 * 16 * 16));
    assert_eq!(
        std::fs::read_dir(logs.join("dp")).expect("runs").count(),
        1,
        "the other worker writes nothing"
    );

    // Every checkpoint holds both workers: the same weights and normalisers, their own
    // environments.
    for it in 1..=3 {
        let ckpt = Checkpoint::read(&checkpoint_path(run_dir, it)).expect("checkpoint");
        assert_eq!(ckpt.state.workers.len(), 1, "iteration {it}");
        let worker = &ckpt.state.workers[0];
        let root_weights = crate::common::checkpoint_weights::<B>(&checkpoint_path(run_dir, it));
        let mut as_worker = ckpt.clone();
        as_worker.state.algorithm = worker.algorithm.clone();
        let path = dir.path().join(format!("worker1_{it}.ckpt"));
        as_worker.write_atomic(&path).expect("write");
        assert_eq!(
            crate::common::checkpoint_weights::<B>(&path),
            root_weights,
            "iteration {it}: the workers' weights differ"
        );
        let (own, other) = (
            ckpt.state.env.as_ref().expect("rank 0's envs"),
            worker.env.as_ref().expect("rank 1's envs"),
        );
        assert_ne!(
            format!("{own:?}"),
            format!("{other:?}"),
            "the workers' environments are their own"
        );
    }
}

#[test]
fn a_resumed_two_worker_run_repeats_the_uninterrupted_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), 16);
    let logs = dir.path().join("logs");
    let straight = run_workers(2, |_| request(&config, &logs, "straight", 4), plain);
    let straight = straight
        .into_iter()
        .next()
        .expect("rank 0")
        .expect("trains");

    let first = run_workers(2, |_| request(&config, &logs, "split", 2), plain);
    let first = first.into_iter().next().expect("rank 0").expect("trains");
    let resumed = run_workers(
        2,
        |_| TrainRequest {
            resume: Some(first.run_dir.clone()),
            max_iterations: Some(4),
            console: Some(rl_runner::ConsoleMode::Off),
            ..Default::default()
        },
        plain,
    );
    let resumed = resumed
        .into_iter()
        .next()
        .expect("rank 0")
        .expect("resumes");
    assert_eq!(resumed.iterations, 4);
    // Rows 1-2 from the first run, 3-4 from the resumed one: as the uninterrupted run's,
    // but for times.
    let strip = |rows: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        rows.into_iter()
            .map(|mut r| {
                let o = r.as_object_mut().expect("row");
                o.retain(|k, _| !k.starts_with("Perf/") && k != "wall_s");
                r
            })
            .collect()
    };
    assert!(
        crate::common::close(
            &strip(metrics(&straight.run_dir)),
            &strip(metrics(&first.run_dir))
        ),
        "the logged iterations agree"
    );
    assert_eq!(
        crate::common::checkpoint_weights::<B>(&checkpoint_path(&straight.run_dir, 4)),
        crate::common::checkpoint_weights::<B>(&checkpoint_path(&first.run_dir, 4)),
        "resuming both workers from their own states continues exactly"
    );
    assert_eq!(straight.mean_reward, resumed.mean_reward);
}

#[test]
fn workers_with_different_configs_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let small = write_config(dir.path(), 16);
    let large = write_config(dir.path(), 32);
    let logs = dir.path().join("logs");
    let results = run_workers(
        2,
        |rank| request(if rank == 0 { &small } else { &large }, &logs, "odd", 2),
        plain,
    );
    for (rank, r) in results.iter().enumerate() {
        let e = r.as_ref().expect_err("refused").to_string();
        assert!(
            e.contains("worker 1") && e.contains("num_envs = 32"),
            "rank {rank}: {e}"
        );
    }
}

/// A worker whose process "dies" after `calls` collective calls: its connections close
/// without a word, as when the process is killed.
struct DiesAfter {
    group: Mutex<Option<TcpGroup>>,
    calls: Mutex<usize>,
    rank: usize,
    world_size: usize,
}

impl DiesAfter {
    fn check(&self) -> Result<(), CollectiveError> {
        let mut calls = self.calls.lock().expect("lock");
        if *calls == 0 {
            self.group.lock().expect("lock").take(); // closes the sockets
            return Err(CollectiveError::Aborted {
                rank: self.rank,
                reason: "killed".into(),
            });
        }
        *calls -= 1;
        Ok(())
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&TcpGroup) -> Result<T, CollectiveError>,
    ) -> Result<T, CollectiveError> {
        self.check()?;
        match self.group.lock().expect("lock").as_ref() {
            Some(g) => f(g),
            None => Err(CollectiveError::Aborted {
                rank: self.rank,
                reason: "killed".into(),
            }),
        }
    }
}

impl Communicator for DiesAfter {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.world_size
    }
    fn all_reduce_sum_f32(&self, v: &mut [f32], what: &str) -> Result<(), CollectiveError> {
        self.with(|g| g.all_reduce_sum_f32(v, what))
    }
    fn all_reduce_sum_f64(&self, v: &mut [f64], what: &str) -> Result<(), CollectiveError> {
        self.with(|g| g.all_reduce_sum_f64(v, what))
    }
    fn broadcast(&self, b: Vec<u8>, what: &str) -> Result<Vec<u8>, CollectiveError> {
        self.with(|g| g.broadcast(b, what))
    }
    fn gather(&self, b: Vec<u8>, what: &str) -> Result<Option<Vec<Vec<u8>>>, CollectiveError> {
        self.with(|g| g.gather(b, what))
    }
    fn abort(&self, _: &str) {
        // A killed process says nothing.
    }
}

#[test]
fn a_worker_that_dies_stops_the_run_with_its_rank_and_a_loadable_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), 16);
    let logs = dir.path().join("logs");
    let results = run_workers(
        2,
        |_| request(&config, &logs, "dies", 50),
        |rank, group| -> Arc<dyn Communicator> {
            if rank == 1 {
                // Well into the second iteration (joining takes 3 calls, an iteration
                // about a dozen).
                Arc::new(DiesAfter {
                    group: Mutex::new(Some(group)),
                    calls: Mutex::new(25),
                    rank: 1,
                    world_size: 2,
                })
            } else {
                Arc::new(group)
            }
        },
    );
    let e = results[0].as_ref().expect_err("rank 0 stops");
    let text = e.to_string();
    assert!(
        matches!(
            e,
            Error::Distributed {
                error: CollectiveError::WorkerLost { rank: 1, .. },
                ..
            }
        ),
        "{text}"
    );
    let Error::Distributed {
        last_checkpoint: Some(last),
        ..
    } = e
    else {
        panic!("no checkpoint named: {text}");
    };
    assert!(text.contains(&last.display().to_string()), "{text}");
    let ckpt = Checkpoint::read(last).expect("the last checkpoint loads");
    assert!(ckpt.header.iteration >= 1);
    assert_eq!(ckpt.state.workers.len(), 1);
    // What was logged is on disk: at least every iteration up to the checkpoint.
    let run_dir = last.parent().and_then(Path::parent).expect("run dir");
    assert!(metrics(run_dir).len() >= ckpt.header.iteration);
}

#[test]
fn two_workers_learn_cart_pole_like_one_with_twice_the_environments() {
    // The same samples per update: 2 workers x 32 environments against 1 x 64. Both must
    // reach the threshold, within a few iterations of each other (seed noise).
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let write = |num_envs: usize| {
        let path = dir.path().join(format!("solve_{num_envs}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"seed = 1
[env]
task = "cartpole"
num_envs = {num_envs}
[algorithm]
class = "ppo"
learning_rate = 1e-3
num_mini_batches = 4
[policy]
actor_hidden_dims = [64, 64]
critic_hidden_dims = [64, 64]
[runner]
num_steps_per_env = 32
max_iterations = 150
save_interval = 1000
stop_at_mean_reward = 150.0
[logger]
experiment_name = "dp_solve"
"#
            ),
        )
        .expect("write");
        path
    };
    let (pair, single) = (write(32), write(64));
    let one = train::<B>(
        &request(&single, &logs, "one", 150),
        &Default::default(),
        |_| {},
    )
    .expect("one worker trains");
    let two = run_workers(2, |_| request(&pair, &logs, "two", 150), plain)
        .into_iter()
        .next()
        .expect("rank 0")
        .expect("two workers train");
    for (name, s) in [("one worker", &one), ("two workers", &two)] {
        assert!(
            s.mean_reward.is_some_and(|r| r >= 150.0),
            "{name}: {:?} after {} iterations",
            s.mean_reward,
            s.iterations
        );
    }
    let (a, b) = (one.iterations as f64, two.iterations as f64);
    assert!(
        (a - b).abs() <= 0.5 * a.max(b),
        "iterations to the threshold: one worker {a}, two workers {b}"
    );
}
