//! [`TcpGroup`]: the workers of a run, connected to rank 0 over TCP.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rl_core::{CollectiveError, Communicator};

use crate::frame::{self, ABORT, DATA, HELLO, Op, REJECT, WELCOME};

/// How long a worker waits for another by default: to join, or to reach the same call
/// (a worker may be collecting a long rollout or writing a checkpoint meanwhile).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How often a worker retries connecting to rank 0 while it is not listening yet.
const RETRY: Duration = Duration::from_millis(100);

/// The workers of a data-parallel run as one worker sees them: rank 0 holds a connection to
/// every other worker, the others one connection to rank 0. Implements
/// [`Communicator`]; calls from several threads are taken one at a time.
pub struct TcpGroup {
    rank: usize,
    world_size: usize,
    timeout: Duration,
    state: Mutex<State>,
}

struct State {
    links: Links,
    /// The first failure; every later call returns it.
    failed: Option<CollectiveError>,
}

enum Links {
    /// A run of one worker: every call returns at once.
    Alone,
    /// Rank 0: the connection to rank `i + 1` at `i`.
    Root(Vec<TcpStream>),
    /// Any other rank: its connection to rank 0.
    Worker(TcpStream),
}

impl std::fmt::Debug for TcpGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpGroup")
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TcpGroup {
    /// A run of one worker (rank 0 of 1).
    pub fn alone() -> Self {
        Self::with_links(0, 1, DEFAULT_TIMEOUT, Links::Alone)
    }

    /// Joins the run whose rank 0 listens at `master` (`host:port`) as worker `rank` of
    /// `world_size`: rank 0 listens there and waits for the others; the others connect to
    /// it, retrying while it is not up yet. Fails if anyone is missing after `timeout`.
    pub fn connect(
        rank: usize,
        world_size: usize,
        master: &str,
        timeout: Duration,
    ) -> Result<Self, CollectiveError> {
        check_rank(rank, world_size)?;
        if world_size == 1 {
            return Ok(Self::alone());
        }
        if rank == 0 {
            let listener = Self::listen(master)?;
            Self::root(listener, world_size, timeout)
        } else {
            Self::join(rank, world_size, master, timeout)
        }
    }

    /// Listens at `master` (`host:port`; port 0 picks a free one, which
    /// `TcpListener::local_addr` tells), for [`TcpGroup::root`].
    pub fn listen(master: &str) -> Result<TcpListener, CollectiveError> {
        let addrs = resolve(master)?;
        TcpListener::bind(&addrs[..]).map_err(|e| CollectiveError::Address {
            address: master.into(),
            message: format!("rank 0 cannot listen there: {e}"),
        })
    }

    /// Rank 0 of `world_size` workers: waits on `listener` until the `world_size - 1` others
    /// have joined (each with its own rank and the same world size), at most `timeout`.
    pub fn root(
        listener: TcpListener,
        world_size: usize,
        timeout: Duration,
    ) -> Result<Self, CollectiveError> {
        Self::root_watching(listener, world_size, timeout, || None)
    }

    /// [`TcpGroup::root`] for a launcher that started the other workers itself: while it
    /// waits, `gone` is asked whether one of them has already ended (its rank and how), so
    /// that a worker that dies before joining stops the run at once rather than after the
    /// timeout.
    pub fn root_watching(
        listener: TcpListener,
        world_size: usize,
        timeout: Duration,
        mut gone: impl FnMut() -> Option<(usize, String)>,
    ) -> Result<Self, CollectiveError> {
        check_rank(0, world_size)?;
        if world_size == 1 {
            return Ok(Self::alone());
        }
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "its address".into());
        let set_up = |e: io::Error| CollectiveError::Address {
            address: address.clone(),
            message: format!("cannot accept workers: {e}"),
        };
        listener.set_nonblocking(true).map_err(set_up)?;
        let deadline = Instant::now() + timeout;
        let mut slots: Vec<Option<TcpStream>> = (1..world_size).map(|_| None).collect();
        while slots.iter().any(Option::is_none) {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some((rank, reason)) = gone() {
                        return Err(CollectiveError::WorkerLost {
                            rank,
                            world_size,
                            reason,
                        });
                    }
                    if Instant::now() >= deadline {
                        let missing: Vec<usize> = slots
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| s.is_none())
                            .map(|(i, _)| i + 1)
                            .collect();
                        return Err(CollectiveError::Timeout {
                            rank: missing[0],
                            world_size,
                            during: format!("waiting at {address} for workers {missing:?} to join"),
                            timeout,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                Err(e) => return Err(set_up(e)),
            };
            stream.set_nonblocking(false).map_err(set_up)?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            stream
                .set_read_timeout(Some(remaining.max(Duration::from_secs(1))))
                .map_err(set_up)?;
            let hello = match frame::read_frame(&stream) {
                Ok((HELLO, payload)) => frame::parse_hello(&payload),
                _ => None,
            };
            let Some((rank, theirs)) = hello else {
                // Not a worker of ours (a stray connection): ignore it.
                tracing::warn!(%address, "ignored a connection that is not a cross-gym worker");
                continue;
            };
            let refusal = if theirs != world_size {
                Some(format!(
                    "it was started with world size {theirs}, rank 0 with {world_size}"
                ))
            } else if rank == 0 || rank >= world_size {
                Some(format!("rank {rank} is not in 1..{world_size}"))
            } else if slots[rank - 1].is_some() {
                Some(format!("two workers were started as rank {rank}"))
            } else {
                None
            };
            if let Some(message) = refusal {
                let _ = frame::write_frame(&stream, REJECT, message.as_bytes());
                return Err(CollectiveError::Mismatch { rank, message });
            }
            slots[rank - 1] = Some(stream);
        }
        let streams: Vec<TcpStream> = slots.into_iter().flatten().collect();
        for (i, stream) in streams.iter().enumerate() {
            configure(stream, timeout).map_err(|e| lost(i + 1, world_size, &e))?;
            frame::write_frame(stream, WELCOME, &[]).map_err(|e| lost(i + 1, world_size, &e))?;
        }
        tracing::info!(world_size, %address, "all workers joined");
        Ok(Self::with_links(
            0,
            world_size,
            timeout,
            Links::Root(streams),
        ))
    }

    /// Worker `rank` (not 0) of `world_size`: connects to rank 0 at `master`, retrying
    /// while it is not listening yet, and waits for the run to start, at most `timeout`
    /// each.
    pub fn join(
        rank: usize,
        world_size: usize,
        master: &str,
        timeout: Duration,
    ) -> Result<Self, CollectiveError> {
        check_rank(rank, world_size)?;
        if rank == 0 {
            return Err(CollectiveError::Mismatch {
                rank,
                message: "rank 0 listens; it does not join".into(),
            });
        }
        let addrs = resolve(master)?;
        let deadline = Instant::now() + timeout;
        let stream = loop {
            let attempt = addrs
                .iter()
                .find_map(|addr| TcpStream::connect_timeout(addr, Duration::from_secs(5)).ok());
            if let Some(stream) = attempt {
                break stream;
            }
            if Instant::now() >= deadline {
                return Err(CollectiveError::Timeout {
                    rank: 0,
                    world_size,
                    during: format!("connecting to it at {master}"),
                    timeout,
                });
            }
            std::thread::sleep(RETRY);
        };
        let root_lost = |e: io::Error| lost(0, world_size, &e);
        configure(&stream, timeout).map_err(root_lost)?;
        frame::write_frame(&stream, HELLO, &frame::hello(rank, world_size)).map_err(root_lost)?;
        match frame::read_frame(&stream) {
            Ok((WELCOME, _)) => {}
            Ok((REJECT, why)) => {
                return Err(CollectiveError::Mismatch {
                    rank,
                    message: String::from_utf8_lossy(&why).into_owned(),
                });
            }
            Ok((kind, _)) => {
                return Err(CollectiveError::Mismatch {
                    rank: 0,
                    message: format!("answered a hello with a frame of kind {kind}"),
                });
            }
            Err(e) if is_timeout(&e) => {
                return Err(CollectiveError::Timeout {
                    rank: 0,
                    world_size,
                    during: "waiting for every worker to join".into(),
                    timeout,
                });
            }
            Err(e) => return Err(root_lost(e)),
        }
        Ok(Self::with_links(
            rank,
            world_size,
            timeout,
            Links::Worker(stream),
        ))
    }

    fn with_links(rank: usize, world_size: usize, timeout: Duration, links: Links) -> Self {
        Self {
            rank,
            world_size,
            timeout,
            state: Mutex::new(State {
                links,
                failed: None,
            }),
        }
    }

    /// The timeout of every wait.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs one collective call: the root's part or a worker's part, on the state; the
    /// first failure is kept (and, on rank 0, told to the other workers).
    fn call<T>(
        &self,
        root: impl FnOnce(&[TcpStream]) -> Result<T, CollectiveError>,
        worker: impl FnOnce(&TcpStream) -> Result<T, CollectiveError>,
        alone: impl FnOnce() -> T,
    ) -> Result<T, CollectiveError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &state.failed {
            return Err(e.clone());
        }
        let result = match &state.links {
            Links::Alone => Ok(alone()),
            Links::Root(streams) => {
                let result = root(streams);
                if let Err(e) = &result {
                    // Everyone else hears why the run stops (the worker that left or
                    // aborted knows already).
                    let (origin, reason, told) = match e {
                        CollectiveError::Aborted { rank, reason } => {
                            (*rank, reason.clone(), Some(*rank))
                        }
                        CollectiveError::WorkerLost { rank, .. } => {
                            (*rank, e.to_string(), Some(*rank))
                        }
                        other => (culprit(other), other.to_string(), None),
                    };
                    for (i, s) in streams.iter().enumerate() {
                        if Some(i + 1) != told {
                            let _ = frame::write_frame(s, ABORT, &frame::abort(origin, &reason));
                        }
                    }
                }
                result
            }
            Links::Worker(stream) => worker(stream),
        };
        if let Err(e) = &result {
            state.failed = Some(e.clone());
        }
        result
    }

    /// Rank 0's half of a call: one data frame of `op` from every other worker, in rank
    /// order (`len`: the payload length every one must send, when known).
    fn collect(
        &self,
        streams: &[TcpStream],
        op: Op,
        len: Option<usize>,
        what: &str,
    ) -> Result<Vec<Vec<u8>>, CollectiveError> {
        let mut out = Vec::with_capacity(streams.len());
        for (i, stream) in streams.iter().enumerate() {
            let rank = i + 1;
            let payload = self.receive(stream, rank, op, what)?;
            if let Some(len) = len
                && payload.len() != len
            {
                return Err(CollectiveError::Mismatch {
                    rank,
                    message: format!("{what}: it sent {} bytes, rank 0 has {len}", payload.len()),
                });
            }
            out.push(payload);
        }
        Ok(out)
    }

    /// Reads the data frame of `op` that `rank` sends on `stream`.
    fn receive(
        &self,
        stream: &TcpStream,
        rank: usize,
        op: Op,
        what: &str,
    ) -> Result<Vec<u8>, CollectiveError> {
        let (kind, mut payload) = frame::read_frame(stream).map_err(|e| {
            if is_timeout(&e) {
                CollectiveError::Timeout {
                    rank,
                    world_size: self.world_size,
                    during: what.into(),
                    timeout: self.timeout,
                }
            } else {
                lost(rank, self.world_size, &e)
            }
        })?;
        match kind {
            DATA => {
                let theirs = payload.first().copied().and_then(Op::from_byte);
                if theirs != Some(op) {
                    return Err(CollectiveError::Mismatch {
                        rank,
                        message: format!(
                            "it called {} while this worker called {} ({what})",
                            theirs.map_or("an unknown call", Op::name),
                            op.name()
                        ),
                    });
                }
                payload.remove(0);
                Ok(payload)
            }
            ABORT => {
                let (rank, reason) = frame::parse_abort(&payload);
                Err(CollectiveError::Aborted { rank, reason })
            }
            other => Err(CollectiveError::Mismatch {
                rank,
                message: format!("it sent a frame of kind {other} during {what}"),
            }),
        }
    }

    /// Sends a data frame of `op` to `rank` on `stream`.
    fn send(
        &self,
        stream: &TcpStream,
        rank: usize,
        op: Op,
        bytes: &[u8],
    ) -> Result<(), CollectiveError> {
        let mut payload = Vec::with_capacity(bytes.len() + 1);
        payload.push(op as u8);
        payload.extend_from_slice(bytes);
        frame::write_frame(stream, DATA, &payload).map_err(|e| {
            if is_timeout(&e) {
                CollectiveError::Timeout {
                    rank,
                    world_size: self.world_size,
                    during: format!("sending a {}", op.name()),
                    timeout: self.timeout,
                }
            } else {
                lost(rank, self.world_size, &e)
            }
        })
    }

    /// Replaces `values` by their element-wise sum over the workers: rank 0 adds the
    /// others' to its own in rank order and hands every worker the result.
    fn all_reduce_sum<T: frame::Element>(
        &self,
        values: &mut [T],
        what: &str,
    ) -> Result<(), CollectiveError> {
        let op = T::OP;
        let own = frame::to_bytes(values);
        let len = own.len();
        let result = self.call(
            |streams| {
                let parts = self.collect(streams, op, Some(len), what)?;
                let mut acc = values.to_vec();
                for p in &parts {
                    frame::add_bytes(&mut acc, p);
                }
                let result = frame::to_bytes(&acc);
                for (i, stream) in streams.iter().enumerate() {
                    self.send(stream, i + 1, op, &result)?;
                }
                Ok(result)
            },
            |stream| {
                self.send(stream, 0, op, &own)?;
                let result = self.receive(stream, 0, op, what)?;
                if result.len() != len {
                    return Err(CollectiveError::Mismatch {
                        rank: 0,
                        message: format!("{what}: it sent back {} bytes for {len}", result.len()),
                    });
                }
                Ok(result)
            },
            || own.clone(),
        )?;
        frame::read_bytes(values, &result);
        Ok(())
    }
}

