//! `cargo xtask train` with a bad config, backend or `--set` fails during config validation,
//! before any training: exit status 2 and one `error:` line naming the file and the field.
//! Likewise `cargo xtask play --render` of a task with nothing to draw or into a missing
//! directory, before playing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A valid config; the cases edit one line of it.
const BASE: &str = r#"seed = 1

[env]
task = "cartpole"
num_envs = 8

[algorithm]
class = "ppo"
gamma = 0.99
num_mini_batches = 4

[policy]
actor_hidden_dims = [16]
critic_hidden_dims = [16]
activation = "elu"

[runner]
num_steps_per_env = 8
max_iterations = 1
save_interval = 1

[logger]
experiment_name = "cli_errors"
"#;

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("xtask-cli-errors-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `xtask train` on `config` with `args`, logging (if it ever got that far) under `dir`.
fn train(dir: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("train")
        .arg("--config")
        .arg(config)
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .arg("--max-iterations")
        .arg("1")
        .arg("--quiet")
        .args(args)
        .output()
        .expect("run xtask")
}

/// Writes BASE with `line` replaced by `with` to `dir/name`.
fn write_config(dir: &Path, name: &str, line: &str, with: &str) -> PathBuf {
    assert!(BASE.contains(line), "`{line}` is not in BASE");
    let path = dir.join(name);
    std::fs::write(&path, BASE.replacen(line, with, 1)).expect("write the config");
    path
}

/// Checks a usage error: status 2, nothing on stdout (no run started), and exactly one
/// `error:` line on stderr; returns that line.
fn usage_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit status; stderr: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "a run started: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {stderr}");
    errors[0].to_string()
}

#[test]
fn bad_configs_exit_2_naming_file_line_and_field() {
    let dir = TempDir::new("configs");
    // (line of BASE, replacement, line number in the file, what the error must name)
    let cases = [
        (
            "gamma = 0.99",
            "gamma = 1.5",
            9,
            &["`algorithm.gamma`", "expected a value in (0, 1]", "got 1.5"][..],
        ),
        (
            "activation = \"elu\"",
            "activaton = \"elu\"",
            15,
            &["`policy.activaton`", "unknown field", "`activation`"][..],
        ),
        (
            "task = \"cartpole\"",
            "task = \"cartpol\"",
            4,
            &["`env.task`", "unknown task `cartpol`", "pendulum"][..],
        ),
        (
            "num_mini_batches = 4",
            "num_mini_batches = 5",
            10,
            &[
                "`algorithm.num_mini_batches`",
                "valid choices: 1, 2, 4, 8, 16, 32, 64",
            ][..],
        ),
    ];
    for (i, (line, with, line_no, says)) in cases.into_iter().enumerate() {
        let config = write_config(&dir.0, &format!("bad{i}.toml"), line, with);
        let error = usage_error(&train(&dir.0, &config, &[]));
        let place = format!("{}:{line_no}:", config.display());
        assert!(error.contains(&place), "{place} in {error}");
        for s in says {
            assert!(error.contains(s), "{s} in {error}");
        }
    }
    assert!(!dir.0.join("logs").exists(), "a run directory was created");
}

#[test]
fn unknown_backend_exits_2_with_the_choices() {
    let dir = TempDir::new("backend");
    let config = write_config(&dir.0, "ok.toml", "seed = 1", "seed = 1");
    let out = train(&dir.0, &config, &["--backend", "nosuch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    for s in ["nosuch", "--backend", "ndarray"] {
        assert!(stderr.contains(s), "{s} in {stderr}");
    }
}

#[test]
fn set_of_a_missing_section_exits_2_naming_the_override() {
    let dir = TempDir::new("set");
    let config = write_config(&dir.0, "ok.toml", "seed = 1", "seed = 1");
    let error = usage_error(&train(&dir.0, &config, &["--set", "nosuch.key=1"]));
    for s in [
        "--set nosuch.key=1",
        "does not exist",
        "env, algorithm, policy",
    ] {
        assert!(error.contains(s), "{s} in {error}");
    }
    let error = usage_error(&train(&dir.0, &config, &["--set", "algorithm.gama=0.9"]));
    for s in ["--set algorithm.gama=0.9", "does not exist", "gamma"] {
        assert!(error.contains(s), "{s} in {error}");
    }
}

#[test]
fn missing_config_file_exits_2_naming_it() {
    let dir = TempDir::new("missing");
    let config = dir.0.join("nowhere.toml");
    let error = usage_error(&train(&dir.0, &config, &[]));
    assert!(error.contains(&config.display().to_string()), "{error}");
}

#[test]
fn play_render_of_a_task_without_bodies_or_into_a_missing_directory_exits_2() {
    let dir = TempDir::new("render");
    let config = dir.0.join("cartpole.toml");
    std::fs::write(&config, BASE).expect("write the config");
    let out = train(&dir.0, &config, &["--run-name", "r"]);
    assert!(
        out.status.success(),
        "train: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = dir.0.join("logs").join("cli_errors").join("r");
    let play = |gif: &Path| {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("play")
            .arg("--checkpoint")
            .arg(&run_dir)
            .args(["--episodes", "1", "--num-envs", "2", "--render"])
            .arg(gif)
            .output()
            .expect("run xtask")
    };
    let gif = dir.0.join("cartpole.gif");
    let error = usage_error(&play(&gif));
    assert!(
        error.contains("task `cartpole` has nothing to render"),
        "{error}"
    );
    assert!(!gif.exists());

    let nowhere = dir.0.join("missing").join("cartpole.gif");
    let error = usage_error(&play(&nowhere));
    assert!(error.contains(&nowhere.display().to_string()), "{error}");
}
