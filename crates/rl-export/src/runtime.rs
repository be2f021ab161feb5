//! Runs an exported policy graph with `tract`, keeping a recurrent policy's state between
//! steps as a deployment would.

use std::sync::Arc;

use prost::Message;
use rl_modules::RnnType;
use tract_onnx::pb::{ModelProto, tensor_proto::DataType};
use tract_onnx::prelude::*;

use crate::graph::signature;
use crate::onnx::{ACTIONS, C_IN, H_IN, LOGITS, MemorySignature, OBS, Signature};
use crate::{Error, Result};

/// An exported policy graph loaded into `tract` for a fixed batch of `batch` observations.
///
/// A recurrent graph's state is kept here: it starts at zero, every [`OnnxRuntime::act`]
/// feeds it in and keeps what the graph returns, and [`OnnxRuntime::reset`] zeroes the rows
/// of the environments whose episode ended.
pub struct OnnxRuntime {
    plan: Arc<TypedSimplePlan>,
    signature: Signature,
    batch: usize,
    /// Where `actions` and the next states are among the graph's outputs.
    action_output: usize,
    state_outputs: Vec<usize>,
    /// Whether `actions` holds int64 indices (a discrete policy).
    discrete: bool,
    /// The state inputs' values, `[L, batch, H]` each (`h`, then `c` for an LSTM).
    state: Vec<Vec<f32>>,
    origin: String,
}

