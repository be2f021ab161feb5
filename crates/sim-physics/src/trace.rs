//! A step-by-step trace of one environment, for comparing with other simulators
//! (`cargo xtask sim-trace`).

use burn::tensor::{Tensor, TensorData, backend::Backend};
use serde::Serialize;

use super::{Articulation, BaseKind, Model, SimConfig};
use crate::{Error, Result};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct TraceRequest {
    /// The robot.
    pub model: Model,
    /// Time step and contact settings.
    pub config: SimConfig,
    /// Initial joint positions (one per joint, model order).
    pub q0: Vec<f64>,
    /// Initial joint velocities (zeros when `None`).
    pub qd0: Option<Vec<f64>>,
    /// Initial root position and orientation `(w, x, y, z)` of a floating base.
    pub root_pos: [f64; 3],
    /// Initial root orientation, a quaternion `(w, x, y, z)`.
    pub root_quat: [f64; 4],
    /// Number of steps.
    pub steps: usize,
    /// Joint torques per step (`steps` rows of one value per joint); zero when `None`.
    pub torques: Option<Vec<Vec<f64>>>,
}

/// The state after one step.
#[derive(Debug, Clone, Serialize)]
pub struct TraceRecord {
    /// Time (s).
    pub t: f64,
    /// Joint positions.
    pub q: Vec<f32>,
    /// Joint velocities.
    pub qd: Vec<f32>,
    /// Kinetic plus potential energy (J).
    pub energy: f32,
    /// Root position, for a floating base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_pos: Option<Vec<f32>>,
    /// Root orientation `(w, x, y, z)`, for a floating base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_quat: Option<Vec<f32>>,
    /// Root linear velocity, world frame, for a floating base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_lin_vel: Option<Vec<f32>>,
    /// Root angular velocity, world frame, for a floating base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_ang_vel: Option<Vec<f32>>,
}

fn row<B: Backend>(values: &[f64], device: &B::Device) -> Tensor<B, 2> {
    let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, [1, values.len()]), device)
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>> {
    t.into_data()
        .to_vec::<f32>()
        .map_err(|e| Error::Physics(format!("cannot read a tensor back: {e:?}")))
}

/// Simulates one environment and hands every state to `sink`, the initial one (`t = 0`)
/// first, then one per step.
///
/// # Errors
/// [`Error::Physics`] when `q0`, `qd0` or a torque row has the wrong length, the torques
/// have fewer rows than steps, or the sink fails; errors of [`Articulation::new`].
pub fn trace<B: Backend>(
    request: &TraceRequest,
    device: &B::Device,
    mut sink: impl FnMut(&TraceRecord) -> std::io::Result<()>,
) -> Result<()> {
    let model = &request.model;
    let nj = model.num_joints();
    let qd0 = request.qd0.clone().unwrap_or_else(|| vec![0.0; nj]);
    for (what, v) in [("q0", &request.q0), ("qd0", &qd0)] {
        if v.len() != nj {
            return Err(Error::Physics(format!(
                "{what} has {} values; model `{}` has {nj} joints ({})",
                v.len(),
                model.name,
                model
                    .joints
                    .iter()
                    .map(|j| j.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    if let Some(torques) = &request.torques {
        if torques.len() < request.steps {
            return Err(Error::Physics(format!(
                "the torques have {} rows for {} steps",
                torques.len(),
                request.steps
            )));
        }
        if let Some((i, r)) = torques.iter().enumerate().find(|(_, r)| r.len() != nj) {
            return Err(Error::Physics(format!(
                "torque row {} has {} values, expected {nj}",
                i + 1,
                r.len()
            )));
        }
    }
    let mut sim = Articulation::<B>::new(model.clone(), request.config.clone(), 1, device)?;
    if nj > 0 {
        sim.set_joint_state(&[0], row(&request.q0, device), row(&qd0, device))?;
    }
    let floating = model.base == BaseKind::Floating;
    if floating {
        sim.set_root_state(
            &[0],
            row(&request.root_pos, device),
            row(&request.root_quat, device),
            row(&[0.0; 3], device),
            row(&[0.0; 3], device),
        )?;
    }
    let record = |sim: &Articulation<B>, t: f64| -> Result<TraceRecord> {
        let (kinetic, potential) = sim.energy();
        let energy = host(kinetic + potential)?;
        let root =
            |x: Tensor<B, 2>| -> Result<Option<Vec<f32>>> { floating.then(|| host(x)).transpose() };
        Ok(TraceRecord {
            t,
            q: host(sim.joint_pos())?,
            qd: host(sim.joint_vel())?,
            energy: energy.first().copied().unwrap_or(f32::NAN),
            root_pos: root(sim.root_pos())?,
            root_quat: root(sim.root_quat())?,
            root_lin_vel: root(sim.root_lin_vel_w())?,
            root_ang_vel: root(sim.root_ang_vel_w())?,
        })
    };
    let write = |r: &TraceRecord, sink: &mut dyn FnMut(&TraceRecord) -> std::io::Result<()>| {
        sink(r).map_err(|e| Error::Physics(format!("cannot write the trace: {e}")))
    };
    write(&record(&sim, 0.0)?, &mut sink)?;
    for step in 0..request.steps {
        if let Some(torques) = &request.torques {
            sim.set_joint_effort(row(&torques[step], device))?;
        }
        sim.step();
        let t = (step + 1) as f64 * request.config.dt;
        write(&record(&sim, t)?, &mut sink)?;
    }
    Ok(())
}
