//! Helpers for the unit tests: Gymnasium fixtures, the checks every task shares and reading
//! tensors back.

use burn::backend::NdArray;
use burn::tensor::{Bool, Tensor, TensorData, backend::Backend};
use rl_core::{EnvSnapshot, HostRng, Observations, StepOutput};
use serde::Deserialize;

use crate::{ClassicEnv, DynamicsStep};

/// The CPU backend the tests run on.
pub(crate) type B = NdArray;

/// A task's pure dynamics: `(state [N, K], actions [N, A])` to one transition.
pub(crate) type Dynamics = fn(Tensor<B, 2>, Tensor<B, 2>) -> rl_core::Result<DynamicsStep<B>>;

/// Reference data recorded from Gymnasium by `tools/gymnasium/make_fixtures.py`.
#[derive(Debug, Deserialize)]
pub(crate) struct Fixture {
    /// Single-step edge cases.
    pub(crate) transitions: Vec<Record>,
    /// Whole episodes played through `gym.make` (with its time limit).
    pub(crate) episodes: Vec<Episode>,
}

/// One recorded transition (float64 values from Gymnasium).
#[derive(Debug, Deserialize)]
pub(crate) struct Record {
    pub(crate) state: Vec<f64>,
    pub(crate) action: Vec<f64>,
    pub(crate) next_state: Vec<f64>,
    pub(crate) obs: Vec<f64>,
    pub(crate) reward: f64,
    pub(crate) terminated: bool,
}

/// One recorded episode: the state it starts from and every step until it ends.
#[derive(Debug, Deserialize)]
pub(crate) struct Episode {
    pub(crate) initial_state: Vec<f64>,
    pub(crate) steps: Vec<EpisodeStep>,
}

/// One step of a recorded episode: the action, and what Gymnasium returned.
#[derive(Debug, Deserialize)]
pub(crate) struct EpisodeStep {
    pub(crate) action: Vec<f64>,
    /// The unwrapped state after the step (float64).
    pub(crate) state: Vec<f64>,
    pub(crate) obs: Vec<f64>,
    pub(crate) reward: f64,
    pub(crate) terminated: bool,
    /// Gymnasium's `truncated`, issued by its `TimeLimit` wrapper (also on a terminal step).
    pub(crate) truncated: bool,
}

impl Fixture {
    pub(crate) fn parse(json: &str) -> Self {
        let fixture: Self = serde_json::from_str(json).expect("fixture JSON parses");
        assert!(
            fixture.transitions.len() >= 20,
            "fixture has too few transitions"
        );
        assert!(!fixture.episodes.is_empty(), "fixture has no episodes");
        fixture
    }

    /// One field of every transition stacked as a float32 tensor `[N, K]`.
    pub(crate) fn stack(&self, field: impl Fn(&Record) -> &Vec<f64>) -> Tensor<B, 2> {
        let rows: Vec<Vec<f64>> = self.transitions.iter().map(|r| field(r).clone()).collect();
        rows_to_tensor(&rows)
    }
}

/// Rows of equal length as a float32 tensor `[rows, cols]`.
pub(crate) fn rows_to_tensor(rows: &[Vec<f64>]) -> Tensor<B, 2> {
    let cols = rows.first().map_or(0, Vec::len);
    let values: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Tensor::from_data(
        TensorData::new(values, [rows.len(), cols]),
        &Default::default(),
    )
}

/// A float tensor's values, row-major, on any backend.
pub(crate) fn floats<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32 tensor")
}

/// A bool tensor's values, on any backend (wgpu stores them as integers).
pub(crate) fn bools<Bk: Backend>(t: Tensor<Bk, 1, Bool>) -> Vec<bool> {
    t.into_data()
        .convert::<bool>()
        .to_vec()
        .expect("bool tensor")
}

/// Asserts `|got - want| <= 1e-5 max(1, |want|)`.
pub(crate) fn assert_close(got: f32, want: f64, what: &str) {
    let tol = 1e-5 * want.abs().max(1.0);
    assert!(
        (f64::from(got) - want).abs() <= tol,
        "{what}: got {got}, Gymnasium gives {want} (tolerance {tol:e})"
    );
}

