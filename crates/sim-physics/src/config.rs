//! Settings of the articulated-body simulator: time step, contact and joint-limit models.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How the simulator steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Length of one [`crate::Articulation::step`] (s). legged_gym and IsaacLab use
    /// 0.005 s with the policy acting every 4 steps.
    pub dt: f64,
    /// Integration sub-steps per step, each `dt / substeps` long; actuators are evaluated
    /// at every one.
    pub substeps: usize,
    /// Gravity (m/s^2), world frame, z up.
    pub gravity: [f64; 3],
    /// Ground contact.
    pub contact: ContactConfig,
    /// Stiffness of the joint limits (N m / rad or N / m). Integrated implicitly, so any
    /// value is stable; a joint held against its limit by a torque `tau` rests `tau / k`
    /// past it (3.5 mrad for the quadruped's 35 N m knee at the default).
    pub limit_stiffness: f64,
    /// Damping of the joint limits (N m s / rad or N s / m). `limit_damping /
    /// limit_stiffness` is the time over which a limit removes a penetration; it should be a
    /// few steps (the default 0.01 s is two steps of 0.005 s), so that a joint stops at the
    /// limit instead of bouncing off it.
    pub limit_damping: f64,
    /// Clamp joint speeds to the model's velocity limits after every sub-step (off by
    /// default). The clamp acts outside the implicit solve, so it can keep a joint limit or
    /// a contact from stopping a joint in one step; most tasks use the limits in rewards or
    /// actuator models instead.
    pub enforce_velocity_limits: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            dt: 0.005,
            substeps: 1,
            gravity: [0.0, 0.0, -9.81],
            contact: ContactConfig::default(),
            limit_stiffness: 1e4,
            limit_damping: 100.0,
            enforce_velocity_limits: false,
        }
    }
}

/// Soft ground contact: a spring-damper along the normal and regularised Coulomb friction,
/// both integrated implicitly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContactConfig {
    /// Normal stiffness per contact point (N/m).
    pub stiffness: f64,
    /// Normal damping per contact point (N s / m).
    pub damping: f64,
    /// Coulomb friction coefficient.
    pub friction: f64,
    /// Slip speed (m/s) below which friction acts as a viscous damper `mu f_n v / v_slip`
    /// instead of a constant `mu f_n` (the regularisation of Coulomb friction near zero).
    pub slip_velocity: f64,
    /// Height of the ground plane (m).
    pub ground_height: f64,
}

impl Default for ContactConfig {
    fn default() -> Self {
        Self {
            stiffness: 2e4,
            damping: 500.0,
            friction: 1.0,
            slip_velocity: 1e-3,
            ground_height: 0.0,
        }
    }
}

impl SimConfig {
    /// Checks every value.
    ///
    /// # Errors
    /// [`Error::Physics`] naming the field when a value is out of range.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("dt", self.dt),
            ("contact.slip_velocity", self.contact.slip_velocity),
        ];
        for (field, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::Physics(format!("{field} must be > 0, got {v}")));
            }
        }
        let non_negative = [
            ("limit_stiffness", self.limit_stiffness),
            ("limit_damping", self.limit_damping),
            ("contact.stiffness", self.contact.stiffness),
            ("contact.damping", self.contact.damping),
            ("contact.friction", self.contact.friction),
        ];
        for (field, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::Physics(format!("{field} must be >= 0, got {v}")));
            }
        }
        if self.substeps == 0 {
            return Err(Error::Physics("substeps must be at least 1".into()));
        }
        if self
            .gravity
            .iter()
            .chain([self.contact.ground_height].iter())
            .any(|g| !g.is_finite())
        {
            return Err(Error::Physics(
                "gravity and contact.ground_height must be finite".into(),
            ));
        }
        Ok(())
    }
}
