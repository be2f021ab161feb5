//! The per-iteration record, the `MetricWriter` trait and the `Logger` that fans out to writers.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{ConsoleLogger, ConsoleMode, Error, JsonlWriter, TensorBoardWriter};

/// What the runner logs after one learning iteration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IterationRecord {
    /// The learning iteration, counted from 0 over the whole run (it continues on resume).
    pub iteration: usize,
    /// Environment steps collected so far, over all environments.
    pub total_steps: u64,
    /// Seconds of training so far (the step of the `/time` TensorBoard variants).
    pub wall_s: f64,
    /// Scalars keyed by TensorBoard tag, for example `Loss/value` or `Episode/rew_tracking`
    /// (see [`crate::tags`]).
    pub scalars: BTreeMap<String, f64>,
}

impl IterationRecord {
    /// A record with no scalars yet.
    pub fn new(iteration: usize, total_steps: u64, wall_s: f64) -> Self {
        Self {
            iteration,
            total_steps,
            wall_s,
            scalars: BTreeMap::new(),
        }
    }

    /// Sets the scalar `tag` to `value`, replacing an earlier value.
    pub fn insert(&mut self, tag: impl Into<String>, value: f64) {
        self.scalars.insert(tag.into(), value);
    }

    /// Builder form of [`IterationRecord::insert`].
    pub fn with(mut self, tag: impl Into<String>, value: f64) -> Self {
        self.insert(tag, value);
        self
    }

    /// The scalar logged under `tag`, if any.
    pub fn get(&self, tag: &str) -> Option<f64> {
        self.scalars.get(tag).copied()
    }
}

/// A destination for iteration records (TensorBoard, `metrics.jsonl`, the console, ...).
pub trait MetricWriter: Send {
    /// Writes one iteration's record.
    fn write(&mut self, record: &IterationRecord) -> Result<(), Error>;

    /// Pushes everything written so far to its destination.
    fn flush(&mut self) -> Result<(), Error>;

    /// Ends the run's logging (finishes a progress bar, for example); flushes by default.
    fn finish(&mut self) -> Result<(), Error> {
        self.flush()
    }
}

/// Fans every record out to a list of writers.
///
/// A failing writer does not stop the others: every writer is called, and the first error is
/// returned (later ones are reported through `tracing`).
#[derive(Default)]
pub struct Logger {
    writers: Vec<Box<dyn MetricWriter>>,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("writers", &self.writers.len())
            .finish()
    }
}

impl Logger {
    /// A logger over the given writers.
    pub fn new(writers: Vec<Box<dyn MetricWriter>>) -> Self {
        Self { writers }
    }

    /// The usual logger of a training run: `metrics.jsonl` and TensorBoard event files in
    /// `run_dir` (created if missing), and the console as `console` says.
    ///
    /// `max_iterations` is the iteration the run stops at (the progress bar's length).
    pub fn for_run(
        run_dir: &Path,
        max_iterations: usize,
        console: ConsoleMode,
    ) -> Result<Self, Error> {
        // The JSONL writer goes first: it fails cleanly on an unwritable directory, before
        // tensorboard-rs's writer thread would.
        let jsonl = JsonlWriter::new(run_dir)?;
        let tensorboard = TensorBoardWriter::new(run_dir)?;
        let console = ConsoleLogger::new(max_iterations, console);
        Ok(Self::new(vec![
            Box::new(jsonl),
            Box::new(tensorboard),
            Box::new(console),
        ]))
    }

    /// Adds a writer.
    pub fn push(&mut self, writer: Box<dyn MetricWriter>) {
        self.writers.push(writer);
    }

    /// How many writers records go to.
    pub fn len(&self) -> usize {
        self.writers.len()
    }

    /// Whether there are no writers.
    pub fn is_empty(&self) -> bool {
        self.writers.is_empty()
    }

    /// Writes `record` to every writer.
    pub fn write(&mut self, record: &IterationRecord) -> Result<(), Error> {
        self.for_each(|w| w.write(record))
    }