/// [`assert_close`] for every component of a row.
pub(crate) fn assert_all_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert_close(g, w, &format!("{what} [{k}]"));
    }
}

/// The `policy` observation of a step output's `final_observations`, row-major.
fn final_obs(out: &rl_core::StepOutput<B>) -> Vec<f32> {
    floats(out.final_observations.get("policy").expect("policy group"))
}

/// Runs every recorded transition through `dynamics` as one batch and compares the next
/// state, its observation (`observe`), the reward and the terminated flag with Gymnasium's.
pub(crate) fn assert_transitions(
    fx: &Fixture,
    dynamics: Dynamics,
    observe: fn(Tensor<B, 2>) -> Tensor<B, 2>,
) {
    let t = dynamics(fx.stack(|r| &r.state), fx.stack(|r| &r.action)).expect("shapes are valid");
    let [n, k] = t.next_state.dims();
    assert_eq!(n, fx.transitions.len());
    let obs = observe(t.next_state.clone());
    let d = obs.dims()[1];
    let (next, obs) = (floats(t.next_state), floats(obs));
    let rewards = floats(t.rewards);
    let terminated = bools(t.terminated);
    for (i, rec) in fx.transitions.iter().enumerate() {
        let at = format!("transition {i}");
        assert_all_close(
            &next[i * k..(i + 1) * k],
            &rec.next_state,
            &format!("{at}: state"),
        );
        assert_all_close(&obs[i * d..(i + 1) * d], &rec.obs, &format!("{at}: obs"));
        assert_close(rewards[i], rec.reward, &format!("{at}: reward"));
        assert_eq!(terminated[i], rec.terminated, "{at}: terminated flag");
    }
}

/// Replays every recorded episode step by step through the real `VecEnv::step` of a fresh
/// single environment from `make`: before each step the environment is put into the state
/// Gymnasium started that step from; then the final observation and state, the reward, the
/// terminated and time-out flags, and at the end the episode's length and return must match.
///
/// `can_terminate`: the fixture must hold a terminated and a truncated episode (else only
/// truncated ones).
pub(crate) fn assert_episodes<E: ClassicEnv<B>>(
    fx: &Fixture,
    make: impl Fn() -> E,
    can_terminate: bool,
) {
    let ends: Vec<bool> = fx
        .episodes
        .iter()
        .map(|ep| ep.steps.last().is_some_and(|s| s.terminated))
        .collect();
    assert!(ends.contains(&false), "fixture: no truncated episode");
    assert_eq!(
        ends.contains(&true),
        can_terminate,
        "fixture: terminated episodes"
    );
    for (e, ep) in fx.episodes.iter().enumerate() {
        let mut env = make();
        assert_eq!(env.num_envs(), 1);
        let mut before = &ep.initial_state;
        let mut episode_return = 0.0;
        for (i, step) in ep.steps.iter().enumerate() {
            let at = format!("episode {e}, step {i}");
            let last = i + 1 == ep.steps.len();
            assert_eq!(
                step.terminated || step.truncated,
                last,
                "{at}: the fixture's episode ends on its last step"
            );
            env.set_state(Some(&[0]), rows_to_tensor(std::slice::from_ref(before)))
                .expect("state shape");
            let out = env
                .step(rows_to_tensor(std::slice::from_ref(&step.action)))
                .expect("action shape");
            assert_all_close(&final_obs(&out), &step.obs, &format!("{at}: obs"));
            assert_all_close(
                &floats(env.final_state()),
                &step.state,
                &format!("{at}: state"),
            );
            assert_close(
                floats(out.rewards)[0],
                step.reward,
                &format!("{at}: reward"),
            );
            assert_eq!(
                bools(out.terminated)[0],
                step.terminated,
                "{at}: terminated"
            );
            assert_eq!(
                bools(out.time_outs)[0],
                step.truncated && !step.terminated,
                "{at}: time-out"
            );
            episode_return += step.reward;
            let length = floats(out.episode.lengths)[0];
            let ret = floats(out.episode.returns)[0];
            if last {
                assert_eq!(length, ep.steps.len() as f32, "{at}: episode length");
                assert_close(ret, episode_return, &format!("{at}: episode return"));
            } else {
                assert_eq!((length, ret), (0.0, 0.0), "{at}: no episode ends");
            }
            before = &step.state;
        }
    }
}

