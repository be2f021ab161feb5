//! `cargo xtask export`: a checkpoint's policy as the files a robot's computer runs, checked
//! in another runtime before they are written.
//!
//! The directory gets `policy.onnx` (the deterministic policy, the observation normaliser
//! folded in), `policy.safetensors` (the weights), `policy.json` (what a deployment needs:
//! the observation layout and scales, the action's meaning, the robot's joints and gains,
//! the control period, the graph's inputs and outputs) and `reference.json` (observations
//! from the task and the policy's actions for them, to check another runtime against).

use std::path::{Path, PathBuf};

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Bool, Tensor, TensorData};
use rl_core::{ActionLayout, EnvLayout, ObsTermLayout, Observations, RobotLayout, VecEnv};
use rl_export::{
    ACTIONS, LOGITS, MemorySignature, OBS, OPSET, OnnxRuntime, Signature, clip_actions,
    export_onnx, safetensors_weights,
};
use rl_logger::write_atomic;
use rl_modules::{Policy, Precision};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::config::TrainConfig;
use crate::play::{checkpoint_policy, evaluation_env, read_run};
use crate::stats::read_floats;

/// The file names of an export.
pub const ONNX_FILE: &str = "policy.onnx";
/// The weights.
pub const SAFETENSORS_FILE: &str = "policy.safetensors";
/// What a deployment needs to know.
pub const MANIFEST_FILE: &str = "policy.json";
/// Observations and the policy's actions for them.
pub const REFERENCE_FILE: &str = "reference.json";

/// Environments and steps of the check (and of `reference.json`): 32 x 8 = 256
/// observations from the task, with episode ends among them for a recurrent policy.
const CHECK_ENVS: usize = 32;
const CHECK_STEPS: usize = 8;
/// The largest action difference allowed between the exported graph and the policy,
/// relative to the action's size where it is above 1.
pub const TOLERANCE: f64 = 1e-5;

/// What [`export`] wrote and measured.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The checkpoint exported.
    pub checkpoint: String,
    /// The files written.
    pub files: Vec<String>,
    /// What the graph takes and gives.
    pub signature: Signature,
    /// Observations the exported graph was checked on.
    pub checked_samples: usize,
    /// The largest action difference between tract and the policy over them.
    pub max_action_error: f64,
}

/// `policy.json`: what a deployment of the policy needs to know.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyManifest {
    /// Format of this file (1).
    pub format: u32,
    /// `cross-gym <version>`.
    pub producer: String,
    /// The task the policy was trained on.
    pub task: String,
    /// The checkpoint it was exported from, and its iteration.
    pub checkpoint: String,
    /// Training iterations behind the policy.
    pub iteration: usize,
    /// The graph's inputs and outputs.
    pub onnx: OnnxSection,
    /// What the `obs` input holds, column by column.
    pub observation: ObservationSection,
    /// What the `actions` output means.
    pub action: ActionSection,
    /// The robot of a legged task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robot: Option<RobotLayout>,
    /// How often the policy acts.
    pub control: ControlSection,
    /// A recurrent policy's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrent: Option<RecurrentSection>,
    /// The check of the exported graph against the policy.
    pub verification: Verification,
}

/// The graph's file, opset, inputs and outputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OnnxSection {
    /// `policy.onnx`.
    pub file: String,
    /// The ONNX operator set.
    pub opset: i64,
    /// The inputs, in order.
    pub inputs: Vec<TensorInfo>,
    /// The outputs, in order.
    pub outputs: Vec<TensorInfo>,
}

/// One input or output of the graph.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TensorInfo {
    /// Its name.
    pub name: String,
    /// `float32` or `int64`.
    pub dtype: String,
    /// Its shape; `"batch"` is chosen at run time.
    pub shape: Vec<serde_json::Value>,
}

/// The observation vector `obs`: the actor's groups, concatenated, in the units and
/// scales of their terms (the graph normalises them itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObservationSection {
    /// Width of `obs`.
    pub size: usize,
    /// The groups in order, each with its first column in `obs` and its clip.
    pub groups: Vec<GroupEntry>,
    /// Every term of every group, with its first column in `obs`.
    pub terms: Vec<TermEntry>,
    /// Whether the graph holds the running normaliser (feed raw observations).
    pub normalizer_in_graph: bool,
}

