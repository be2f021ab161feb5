//! The wire format: every message is a frame `[kind: u8][length: u64 LE][payload]`.

use std::io::{self, Read, Write};
use std::net::TcpStream;

/// Sent by a worker when it connects: [`MAGIC`], then its rank and the world size it was
/// started with (`u32` LE each).
pub(crate) const HELLO: u8 = 1;
/// Rank 0's answer to a hello: the run can start.
pub(crate) const WELCOME: u8 = 2;
/// Rank 0's answer to a hello it refuses; the payload says why.
pub(crate) const REJECT: u8 = 3;
/// A collective call's data; the first payload byte is the call ([`Op`]).
pub(crate) const DATA: u8 = 4;
/// A worker stops the run: `[rank: u32 LE][reason, UTF-8]`.
pub(crate) const ABORT: u8 = 5;

/// Identifies this protocol (and its version) in a hello.
pub(crate) const MAGIC: &[u8; 8] = b"CGDIST01";

/// Refuses frames larger than this (a corrupt length, or something that is not a worker).
const MAX_FRAME: u64 = 1 << 34;

/// The collective call a data frame belongs to, so that workers out of step are caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    SumF32 = 1,
    SumF64 = 2,
    Broadcast = 3,
    Gather = 4,
}

impl Op {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::SumF32 => "all-reduce (f32)",
            Op::SumF64 => "all-reduce (f64)",
            Op::Broadcast => "broadcast",
            Op::Gather => "gather",
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Op::SumF32),
            2 => Some(Op::SumF64),
            3 => Some(Op::Broadcast),
            4 => Some(Op::Gather),
            _ => None,
        }
    }
}

/// Writes one frame.
pub(crate) fn write_frame(mut stream: &TcpStream, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut header = [0u8; 9];
    header[0] = kind;
    header[1..].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    stream.write_all(&header)?;
    stream.write_all(payload)?;
    stream.flush()
}

/// Reads one frame: its kind and payload.
pub(crate) fn read_frame(mut stream: &TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 9];
    stream.read_exact(&mut header)?;
    let mut len = [0u8; 8];
    len.copy_from_slice(&header[1..]);
    let len = u64::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes (not a cross-gym worker, or a corrupt stream)"),
        ));
    }
    let len = usize::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "frame too large"))?;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload)?;
    Ok((header[0], payload))
}

/// A hello's payload.
pub(crate) fn hello(rank: usize, world_size: usize) -> Vec<u8> {
    let mut p = MAGIC.to_vec();
    p.extend_from_slice(&(rank as u32).to_le_bytes());
    p.extend_from_slice(&(world_size as u32).to_le_bytes());
    p
}

/// A hello's rank and world size, or `None` if it is not one.
pub(crate) fn parse_hello(p: &[u8]) -> Option<(usize, usize)> {
    if p.len() != 16 || &p[..8] != MAGIC {
        return None;
    }
    let rank = u32::from_le_bytes(p[8..12].try_into().ok()?);
    let world = u32::from_le_bytes(p[12..16].try_into().ok()?);
    Some((rank as usize, world as usize))
}

/// An abort's payload.
pub(crate) fn abort(rank: usize, reason: &str) -> Vec<u8> {
    let mut p = (rank as u32).to_le_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// An abort's rank and reason.
pub(crate) fn parse_abort(p: &[u8]) -> (usize, String) {
    if p.len() < 4 {
        return (0, "(no reason given)".into());
    }
    let rank = u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize;
    (rank, String::from_utf8_lossy(&p[4..]).into_owned())
}

/// A number that all-reduces travel as: its little-endian bytes, and its sum.
pub(crate) trait Element: Copy + std::ops::AddAssign {
    /// The all-reduce call for this type.
    const OP: Op;
    /// Bytes per value.
    const SIZE: usize;
    /// Appends the value's little-endian bytes.
    fn put(self, out: &mut Vec<u8>);
    /// The value of `SIZE` little-endian bytes.
    fn get(bytes: &[u8]) -> Self;
}

impl Element for f32 {
    const OP: Op = Op::SumF32;
    const SIZE: usize = 4;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl Element for f64 {
    const OP: Op = Op::SumF64;
    const SIZE: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

/// `values` as little-endian bytes.
pub(crate) fn to_bytes<T: Element>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * T::SIZE);
    values.iter().for_each(|v| v.put(&mut out));
    out
}

/// Adds the little-endian values of `bytes` to `acc` (same length, checked by the caller).
pub(crate) fn add_bytes<T: Element>(acc: &mut [T], bytes: &[u8]) {
    for (a, c) in acc.iter_mut().zip(bytes.chunks_exact(T::SIZE)) {
        *a += T::get(c);
    }
}

/// Overwrites `out` with the little-endian values of `bytes`.
pub(crate) fn read_bytes<T: Element>(out: &mut [T], bytes: &[u8]) {
    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(T::SIZE)) {
        *o = T::get(c);
    }
}
