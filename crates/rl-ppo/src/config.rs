//! PPO hyperparameters (`[algorithm]`), with rsl_rl's defaults and names. The model's
//! settings (`[policy]`) are rl-modules' [`PolicyConfig`].

pub use rl_modules::{NoiseStdSchedule, NoiseStdType, ObsGroups, PolicyConfig};
use rl_storage::Shuffle;
use serde::{Deserialize, Serialize};

use crate::Error;

/// How the learning rate changes during training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LearningRateSchedule {
    /// KL-adaptive: after each mini-batch's KL estimate, divide by 1.5 when
    /// `kl > 2 desired_kl`, multiply by 1.5 when `kl < desired_kl / 2` (rsl_rl).
    #[default]
    Adaptive,
    /// Constant learning rate.
    Fixed,
}

/// How gradients are clipped to `max_grad_norm` (by L2 norm, as `clip_grad_norm_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradNormClip {
    /// Actor (with its std) and critic clipped separately, each to `max_grad_norm` (rsl_rl 5.x).
    #[default]
    Separate,
    /// One norm over all parameters (older rsl_rl).
    Global,
}

/// Which value bootstraps the reward of a step that ended by time-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutBootstrap {
    /// `r += gamma * V(s_t)`: the value of the observation before the step (rsl_rl).
    #[default]
    Value,
    /// `r += gamma * V(s_final)`: the value of the episode's true final observation, the
    /// state the time limit cut off (more correct).
    FinalObservation,
}

/// PPO hyperparameters: the `[algorithm]` table with `class = "ppo"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Discount factor, in (0, 1].
    pub gamma: f32,
    /// GAE lambda, in [0, 1].
    pub lam: f32,
    /// PPO clip range of the ratio (and of the value change when the value loss is clipped).
    pub clip_param: f32,
    /// Weight of the value loss.
    pub value_loss_coef: f32,
    /// Clip the value loss around the rollout's values.
    pub use_clipped_value_loss: bool,
    /// Weight of the entropy bonus.
    pub entropy_coef: f32,
    /// Passes over the rollout per update.
    pub num_learning_epochs: usize,
    /// Mini-batches per epoch; must divide `num_envs * num_steps_per_env`.
    pub num_mini_batches: usize,
    /// Initial learning rate of Adam.
    pub learning_rate: f64,
    /// `adaptive` (KL) or `fixed`.
    pub schedule: LearningRateSchedule,
    /// Target KL of the adaptive schedule.
    pub desired_kl: f64,
    /// Lower bound of the adaptive learning rate.
    pub min_learning_rate: f64,
    /// Upper bound of the adaptive learning rate.
    pub max_learning_rate: f64,
    /// Gradient L2-norm limit.
    pub max_grad_norm: f32,
    /// `separate` (actor and critic, rsl_rl 5.x) or `global`.
    pub grad_norm_clip: GradNormClip,
    /// Normalise advantages per mini-batch instead of over the whole rollout.
    pub normalize_advantage_per_mini_batch: bool,
    /// `per_update` (one permutation reused by every epoch, rsl_rl) or `per_epoch`.
    pub shuffle: Shuffle,
    /// `value` (rsl_rl's `V(s_t)`) or `final_observation`.
    pub timeout_bootstrap: TimeoutBootstrap,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            gamma: 0.99,
            lam: 0.95,
            clip_param: 0.2,
            value_loss_coef: 1.0,
            use_clipped_value_loss: true,
            entropy_coef: 0.01,
            num_learning_epochs: 5,
            num_mini_batches: 4,
            learning_rate: 1e-3,
            schedule: LearningRateSchedule::Adaptive,
            desired_kl: 0.01,
            min_learning_rate: 1e-5,
            max_learning_rate: 1e-2,
            max_grad_norm: 1.0,
            grad_norm_clip: GradNormClip::Separate,
            normalize_advantage_per_mini_batch: false,
            shuffle: Shuffle::PerUpdate,
            timeout_bootstrap: TimeoutBootstrap::Value,
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

