//! `metrics.jsonl`: one flat JSON object per iteration, appended and flushed line by line.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{Error, IterationRecord, MetricWriter, write_atomic};

/// The name of the metrics file inside the run directory.
pub const METRICS_FILE_NAME: &str = "metrics.jsonl";

/// The keys every row starts with; scalar tags may not reuse them.
const FIXED_KEYS: [&str; 3] = ["iteration", "total_steps", "wall_s"];

/// Appends one JSON object per iteration to `<run_dir>/metrics.jsonl`.
///
/// A row looks like
/// `{"iteration":3,"total_steps":12288,"wall_s":4.2,"Loss/value":0.31,"Train/mean_reward":null}`:
/// the fixed keys first, then every scalar tag in sorted order; non-finite numbers are written
/// as `null`. Each row is flushed as soon as it is written, so a killed run loses nothing that
/// was logged. A resumed run appends to the same file after dropping the rows of iterations
/// its checkpoint does not include ([`drop_rows_from`]).
#[derive(Debug)]
pub struct JsonlWriter {
    path: PathBuf,
    file: BufWriter<File>,
    line: String,
}

impl JsonlWriter {
    /// Opens (or creates) `<run_dir>/metrics.jsonl` for appending, creating `run_dir` first.
    pub fn new(run_dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(run_dir).map_err(|source| Error::RunDir {
            path: run_dir.to_path_buf(),
            source,
        })?;
        let path = run_dir.join(METRICS_FILE_NAME);
        let io = |action| io_error(&path, action);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io("open for appending"))?;
        // A run killed in the middle of a row leaves it unterminated; start on a fresh line so
        // the next row stays parseable.
        if ends_without_newline(&mut file).map_err(io("read the end of"))? {
            file.write_all(b"\n").map_err(io("append a newline to"))?;
        }
        Ok(Self {
            path,
            file: BufWriter::new(file),
            line: String::new(),
        })
    }

    /// The path of the metrics file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes the rows of iterations `>= iteration` from `<run_dir>/metrics.jsonl` (and an
/// unterminated last row, the remains of a killed write), so that a run resumed from the
/// checkpoint of `iteration` continues the file as if it had never stopped. The file is
/// replaced atomically; unreadable complete lines are kept. Returns the number of lines
/// removed; a missing file removes nothing.
pub fn drop_rows_from(run_dir: &Path, iteration: usize) -> Result<usize, Error> {
    let path = run_dir.join(METRICS_FILE_NAME);
    let io = |action| io_error(&path, action);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io("read")(e)),
    };
    let torn = !text.is_empty() && !text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = String::with_capacity(text.len());
    let mut dropped = 0;
    for (i, line) in lines.iter().enumerate() {
        let row_iteration = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("iteration").and_then(serde_json::Value::as_u64));
        let drop = match row_iteration {
            Some(it) => it >= iteration as u64,
            None => torn && i + 1 == lines.len(),
        };
        if drop {
            dropped += 1;
        } else {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    if dropped == 0 {
        return Ok(0);
    }
    write_atomic(&path, kept.as_bytes()).map_err(|(action, source)| io(action)(source))?;
    Ok(dropped)
}

