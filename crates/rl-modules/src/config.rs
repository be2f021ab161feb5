//! The actor-critic model's settings: the `[policy]` table, with rsl_rl's defaults and names.

use serde::{Deserialize, Serialize};

use crate::{Activation, Error, Precision, RnnType};

/// How the learnable action std is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseStdType {
    /// The parameter is the std itself (rsl_rl's default).
    #[default]
    Scalar,
    /// The parameter is `ln(std)`.
    Log,
}

/// Action-noise schedule.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NoiseStdSchedule {
    /// The std is learned, starting at `init_noise_std`.
    #[default]
    Learned,
    /// The std is not learned: it goes linearly from `init_noise_std` to `final_std` over
    /// `num_iterations` iterations, then stays at `final_std`.
    Linear {
        /// The std after `num_iterations`.
        final_std: f32,
        /// Length of the decay in iterations.
        num_iterations: usize,
    },
}

/// The model's architecture: the `class` key of `[policy]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelClass {
    /// MLP actor and critic (rsl_rl's `MLPModel`).
    #[default]
    Mlp,
    /// A recurrent layer stack (LSTM or GRU) in front of each MLP, actor and critic each
    /// with its own (rsl_rl's `RNNModel`).
    Rnn,
}

/// The recurrent layers of a `class = "rnn"` model, with rsl_rl's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RnnSettings {
    /// `lstm` or `gru`.
    pub rnn_type: RnnType,
    /// Width of the hidden state `H`.
    pub hidden_dim: usize,
    /// Number of stacked layers.
    pub num_layers: usize,
}

/// Which observation groups feed the actor (`policy`) and the critic (`critic`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObsGroups {
    /// Groups concatenated into the actor's input.
    pub policy: Vec<String>,
    /// Groups concatenated into the critic's input.
    pub critic: Vec<String>,
}

impl Default for ObsGroups {
    fn default() -> Self {
        Self {
            policy: vec!["policy".into()],
            critic: vec!["policy".into()],
        }
    }
}

/// The actor-critic: the `[policy]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// `mlp` (the default) or `rnn`.
    pub class: ModelClass,
    /// `class = "rnn"`: `lstm` (the default) or `gru`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rnn_type: Option<RnnType>,
    /// `class = "rnn"`: width of the hidden state (default 256).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rnn_hidden_dim: Option<usize>,
    /// `class = "rnn"`: stacked recurrent layers (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rnn_num_layers: Option<usize>,
    /// Hidden layer sizes of the actor MLP (after the recurrent layers of an `rnn`).
    pub actor_hidden_dims: Vec<usize>,
    /// Hidden layer sizes of the critic MLP.
    pub critic_hidden_dims: Vec<usize>,
    /// Activation of the hidden layers.
    pub activation: Activation,
    /// Initial action std (one per action dimension).
    pub init_noise_std: f32,
    /// `scalar` (rsl_rl) or `log`.
    pub noise_std_type: NoiseStdType,
    /// The std is clamped to `[min_std, max_std]` in every forward pass.
    pub min_std: f32,
    /// Upper end of the std clamp.
    pub max_std: f32,
    /// Learned std, or a fixed schedule.
    pub noise_std_schedule: NoiseStdSchedule,
    /// Normalise the actor's input with running statistics.
    pub actor_obs_normalization: bool,
    /// Normalise the critic's input with running statistics.
    pub critic_obs_normalization: bool,
    /// Observation groups of actor and critic.
    pub obs_groups: ObsGroups,
    /// Precision of the networks' layers: `f32`, or `bf16` / `f16` (mixed precision: the
    /// parameters, losses and optimiser stay `f32`). Half precision pays off on GPUs.
    pub precision: Precision,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            class: ModelClass::Mlp,
            rnn_type: None,
            rnn_hidden_dim: None,
            rnn_num_layers: None,
            actor_hidden_dims: vec![256, 256, 128],
            critic_hidden_dims: vec![256, 256, 128],
            activation: Activation::Elu,
            init_noise_std: 1.0,
            noise_std_type: NoiseStdType::Scalar,
            min_std: 1e-3,
            max_std: 10.0,
            noise_std_schedule: NoiseStdSchedule::Learned,
            actor_obs_normalization: false,
            critic_obs_normalization: false,
            obs_groups: ObsGroups::default(),
            precision: Precision::F32,
        }
    }
}

