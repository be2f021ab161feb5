//! Snapshots of a [`crate::VecEnv`]'s whole state on the host, for checkpoints that resume
//! bit for bit.

use std::collections::BTreeMap;

use burn::tensor::{Tensor, TensorData, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::{EnvRng, EnvSpec, Error, Result};

/// A float tensor read back to the host: its shape and its values, row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostTensor {
    /// Size of each dimension.
    pub shape: Vec<usize>,
    /// The values, row-major (`shape.iter().product()` of them).
    pub data: Vec<f32>,
}

impl HostTensor {
    /// Reads `t` back to the host (a device-to-host transfer: for checkpoints, not for the
    /// training loop).
    pub fn read<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Self> {
        let shape = t.dims().to_vec();
        let data = t
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| Error::Readback {
                what: format!("a snapshot tensor of shape {shape:?}"),
                reason: format!("{e:?}"),
            })?;
        Ok(Self { shape, data })
    }

    /// The tensor on `device`. Errors, naming the entry `name`, when the rank is not `D` or
    /// the number of values does not match the shape.
    pub fn to_tensor<B: Backend, const D: usize>(
        &self,
        name: &str,
        device: &B::Device,
    ) -> Result<Tensor<B, D>> {
        if self.shape.len() != D {
            return Err(Error::SnapshotEntry {
                name: name.to_string(),
                reason: format!(
                    "expected a tensor of rank {D}, got shape {:?} (rank {})",
                    self.shape,
                    self.shape.len()
                ),
            });
        }
        let len = self.shape.iter().product::<usize>();
        if self.data.len() != len {
            return Err(Error::SnapshotEntry {
                name: name.to_string(),
                reason: format!(
                    "shape {:?} holds {len} values, but the entry has {}",
                    self.shape,
                    self.data.len()
                ),
            });
        }
        Ok(Tensor::from_data(
            TensorData::new(self.data.clone(), self.shape.clone()),
            device,
        ))
    }
}

/// Everything the future of a batch of environments depends on, on the host: named tensors
/// (physical state, counters) and named random streams. Written by
/// [`crate::VecEnv::save_state`], read by [`crate::VecEnv::load_state`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvSnapshot {
    /// Task name of the environments ([`EnvSpec::task`]).
    pub task: String,
    /// Number of environments, `N`.
    pub num_envs: usize,
    /// Named tensors, for example `state` `[N, K]`.
    pub tensors: BTreeMap<String, HostTensor>,
    /// Named random streams, one stream per environment each.
    pub rngs: BTreeMap<String, EnvRng>,
}

impl EnvSnapshot {
    /// An empty snapshot of the environments described by `spec`.
    pub fn new(spec: &EnvSpec) -> Self {
        Self {
            task: spec.task.clone(),
            num_envs: spec.num_envs,
            tensors: BTreeMap::new(),
            rngs: BTreeMap::new(),
        }
    }

    /// Errors unless the snapshot was taken of the same task with the same number of
    /// environments as `spec` describes.
    pub fn check(&self, spec: &EnvSpec) -> Result<()> {
        if self.task != spec.task {
            return Err(Error::SnapshotTask {
                expected: spec.task.clone(),
                got: self.task.clone(),
            });
        }
        if self.num_envs != spec.num_envs {
            return Err(Error::SnapshotNumEnvs {
                expected: spec.num_envs,
                got: self.num_envs,
            });
        }
        Ok(())
    }