/// Checks that a discrete task with `n` choices rounds each action to the nearest index and
/// clamps it into `0..n`: from the state `state`, every raw action must give exactly the
/// transition of the index it stands for, and the `n` indices must give `n` different
/// transitions.
pub(crate) fn assert_discrete_actions(dynamics: Dynamics, state: &[f64], n: usize) {
    let top = (n - 1) as f64;
    // (raw action, the index it selects)
    let cases = [
        (0.4, 0.0),
        (-0.45, 0.0),
        (0.6, 1.0),
        (1.6, top.min(2.0)),
        (-3.0, 0.0),
        (7.0, top),
        (top + 0.3, top),
    ];
    let states = rows_to_tensor(&vec![state.to_vec(); cases.len()]);
    let raw: Vec<Vec<f64>> = cases.iter().map(|&(a, _)| vec![a]).collect();
    let index: Vec<Vec<f64>> = cases.iter().map(|&(_, i)| vec![i]).collect();
    let by_raw = dynamics(states.clone(), rows_to_tensor(&raw)).expect("shapes are valid");
    let by_index = dynamics(states, rows_to_tensor(&index)).expect("shapes are valid");
    assert_eq!(
        floats(by_raw.next_state),
        floats(by_index.next_state),
        "raw actions {cases:?} act as their indices"
    );
    assert_eq!(floats(by_raw.rewards), floats(by_index.rewards));

    // Every index does something different.
    let states = rows_to_tensor(&vec![state.to_vec(); n]);
    let all: Vec<Vec<f64>> = (0..n).map(|i| vec![i as f64]).collect();
    let next = floats(
        dynamics(states, rows_to_tensor(&all))
            .expect("shapes are valid")
            .next_state,
    );
    let k = state.len();
    for i in 0..n {
        for j in 0..i {
            assert_ne!(
                next[i * k..(i + 1) * k],
                next[j * k..(j + 1) * k],
                "indices {i} and {j} act alike"
            );
        }
    }
}

/// Checks the reset states of the environments `make(seed)` (at least 64 of them): the
/// same seed gives the same states, another seed other states, and state component `k` lies
/// in `[low[k], high[k]]`, spread over the interval (or equal to `low[k]` when
/// `low[k] == high[k]`); `reset()` draws fresh states within the same bounds.
pub(crate) fn assert_seeded_reset<E: ClassicEnv<B>>(
    make: impl Fn(u64) -> E,
    low: &[f32],
    high: &[f32],
) {
    let a = floats(make(3).state());
    assert!(a.len() >= 64 * low.len());
    assert_eq!(a, floats(make(3).state()), "same seed, same reset");
    assert_ne!(
        a,
        floats(make(4).state()),
        "different seed, different reset"
    );
    let check = |s: &[f32]| {
        for (k, (&lo, &hi)) in low.iter().zip(high).enumerate() {
            let column: Vec<f32> = s.chunks(low.len()).map(|row| row[k]).collect();
            assert!(
                column.iter().all(|&v| lo <= v && v <= hi),
                "state {k} within [{lo}, {hi}]: {column:?}"
            );
            let quarter = (hi - lo) / 4.0;
            assert!(
                column.iter().any(|&v| v >= hi - quarter)
                    && column.iter().any(|&v| v <= lo + quarter),
                "state {k} spreads over [{lo}, {hi}]: {column:?}"
            );
        }
    };
    check(&a);

    // reset() draws fresh states.
    let mut env = make(3);
    let obs = floats(env.reset().get("policy").expect("policy group"));
    let b = floats(env.state());
    assert_ne!(a, b, "reset draws new noise");
    check(&b);
    assert_eq!(
        obs.len() / env.num_envs(),
        env.spec().obs_groups["policy"],
        "reset returns the observations"
    );
}

