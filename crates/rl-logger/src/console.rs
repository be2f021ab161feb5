//! The console: a progress bar with ETA and an rsl_rl-style summary of each iteration.

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::{Error, IterationRecord, MetricWriter, tags};

/// Width of the summary's rules and centred header (rsl_rl's `width`).
const WIDTH: usize = 80;
/// Width the summary's labels are right-aligned to (rsl_rl's `pad`).
const PAD: usize = 35;

/// What the console shows during training.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleMode {
    /// A progress bar and a summary block after every iteration.
    #[default]
    Full,
    /// Only the progress bar.
    Quiet,
    /// Nothing.
    Off,
}

/// Shows training progress on the terminal.
///
/// The bar is drawn on stderr and hides itself when stderr is not a terminal (for example when
/// it is redirected to a file); the summaries go to stdout through
/// [`ProgressBar::suspend`], which clears the bar while printing so lines are not garbled,
/// and still prints when the bar is hidden (unlike `ProgressBar::println`). Failing to
/// write to stdout (a closed pipe) is ignored rather than stopping training.
pub struct ConsoleLogger {
    bar: ProgressBar,
    /// Where the summaries go (stdout, or a buffer in tests).
    out: Box<dyn Write + Send>,
    mode: ConsoleMode,
    max_iterations: usize,
    /// Whether a record has been written (the first one sets the bar's start on resume).
    started: bool,
}

impl std::fmt::Debug for ConsoleLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleLogger")
            .field("bar", &self.bar)
            .field("mode", &self.mode)
            .field("max_iterations", &self.max_iterations)
            .finish_non_exhaustive()
    }
}

impl ConsoleLogger {
    /// A console logger for a run that stops at iteration `max_iterations`.
    pub fn new(max_iterations: usize, mode: ConsoleMode) -> Self {
        let target = match mode {
            ConsoleMode::Full | ConsoleMode::Quiet => ProgressDrawTarget::stderr(),
            ConsoleMode::Off => ProgressDrawTarget::hidden(),
        };
        Self::with_targets(max_iterations, mode, target, Box::new(std::io::stdout()))
    }

    /// Like [`ConsoleLogger::new`], drawing the bar on `target` and writing the summaries to
    /// `out` (tests use a hidden bar and a buffer).
    pub fn with_targets(
        max_iterations: usize,
        mode: ConsoleMode,
        target: ProgressDrawTarget,
        out: Box<dyn Write + Send>,
    ) -> Self {
        let bar = ProgressBar::with_draw_target(Some(max_iterations as u64), target);
        let style = ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {pos}/{len} it, {per_sec}, ETA {eta_precise} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style.progress_chars("=> "));
        Self {
            bar,
            out,
            mode,
            max_iterations,
            started: false,
        }
    }

    /// The progress bar (its position is the number of finished iterations).
    pub fn progress_bar(&self) -> &ProgressBar {
        &self.bar
    }
}

