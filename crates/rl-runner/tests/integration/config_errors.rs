//! Every kind of config error (unknown field, wrong type, out-of-range or inconsistent value,
//! unknown name, bad `--set`) is a one-line usage error that names the file, the line and
//! column when the problem is in the file, the field path, what was expected and, where the
//! choices are few, the valid ones.

use std::path::Path;

use rl_runner::{Error, TrainConfig};

/// A valid config; each case edits one line of it. Every line is unique.
const BASE: &str = r#"# A small valid config.
seed = 1

[env]
task = "cartpole"
num_envs = 8

[algorithm]
class = "ppo"
gamma = 0.99
lam = 0.95
clip_param = 0.2
learning_rate = 1e-3
num_learning_epochs = 2
num_mini_batches = 4
schedule = "adaptive"

[policy]
actor_hidden_dims = [32, 32]
critic_hidden_dims = [32, 32]
activation = "elu"
init_noise_std = 1.0

[runner]
num_steps_per_env = 16
max_iterations = 5
save_interval = 5

[logger]
log_dir = "logs"
experiment_name = "test"
"#;

/// One bad config: a line of [`BASE`] replaced, and overrides.
struct Case {
    /// What is wrong (names the case in failures).
    name: &'static str,
    /// A whole line of `BASE` and what replaces it (may be several lines or none).
    edit: Option<(&'static str, &'static str)>,
    /// `--set` overrides.
    set: &'static [&'static str],
    /// The field path the error must name.
    field: &'static str,
    /// Where the error must point in the edited text: the text found at its
    /// `line:column`. `None`: the error must not point into the file.
    at: Option<&'static str>,
    /// Further text the error must contain: what was expected, the valid choices.
    says: &'static [&'static str],
}

const fn file(
    name: &'static str,
    line: &'static str,
    with: &'static str,
    field: &'static str,
    at: Option<&'static str>,
    says: &'static [&'static str],
) -> Case {
    Case {
        name,
        edit: Some((line, with)),
        set: &[],
        field,
        at,
        says,
    }
}

