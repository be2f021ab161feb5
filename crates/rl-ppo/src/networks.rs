//! The MLP actor-critic: separate actor and critic networks and a learnable action std.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use rl_modules::{DiagGaussian, Mlp, MlpConfig};

use crate::config::{NoiseStdType, PolicyConfig};

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

/// Actor MLP (action mean), critic MLP (state value) and a state-independent action std.
#[derive(Module, Debug)]
pub struct ActorCritic<B: Backend> {
    /// Observations `[M, D_actor]` to action means `[M, A]`.
    pub actor: Mlp<B>,
    /// Observations `[M, D_critic]` to values `[M, 1]`.
    pub critic: Mlp<B>,
    /// One entry per action dimension: the std, or its logarithm (see [`StdSettings`]), `[A]`.
    pub std: Param<Tensor<B, 1>>,
    #[module(skip)]
    settings: StdSettings,
}

impl<B: Backend> ActorCritic<B> {
    /// A freshly initialised actor-critic.
    pub fn new(
        cfg: &PolicyConfig,
        actor_input: usize,
        critic_input: usize,
        num_actions: usize,
        device: &B::Device,
    ) -> Self {
        let actor = MlpConfig::new(actor_input, cfg.actor_hidden_dims.clone(), num_actions)
            .with_activation(cfg.activation)
            .init(device);
        let critic = MlpConfig::new(critic_input, cfg.critic_hidden_dims.clone(), 1)
            .with_activation(cfg.activation)
            .init(device);
        let settings = StdSettings {
            std_type: cfg.noise_std_type,
            min_std: cfg.min_std,
            max_std: cfg.max_std,
            learned: cfg.scheduled_std(0).is_none(),
        };
        let std = Param::from_tensor(Self::encode_std(
            settings,
            cfg.init_noise_std,
            num_actions,
            device,
        ));
        Self {
            actor,
            critic,
            std,
            settings,
        }
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

    /// Number of action dimensions.
    pub fn num_actions(&self) -> usize {
        self.std.dims()[0]
    }

    /// The std settings.
    pub fn std_settings(&self) -> StdSettings {
        self.settings
    }

    /// Overwrites every entry of the std with `std` (used by std schedules); the parameter
    /// keeps its id, so the optimizer state stays attached.
    pub fn set_std(mut self, std: f32) -> Self {
        let device = self.std.device();
        let value = Self::encode_std(self.settings, std, self.num_actions(), &device);
        let id = self.std.id;
        self.std = Param::initialized(id, value);
        self
    }

    /// Visits the actor's parameters: its MLP and the action std (the group whose gradient
    /// norm rsl_rl 5.x clips on its own).
    pub fn visit_actor<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        self.actor.visit(visitor);
        visitor.visit_float(&self.std);
    }

    /// The action std, clamped to `[min_std, max_std]`, `[A]`.
    pub fn action_std_vector(&self) -> Tensor<B, 1> {
        let raw = if self.settings.learned {
            self.std.val()
        } else {
            self.std.val().detach()
        };
        match self.settings.std_type {
            NoiseStdType::Scalar => raw.clamp(self.settings.min_std, self.settings.max_std),
            NoiseStdType::Log => raw
                .clamp(self.settings.min_std.ln(), self.settings.max_std.ln())
                .exp(),
        }
    }

    /// The policy's action distribution for observations `[M, D_actor]`.
    pub fn distribution(&self, obs: Tensor<B, 2>) -> DiagGaussian<B> {
        let mean = self.actor.forward(obs); // [M, A]
        let [m, a] = mean.dims();
        let std = self.action_std_vector().unsqueeze::<2>().expand([m, a]); // [M, A]
        DiagGaussian::new(mean, std)
    }

    /// Deterministic action (the mean), `[M, A]`.
    pub fn action_mean(&self, obs: Tensor<B, 2>) -> Tensor<B, 2> {
        self.actor.forward(obs)
    }

    /// Critic values for observations `[M, D_critic]`, `[M]`.
    pub fn value(&self, obs: Tensor<B, 2>) -> Tensor<B, 1> {
        self.critic.forward(obs).squeeze_dim::<1>(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NoiseStdSchedule;
    use burn::backend::NdArray;

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
            let ac = ActorCritic::<NdArray>::new(&cfg, 3, 3, 2, &dev).set_std(50.0);
            let v: Vec<f32> = ac.action_std_vector().into_data().to_vec().expect("f32");
            assert!(
                v.iter().all(|&s| (s - 2.0).abs() < 1e-5),
                "{std_type:?}: {v:?}"
            );
            let ac = ac.set_std(1e-6);
            let v: Vec<f32> = ac.action_std_vector().into_data().to_vec().expect("f32");
            assert!(
                v.iter().all(|&s| (s - 0.1).abs() < 1e-5),
                "{std_type:?}: {v:?}"
            );
            let ac = ac.set_std(0.7);
            let v: Vec<f32> = ac.action_std_vector().into_data().to_vec().expect("f32");
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
        let ac = ActorCritic::<NdArray>::new(&cfg, 5, 7, 3, &dev);
        let d = ac.distribution(Tensor::zeros([11, 5], &dev));
        assert_eq!(d.mean.dims(), [11, 3]);
        assert_eq!(d.std.dims(), [11, 3]);
        assert_eq!(ac.value(Tensor::zeros([11, 7], &dev)).dims(), [11]);
    }
}
