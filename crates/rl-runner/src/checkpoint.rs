//! Checkpoint files: a checksummed header (JSON) and the run's state, written atomically
//! (temporary file, flush, rename), a `latest` marker updated the same way, and pruning of
//! old checkpoints.
//!
//! Layout: `CGCKPT02`, header length (u64 LE), header JSON, payload length (u64 LE),
//! payload (MessagePack of [`RunState`]), CRC-32 of everything before it (u32 LE).

use std::fs;
use std::path::{Path, PathBuf};

use rl_core::EnvSnapshot;
use rl_logger::write_atomic;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::stats::EpisodeStats;

const MAGIC: &[u8; 8] = b"CGCKPT02";
/// Magic bytes of the first format (weights without the environments' state).
const MAGIC_V1: &[u8; 8] = b"CGCKPT01";

/// File extension of checkpoints.
pub const EXTENSION: &str = "ckpt";

/// Name of the file in `checkpoints/` that names the newest checkpoint of the run.
pub const LATEST_MARKER: &str = "latest";

/// What a checkpoint says about the run, besides the algorithm's own state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointHeader {
    /// Iterations completed when the checkpoint was written.
    pub iteration: usize,
    /// Environment steps taken so far.
    pub total_steps: u64,
    /// Wall seconds of training so far.
    pub wall_s: f64,
    /// The learning rate at that point.
    pub learning_rate: f64,
    /// The resolved config of the run (TOML).
    pub config: String,
}

/// Everything a run's future depends on besides its config: the algorithm's state
/// (weights, optimizer, learning rate, normalisers, random stream), the environments'
/// state (physical state, episode counters, random streams) and the episode statistics
/// window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    /// The algorithm's serialised state ([`rl_core::Algorithm::save_state`]).
    #[serde(with = "serde_bytes")]
    pub algorithm: Vec<u8>,
    /// The inference policy alone ([`rl_core::Algorithm::save_policy`]), which `play` and
    /// export read without building the algorithm; `None` in checkpoints written before
    /// it was stored (their policy is then taken from the algorithm's state).
    #[serde(default, with = "serde_bytes")]
    pub policy: Option<Vec<u8>>,
    /// The environments' state, when the run had started stepping them.
    pub env: Option<EnvSnapshot>,
    /// The window of finished episodes behind `Train/mean_reward`.
    pub episodes: EpisodeStats,
    /// In a data-parallel run, the state of workers `1..world_size` (the fields above are
    /// rank 0's); empty for a run of one worker.
    #[serde(default)]
    pub workers: Vec<WorkerState>,
}

/// What a checkpoint keeps of a data-parallel worker other than rank 0: its own random
/// streams, environments and episode window (its weights are rank 0's, which the run
/// checks when it saves).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerState {
    /// The worker's algorithm state ([`rl_core::Algorithm::save_state`]).
    #[serde(with = "serde_bytes")]
    pub algorithm: Vec<u8>,
    /// The worker's environments, when they had started stepping.
    pub env: Option<EnvSnapshot>,
    /// The worker's window of finished episodes.
    pub episodes: EpisodeStats,
}

/// A checkpoint in memory.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The run's counters and config.
    pub header: CheckpointHeader,
    /// The run's state.
    pub state: RunState,
}

/// Path of the checkpoint of `iteration` in a run directory.
pub fn checkpoint_path(run_dir: &Path, iteration: usize) -> PathBuf {
    run_dir
        .join("checkpoints")
        .join(format!("model_{iteration}.{EXTENSION}"))
}

