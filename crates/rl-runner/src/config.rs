//! `TrainConfig`: the whole TOML file of a training run, its overrides and its checks.

use std::path::{Path, PathBuf};

use rl_modules::PolicyConfig;
use serde::{Deserialize, Serialize};

use crate::Error;
pub use crate::algorithms::AlgorithmConfig;

/// `[env]`: which task, how many copies, and the task's own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvConfig {
    /// Task name in the `sim-gpu` registry (`cartpole`, `quadruped_flat`).
    pub task: String,
    /// Number of environments stepped in parallel.
    pub num_envs: usize,
    /// Every other key of the table: the task's settings (for a legged task, the sections
    /// of `sim_gpu::legged::LeggedConfig`: `[env.rewards]`, `[env.commands]`, ...). The task
    /// checks them when it is built; the classic-control tasks take none.
    #[serde(flatten)]
    pub settings: toml::Table,
}

/// `[runner]`: the training loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunnerConfig {
    /// Environment steps per environment per iteration (`T`).
    pub num_steps_per_env: usize,
    /// Total number of iterations of the run (a resumed run continues up to it).
    pub max_iterations: usize,
    /// Write a checkpoint every this many iterations (and always at the end).
    pub save_interval: usize,
    /// Stop early once `Train/mean_reward` reaches this value.
    pub stop_at_mean_reward: Option<f64>,
    /// Keep only the newest this many checkpoints of the run (older ones are deleted after
    /// a new one is written); 0 keeps every checkpoint.
    pub keep_checkpoints: usize,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            num_steps_per_env: 24,
            max_iterations: 1500,
            save_interval: 50,
            stop_at_mean_reward: None,
            keep_checkpoints: 0,
        }
    }
}

/// `[logger]`: where the run is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggerConfig {
    /// Root of all runs.
    pub log_dir: PathBuf,
    /// Folder of this experiment under `log_dir`.
    pub experiment_name: String,
    /// Folder of this run under the experiment; empty means the start time.
    pub run_name: String,
}

impl Default for LoggerConfig {
    fn default() -> Self {
        Self {
            log_dir: PathBuf::from("logs"),
            experiment_name: "default".into(),
            run_name: String::new(),
        }
    }
}

/// The whole training configuration (one TOML file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed of every random stream of the run.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The task.
    pub env: EnvConfig,
    /// The algorithm and its hyperparameters.
    #[serde(default)]
    pub algorithm: AlgorithmConfig,
    /// The actor-critic.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// The training loop.
    #[serde(default)]
    pub runner: RunnerConfig,
    /// Output locations.
    #[serde(default)]
    pub logger: LoggerConfig,
}

fn default_seed() -> u64 {
    1
}

impl TrainConfig {
    /// Reads a config file, applies `--set` overrides (`section.key=value`, the value in
    /// TOML syntax) and checks every value.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, Error> {
        // A config file that cannot be read is a usage error (exit status 2), like a bad one.
        let text = std::fs::read_to_string(path).map_err(|e| Error::Input {
            origin: path.display().to_string(),
            message: format!("cannot read the config file: {e}"),
        })?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    /// Parses config text; `origin` names it in errors (a file path).
    ///
    /// Errors are one line. One about a value of the text gives `origin:line:column`, the
    /// field path and what was expected; one about a value a `--set` override gave starts
    /// with the override as given instead, since a position in the file would be wrong.
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Self, Error> {
        let file = toml_edit::Document::parse(text).map_err(|e| syntax_error(origin, text, &e))?;
        let mut doc = file.clone().into_mut();
        let set = apply_overrides(&mut doc, origin, overrides)?;
        let source = Source { origin, file, set };
        // With overrides the text is re-rendered: keys the overrides added shift the lines
        // after them, so errors are placed by field path, not by position in this text.
        let rendered = if overrides.is_empty() {
            text.to_string()
        } else {
            doc.to_string()
        };
        source.check_algorithm_table(&doc)?;
        let cfg: TrainConfig =
            toml::from_str(&rendered).map_err(|e| source.toml_error(&rendered, &[], &e))?;
        cfg.validate().map_err(|e| source.invalid(e))?;
        Ok(cfg)
    }