    /// The tensor entry `name`.
    pub fn tensor(&self, name: &str) -> Result<&HostTensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| Error::SnapshotMissing {
                name: name.to_string(),
                available: join(self.tensors.keys()),
            })
    }

    /// The tensor entry `name` on `device`; errors unless its shape is `shape`.
    pub fn load_tensor<B: Backend, const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Result<Tensor<B, D>> {
        let t = self.tensor(name)?;
        if t.shape != shape {
            return Err(Error::SnapshotEntry {
                name: name.to_string(),
                reason: format!("expected shape {shape:?}, got {:?}", t.shape),
            });
        }
        t.to_tensor(name, device)
    }

    /// The random streams `name`; errors unless there is one stream per environment.
    pub fn rng(&self, name: &str) -> Result<&EnvRng> {
        let rng = self.rngs.get(name).ok_or_else(|| Error::SnapshotMissing {
            name: name.to_string(),
            available: join(self.rngs.keys()),
        })?;
        if rng.len() != self.num_envs {
            return Err(Error::SnapshotEntry {
                name: name.to_string(),
                reason: format!(
                    "expected {} random streams (one per environment), got {}",
                    self.num_envs,
                    rng.len()
                ),
            });
        }
        Ok(rng)
    }
}

/// Names, comma-separated (for error messages).
fn join<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActionSpace;
    use burn::backend::NdArray;

    fn spec(task: &str, num_envs: usize) -> EnvSpec {
        EnvSpec {
            task: task.into(),
            num_envs,
            obs_groups: BTreeMap::from([("policy".to_string(), 1)]),
            action_space: ActionSpace::Discrete { n: 2 },
            max_episode_length: 10,
            step_dt: 0.1,
        }
    }

    fn snapshot() -> EnvSnapshot {
        let mut s = EnvSnapshot::new(&spec("walk", 2));
        s.tensors.insert(
            "state".into(),
            HostTensor {
                shape: vec![2, 3],
                data: vec![1.0, -2.0, 3.5, 0.0, -0.0, 1e-30],
            },
        );
        s.rngs.insert("reset".into(), EnvRng::new(1, 2));
        s
    }

    #[test]
    fn host_tensors_round_trip_through_the_device() {
        let dev = Default::default();
        let s = snapshot();
        let t = s
            .load_tensor::<NdArray, 2>("state", [2, 3], &dev)
            .expect("valid entry");
        assert_eq!(t.dims(), [2, 3]);
        let back = HostTensor::read(t).expect("f32 tensor");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(back.shape, vec![2, 3]);
        assert_eq!(bits(&back.data), bits(&s.tensors["state"].data));
    }

    #[test]
    fn ill_formed_entries_are_errors_that_name_them() {
        let dev = Default::default();
        let mut s = snapshot();
        let e = s
            .load_tensor::<NdArray, 2>("state", [2, 4], &dev)
            .expect_err("wrong shape");
        assert!(e.to_string().contains("`state`") && e.to_string().contains("[2, 4]"));
        let e = s.tensor("returns").expect_err("missing");
        assert!(matches!(e, Error::SnapshotMissing { ref name, .. } if name == "returns"));
        assert!(e.to_string().contains("`returns`") && e.to_string().contains("state"));
        let e = s.tensors["state"]
            .to_tensor::<NdArray, 1>("state", &dev)
            .expect_err("wrong rank");
        assert!(e.to_string().contains("rank 1"), "{e}");
        s.tensors.get_mut("state").expect("exists").data.pop();
        let e = s
            .load_tensor::<NdArray, 2>("state", [2, 3], &dev)
            .expect_err("too few values");
        assert!(e.to_string().contains("6 values"), "{e}");
        assert!(s.rng("reset").is_ok());
        assert!(s.rng("noise").is_err());
        s.rngs.insert("reset".into(), EnvRng::new(1, 3));
        let e = s.rng("reset").expect_err("three streams for two envs");
        assert!(e.to_string().contains("`reset`"), "{e}");
    }

    #[test]
    fn check_rejects_another_task_or_number_of_envs() {
        let s = snapshot();
        assert!(s.check(&spec("walk", 2)).is_ok());
        let e = s.check(&spec("run", 2)).expect_err("other task");
        assert!(e.to_string().contains("`walk`") && e.to_string().contains("`run`"));
        let e = s.check(&spec("walk", 3)).expect_err("other num_envs");
        assert!(
            matches!(
                e,
                Error::SnapshotNumEnvs {
                    expected: 3,
                    got: 2
                }
            ),
            "{e}"
        );
    }
}
