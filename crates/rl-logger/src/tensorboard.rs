//! TensorBoard event files through tensorboard-rs, with rsl_rl's tags and `/time` variants.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tensorboard_rs::summary_writer::SummaryWriter;

use crate::{Error, IterationRecord, MetricWriter, tags};

/// The tags that are also logged against wall-clock seconds, as `<tag>/time`.
const TIME_TAGS: [&str; 2] = [tags::MEAN_REWARD, tags::MEAN_EPISODE_LENGTH];

/// Writes every scalar of a record to a TensorBoard event file in the run directory.
///
/// Each scalar goes in at step = iteration (as `f32`, TensorBoard's type);
/// `Train/mean_reward` and `Train/mean_episode_length` are also written as
/// `Train/mean_reward/time` and `Train/mean_episode_length/time` at step = wall seconds rounded
/// to an integer, as rsl_rl does. A resumed run starts a new event file in the same directory;
/// TensorBoard reads them together.
///
/// tensorboard-rs writes from a background thread that panics on an IO error; this writer
/// turns the resulting failure into an [`Error::TensorBoard`] on the next write or flush,
/// and then stops writing (later calls do nothing and return `Ok`). The thread writes each
/// event as soon as it receives it; dropping the writer waits for it to finish.
pub struct TensorBoardWriter {
    log_dir: PathBuf,
    /// `None` once the writer thread has failed.
    writer: Option<SummaryWriter>,
}

impl std::fmt::Debug for TensorBoardWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorBoardWriter")
            .field("log_dir", &self.log_dir)
            .field("failed", &self.writer.is_none())
            .finish()
    }
}

impl TensorBoardWriter {
    /// Starts a new event file in `run_dir`, creating the directory first.
    ///
    /// Fails with [`Error::RunDir`] if the directory cannot be created or written to.
    pub fn new(run_dir: &Path) -> Result<Self, Error> {
        let run_dir_error = |source| Error::RunDir {
            path: run_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(run_dir).map_err(run_dir_error)?;
        // tensorboard-rs creates the event file in its writer thread and panics there if it
        // cannot; check that the directory is writable while we can still return an error.
        let probe = run_dir.join(format!(".rl-logger-probe-{}", std::process::id()));
        std::fs::write(&probe, b"").map_err(run_dir_error)?;
        std::fs::remove_file(&probe).map_err(run_dir_error)?;
        wait_for_unique_event_file_name(run_dir).map_err(run_dir_error)?;

        let writer =
            catch_unwind(|| SummaryWriter::new(run_dir)).map_err(|_| Error::TensorBoard {
                path: run_dir.to_path_buf(),
                action: "creating the event file".into(),
            })?;
        Ok(Self {
            log_dir: run_dir.to_path_buf(),
            writer: Some(writer),
        })
    }

    /// The directory the event file is written to.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Runs `f` on the summary writer, turning a panic (the writer thread has died) into an
    /// error and disabling the writer.
    fn guarded(
        &mut self,
        action: impl FnOnce() -> String,
        f: impl FnOnce(&mut SummaryWriter),
    ) -> Result<(), Error> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        if catch_unwind(AssertUnwindSafe(|| f(writer))).is_ok() {
            return Ok(());
        }
        // Dropping it would panic again (its `Drop` signals the dead thread), so leak it.
        std::mem::forget(self.writer.take());
        Err(Error::TensorBoard {
            path: self.log_dir.clone(),
            action: action(),
        })
    }
}

/// The step of a `/time` variant: wall seconds rounded to an integer (0 if negative or NaN).
fn time_step(wall_s: f64) -> usize {
    // `as` saturates: NaN and negative values become 0.
    wall_s.round() as usize
}

