//! Partial observability (`env.observe`): a wrapper that shows the policy only some columns
//! of a task's observation and gives the whole observation to the critic.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use rl_core::{
    EnvLayout, EnvSnapshot, EnvSpec, ObsGroupLayout, ObsTermLayout, Observations, Scene,
    StepOutput, VecEnv,
};

use crate::common::POLICY;
use crate::{ClassicEnv, Error, Result};

/// Name of the group that holds the whole observation of an [`Observe`]d task.
pub(crate) const CRITIC: &str = "critic";

/// Name of the setting, under `[env]`.
pub(crate) const FIELD: &str = "observe";

/// A batch of environments whose `policy` observation is cut down to chosen columns (the
/// setting `observe = [0, 2]`), in the order given; the whole observation moves to a
/// second group, `critic`, so that the critic can still see everything
/// (`[policy] obs_groups.critic = ["critic"]`, the asymmetric actor-critic of rsl_rl and
/// IsaacLab).
///
/// Cart-pole with `observe = [0, 2]` sees the cart position and pole angle but not their
/// velocities: the policy needs memory to act well. Everything else (rewards, episodes,
/// snapshots, scenes) is the wrapped batch's, unchanged; the columns are picked on the
/// device with one `select` per group and step.
pub struct Observe<B: Backend, E: ?Sized> {
    env: Box<E>,
    /// The columns of the full observation the policy sees, `[D_policy]`.
    columns: Tensor<B, 1, Int>,
    /// `columns` on the host (for the layout).
    host_columns: Vec<usize>,
    /// The wrapped batch's spec with `policy` narrowed and `critic` added.
    spec: EnvSpec,
}

impl<B: Backend, E: VecEnv<B> + ?Sized> Observe<B, E> {
    /// Wraps `env` so that its `policy` group holds the columns `columns` of its
    /// observation, in that order, and a `critic` group the whole observation.
    ///
    /// # Errors
    /// [`Error::TaskConfig`] (field `observe`) when `columns` is empty, holds an index
    /// outside the observation or one index twice, or when `env` already has a `critic`
    /// group.
    pub fn new(env: Box<E>, columns: &[usize]) -> Result<Self> {
        let mut spec = env.spec().clone();
        let width = spec.obs_groups.get(POLICY).copied().unwrap_or(0);
        check_columns(&spec.task, columns, width, &[])?;
        if spec.obs_groups.contains_key(CRITIC) {
            return Err(config_error(
                &spec.task,
                format!("the task already has a `{CRITIC}` observation group"),
            ));
        }
        spec.obs_groups.insert(POLICY.to_string(), columns.len());
        spec.obs_groups.insert(CRITIC.to_string(), width);
        let host_columns = columns.to_vec();
        let indices: Vec<i64> = columns.iter().map(|&j| j as i64).collect();
        let columns = Tensor::from_data(TensorData::new(indices, [columns.len()]), env.device()); // [D_policy]
        Ok(Self {
            env,
            columns,
            host_columns,
            spec,
        })
    }

    /// The wrapped batch.
    pub fn inner(&self) -> &E {
        &self.env
    }

    /// `policy` becomes the chosen columns of itself and `critic` the whole of it; any
    /// other group passes through.
    fn split(&self, obs: Observations<B>) -> Observations<B> {
        let mut out = Observations::new();
        for (name, group) in obs.iter() {
            if name == POLICY {
                out.insert(CRITIC, group.clone()); // [N, D]
                out.insert(POLICY, group.clone().select(1, self.columns.clone())); // [N, D_policy]
            } else {
                out.insert(name.clone(), group.clone());
            }
        }
        out
    }
}

impl<B: Backend, E: VecEnv<B> + ?Sized> VecEnv<B> for Observe<B, E> {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn device(&self) -> &B::Device {
        self.env.device()
    }

    fn num_envs(&self) -> usize {
        self.env.num_envs()
    }

    fn observations(&self) -> Observations<B> {
        self.split(self.env.observations())
    }

    fn step(&mut self, actions: Tensor<B, 2>) -> rl_core::Result<StepOutput<B>> {
        let out = self.env.step(actions)?;
        Ok(StepOutput {
            observations: self.split(out.observations),
            final_observations: self.split(out.final_observations),
            ..out
        })
    }

    fn reset(&mut self) -> Observations<B> {
        let obs = self.env.reset();
        self.split(obs)
    }