/// Checks that `env` (at least 2 environments, `N`) rejects actions that are not `[N, A]`
/// and states that are not `[N, K]`.
pub(crate) fn assert_action_shape_errors<E: ClassicEnv<B>>(env: &mut E) {
    let n = env.num_envs();
    let a = env.spec().num_actions();
    let k = env.state_names().len();
    let zeros = |rows: usize, cols: usize| Tensor::<B, 2>::zeros([rows, cols], &Default::default());
    for shape in [[n, a + 1], [n - 1, a], [n + 1, a]] {
        match env.step(zeros(shape[0], shape[1])) {
            Err(rl_core::Error::Shape {
                what,
                expected,
                got,
            }) => {
                assert_eq!(what, "actions");
                assert_eq!(expected, vec![n, a]);
                assert_eq!(got, shape.to_vec());
            }
            other => panic!("expected a shape error for {shape:?}, got {other:?}"),
        }
    }
    assert!(env.set_state(None, zeros(n, k + 1)).is_err());
    assert!(env.set_state(None, zeros(n + 1, k)).is_err());
    assert!(env.step(zeros(n, a)).is_ok(), "[N, A] actions are valid");
}

/// A float tensor's values as bit patterns (to compare bit for bit: `-0.0 != 0.0`, and NaN
/// equals itself).
fn bits<const D: usize>(t: Tensor<B, D>) -> Vec<u32> {
    floats(t).into_iter().map(f32::to_bits).collect()
}

/// Asserts that two sets of observation groups are equal bit for bit.
fn assert_same_obs(a: &Observations<B>, b: &Observations<B>, what: &str) {
    let names = |o: &Observations<B>| o.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(names(a), names(b), "{what}: groups");
    for (name, t) in a.iter() {
        let other = b.get(name).expect("same groups");
        assert_eq!(bits(t.clone()), bits(other), "{what}: group `{name}`");
    }
}

/// Asserts that two step outputs are equal bit for bit.
fn assert_same_step(a: &StepOutput<B>, b: &StepOutput<B>, at: &str) {
    assert_same_obs(
        &a.observations,
        &b.observations,
        &format!("{at}: observations"),
    );
    assert_same_obs(
        &a.final_observations,
        &b.final_observations,
        &format!("{at}: final observations"),
    );
    assert_eq!(
        bits(a.rewards.clone()),
        bits(b.rewards.clone()),
        "{at}: rewards"
    );
    assert_eq!(
        bools(a.terminated.clone()),
        bools(b.terminated.clone()),
        "{at}: terminated"
    );
    assert_eq!(
        bools(a.time_outs.clone()),
        bools(b.time_outs.clone()),
        "{at}: time-outs"
    );
    assert_eq!(
        bits(a.episode.returns.clone()),
        bits(b.episode.returns.clone()),
        "{at}: episode returns"
    );
    assert_eq!(
        bits(a.episode.lengths.clone()),
        bits(b.episode.lengths.clone()),
        "{at}: episode lengths"
    );
    assert_eq!(
        a.episode.terms.keys().collect::<Vec<_>>(),
        b.episode.terms.keys().collect::<Vec<_>>(),
        "{at}: episode terms"
    );
    for (name, t) in &a.episode.terms {
        assert_eq!(
            bits(t.clone()),
            bits(b.episode.terms[name].clone()),
            "{at}: episode term `{name}`"
        );
    }
}