    /// The resolved config as TOML text (written beside the run and into checkpoints).
    pub fn to_toml(&self) -> Result<String, Error> {
        toml::to_string_pretty(self).map_err(|e| Error::Invalid {
            origin: "resolved config".into(),
            field: String::new(),
            message: e.to_string(),
        })
    }

    /// [`TrainConfig::validate`], with errors that also name `origin` (the config file).
    pub fn validate_in(&self, origin: &str) -> Result<(), Error> {
        self.validate().map_err(|e| match e {
            Error::Invalid { field, message, .. } => Error::Invalid {
                origin: origin.to_string(),
                field,
                message,
            },
            other => other,
        })
    }

    /// Checks ranges and consistency; errors name the field.
    pub fn validate(&self) -> Result<(), Error> {
        if !sim_gpu::TASKS.contains(&self.env.task.as_str()) {
            return Err(Error::Invalid {
                origin: String::new(),
                field: "env.task".into(),
                message: format!(
                    "unknown task `{}`; expected one of: {}",
                    self.env.task,
                    sim_gpu::TASKS.join(", ")
                ),
            });
        }
        self.validate_task_settings()?;
        self.validate_values()
    }

    /// Checks the task's settings (the rest of `[env]`) as the task will read them.
    fn validate_task_settings(&self) -> Result<(), Error> {
        let task = self.env.task.as_str();
        let invalid = |field: String, message: String| Error::Invalid {
            origin: String::new(),
            field,
            message,
        };
        sim_gpu::validate_settings(task, &self.env.settings).map_err(|e| match e {
            sim_gpu::Error::TaskConfig { field, what, .. } => invalid(format!("env.{field}"), what),
            other => invalid("env".into(), other.to_string()),
        })?;
        Ok(())
    }

    /// [`TrainConfig::validate`] except that the task need not be registered (for
    /// environments the caller builds).
    pub fn validate_values(&self) -> Result<(), Error> {
        let invalid = |field: &str, message: String| Error::Invalid {
            origin: String::new(),
            field: field.to_string(),
            message,
        };
        if self.env.num_envs == 0 {
            return Err(invalid("env.num_envs", "expected at least 1, got 0".into()));
        }
        if self.runner.num_steps_per_env == 0 {
            return Err(invalid(
                "runner.num_steps_per_env",
                "expected at least 1, got 0".into(),
            ));
        }
        if self.runner.save_interval == 0 {
            return Err(invalid(
                "runner.save_interval",
                "expected at least 1, got 0".into(),
            ));
        }
        if let Some(stop) = self.runner.stop_at_mean_reward
            && stop.is_nan()
        {
            return Err(invalid(
                "runner.stop_at_mean_reward",
                "expected a number, got NaN".into(),
            ));
        }
        if self.logger.experiment_name.is_empty() {
            return Err(invalid(
                "logger.experiment_name",
                "expected a non-empty name, got \"\"".into(),
            ));
        }
        self.algorithm
            .validate(
                &self.policy,
                self.env.num_envs,
                self.runner.num_steps_per_env,
            )
            .map_err(|e| invalid(&e.field, e.message))?;
        Ok(())
    }
}

/// The field names a struct's `Deserialize` accepts, so that the lists in errors never
/// drift from the structs.
fn field_names<'de, T: serde::Deserialize<'de>>() -> &'static [&'static str] {
    serde_aux::serde_introspection::serde_introspect::<T>()
}

/// The keys of `[env]` itself; the rest of the table is the task's settings.
const ENV_KEYS: [&str; 2] = ["task", "num_envs"];