/// One observation group of `obs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupEntry {
    /// Its name.
    pub name: String,
    /// First column in `obs`.
    pub start: usize,
    /// Columns.
    pub size: usize,
    /// After scaling, each column is clipped to `[-clip, clip]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<f32>,
}

/// One observation term of `obs`: the task's term ([`ObsTermLayout`]: columns `start..start
/// + size` are `clip(raw, ±clip) * scale`), its `start` counted in `obs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TermEntry {
    /// The group it belongs to.
    pub group: String,
    /// The term, its first column counted in `obs`.
    #[serde(flatten)]
    pub term: ObsTermLayout,
}

/// What the `actions` output means.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionSection {
    /// The kind, names, bounds, scale and offset of each column: the command is `offset +
    /// scale * actions` (the graph has already clipped `actions` to `[low, high]`).
    #[serde(flatten)]
    pub layout: ActionLayout,
    /// What the graph outputs: `"mean"` (the Gaussian's mean, clipped) or `"argmax"` (the
    /// index of the most likely choice, int64, beside the `logits`).
    pub output: String,
}

/// How often the policy acts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlSection {
    /// Seconds between actions.
    pub dt: f32,
    /// Actions per second.
    pub frequency_hz: f32,
}

/// The recurrent state that a deployment carries from one step to the next.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecurrentSection {
    /// The layers and their width.
    #[serde(flatten)]
    pub memory: MemorySignature,
    /// The state inputs and the outputs to feed back into them.
    pub state: Vec<(String, String)>,
    /// When to zero the state.
    pub reset: String,
}

/// The check of the exported graph.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    /// The runtime that ran the graph.
    pub runtime: String,
    /// Observations checked.
    pub samples: usize,
    /// The largest action difference found.
    pub max_action_error: f64,
    /// The largest allowed.
    pub tolerance: f64,
    /// `reference.json`.
    pub reference: String,
}

/// `reference.json`: steps of the task with the policy's observations and actions. Start
/// from a zero state, feed each step's `obs` (and the state), compare `actions`, keep the
/// graph's state outputs, and zero the rows of `dones` before the next step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reference {
    /// The allowed difference, relative to the action's size where it is above 1.
    pub tolerance: f64,
    /// The steps in order.
    pub steps: Vec<ReferenceStep>,
}

/// One step of [`Reference`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferenceStep {
    /// `[batch][D]`.
    pub obs: Vec<Vec<f32>>,
    /// `[batch][A]` (discrete choices as numbers).
    pub actions: Vec<Vec<f32>>,
    /// Whether each environment's episode ended on this step.
    pub dones: Vec<bool>,
}

