//! Checkpoint files: a checksummed header (JSON) and the algorithm's state, written
//! atomically (temporary file, flush, rename).
//!
//! Layout: `CGCKPT01`, header length (u64 LE), header JSON, payload length (u64 LE),
//! payload, CRC-32 of everything before it (u32 LE).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

const MAGIC: &[u8; 8] = b"CGCKPT01";

/// File extension of checkpoints.
pub const EXTENSION: &str = "ckpt";

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

/// A checkpoint in memory.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The run's state.
    pub header: CheckpointHeader,
    /// The algorithm's state (weights, optimizer, normalisers, random state).
    pub payload: Vec<u8>,
}

/// Path of the checkpoint of `iteration` in a run directory.
pub fn checkpoint_path(run_dir: &Path, iteration: usize) -> PathBuf {
    run_dir
        .join("checkpoints")
        .join(format!("model_{iteration}.{EXTENSION}"))
}

impl Checkpoint {
    /// Serialises the checkpoint.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let header = serde_json::to_vec(&self.header)?;
        let mut out = Vec::with_capacity(32 + header.len() + self.payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&(self.payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.payload);
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
        Ok(Self {
            header,
            payload: body[cursor..payload_end].to_vec(),
        })
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
        let io = |action: &'static str| {
            move |e: std::io::Error| Error::Io {
                path: path.to_path_buf(),
                action,
                source: e,
            }
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io("create the checkpoint directory for"))?;
        let bytes = self.to_bytes().map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!("cannot serialise the header: {e}"),
        })?;
        let tmp = path.with_extension(format!("{EXTENSION}.tmp"));
        {
            let mut file = fs::File::create(&tmp).map_err(io("create a temporary file for"))?;
            file.write_all(&bytes).map_err(io("write"))?;
            file.sync_all().map_err(io("flush"))?;
        }
        fs::rename(&tmp, path).map_err(io("rename the temporary file onto"))?;
        if let Ok(d) = fs::File::open(dir) {
            // Persist the rename itself; not all platforms allow syncing a directory.
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// The newest checkpoint of a run directory, or the file itself when `path` is a file.
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
    let entries = fs::read_dir(&dir).map_err(|e| Error::Io {
        path: dir.clone(),
        action: "list the checkpoints in",
        source: e,
    })?;
    let newest = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let it = name
                .strip_prefix("model_")?
                .strip_suffix(&format!(".{EXTENSION}"))?
                .parse::<usize>()
                .ok()?;
            Some((it, e.path()))
        })
        .max_by_key(|(it, _)| *it);
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
            payload: vec![1, 2, 3, 4, 5],
        }
    }

    #[test]
    fn round_trip_and_damage_detection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = checkpoint_path(dir.path(), 7);
        sample().write_atomic(&path).expect("write");
        let back = Checkpoint::read(&path).expect("read");
        assert_eq!(back.header, sample().header);
        assert_eq!(back.payload, sample().payload);
        assert_eq!(resolve_checkpoint(dir.path()).expect("newest"), path);

        let bytes = fs::read(&path).expect("bytes");
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        assert!(Checkpoint::from_bytes(&flipped, &path).is_err());
        assert!(Checkpoint::from_bytes(&bytes[..bytes.len() - 3], &path).is_err());
        assert!(Checkpoint::from_bytes(&[], &path).is_err());
        assert!(Checkpoint::from_bytes(b"hello world, not a checkpoint", &path).is_err());
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
