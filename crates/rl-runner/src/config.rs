//! `TrainConfig`: the whole TOML file of a training run, its overrides and its checks.

use std::path::{Path, PathBuf};

use rl_ppo::{PolicyConfig, PpoConfig};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The algorithm, chosen by the `class` field of `[algorithm]` (the seed's class-type
/// pattern). Registering a new algorithm is one variant here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum AlgorithmConfig {
    /// Proximal Policy Optimization (`class = "ppo"`).
    Ppo(PpoConfig),
}

impl Default for AlgorithmConfig {
    fn default() -> Self {
        AlgorithmConfig::Ppo(PpoConfig::default())
    }
}

impl AlgorithmConfig {
    /// The class names that `[algorithm] class` accepts.
    pub const CLASSES: &'static [&'static str] = &["ppo"];
}

/// `[env]`: which task and how many copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// Task name in the `sim-gpu` registry (`cartpole`, `pendulum`).
    pub task: String,
    /// Number of environments stepped in parallel.
    pub num_envs: usize,
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
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            action: "read the config file",
            source: e,
        })?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    /// Parses config text; `origin` names it in errors (a file path).
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Self, Error> {
        let text = apply_overrides(text, origin, overrides)?;
        let cfg: TrainConfig =
            toml::from_str(&text).map_err(|e| config_error(origin, &text, &e))?;
        cfg.validate_in(origin)?;
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

    /// The PPO hyperparameters (the only class so far).
    pub fn ppo(&self) -> &PpoConfig {
        match &self.algorithm {
            AlgorithmConfig::Ppo(p) => p,
        }
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
        let invalid = |field: &str, message: String| Error::Invalid {
            origin: String::new(),
            field: field.to_string(),
            message,
        };
        if !sim_gpu::TASKS.contains(&self.env.task.as_str()) {
            return Err(invalid(
                "env.task",
                format!(
                    "unknown task `{}`; valid tasks: {}",
                    self.env.task,
                    sim_gpu::TASKS.join(", ")
                ),
            ));
        }
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
        if self.logger.experiment_name.is_empty() {
            return Err(invalid(
                "logger.experiment_name",
                "expected a non-empty name".into(),
            ));
        }
        let to_invalid = |e: rl_ppo::Error| match e {
            rl_ppo::Error::Config { field, message } => invalid(&field, message),
            other => invalid("algorithm", other.to_string()),
        };
        match &self.algorithm {
            AlgorithmConfig::Ppo(ppo) => {
                ppo.validate().map_err(to_invalid)?;
                let batch = self.env.num_envs * self.runner.num_steps_per_env;
                if ppo.num_mini_batches > batch || !batch.is_multiple_of(ppo.num_mini_batches) {
                    return Err(invalid(
                        "algorithm.num_mini_batches",
                        format!(
                            "expected a divisor of num_envs * num_steps_per_env = {batch}, got {}",
                            ppo.num_mini_batches
                        ),
                    ));
                }
            }
        }
        self.policy.validate().map_err(to_invalid)?;
        Ok(())
    }
}

/// Applies `section.key=value` overrides to the TOML text, keeping its layout so that
/// line numbers in later errors still point into the user's file.
fn apply_overrides(text: &str, origin: &str, overrides: &[String]) -> Result<String, Error> {
    if overrides.is_empty() {
        return Ok(text.to_string());
    }
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        Error::Parse {
            origin: origin.to_string(),
            line,
            column,
            section: String::new(),
            message: e.message().to_string(),
        }
    })?;
    for item in overrides {
        let bad = |message: String| Error::Override {
            item: item.clone(),
            message,
        };
        let (path, raw) = item
            .split_once('=')
            .ok_or_else(|| bad("expected section.key=value".into()))?;
        let keys: Vec<&str> = path.trim().split('.').collect();
        if keys.iter().any(|k| k.is_empty()) {
            return Err(bad(format!("`{path}` is not a valid key path")));
        }
        // The value is TOML; a bare word that is not valid TOML is taken as a string.
        let value: toml_edit::Value = raw
            .trim()
            .parse()
            .unwrap_or_else(|_| toml_edit::Value::from(raw.trim()));
        let (last, parents) = keys
            .split_last()
            .ok_or_else(|| bad("empty key path".into()))?;
        let mut table = doc.as_table_mut();
        for (depth, key) in parents.iter().enumerate() {
            let entry = table
                .entry(key)
                .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
            table = entry
                .as_table_mut()
                .ok_or_else(|| bad(format!("`{}` is not a table", keys[..=depth].join("."))))?;
        }
        table.insert(last, toml_edit::Item::Value(value));
    }
    Ok(doc.to_string())
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

/// A one-line error from a toml error: file, line, column, section and message.
fn config_error(origin: &str, text: &str, e: &toml::de::Error) -> Error {
    let (line, column, section) = match e.span() {
        Some(span) => {
            let (l, c) = line_col(text, span.start);
            (l, c, section_at(text, span.start))
        }
        None => (0, 0, String::new()),
    };
    let mut message = e.message().trim().replace('\n', " ");
    if message.contains("unknown variant") && message.contains("class")
        || section == "algorithm" && message.contains("variant")
    {
        message = format!(
            "{message} (valid algorithm classes: {})",
            AlgorithmConfig::CLASSES.join(", ")
        );
    }
    Error::Parse {
        origin: origin.to_string(),
        line,
        column,
        section,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.ppo().gamma, 0.98);
        assert_eq!(c.ppo().lam, 0.95);
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
        assert!(e.contains("test.toml:8"), "{e}");
        assert!(e.contains("[algorithm]") && e.contains("gama"), "{e}");
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
        assert_eq!(c.ppo().entropy_coef, 0.0);
        assert_eq!(c.env.task, "pendulum");
        assert_eq!(c.runner.stop_at_mean_reward, Some(-200.0));
    }

    #[test]
    fn override_of_unknown_field_is_an_error() {
        let e = TrainConfig::parse(BASE, "test.toml", &["algorithm.nope=1".into()])
            .expect_err("unknown")
            .to_string();
        assert!(e.contains("nope"), "{e}");
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
    fn resolved_config_round_trips() {
        let c = TrainConfig::parse(BASE, "test.toml", &[]).expect("valid");
        let text = c.to_toml().expect("serialise");
        let d = TrainConfig::parse(&text, "resolved", &[]).expect("parse back");
        assert_eq!(c, d);
    }
}
