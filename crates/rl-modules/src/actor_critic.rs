//! The MLP actor-critic: separate actor and critic networks and a learnable action std.

use crate::config::{NoiseStdType, PolicyConfig};
use crate::{ActionDistribution, Categorical, DiagGaussian, Mlp, MlpConfig};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use rl_core::{ActionSpace, HostRng};

/// How the std parameter is read.
#[derive(Debug, Clone, Copy)]
pub struct StdSettings {
    /// What the parameter stores.
    pub std_type: NoiseStdType,
    /// Clamp range of the std.
    pub min_std: f32,
    /// Clamp range of the std.
    pub max_std: f32,
    /// False when a schedule sets the std (no gradient flows into it).
    pub learned: bool,
}

/// Actor MLP, critic MLP (state value) and, for continuous actions, a state-independent
/// action std.
///
/// For a [`ActionSpace::Box`] of `A` dimensions the actor outputs the Gaussian's mean
/// `[M, A]`; for a [`ActionSpace::Discrete`] of `n` choices it outputs `n` logits of a
/// categorical distribution and there is no std.
#[derive(Module, Debug)]
pub struct ActorCritic<B: Backend> {
    /// Observations `[M, D_actor]` to action means `[M, A]` or logits `[M, n]`.
    pub actor: Mlp<B>,
    /// Observations `[M, D_critic]` to values `[M, 1]`.
    pub critic: Mlp<B>,
    /// Continuous actions only: one entry per action dimension, the std or its logarithm
    /// (see [`StdSettings`]), `[A]`.
    pub std: Option<Param<Tensor<B, 1>>>,
    #[module(skip)]
    settings: StdSettings,
}

impl<B: Backend> ActorCritic<B> {
    /// A freshly initialised actor-critic for the action space `space`, its weights drawn
    /// from `rng`: the actor's layers, then the critic's (see [`MlpConfig::init_with_rng`]
    /// for the order within a network). The std starts at `cfg.init_noise_std`, no draw.
    pub fn new(
        cfg: &PolicyConfig,
        actor_input: usize,
        critic_input: usize,
        space: &ActionSpace,
        rng: &mut HostRng,
        device: &B::Device,
    ) -> Self {
        let actor = Self::actor_network(cfg, actor_input, space, rng, device);
        let outputs = actor.output_dim();
        let critic = MlpConfig::new(critic_input, cfg.critic_hidden_dims.clone(), 1)
            .with_activation(cfg.activation)
            .with_precision(cfg.precision)
            .init_with_rng(rng, device);
        let settings = StdSettings {
            std_type: cfg.noise_std_type,
            min_std: cfg.min_std,
            max_std: cfg.max_std,
            learned: cfg.scheduled_std(0).is_none(),
        };
        let std = (!space.is_discrete()).then(|| {
            Param::from_tensor(Self::encode_std(
                settings,
                cfg.init_noise_std,
                outputs,
                device,
            ))
        });
        Self {
            actor,
            critic,
            std,
            settings,
        }
    }

    /// A freshly initialised actor network of `cfg` for `input` features, its weights drawn
    /// from `rng`: the Gaussian's means of a [`ActionSpace::Box`], or the logits of a
    /// [`ActionSpace::Discrete`].
    pub(crate) fn actor_network(
        cfg: &PolicyConfig,
        input: usize,
        space: &ActionSpace,
        rng: &mut HostRng,
        device: &B::Device,
    ) -> Mlp<B> {
        let outputs = match space {
            ActionSpace::Box { low, .. } => low.len(),
            ActionSpace::Discrete { n } => *n,
        };
        MlpConfig::new(input, cfg.actor_hidden_dims.clone(), outputs)
            .with_activation(cfg.activation)
            .with_precision(cfg.precision)
            .init_with_rng(rng, device)
    }

    fn encode_std(
        settings: StdSettings,
        std: f32,
        num_actions: usize,
        device: &B::Device,
    ) -> Tensor<B, 1> {
        let value = match settings.std_type {
            NoiseStdType::Scalar => std,
            NoiseStdType::Log => std.ln(),
        };
        Tensor::from_data(
            TensorData::new(vec![value; num_actions], [num_actions]),
            device,
        )
    }

    /// Whether the actions are discrete (categorical policy, no std).
    pub fn is_discrete(&self) -> bool {
        self.std.is_none()
    }

    /// The std settings.
    pub fn std_settings(&self) -> StdSettings {
        self.settings
    }

    /// Overwrites every entry of the std with `std` (used by std schedules); the parameter
    /// keeps its id, so the optimizer state stays attached. No effect for discrete actions.
    pub fn set_std(mut self, std: f32) -> Self {
        if let Some(param) = self.std.take() {
            let device = param.device();
            let value = Self::encode_std(self.settings, std, param.dims()[0], &device);
            self.std = Some(Param::initialized(param.id, value));
        }
        self
    }