const fn set(
    name: &'static str,
    set: &'static [&'static str],
    field: &'static str,
    says: &'static [&'static str],
) -> Case {
    Case {
        name,
        edit: None,
        set,
        field,
        at: None,
        says,
    }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Unknown fields: at the key, with the valid field names.
    file("unknown top-level field", "seed = 1", "seed = 1\nsede = 2", "sede", Some("sede"),
        &["unknown field `sede`", "expected one of", "`seed`", "`env`", "`algorithm`", "`logger`"]),
    file("unknown top-level table", "[logger]", "[nosuch]\nkey = 1\n[logger]", "nosuch", Some("nosuch"),
        &["unknown field `nosuch`", "`seed`", "`policy`", "`runner`"]),
    file("unknown field in [env]", "num_envs = 8", "num_envs = 8\nnum_env = 4", "env.num_env", Some("num_env ="),
        &["unknown field `num_env`", "`task`", "`num_envs`"]),
    file("unknown field in [algorithm]", "gamma = 0.99", "gama = 0.99", "algorithm.gama", Some("gama"),
        &["unknown field `gama`", "`gamma`", "`lam`", "`clip_param`", "`timeout_bootstrap`"]),
    file("unknown field in [policy]", "activation = \"elu\"", "activaton = \"elu\"", "policy.activaton", Some("activaton"),
        &["unknown field `activaton`", "`activation`", "`init_noise_std`", "`min_std`"]),
    file("unknown field in [runner]", "save_interval = 5", "save_intervall = 5", "runner.save_intervall", Some("save_intervall"),
        &["unknown field `save_intervall`", "`save_interval`", "`num_steps_per_env`"]),
    file("unknown field in [logger]", "experiment_name = \"test\"", "experiment = \"test\"", "logger.experiment", Some("experiment ="),
        &["unknown field `experiment`", "`experiment_name`", "`log_dir`"]),
    // Wrong types: at the value, with the type expected.
    file("string for an integer", "num_envs = 8", "num_envs = \"eight\"", "env.num_envs", Some("\"eight\""),
        &["invalid type: string \"eight\"", "expected a non-negative integer"]),
    file("string for a number in [algorithm]", "gamma = 0.99", "gamma = \"high\"", "algorithm.gamma", Some("\"high\""),
        &["invalid type: string \"high\"", "expected a number"]),
    file("number for a list", "actor_hidden_dims = [32, 32]", "actor_hidden_dims = 32", "policy.actor_hidden_dims", Some("32"),
        &["invalid type: integer `32`", "expected a list"]),
    file("negative seed", "seed = 1", "seed = -1", "seed", Some("-1"),
        &["expected a non-negative integer"]),
    file("negative count", "num_learning_epochs = 2", "num_learning_epochs = -2", "algorithm.num_learning_epochs", Some("-2"),
        &["expected a non-negative integer"]),
    // Out-of-range values: at the value, with the range.
    file("gamma 0", "gamma = 0.99", "gamma = 0.0", "algorithm.gamma", Some("0.0"),
        &["expected a value in (0, 1]", "got 0"]),
    file("gamma 1.5", "gamma = 0.99", "gamma = 1.5", "algorithm.gamma", Some("1.5"),
        &["expected a value in (0, 1]", "got 1.5"]),
    file("gamma nan", "gamma = 0.99", "gamma = nan", "algorithm.gamma", Some("nan"),
        &["expected a value in (0, 1]", "got NaN"]),
    file("lam 1.5", "lam = 0.95", "lam = 1.5", "algorithm.lam", Some("1.5"),
        &["expected a value in [0, 1]"]),
    file("lam negative", "lam = 0.95", "lam = -0.1", "algorithm.lam", Some("-0.1"),
        &["expected a value in [0, 1]"]),
    file("learning_rate 0", "learning_rate = 1e-3", "learning_rate = 0.0", "algorithm.learning_rate", Some("0.0"),
        &["expected a positive", "got 0"]),
    file("learning_rate negative", "learning_rate = 1e-3", "learning_rate = -1e-3", "algorithm.learning_rate", Some("-1e-3"),
        &["expected a positive", "got -0.001"]),
    file("learning_rate nan", "learning_rate = 1e-3", "learning_rate = nan", "algorithm.learning_rate", Some("nan"),
        &["expected a positive", "got NaN"]),
    file("learning_rate inf", "learning_rate = 1e-3", "learning_rate = inf", "algorithm.learning_rate", Some("inf"),
        &["expected a positive", "got inf"]),
    file("clip_param 0", "clip_param = 0.2", "clip_param = 0.0", "algorithm.clip_param", Some("0.0"),
        &["expected a positive"]),
    file("clip_param nan", "clip_param = 0.2", "clip_param = nan", "algorithm.clip_param", Some("nan"),
        &["expected a positive", "got NaN"]),
    file("value_loss_coef nan", "clip_param = 0.2", "clip_param = 0.2\nvalue_loss_coef = nan", "algorithm.value_loss_coef", Some("nan"),
        &["expected a non-negative", "got NaN"]),
    file("max_learning_rate below min", "clip_param = 0.2", "clip_param = 0.2\nmin_learning_rate = 1e-3\nmax_learning_rate = 1e-4", "algorithm.max_learning_rate", Some("1e-4"),
        &["at least min_learning_rate (0.001)", "got 0.0001"]),
    file("max_grad_norm nan", "clip_param = 0.2", "clip_param = 0.2\nmax_grad_norm = nan", "algorithm.max_grad_norm", Some("nan"),
        &["expected a positive", "got NaN"]),
    file("num_learning_epochs 0", "num_learning_epochs = 2", "num_learning_epochs = 0", "algorithm.num_learning_epochs", Some("0"),
        &["expected at least 1", "got 0"]),
    file("num_mini_batches 0", "num_mini_batches = 4", "num_mini_batches = 0", "algorithm.num_mini_batches", Some("0"),
        &["expected at least 1", "got 0"]),
    // Inconsistent values: num_mini_batches against num_envs * num_steps_per_env = 128.
    file("num_mini_batches larger than the batch", "num_mini_batches = 4", "num_mini_batches = 256", "algorithm.num_mini_batches", Some("256"),
        &["expected at most the batch", "8 * 16 = 128", "got 256", "valid choices: 1, 2, 4, 8, 16, 32, 64, 128"]),
    file("num_mini_batches not dividing the batch", "num_mini_batches = 4", "num_mini_batches = 3", "algorithm.num_mini_batches", Some("3"),
        &["expected a divisor of the batch", "8 * 16 = 128", "got 3", "valid choices: 1, 2, 4, 8, 16, 32, 64, 128"]),
    file("num_envs 0", "num_envs = 8", "num_envs = 0", "env.num_envs", Some("0"),
        &["expected at least 1", "got 0"]),
    file("num_envs * num_steps_per_env overflows", "num_envs = 8", "num_envs = 4611686018427387904", "env.num_envs", Some("4611686018427387904"),
        &["num_envs * num_steps_per_env = 4611686018427387904 * 16 is too large"]),
    file("num_steps_per_env 0", "num_steps_per_env = 16", "num_steps_per_env = 0", "runner.num_steps_per_env", Some("0"),
        &["expected at least 1", "got 0"]),
    file("save_interval 0", "save_interval = 5", "save_interval = 0", "runner.save_interval", Some("0"),
        &["expected at least 1", "got 0"]),
    file("stop_at_mean_reward nan", "save_interval = 5", "save_interval = 5\nstop_at_mean_reward = nan", "runner.stop_at_mean_reward", Some("nan"),
        &["expected a number", "got NaN"]),
    file("empty experiment_name", "experiment_name = \"test\"", "experiment_name = \"\"", "logger.experiment_name", Some("\"\""),
        &["expected a non-empty name"]),
    // Unknown names: with every valid name.
    file("unknown task", "task = \"cartpole\"", "task = \"cartpol\"", "env.task", Some("\"cartpol\""),
        &["unknown task `cartpol`", "expected one of:", "cartpole, ", "pendulum", "acrobot"]),
    file("unknown class", "class = \"ppo\"", "class = \"sac\"", "algorithm.class", Some("\"sac\""),
        &["unknown variant `sac`", "expected `ppo`"]),
    file("missing class", "class = \"ppo\"", "", "algorithm.class", Some("[algorithm]"),
        &["missing required field `class`", "expected one of: ppo"]),
    file("unknown activation", "activation = \"elu\"", "activation = \"swish\"", "policy.activation", Some("\"swish\""),
        &["unknown variant `swish`", "`elu`", "`relu`", "`tanh`", "`silu`", "`identity`"]),
    file("unknown schedule", "schedule = \"adaptive\"", "schedule = \"cosine\"", "algorithm.schedule", Some("\"cosine\""),
        &["unknown variant `cosine`", "`adaptive`", "`fixed`"]),
    file("unknown grad_norm_clip", "clip_param = 0.2", "clip_param = 0.2\ngrad_norm_clip = \"both\"", "algorithm.grad_norm_clip", Some("\"both\""),
        &["unknown variant `both`", "`separate`", "`global`"]),
    file("unknown timeout_bootstrap", "clip_param = 0.2", "clip_param = 0.2\ntimeout_bootstrap = \"next\"", "algorithm.timeout_bootstrap", Some("\"next\""),
        &["unknown variant `next`", "`value`", "`final_observation`"]),
    file("unknown shuffle", "clip_param = 0.2", "clip_param = 0.2\nshuffle = \"never\"", "algorithm.shuffle", Some("\"never\""),
        &["unknown variant `never`", "`per_update`", "`per_epoch`"]),
    file("unknown noise_std_type", "init_noise_std = 1.0", "init_noise_std = 1.0\nnoise_std_type = \"exp\"", "policy.noise_std_type", Some("\"exp\""),
        &["unknown variant `exp`", "`scalar`", "`log`"]),
    file("unknown noise_std_schedule type", "init_noise_std = 1.0", "init_noise_std = 1.0\nnoise_std_schedule = { type = \"cosine\" }", "policy.noise_std_schedule.type", Some("\"cosine\""),
        &["unknown variant `cosine`", "`learned`", "`linear`"]),
    file("linear noise_std_schedule without final_std", "init_noise_std = 1.0", "init_noise_std = 1.0\nnoise_std_schedule = { type = \"linear\", num_iterations = 10 }", "policy.noise_std_schedule.final_std", Some("{ type"),
        &["missing required field `final_std`"]),
    // Policy shapes and std ranges.
    file("hidden dim 0", "actor_hidden_dims = [32, 32]", "actor_hidden_dims = [32, 0]", "policy.actor_hidden_dims", Some("[32, 0]"),
        &["expected positive layer sizes", "got [32, 0]"]),
    file("critic hidden dim 0", "critic_hidden_dims = [32, 32]", "critic_hidden_dims = [0]", "policy.critic_hidden_dims", Some("[0]"),
        &["expected positive layer sizes"]),
    file("min_std above max_std", "init_noise_std = 1.0", "init_noise_std = 1.0\nmin_std = 2.0\nmax_std = 1.5", "policy.max_std", Some("1.5"),
        &["at least min_std (2)", "got 1.5"]),
    file("init_noise_std above max_std", "init_noise_std = 1.0", "init_noise_std = 20.0", "policy.init_noise_std", Some("20.0"),
        &["expected a value in [min_std, max_std] = [0.001, 10]", "got 20"]),
    file("init_noise_std nan", "init_noise_std = 1.0", "init_noise_std = nan", "policy.init_noise_std", Some("nan"),
        &["expected a value in [min_std, max_std]", "got NaN"]),
    file("min_std nan", "init_noise_std = 1.0", "init_noise_std = 1.0\nmin_std = nan", "policy.min_std", Some("nan"),
        &["expected a positive", "got NaN"]),
    // Missing required parts.
    file("missing env.task", "task = \"cartpole\"", "", "env.task", Some("[env]"),
        &["missing required field `task`", "expected one of:", "cartpole", "pendulum"]),
    file("missing env.num_envs", "num_envs = 8", "", "env.num_envs", Some("[env]"),
        &["missing required field `num_envs`", "expected the number of parallel environments"]),
    // Not TOML at all.
    file("invalid TOML syntax", "gamma = 0.99", "gamma = = 0.99", "algorithm", Some("= 0.99"),
        &["invalid TOML"]),
    file("unclosed array", "actor_hidden_dims = [32, 32]", "actor_hidden_dims = [32, 32", "policy", Some("critic_hidden_dims"),
        &["invalid TOML", "missing comma between array elements"]),
    // `--set`: errors name the override as given and never point into the file.
    set("--set without =", &["seed"], "",
        &["--set seed:", "expected section.key=value"]),
    set("--set with an empty key", &["algorithm..gamma=1"], "",
        &["--set algorithm..gamma=1:", "not a key path"]),
    set("--set of a key that does not exist", &["algorithm.gama=0.9"], "algorithm.gama",
        &["--set algorithm.gama=0.9:", "does not exist", "valid keys of [algorithm]: class, gamma, lam, clip_param"]),
    set("--set of a key that does not exist in [env]", &["env.tasks=pendulum"], "env.tasks",
        &["--set env.tasks=pendulum:", "unknown field `tasks`", "expected `task`, `num_envs` or `observe`"]),
    set("--set of a section that does not exist", &["nosuch.key=1"], "nosuch",
        &["--set nosuch.key=1:", "section `nosuch` does not exist", "seed, env, algorithm, policy, runner, logger"]),
    set("--set of a key without its section", &["gamma=0.9"], "gamma",
        &["--set gamma=0.9:", "top-level key `gamma` does not exist", "did you mean algorithm.gamma?", "seed, env"]),
    set("--set through a value", &["seed.x=1"], "seed",
        &["--set seed.x=1:", "`seed` is a value, not a table"]),
    set("--set through a value in a table", &["algorithm.gamma.x=1"], "algorithm.gamma",
        &["--set algorithm.gamma.x=1:", "`algorithm.gamma` is a value, not a table"]),
    set("--set of a nested key that does not exist", &["policy.obs_groups.actor=[\"policy\"]"], "policy.obs_groups.actor",
        &["--set policy.obs_groups.actor=[\"policy\"]:", "unknown field `actor`", "`policy`", "`critic`"]),
    set("--set of a wrong-typed value", &["algorithm.gamma=high"], "algorithm.gamma",
        &["--set algorithm.gamma=high:", "invalid type: string \"high\"", "expected a number"]),
    set("--set of a wrong-typed value in [env]", &["env.num_envs=[8]"], "env.num_envs",
        &["--set env.num_envs=[8]:", "invalid type: list", "expected a non-negative integer"]),
    set("--set of an out-of-range value", &["algorithm.gamma=1.5"], "algorithm.gamma",
        &["--set algorithm.gamma=1.5:", "expected a value in (0, 1]", "got 1.5"]),
    set("--set of nan", &["algorithm.learning_rate=nan"], "algorithm.learning_rate",
        &["--set algorithm.learning_rate=nan:", "got NaN"]),
    set("--set of an unknown task", &["env.task=cartpol"], "env.task",
        &["--set env.task=cartpol:", "unknown task `cartpol`", "pendulum"]),
    set("--set of an unknown activation", &["policy.activation=\"swish\""], "policy.activation",
        &["--set policy.activation=\"swish\":", "unknown variant `swish`", "`elu`"]),
    set("--set of an unknown class", &["algorithm.class=sac"], "algorithm.class",
        &["--set algorithm.class=sac:", "unknown variant `sac`", "`ppo`"]),
    set("--set of save_interval 0", &["runner.save_interval=0"], "runner.save_interval",
        &["--set runner.save_interval=0:", "expected at least 1"]),
];