impl Checkpoint {
    /// Serialises the checkpoint; `path` names it in errors.
    pub fn to_bytes(&self, path: &Path) -> Result<Vec<u8>, Error> {
        let bad = |message: String| Error::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        let header = serde_json::to_vec(&self.header)
            .map_err(|e| bad(format!("cannot serialise the header: {e}")))?;
        let payload = rmp_serde::to_vec_named(&self.state)
            .map_err(|e| bad(format!("cannot serialise the run state: {e}")))?;
        let mut out = Vec::with_capacity(32 + header.len() + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&payload);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Parses a checkpoint; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, Error> {
        let bad = |message: String| Error::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        if bytes.is_empty() {
            return Err(bad("the file is empty".into()));
        }
        if bytes.len() >= MAGIC_V1.len() && &bytes[..MAGIC_V1.len()] == MAGIC_V1 {
            return Err(bad(
                "written by an earlier version of cross-gym (format 1, without the environments' state); it cannot be loaded".into(),
            ));
        }
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad("not a cross-gym checkpoint (wrong magic bytes)".into()));
        }
        if bytes.len() < MAGIC.len() + 8 + 8 + 4 {
            return Err(bad(format!("truncated: only {} bytes", bytes.len())));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let mut cursor = MAGIC.len();
        let take_len = |cursor: &mut usize| -> Result<usize, Error> {
            let end = *cursor + 8;
            let raw: [u8; 8] = body
                .get(*cursor..end)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| bad("truncated".into()))?;
            *cursor = end;
            usize::try_from(u64::from_le_bytes(raw))
                .map_err(|_| bad("corrupted length field".into()))
        };
        let header_len = take_len(&mut cursor)?;
        let header_end = cursor
            .checked_add(header_len)
            .filter(|&e| e <= body.len())
            .ok_or_else(|| bad("truncated (header cut off)".into()))?;
        let header_bytes = &body[cursor..header_end];
        cursor = header_end;
        let payload_len = take_len(&mut cursor)?;
        let payload_end = cursor
            .checked_add(payload_len)
            .filter(|&e| e == body.len())
            .ok_or_else(|| {
                bad("truncated or has trailing bytes (payload length mismatch)".into())
            })?;
        if crc32fast::hash(body) != stored {
            return Err(bad("corrupted (checksum mismatch)".into()));
        }
        let header: CheckpointHeader = serde_json::from_slice(header_bytes)
            .map_err(|e| bad(format!("unreadable header: {e}")))?;
        let state: RunState = rmp_serde::from_slice(&body[cursor..payload_end])
            .map_err(|e| bad(format!("unreadable run state: {e}")))?;
        Ok(Self { header, state })
    }

    /// Reads and checks a checkpoint file.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let bytes = fs::read(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            action: "read the checkpoint",
            source: e,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Writes the checkpoint atomically: a temporary file in the same directory, flushed
    /// to disk, then renamed over `path`. A crash leaves either the old file or the new one.
    pub fn write_atomic(&self, path: &Path) -> Result<(), Error> {
        let bytes = self.to_bytes(path)?;
        write_atomic(path, &bytes).map_err(|(action, source)| Error::Io {
            path: path.to_path_buf(),
            action,
            source,
        })
    }
}

/// The iteration of a checkpoint file name `model_<iteration>.ckpt`.
fn checkpoint_iteration(name: &str) -> Option<usize> {
    name.strip_prefix("model_")?
        .strip_suffix(&format!(".{EXTENSION}"))?
        .parse::<usize>()
        .ok()
}