/// Exports the policy of `checkpoint` (a file or a run directory) into the directory
/// `out`: checks the graph in tract on [`CHECK_ENVS`] x [`CHECK_STEPS`] observations of
/// the task first, and writes nothing if its actions differ from the policy's by more than
/// [`TOLERANCE`].
///
/// # Errors
/// An unreadable checkpoint, a task that cannot be built, a graph that tract cannot run or
/// whose actions differ, or a file that cannot be written.
pub fn export<B: AutodiffBackend>(
    checkpoint: &Path,
    out: &Path,
    device: &B::Device,
) -> Result<ExportReport, Error> {
    let (path, ckpt, cfg) = read_run(checkpoint, &[])?;
    let mut env = evaluation_env::<B::InnerBackend>(&cfg, CHECK_ENVS, cfg.seed, device)?;
    let spec = env.spec().clone();
    let layout = env.layout();
    layout.check(&spec).map_err(|message| Error::Input {
        origin: format!("task `{}`", spec.task),
        message: format!("its layout does not describe its observations: {message}"),
    })?;
    let mut policy = checkpoint_policy::<B>(&path, &ckpt, &cfg, &spec, device)?;
    let metadata = [
        ("task", spec.task.clone()),
        ("checkpoint", path.display().to_string()),
        ("iteration", ckpt.header.iteration.to_string()),
    ];
    let onnx = export_onnx(&policy, &spec.action_space, &metadata)?;
    let weights = safetensors_weights(&policy, &metadata)?;
    let mut runtime = OnnxRuntime::from_bytes(&onnx.bytes, CHECK_ENVS, "the exported graph")?;

    let groups = &cfg.policy.obs_groups.policy;
    let (reference, max_error) = check(env.as_mut(), &mut policy, &mut runtime, groups)?;
    let half = policy.actor().precision() != Precision::F32;
    if max_error > TOLERANCE && !half {
        return Err(rl_export::Error::Mismatch(format!(
            "the exported graph's actions differ from the policy's by {max_error:.3e} in tract \
             (more than {TOLERANCE:.0e}); nothing was written"
        ))
        .into());
    }

    let manifest = manifest(
        &cfg,
        &spec,
        &layout,
        &onnx.signature,
        &path,
        ckpt.header.iteration,
        max_error,
        policy.input().normalizer().is_some(),
    );
    let files: [(&str, Vec<u8>); 4] = [
        (ONNX_FILE, onnx.bytes.clone()),
        (SAFETENSORS_FILE, weights),
        (MANIFEST_FILE, to_json(&manifest)?),
        (REFERENCE_FILE, to_json(&reference)?),
    ];
    let mut written = Vec::new();
    for (name, bytes) in files {
        let file = out.join(name);
        write_atomic(&file, &bytes).map_err(|(action, source)| Error::Io {
            path: file.clone(),
            action,
            source,
        })?;
        written.push(file.display().to_string());
    }
    Ok(ExportReport {
        checkpoint: path.display().to_string(),
        files: written,
        signature: onnx.signature,
        checked_samples: CHECK_ENVS * CHECK_STEPS,
        max_action_error: max_error,
    })
}

