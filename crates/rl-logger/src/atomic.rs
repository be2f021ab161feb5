//! Replacing a run's file atomically, for the metrics file and checkpoints alike.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file beside it (the directory is created
/// if missing), flushed to disk, renamed over `path`, and the directory flushed. A crash at
/// any moment leaves either the old file or the new one, never a partial file under `path`.
///
/// On failure, returns what was being done (for example `"flush"`) with the OS error, so
/// that the caller can name the file in its own error type.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), (&'static str, std::io::Error)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| ("create the directory of", e))?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut file = fs::File::create(&tmp).map_err(|e| ("create a temporary file for", e))?;
        file.write_all(bytes).map_err(|e| ("write", e))?;
        file.sync_all().map_err(|e| ("flush", e))?;
    }
    fs::rename(&tmp, path).map_err(|e| ("rename the temporary file onto", e))?;
    if let Ok(d) = fs::File::open(dir) {
        // Persist the rename itself; not every platform can sync a directory.
        let _ = d.sync_all();
    }
    Ok(())
}
