//! Driving a classic-control task by hand: from a given internal state, apply given actions
//! and report every step (what `cargo xtask rollout` runs).

use std::io::Write;

use burn::tensor::{Tensor, TensorData, backend::Backend};
use rl_core::ActionSpace;
use serde::Serialize;
use serde_json::Value;

use crate::Error;
use crate::stats::read_floats;

/// A rollout to run: the task, one initial state per environment and one action sequence per
/// environment, as given on the command line (JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRequest {
    /// A classic-control task name (see [`sim_gpu::CLASSIC_TASKS`]).
    pub task: String,
    /// Initial internal state of each environment (Gymnasium's layout).
    pub states: Vec<Vec<f64>>,
    /// `actions[env][step]`: each a number or a list of numbers, checked against the task's
    /// action space when the rollout starts.
    pub actions: Vec<Vec<Value>>,
    /// Seed of the reset noise used after an episode ends.
    pub seed: u64,
    /// Where the states came from, for error messages (a flag or a file).
    pub state_origin: String,
    /// Where the actions came from, for error messages (a file).
    pub actions_origin: String,
}

/// One line of a rollout's output: one environment after one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepLine {
    /// Step index, from 0.
    pub step: usize,
    /// Environment index, from 0.
    pub env: usize,
    /// The `policy` observation after the step; for a step that ends the episode, the final
    /// observation (before the auto-reset).
    pub obs: Vec<f32>,
    /// The reward of the step.
    pub reward: f32,
    /// The episode reached a terminal state.
    pub terminated: bool,
    /// The episode reached the time limit (Gymnasium's `truncated`: set on the limit's step
    /// even when the episode also terminated there).
    pub truncated: bool,
    /// The internal state after the step; for a step that ends the episode, the final state.
    pub state: Vec<f32>,
    /// Only on a step that ends the episode: the state the environment was reset to, which
    /// the next step starts from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_state: Option<Vec<f32>>,
}

/// An input error of a rollout, naming where the bad value came from.
fn input_error(origin: &str, message: impl Into<String>) -> Error {
    Error::Input {
        origin: origin.to_string(),
        message: message.into(),
    }
}