    fn save_state(&self) -> rl_core::Result<EnvSnapshot> {
        self.env.save_state()
    }

    fn load_state(&mut self, snapshot: &EnvSnapshot) -> rl_core::Result<()> {
        self.env.load_state(snapshot)
    }

    fn scene(&self, env_id: usize) -> rl_core::Result<Option<Scene>> {
        self.env.scene(env_id)
    }

    /// The wrapped layout with `policy` cut to the chosen columns (each one term of one
    /// column, in the order chosen) and `critic` the wrapped `policy` group unchanged.
    fn layout(&self) -> EnvLayout {
        let mut layout = self.env.layout();
        let full = layout
            .observations
            .remove(POLICY)
            .unwrap_or_else(|| ObsGroupLayout {
                terms: Vec::new(),
                clip: None,
            });
        let terms = self
            .host_columns
            .iter()
            .enumerate()
            .map(|(start, &j)| column_term(&full, j, start))
            .collect();
        // The group's clip acts on each column alone, so it holds for any selection.
        let policy = ObsGroupLayout {
            terms,
            clip: full.clip,
        };
        layout.observations.insert(POLICY.to_string(), policy);
        layout.observations.insert(CRITIC.to_string(), full);
        layout
    }
}

/// Column `j` of the group `group` as a term of one column starting at `start`: the name,
/// scale, clip and unit of the term that holds it (a term of several columns names the
/// column `term[k]`). A column that no term covers becomes `policy[j]`, scale 1.
fn column_term(group: &ObsGroupLayout, j: usize, start: usize) -> ObsTermLayout {
    let holder = group
        .terms
        .iter()
        .find(|t| (t.start..t.start + t.size).contains(&j));
    match holder {
        Some(t) => {
            let k = j - t.start;
            ObsTermLayout {
                name: if t.size == 1 {
                    t.name.clone()
                } else {
                    format!("{}[{k}]", t.name)
                },
                start,
                size: 1,
                scale: vec![t.scale.get(k).copied().unwrap_or(1.0)],
                clip: t.clip,
                unit: t.unit.clone(),
            }
        }
        None => ObsTermLayout {
            name: format!("{POLICY}[{j}]"),
            start,
            size: 1,
            scale: vec![1.0],
            clip: None,
            unit: String::new(),
        },
    }
}

/// The internal state is the wrapped task's (only what the policy sees changes).
impl<B: Backend, E: ClassicEnv<B> + ?Sized> ClassicEnv<B> for Observe<B, E> {
    fn state_names(&self) -> &'static [&'static str] {
        self.env.state_names()
    }

    fn state(&self) -> Tensor<B, 2> {
        self.env.state()
    }

    fn final_state(&self) -> Tensor<B, 2> {
        self.env.final_state()
    }

    fn set_state(&mut self, env_ids: Option<&[usize]>, states: Tensor<B, 2>) -> Result<()> {
        self.env.set_state(env_ids, states)
    }
}