/// The checkpoints of a `checkpoints/` directory, `(iteration, path)`, oldest first.
fn list_checkpoints(dir: &Path) -> Result<Vec<(usize, PathBuf)>, Error> {
    let entries = fs::read_dir(dir).map_err(|e| Error::Io {
        path: dir.to_path_buf(),
        action: "list the checkpoints in",
        source: e,
    })?;
    let mut found: Vec<(usize, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let it = checkpoint_iteration(e.file_name().to_str()?)?;
            Some((it, e.path()))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Points the run's `checkpoints/latest` marker at `checkpoint` (atomically, like the
/// checkpoint itself).
pub fn write_latest_marker(checkpoint: &Path) -> Result<(), Error> {
    let dir = checkpoint.parent().unwrap_or(Path::new("."));
    let name = checkpoint
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Checkpoint {
            path: checkpoint.to_path_buf(),
            message: "the checkpoint's file name is not valid UTF-8".into(),
        })?;
    let marker = dir.join(LATEST_MARKER);
    write_atomic(&marker, format!("{name}\n").as_bytes()).map_err(|(action, source)| Error::Io {
        path: marker.clone(),
        action,
        source,
    })
}

/// Deletes the oldest checkpoints of the run so that `keep` remain among those up to
/// `current` (the one just written). Checkpoints of later iterations (left by an abandoned
/// branch of the run after resuming from an earlier checkpoint) are not counted and are
/// left alone. `keep == 0` keeps everything.
pub fn prune_checkpoints(current: &Path, keep: usize) -> Result<Vec<PathBuf>, Error> {
    if keep == 0 {
        return Ok(Vec::new());
    }
    let dir = current.parent().unwrap_or(Path::new("."));
    let Some(current_it) = current
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(checkpoint_iteration)
    else {
        return Ok(Vec::new());
    };
    let older: Vec<PathBuf> = list_checkpoints(dir)?
        .into_iter()
        .filter(|(it, _)| *it <= current_it)
        .map(|(_, p)| p)
        .collect();
    let remove = older.len().saturating_sub(keep);
    let mut removed = Vec::with_capacity(remove);
    for path in older.into_iter().take(remove) {
        fs::remove_file(&path).map_err(|e| Error::Io {
            path: path.clone(),
            action: "delete the old checkpoint",
            source: e,
        })?;
        removed.push(path);
    }
    Ok(removed)
}

/// The checkpoint to continue or evaluate: `path` itself when it is a file; for a run
/// directory (or its `checkpoints/` folder) the one its `latest` marker names, or, without a
/// usable marker, the one with the highest iteration.
pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf, Error> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.exists() {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: "no such file or run directory".into(),
        });
    }
    let dir = if path.join("checkpoints").is_dir() {
        path.join("checkpoints")
    } else {
        path.to_path_buf()
    };
    if let Ok(text) = fs::read_to_string(dir.join(LATEST_MARKER)) {
        let name = text.trim();
        if checkpoint_iteration(name).is_some() && dir.join(name).is_file() {
            return Ok(dir.join(name));
        }
        tracing::warn!(
            marker = %dir.join(LATEST_MARKER).display(),
            "the latest marker names no checkpoint file; using the highest iteration"
        );
    }
    let newest = list_checkpoints(&dir)?.pop();
    newest.map(|(_, p)| p).ok_or_else(|| Error::Checkpoint {
        path: path.to_path_buf(),
        message: format!("no checkpoints (model_<iteration>.{EXTENSION}) in this directory"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            header: CheckpointHeader {
                iteration: 7,
                total_steps: 1234,
                wall_s: 1.5,
                learning_rate: 3e-4,
                config: "seed = 1".into(),
            },
            state: RunState {
                algorithm: vec![1, 2, 3, 4, 5],
                policy: Some(vec![6, 7]),
                env: None,
                episodes: EpisodeStats::new(),
                workers: Vec::new(),
            },
        }
    }

    #[test]
    fn round_trip_and_damage_detection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = checkpoint_path(dir.path(), 7);
        sample().write_atomic(&path).expect("write");
        let back = Checkpoint::read(&path).expect("read");
        assert_eq!(back.header, sample().header);
        assert_eq!(back.state.algorithm, sample().state.algorithm);
        assert_eq!(resolve_checkpoint(dir.path()).expect("newest"), path);

        let bytes = fs::read(&path).expect("bytes");
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        assert!(Checkpoint::from_bytes(&flipped, &path).is_err());
        assert!(Checkpoint::from_bytes(&bytes[..bytes.len() - 3], &path).is_err());
        assert!(Checkpoint::from_bytes(&[], &path).is_err());
        assert!(Checkpoint::from_bytes(b"hello world, not a checkpoint", &path).is_err());
        let mut v1 = bytes.clone();
        v1[..8].copy_from_slice(MAGIC_V1);
        let e = Checkpoint::from_bytes(&v1, &path).expect_err("format 1");
        assert!(e.to_string().contains("earlier version"), "{e}");
    }

    #[test]
    fn the_latest_marker_wins_over_higher_iterations_and_falls_back_when_stale() {
        let dir = tempfile::tempdir().expect("tempdir");
        for it in [10, 20, 30] {
            sample()
                .write_atomic(&checkpoint_path(dir.path(), it))
                .expect("write");
        }
        // A run resumed from iteration 20 marks its own checkpoint as the latest.
        write_latest_marker(&checkpoint_path(dir.path(), 20)).expect("marker");
        assert_eq!(
            resolve_checkpoint(dir.path()).expect("marked"),
            checkpoint_path(dir.path(), 20)
        );
        // A marker naming a missing file falls back to the highest iteration.
        fs::remove_file(checkpoint_path(dir.path(), 20)).expect("remove");
        assert_eq!(
            resolve_checkpoint(dir.path()).expect("fallback"),
            checkpoint_path(dir.path(), 30)
        );
        // Leftover temporary files of an interrupted write are never chosen.
        fs::write(dir.path().join("checkpoints/model_99.ckpt.tmp"), b"partial").expect("tmp");
        assert_eq!(
            resolve_checkpoint(dir.path()).expect("fallback"),
            checkpoint_path(dir.path(), 30)
        );
    }

    #[test]
    fn pruning_keeps_the_newest_k_up_to_the_current_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        for it in [5, 10, 15, 20, 40] {
            sample()
                .write_atomic(&checkpoint_path(dir.path(), it))
                .expect("write");
        }
        let current = checkpoint_path(dir.path(), 20);
        assert!(prune_checkpoints(&current, 0).expect("keep all").is_empty());
        let removed = prune_checkpoints(&current, 2).expect("prune");
        assert_eq!(
            removed,
            vec![
                checkpoint_path(dir.path(), 5),
                checkpoint_path(dir.path(), 10)
            ]
        );
        let left: Vec<usize> = list_checkpoints(&dir.path().join("checkpoints"))
            .expect("list")
            .into_iter()
            .map(|(it, _)| it)
            .collect();
        // 40 belongs to an abandoned branch: not counted, not deleted.
        assert_eq!(left, vec![15, 20, 40]);
    }

    #[test]
    fn newest_checkpoint_is_chosen_by_iteration_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        for it in [5, 50, 10] {
            sample()
                .write_atomic(&checkpoint_path(dir.path(), it))
                .expect("write");
        }
        assert_eq!(
            resolve_checkpoint(dir.path()).expect("newest"),
            checkpoint_path(dir.path(), 50)
        );
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(resolve_checkpoint(empty.path()).is_err());
    }
}