/// `value` as pretty JSON with a final newline.
fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::Input {
        origin: "export".into(),
        message: format!("cannot write JSON: {e}"),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Runs the task with `policy` for [`CHECK_STEPS`] steps from a reset, and the exported
/// graph in `runtime` on the same observations (both reset where episodes end): the
/// reference steps and the largest action difference.
fn check<B: Backend>(
    env: &mut dyn VecEnv<B>,
    policy: &mut Policy<B>,
    runtime: &mut OnnxRuntime,
    groups: &[String],
) -> Result<(Reference, f64), Error> {
    let n = env.num_envs();
    let space = env.spec().action_space.clone();
    let mut obs = env.reset();
    policy.clear();
    runtime.clear();
    let mut steps = Vec::with_capacity(CHECK_STEPS);
    let mut worst = 0.0f64;
    for _ in 0..CHECK_STEPS {
        let x = host_observations(&obs, groups)?; // [N * D]
        let actions = policy.act(&obs)?; // [N, A]
        let want = clip_actions(read_floats(actions.clone(), "the actions")?, &space);
        let got = runtime.act(&x)?;
        for (a, b) in want.iter().zip(&got) {
            let d = f64::from((a - b).abs()) / f64::from(a.abs()).max(1.0);
            worst = worst.max(d);
        }
        let step = env.step(actions)?;
        let dones = host_dones(&step)?;
        if policy.state().is_some() {
            policy.reset(&Tensor::<B, 1, Bool>::from_data(
                TensorData::new(dones.clone(), [n]),
                env.device(),
            ));
        }
        runtime.reset(&dones);
        let rows = |v: &[f32]| -> Vec<Vec<f32>> {
            let width = v.len() / n.max(1);
            v.chunks(width.max(1)).map(<[f32]>::to_vec).collect()
        };
        steps.push(ReferenceStep {
            obs: rows(&x),
            actions: rows(&want),
            dones,
        });
        obs = step.observations;
    }
    Ok((
        Reference {
            tolerance: TOLERANCE,
            steps,
        },
        worst,
    ))
}

/// The contents of `policy.json`.
#[allow(clippy::too_many_arguments)]
fn manifest(
    cfg: &TrainConfig,
    spec: &rl_core::EnvSpec,
    layout: &EnvLayout,
    signature: &Signature,
    checkpoint: &Path,
    iteration: usize,
    max_error: f64,
    normalizer: bool,
) -> PolicyManifest {
    let tensor = |name: &str, dtype: &str, shape: Vec<serde_json::Value>| TensorInfo {
        name: name.to_string(),
        dtype: dtype.to_string(),
        shape,
    };
    let batch = || serde_json::Value::from("batch");
    let fixed = serde_json::Value::from;
    let mut inputs = vec![tensor(
        OBS,
        "float32",
        vec![batch(), fixed(signature.obs_dim)],
    )];
    let mut outputs = Vec::new();
    match signature.choices {
        Some(n) => {
            outputs.push(tensor(ACTIONS, "int64", vec![batch(), fixed(1)]));
            outputs.push(tensor(LOGITS, "float32", vec![batch(), fixed(n)]));
        }
        None => outputs.push(tensor(
            ACTIONS,
            "float32",
            vec![batch(), fixed(signature.num_actions)],
        )),
    }
    let recurrent = signature.memory.map(|m| {
        let shape = || vec![fixed(m.num_layers), batch(), fixed(m.hidden_dim)];
        for (i, o) in m.states() {
            inputs.push(tensor(i, "float32", shape()));
            outputs.push(tensor(o, "float32", shape()));
        }
        RecurrentSection {
            memory: m,
            state: m
                .states()
                .into_iter()
                .map(|(i, o)| (i.to_string(), o.to_string()))
                .collect(),
            reset: "start every episode from zeros; feed each step's outputs back as the next \
                    step's inputs"
                .into(),
        }
    });

    let mut groups = Vec::new();
    let mut terms = Vec::new();
    let mut start = 0;
    for name in &cfg.policy.obs_groups.policy {
        let size = spec.obs_groups.get(name).copied().unwrap_or(0);
        let group = layout.observations.get(name);
        groups.push(GroupEntry {
            name: name.clone(),
            start,
            size,
            clip: group.and_then(|g| g.clip),
        });
        for t in group.map(|g| g.terms.as_slice()).unwrap_or_default() {
            terms.push(TermEntry {
                group: name.clone(),
                term: ObsTermLayout {
                    start: start + t.start,
                    ..t.clone()
                },
            });
        }
        start += size;
    }
    PolicyManifest {
        format: 1,
        producer: format!("cross-gym {}", env!("CARGO_PKG_VERSION")),
        task: spec.task.clone(),
        checkpoint: checkpoint.display().to_string(),
        iteration,
        onnx: OnnxSection {
            file: ONNX_FILE.into(),
            opset: OPSET,
            inputs,
            outputs,
        },
        observation: ObservationSection {
            size: start,
            groups,
            terms,
            normalizer_in_graph: normalizer,
        },
        action: ActionSection {
            layout: layout.actions.clone(),
            output: if signature.choices.is_some() {
                "argmax".into()
            } else {
                "mean".into()
            },
        },
        robot: layout.robot.clone(),
        control: ControlSection {
            dt: spec.step_dt,
            frequency_hz: if spec.step_dt > 0.0 {
                1.0 / spec.step_dt
            } else {
                0.0
            },
        },
        recurrent,
        verification: Verification {
            runtime: "tract-onnx 0.23".into(),
            samples: CHECK_ENVS * CHECK_STEPS,
            max_action_error: max_error,
            tolerance: TOLERANCE,
            reference: REFERENCE_FILE.into(),
        },
    }
}

/// The observations of `groups`, concatenated, on the host `[N * D]`.
pub(crate) fn host_observations<B: Backend>(
    obs: &Observations<B>,
    groups: &[String],
) -> Result<Vec<f32>, Error> {
    read_floats(obs.concat(groups)?, "the observations")
}

/// Whether each environment's episode ended on `step`, on the host `[N]`.
pub(crate) fn host_dones<B: Backend>(step: &rl_core::StepOutput<B>) -> Result<Vec<bool>, Error> {
    let dones = read_floats(step.dones().float(), "the done flags")?;
    Ok(dones.iter().map(|&d| d > 0.5).collect())
}

/// The directory an export goes to by default: `exported/` in the run's directory.
pub fn default_export_dir(checkpoint: &Path) -> PathBuf {
    let run = if checkpoint.is_dir() {
        checkpoint.to_path_buf()
    } else {
        checkpoint
            .parent()
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    };
    run.join("exported")
}