impl std::fmt::Debug for OnnxRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxRuntime")
            .field("origin", &self.origin)
            .field("signature", &self.signature)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl OnnxRuntime {
    /// Loads the policy graph in `bytes` (read from `origin`, named in errors) for batches
    /// of `batch` observations.
    ///
    /// # Errors
    /// [`Error::Onnx`] for bytes that are not an ONNX model, a graph without the inputs and
    /// outputs of an exported cross-gym policy, or one that `tract` cannot run.
    pub fn from_bytes(bytes: &[u8], batch: usize, origin: &str) -> Result<Self> {
        let err = |message: String| Error::Onnx {
            origin: origin.to_string(),
            message,
        };
        let proto =
            ModelProto::decode(bytes).map_err(|e| err(format!("not an ONNX model ({e})")))?;
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| err("the model has no graph".into()))?;
        let inputs = signature(&graph.input);
        let outputs = signature(&graph.output);
        let find = |list: &[(String, i32, Vec<Option<i64>>)], name: &str| {
            list.iter().position(|(n, _, _)| n == name)
        };
        let dim = |d: Option<&Option<i64>>| d.copied().flatten().map(|v| v.max(0) as usize);

        let obs = find(&inputs, OBS).ok_or_else(|| {
            err(format!(
                "the graph has no input `{OBS}` (its inputs: {:?}); is it a cross-gym policy?",
                inputs.iter().map(|i| &i.0).collect::<Vec<_>>()
            ))
        })?;
        let obs_dim = dim(inputs[obs].2.get(1))
            .ok_or_else(|| err(format!("input `{OBS}` has no fixed width")))?;
        let action_output = find(&outputs, ACTIONS)
            .ok_or_else(|| err(format!("the graph has no output `{ACTIONS}`")))?;
        let discrete = outputs[action_output].1 == DataType::Int64 as i32;
        let num_actions = dim(outputs[action_output].2.get(1))
            .ok_or_else(|| err(format!("output `{ACTIONS}` has no fixed width")))?;
        let choices = match find(&outputs, LOGITS) {
            Some(i) => dim(outputs[i].2.get(1)),
            None => None,
        };
        let memory = match find(&inputs, H_IN) {
            Some(h) => {
                let dims = &inputs[h].2;
                let (num_layers, hidden_dim) = dim(dims.first())
                    .zip(dim(dims.get(2)))
                    .ok_or_else(|| err(format!("input `{H_IN}` is not [L, batch, H]")))?;
                let rnn_type = if find(&inputs, C_IN).is_some() {
                    RnnType::Lstm
                } else {
                    RnnType::Gru
                };
                Some(MemorySignature {
                    rnn_type,
                    num_layers,
                    hidden_dim,
                })
            }
            None => None,
        };
        let signature = Signature {
            obs_dim,
            num_actions,
            choices,
            memory,
        };

        let mut model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(|e| err(format!("tract cannot read the graph: {e:#}")))?;
        let mut state = Vec::new();
        let mut state_outputs = Vec::new();
        for (i, (name, _, _)) in inputs.iter().enumerate() {
            let shape: Vec<usize> = if name == OBS {
                vec![batch, obs_dim]
            } else if let Some(m) = memory.filter(|m| m.states().iter().any(|(n, _)| n == name)) {
                state.push(vec![0.0; m.num_layers * batch * m.hidden_dim]);
                vec![m.num_layers, batch, m.hidden_dim]
            } else {
                return Err(err(format!("unexpected graph input `{name}`")));
            };
            model = model
                .with_input_fact(i, InferenceFact::dt_shape(f32::datum_type(), shape))
                .map_err(|e| err(format!("{e:#}")))?;
        }
        if let Some(m) = memory {
            for (_, out) in m.states() {
                state_outputs.push(
                    find(&outputs, out)
                        .ok_or_else(|| err(format!("the graph has no output `{out}`")))?,
                );
            }
        }
        let model = model
            .into_optimized()
            .map_err(|e| err(format!("tract cannot type the graph: {e:#}")))?;
        let plan = TypedSimplePlan::new(model)
            .map_err(|e| err(format!("tract cannot plan the graph: {e:#}")))?;
        Ok(Self {
            plan,
            signature,
            batch,
            action_output,
            state_outputs,
            discrete,
            state,
            origin: origin.to_string(),
        })
    }

    /// Loads the policy graph in the file `path` (see [`OnnxRuntime::from_bytes`]).
    ///
    /// # Errors
    /// An unreadable file, or the errors of [`OnnxRuntime::from_bytes`].
    pub fn from_file(path: &std::path::Path, batch: usize) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::Onnx {
            origin: path.display().to_string(),
            message: format!("cannot read the file: {e}"),
        })?;
        Self::from_bytes(&bytes, batch, &path.display().to_string())
    }

    /// What the graph takes and gives.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The batch size the graph was loaded for.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Whether the actions are indices of choices.
    pub fn is_discrete(&self) -> bool {
        self.discrete
    }

    /// The state now (`h`, then `c` for an LSTM), each `[L, batch, H]` row-major; empty for
    /// a policy without memory.
    pub fn state(&self) -> &[Vec<f32>] {
        &self.state
    }

    /// The actions `[batch, A]` (row-major; discrete choices as float indices) for the
    /// observations `obs` `[batch, D]`; a recurrent policy's state advances.
    ///
    /// # Errors
    /// [`Error::Input`] for observations of another size, [`Error::Onnx`] if the graph
    /// fails.
    pub fn act(&mut self, obs: &[f32]) -> Result<Vec<f32>> {
        let (n, d) = (self.batch, self.signature.obs_dim);
        if obs.len() != n * d {
            return Err(Error::Input(format!(
                "{}: {} observation values, the graph takes {n} x {d}",
                self.origin,
                obs.len()
            )));
        }
        let err = |e: TractError| Error::Onnx {
            origin: self.origin.clone(),
            message: format!("{e:#}"),
        };
        let mut inputs: TVec<TValue> =
            tvec![Tensor::from_shape(&[n, d], obs).map_err(err)?.into_tvalue()];
        if let Some(m) = &self.signature.memory {
            let shape = [m.num_layers, n, m.hidden_dim];
            for s in &self.state {
                inputs.push(Tensor::from_shape(&shape, s).map_err(err)?.into_tvalue());
            }
        }
        let outputs = self.plan.run(inputs).map_err(err)?;
        let get = |i: usize| {
            outputs.get(i).ok_or_else(|| Error::Onnx {
                origin: self.origin.clone(),
                message: format!("the graph returned no output {i}"),
            })
        };
        let actions = get(self.action_output)?;
        let actions: Vec<f32> = if self.discrete {
            let view = actions.to_plain_array_view::<i64>().map_err(err)?;
            view.iter().map(|&v| v as f32).collect()
        } else {
            let view = actions.to_plain_array_view::<f32>().map_err(err)?;
            view.iter().copied().collect()
        };
        let mut next = Vec::with_capacity(self.state_outputs.len());
        for &i in &self.state_outputs {
            let view = get(i)?.to_plain_array_view::<f32>().map_err(err)?;
            next.push(view.iter().copied().collect());
        }
        self.state = next;
        Ok(actions)
    }

    /// Zeroes the state of the environments where `dones` `[batch]` is true.
    pub fn reset(&mut self, dones: &[bool]) {
        let Some(m) = self.signature.memory else {
            return;
        };
        let (n, h) = (self.batch, m.hidden_dim);
        for s in &mut self.state {
            for layer in 0..m.num_layers {
                for (env, _) in dones.iter().enumerate().take(n).filter(|(_, d)| **d) {
                    let start = (layer * n + env) * h;
                    s[start..start + h].fill(0.0);
                }
            }
        }
    }

    /// Zeroes the state of every environment.
    pub fn clear(&mut self) {
        for s in &mut self.state {
            s.fill(0.0);
        }
    }
}
