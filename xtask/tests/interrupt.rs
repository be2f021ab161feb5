//! `cargo xtask train` under signals: SIGINT or SIGTERM finishes the iteration in progress,
//! saves it and exits with 130 so that `--resume` continues the run; a second signal exits at
//! once without saving; SIGKILL at any moment never leaves a checkpoint that fails to load.
//!
//! The tests poll `metrics.jsonl` to learn how far training got and never assert that
//! anything is fast: every wait has a generous timeout for slow machines.
#![cfg(unix)]

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rl_runner::{Checkpoint, LATEST_MARKER, checkpoint_path, resolve_checkpoint};

/// How long any one wait may take before the test gives up (a slow CI machine, a busy
/// build running beside the tests).
const TIMEOUT: Duration = Duration::from_secs(120);

/// A cart-pole run that trains "forever" (until a signal): `algorithm` and `runner` are
/// lines added to those sections, `policy_dims` the hidden layers of actor and critic.
fn config(num_envs: usize, algorithm: &str, policy_dims: &str, runner: &str) -> String {
    format!(
        r#"seed = 1

[env]
task = "cartpole"
num_envs = {num_envs}

[algorithm]
class = "ppo"
{algorithm}

[policy]
actor_hidden_dims = {policy_dims}
critic_hidden_dims = {policy_dims}

[runner]
max_iterations = 100000
{runner}

[logger]
experiment_name = "interrupt"
"#
    )
}