/// The keys a top-level table accepts, or `None` when `section` is not a table (`seed`)
/// or not a field at all.
fn section_keys(section: &str) -> Option<Vec<&'static str>> {
    let keys = match section {
        // `EnvConfig` flattens the task's settings in, which hides its fields from serde.
        "env" => ENV_KEYS.to_vec(),
        "algorithm" => {
            // `class` picks the variant; the rest are the class's fields. (Every registered
            // class's fields: which class is meant is checked by the whole parse.)
            let mut keys = vec!["class"];
            for class in AlgorithmConfig::CLASSES {
                keys.extend_from_slice(AlgorithmConfig::fields(class).unwrap_or_default());
            }
            keys
        }
        "policy" => field_names::<PolicyConfig>().to_vec(),
        "runner" => field_names::<RunnerConfig>().to_vec(),
        "logger" => field_names::<LoggerConfig>().to_vec(),
        _ => return None,
    };
    Some(keys)
}

/// Checks each `section.key=value` override against the config's fields and applies it to
/// the document. Returns each override's key path with the override as given.
fn apply_overrides(
    doc: &mut toml_edit::DocumentMut,
    origin: &str,
    overrides: &[String],
) -> Result<Vec<(Vec<String>, String)>, Error> {
    let mut set = Vec::with_capacity(overrides.len());
    for item in overrides {
        let bad = |message: String| Error::Override {
            item: item.clone(),
            message,
        };
        let (path, raw) = item.split_once('=').ok_or_else(|| {
            bad(format!(
                "expected section.key=value (for example algorithm.gamma=0.98) to override a value of {origin}"
            ))
        })?;
        let keys: Vec<&str> = path.trim().split('.').map(str::trim).collect();
        if keys.iter().any(|k| k.is_empty()) {
            return Err(bad(format!(
                "`{}` is not a key path; expected section.key=value (for example algorithm.gamma=0.98) to override a value of {origin}",
                path.trim()
            )));
        }
        let top = field_names::<TrainConfig>();
        if !top.contains(&keys[0]) {
            // A key given without its section: say which section has it.
            let hint = match keys.as_slice() {
                [key] => top
                    .iter()
                    .find(|s| section_keys(s).is_some_and(|k| k.contains(key)))
                    .map(|s| format!(" did you mean {s}.{key}?"))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            let what = if keys.len() == 1 {
                "top-level key"
            } else {
                "section"
            };
            return Err(bad(format!(
                "{what} `{}` does not exist (config {origin});{hint} valid sections and top-level keys: {}",
                keys[0],
                top.join(", ")
            )));
        }
        if keys.len() > 1 {
            let Some(valid) = section_keys(keys[0]) else {
                return Err(bad(format!(
                    "`{}` is a value, not a table (config {origin}); expected {}=VALUE",
                    keys[0], keys[0]
                )));
            };
            // `[env]` also holds the task's settings, which the task checks (by name).
            if !valid.contains(&keys[1]) && keys[0] != "env" {
                return Err(bad(format!(
                    "key `{}.{}` does not exist (config {origin}); valid keys of [{}]: {}",
                    keys[0],
                    keys[1],
                    keys[0],
                    valid.join(", ")
                )));
            }
        }
        // The value is TOML; a bare word that is not valid TOML is taken as a string.
        let value: toml_edit::Value = raw
            .trim()
            .parse()
            .unwrap_or_else(|_| toml_edit::Value::from(raw.trim()));
        let mut at = doc.as_item_mut();
        for (depth, key) in keys.iter().enumerate() {
            let inline = at.is_inline_table();
            let table = at.as_table_like_mut().ok_or_else(|| {
                bad(format!(
                    "`{}` is a value, not a table (config {origin})",
                    keys[..depth].join(".")
                ))
            })?;
            if depth + 1 == keys.len() {
                table.insert(key, toml_edit::Item::Value(value));
                break;
            }
            at = table.entry(key).or_insert_with(|| {
                if inline {
                    toml_edit::Item::Value(toml_edit::InlineTable::new().into())
                } else {
                    toml_edit::Item::Table(toml_edit::Table::new())
                }
            });
        }
        set.push((keys.iter().map(|k| k.to_string()).collect(), item.clone()));
    }
    Ok(set)
}

/// The config as written (with positions) and the overrides applied to it: what places an
/// error in the file or names the override that caused it.
struct Source<'a> {
    /// The config file's name.
    origin: &'a str,
    /// The text as written, parsed with the position of every key and value.
    file: toml_edit::Document<&'a str>,
    /// Key path and text of each override, in order.
    set: Vec<(Vec<String>, String)>,
}