impl Communicator for TcpGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world_size
    }

    fn all_reduce_sum_f32(&self, values: &mut [f32], what: &str) -> Result<(), CollectiveError> {
        self.all_reduce_sum(values, what)
    }

    fn all_reduce_sum_f64(&self, values: &mut [f64], what: &str) -> Result<(), CollectiveError> {
        self.all_reduce_sum(values, what)
    }

    fn broadcast(&self, bytes: Vec<u8>, what: &str) -> Result<Vec<u8>, CollectiveError> {
        let op = Op::Broadcast;
        self.call(
            |streams| {
                for (i, stream) in streams.iter().enumerate() {
                    self.send(stream, i + 1, op, &bytes)?;
                }
                Ok(bytes.clone())
            },
            |stream| self.receive(stream, 0, op, what),
            || bytes.clone(),
        )
    }

    fn gather(&self, bytes: Vec<u8>, what: &str) -> Result<Option<Vec<Vec<u8>>>, CollectiveError> {
        let op = Op::Gather;
        self.call(
            |streams| {
                let mut all = vec![bytes.clone()];
                all.extend(self.collect(streams, op, None, what)?);
                Ok(Some(all))
            },
            |stream| self.send(stream, 0, op, &bytes).map(|()| None),
            || Some(vec![bytes.clone()]),
        )
    }

    fn abort(&self, reason: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.failed.is_some() {
            return;
        }
        let payload = frame::abort(self.rank, reason);
        match &state.links {
            Links::Alone => {}
            Links::Root(streams) => {
                for s in streams {
                    let _ = frame::write_frame(s, ABORT, &payload);
                }
            }
            Links::Worker(s) => {
                let _ = frame::write_frame(s, ABORT, &payload);
            }
        }
        state.failed = Some(CollectiveError::Aborted {
            rank: self.rank,
            reason: reason.into(),
        });
    }
}