/// tensorboard-rs names its file `events.out.tfevents.<unix seconds>.<host>.<pid>.0` and
/// truncates an existing file of that name; if this process already started one here in the
/// current second, wait for the next second.
fn wait_for_unique_event_file_name(dir: &Path) -> std::io::Result<()> {
    let suffix = format!(".{}.0", std::process::id());
    loop {
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let prefix = format!("events.out.tfevents.{secs:010}.");
        let mut taken = false;
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(&suffix) {
                taken = true;
                break;
            }
        }
        if !taken {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl MetricWriter for TensorBoardWriter {
    fn write(&mut self, record: &IterationRecord) -> Result<(), Error> {
        let step = record.iteration;
        let time_step = time_step(record.wall_s);
        self.guarded(
            || format!("writing iteration {step}"),
            |writer| {
                for (tag, &value) in &record.scalars {
                    writer.add_scalar(tag, value as f32, step);
                    if TIME_TAGS.contains(&tag.as_str()) {
                        let time_tag = format!("{tag}{}", tags::TIME_SUFFIX);
                        writer.add_scalar(&time_tag, value as f32, time_step);
                    }
                }
            },
        )
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.guarded(|| "flushing".into(), SummaryWriter::flush)
    }
}

impl Drop for TensorBoardWriter {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        if std::thread::panicking() {
            // A second panic here (from a dead writer thread) would abort the process; the
            // thread still writes what it has already received.
            std::mem::forget(writer);
        } else {
            // Stops and joins the writer thread; a dead thread makes this panic, which is
            // already reported by the thread itself.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(writer)));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use protobuf::Message;
    use tensorboard_proto::event::Event;

    /// CRC-32C (Castagnoli), bit by bit: slow and obviously right.
    fn crc32c(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// TFRecord's masked CRC.
    fn masked_crc32c(data: &[u8]) -> u32 {
        let crc = crc32c(data);
        crc.rotate_right(15).wrapping_add(0xa282_ead8)
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
    }

    /// Reads a TFRecord file: `u64 len LE, u32 masked crc(len), data, u32 masked crc(data)`.
    pub(crate) fn read_events(path: &Path) -> Vec<Event> {
        let bytes = std::fs::read(path).expect("read event file");
        let mut events = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            assert!(bytes.len() >= at + 12, "truncated record header at {at}");
            let len_bytes = &bytes[at..at + 8];
            let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")) as usize;
            assert_eq!(
                u32_at(&bytes, at + 8),
                masked_crc32c(len_bytes),
                "length crc"
            );
            let data = &bytes[at + 12..at + 12 + len];
            assert_eq!(
                u32_at(&bytes, at + 12 + len),
                masked_crc32c(data),
                "data crc"
            );
            events.push(Event::parse_from_bytes(data).expect("event decodes"));
            at += 12 + len + 4;
        }
        events
    }

    /// The event files in `dir`, sorted by name.
    pub(crate) fn event_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("read run dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("events.out.tfevents."))
            })
            .collect();
        files.sort();
        files
    }

    /// `(tag, step, value)` of every scalar in the events.
    pub(crate) fn scalars(events: &[Event]) -> Vec<(String, i64, f32)> {
        events
            .iter()
            .filter(|e| e.has_summary())
            .flat_map(|e| {
                e.get_summary()
                    .get_value()
                    .iter()
                    .map(|v| (v.get_tag().to_string(), e.get_step(), v.get_simple_value()))
            })
            .collect()
    }

    fn record(iteration: usize, wall_s: f64) -> IterationRecord {
        IterationRecord::new(iteration, 1000, wall_s)
            .with(tags::LOSS_VALUE, 0.5 + iteration as f64)
            .with(tags::MEAN_REWARD, 12.25)
            .with(tags::MEAN_EPISODE_LENGTH, 200.0)
            .with("Episode/rew_tracking", -0.75)
    }

    #[test]
    fn event_file_holds_every_scalar_and_the_time_variants() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let run_dir = dir.path().join("run"); // created by the writer
        let mut w = TensorBoardWriter::new(&run_dir).expect("writer");
        w.write(&record(0, 1.4)).expect("write");
        w.write(&record(1, 2.6)).expect("write");
        w.flush().expect("flush");
        drop(w); // joins the writer thread

        let files = event_files(&run_dir);
        assert_eq!(files.len(), 1, "{files:?}");
        let events = read_events(&files[0]);
        assert_eq!(events[0].get_file_version(), "brain.Event:2");
        let got = scalars(&events);
        let expect = |tag: &str, step: i64, value: f32| {
            assert!(
                got.iter()
                    .any(|(t, s, v)| t == tag && *s == step && *v == value),
                "missing {tag} at step {step} = {value} in {got:?}"
            );
        };
        expect("Loss/value", 0, 0.5);
        expect("Loss/value", 1, 1.5);
        expect("Train/mean_reward", 0, 12.25);
        expect("Train/mean_reward", 1, 12.25);
        expect("Train/mean_episode_length", 1, 200.0);
        expect("Episode/rew_tracking", 1, -0.75);
        // Wall seconds 1.4 and 2.6 round to steps 1 and 3.
        expect("Train/mean_reward/time", 1, 12.25);
        expect("Train/mean_reward/time", 3, 12.25);
        expect("Train/mean_episode_length/time", 3, 200.0);
        // 4 tags + 2 time variants, two iterations; no other `/time` tags.
        assert_eq!(got.len(), 12, "{got:?}");
        assert!(!got.iter().any(|(t, ..)| t == "Loss/value/time"));
    }

    #[test]
    fn two_writers_in_one_second_get_separate_complete_files() {
        let dir = tempfile::tempdir().expect("temporary directory");
        for it in 0..2 {
            let mut w = TensorBoardWriter::new(dir.path()).expect("writer");
            w.write(&record(it, 0.0)).expect("write");
        }
        let files = event_files(dir.path());
        assert_eq!(files.len(), 2, "{files:?}");
        for (it, file) in files.iter().enumerate() {
            let got = scalars(&read_events(file));
            assert!(
                got.iter()
                    .any(|(t, s, _)| t == "Loss/value" && *s == it as i64),
                "{file:?}: {got:?}"
            );
        }
    }

    #[test]
    fn an_unusable_run_dir_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").expect("make a file");
        let err = TensorBoardWriter::new(&file).expect_err("a file is not a directory");
        assert!(matches!(err, Error::RunDir { .. }), "{err:?}");
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }

    #[test]
    fn time_steps_round_and_saturate() {
        assert_eq!(time_step(2.5), 3);
        assert_eq!(time_step(2.49), 2);
        assert_eq!(time_step(-1.0), 0);
        assert_eq!(time_step(f64::NAN), 0);
    }
}