/// Writes `text` to a temporary `bad.toml` and loads it with `set`.
fn load(dir: &Path, text: &str, set: &[&str]) -> Result<TrainConfig, Error> {
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).expect("write the config");
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    TrainConfig::load(&path, &set)
}

/// The `line:column` after `path:` in `message`, if any.
fn position(message: &str, path: &str) -> Option<(usize, usize)> {
    let rest = &message[message.find(path)? + path.len()..];
    let mut parts = rest.strip_prefix(':')?.splitn(3, ':');
    let line = parts.next()?.parse().ok()?;
    let column = parts.next()?.parse().ok()?;
    Some((line, column))
}

#[test]
fn the_base_config_is_valid() {
    let dir = tempfile::tempdir().expect("temp dir");
    load(dir.path(), BASE, &[]).expect("BASE is valid");
}

#[test]
fn every_config_error_is_one_line_naming_file_place_field_and_choices() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml").display().to_string();
    let mut failures = Vec::new();
    for case in CASES {
        let text = match case.edit {
            Some((line, with)) => {
                let hits = BASE.lines().filter(|l| *l == line).count();
                assert_eq!(hits, 1, "{}: `{line}` is not one line of BASE", case.name);
                BASE.replacen(&format!("{line}\n"), &format!("{with}\n"), 1)
            }
            None => BASE.to_string(),
        };
        let err = match load(dir.path(), &text, case.set) {
            Ok(_) => {
                failures.push(format!("{}: loaded", case.name));
                continue;
            }
            Err(e) => e,
        };
        let msg = err.to_string();
        // Shown with --nocapture: the whole catalogue of messages, for review.
        println!("{}: {msg}", case.name);
        let mut wrong = Vec::new();
        if msg.contains('\n') {
            wrong.push("is not one line".to_string());
        }
        if !err.is_usage() {
            wrong.push("is not a usage error".into());
        }
        if !msg.contains(&path) {
            wrong.push("does not name the file".into());
        }
        if !case.field.is_empty() && !msg.contains(&format!("`{}`", case.field)) {
            wrong.push(format!("does not name the field `{}`", case.field));
        }
        for s in case.says {
            if !msg.contains(s) {
                wrong.push(format!("does not say `{s}`"));
            }
        }
        if msg.starts_with("--set ") == case.set.is_empty() {
            wrong.push("does not start with the --set override when one caused it".into());
        }
        match (case.at, position(&msg, &path)) {
            (Some(at), Some((line, column))) => {
                let found = text
                    .lines()
                    .nth(line - 1)
                    .and_then(|l| l.get(column - 1..))
                    .unwrap_or("<outside the text>");
                if !found.starts_with(at) {
                    wrong.push(format!("points at `{found}`, not at `{at}`"));
                }
            }
            (Some(at), None) => wrong.push(format!("gives no line:column (expected at `{at}`)")),
            (None, Some(pos)) => wrong.push(format!("points into the file at {pos:?}")),
            (None, None) => {}
        }
        if !wrong.is_empty() {
            failures.push(format!("{}: {}\n    {msg}", case.name, wrong.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn errors_point_into_the_file_even_when_overrides_add_lines() {
    // The overrides add keys to [algorithm] and [policy]: the re-rendered text has more
    // lines than the file, but errors after them still give the file's line and column.
    let dir = tempfile::tempdir().expect("temp dir");
    let text = BASE
        .replace("activation = \"elu\"", "activation = \"swish\"")
        .replace("save_interval = 5", "save_interval = 0");
    let set = [
        "algorithm.entropy_coef=0.0",
        "algorithm.desired_kl=0.02",
        "policy.min_std=0.01",
    ];
    let line_of = |s: &str| 1 + text.lines().position(|l| l == s).expect("line");
    let msg = load(dir.path(), &text, &set)
        .expect_err("bad activation")
        .to_string();
    let want = format!("bad.toml:{}:14:", line_of("activation = \"swish\""));
    assert!(msg.contains(&want), "{want} in {msg}");
    let text = text.replace("activation = \"swish\"", "activation = \"tanh\"");
    let msg = load(dir.path(), &text, &set)
        .expect_err("bad interval")
        .to_string();
    let want = format!("bad.toml:{}:17:", line_of("save_interval = 0"));
    assert!(msg.contains(&want), "{want} in {msg}");
}

#[test]
fn an_override_that_fixes_the_file_wins() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = BASE.replace("gamma = 0.99", "gamma = 1.5");
    let cfg = load(dir.path(), &text, &["algorithm.gamma=0.9"]).expect("override fixes gamma");
    let rl_runner::AlgorithmConfig::Ppo(ppo) = &cfg.algorithm;
    assert_eq!(ppo.gamma, 0.9);
}

#[test]
fn a_missing_env_table_names_the_table_and_its_fields() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = BASE.replace("[env]\ntask = \"cartpole\"\nnum_envs = 8\n", "");
    let err = load(dir.path(), &text, &[]).expect_err("no [env]");
    let msg = err.to_string();
    assert!(err.is_usage(), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    let path = dir.path().join("bad.toml").display().to_string();
    assert!(
        msg.starts_with(&format!("{path}: ")),
        "no line:column for a missing table: {msg}"
    );
    for s in [
        "`env`",
        "missing required field `env`",
        "`task`",
        "`num_envs`",
        "cartpole",
    ] {
        assert!(msg.contains(s), "{s} in {msg}");
    }
}

#[test]
fn a_config_file_that_cannot_be_read_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("missing.toml");
    let err = TrainConfig::load(&path, &[]).expect_err("no file");
    let msg = err.to_string();
    assert!(err.is_usage(), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}