impl PpoConfig {
    /// Checks that the mini-batches split a rollout of `num_envs * num_steps_per_env`
    /// samples evenly; the error lists the valid choices.
    pub fn validate_batch(&self, num_envs: usize, num_steps_per_env: usize) -> Result<(), Error> {
        let (n, t) = (num_envs, num_steps_per_env);
        let Some(batch) = n.checked_mul(t) else {
            return Err(Error::Config {
                field: "env.num_envs".into(),
                message: format!("num_envs * num_steps_per_env = {n} * {t} is too large"),
            });
        };
        let m = self.num_mini_batches;
        if m > batch || !batch.is_multiple_of(m) {
            let what = if m > batch {
                "at most the batch"
            } else {
                "a divisor of the batch"
            };
            let choices = divisors(batch)
                .map(|d| format!("; valid choices: {d}"))
                .unwrap_or_default();
            return Err(Error::Config {
                field: "algorithm.num_mini_batches".into(),
                message: format!(
                    "expected {what} num_envs * num_steps_per_env = {n} * {t} = {batch}, got {m}{choices}"
                ),
            });
        }
        Ok(())
    }

    /// Checks ranges; errors name the field (`algorithm.<name>`). Every comparison fails on
    /// NaN, so a NaN value is always rejected.
    pub fn validate(&self) -> Result<(), Error> {
        let f = |n: &str| format!("algorithm.{n}");
        check(
            self.gamma > 0.0 && self.gamma <= 1.0,
            &f("gamma"),
            "a value in (0, 1]",
            self.gamma,
        )?;
        check(
            (0.0..=1.0).contains(&self.lam),
            &f("lam"),
            "a value in [0, 1]",
            self.lam,
        )?;
        check(
            self.clip_param > 0.0 && self.clip_param.is_finite(),
            &f("clip_param"),
            "a positive finite number",
            self.clip_param,
        )?;
        check(
            self.value_loss_coef >= 0.0 && self.value_loss_coef.is_finite(),
            &f("value_loss_coef"),
            "a non-negative finite number",
            self.value_loss_coef,
        )?;
        check(
            self.entropy_coef.is_finite(),
            &f("entropy_coef"),
            "a finite number",
            self.entropy_coef,
        )?;
        check(
            self.num_learning_epochs > 0,
            &f("num_learning_epochs"),
            "at least 1",
            self.num_learning_epochs,
        )?;
        check(
            self.num_mini_batches > 0,
            &f("num_mini_batches"),
            "at least 1",
            self.num_mini_batches,
        )?;
        check(
            self.learning_rate > 0.0 && self.learning_rate.is_finite(),
            &f("learning_rate"),
            "a positive finite number",
            self.learning_rate,
        )?;
        check(
            self.desired_kl > 0.0 && self.desired_kl.is_finite(),
            &f("desired_kl"),
            "a positive finite number",
            self.desired_kl,
        )?;
        check(
            self.min_learning_rate > 0.0 && self.min_learning_rate.is_finite(),
            &f("min_learning_rate"),
            "a positive finite number",
            self.min_learning_rate,
        )?;
        check(
            self.max_learning_rate >= self.min_learning_rate && self.max_learning_rate.is_finite(),
            &f("max_learning_rate"),
            &format!(
                "a finite value at least min_learning_rate ({})",
                self.min_learning_rate
            ),
            self.max_learning_rate,
        )?;
        check(
            self.max_grad_norm > 0.0 && self.max_grad_norm.is_finite(),
            &f("max_grad_norm"),
            "a positive finite number",
            self.max_grad_norm,
        )?;
        Ok(())
    }
}

/// The divisors of `n`, comma-separated (the first 24 and `n` when there are more); `None`
/// when `n` is too large to list them quickly.
fn divisors(n: usize) -> Option<String> {
    if n == 0 || n > 1 << 40 {
        return None;
    }
    let (mut low, mut high) = (Vec::new(), Vec::new());
    let mut d = 1;
    while d * d <= n {
        if n.is_multiple_of(d) {
            low.push(d);
            if d * d != n {
                high.push(n / d);
            }
        }
        d += 1;
    }
    low.extend(high.into_iter().rev());
    Some(if low.len() <= 25 {
        join(&low)
    } else {
        format!("{}, ..., {n}", join(&low[..24]))
    })
}