/// Checks that a snapshot resumes the environments bit for bit. Environments `A = make(1)`
/// (at least 2 of them) take seeded random actions for one and a half time limits, so that
/// every environment has finished an episode and the running episodes are midway; their
/// snapshot goes through a MessagePack round trip and is loaded into `B = make(2)` (another
/// seed, so another state and other reset streams). Then both take the same actions past
/// the next time limit (so that the restored counters decide the time-outs and the restored
/// streams the reset states): every step's outputs, the state and the final state must be
/// equal bit for bit.
pub(crate) fn assert_save_load_continues_identically<E: ClassicEnv<B>>(make: impl Fn(u64) -> E) {
    let device = Default::default();
    let mut a = make(1);
    let n = a.num_envs();
    assert!(n >= 2, "use at least two environments");
    let shape = [n, a.spec().num_actions()];
    let limit = a.spec().max_episode_length;
    // Box actions beyond the bounds are clamped; discrete ones rounded and clamped.
    let mut rng = HostRng::new(11);
    let mut actions = || rng.normal::<B>(shape, &device).mul_scalar(2.0); // [N, A]

    let mut ended = vec![false; n];
    for _ in 0..limit + limit / 2 {
        let out = a.step(actions()).expect("action shape");
        for (e, done) in ended.iter_mut().zip(bools(out.dones())) {
            *e |= done;
        }
    }
    assert!(
        ended.iter().all(|&e| e),
        "every environment has been auto-reset before the snapshot"
    );

    let snapshot = a.save_state().expect("state reads back");
    let bytes = rmp_serde::to_vec_named(&snapshot).expect("snapshot serialises");
    let decoded: EnvSnapshot = rmp_serde::from_slice(&bytes).expect("snapshot deserialises");
    assert_eq!(decoded, snapshot, "MessagePack round trip");

    let mut b = make(2);
    assert_ne!(
        bits(a.state()),
        bits(b.state()),
        "another seed, another state"
    );
    b.load_state(&decoded)
        .expect("same task and number of envs");
    assert_eq!(
        b.save_state().expect("state reads back"),
        snapshot,
        "load restores every entry"
    );
    assert_eq!(bits(a.state()), bits(b.state()), "state after load");
    assert_eq!(
        bits(a.final_state()),
        bits(b.final_state()),
        "final state after load"
    );
    assert_same_obs(&a.observations(), &b.observations(), "after load");

    let mut dones = 0;
    for step in 0..limit / 2 + limit / 4 {
        let act = actions();
        let out_a = a.step(act.clone()).expect("action shape");
        let out_b = b.step(act).expect("action shape");
        let at = format!("step {step} after the load");
        assert_same_step(&out_a, &out_b, &at);
        assert_eq!(bits(a.state()), bits(b.state()), "{at}: state");
        assert_eq!(
            bits(a.final_state()),
            bits(b.final_state()),
            "{at}: final state"
        );
        dones += bools(out_a.dones()).iter().filter(|&&d| d).count();
    }
    assert!(
        dones >= n,
        "episodes end (and auto-reset) after the load: {dones}"
    );
}

/// Checks the layout of a classic task: it fits the spec; its `policy` group is one term of
/// one column and scale 1 per name of `names`, in order, each with its unit and unclipped;
/// and its one action column is of kind `kind`, within `bounds`, with scale `scale` and
/// offset 0.
pub(crate) fn assert_classic_layout(
    env: &dyn rl_core::VecEnv<B>,
    names: &[&str],
    kind: &str,
    bounds: (f32, f32),
    scale: f32,
) {
    let task = env.spec().task.clone();
    let layout = env.layout();
    assert_eq!(layout.check(env.spec()), Ok(()), "{task}");
    assert_eq!(
        layout.observations.keys().collect::<Vec<_>>(),
        ["policy"],
        "{task}: groups"
    );
    let policy = &layout.observations["policy"];
    let got: Vec<&str> = policy.terms.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(got, names, "{task}: observation names");
    for (j, t) in policy.terms.iter().enumerate() {
        assert_eq!((t.start, t.size), (j, 1), "{task}: `{}` columns", t.name);
        assert_eq!(t.scale, [1.0], "{task}: `{}` scale", t.name);
        assert_eq!(t.clip, None, "{task}: `{}` clip", t.name);
        assert!(!t.unit.is_empty(), "{task}: `{}` has a unit", t.name);
    }
    assert_eq!(policy.clip, None, "{task}: group clip");
    let a = &layout.actions;
    assert_eq!(a.kind, kind, "{task}: action kind");
    assert_eq!(
        (a.low.clone(), a.high.clone()),
        (vec![bounds.0], vec![bounds.1]),
        "{task}"
    );
    assert_eq!(
        (a.scale.clone(), a.offset.clone()),
        (vec![scale], vec![0.0]),
        "{task}"
    );
    assert_eq!(layout.robot, None, "{task}: no robot");
}