impl Source<'_> {
    /// The last override that set `path` or a table holding it.
    fn override_of(&self, path: &[String]) -> Option<&str> {
        self.set
            .iter()
            .rev()
            .find(|(keys, _)| path.starts_with(keys))
            .map(|(_, item)| item.as_str())
    }

    /// `line:column` of `path` in the file: its key, or its value (a table's header).
    fn position(&self, path: &[String], at_key: bool) -> Option<(usize, usize)> {
        if path.is_empty() {
            return None;
        }
        let mut table = self.file.as_table() as &dyn toml_edit::TableLike;
        let mut found = None;
        for (depth, name) in path.iter().enumerate() {
            let (key, item) = table.get_key_value(name)?;
            if depth + 1 == path.len() {
                found = if at_key {
                    key.span().or_else(|| item.span())
                } else {
                    item.span().or_else(|| key.span())
                };
            } else {
                table = item.as_table_like()?;
            }
        }
        found.map(|span| line_col(self.file.raw(), span.start))
    }

    /// `[algorithm]` on its own: through the `class` tag serde loses the field and the
    /// position of an error in the table, so the class's fields are read directly first.
    fn check_algorithm_table(&self, doc: &toml_edit::DocumentMut) -> Result<(), Error> {
        let Some(table) = doc
            .get("algorithm")
            .and_then(toml_edit::Item::as_table_like)
        else {
            return Ok(());
        };
        let Some(class) = table.get("class").and_then(toml_edit::Item::as_str) else {
            // A missing class is reported by the whole parse.
            return Ok(());
        };
        let mut fields = toml_edit::Table::new();
        for (key, item) in table.iter().filter(|(key, _)| *key != "class") {
            fields.insert(key, item.clone());
        }
        let text = toml_edit::DocumentMut::from(fields).to_string();
        match AlgorithmConfig::parse_fields(class, &text) {
            Some(parsed) => parsed.map_err(|e| self.toml_error(&text, &["algorithm"], &e)),
            // An unknown class is reported by the whole parse.
            None => Ok(()),
        }
    }

    /// A one-line error from a toml error in `text` (the rendered config, or the table at
    /// `prefix` of it): placed in the file, or naming the override that caused it.
    fn toml_error(&self, text: &str, prefix: &[&str], e: &toml::de::Error) -> Error {
        let (mut path, at_key) = match (e.span(), toml_edit::Document::parse(text)) {
            // An empty span is the whole document (a missing top-level field).
            (Some(span), Ok(doc)) if !span.is_empty() => path_at(doc.as_table(), &span),
            _ => (Vec::new(), false),
        };
        path.splice(0..0, prefix.iter().map(|k| k.to_string()));
        let mut message = plain_words(e.message());
        // The error is about a field the table lacks: name it and say what it takes.
        let mut field = path.clone();
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            field.push(name.to_string());
            message = format!(
                "missing required field `{name}`{}",
                required_hint(&field.join("."))
            );
        } else if field == ["algorithm"] && message.contains("variant") {
            message = format!(
                "{message}; valid algorithm classes: {}",
                AlgorithmConfig::CLASSES.join(", ")
            );
        }
        let field = field.join(".");
        if let Some(item) = self.override_of(&path) {
            return Error::Override {
                item: item.to_string(),
                message: format!("invalid `{field}` (config {}): {message}", self.origin),
            };
        }
        let (line, column) = self.position(&path, at_key).unwrap_or((0, 0));
        Error::Parse {
            origin: self.origin.to_string(),
            line,
            column,
            section: field,
            message,
        }
    }

    /// A validation error, placed at the field's value in the file, or naming the
    /// override that set it.
    fn invalid(&self, e: Error) -> Error {
        let Error::Invalid { field, message, .. } = e else {
            return e;
        };
        let path: Vec<String> = field.split('.').map(str::to_string).collect();
        if let Some(item) = self.override_of(&path) {
            return Error::Override {
                item: item.to_string(),
                message: format!("invalid `{field}` (config {}): {message}", self.origin),
            };
        }
        // An unknown key is pointed at itself, a bad value at the value.
        let at_key = message.starts_with("unknown field");
        let origin = match self.position(&path, at_key) {
            Some((line, column)) => format!("{}:{line}:{column}", self.origin),
            None => self.origin.to_string(),
        };
        Error::Invalid {
            origin,
            field,
            message,
        }
    }
}