impl PolicyConfig {
    /// rsl_rl's defaults of the recurrent layers: one LSTM layer of 256.
    pub const DEFAULT_RNN: RnnSettings = RnnSettings {
        rnn_type: RnnType::Lstm,
        hidden_dim: 256,
        num_layers: 1,
    };

    /// The recurrent layers of a `class = "rnn"` model (the defaults where a key is not
    /// set); `None` for an MLP.
    pub fn rnn(&self) -> Option<RnnSettings> {
        let d = Self::DEFAULT_RNN;
        (self.class == ModelClass::Rnn).then(|| RnnSettings {
            rnn_type: self.rnn_type.unwrap_or(d.rnn_type),
            hidden_dim: self.rnn_hidden_dim.unwrap_or(d.hidden_dim),
            num_layers: self.rnn_num_layers.unwrap_or(d.num_layers),
        })
    }

    /// The recurrent keys that are set although the model is an MLP (they are ignored), by
    /// field name, so that a caller can warn: switching `class` alone compares the two
    /// models on one config.
    pub fn ignored_rnn_keys(&self) -> Vec<&'static str> {
        if self.class != ModelClass::Mlp {
            return Vec::new();
        }
        [
            ("rnn_type", self.rnn_type.is_some()),
            ("rnn_hidden_dim", self.rnn_hidden_dim.is_some()),
            ("rnn_num_layers", self.rnn_num_layers.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }

    /// Checks ranges; errors name the field (`policy.<name>`).
    pub fn validate(&self) -> Result<(), Error> {
        let f = |n: &str| format!("policy.{n}");
        if let Some(rnn) = self.rnn() {
            check(
                rnn.hidden_dim > 0,
                &f("rnn_hidden_dim"),
                "a positive width",
                rnn.hidden_dim,
            )?;
            check(
                rnn.num_layers > 0,
                &f("rnn_num_layers"),
                "at least 1 layer",
                rnn.num_layers,
            )?;
        }
        check(
            self.actor_hidden_dims.iter().all(|&d| d > 0),
            &f("actor_hidden_dims"),
            "positive layer sizes",
            format!("{:?}", self.actor_hidden_dims),
        )?;
        check(
            self.critic_hidden_dims.iter().all(|&d| d > 0),
            &f("critic_hidden_dims"),
            "positive layer sizes",
            format!("{:?}", self.critic_hidden_dims),
        )?;
        check(
            self.min_std > 0.0 && self.min_std.is_finite(),
            &f("min_std"),
            "a positive finite number",
            self.min_std,
        )?;
        check(
            self.max_std >= self.min_std && self.max_std.is_finite(),
            &f("max_std"),
            &format!("a finite value at least min_std ({})", self.min_std),
            self.max_std,
        )?;
        check(
            self.init_noise_std >= self.min_std && self.init_noise_std <= self.max_std,
            &f("init_noise_std"),
            &format!(
                "a value in [min_std, max_std] = [{}, {}]",
                self.min_std, self.max_std
            ),
            self.init_noise_std,
        )?;
        if let NoiseStdSchedule::Linear { final_std, .. } = self.noise_std_schedule {
            check(
                final_std >= self.min_std && final_std <= self.max_std,
                &f("noise_std_schedule.final_std"),
                &format!(
                    "a value in [min_std, max_std] = [{}, {}]",
                    self.min_std, self.max_std
                ),
                final_std,
            )?;
        }
        check(
            !self.obs_groups.policy.is_empty(),
            &f("obs_groups.policy"),
            "at least one group",
            "[]",
        )?;
        check(
            !self.obs_groups.critic.is_empty(),
            &f("obs_groups.critic"),
            "at least one group",
            "[]",
        )?;
        Ok(())
    }

    /// The scheduled std at `iteration`, or `None` when the std is learned.
    pub fn scheduled_std(&self, iteration: usize) -> Option<f32> {
        match self.noise_std_schedule {
            NoiseStdSchedule::Learned => None,
            NoiseStdSchedule::Linear {
                final_std,
                num_iterations,
            } => {
                let frac = if num_iterations == 0 {
                    1.0
                } else {
                    (iteration as f32 / num_iterations as f32).min(1.0)
                };
                let std = self.init_noise_std + (final_std - self.init_noise_std) * frac;
                Some(std.clamp(self.min_std, self.max_std))
            }
        }
    }
}

fn check(
    ok: bool,
    field: &str,
    expected: &str,
    value: impl std::fmt::Display,
) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::Config {
            field: field.to_string(),
            message: format!("expected {expected}, got {value}"),
        })
    }
}