    /// Flushes every writer.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.for_each(|w| w.flush())
    }

    /// Ends logging: finishes the progress bar and flushes every writer.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.for_each(|w| w.finish())
    }

    fn for_each(
        &mut self,
        mut f: impl FnMut(&mut dyn MetricWriter) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut first = None;
        for writer in &mut self.writers {
            if let Err(e) = f(writer.as_mut()) {
                if first.is_none() {
                    first = Some(e);
                } else {
                    tracing::warn!("{e}");
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl MetricWriter for Logger {
    fn write(&mut self, record: &IterationRecord) -> Result<(), Error> {
        Logger::write(self, record)
    }

    fn flush(&mut self) -> Result<(), Error> {
        Logger::flush(self)
    }

    fn finish(&mut self) -> Result<(), Error> {
        Logger::finish(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records what it was asked to do; fails writes when `fail` is set.
    struct Probe {
        log: Arc<Mutex<Vec<String>>>,
        fail: bool,
    }

    impl MetricWriter for Probe {
        fn write(&mut self, record: &IterationRecord) -> Result<(), Error> {
            self.log
                .lock()
                .expect("probe lock")
                .push(format!("write {}", record.iteration));
            if self.fail {
                return Err(Error::TensorBoard {
                    path: "probe".into(),
                    action: "testing".into(),
                });
            }
            Ok(())
        }

        fn flush(&mut self) -> Result<(), Error> {
            self.log.lock().expect("probe lock").push("flush".into());
            Ok(())
        }
    }

    #[test]
    fn fans_out_to_every_writer_even_after_a_failure() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut logger = Logger::new(vec![
            Box::new(Probe {
                log: log.clone(),
                fail: true,
            }),
            Box::new(Probe {
                log: log.clone(),
                fail: false,
            }),
        ]);
        assert_eq!(logger.len(), 2);
        let err = logger.write(&IterationRecord::new(7, 0, 0.0));
        assert!(matches!(err, Err(Error::TensorBoard { .. })), "{err:?}");
        logger.finish().expect("finish");
        assert_eq!(
            *log.lock().expect("probe lock"),
            ["write 7", "write 7", "flush", "flush"]
        );
    }

    #[test]
    fn record_builder_sets_scalars() {
        let r = IterationRecord::new(1, 2, 3.0)
            .with("Loss/value", 0.5)
            .with("Loss/value", 0.25);
        assert_eq!(r.get("Loss/value"), Some(0.25));
        assert_eq!(r.get("Loss/entropy"), None);
        assert_eq!(r.scalars.len(), 1);
    }

    #[test]
    fn for_run_writes_jsonl_and_event_files_in_a_new_run_dir() {
        use crate::tensorboard::tests::{event_files, read_events, scalars};
        let dir = tempfile::tempdir().expect("temporary directory");
        let run_dir = dir.path().join("runs").join("cartpole");
        let mut logger = Logger::for_run(&run_dir, 10, ConsoleMode::Off).expect("logger");
        assert_eq!(logger.len(), 3);
        for it in 0..2 {
            let record = IterationRecord::new(it, 100 * (it as u64 + 1), 0.5)
                .with(crate::tags::MEAN_REWARD, 3.0 + it as f64);
            logger.write(&record).expect("write");
        }
        logger.finish().expect("finish");
        drop(logger); // joins the TensorBoard writer thread

        let text =
            std::fs::read_to_string(run_dir.join(crate::METRICS_FILE_NAME)).expect("metrics.jsonl");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("\"Train/mean_reward\":4.0"), "{text}");
        let files = event_files(&run_dir);
        assert_eq!(files.len(), 1, "{files:?}");
        let got = scalars(&read_events(&files[0]));
        assert!(
            got.contains(&("Train/mean_reward".into(), 1, 4.0)),
            "{got:?}"
        );
        assert!(
            got.contains(&("Train/mean_reward/time".into(), 1, 4.0)),
            "{got:?}"
        );
    }
}