/// The key path of the innermost key, value or table header of `table` that holds `span`,
/// and whether it is a key.
fn path_at(table: &dyn toml_edit::TableLike, span: &std::ops::Range<usize>) -> (Vec<String>, bool) {
    let holds = |s: Option<std::ops::Range<usize>>| {
        s.is_some_and(|s| s.start <= span.start && span.end <= s.end)
    };
    for (name, _) in table.iter() {
        let Some((key, item)) = table.get_key_value(name) else {
            continue;
        };
        if holds(key.span()) {
            return (vec![name.to_string()], true);
        }
        let inner = item.as_table_like().map(|t| path_at(t, span));
        if let Some((mut path, at_key)) = inner.filter(|(path, _)| !path.is_empty()) {
            path.insert(0, name.to_string());
            return (path, at_key);
        }
        if holds(item.span()) {
            return (vec![name.to_string()], false);
        }
    }
    (Vec::new(), false)
}

/// serde's message in words of the config file, on one line.
fn plain_words(message: &str) -> String {
    let mut message = message.trim().replace('\n', " ");
    for (rust, toml) in [
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
        ("expected usize", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected a sequence", "expected a list"),
        ("invalid type: map", "invalid type: table"),
        ("invalid type: sequence", "invalid type: list"),
    ] {
        message = message.replace(rust, toml);
    }
    message
}

/// What a required field takes, for its "missing" error.
fn required_hint(field: &str) -> String {
    match field {
        "env" => format!(
            "; expected an [env] table with `task` (one of: {}) and `num_envs`",
            sim_gpu::TASKS.join(", ")
        ),
        "env.task" => format!("; expected one of: {}", sim_gpu::TASKS.join(", ")),
        "env.num_envs" => "; expected the number of parallel environments (at least 1)".into(),
        "algorithm.class" => format!("; expected one of: {}", AlgorithmConfig::CLASSES.join(", ")),
        _ => String::new(),
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// The `[section]` header in force at a byte offset.
fn section_at(text: &str, offset: usize) -> String {
    // Include the whole line at `offset`: the span of a table error is its header.
    let start = offset.min(text.len());
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    text[..end]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        .unwrap_or_default()
}

/// A one-line error for text that is not TOML: file, line, column and the section it is in.
fn syntax_error(origin: &str, text: &str, e: &toml_edit::TomlError) -> Error {
    let offset = e.span().map_or(0, |s| s.start);
    let (line, column) = e.span().map_or((0, 0), |_| line_col(text, offset));
    Error::Parse {
        origin: origin.to_string(),
        line,
        column,
        section: section_at(text, offset),
        message: format!("invalid TOML: {}", plain_words(e.message())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ppo(c: &TrainConfig) -> &rl_ppo::PpoConfig {
        let AlgorithmConfig::Ppo(p) = &c.algorithm;
        p
    }

    const BASE: &str = r#"
seed = 3

[env]
task = "cartpole"
num_envs = 8

[algorithm]
class = "ppo"
gamma = 0.98

[policy]
actor_hidden_dims = [32, 32]

[runner]
num_steps_per_env = 16
max_iterations = 5
"#;

    #[test]
    fn parses_with_defaults() {
        let c = TrainConfig::parse(BASE, "test.toml", &[]).expect("valid");
        assert_eq!(c.seed, 3);
        assert_eq!(ppo(&c).gamma, 0.98);
        assert_eq!(ppo(&c).lam, 0.95);
        assert_eq!(c.policy.actor_hidden_dims, vec![32, 32]);
        assert_eq!(c.policy.critic_hidden_dims, vec![256, 256, 128]);
        assert_eq!(c.runner.save_interval, 50);
    }

    #[test]
    fn unknown_field_is_a_one_line_error_with_location() {
        let text = BASE.replace("gamma = 0.98", "gama = 0.98");
        let e = TrainConfig::parse(&text, "test.toml", &[])
            .expect_err("typo")
            .to_string();
        assert!(!e.contains('\n'), "{e}");
        // At the key itself (line 10, column 1), not at the `[algorithm]` header.
        assert!(e.contains("test.toml:10:1:"), "{e}");
        assert!(
            e.contains("`algorithm.gama`") && e.contains("`gamma`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_field_in_policy_names_the_line() {
        let text = BASE.replace("actor_hidden_dims", "actor_hiden_dims");
        let e = TrainConfig::parse(&text, "test.toml", &[])
            .expect_err("typo")
            .to_string();
        assert!(e.contains("actor_hiden_dims"), "{e}");
        assert!(e.contains("test.toml:13"), "{e}");
    }

    #[test]
    fn unknown_class_and_task_are_errors() {
        let text = BASE.replace("class = \"ppo\"", "class = \"sac\"");
        let e = TrainConfig::parse(&text, "test.toml", &[])
            .expect_err("class")
            .to_string();
        assert!(e.contains("sac") && e.contains("ppo"), "{e}");
        let text = BASE.replace("\"cartpole\"", "\"cartpol\"");
        let e = TrainConfig::parse(&text, "test.toml", &[])
            .expect_err("task")
            .to_string();
        assert!(
            e.contains("env.task") && e.contains("cartpol") && e.contains("pendulum"),
            "{e}"
        );
    }

    #[test]
    fn overrides_take_toml_values() {
        let c = TrainConfig::parse(
            BASE,
            "test.toml",
            &[
                "policy.actor_hidden_dims=[64,64]".into(),
                "algorithm.entropy_coef=0.0".into(),
                "env.task=pendulum".into(),
                "runner.stop_at_mean_reward=-200".into(),
            ],
        )
        .expect("valid overrides");
        assert_eq!(c.policy.actor_hidden_dims, vec![64, 64]);
        assert_eq!(ppo(&c).entropy_coef, 0.0);
        assert_eq!(c.env.task, "pendulum");
        assert_eq!(c.runner.stop_at_mean_reward, Some(-200.0));
    }

    #[test]
    fn override_of_unknown_field_is_an_error() {
        let e = TrainConfig::parse(BASE, "test.toml", &["algorithm.nope=1".into()])
            .expect_err("unknown")
            .to_string();
        assert!(e.starts_with("--set algorithm.nope=1: "), "{e}");
        assert!(
            e.contains("does not exist") && e.contains("gamma, lam"),
            "{e}"
        );
        let e = TrainConfig::parse(BASE, "test.toml", &["seed".into()])
            .expect_err("no =")
            .to_string();
        assert!(e.contains("section.key=value"), "{e}");
    }

    #[test]
    fn inconsistent_mini_batches_name_the_field() {
        let e = TrainConfig::parse(BASE, "test.toml", &["algorithm.num_mini_batches=5".into()])
            .expect_err("8 * 16 not divisible by 5")
            .to_string();
        assert!(e.contains("algorithm.num_mini_batches"), "{e}");
    }

    #[test]
    fn field_names_are_read_from_the_structs() {
        let env: EnvConfig =
            toml::from_str("task = \"pendulum\"\nnum_envs = 3\nx = 1\n").expect("env");
        assert_eq!((env.task.as_str(), env.num_envs), ("pendulum", 3));
        assert_eq!(env.settings.keys().collect::<Vec<_>>(), ["x"]);
        assert_eq!(section_keys("env").expect("a table"), ENV_KEYS);
        assert_eq!(
            field_names::<TrainConfig>(),
            ["seed", "env", "algorithm", "policy", "runner", "logger"]
        );
        let algorithm = section_keys("algorithm").expect("a table");
        assert_eq!(algorithm[..3], ["class", "gamma", "lam"]);
        assert!(
            section_keys("runner")
                .expect("a table")
                .contains(&"stop_at_mean_reward")
        );
        assert_eq!(section_keys("seed"), None);
        assert_eq!(section_keys("nosuch"), None);
    }

    #[test]
    fn path_at_finds_keys_values_and_headers() {
        let text = "seed = 1\n[policy]\ns = { type = \"linear\", n = 2 }\n";
        let doc = toml_edit::Document::parse(text).expect("toml");
        let at = |needle: &str| {
            let start = text.find(needle).expect("needle");
            path_at(doc.as_table(), &(start..start + needle.len()))
        };
        assert_eq!(at("seed"), (vec!["seed".to_string()], true));
        assert_eq!(at("1"), (vec!["seed".to_string()], false));
        assert_eq!(at("[policy]"), (vec!["policy".to_string()], false));
        let inline = at("{ type = \"linear\", n = 2 }");
        assert_eq!(inline, (vec!["policy".to_string(), "s".to_string()], false));
        let n = at("2");
        assert_eq!(n.0, ["policy", "s", "n"]);
    }

    #[test]
    fn validation_errors_point_at_the_value_in_the_file() {
        let text = BASE.replace("gamma = 0.98", "gamma = 1.5");
        let e = TrainConfig::parse(&text, "test.toml", &[])
            .expect_err("gamma")
            .to_string();
        assert!(
            e.starts_with("test.toml:10:9: invalid `algorithm.gamma`"),
            "{e}"
        );
        // The same value given by an override names the override, not a place in the file.
        let e = TrainConfig::parse(BASE, "test.toml", &["algorithm.gamma=1.5".into()])
            .expect_err("gamma")
            .to_string();
        assert!(e.starts_with("--set algorithm.gamma=1.5: "), "{e}");
        assert!(!e.contains("test.toml:"), "{e}");
    }

    #[test]
    fn overrides_into_inline_tables_stay_inline() {
        let text = BASE.replace(
            "actor_hidden_dims = [32, 32]",
            "actor_hidden_dims = [32, 32]\nobs_groups = { policy = [\"policy\"] }",
        );
        let c = TrainConfig::parse(
            &text,
            "test.toml",
            &["policy.obs_groups.critic=[\"policy\", \"policy\"]".into()],
        )
        .expect("valid");
        assert_eq!(c.policy.obs_groups.critic, ["policy", "policy"]);
    }

    #[test]
    fn resolved_config_round_trips() {
        let c = TrainConfig::parse(BASE, "test.toml", &[]).expect("valid");
        let text = c.to_toml().expect("serialise");
        let d = TrainConfig::parse(&text, "resolved", &[]).expect("parse back");
        assert_eq!(c, d);
    }
}