impl MetricWriter for ConsoleLogger {
    fn write(&mut self, record: &IterationRecord) -> Result<(), Error> {
        if !self.started {
            // A resumed run starts part-way: jump there without counting the jump in the ETA.
            self.started = true;
            self.bar.set_position(record.iteration as u64);
            self.bar.reset_eta();
        }
        if let Some(reward) = record.get(tags::MEAN_REWARD) {
            self.bar.set_message(format!("reward {reward:.2}"));
        }
        self.bar.set_position(record.iteration as u64 + 1);
        if self.mode == ConsoleMode::Full {
            let summary = format_summary(record, self.max_iterations);
            let out = &mut self.out;
            self.bar.suspend(|| {
                let _ = writeln!(out, "{summary}").and_then(|()| out.flush());
            });
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        let _ = self.out.flush();
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.bar.finish();
        self.flush()
    }
}

/// One `label value` line with the label right-aligned, as rsl_rl prints them.
fn line(out: &mut String, label: &str, value: impl std::fmt::Display) {
    out.push_str(&format!("{label:>PAD$} {value}\n"));
}

/// Seconds as `HH:MM:SS` (hours keep counting past 24).
fn hms(seconds: f64) -> String {
    // `as` saturates: NaN and negative values become 0.
    let s = seconds.round() as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The summary block printed after an iteration, in rsl_rl's layout.
///
/// The header is `Learning iteration <iteration>/<max_iterations>`; then, for the scalars the
/// record has: computation speed and times, action noise std, losses and learning rate, mean
/// reward and episode length, `Episode/*` terms and any other tag; then total timesteps,
/// iteration time (collection + learning), time elapsed (`wall_s`) and the ETA (iteration time,
/// or the mean time per iteration when the record has no times, times the iterations left).
pub fn format_summary(record: &IterationRecord, max_iterations: usize) -> String {
    let mut out = String::new();
    let header = format!("Learning iteration {}/{}", record.iteration, max_iterations);
    out.push_str(&"#".repeat(WIDTH));
    out.push('\n');
    out.push_str(format!("{header:^WIDTH$}").trim_end());
    out.push_str("\n\n");

    let collection = record.get(tags::COLLECTION_TIME);
    let learning = record.get(tags::LEARNING_TIME);
    let mut shown: Vec<&str> = vec![tags::COLLECTION_TIME, tags::LEARNING_TIME];

    // Computation speed.
    if let Some(fps) = record.get(tags::TOTAL_FPS) {
        shown.push(tags::TOTAL_FPS);
        let mut value = format!("{fps:.0} steps/s");
        if let (Some(c), Some(l)) = (collection, learning) {
            value.push_str(&format!(" (collection: {c:.3}s, learning {l:.3}s)"));
        }
        line(&mut out, "Computation:", value);
    }
    if let Some(std) = record.get(tags::MEAN_STD) {
        shown.push(tags::MEAN_STD);
        line(&mut out, "Mean action noise std:", format!("{std:.2}"));
    }

    // Losses, then the learning rate that `Loss/` also holds.
    for (tag, value) in &record.scalars {
        if let Some(name) = tag.strip_prefix("Loss/")
            && tag != tags::LEARNING_RATE
        {
            shown.push(tag);
            line(
                &mut out,
                &format!("Mean {name} loss:"),
                format!("{value:.4}"),
            );
        }
    }
    if let Some(lr) = record.get(tags::LEARNING_RATE) {
        shown.push(tags::LEARNING_RATE);
        line(&mut out, "Learning rate:", format!("{lr:.3e}"));
    }

    // Episode statistics.
    if let Some(reward) = record.get(tags::MEAN_REWARD) {
        shown.push(tags::MEAN_REWARD);
        line(&mut out, "Mean reward:", format!("{reward:.2}"));
    }
    if let Some(length) = record.get(tags::MEAN_EPISODE_LENGTH) {
        shown.push(tags::MEAN_EPISODE_LENGTH);
        line(&mut out, "Mean episode length:", format!("{length:.2}"));
    }
    for (tag, value) in &record.scalars {
        if let Some(name) = tag.strip_prefix(tags::EPISODE_PREFIX) {
            shown.push(tag);
            line(
                &mut out,
                &format!("Mean episode {name}:"),
                format!("{value:.4}"),
            );
        }
    }

    // Whatever else the runner logged.
    for (tag, value) in &record.scalars {
        if !shown.contains(&tag.as_str()) {
            line(&mut out, &format!("{tag}:"), format!("{value:.4}"));
        }
    }

    // Totals and time.
    out.push_str(&"-".repeat(WIDTH));
    out.push('\n');
    line(&mut out, "Total timesteps:", record.total_steps);
    let done = record.iteration + 1;
    let iteration_time = match (collection, learning) {
        (Some(c), Some(l)) => {
            line(&mut out, "Iteration time:", format!("{:.2}s", c + l));
            c + l
        }
        _ => record.wall_s / done as f64,
    };
    line(&mut out, "Time elapsed:", hms(record.wall_s));
    let left = max_iterations.saturating_sub(done);
    line(&mut out, "ETA:", hms(iteration_time * left as f64));
    out.pop(); // the last newline: callers add their own
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn full_record() -> IterationRecord {
        IterationRecord::new(12, 1_228_800, 3725.4)
            .with(tags::LOSS_VALUE, 0.0123)
            .with(tags::LOSS_SURROGATE, -0.0071)
            .with(tags::LOSS_ENTROPY, 4.25)
            .with(tags::LEARNING_RATE, 0.00042)
            .with(tags::MEAN_STD, 0.8512)
            .with(tags::TOTAL_FPS, 51234.4)
            .with(tags::COLLECTION_TIME, 0.321)
            .with(tags::LEARNING_TIME, 0.12)
            .with(tags::MEAN_REWARD, 123.456)
            .with(tags::MEAN_EPISODE_LENGTH, 199.5)
            .with("Episode/rew_tracking", 0.5)
            .with("Custom/thing", 7.0)
    }

    /// The value printed after `label`, checking the label is right-aligned to `PAD`.
    fn value_of<'a>(summary: &'a str, label: &str) -> &'a str {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} line in\n{summary}"));
        assert_eq!(line.find(label), Some(PAD - label.len()), "{line:?}");
        &line[PAD + 1..]
    }