/// Maps an OS error on `path` during `action` to [`Error::Io`].
fn io_error(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// Whether the file is non-empty and its last byte is not `\n`.
fn ends_without_newline(file: &mut File) -> std::io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Appends `value` as a JSON number, or `null` when it is not finite.
fn push_number(line: &mut String, value: f64) {
    if value.is_finite() {
        // `serde_json` prints the shortest representation that reads back to the same f64.
        line.push_str(&serde_json::Value::from(value).to_string());
    } else {
        line.push_str("null");
    }
}

impl MetricWriter for JsonlWriter {
    fn write(&mut self, record: &IterationRecord) -> Result<(), Error> {
        if let Some(tag) = record
            .scalars
            .keys()
            .find(|tag| FIXED_KEYS.contains(&tag.as_str()))
        {
            return Err(Error::ReservedTag {
                tag: tag.clone(),
                iteration: record.iteration,
                path: self.path.clone(),
            });
        }
        // Built by hand so the fixed keys come first (serde_json's map would sort them).
        let line = &mut self.line;
        line.clear();
        line.push_str(&format!(
            "{{\"iteration\":{},\"total_steps\":{},\"wall_s\":",
            record.iteration, record.total_steps
        ));
        push_number(line, record.wall_s);
        for (tag, &value) in &record.scalars {
            line.push(',');
            line.push_str(&serde_json::Value::from(tag.as_str()).to_string());
            line.push(':');
            push_number(line, value);
        }
        line.push_str("}\n");
        self.file
            .write_all(line.as_bytes())
            .map_err(|source| Error::Io {
                action: "append a row to",
                path: self.path.clone(),
                source,
            })?;
        self.flush()
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.file.flush().map_err(|source| Error::Io {
            action: "flush",
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn record(iteration: usize) -> IterationRecord {
        IterationRecord::new(
            iteration,
            4096 * (iteration as u64 + 1),
            1.5 * iteration as f64,
        )
        .with("Loss/value", 0.125 + iteration as f64)
        .with("Train/mean_reward", -3.25)
        .with("Episode/rew_tracking", 0.1)
    }

    fn read_rows(path: &Path) -> Vec<serde_json::Map<String, Value>> {
        let text = std::fs::read_to_string(path).expect("read metrics.jsonl");
        text.lines()
            .map(|l| match serde_json::from_str(l).expect("row is JSON") {
                Value::Object(map) => map,
                other => panic!("row is not an object: {other}"),
            })
            .collect()
    }

    #[test]
    fn rows_are_json_with_fixed_keys_first_and_every_scalar() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut w = JsonlWriter::new(dir.path()).expect("open");
        let mut r = record(0);
        r.insert("Policy/mean_std", f64::NAN);
        r.insert("Perf/total_fps", f64::INFINITY);
        w.write(&r).expect("write");
        w.write(&record(1)).expect("write");

        let text = std::fs::read_to_string(w.path()).expect("read");
        assert!(
            text.starts_with("{\"iteration\":0,\"total_steps\":4096,\"wall_s\":0.0,"),
            "{text}"
        );
        let rows = read_rows(w.path());
        assert_eq!(rows.len(), 2);
        let row = &rows[0];
        assert_eq!(row["iteration"], 0);
        assert_eq!(row["total_steps"], 4096);
        assert_eq!(row["wall_s"], 0.0);
        assert_eq!(row["Loss/value"], 0.125);
        assert_eq!(row["Train/mean_reward"], -3.25);
        assert_eq!(row["Episode/rew_tracking"], 0.1);
        assert_eq!(row["Policy/mean_std"], Value::Null);
        assert_eq!(row["Perf/total_fps"], Value::Null);
        assert_eq!(row.len(), 8);
        assert_eq!(rows[1]["iteration"], 1);
        assert_eq!(rows[1]["total_steps"], 8192);
        assert_eq!(rows[1]["wall_s"], 1.5);
        assert_eq!(rows[1]["Loss/value"], 1.125);
    }

    #[test]
    fn a_second_writer_appends_and_keeps_earlier_rows() {
        let dir = tempfile::tempdir().expect("temporary directory");
        {
            let mut w = JsonlWriter::new(dir.path()).expect("open");
            w.write(&record(0)).expect("write");
            w.write(&record(1)).expect("write");
        }
        let mut w = JsonlWriter::new(dir.path()).expect("reopen");
        w.write(&record(2)).expect("write");
        let iterations: Vec<_> = read_rows(w.path())
            .iter()
            .map(|r| r["iteration"].as_u64().expect("iteration is a number"))
            .collect();
        assert_eq!(iterations, [0, 1, 2]);
    }

    #[test]
    fn rows_are_on_disk_without_dropping_the_writer() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut w = JsonlWriter::new(dir.path()).expect("open");
        w.write(&record(0)).expect("write");
        assert_eq!(read_rows(w.path()).len(), 1);
        drop(w);
    }

    #[test]
    fn an_unterminated_last_row_is_closed_before_appending() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join(METRICS_FILE_NAME);
        std::fs::write(&path, "{\"iteration\":0}\n{\"iterat").expect("seed file");
        let mut w = JsonlWriter::new(dir.path()).expect("open");
        w.write(&record(1)).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        let last = text.lines().last().expect("a row");
        let row: Value = serde_json::from_str(last).expect("last row is JSON");
        assert_eq!(row["iteration"], 1);
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn rows_after_a_checkpoint_and_a_torn_row_are_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = JsonlWriter::new(dir.path()).expect("writer");
        for it in 0..6 {
            w.write(&record(it)).expect("row");
        }
        drop(w);
        let path = dir.path().join(METRICS_FILE_NAME);
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str("not json but complete\n{\"iteration\":6,\"total_st");
        std::fs::write(&path, text).expect("write");
        // Rows 4 and 5 and the torn row go; the complete unreadable line stays.
        assert_eq!(drop_rows_from(dir.path(), 4).expect("drop"), 3);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.ends_with("not json but complete\n"), "{text}");
        let iterations: Vec<u64> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|r| r["iteration"].as_u64().expect("iteration"))
            .collect();
        assert_eq!(iterations, vec![0, 1, 2, 3]);
        assert_eq!(drop_rows_from(dir.path(), 4).expect("nothing left"), 0);
        assert_eq!(
            drop_rows_from(&dir.path().join("none"), 0).expect("no file"),
            0
        );
    }

    #[test]
    fn a_tag_named_like_a_fixed_key_is_an_error() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut w = JsonlWriter::new(dir.path()).expect("open");
        let err = w
            .write(&IterationRecord::new(4, 0, 0.0).with("iteration", 1.0))
            .expect_err("reserved tag");
        let msg = err.to_string();
        assert!(
            msg.contains("\"iteration\"") && msg.contains("iteration 4"),
            "{msg}"
        );
        assert!(msg.contains(METRICS_FILE_NAME), "{msg}");
    }

    #[test]
    fn an_unusable_run_dir_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").expect("make a file");
        let err = JsonlWriter::new(&file.join("run")).expect_err("parent is a file");
        assert!(matches!(err, Error::RunDir { .. }), "{err:?}");
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }
}