impl RolloutRequest {
    /// Parses the initial state(s) and the action sequence(s).
    ///
    /// - `state_json`: a list of numbers (one environment) or a list of such lists (a batch);
    /// - `actions_json`: for one environment, a list with one action per step; for a batch,
    ///   a list with one such sequence per environment, all of the same length. An action
    ///   is a number or a list of numbers.
    ///
    /// `state_origin` and `actions_origin` name the inputs in error messages (the flag, the
    /// file).
    pub fn parse(
        task: &str,
        state_json: &str,
        state_origin: &str,
        actions_json: &str,
        actions_origin: &str,
        seed: u64,
    ) -> Result<Self, Error> {
        let state: Value = serde_json::from_str(state_json)
            .map_err(|e| input_error(state_origin, format!("not valid JSON: {e}")))?;
        let (states, batch) = parse_states(&state, state_origin)?;
        let actions: Value = serde_json::from_str(actions_json)
            .map_err(|e| input_error(actions_origin, format!("not valid JSON: {e}")))?;
        let Value::Array(actions) = actions else {
            return Err(input_error(
                actions_origin,
                "expected a list of actions (one per step)",
            ));
        };
        let actions = if batch {
            if actions.len() != states.len() {
                return Err(input_error(
                    actions_origin,
                    format!(
                        "expected one action sequence per environment: {} states but {} sequences",
                        states.len(),
                        actions.len()
                    ),
                ));
            }
            actions
                .into_iter()
                .enumerate()
                .map(|(env, seq)| match seq {
                    Value::Array(steps) => Ok(steps),
                    _ => Err(input_error(
                        actions_origin,
                        format!("environment {env}: expected a list of actions"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            vec![actions]
        };
        let steps = actions.first().map_or(0, Vec::len);
        if steps == 0 {
            return Err(input_error(actions_origin, "no actions: nothing to run"));
        }
        if let Some((env, seq)) = actions.iter().enumerate().find(|(_, s)| s.len() != steps) {
            return Err(input_error(
                actions_origin,
                format!(
                    "environment {env} has {} actions but environment 0 has {steps}; \
                     every sequence must have the same length",
                    seq.len()
                ),
            ));
        }
        Ok(Self {
            task: task.to_string(),
            states,
            actions,
            seed,
            state_origin: state_origin.to_string(),
            actions_origin: actions_origin.to_string(),
        })
    }

    /// Number of environments.
    pub fn num_envs(&self) -> usize {
        self.states.len()
    }

    /// Number of steps.
    pub fn num_steps(&self) -> usize {
        self.actions.first().map_or(0, Vec::len)
    }
}

/// `[..]` is one state, `[[..], ..]` a batch; returns the states and whether it is a batch.
fn parse_states(value: &Value, origin: &str) -> Result<(Vec<Vec<f64>>, bool), Error> {
    const EXPECTED: &str = "expected a list of numbers (one state) or a list of such lists";
    let Value::Array(items) = value else {
        return Err(input_error(origin, EXPECTED));
    };
    let numbers =
        |v: &Value| -> Option<Vec<f64>> { v.as_array()?.iter().map(Value::as_f64).collect() };
    if items.iter().all(Value::is_number) && !items.is_empty() {
        let state = numbers(value).ok_or_else(|| input_error(origin, EXPECTED))?;
        return Ok((vec![state], false));
    }
    if items.is_empty() {
        return Err(input_error(origin, EXPECTED));
    }
    let states = items
        .iter()
        .enumerate()
        .map(|(env, item)| {
            numbers(item)
                .ok_or_else(|| input_error(origin, format!("environment {env}: {EXPECTED}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((states, true))
}

/// The action of one environment on one step, checked against the action space.
fn parse_action(
    value: &Value,
    space: &ActionSpace,
    origin: &str,
    env: usize,
    step: usize,
) -> Result<Vec<f32>, Error> {
    let at =
        |message: String| input_error(origin, format!("environment {env}, step {step}: {message}"));
    let values: Vec<f64> = match value {
        Value::Number(n) => vec![
            n.as_f64()
                .ok_or_else(|| at(format!("`{n}` is not a number")))?,
        ],
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| at(format!("`{v}` is not a number")))
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(at(format!(
                "expected a number or a list of numbers, got `{other}`"
            )));
        }
    };
    match space {
        ActionSpace::Box { low, .. } => {
            if values.len() != low.len() {
                return Err(at(format!(
                    "expected {} action value(s), got {}",
                    low.len(),
                    values.len()
                )));
            }
            if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                return Err(at(format!("action {v} is not finite")));
            }
            Ok(values.into_iter().map(|v| v as f32).collect())
        }
        ActionSpace::Discrete { n } => {
            let [index] = values[..] else {
                return Err(at(format!(
                    "expected one choice in 0..{n}, got {} values",
                    values.len()
                )));
            };
            if index.fract() != 0.0 || index < 0.0 || index >= *n as f64 {
                return Err(at(format!(
                    "expected a choice in 0..{n} (an integer), got {index}"
                )));
            }
            Ok(vec![index as f32])
        }
    }
}

/// Runs `request` on `device` and writes one JSON line per step and environment to `out`
/// (steps in order, environments in order within a step).
///
/// The environments start in the given states with fresh episode counters; an environment
/// whose episode ends is reset (from the seeded reset noise) and continues with its next
/// action.
pub fn rollout<B: Backend>(
    request: &RolloutRequest,
    device: &B::Device,
    out: &mut impl Write,
) -> Result<(), Error> {
    let n = request.num_envs();
    let mut env = sim_gpu::make_classic::<B>(&request.task, n, request.seed, device)?;
    let names = env.state_names();
    let k = names.len();
    if let Some((i, s)) = request
        .states
        .iter()
        .enumerate()
        .find(|(_, s)| s.len() != k)
    {
        return Err(input_error(
            &request.state_origin,
            format!(
                "environment {i}: task `{}` has a state of {k} values [{}], got {}",
                request.task,
                names.join(", "),
                s.len()
            ),
        ));
    }
    if let Some(v) = request.states.iter().flatten().find(|v| !v.is_finite()) {
        return Err(input_error(
            &request.state_origin,
            format!("{v} is not finite"),
        ));
    }
    let space = env.spec().action_space.clone();
    let a = space.num_actions();
    let max_len = env.spec().max_episode_length as f32;
    // Check every action before the first step.
    let mut actions = vec![vec![0.0f32; n * a]; request.num_steps()]; // [T][N * A]
    for (e, seq) in request.actions.iter().enumerate() {
        for (t, value) in seq.iter().enumerate() {
            let action = parse_action(value, &space, &request.actions_origin, e, t)?;
            actions[t][e * a..(e + 1) * a].copy_from_slice(&action);
        }
    }
    let states: Vec<f32> = request.states.iter().flatten().map(|&v| v as f32).collect();
    env.set_state(
        None,
        Tensor::from_data(TensorData::new(states, [n, k]), device),
    )?;

    for (t, step_actions) in actions.into_iter().enumerate() {
        let actions = Tensor::<B, 2>::from_data(TensorData::new(step_actions, [n, a]), device);
        let output = env.step(actions)?;
        // One read-back per step: every column a line needs, `[N, D + 4 + 2 K]`.
        let obs = output.final_observations.get("policy")?; // [N, D]
        let d = obs.dims()[1];
        let columns = Tensor::cat(
            vec![
                obs,
                output.rewards.clone().unsqueeze_dim(1),
                output.terminated.clone().float().unsqueeze_dim(1),
                output.time_outs.clone().float().unsqueeze_dim(1),
                output.episode.lengths.clone().unsqueeze_dim(1),
                env.final_state(),
                env.state(),
            ],
            1,
        );
        let width = d + 4 + 2 * k;
        let data = read_floats(columns, "the step's results")?;
        for (e, row) in data.chunks(width).enumerate() {
            let (obs, rest) = row.split_at(d);
            let [reward, terminated, time_out, length] = [rest[0], rest[1], rest[2], rest[3]];
            let (terminated, time_out) = (terminated > 0.5, time_out > 0.5);
            let (final_state, state) = rest[4..].split_at(k);
            let line = StepLine {
                step: t,
                env: e,
                obs: obs.to_vec(),
                reward,
                terminated,
                truncated: time_out || (terminated && length >= max_len),
                state: final_state.to_vec(),
                reset_state: (terminated || time_out).then(|| state.to_vec()),
            };
            serde_json::to_writer(&mut *out, &line)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
                .map_err(|source| Error::Io {
                    path: "<standard output>".into(),
                    action: "write to",
                    source,
                })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray;

    fn run(task: &str, state: &str, actions: &str) -> Result<Vec<StepLine>, Error> {
        let req = RolloutRequest::parse(task, state, "--state", actions, "actions.json", 0)?;
        let mut out = Vec::new();
        rollout::<B>(&req, &Default::default(), &mut out)?;
        let text = String::from_utf8(out).expect("utf-8");
        Ok(text
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("one JSON object per line");
                StepLine {
                    step: v["step"].as_u64().expect("step") as usize,
                    env: v["env"].as_u64().expect("env") as usize,
                    obs: floats_of(&v["obs"]),
                    reward: v["reward"].as_f64().expect("reward") as f32,
                    terminated: v["terminated"].as_bool().expect("terminated"),
                    truncated: v["truncated"].as_bool().expect("truncated"),
                    state: floats_of(&v["state"]),
                    reset_state: v.get("reset_state").map(floats_of),
                }
            })
            .collect())
    }

    fn floats_of(v: &Value) -> Vec<f32> {
        v.as_array()
            .expect("a list")
            .iter()
            .map(|x| x.as_f64().expect("a number") as f32)
            .collect()
    }

    #[test]
    fn cartpole_from_rest_stays_at_rest_and_reports_each_step() {
        let lines = run("cartpole", "[0, 0, 0, 0]", "[0, 0.0, [0]]").expect("runs");
        assert_eq!(lines.len(), 3);
        for (t, line) in lines.iter().enumerate() {
            assert_eq!((line.step, line.env), (t, 0));
            assert_eq!(line.obs, vec![0.0; 4]);
            assert_eq!(line.state, vec![0.0; 4]);
            assert_eq!(line.reward, 1.0);
            assert!(!line.terminated && !line.truncated && line.reset_state.is_none());
        }
    }

    #[test]
    fn a_finishing_step_shows_the_final_observation_and_the_reset_state() {
        // Env 0 leaves the track on the first step; env 1 stays at rest.
        let lines = run(
            "cartpole",
            "[[2.39, 1.5, 0, 0], [0, 0, 0, 0]]",
            "[[0.5, 0], [0, 0]]",
        )
        .expect("runs");
        assert_eq!(lines.len(), 4);
        let first = &lines[0];
        assert!(first.terminated && !first.truncated);
        assert!((first.obs[0] - 2.42).abs() < 1e-5, "{first:?}");
        assert_eq!(first.obs, first.state);
        let reset = first.reset_state.clone().expect("reset state");
        assert!(reset.iter().all(|v| v.abs() <= 0.05), "{reset:?}");
        // The next step of env 0 starts from the reset state.
        let second = &lines[2];
        assert_eq!((second.step, second.env), (1, 0));
        assert!((second.state[0] - (reset[0] + 0.02 * reset[1])).abs() < 1e-6);
        assert_eq!(lines[1].state, vec![0.0; 4]);
    }

    #[test]
    fn time_limit_sets_truncated() {
        let actions = format!("[{}]", vec!["0"; 200].join(", "));
        let lines = run("pendulum", "[0, 0]", &actions).expect("runs");
        assert_eq!(lines.len(), 200);
        assert!(lines[..199].iter().all(|l| !l.truncated && !l.terminated));
        assert!(lines[199].truncated && !lines[199].terminated);
        assert_eq!(
            lines[199].state,
            vec![0.0, 0.0],
            "final state, not the reset one"
        );
    }

    #[test]
    fn bad_input_names_the_input_and_the_problem() {
        let cases = [
            (
                "cartpole",
                "[0, 0, 0]",
                "[0]",
                "task `cartpole` has a state of 4 values",
            ),
            ("cartpole", "{\"x\": 1}", "[0]", "--state: expected a list"),
            ("cartpole", "[0, 0, 0, 0", "[0]", "--state: not valid JSON"),
            ("cartpole", "[0, 0, 0, 0]", "[]", "actions.json: no actions"),
            (
                "cartpole",
                "[0, 0, 0, 0]",
                "[[1, 2]]",
                "step 0: expected 1 action value(s), got 2",
            ),
            (
                "cartpole",
                "[0, 0, 0, 0]",
                "[0, \"left\"]",
                "step 1: expected a number",
            ),
            (
                "cartpole",
                "[[0, 0, 0, 0], [0, 0, 0, 0]]",
                "[[0]]",
                "2 states but 1 sequences",
            ),
            (
                "cartpole",
                "[[0, 0, 0, 0], [0, 0, 0, 0]]",
                "[[0], [0, 0]]",
                "environment 1 has 2 actions",
            ),
            ("pendulum", "[0, 0]", "[1e999]", "not valid JSON"),
            ("cartpol", "[0, 0, 0, 0]", "[0]", "unknown task `cartpol`"),
            (
                "cartpole_discrete",
                "[0, 0, 0, 0]",
                "[1, 2]",
                "step 1: expected a choice in 0..2",
            ),
            (
                "acrobot",
                "[0, 0, 0, 0]",
                "[1.5]",
                "expected a choice in 0..3 (an integer), got 1.5",
            ),
            (
                "acrobot",
                "[0, 0, 0, 0]",
                "[[1, 1]]",
                "expected one choice in 0..3, got 2 values",
            ),
        ];
        for (task, state, actions, want) in cases {
            let err = run(task, state, actions).expect_err("bad input");
            let msg = err.to_string();
            assert!(
                msg.contains(want),
                "{task} {state} {actions}: `{msg}` lacks `{want}`"
            );
        }
    }

    /// The output text of a rollout of `task` on backend `R`: 4 environments from their
    /// seeded reset states, actions that sweep the whole action space, 20 steps past the
    /// time limit (so that every environment is reset at least once).
    fn output_on<R: Backend>(task: &str) -> String {
        let n = 4;
        let env = sim_gpu::make_classic::<B>(task, n, 3, &Default::default()).expect("task");
        let steps = env.spec().max_episode_length + 20;
        let state: Vec<f32> = env.state().into_data().to_vec().expect("f32");
        let k = state.len() / n;
        let states: Vec<Vec<f32>> = state.chunks(k).map(<[f32]>::to_vec).collect();
        let actions: Vec<Vec<Value>> = (0..n)
            .map(|e| {
                (0..steps)
                    .map(|t| match &env.spec().action_space {
                        ActionSpace::Discrete { n } => Value::from((t / 7 + e) % n),
                        ActionSpace::Box { low, high } => Value::from(
                            low.iter()
                                .zip(high)
                                .map(|(l, h)| {
                                    let phase = ((t * 13 + e * 5) % 31) as f32 / 15.0 - 1.0;
                                    f64::from(0.5 * (l + h) + 0.6 * (h - l) * phase)
                                })
                                .collect::<Vec<_>>(),
                        ),
                    })
                    .collect()
            })
            .collect();
        let req = RolloutRequest::parse(
            task,
            &serde_json::to_string(&states).expect("json"),
            "--state",
            &serde_json::to_string(&actions).expect("json"),
            "actions.json",
            9,
        )
        .expect("valid request");
        let mut out = Vec::new();
        rollout::<R>(&req, &Default::default(), &mut out).expect("runs");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn output_is_identical_on_flex_and_ndarray() {
        for task in sim_gpu::classic_tasks() {
            let ndarray = output_on::<B>(task);
            let flex = output_on::<burn::backend::Flex>(task);
            let limit = sim_gpu::make_classic::<B>(task, 1, 0, &Default::default())
                .expect("task")
                .spec()
                .max_episode_length;
            assert_eq!(ndarray.lines().count(), 4 * (limit + 20), "{task}");
            assert!(
                ndarray.contains("\"reset_state\""),
                "{task}: no episode ended"
            );
            for (i, (a, b)) in ndarray.lines().zip(flex.lines()).enumerate() {
                assert_eq!(a, b, "{task}: line {i} differs between ndarray and flex");
            }
        }
    }
}