fn join(items: &[impl std::fmt::Display]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rl_modules::Activation;

    #[test]
    fn divisors_are_listed_in_full_or_cut() {
        assert_eq!(divisors(12).as_deref(), Some("1, 2, 3, 4, 6, 12"));
        assert_eq!(divisors(49).as_deref(), Some("1, 7, 49"));
        // 98304 = 4096 * 24 = 2^15 * 3 has 32 divisors: the first 24, then the largest.
        let d = divisors(98304).expect("listed");
        assert!(d.ends_with(" 3072, 4096, ..., 98304"), "{d}");
        assert_eq!(divisors(usize::MAX), None);
    }

    #[test]
    fn defaults_are_rsl_rl_defaults() {
        let c = PpoConfig::default();
        assert_eq!((c.gamma, c.lam, c.clip_param), (0.99, 0.95, 0.2));
        assert_eq!((c.num_learning_epochs, c.num_mini_batches), (5, 4));
        assert_eq!(c.learning_rate, 1e-3);
        assert_eq!(c.schedule, LearningRateSchedule::Adaptive);
        let p = PolicyConfig::default();
        assert_eq!(p.actor_hidden_dims, vec![256, 256, 128]);
        assert_eq!(p.activation, Activation::Elu);
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        let c = PpoConfig {
            gamma: 1.5,
            ..Default::default()
        };
        let e = c.validate().expect_err("gamma > 1").to_string();
        assert!(e.contains("algorithm.gamma"), "{e}");
        let p = PolicyConfig {
            init_noise_std: 0.0,
            ..Default::default()
        };
        assert!(
            p.validate()
                .expect_err("std 0")
                .to_string()
                .contains("policy.init_noise_std")
        );
    }

    #[test]
    fn nan_and_infinite_values_are_rejected() {
        // Each field set to NaN and to infinity in turn: both must fail, naming the field.
        type Set = fn(&mut PpoConfig, f32);
        let ppo: &[(&str, Set)] = &[
            ("gamma", |c, v| c.gamma = v),
            ("lam", |c, v| c.lam = v),
            ("clip_param", |c, v| c.clip_param = v),
            ("value_loss_coef", |c, v| c.value_loss_coef = v),
            ("entropy_coef", |c, v| c.entropy_coef = v),
            ("learning_rate", |c, v| c.learning_rate = v.into()),
            ("desired_kl", |c, v| c.desired_kl = v.into()),
            ("min_learning_rate", |c, v| c.min_learning_rate = v.into()),
            ("max_learning_rate", |c, v| c.max_learning_rate = v.into()),
            ("max_grad_norm", |c, v| c.max_grad_norm = v),
        ];
        for (name, set) in ppo {
            for v in [f32::NAN, f32::INFINITY] {
                let mut c = PpoConfig::default();
                set(&mut c, v);
                let e = c.validate().expect_err(name).to_string();
                assert!(e.contains(&format!("`algorithm.{name}`")), "{e}");
            }
        }
        type SetPolicy = fn(&mut PolicyConfig, f32);
        let policy: &[(&str, SetPolicy)] = &[
            ("init_noise_std", |c, v| c.init_noise_std = v),
            ("min_std", |c, v| c.min_std = v),
            ("max_std", |c, v| c.max_std = v),
        ];
        for (name, set) in policy {
            for v in [f32::NAN, f32::INFINITY] {
                let mut c = PolicyConfig::default();
                set(&mut c, v);
                let e = c.validate().expect_err(name).to_string();
                assert!(e.contains(&format!("`policy.{name}`")), "{e}");
            }
        }
    }

    #[test]
    fn range_errors_say_what_was_expected_and_got() {
        let c = PpoConfig {
            learning_rate: 0.0,
            ..Default::default()
        };
        let e = c.validate().expect_err("lr 0").to_string();
        assert!(
            e.contains("expected a positive finite number, got 0"),
            "{e}"
        );
        let p = PolicyConfig {
            min_std: 2.0,
            max_std: 1.5,
            ..Default::default()
        };
        let e = p.validate().expect_err("min > max").to_string();
        assert!(e.contains("`policy.max_std`"), "{e}");
        assert!(e.contains("at least min_std (2), got 1.5"), "{e}");
        let p = PolicyConfig {
            actor_hidden_dims: vec![64, 0],
            ..Default::default()
        };
        let e = p.validate().expect_err("dim 0").to_string();
        assert!(
            e.contains("`policy.actor_hidden_dims`") && e.contains("[64, 0]"),
            "{e}"
        );
    }

    #[test]
    fn linear_std_schedule_interpolates_then_holds() {
        let p = PolicyConfig {
            init_noise_std: 1.0,
            noise_std_schedule: NoiseStdSchedule::Linear {
                final_std: 0.2,
                num_iterations: 100,
            },
            ..Default::default()
        };
        assert_eq!(p.scheduled_std(0), Some(1.0));
        assert!((p.scheduled_std(50).expect("linear") - 0.6).abs() < 1e-6);
        assert!((p.scheduled_std(500).expect("linear") - 0.2).abs() < 1e-6);
        assert_eq!(PolicyConfig::default().scheduled_std(3), None);
    }
}