/// Checks that `rank` is one of `world_size` workers.
fn check_rank(rank: usize, world_size: usize) -> Result<(), CollectiveError> {
    if world_size == 0 || rank >= world_size {
        return Err(CollectiveError::Mismatch {
            rank,
            message: format!("rank {rank} is not in 0..{world_size} (--rank, --world-size)"),
        });
    }
    Ok(())
}

/// The addresses of `host:port`.
fn resolve(master: &str) -> Result<Vec<SocketAddr>, CollectiveError> {
    let bad = |message: String| CollectiveError::Address {
        address: master.into(),
        message,
    };
    let addrs: Vec<SocketAddr> = master
        .to_socket_addrs()
        .map_err(|e| bad(format!("not a usable host:port ({e})")))?
        .collect();
    if addrs.is_empty() {
        return Err(bad("the host has no address".into()));
    }
    Ok(addrs)
}

/// No Nagle delay (every call is a short exchange), and `timeout` on every read and write.
fn configure(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))
}

/// Whether a read or write gave up after its timeout.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The error for a connection to `rank` that failed with `e`.
fn lost(rank: usize, world_size: usize, e: &io::Error) -> CollectiveError {
    let reason = match e.kind() {
        io::ErrorKind::UnexpectedEof => "its connection closed: the process ended?".into(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            "its connection was reset: the process ended?".into()
        }
        io::ErrorKind::BrokenPipe => "its connection is gone: the process ended?".into(),
        _ => e.to_string(),
    };
    CollectiveError::WorkerLost {
        rank,
        world_size,
        reason,
    }
}

/// The worker an error is about.
fn culprit(e: &CollectiveError) -> usize {
    match e {
        CollectiveError::WorkerLost { rank, .. }
        | CollectiveError::Timeout { rank, .. }
        | CollectiveError::Aborted { rank, .. }
        | CollectiveError::Mismatch { rank, .. } => *rank,
        CollectiveError::Address { .. } => 0,
    }
}