/// A fresh directory under the system's temporary directory, removed on drop unless the
/// test failed (so that its run can be inspected).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("xtask-interrupt-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the temp dir");
        Self(dir)
    }

    /// Writes `text` to `<dir>/config.toml` and returns its path.
    fn write_config(&self, text: &str) -> PathBuf {
        let path = self.0.join("config.toml");
        std::fs::write(&path, text).expect("write the config");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A running `xtask train`, its stdout and stderr going to files (no pipe to drain).
struct Train {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Train {
    /// Starts `xtask train --quiet <args>`, its output in `<dir>/<name>.stdout` / `.stderr`.
    fn start(dir: &Path, name: &str, args: &[&OsStr]) -> Self {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let child = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("train")
            .arg("--quiet")
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("create the stdout file"))
            .stderr(File::create(&stderr).expect("create the stderr file"))
            .spawn()
            .expect("start xtask train");
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// A fresh run of `config` under `<dir>/logs/interrupt/<run_name>`.
    fn fresh(dir: &Path, config: &Path, run_name: &str) -> Self {
        let logs = dir.join("logs");
        Self::start(
            dir,
            run_name,
            &[
                "--config".as_ref(),
                config.as_os_str(),
                "--log-dir".as_ref(),
                logs.as_os_str(),
                "--run-name".as_ref(),
                run_name.as_ref(),
            ],
        )
    }

    /// `--resume <run_dir>`, with `--max-iterations` when given.
    fn resume(dir: &Path, name: &str, run_dir: &Path, max_iterations: Option<usize>) -> Self {
        let max = max_iterations.map(|m| m.to_string());
        let mut args: Vec<&OsStr> = vec!["--resume".as_ref(), run_dir.as_os_str()];
        if let Some(m) = &max {
            args.push("--max-iterations".as_ref());
            args.push(m.as_ref());
        }
        Self::start(dir, name, &args)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Whether the process has exited (without reaping a running one).
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll xtask train")
    }

    /// Polls `done` until it holds; fails if the process exits first or after [`TIMEOUT`].
    fn wait_until(&mut self, what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            if let Some(status) = self.exited() {
                // It may have become true just before the exit.
                if done() {
                    return;
                }
                panic!(
                    "xtask train exited ({status}) before {what}; stderr:\n{}",
                    self.stderr()
                );
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "no {what} after {TIMEOUT:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The run directory, from the first line of stdout.
    fn run_dir(&mut self) -> PathBuf {
        let stdout = self.stdout.clone();
        let first_line = || {
            let text = std::fs::read_to_string(&stdout).unwrap_or_default();
            text.split_once('\n').map(|(line, _)| PathBuf::from(line))
        };
        self.wait_until("the run directory on stdout", || first_line().is_some());
        first_line().expect("the first line")
    }

    /// Waits for the exit; kills the process and fails after [`TIMEOUT`].
    fn wait(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            if start.elapsed() > TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "xtask train did not exit within {TIMEOUT:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Train {
    fn drop(&mut self) {
        // A failed test must not leave a training running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends `signal` (`INT`, `TERM`, `KILL`) to `pid` with kill(1).
fn send(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed: {status}");
}

/// Complete (newline-terminated) rows of `<run_dir>/metrics.jsonl`; 0 without the file.
fn rows(run_dir: &Path) -> usize {
    std::fs::read(run_dir.join("metrics.jsonl"))
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// The `iteration` of every row of `metrics.jsonl`, each of which must parse.
fn row_iterations(run_dir: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(run_dir.join("metrics.jsonl")).expect("read metrics.jsonl");
    text.lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("unreadable metrics row `{line}`: {e}"));
            row["iteration"]
                .as_u64()
                .unwrap_or_else(|| panic!("no iteration in `{line}`"))
        })
        .collect()
}

/// Asserts that `metrics.jsonl` holds exactly the iterations `0..n`, in order.
fn assert_rows_are_0_to(run_dir: &Path, n: usize) {
    let expected: Vec<u64> = (0..n as u64).collect();
    assert_eq!(
        row_iterations(run_dir),
        expected,
        "metrics.jsonl iterations"
    );
}

/// What `checkpoints/latest` names, if it exists.
fn latest_marker(run_dir: &Path) -> Option<String> {
    std::fs::read_to_string(run_dir.join("checkpoints").join(LATEST_MARKER))
        .ok()
        .map(|t| t.trim().to_string())
}

/// The checkpoint files `model_<iteration>.ckpt` of a run, `(iteration, path)`, oldest first.
fn checkpoint_files(run_dir: &Path) -> Vec<(usize, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(run_dir.join("checkpoints")) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, PathBuf)> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let it = name
                .strip_prefix("model_")?
                .strip_suffix(".ckpt")?
                .parse()
                .ok()?;
            Some((it, p))
        })
        .collect();
    found.sort();
    found
}

/// Reads a checkpoint, failing with the reason.
fn read(path: &Path) -> Checkpoint {
    Checkpoint::read(path).unwrap_or_else(|e| panic!("checkpoint {}: {e}", path.display()))
}

/// A run stopped by `signal` finishes and logs the iteration in progress, saves it, exits
/// with 130, and continues from there with `--resume`.
fn graceful_stop(signal: &str) {
    let tmp = TempDir::new(&format!("graceful-{signal}"));
    // Only the interrupt writes a checkpoint.
    let config = tmp.write_config(&config(
        64,
        "num_learning_epochs = 2\nnum_mini_batches = 2",
        "[32, 32]",
        "num_steps_per_env = 16\nsave_interval = 1000",
    ));
    let mut train = Train::fresh(&tmp.0, &config, "run");
    let run_dir = train.run_dir();
    train.wait_until("2 metrics rows", || rows(&run_dir) >= 2);
    send(signal, train.pid());
    let status = train.wait();
    let stderr = train.stderr();
    assert_eq!(status.code(), Some(130), "exit status; stderr:\n{stderr}");

    // The iteration in progress was finished, logged and saved.
    let done = rows(&run_dir);
    assert!(done >= 2, "{done} rows");
    assert_rows_are_0_to(&run_dir, done);
    assert!(
        stderr.contains(&format!("interrupted after iteration {done}; saved `")),
        "stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("--resume {}", run_dir.display())),
        "stderr:\n{stderr}"
    );
    let saved = checkpoint_path(&run_dir, done);
    assert_eq!(
        latest_marker(&run_dir).as_deref(),
        saved.file_name().and_then(|n| n.to_str())
    );
    assert_eq!(read(&saved).header.iteration, done);
    assert_eq!(resolve_checkpoint(&run_dir).expect("resolve"), saved);
    let files: Vec<usize> = checkpoint_files(&run_dir).iter().map(|c| c.0).collect();
    assert_eq!(files, vec![done], "checkpoints");

    // `--resume` continues from it.
    let mut resumed = Train::resume(&tmp.0, "resume", &run_dir, Some(done + 2));
    let status = resumed.wait();
    assert!(
        status.success(),
        "resume: {status}; stderr:\n{}",
        resumed.stderr()
    );
    assert_eq!(resumed.stdout().lines().next(), run_dir.to_str());
    assert_rows_are_0_to(&run_dir, done + 2);
    assert_eq!(
        read(&checkpoint_path(&run_dir, done + 2)).header.iteration,
        done + 2
    );
}

#[test]
fn sigint_finishes_the_iteration_and_saves() {
    graceful_stop("INT");
}

#[test]
fn sigterm_finishes_the_iteration_and_saves() {
    graceful_stop("TERM");
}

/// Outcome of one try of [`a_second_signal_stops_at_once`].
enum SecondSignal {
    /// The second signal stopped the run in the middle of the iteration.
    StoppedAtOnce,
    /// The run had finished the iteration before the second signal took effect (the test
    /// thread was descheduled longer than an iteration lasts); says what happened.
    Inconclusive(String),
}

/// One try: wait until an iteration is logged and saved, signal during the next one, signal
/// again 200 ms later.
fn second_signal_try(tmp: &TempDir, config: &Path, attempt: usize) -> SecondSignal {
    let mut train = Train::fresh(&tmp.0, config, &format!("run{attempt}"));
    let run_dir = train.run_dir();
    // save_interval = 1: once the marker names the checkpoint of the last logged row, its
    // save is over and the run is in the next iteration, which lasts seconds.
    let mut before = 0;
    train.wait_until("a checkpoint", || {
        before = rows(&run_dir);
        before > 0 && latest_marker(&run_dir) == Some(format!("model_{before}.ckpt"))
    });
    send("INT", train.pid());
    std::thread::sleep(Duration::from_millis(200));
    if let Some(status) = train.exited() {
        // The iteration ended within 200 ms: a graceful stop all the same.
        assert_eq!(status.code(), Some(130), "stderr:\n{}", train.stderr());
        return SecondSignal::Inconclusive(format!(
            "the run exited ({status}) within 200 ms of the first signal; stderr:\n{}",
            train.stderr()
        ));
    }
    send("INT", train.pid());
    let status = train.wait();
    let stderr = train.stderr();
    let after = rows(&run_dir);
    assert_eq!(status.code(), Some(130), "exit status; stderr:\n{stderr}");
    if after > before {
        return SecondSignal::Inconclusive(format!(
            "iteration {before} finished ({after} rows) before the second signal took effect; \
             stderr:\n{stderr}"
        ));
    }
    assert!(stderr.contains("stopping at once"), "stderr:\n{stderr}");
    assert!(
        !stderr.contains("interrupted after iteration"),
        "a checkpoint was saved; stderr:\n{stderr}"
    );
    // Nothing was written for the iteration in progress; the earlier checkpoints load.
    let files = checkpoint_files(&run_dir);
    assert!(
        files.iter().all(|(it, _)| *it <= before),
        "a checkpoint past iteration {before}: {files:?}"
    );
    assert!(!files.is_empty(), "no checkpoints");
    for (it, path) in &files {
        assert_eq!(read(path).header.iteration, *it);
    }
    let latest = resolve_checkpoint(&run_dir).expect("resolve");
    assert_eq!(latest, checkpoint_path(&run_dir, before));
    assert_eq!(read(&latest).header.iteration, before);
    SecondSignal::StoppedAtOnce
}

#[test]
fn a_second_signal_stops_at_once() {
    let tmp = TempDir::new("second-signal");
    // About 3 s an iteration on a busy 2-core machine in the test profile; the second
    // signal comes about 0.2 s into one. A faster machine keeps a wide margin, a slower one a
    // wider one.
    let config = tmp.write_config(&config(
        512,
        "num_learning_epochs = 4\nnum_mini_batches = 4",
        "[256, 256]",
        "num_steps_per_env = 32\nsave_interval = 1",
    ));
    // A try is inconclusive only if the test thread stalled for a whole iteration; the
    // assertions inside a try are never skipped.
    let mut reasons = Vec::new();
    for attempt in 0..3 {
        match second_signal_try(&tmp, &config, attempt) {
            SecondSignal::StoppedAtOnce => return,
            SecondSignal::Inconclusive(why) => {
                eprintln!("inconclusive try {attempt}: {why}");
                reasons.push(why);
            }
        }
    }
    panic!(
        "the second signal never arrived during an iteration:\n{}",
        reasons.join("\n")
    );
}

/// A deterministic pseudo-random delay in 300..1500 ms for try `i`.
fn kill_delay(i: u64) -> Duration {
    let h = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33;
    Duration::from_millis(300 + h % 1200)
}

#[test]
fn sigkill_never_leaves_a_broken_checkpoint() {
    const KEEP: usize = 3;
    let tmp = TempDir::new("sigkill");
    let config = tmp.write_config(&config(
        16,
        "num_learning_epochs = 1\nnum_mini_batches = 1",
        "[16]",
        &format!("num_steps_per_env = 8\nsave_interval = 1\nkeep_checkpoints = {KEEP}"),
    ));
    let mut run_dir: Option<PathBuf> = None;
    let mut last_iteration = 0;
    for i in 0..10 {
        let mut train = match &run_dir {
            None => Train::fresh(&tmp.0, &config, "run"),
            Some(dir) => Train::resume(&tmp.0, &format!("resume{i}"), dir, None),
        };
        let dir = train.run_dir();
        assert_eq!(run_dir.get_or_insert_with(|| dir.clone()), &dir);
        // A resumed run has dropped the rows past its checkpoint before printing the run
        // directory; wait for one of its own.
        let start_rows = rows(&dir);
        train.wait_until("a metrics row", || rows(&dir) > start_rows);
        std::thread::sleep(kill_delay(i));
        send("KILL", train.pid());
        let status = train.wait();
        assert_eq!(
            status.signal(),
            Some(9),
            "try {i}: {status}; stderr:\n{}",
            train.stderr()
        );

        // Every checkpoint on disk is whole, and at most one beyond KEEP (killed between
        // writing a checkpoint and pruning the oldest).
        let files = checkpoint_files(&dir);
        assert!(!files.is_empty(), "try {i}: no checkpoints");
        assert!(files.len() <= KEEP + 1, "try {i}: {files:?}");
        for (it, path) in &files {
            assert_eq!(read(path).header.iteration, *it, "try {i}");
        }
        // The marker names one of them (temporary files are never chosen).
        let marker = latest_marker(&dir).expect("the latest marker");
        assert!(
            files.iter().any(|(_, p)| p.ends_with(&marker)),
            "try {i}: `latest` names {marker}, not one of {files:?}"
        );
        let latest = resolve_checkpoint(&dir).expect("resolve");
        assert!(latest.ends_with(&marker), "try {i}: {}", latest.display());
        let iteration = read(&latest).header.iteration;
        assert!(
            iteration >= last_iteration,
            "try {i}: went back from {last_iteration} to {iteration}"
        );
        last_iteration = iteration;
    }

    // A last resume runs to the end.
    let run_dir = run_dir.expect("the run directory");
    let end = last_iteration + 3;
    let mut train = Train::resume(&tmp.0, "final", &run_dir, Some(end));
    let status = train.wait();
    assert!(status.success(), "{status}; stderr:\n{}", train.stderr());
    assert_rows_are_0_to(&run_dir, end);
    let latest = resolve_checkpoint(&run_dir).expect("resolve");
    assert_eq!(latest, checkpoint_path(&run_dir, end));
    assert_eq!(read(&latest).header.iteration, end);
    assert!(checkpoint_files(&run_dir).len() <= KEEP);
}

// Data-parallel runs (`--world-size`): the launcher, and a worker killed mid-run.

#[test]
fn world_size_2_starts_the_workers_and_writes_one_run() {
    let tmp = TempDir::new("world-size");
    let config = tmp.write_config(&config(16, "", "[32]", "save_interval = 1"));
    let logs = tmp.0.join("logs");
    let mut run = Train::start(
        &tmp.0,
        "pair",
        &[
            "--config".as_ref(),
            config.as_os_str(),
            "--log-dir".as_ref(),
            logs.as_os_str(),
            "--run-name".as_ref(),
            "pair".as_ref(),
            "--max-iterations".as_ref(),
            "3".as_ref(),
            "--world-size".as_ref(),
            "2".as_ref(),
        ],
    );
    let status = run.wait();
    assert!(status.success(), "{status}; stderr:\n{}", run.stderr());
    let stdout = run.stdout();
    let mut lines = stdout.lines();
    let run_dir = PathBuf::from(lines.next().expect("the run directory"));
    let summary: serde_json::Value =
        serde_json::from_str(lines.next().expect("the summary")).expect("json");
    // Both workers' steps: 3 iterations x 2 workers x 16 environments x 24 steps.
    assert_eq!(summary["total_steps"].as_u64(), Some(3 * 2 * 16 * 24));
    assert_eq!(lines.next(), None, "only rank 0 prints");
    assert_rows_are_0_to(&run_dir, 3);
    let ckpt = read(&checkpoint_path(&run_dir, 3));
    assert_eq!(
        ckpt.state.workers.len(),
        1,
        "rank 1's state is in the checkpoint"
    );
    assert_eq!(
        std::fs::read_dir(logs.join("interrupt"))
            .expect("runs")
            .count(),
        1
    );
}

/// A loopback port nobody listens on (bound, then freed).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn a_killed_worker_stops_the_run_with_its_rank_and_a_loadable_checkpoint() {
    let tmp = TempDir::new("killed-worker");
    let config = tmp.write_config(&config(16, "", "[32]", "save_interval = 1"));
    let logs = tmp.0.join("logs");
    let master = format!("127.0.0.1:{}", free_port());
    let worker = |rank: &str| {
        Train::start(
            &tmp.0,
            &format!("rank{rank}"),
            &[
                "--config".as_ref(),
                config.as_os_str(),
                "--log-dir".as_ref(),
                logs.as_os_str(),
                "--run-name".as_ref(),
                "killed".as_ref(),
                "--world-size".as_ref(),
                "2".as_ref(),
                "--rank".as_ref(),
                rank.as_ref(),
                "--master".as_ref(),
                master.as_ref(),
                "--dist-timeout".as_ref(),
                "60".as_ref(),
            ],
        )
    };
    let mut root = worker("0");
    let mut other = worker("1");
    let run_dir = root.run_dir();
    root.wait_until("a checkpoint", || !checkpoint_files(&run_dir).is_empty());
    send("KILL", other.pid());
    let _ = other.wait();
    let start = Instant::now();
    let status = root.wait();
    let stderr = root.stderr();
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    // Seen when the connection closed, not after the 60 s timeout.
    assert!(
        start.elapsed() < Duration::from_secs(50),
        "{:?}",
        start.elapsed()
    );
    assert!(stderr.contains("worker 1 of 2 left the run"), "{stderr}");
    let last = resolve_checkpoint(&run_dir).expect("the latest checkpoint");
    assert!(stderr.contains(&last.display().to_string()), "{stderr}");
    let ckpt = read(&last);
    assert_eq!(ckpt.state.workers.len(), 1);
}

#[test]
fn bad_addresses_and_missing_workers_are_clear_errors() {
    let tmp = TempDir::new("bad-address");
    let config = tmp.write_config(&config(16, "", "[32]", ""));
    let logs = tmp.0.join("logs");
    let start = |name: &str, extra: &[&str]| {
        let mut args: Vec<&OsStr> = vec![
            "--config".as_ref(),
            config.as_os_str(),
            "--log-dir".as_ref(),
            logs.as_os_str(),
        ];
        args.extend(extra.iter().map(|s| OsStr::new(*s)));
        let mut run = Train::start(&tmp.0, name, &args);
        let status = run.wait();
        (status, run.stderr())
    };
    let (status, stderr) = start(
        "no-port",
        &["--world-size", "2", "--rank", "1", "--master", "localhost"],
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("localhost") && stderr.contains("host:port"),
        "{stderr}"
    );
    let (status, stderr) = start("no-master", &["--world-size", "2", "--rank", "1"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--master"), "{stderr}");
    // Rank 0 alone: worker 1 never joins.
    let master = format!("127.0.0.1:{}", free_port());
    let (status, stderr) = start(
        "never-joins",
        &[
            "--world-size",
            "2",
            "--rank",
            "0",
            "--master",
            &master,
            "--dist-timeout",
            "2",
        ],
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("worker 1 of 2 did not answer within 2 s"),
        "{stderr}"
    );
}