/// Reads the setting `observe` of `task`, whose observation has the components `names`:
/// a list of distinct indices into it.
///
/// # Errors
/// [`Error::TaskConfig`] (field `observe`) when the value is not a list of integers
/// `>= 0`, or is empty, or holds an index out of range or one index twice.
pub(crate) fn parse_columns(task: &str, value: &toml::Value, names: &[&str]) -> Result<Vec<usize>> {
    let toml::Value::Array(items) = value else {
        return Err(config_error(
            task,
            format!(
                "expected a list of observation indices such as [0, 2], got the {} `{value}`",
                value.type_str()
            ),
        ));
    };
    let columns = items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            toml::Value::Integer(j) if *j >= 0 => Ok(*j as usize),
            other => Err(config_error(
                task,
                format!("entry {i} is `{other}`; expected an index into the observation (an integer >= 0)"),
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    check_columns(task, &columns, names.len(), names)?;
    Ok(columns)
}

/// Checks that `columns` is a non-empty list of distinct indices below `width` (the
/// observation's size, its components `names` when known).
fn check_columns(task: &str, columns: &[usize], width: usize, names: &[&str]) -> Result<()> {
    let layout = if names.is_empty() {
        format!("task `{task}` observes {width} values")
    } else {
        format!(
            "task `{task}` observes {width} values [{}]",
            names.join(", ")
        )
    };
    if columns.is_empty() {
        return Err(config_error(
            task,
            format!(
                "the list is empty; give at least one index (0..{width}; {layout}), or leave \
                 `{FIELD}` out to observe everything"
            ),
        ));
    }
    if let Some(j) = columns.iter().find(|&&j| j >= width) {
        return Err(config_error(
            task,
            format!("index {j} is out of range: {layout}, indices 0..{width}"),
        ));
    }
    for (i, j) in columns.iter().enumerate() {
        if columns[..i].contains(j) {
            return Err(config_error(
                task,
                format!("index {j} is listed twice; list each observed index once"),
            ));
        }
    }
    Ok(())
}

fn config_error(task: &str, what: String) -> Error {
    Error::TaskConfig {
        task: task.to_string(),
        field: FIELD.to_string(),
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{B, assert_save_load_continues_identically, bools, floats};
    use crate::{CartPole, Purpose, make_env, validate_settings};
    use rl_core::HostRng;

    fn settings(toml: &str) -> toml::Table {
        toml::from_str(toml).expect("toml")
    }

    /// `[N, D]` values row by row.
    fn rows(t: Tensor<B, 2>) -> Vec<Vec<f32>> {
        let d = t.dims()[1];
        floats(t).chunks(d).map(<[f32]>::to_vec).collect()
    }

    /// The columns `columns` of every row.
    fn pick(rows: &[Vec<f32>], columns: &[usize]) -> Vec<Vec<f32>> {
        rows.iter()
            .map(|r| columns.iter().map(|&j| r[j]).collect())
            .collect()
    }

    /// Steps `task` with and without `observe = columns` (same seed, same seeded random
    /// actions) for `steps` steps and checks that the wrapped `policy` group is the chosen
    /// columns of the plain one and `critic` the whole of it, in `reset`, in every step's
    /// observations and final observations, and in `observations`. Returns the number of
    /// episodes that ended (and were auto-reset).
    fn assert_selects(task: &str, columns: &[usize], steps: usize) -> usize {
        let device = Default::default();
        let n = 4;
        let observe = settings(&format!("observe = {columns:?}"));
        let mut wrapped =
            make_env::<B>(task, n, 7, &observe, Purpose::Training, &device).expect("valid");
        let mut plain = make_env::<B>(task, n, 7, &toml::Table::new(), Purpose::Training, &device)
            .expect("valid");
        let check = |w: &Observations<B>, p: &Observations<B>, at: &str| {
            let full = rows(p.get(POLICY).expect("policy"));
            let policy = rows(w.get(POLICY).expect("policy"));
            assert_eq!(policy, pick(&full, columns), "{task} {at}: policy");
            assert_eq!(
                rows(w.get(CRITIC).expect("critic")),
                full,
                "{task} {at}: critic"
            );
        };
        check(&wrapped.reset(), &plain.reset(), "reset");
        let shape = [n, plain.spec().num_actions()];
        let mut rng = HostRng::new(3);
        let mut dones = 0;
        for step in 0..steps {
            let actions = rng.normal::<B>(shape, &device).mul_scalar(2.0); // [N, A]
            let w = wrapped.step(actions.clone()).expect("action shape");
            let p = plain.step(actions).expect("action shape");
            let at = format!("step {step}");
            check(&w.observations, &p.observations, &at);
            check(
                &w.final_observations,
                &p.final_observations,
                &format!("{at} final"),
            );
            assert_eq!(
                floats(w.rewards.clone()),
                floats(p.rewards.clone()),
                "{task} {at}: rewards"
            );
            let done = bools(p.dones());
            assert_eq!(bools(w.dones()), done, "{task} {at}: dones");
            dones += done.iter().filter(|&&d| d).count();
        }
        check(
            &wrapped.observations(),
            &plain.observations(),
            "observations()",
        );
        dones
    }

    #[test]
    fn policy_sees_the_chosen_columns_in_order_and_critic_everything() {
        // Cart-pole ends its episodes within a few dozen random steps; the pendulum only by
        // its 200-step time limit.
        assert!(assert_selects("cartpole", &[2, 0], 100) >= 4);
        assert!(assert_selects("pendulum", &[0, 1], 210) >= 4);
        assert_selects("acrobot", &[5, 1, 3], 20);
    }

    #[test]
    fn spec_narrows_policy_and_adds_critic_only_with_observe() {
        let device = Default::default();
        let observe = settings("observe = [0, 2]");
        let plain = make_env::<B>(
            "cartpole",
            2,
            0,
            &toml::Table::new(),
            Purpose::Training,
            &device,
        )
        .expect("valid");
        let wrapped =
            make_env::<B>("cartpole", 2, 0, &observe, Purpose::Evaluation, &device).expect("valid");
        let groups = |env: &dyn VecEnv<B>| {
            env.spec()
                .obs_groups
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect::<Vec<_>>()
        };
        assert_eq!(groups(plain.as_ref()), [("policy".to_string(), 4)]);
        assert_eq!(
            groups(wrapped.as_ref()),
            [("critic".to_string(), 4), ("policy".to_string(), 2)]
        );
        let mut rest = wrapped.spec().clone();
        rest.obs_groups = plain.spec().obs_groups.clone();
        assert_eq!(&rest, plain.spec(), "everything else is the task's");
        assert_eq!(wrapped.num_envs(), 2);
        let obs = wrapped.observations();
        assert_eq!(obs.get(POLICY).expect("policy").dims(), [2, 2]);
        assert_eq!(obs.get(CRITIC).expect("critic").dims(), [2, 4]);
        assert!(
            plain.observations().get(CRITIC).is_err(),
            "no critic group without observe"
        );
    }

    #[test]
    fn snapshots_round_trip_through_the_wrapper() {
        let device = Default::default();
        assert_save_load_continues_identically(|seed| {
            Observe::new(
                Box::new(CartPole::<B>::new(3, seed, &device).expect("envs")),
                &[3, 0],
            )
            .expect("valid columns")
        });
    }

    /// A cart-pole whose layout is one term of 4 columns with scales and clips (as a
    /// legged task's terms are), to see the wrapper carry them over column by column.
    struct Scaled(CartPole<B>);

    impl VecEnv<B> for Scaled {
        fn spec(&self) -> &EnvSpec {
            self.0.spec()
        }
        fn device(&self) -> &burn::tensor::Device<B> {
            self.0.device()
        }
        fn observations(&self) -> Observations<B> {
            self.0.observations()
        }
        fn step(&mut self, actions: Tensor<B, 2>) -> rl_core::Result<StepOutput<B>> {
            self.0.step(actions)
        }
        fn reset(&mut self) -> Observations<B> {
            self.0.reset()
        }
        fn save_state(&self) -> rl_core::Result<EnvSnapshot> {
            self.0.save_state()
        }
        fn load_state(&mut self, snapshot: &EnvSnapshot) -> rl_core::Result<()> {
            self.0.load_state(snapshot)
        }
        fn layout(&self) -> EnvLayout {
            let mut layout = self.0.layout();
            let term = ObsTermLayout {
                name: "state".into(),
                start: 0,
                size: 4,
                scale: vec![1.0, 2.0, 3.0, 4.0],
                clip: Some(5.0),
                unit: "mixed".into(),
            };
            let group = ObsGroupLayout {
                terms: vec![term],
                clip: Some(100.0),
            };
            layout.observations.insert(POLICY.into(), group);
            layout
        }
    }

    #[test]
    fn layout_describes_the_chosen_columns_in_order_and_critic_everything() {
        let device = Default::default();
        let plain = CartPole::<B>::new(2, 0, &device).expect("envs");
        let full = plain.layout().observations[POLICY].clone();
        let wrapped = Observe::new(Box::new(plain), &[3, 0]).expect("valid columns");
        let layout = wrapped.layout();
        assert_eq!(layout.check(wrapped.spec()), Ok(()));
        let policy = &layout.observations[POLICY];
        let names: Vec<&str> = policy.terms.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["theta_dot", "x"]);
        assert_eq!((policy.terms[0].start, policy.terms[1].start), (0, 1));
        assert_eq!(policy.terms[0].unit, full.terms[3].unit);
        assert_eq!(policy.terms[1].unit, full.terms[0].unit);
        assert_eq!(
            layout.observations[CRITIC], full,
            "critic is the whole observation"
        );
        assert_eq!(layout.actions.kind, "force", "the actions are the task's");

        // Through the registry, as a training config builds it.
        let observe = settings("observe = [2, 0]");
        let env =
            make_env::<B>("pendulum", 2, 0, &observe, Purpose::Training, &device).expect("valid");
        let layout = env.layout();
        assert_eq!(layout.check(env.spec()), Ok(()));
        let names: Vec<&str> = layout.observations[POLICY]
            .terms
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["theta_dot", "cos_theta"]);
        assert_eq!(layout.observations[CRITIC].terms.len(), 3);

        // A column of a wider term keeps its own scale, the term's clip and the group's.
        let scaled = Scaled(CartPole::<B>::new(2, 0, &device).expect("envs"));
        let wrapped = Observe::new(Box::new(scaled), &[2, 1]).expect("valid columns");
        let layout = wrapped.layout();
        assert_eq!(layout.check(wrapped.spec()), Ok(()));
        let policy = &layout.observations[POLICY];
        let got: Vec<(&str, usize, f32, Option<f32>)> = policy
            .terms
            .iter()
            .map(|t| (t.name.as_str(), t.start, t.scale[0], t.clip))
            .collect();
        assert_eq!(
            got,
            [
                ("state[2]", 0, 3.0, Some(5.0)),
                ("state[1]", 1, 2.0, Some(5.0))
            ]
        );
        assert_eq!(policy.clip, Some(100.0));
        assert_eq!(layout.observations[CRITIC].terms[0].size, 4);
    }

    #[test]
    fn wrapper_refuses_bad_columns_and_a_second_critic() {
        let device = Default::default();
        let cartpole = || Box::new(CartPole::<B>::new(2, 0, &device).expect("envs"));
        for (columns, what) in [
            (&[][..], "empty"),
            (
                &[4][..],
                "index 4 is out of range: task `cartpole` observes 4 values",
            ),
            (&[1, 1][..], "index 1 is listed twice"),
        ] {
            let msg = Observe::new(cartpole(), columns)
                .err()
                .expect("invalid columns")
                .to_string();
            assert!(msg.contains("env.observe") && msg.contains(what), "{msg}");
        }
        let once = Observe::new(cartpole(), &[0]).expect("valid");
        let msg = Observe::new(Box::new(once), &[0])
            .err()
            .expect("a critic group already")
            .to_string();
        assert!(
            msg.contains("env.observe") && msg.contains("`critic`"),
            "{msg}"
        );
    }

    #[test]
    fn invalid_observe_settings_name_the_field_and_the_task() {
        let device = Default::default();
        let cases = [
            ("cartpole", "observe = []", "the list is empty"),
            (
                "cartpole",
                "observe = [0, 4]",
                "index 4 is out of range: task `cartpole` observes 4 values [x, x_dot, theta, \
                 theta_dot], indices 0..4",
            ),
            (
                "pendulum",
                "observe = [3]",
                "observes 3 values [cos_theta, sin_theta, theta_dot]",
            ),
            ("acrobot", "observe = [2, 0, 2]", "index 2 is listed twice"),
            ("cartpole", "observe = [-1]", "entry 0 is `-1`"),
            ("cartpole", "observe = [0, 1.0]", "entry 1 is `1.0`"),
            (
                "mountain_car_continuous",
                "observe = [\"position\"]",
                "entry 0 is `\"position\"`",
            ),
            (
                "cartpole",
                "observe = 2",
                "expected a list of observation indices",
            ),
            ("cartpole_discrete", "observe = \"0, 2\"", "got the string"),
        ];
        for (task, toml, what) in cases {
            let s = settings(toml);
            let checked = validate_settings(task, &s)
                .err()
                .unwrap_or_else(|| panic!("{task} {toml}: refused"))
                .to_string();
            let built = make_env::<B>(task, 2, 0, &s, Purpose::Training, &device)
                .err()
                .unwrap_or_else(|| panic!("{task} {toml}: refused"))
                .to_string();
            assert_eq!(checked, built, "validate_settings and make_env agree");
            assert!(
                checked.contains(&format!("task `{task}`: env.observe: "))
                    && checked.contains(what),
                "{toml}: {checked}"
            );
        }
        let s = settings("observe = [0, 2]\nobserv = [1]");
        let msg = validate_settings("cartpole", &s)
            .expect_err("unknown field")
            .to_string();
        assert!(
            msg.contains("env.observ:") && msg.contains("unknown field"),
            "{msg}"
        );
        for task in crate::classic_tasks() {
            let s = settings("observe = [1, 0]");
            validate_settings(task, &s).unwrap_or_else(|e| panic!("{e}"));
            make_env::<B>(task, 2, 0, &s, Purpose::Training, &device)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