    /// Visits the actor's parameters: its MLP and the action std (the group whose gradient
    /// norm rsl_rl 5.x clips on its own).
    pub fn visit_actor<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        self.actor.visit(visitor);
        if let Some(std) = &self.std {
            visitor.visit_float(std);
        }
    }

    /// The action std, clamped to `[min_std, max_std]`, `[A]`; `None` for discrete actions.
    pub fn action_std_vector(&self) -> Option<Tensor<B, 1>> {
        let param = self.std.as_ref()?;
        let raw = if self.settings.learned {
            param.val()
        } else {
            param.val().detach()
        };
        Some(match self.settings.std_type {
            NoiseStdType::Scalar => raw.clamp(self.settings.min_std, self.settings.max_std),
            NoiseStdType::Log => raw
                .clamp(self.settings.min_std.ln(), self.settings.max_std.ln())
                .exp(),
        })
    }

    /// The policy's action distribution for observations `[M, D_actor]`.
    pub fn distribution(&self, obs: Tensor<B, 2>) -> ActionDistribution<B> {
        let out = self.actor.forward(obs); // [M, A] means or [M, n] logits
        match self.action_std_vector() {
            Some(std) => {
                let [m, a] = out.dims();
                let std = std.unsqueeze::<2>().expand([m, a]); // [M, A]
                ActionDistribution::Gaussian(DiagGaussian::new(out, std))
            }
            None => ActionDistribution::Categorical(Categorical::from_logits(out)),
        }
    }

    /// Deterministic action, `[M, A]`: the Gaussian's mean, or the most likely choice as a
    /// float index `[M, 1]`.
    pub fn action_mode(&self, obs: Tensor<B, 2>) -> Tensor<B, 2> {
        let out = self.actor.forward(obs);
        if self.is_discrete() {
            out.argmax(1).float()
        } else {
            out
        }
    }

    /// Critic values for observations `[M, D_critic]`, `[M]`.
    pub fn value(&self, obs: Tensor<B, 2>) -> Tensor<B, 1> {
        self.critic.forward(obs).squeeze_dim::<1>(1)
    }
}

/// The shapes of a module's float parameters, in visiting order (to check that loaded
/// weights fit the configured network).
pub fn parameter_shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.val().dims().to_vec());
        }
    }
    let mut shapes = Shapes(Vec::new());
    module.visit(&mut shapes);
    shapes.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoiseStdSchedule;
    use burn::backend::NdArray;

    fn boxed(a: usize) -> ActionSpace {
        ActionSpace::Box {
            low: vec![-1.0; a],
            high: vec![1.0; a],
        }
    }

    fn std_values(ac: &ActorCritic<NdArray>) -> Vec<f32> {
        ac.action_std_vector()
            .expect("continuous actions have a std")
            .into_data()
            .to_vec()
            .expect("f32")
    }

    #[test]
    fn std_is_clamped_in_both_parameterisations() {
        let dev = Default::default();
        for std_type in [NoiseStdType::Scalar, NoiseStdType::Log] {
            let cfg = PolicyConfig {
                actor_hidden_dims: vec![8],
                critic_hidden_dims: vec![8],
                noise_std_type: std_type,
                min_std: 0.1,
                max_std: 2.0,
                ..Default::default()
            };
            let ac = ActorCritic::<NdArray>::new(&cfg, 3, 3, &boxed(2), &mut HostRng::new(0), &dev)
                .set_std(50.0);
            let v: Vec<f32> = std_values(&ac);
            assert!(
                v.iter().all(|&s| (s - 2.0).abs() < 1e-5),
                "{std_type:?}: {v:?}"
            );
            let ac = ac.set_std(1e-6);
            let v: Vec<f32> = std_values(&ac);
            assert!(
                v.iter().all(|&s| (s - 0.1).abs() < 1e-5),
                "{std_type:?}: {v:?}"
            );
            let ac = ac.set_std(0.7);
            let v: Vec<f32> = std_values(&ac);
            assert!(
                v.iter().all(|&s| (s - 0.7).abs() < 1e-5),
                "{std_type:?}: {v:?}"
            );
        }
    }

    #[test]
    fn shapes_of_distribution_and_value() {
        let dev = Default::default();
        let cfg = PolicyConfig {
            actor_hidden_dims: vec![16, 8],
            critic_hidden_dims: vec![4],
            noise_std_schedule: NoiseStdSchedule::Learned,
            ..Default::default()
        };
        let ac = ActorCritic::<NdArray>::new(&cfg, 5, 7, &boxed(3), &mut HostRng::new(0), &dev);
        match ac.distribution(Tensor::zeros([11, 5], &dev)) {
            ActionDistribution::Gaussian(d) => {
                assert_eq!(d.mean.dims(), [11, 3]);
                assert_eq!(d.std.dims(), [11, 3]);
            }
            other => panic!("expected a Gaussian, got {other:?}"),
        }
        assert_eq!(ac.value(Tensor::zeros([11, 7], &dev)).dims(), [11]);
        assert_eq!(ac.action_mode(Tensor::zeros([11, 5], &dev)).dims(), [11, 3]);
    }

    #[test]
    fn discrete_actions_get_a_categorical_without_std() {
        let dev = Default::default();
        let cfg = PolicyConfig {
            actor_hidden_dims: vec![8],
            critic_hidden_dims: vec![8],
            ..Default::default()
        };
        let ac = ActorCritic::<NdArray>::new(
            &cfg,
            4,
            4,
            &ActionSpace::Discrete { n: 3 },
            &mut HostRng::new(0),
            &dev,
        );
        assert!(ac.is_discrete());
        assert!(ac.action_std_vector().is_none());
        assert!(ac.clone().set_std(2.0).std.is_none());
        let obs = Tensor::<NdArray, 2>::ones([5, 4], &dev);
        match ac.distribution(obs.clone()) {
            ActionDistribution::Categorical(d) => assert_eq!(d.log_probs.dims(), [5, 3]),
            other => panic!("expected a categorical, got {other:?}"),
        }
        let mode: Vec<f32> = ac.action_mode(obs).into_data().to_vec().expect("f32");
        assert_eq!(mode.len(), 5);
        assert!(
            mode.iter()
                .all(|&i| i.fract() == 0.0 && (0.0..3.0).contains(&i))
        );
        // The actor has three outputs and nothing else is a parameter besides the critic.
        let n = ac.num_params();
        let want = (4 * 8 + 8) + (8 * 3 + 3) + (4 * 8 + 8) + (8 + 1);
        assert_eq!(n, want);
    }
}
