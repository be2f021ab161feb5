//! `train --world-size N`: data-parallel training. Without `--rank` this process is the
//! launcher: it starts workers `0..N` as child processes of the same command, meeting on a
//! free loopback port, and waits for them (torchrun's standalone mode). With
//! `--rank R --master HOST:PORT` it is one worker of a run whose workers were started by
//! hand, on one machine or several.

use std::ffi::OsString;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rl_core::Communicator;
use rl_distributed::TcpGroup;

/// How a `train` command takes part in a data-parallel run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Trains alone.
    Alone,
    /// Starts the other workers and is rank 0 of `world_size`.
    Launcher { world_size: usize },
    /// Worker `rank` of `world_size`, meeting the others at `master`.
    Worker {
        rank: usize,
        world_size: usize,
        master: String,
    },
}

impl Role {
    /// The role that `--world-size`, `--rank` and `--master` ask for.
    pub fn from_flags(
        world_size: usize,
        rank: Option<usize>,
        master: Option<String>,
    ) -> anyhow::Result<Self> {
        if world_size == 0 {
            bail!("--world-size must be at least 1");
        }
        Ok(match (rank, master) {
            (None, None) if world_size == 1 => Role::Alone,
            (None, None) => Role::Launcher { world_size },
            (Some(rank), Some(master)) => {
                if rank >= world_size {
                    bail!("--rank {rank} is not in 0..{world_size} (--world-size {world_size})");
                }
                Role::Worker {
                    rank,
                    world_size,
                    master,
                }
            }
            (Some(_), None) => bail!(
                "--rank needs --master HOST:PORT, the address where rank 0 listens (or leave \
                 out --rank, and --world-size starts every worker on this machine)"
            ),
            (None, Some(_)) => bail!(
                "--master needs --rank: it starts one worker of a run by hand (--world-size \
                 alone starts every worker on this machine, on a free loopback port)"
            ),
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        match self {
            Role::Worker { rank, .. } => *rank,
            _ => 0,
        }
    }
}

/// The workers a launcher started, killed if still running when it ends.
struct Children(Vec<(usize, Child)>);

impl Children {
    /// Sends `signal` to every worker still running.
    #[cfg(unix)]
    fn signal(&mut self, signal: nix::sys::signal::Signal) {
        for (_, child) in &mut self.0 {
            if matches!(child.try_wait(), Ok(None))
                && let Ok(pid) = i32::try_from(child.id())
            {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
            }
        }
    }

    /// Kills every worker still running and reaps them all.
    fn kill_all(&mut self) {
        for (_, child) in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// How long the workers may take to end after rank 0 has (they finish the same step, or
/// learn of its failure at once), and rank 0 after another worker failed.
const GRACE: Duration = Duration::from_secs(30);

/// `--world-size N` alone: starts workers `0..N` on this machine as `train` commands with
/// this command's arguments and `--rank R --master 127.0.0.1:PORT` (a free port), each in
/// a process group of its own, and waits for them (torchrun's standalone mode). Rank 0's
/// standard output is this command's (the run directory and the summary); the others'
/// is discarded. Each worker gets `RAYON_NUM_THREADS` = the cores divided among the workers
/// unless it is set. SIGINT and SIGTERM are passed on to every worker (so the run stops
/// together after the current iteration, with a checkpoint). Returns rank 0's exit status,
/// or a failure if another worker failed while rank 0 succeeded.
pub fn launch(world_size: usize, signals: &AtomicUsize) -> anyhow::Result<ExitCode> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("find a free loopback port for rank 0")?
        .port();
    let master = format!("127.0.0.1:{port}");
    let exe = std::env::current_exe().context("find this program to start the workers")?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let threads = std::env::var("RAYON_NUM_THREADS").ok().unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / world_size).max(1).to_string()
    });
    tracing::info!(world_size, %master, threads, "starting the workers");
    let mut children = Children(Vec::new());
    for rank in 0..world_size {
        let mut command = Command::new(&exe);
        command
            .args(&args)
            .arg("--rank")
            .arg(rank.to_string())
            .arg("--master")
            .arg(&master)
            .env("RAYON_NUM_THREADS", &threads)
            .stdin(Stdio::null())
            .stdout(if rank == 0 {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::inherit());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Signals from the terminal reach the launcher only, which passes each on once.
            command.process_group(0);
        }
        let child = command
            .spawn()
            .with_context(|| format!("start worker {rank} ({})", exe.display()))?;
        children.0.push((rank, child));
    }
    let mut forwarded = 0;
    let mut failed_at: Option<(usize, String, Instant)> = None;
    loop {
        #[cfg(unix)]
        {
            // Each signal once: the first stops the workers after the current iteration,
            // a second at once.
            while signals.load(Ordering::SeqCst) > forwarded {
                children.signal(nix::sys::signal::Signal::SIGINT);
                forwarded += 1;
            }
        }
        #[cfg(not(unix))]
        let _ = (signals, &mut forwarded);
        // Rank 0 ended: the run is over; the others follow.
        if let Ok(Some(status)) = children.0[0].1.try_wait() {
            let deadline = Instant::now() + GRACE;
            let mut other_failure = None;
            for (rank, child) in children.0.iter_mut().skip(1) {
                let status = loop {
                    match child.try_wait() {
                        Ok(Some(s)) => break Some(s),
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(50))
                        }
                        _ => break None,
                    }
                };
                match status {
                    Some(s) if s.success() => {}
                    Some(s) => other_failure = other_failure.or(Some((*rank, s.to_string()))),
                    None => other_failure = other_failure.or(Some((*rank, "did not end".into()))),
                }
            }
            children.kill_all();
            return match (status.success(), other_failure) {
                (true, Some((rank, how))) => {
                    bail!("worker {rank} of {world_size} failed ({how}) although rank 0 finished")
                }
                _ => Ok(exit_code(status)),
            };
        }
        // Another worker failed: rank 0 sees it at once once the run has started; before
        // that it would wait for the worker to join until --dist-timeout.
        if failed_at.is_none() {
            for (rank, child) in children.0.iter_mut().skip(1) {
                if let Ok(Some(status)) = child.try_wait()
                    && !status.success()
                {
                    failed_at = Some((*rank, status.to_string(), Instant::now()));
                    break;
                }
            }
        }
        if let Some((rank, how, at)) = &failed_at
            && at.elapsed() > GRACE
        {
            children.kill_all();
            bail!("worker {rank} of {world_size} failed ({how}); the run was stopped");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The exit code of a worker's status (a worker killed by a signal: failure).
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    match status.code().and_then(|c| u8::try_from(c).ok()) {
        Some(code) => ExitCode::from(code),
        None => ExitCode::FAILURE,
    }
}

/// Joins a run as worker `rank` of `world_size` at `master`.
pub fn join(
    rank: usize,
    world_size: usize,
    master: &str,
    timeout: Duration,
) -> anyhow::Result<Arc<dyn Communicator>> {
    Ok(Arc::new(TcpGroup::connect(
        rank, world_size, master, timeout,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_give_a_role_or_a_clear_error() {
        assert_eq!(Role::from_flags(1, None, None).expect("alone"), Role::Alone);
        assert_eq!(
            Role::from_flags(3, None, None).expect("launcher"),
            Role::Launcher { world_size: 3 }
        );
        assert_eq!(
            Role::from_flags(2, Some(1), Some("10.0.0.1:29500".into())).expect("worker"),
            Role::Worker {
                rank: 1,
                world_size: 2,
                master: "10.0.0.1:29500".into()
            }
        );
        for (world, rank, master, needle) in [
            (0, None, None, "at least 1"),
            (2, Some(2), Some("h:1"), "not in 0..2"),
            (2, Some(1), None, "--rank needs --master"),
            (2, None, Some("h:1"), "--master needs --rank"),
        ] {
            let err = Role::from_flags(world, rank, master.map(String::from))
                .expect_err(needle)
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