    #[test]
    fn summary_shows_every_number_in_rsl_rl_layout() {
        let s = format_summary(&full_record(), 1500);
        println!("{s}");
        let lines: Vec<_> = s.lines().collect();
        assert_eq!(lines[0], "#".repeat(WIDTH));
        assert_eq!(lines[1].trim(), "Learning iteration 12/1500");
        assert!(
            lines[1].starts_with(&" ".repeat(20)),
            "centred: {:?}",
            lines[1]
        );
        assert_eq!(lines[2], "");
        assert_eq!(
            value_of(&s, "Computation:"),
            "51234 steps/s (collection: 0.321s, learning 0.120s)"
        );
        assert_eq!(value_of(&s, "Mean action noise std:"), "0.85");
        assert_eq!(value_of(&s, "Mean value loss:"), "0.0123");
        assert_eq!(value_of(&s, "Mean surrogate loss:"), "-0.0071");
        assert_eq!(value_of(&s, "Mean entropy loss:"), "4.2500");
        assert_eq!(value_of(&s, "Learning rate:"), "4.200e-4");
        assert_eq!(value_of(&s, "Mean reward:"), "123.46");
        assert_eq!(value_of(&s, "Mean episode length:"), "199.50");
        assert_eq!(value_of(&s, "Mean episode rew_tracking:"), "0.5000");
        assert_eq!(value_of(&s, "Custom/thing:"), "7.0000");
        assert_eq!(value_of(&s, "Total timesteps:"), "1228800");
        assert_eq!(value_of(&s, "Iteration time:"), "0.44s");
        assert_eq!(value_of(&s, "Time elapsed:"), "01:02:05");
        // 0.441 s per iteration, 1500 - 13 = 1487 left: 655.8 s.
        assert_eq!(value_of(&s, "ETA:"), "00:10:56");
        assert!(lines.contains(&"-".repeat(WIDTH).as_str()));
        // Each scalar is shown once; the learning rate is not shown as a loss.
        assert!(!s.contains("learning_rate loss"), "{s}");
        assert_eq!(s.matches("0.321").count(), 1, "{s}");
        assert!(!s.ends_with('\n'));
    }

    #[test]
    fn summary_without_optional_scalars_uses_mean_iteration_time() {
        let r = IterationRecord::new(9, 40_960, 20.0).with("Train/other", f64::NAN);
        let s = format_summary(&r, 100);
        println!("{s}");
        assert!(s.contains("Learning iteration 9/100"), "{s}");
        assert!(!s.contains("Computation:"), "{s}");
        assert!(!s.contains("Iteration time:"), "{s}");
        assert_eq!(value_of(&s, "Train/other:"), "NaN");
        assert_eq!(value_of(&s, "Time elapsed:"), "00:00:20");
        // 2 s per iteration over 10 iterations, 90 left.
        assert_eq!(value_of(&s, "ETA:"), "00:03:00");
        // Past the end the ETA is zero rather than negative.
        let s = format_summary(&IterationRecord::new(200, 0, 5.0), 100);
        assert_eq!(value_of(&s, "ETA:"), "00:00:00");
    }

    #[test]
    fn hms_counts_hours_past_a_day() {
        assert_eq!(hms(0.0), "00:00:00");
        assert_eq!(hms(59.6), "00:01:00");
        assert_eq!(hms(90_061.0), "25:01:01");
        assert_eq!(hms(f64::NAN), "00:00:00");
    }

    #[test]
    fn bar_counts_finished_iterations_and_starts_part_way_on_resume() {
        let out = Buffer::default();
        let mut c = ConsoleLogger::with_targets(
            50,
            ConsoleMode::Quiet,
            ProgressDrawTarget::hidden(),
            Box::new(out.clone()),
        );
        assert_eq!(c.progress_bar().length(), Some(50));
        c.write(&IterationRecord::new(20, 0, 0.0).with(tags::MEAN_REWARD, 1.5))
            .expect("write");
        assert_eq!(c.progress_bar().position(), 21);
        c.write(&IterationRecord::new(21, 0, 0.0)).expect("write");
        assert_eq!(c.progress_bar().position(), 22);
        assert_eq!(c.progress_bar().message(), "reward 1.50");
        c.finish().expect("finish");
        assert!(c.progress_bar().is_finished());
        assert!(out.text().is_empty(), "quiet mode printed {:?}", out.text());
    }

    /// A shared byte buffer standing in for stdout.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("buffer lock").clone()).expect("utf-8")
        }
    }

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn full_mode_prints_a_summary_per_iteration() {
        let out = Buffer::default();
        let mut c = ConsoleLogger::with_targets(
            3,
            ConsoleMode::Full,
            ProgressDrawTarget::hidden(),
            Box::new(out.clone()),
        );
        for it in 0..3 {
            c.write(&full_record_at(it)).expect("write");
        }
        c.finish().expect("finish");
        assert_eq!(c.progress_bar().position(), 3);
        let text = out.text();
        for it in 0..3 {
            let summary = format_summary(&full_record_at(it), 3);
            assert!(text.contains(&format!("{summary}\n")), "{text}");
        }
        assert_eq!(text.matches("Learning iteration").count(), 3, "{text}");
    }

    #[test]
    fn the_bar_hides_itself_when_stderr_is_not_a_terminal() {
        use std::io::IsTerminal;
        let c = ConsoleLogger::new(3, ConsoleMode::Quiet);
        assert_eq!(
            c.progress_bar().is_hidden(),
            !std::io::stderr().is_terminal()
        );
        let c = ConsoleLogger::new(3, ConsoleMode::Off);
        assert!(c.progress_bar().is_hidden());
    }

    fn full_record_at(iteration: usize) -> IterationRecord {
        IterationRecord {
            iteration,
            ..full_record()
        }
    }

    #[test]
    fn console_mode_reads_from_lowercase_names() {
        let m: ConsoleMode = serde_json::from_str("\"quiet\"").expect("parse");
        assert_eq!(m, ConsoleMode::Quiet);
        assert_eq!(ConsoleMode::default(), ConsoleMode::Full);
    }
}
